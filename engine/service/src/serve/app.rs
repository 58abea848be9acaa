//! What the HTTP handlers share: the [`App`] state (with the config it runs now, [`Live`], which a
//! reload replaces), reading a JSON body, refusing with a JSON error, and queueing accepted events
//! durably (with de-duplication and the wake-up of delivery).

use crate::config::Loaded;
use crate::delivery::Deliverer;
use crate::metrics::Metrics;
use crate::observe::Observer;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use switchyard_core::event::{EventError, SourceEvent, TimeWindow};
use switchyard_queue::{Dedup, DedupError, EventQueue, QueueError, Queued, Record};
use tokio::sync::Notify;

/// Seconds a client is asked to wait when the queue is full.
const RETRY_AFTER_FULL: &str = "5";

/// Seconds a client is asked to wait when the queue's server (NATS) is unavailable.
const RETRY_AFTER_UNAVAILABLE: &str = "2";

/// Seconds a client is asked to wait when another copy of its events is still being stored.
const RETRY_AFTER_STORING: &str = "1";

/// The config the handlers run now, and what they look up in it. A reload replaces it whole; a
/// request in flight keeps the one it started with.
pub struct Live {
    /// The config, for the browser side's rules.
    pub loaded: Arc<Loaded>,
    /// Write key → source name.
    pub keys: HashMap<String, String>,
    /// Public key → browser source name.
    pub public_keys: HashMap<String, String>,
    /// How far an event's time may be from the time it is received.
    pub window: TimeWindow,
    /// Addresses whose `X-Forwarded-For` is believed (`server.trusted_proxies`).
    pub proxies: Vec<ipnet::IpNet>,
    /// Source name → the only events it may send (`sources[].events`), for the sources that say.
    pub allowed: HashMap<String, HashSet<String>>,
}

impl Live {
    /// What the handlers look up in `loaded`.
    pub fn new(loaded: Arc<Loaded>) -> Self {
        let sources = &loaded.config.sources;
        let keys = sources
            .iter()
            .filter_map(|s| Some((s.write_key.as_ref()?.expose()?.to_owned(), s.name.clone())))
            .collect();
        let public_keys = sources
            .iter()
            .filter_map(|s| Some((s.public_key.clone()?, s.name.clone())))
            .collect();
        let allowed = sources
            .iter()
            .filter_map(|s| Some((s.name.clone(), s.events.as_ref()?.iter().cloned().collect())))
            .collect();
        let server = &loaded.config.server;
        Self {
            window: server.time_window(),
            proxies: server.trusted_proxies.iter().map(|p| p.0).collect(),
            keys,
            public_keys,
            allowed,
            loaded,
        }
    }

    /// Whether `source` may send `event` (`sources[].events`), and `event`'s time lies in the
    /// window around `received_at`: the checks of an event that is valid in itself.
    pub fn admits(
        &self,
        source: &str,
        event: &SourceEvent,
        received_at: i64,
    ) -> Result<(), EventError> {
        if let Some(names) = self.allowed.get(source)
            && !names.contains(event.name())
        {
            return Err(EventError::Invalid {
                field: "event_name",
                reason: format!(
                    "`{}` is not one of the events source `{source}` may send (sources[].events)",
                    event.name()
                ),
            });
        }
        self.window.check(event, received_at)
    }
}

/// What the handlers share.
pub struct App {
    /// The config it runs now (see [`App::live`]).
    live: RwLock<Arc<Live>>,
    pub queue: Arc<dyn EventQueue>,
    pub metrics: Arc<Metrics>,
    /// Delivery (the admin API switches destinations and reloads through it).
    pub deliverer: Arc<Deliverer>,
    /// The journal and live taps, when the admin API is on.
    pub observer: Option<Arc<Observer>>,
    /// The admin token (`server.admin.token`), when the admin API is on. Read at start: a reload
    /// does not change it.
    pub admin_token: Option<String>,
    /// Queues each (source, `event_id`) once within the window.
    pub dedup: Arc<dyn Dedup>,
    /// Woken when events are queued (delivery waits on it).
    pub wake: Arc<Notify>,
    /// False once shutdown has begun.
    pub ready: AtomicBool,
    /// Held by a reload: one at a time.
    pub reloading: tokio::sync::Mutex<()>,
}

/// What an [`App`] is made of, besides its config.
pub struct Parts {
    pub queue: Arc<dyn EventQueue>,
    pub metrics: Arc<Metrics>,
    pub deliverer: Arc<Deliverer>,
    pub observer: Option<Arc<Observer>>,
    pub dedup: Arc<dyn Dedup>,
    pub wake: Arc<Notify>,
}

/// A refusal: the status and `{"error": message}`.
pub fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({"error": message.into()}))).into_response()
}

