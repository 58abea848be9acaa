//! The HTTP API: `POST /v1/events` (ingestion), `GET /healthz`, `GET /readyz`, `GET /metrics`.
//!
//! Ingestion authenticates the source by its write key (`X-Webhook-Token`), takes JSON only (one
//! event or an array), validates every event with a precise reason, skips ids already queued within
//! the de-duplication window, and answers **202 only once the accepted events are durably queued**.
//! A full queue answers 503 with `Retry-After` and keeps nothing of the request; an unstored event
//! is never acknowledged.

use super::dedup::Dedup;
use crate::clock::{unix_ms, unix_now};
use crate::metrics::Metrics;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use switchyard_engine::event::SourceEvent;
use switchyard_queue::{EventQueue, QueueError, Record};
use tokio::sync::Notify;

/// Seconds a client is asked to wait when the queue is full.
const RETRY_AFTER_FULL: &str = "5";

/// What the handlers share.
pub struct App {
    /// The config, for the browser side's rules.
    pub loaded: Arc<crate::config::Loaded>,
    pub queue: Arc<dyn EventQueue>,
    pub metrics: Arc<Metrics>,
    /// Write key → source name.
    pub keys: HashMap<String, String>,
    /// Public key → browser source name.
    pub public_keys: HashMap<String, String>,
    pub dedup: Mutex<Dedup>,
    /// Woken when events are queued (delivery waits on it).
    pub wake: Arc<Notify>,
    /// False once shutdown has begun.
    pub ready: AtomicBool,
}

pub fn router(app: Arc<App>, max_body: usize) -> Router {
    Router::new()
        .route("/v1/events", post(ingest))
        .route(
            "/v1/collect",
            post(super::collect::collect).options(super::collect::preflight),
        )
        .route("/v1/sdk.js", get(sdk))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(app)
}

/// The browser script (`engine/cli/assets/sdk.js`).
pub const SDK_JS: &str = include_str!("../../assets/sdk.js");

async fn sdk() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                "application/javascript; charset=utf-8",
            ),
            (header::CACHE_CONTROL, "public, max-age=300"),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        ],
        SDK_JS,
    )
        .into_response()
}

async fn ready(State(app): State<Arc<App>>) -> Response {
    if app.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response()
    }
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    let (count, bytes) = app.queue.depth();
    app.metrics.queue_depth.set(count as i64);
    app.metrics.queue_bytes.set(bytes as i64);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(),
    )
        .into_response()
}

pub(super) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({"error": message.into()}))).into_response()
}

/// The `event_id` of a (maybe invalid) event, in any accepted spelling, to name it in a refusal.
fn claimed_id(event: &Value) -> Option<String> {
    ["event_id", "eventID", "eventId"]
        .iter()
        .find_map(|k| event.get(*k)?.as_str())
        .map(str::to_owned)
}

/// One event the request could not queue, and why.
fn refusal(index: usize, id: Option<String>, reason: String) -> Value {
    let mut r = json!({"index": index, "reason": reason});
    if let Some(id) = id {
        r["event_id"] = id.into();
    }
    r
}

/// The body as JSON, when the service takes requests and the body's type is one of `types`
/// (`hint` says what to send instead); else the status and message that refuse it.
pub(super) fn read_json(
    app: &App,
    headers: &HeaderMap,
    body: &[u8],
    types: &[&str],
    hint: &str,
) -> Result<Value, (StatusCode, String)> {
    if !app.ready.load(Ordering::Relaxed) {
        return Err((StatusCode::SERVICE_UNAVAILABLE, "shutting down".into()));
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .trim_start();
    if !types.iter().any(|t| content_type.starts_with(t)) {
        return Err((StatusCode::UNSUPPORTED_MEDIA_TYPE, hint.into()));
    }
    serde_json::from_slice(body).map_err(|e| {
        (
            StatusCode::BAD_REQUEST,
            format!("the body is not JSON: {e}"),
        )
    })
}

impl App {
    /// Queues records durably, counts them, records their ids for de-duplication and wakes
    /// delivery; or gives the answer that refuses them (503, with `Retry-After` when full).
    pub(super) async fn enqueue(
        &self,
        source: &str,
        accepted: Vec<(String, Record)>,
    ) -> Result<(), Response> {
        let n = accepted.len() as u64;
        let (ids, records): (Vec<String>, Vec<Record>) = accepted.into_iter().unzip();
        let count = |result: &str, n: u64| {
            self.metrics
                .received
                .with_label_values(&[source, result])
                .inc_by(n)
        };
        match self.queue.append(records).await {
            Ok(_) => {
                count("queued", n);
                self.dedup
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .record(source, ids.iter().map(String::as_str));
                self.wake.notify_one();
                Ok(())
            }
            Err(e @ QueueError::Full { .. }) => {
                count("refused_full", n);
                let mut r = error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("{e}: nothing of this request was kept; retry later"),
                );
                if let Ok(v) = RETRY_AFTER_FULL.parse() {
                    r.headers_mut().insert(header::RETRY_AFTER, v);
                }
                Err(r)
            }
            Err(e) => Err(error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{e}: nothing of this request was kept; retry later"),
            )),
        }
    }
}

async fn ingest(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(source) = headers
        .get("x-webhook-token")
        .and_then(|v| v.to_str().ok())
        .and_then(|key| app.keys.get(key))
        .cloned()
    else {
        return error(
            StatusCode::UNAUTHORIZED,
            "missing or unknown X-Webhook-Token (a source's write key)",
        );
    };
    let parsed = match read_json(
        &app,
        &headers,
        &body,
        &["application/json"],
        "send JSON, with Content-Type: application/json",
    ) {
        Ok(v) => v,
        Err((status, message)) => return error(status, message),
    };
    let items = match parsed {
        Value::Array(items) => items,
        one @ Value::Object(_) => vec![one],
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "the body must be an event (an object) or an array of events",
            );
        }
    };
    let received_at = unix_now();
    let mut refused = Vec::new();
    let mut duplicates = 0u64;
    let mut accepted: Vec<(String, Record)> = Vec::with_capacity(items.len());
    {
        let mut dedup = app.dedup.lock().unwrap_or_else(|p| p.into_inner());
        let mut in_request = std::collections::HashSet::new();
        for (index, item) in items.into_iter().enumerate() {
            let id = claimed_id(&item);
            match SourceEvent::from_value(item, received_at) {
                Err(e) => refused.push(refusal(index, id, e.to_string())),
                Ok(event) => {
                    let id = event.id().to_owned();
                    if dedup.contains(&source, &id) || !in_request.insert(id.clone()) {
                        duplicates += 1;
                        continue;
                    }
                    let text = serde_json::to_string(event.as_value()).unwrap_or_default();
                    accepted.push((
                        id,
                        Record {
                            source: source.clone(),
                            received_at,
                            queued_at_ms: unix_ms(),
                            event: text,
                            only: None,
                        },
                    ));
                }
            }
        }
    }
    let count = |result: &str, n: u64| {
        app.metrics
            .received
            .with_label_values(&[source.as_str(), result])
            .inc_by(n)
    };
    count("rejected", refused.len() as u64);
    count("duplicate", duplicates);
    let queued = accepted.len();
    if queued > 0
        && let Err(refusal) = app.enqueue(&source, accepted).await
    {
        return refusal;
    }
    let status = if queued == 0 && duplicates == 0 && !refused.is_empty() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::ACCEPTED
    };
    (
        status,
        axum::Json(json!({"accepted": queued, "duplicates": duplicates, "rejected": refused})),
    )
        .into_response()
}
