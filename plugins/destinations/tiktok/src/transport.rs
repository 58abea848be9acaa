//! The TikTok Events API transport: sends one request body and says whether it was delivered, may
//! be retried (and after how long, when TikTok says), or failed for good.
//!
//! TikTok answers `{code, message, request_id}`, often with HTTP 200 even for errors, so the `code`
//! decides: `0` is success; rate limits (HTTP 429, code 40100) and server errors (HTTP 5xx, codes
//! 5xxxx) are retryable; authentication and parameter errors (codes 400xx, HTTP 4xx) are permanent.
//! Network errors and timeouts are retryable. The access token travels in the `Access-Token` header
//! only and never appears in an error.

use crate::TiktokConfig;
use serde_json::Value;
use std::time::Duration;
use switchyard_core::destination::{SendError, Sending, Transport, TransportError};

/// Codes that mean "too many requests" (retry later) although they sit among the 4xxxx codes.
pub const RATE_LIMIT_CODES: [i64; 1] = [40100];

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

    /// Sends one request body (as built by `DestinationPlugin::request_body`).
    pub async fn send(&self, body: &Value) -> Result<(), SendError> {
        let response = self
            .http
            .post(&self.endpoint)
            .header("Access-Token", &self.token)
            .json(body)
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
        classify(status, &text, retry_after)
    }
}

impl Transport for EventsApi {
    fn send<'a>(&'a self, body: &'a Value) -> Sending<'a> {
        Box::pin(EventsApi::send(self, body))
    }
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
    if (400..500).contains(&status) {
        return Err(SendError::Permanent {
            reason: describe("refused"),
        });
    }
    match code {
        Some(0) if (200..300).contains(&status) => Ok(()),
        Some(c) if (40000..50000).contains(&c) => Err(SendError::Permanent {
            reason: describe("refused"),
        }),
        Some(_) => Err(retryable("unexpected answer")),
        None => Err(retryable("unreadable answer")),
    }
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
    fn answers_are_classified_by_code_first() {
        assert_eq!(classify(200, r#"{"code":0,"message":"OK"}"#, None), Ok(()));
        let permanent = classify(
            200,
            r#"{"code":40001,"message":"Invalid access token"}"#,
            None,
        );
        assert_eq!(
            permanent,
            Err(SendError::Permanent {
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
        assert!(matches!(
            classify(200, "not json", None),
            Err(SendError::Retryable { .. })
        ));
    }
}