/// The request's body, or the status and message that refuse one that could not be read (413
/// when it is larger than `server.max_body_kib`, 408 when it came too slowly).
pub fn body(body: Result<Bytes, BytesRejection>) -> Result<Bytes, (StatusCode, String)> {
    body.map_err(|rejection| {
        let status = rejection.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            let message = "the body is larger than this service takes (server.max_body_kib)";
            (status, message.to_owned())
        } else if super::http::is_body_timeout(&rejection) {
            let message = "the body did not arrive in time: it paused longer than \
                server.read_timeout_ms, or took longer than server.body_timeout_ms in all";
            (StatusCode::REQUEST_TIMEOUT, message.to_owned())
        } else {
            (status, format!("cannot read the body: {rejection}"))
        }
    })
}

/// The body as JSON, when the service takes requests and the body's type is one of `types`
/// (`hint` says what to send instead); else the status and message that refuse it.
pub fn read_json<'b, T: serde::Deserialize<'b>>(
    app: &App,
    headers: &HeaderMap,
    body: &'b [u8],
    types: &[&str],
    hint: &str,
) -> Result<T, (StatusCode, String)> {
    check_json_request(app, headers, types, hint)?;
    parse_json_body(body)
}

/// `body` parsed as JSON, or the `400` that says where it is not JSON, or is JSON that does not
/// fit `T` (a missing field, a key given twice: [`switchyard_core::json_unique`]), with the line
/// and column.
pub fn parse_json_body<'b, T: serde::Deserialize<'b>>(
    body: &'b [u8],
) -> Result<T, (StatusCode, String)> {
    serde_json::from_slice(without_bom(body)).map_err(|e| {
        let message = match e.classify() {
            serde_json::error::Category::Data => format!("the body is JSON, but {e}"),
            _ => format!("the body is not JSON: {e}"),
        };
        (StatusCode::BAD_REQUEST, message)
    })
}

/// `body` without the byte-order mark (U+FEFF) that some senders (.NET's) put first: RFC 8259
/// lets a reader ignore it, and the events after it are what was meant.
pub fn without_bom(body: &[u8]) -> &[u8] {
    body.strip_prefix("\u{feff}".as_bytes()).unwrap_or(body)
}

