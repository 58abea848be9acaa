//! The TikTok Events API transport: sends one request body and says whether it was delivered, may
//! be retried (and after how long, when TikTok says), or failed for good, wholly or for some of its
//! events.
//!
//! TikTok answers `{code, message, request_id, data}`, often with HTTP 200 even for errors, so the
//! `code` decides:
//! - `0` is success;
//! - rate limits (HTTP 429, code 40100) and server errors (HTTP 5xx, codes 5xxxx) are retryable;
//!   so are network errors and timeouts;
//! - `40002` (an invalid event fails the whole request) names the event as `Batch.N.field: reason`:
//!   those events are refused and the others were not processed (delivery sends them again); a
//!   `40002` that names no event is refused without attribution (delivery splits the body);
//! - `20001` (partial success) names its failed events in `data.failed_events` (`[{"index": N,
//!   "message": "..."}]`) or as `Batch.N` in the message: those are refused, the others delivered;
//!   one that names none is a failure of the whole request;
//! - `40001` (no permission on this pixel) and any 4xxxx whose message is about the access token
//!   deny the destination itself;
//! - other codes 4xxxx and HTTP 4xx are permanent for the whole request.
//!
//! An HTTP 4xx answer that carries a 4xxxx code is read by its code, as an HTTP 200 one is.
//!
//! The access token travels in the `Access-Token` header only and never appears in an error.

use crate::TiktokConfig;
use serde_json::Value;
use std::borrow::Cow;
use std::time::Duration;
use switchyard_core::destination::{
    Others, Refusal, RequestBody, SendError, Sending, Transport, TransportError,
};

/// Codes that mean "too many requests" (retry later) although they sit among the 4xxxx codes.
pub const RATE_LIMIT_CODES: [i64; 1] = [40100];
/// Some events were processed and some failed.
pub const PARTIAL_SUCCESS: i64 = 20001;
/// No permission on this pixel (the token's account cannot send to it).
pub const NO_PERMISSION: i64 = 40001;
/// An event of the request is invalid (the message names it as `Batch.N.field`); the request fails.
pub const INVALID_EVENT: i64 = 40002;

/// The Events API, as one TikTok destination sends to it.
#[derive(Clone)]
pub struct EventsApi {
    http: reqwest::Client,
    endpoint: String,
    token: String,
}

impl std::fmt::Debug for EventsApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventsApi")
            .field("endpoint", &self.endpoint)
            .field("token", &"(redacted)")
            .finish()
    }
}

impl EventsApi {
    pub fn new(config: &TiktokConfig) -> Result<Self, TransportError> {
        install_crypto_provider();
        let token = config
            .access_token
            .expose()
            .ok_or_else(|| TransportError::MissingSecret(config.access_token.var().to_owned()))?
            .to_owned();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(config.common.delivery.timeout_ms))
            .pool_max_idle_per_host(config.common.delivery.max_concurrency)
            .build()
            .map_err(|e| TransportError::Http(e.into()))?;
        Ok(Self {
            http,
            endpoint: config.endpoint.clone(),
            token,
        })
    }

    /// Sends one request body (as built by `DestinationPlugin::serialized_body`).
    pub async fn send(&self, body: &RequestBody) -> Result<(), SendError> {
        let response = self
            .http
            .post(&self.endpoint)
            .header("Access-Token", &self.token)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.text().to_owned())
            .send()
            .await
            .map_err(|e| SendError::Retryable {
                reason: network_reason(&e),
                retry_after: None,
            })?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let text = response.text().await.map_err(|e| SendError::Retryable {
            reason: network_reason(&e),
            retry_after: None,
        })?;
        classify(status, &without_token(&text, &self.token), retry_after)
    }
}

impl Transport for EventsApi {
    fn send<'a>(&'a self, body: &'a RequestBody) -> Sending<'a> {
        Box::pin(EventsApi::send(self, body))
    }

    fn code_in(&self, reason: &str) -> Option<i64> {
        code_in(reason)
    }
}

