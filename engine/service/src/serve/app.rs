//! What the HTTP handlers share: the [`App`] state, reading a JSON body, refusing with a JSON
//! error, and queueing accepted events durably (with de-duplication and the wake-up of delivery).

use super::dedup::Dedup;
use crate::config::Loaded;
use crate::metrics::Metrics;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use switchyard_queue::{EventQueue, QueueError, Record};
use tokio::sync::Notify;

/// Seconds a client is asked to wait when the queue is full.
const RETRY_AFTER_FULL: &str = "5";

/// What the handlers share.
pub struct App {
    /// The config, for the browser side's rules.
    pub loaded: Arc<Loaded>,
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

/// A refusal: the status and `{"error": message}`.
pub fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({"error": message.into()}))).into_response()
}

/// The body as JSON, when the service takes requests and the body's type is one of `types`
/// (`hint` says what to send instead); else the status and message that refuse it.
pub fn read_json(
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
    /// The de-duplication window, locked (a poisoned lock is taken over: the window holds no
    /// invariant a panic could break).
    pub fn dedup(&self) -> std::sync::MutexGuard<'_, Dedup> {
        self.dedup.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues records durably, counts them, records their ids for de-duplication and wakes
    /// delivery; or gives the answer that refuses them (503, with `Retry-After` when full).
    pub async fn enqueue(
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
                self.dedup().record(source, ids.iter().map(String::as_str));
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