/// Whether the service takes requests and the body's type is one of `types` (`hint` says what to
/// send instead): what [`read_json`] checks before it reads the body ([`parse_json_body`]).
pub fn check_json_request(
    app: &App,
    headers: &HeaderMap,
    types: &[&str],
    hint: &str,
) -> Result<(), (StatusCode, String)> {
    if !app.ready.load(Ordering::Relaxed) {
        return Err((StatusCode::SERVICE_UNAVAILABLE, "shutting down".into()));
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    if !content_type.is_some_and(|ct| types.iter().any(|t| media_type_is(ct, t))) {
        return Err((StatusCode::UNSUPPORTED_MEDIA_TYPE, hint.into()));
    }
    if content_type.is_some_and(|ct| !charset_is_utf8(ct)) {
        let message = "JSON is taken in UTF-8 only: send `charset=utf-8` or no charset";
        return Err((StatusCode::UNSUPPORTED_MEDIA_TYPE, message.into()));
    }
    let encoding = headers.get(header::CONTENT_ENCODING);
    if encoding.is_some_and(|e| !e.as_bytes().trim_ascii().eq_ignore_ascii_case(b"identity")) {
        // Read as it is, a compressed body would be refused as "not JSON", and a plain one
        // labelled compressed taken: neither says what is wrong (RFC 7694: 415).
        let message = "bodies are taken as they are: send no `Content-Encoding` (or `identity`)";
        return Err((StatusCode::UNSUPPORTED_MEDIA_TYPE, message.into()));
    }
    Ok(())
}

/// Whether a `Content-Type` value's `charset` parameter, if it has one, is UTF-8 (any case,
/// quoted or not).
fn charset_is_utf8(content_type: &str) -> bool {
    content_type
        .split(';')
        .skip(1)
        .all(|parameter| match parameter.split_once('=') {
            Some((name, value)) if name.trim().eq_ignore_ascii_case("charset") => {
                let value = value.trim().trim_matches('"');
                value.eq_ignore_ascii_case("utf-8") || value.eq_ignore_ascii_case("utf8")
            }
            _ => true,
        })
}

/// Whether a `Content-Type` value names the media type `wanted` (`application/json`): compared
/// without case, as media types are, and without its parameters (`; charset=utf-8`);
/// `application/jsonx` is another type.
fn media_type_is(content_type: &str, wanted: &str) -> bool {
    let essence = content_type
        .split_once(';')
        .map_or(content_type, |(essence, _)| essence);
    essence.trim().eq_ignore_ascii_case(wanted)
}

impl App {
    /// The handlers' state for `loaded`.
    pub fn new(loaded: Arc<Loaded>, parts: Parts) -> Self {
        let admin_token = loaded
            .config
            .server
            .admin
            .as_ref()
            .and_then(|a| a.token.expose())
            .map(str::to_owned);
        Self {
            live: RwLock::new(Arc::new(Live::new(loaded))),
            queue: parts.queue,
            metrics: parts.metrics,
            deliverer: parts.deliverer,
            observer: parts.observer,
            admin_token,
            dedup: parts.dedup,
            wake: parts.wake,
            ready: AtomicBool::new(true),
            reloading: tokio::sync::Mutex::new(()),
        }
    }

    /// The config the handlers run now.
    pub fn live(&self) -> Arc<Live> {
        self.live.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The loaded config the handlers run now.
    pub fn loaded(&self) -> Arc<Loaded> {
        self.live().loaded.clone()
    }

    /// Runs `loaded` from the next request on.
    pub fn replace(&self, loaded: Arc<Loaded>) {
        *self.live.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(Live::new(loaded));
    }

    /// Queues events (each with its `event_id`) durably, at most once per id within the
    /// de-duplication window, counts them and wakes delivery; or gives the answer that refuses
    /// them all (503, with `Retry-After`): then nothing of them was kept, except when the NATS
    /// server's answer was lost (then some may be; a retry is de-duplicated).
    pub async fn enqueue(
        &self,
        source: &str,
        events: Vec<(String, Record)>,
    ) -> Result<Queued, Response> {
        let n = events.len() as u64;
        let count = |result: &str, n: u64| {
            self.metrics
                .received
                .with_label_values(&[source, result])
                .inc_by(n)
        };
        match self.dedup.queue_once(source, events).await {
            Ok(queued) => {
                count("queued", queued.queued as u64);
                count("duplicate", queued.duplicates as u64);
                if queued.queued > 0 {
                    self.wake.notify_one();
                }
                Ok(queued)
            }
            Err(e) => {
                if let DedupError::Queue(QueueError::TooLarge { .. }) = &e {
                    count("refused_too_large", n);
                    return Err(error(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        format!("{e}: send fewer events per request"),
                    ));
                }
                if let DedupError::Queue(QueueError::OverMessageLimit(_)) = &e {
                    count("refused_too_large", n);
                    return Err(error(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        format!(
                            "{e}: send a smaller event (or raise the NATS server's max_payload)"
                        ),
                    ));
                }
                let retry_after = match &e {
                    DedupError::Queue(QueueError::Full { .. }) => {
                        count("refused_full", n);
                        Some(RETRY_AFTER_FULL)
                    }
                    DedupError::Queue(QueueError::Unavailable { .. }) => {
                        count("refused_unavailable", n);
                        Some(RETRY_AFTER_UNAVAILABLE)
                    }
                    DedupError::StillStoring(_) => {
                        count("refused_busy", n);
                        Some(RETRY_AFTER_STORING)
                    }
                    _ => None,
                };
                let kept = match &e {
                    // A publish may have reached the server before its answer was lost.
                    DedupError::Queue(QueueError::Unavailable { .. }) => {
                        "some events may have been kept; retry later (copies of an event_id are de-duplicated)"
                    }
                    _ => "nothing of this request was kept; retry later",
                };
                let mut r = error(StatusCode::SERVICE_UNAVAILABLE, format!("{e}: {kept}"));
                if let Some(v) = retry_after.and_then(|v| v.parse().ok()) {
                    r.headers_mut().insert(header::RETRY_AFTER, v);
                }
                Err(r)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{charset_is_utf8, media_type_is};

    #[test]
    fn only_a_utf_8_charset_or_none_is_taken() {
        for ok in [
            "application/json",
            "application/json; charset=utf-8",
            "application/json;CHARSET=\"UTF-8\"",
            "application/json; q=1",
        ] {
            assert!(charset_is_utf8(ok), "{ok}");
        }
        for no in [
            "application/json; charset=latin1",
            "application/json; charset=utf-16",
        ] {
            assert!(!charset_is_utf8(no), "{no}");
        }
    }

    #[test]
    fn a_media_type_is_its_essence_in_any_case() {
        for ok in [
            "application/json",
            "APPLICATION/JSON",
            "application/json; charset=utf-8",
            " Application/Json ;charset=UTF-8",
        ] {
            assert!(media_type_is(ok, "application/json"), "{ok}");
        }
        for other in ["application/jsonx", "application/json-seq", "text/json", ""] {
            assert!(!media_type_is(other, "application/json"), "{other}");
        }
    }
}