/// An answer with every copy of the access token taken out: the answer's message becomes the
/// reason logged, kept in dead letters and shown by the admin API, and an answer may repeat the
/// token (`Access token <token> is invalid`, a proxy's error page echoing the request's headers).
fn without_token<'a>(answer: &'a str, token: &str) -> Cow<'a, str> {
    if token.is_empty() || !answer.contains(token) {
        return Cow::Borrowed(answer);
    }
    Cow::Owned(answer.replace(token, "(redacted)"))
}

/// TikTok's answer code in a reason [`classify`] wrote (`refused: HTTP 200, code 40002: ...`).
pub fn code_in(reason: &str) -> Option<i64> {
    const MARK: &str = ", code ";
    let rest = &reason[reason.find(MARK)? + MARK.len()..];
    let end = rest.find(':')?;
    rest[..end].parse().ok()
}

/// Decides what an answer means (see the module docs).
pub fn classify(status: u16, body: &str, retry_after: Option<Duration>) -> Result<(), SendError> {
    let answer: Option<Value> = serde_json::from_str(body).ok();
    let code = answer
        .as_ref()
        .and_then(|a| a.get("code"))
        .and_then(Value::as_i64);
    let message = answer
        .as_ref()
        .and_then(|a| a.get("message"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let describe = |what: &str| match code {
        Some(c) => format!("{what}: HTTP {status}, code {c}: {message}"),
        None => format!("{what}: HTTP {status}: {}", snippet(body)),
    };
    let retryable = |what: &str| SendError::Retryable {
        reason: describe(what),
        retry_after,
    };
    if status == 429 || code.is_some_and(|c| RATE_LIMIT_CODES.contains(&c)) {
        return Err(retryable("rate limited"));
    }
    if status >= 500 || code.is_some_and(|c| (50000..60000).contains(&c)) {
        return Err(retryable("TikTok server error"));
    }
    if status == 408 {
        return Err(retryable("request timeout"));
    }
    // TikTok's own code says more than the HTTP status it comes with: a 4xx answer that carries
    // a 4xxxx code is read by its code (40002 refuses the events it names, not the request).
    if (400..500).contains(&status) && !code.is_some_and(is_refusal) {
        return Err(SendError::Permanent {
            reason: describe("refused"),
        });
    }
    let refused = |c: i64| failed_events(answer.as_ref(), message, c, status);
    match code {
        Some(0) if (200..300).contains(&status) => Ok(()),
        Some(c) if c == NO_PERMISSION || (is_refusal(c) && names_the_token(message)) => {
            Err(SendError::Denied {
                reason: describe("refused"),
            })
        }
        Some(PARTIAL_SUCCESS) => Err(match refused(PARTIAL_SUCCESS) {
            Some(refused) => SendError::Refused {
                refused,
                others: Others::Delivered,
            },
            None => SendError::Permanent {
                reason: describe("refused (a partial success that names no event)"),
            },
        }),
        Some(INVALID_EVENT) => Err(match refused(INVALID_EVENT) {
            Some(refused) => SendError::Refused {
                refused,
                others: Others::NotSent,
            },
            None => SendError::Unattributed {
                reason: describe("refused"),
            },
        }),
        Some(c) if is_refusal(c) => Err(SendError::Permanent {
            reason: describe("refused"),
        }),
        Some(_) => Err(retryable("unexpected answer")),
        None => Err(retryable("unreadable answer")),
    }
}

/// Whether a code is one of the 4xxxx codes: authentication and parameter errors.
fn is_refusal(code: i64) -> bool {
    (40000..50000).contains(&code)
}

/// Whether an error message is about the access token (`Invalid access token`, `Access token is
/// null`, ...).
fn names_the_token(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    message.contains("access token") || message.contains("access_token")
}

/// The events an answer names as refused, each with its reason, by index: `data.failed_events`
/// when the answer has it (`[{"index": N, "message": "..."}]`, the message defaulting to the
/// answer's), else every `Batch.N` in the message. `None` when it names none, or when
/// `data.failed_events` is there but not in that shape.
fn failed_events(
    answer: Option<&Value>,
    message: &str,
    code: i64,
    status: u16,
) -> Option<Vec<Refusal>> {
    let mut named: Vec<(usize, &str)> = match answer.and_then(|a| a.pointer("/data/failed_events"))
    {
        Some(list) => list
            .as_array()?
            .iter()
            .map(|item| {
                let index = usize::try_from(item.get("index")?.as_u64()?).ok()?;
                let why = item.get("message").and_then(Value::as_str);
                Some((index, why.filter(|m| !m.is_empty()).unwrap_or(message)))
            })
            .collect::<Option<_>>()?,
        None => batch_mentions(message),
    };
    named.sort_by_key(|(index, _)| *index);
    let mut refused: Vec<Refusal> = Vec::with_capacity(named.len());
    for (index, why) in named {
        match refused.last_mut() {
            // One event named twice (two bad fields): one refusal, with both reasons.
            Some(last) if last.index == index => {
                last.reason.push_str("; ");
                last.reason.push_str(why);
            }
            _ => refused.push(Refusal {
                index,
                reason: format!("refused: HTTP {status}, code {code}: {why}"),
            }),
        }
    }
    (!refused.is_empty()).then_some(refused)
}

/// Every `Batch.N` in a message (`Batch.3.properties.value: Not a valid number`), with its part of
/// the message: from the mention to the next one, without the separator between them.
fn batch_mentions(message: &str) -> Vec<(usize, &str)> {
    const MARK: &str = "Batch.";
    let mut found: Vec<(usize, usize)> = Vec::new();
    for (at, _) in message.match_indices(MARK) {
        let rest = &message[at + MARK.len()..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let next = rest[digits..].chars().next();
        let whole = next.is_none_or(|c| c == '.' || c == ':' || c.is_whitespace());
        if whole && let Ok(index) = rest[..digits].parse() {
            found.push((index, at));
        }
    }
    let ends = found
        .iter()
        .skip(1)
        .map(|&(_, at)| at)
        .chain([message.len()]);
    found
        .iter()
        .zip(ends)
        .map(|(&(index, start), end)| {
            let separator = |c: char| c == ';' || c == ',' || c.is_whitespace();
            (index, message[start..end].trim_end_matches(separator))
        })
        .collect()
}

fn snippet(body: &str) -> String {
    let mut s: String = body.chars().take(200).collect();
    if s.len() < body.len() {
        s.push('…');
    }
    s
}

fn network_reason(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "network error"
    };
    // The error's source chain names the cause; the URL holds no secret.
    let mut reason = format!("{what}: {e}");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        reason.push_str(&format!(": {s}"));
        source = s.source();
    }
    reason
}

/// reqwest is built with rustls without a default crypto provider (to avoid a C toolchain for
/// aws-lc); this installs *ring* once per process.
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_code_of_an_answer_is_read_back_from_its_reason() {
        let refused = classify(
            200,
            r#"{"code":40002,"message":"Invalid parameter: x"}"#,
            None,
        );
        let Err(SendError::Unattributed { reason }) = refused else {
            panic!("{refused:?}");
        };
        assert_eq!(code_in(&reason), Some(40002));
        let later = classify(503, "down", None);
        let Err(SendError::Retryable { reason, .. }) = later else {
            panic!("{later:?}");
        };
        assert_eq!(code_in(&reason), None, "{reason}");
        let gave_up = "gave up after 8 tries: rate limited: HTTP 429, code 40100: Too many";
        assert_eq!(code_in(gave_up), Some(40100));
    }

    #[test]
    fn an_answer_that_repeats_the_token_is_classified_without_it() {
        let token = "tt-TOKEN-c0ffee4242deadbeef";
        let answer = format!(
            r#"{{"code":40105,"message":"Access token {token} is invalid or expired; {token}"}}"#
        );
        let cleaned = without_token(&answer, token);
        let reason = match classify(200, &cleaned, None) {
            Err(SendError::Denied { reason }) => reason,
            other => panic!("{other:?}"),
        };
        assert!(!reason.contains(token), "{reason}");
        assert!(
            reason.contains("Access token (redacted) is invalid"),
            "{reason}"
        );
        // An answer without the token is passed on as it is.
        let plain = r#"{"code":0,"message":"OK"}"#;
        assert!(matches!(without_token(plain, token), Cow::Borrowed(_)));
    }

    #[test]
    fn answers_are_classified_by_code_first() {
        assert_eq!(classify(200, r#"{"code":0,"message":"OK"}"#, None), Ok(()));
        let permanent = classify(
            200,
            r#"{"code":40001,"message":"Invalid access token"}"#,
            None,
        );
        // 40001 denies the destination itself (it was `Permanent` before answers were told apart).
        assert_eq!(
            permanent,
            Err(SendError::Denied {
                reason: "refused: HTTP 200, code 40001: Invalid access token".into()
            })
        );
        let later = Some(Duration::from_secs(3));
        assert!(matches!(
            classify(429, "", later),
            Err(SendError::Retryable { retry_after, .. }) if retry_after == later
        ));
        assert!(matches!(
            classify(200, r#"{"code":40100,"message":"Too many requests"}"#, None),
            Err(SendError::Retryable { .. })
        ));
        assert!(matches!(
            classify(200, r#"{"code":51000,"message":"busy"}"#, None),
            Err(SendError::Retryable { .. })
        ));
        assert!(matches!(
            classify(503, "<html>", None),
            Err(SendError::Retryable { .. })
        ));
        assert!(matches!(
            classify(401, "{}", None),
            Err(SendError::Permanent { .. })
        ));
        // A 4xx status with TikTok's code is read by the code, as with HTTP 200.
        let invalid = r#"{"code":40002,"message":"Batch.1.properties.value: Not a valid number"}"#;
        assert!(matches!(
            classify(400, invalid, None),
            Err(SendError::Refused { refused, others: Others::NotSent })
                if refused.len() == 1 && refused[0].index == 1
        ));
        assert_eq!(
            classify(403, r#"{"code":40001,"message":"No permission"}"#, None),
            Err(SendError::Denied {
                reason: "refused: HTTP 403, code 40001: No permission".into()
            })
        );
        assert!(matches!(
            classify(400, r#"{"code":20001,"message":"x"}"#, None),
            Err(SendError::Permanent { .. })
        ));
        assert!(matches!(
            classify(200, "not json", None),
            Err(SendError::Retryable { .. })
        ));
    }

    fn refusal(index: usize, reason: &str) -> Refusal {
        Refusal {
            index,
            reason: reason.into(),
        }
    }

    #[test]
    fn an_invalid_event_is_named_by_its_batch_index_and_the_rest_is_sent_again() {
        let answer = r#"{"code":40002,"message":"Batch.17.properties.contents.0.content_id: Not a valid string","request_id":"r","data":{}}"#;
        assert_eq!(
            classify(200, answer, None),
            Err(SendError::Refused {
                refused: vec![refusal(
                    17,
                    "refused: HTTP 200, code 40002: Batch.17.properties.contents.0.content_id: Not a valid string"
                )],
                others: Others::NotSent,
            })
        );
        // Several mentions: each event its own part of the message; one event named twice once,
        // with both reasons; `Batch.` not followed by a whole number is no mention.
        let answer = r#"{"code":40002,"message":"Batch.3.event_id: Not a valid string; Batch.1.event: Missing; Batch.3.event_time: Not a valid integer; Batch.2x: no"}"#;
        assert_eq!(
            classify(200, answer, None),
            Err(SendError::Refused {
                refused: vec![
                    refusal(1, "refused: HTTP 200, code 40002: Batch.1.event: Missing"),
                    refusal(
                        3,
                        "refused: HTTP 200, code 40002: Batch.3.event_id: Not a valid string; Batch.3.event_time: Not a valid integer; Batch.2x: no"
                    ),
                ],
                others: Others::NotSent,
            })
        );
    }

    #[test]
    fn an_invalid_event_that_is_not_named_is_unattributed() {
        assert_eq!(
            classify(
                200,
                r#"{"code":40002,"message":"Invalid parameter: event_time"}"#,
                None
            ),
            Err(SendError::Unattributed {
                reason: "refused: HTTP 200, code 40002: Invalid parameter: event_time".into()
            })
        );
        // A `data.failed_events` that is not a list of indexes names nobody either.
        let answer = r#"{"code":40002,"message":"bad","data":{"failed_events":[{"index":"one"}]}}"#;
        assert!(matches!(
            classify(200, answer, None),
            Err(SendError::Unattributed { .. })
        ));
    }

    #[test]
    fn a_partial_success_refuses_the_events_it_lists_and_delivered_the_others() {
        let answer = r#"{"code":20001,"message":"Partial success","data":{"failed_events":[{"index":4,"message":"Batch.4.event_id: Not a valid string"},{"index":0}]}}"#;
        assert_eq!(
            classify(200, answer, None),
            Err(SendError::Refused {
                refused: vec![
                    refusal(0, "refused: HTTP 200, code 20001: Partial success"),
                    refusal(
                        4,
                        "refused: HTTP 200, code 20001: Batch.4.event_id: Not a valid string"
                    ),
                ],
                others: Others::Delivered,
            })
        );
        // Without `data.failed_events`, the `Batch.N` mentions of the message.
        let answer = r#"{"code":20001,"message":"Batch.2.user.email: Not a valid hash"}"#;
        assert_eq!(
            classify(200, answer, None),
            Err(SendError::Refused {
                refused: vec![refusal(
                    2,
                    "refused: HTTP 200, code 20001: Batch.2.user.email: Not a valid hash"
                )],
                others: Others::Delivered,
            })
        );
    }

    #[test]
    fn a_partial_success_that_names_no_event_fails_the_whole_request() {
        assert_eq!(
            classify(200, r#"{"code":20001,"message":"Partial success"}"#, None),
            Err(SendError::Permanent {
                reason: "refused (a partial success that names no event): HTTP 200, code 20001: Partial success".into()
            })
        );
        for data in [
            r#"{"failed_events":"3"}"#,
            r#"{"failed_events":[{"message":"no index"}]}"#,
            r#"{"failed_events":[{"index":-1}]}"#,
            r#"{"failed_events":[]}"#,
        ] {
            let answer = format!(r#"{{"code":20001,"message":"Batch.1.x: y","data":{data}}}"#);
            assert!(
                matches!(
                    classify(200, &answer, None),
                    Err(SendError::Permanent { .. })
                ),
                "{answer}"
            );
        }
    }

    #[test]
    fn no_permission_and_token_errors_deny_the_destination() {
        assert_eq!(
            classify(
                200,
                r#"{"code":40001,"message":"No permission to operate pixel"}"#,
                None
            ),
            Err(SendError::Denied {
                reason: "refused: HTTP 200, code 40001: No permission to operate pixel".into()
            })
        );
        for answer in [
            r#"{"code":40105,"message":"The access token is invalid or has been revoked"}"#,
            r#"{"code":40104,"message":"Access token is null"}"#,
            r#"{"code":40000,"message":"access_token: missing"}"#,
        ] {
            assert!(
                matches!(classify(200, answer, None), Err(SendError::Denied { .. })),
                "{answer}"
            );
        }
        // Other parameter errors refuse the request only.
        assert!(matches!(
            classify(
                200,
                r#"{"code":40000,"message":"event_source: invalid"}"#,
                None
            ),
            Err(SendError::Permanent { .. })
        ));
    }
}
