//! `POST /v1/events`: events from a shop's server. Authenticates the source by its write key
//! (`X-Webhook-Token`), takes JSON only (one event or an array), validates every event with a
//! precise reason, skips ids already queued within the de-duplication window (or earlier in the
//! request, or by a concurrent request: then once that copy is stored), refuses events whose time
//! lies outside `server.max_event_age_hours` / `max_event_ahead_secs`, and answers **202 only
//! once the accepted events are durably queued**. A full queue answers 503 with `Retry-After` and
//! keeps nothing of the request; an unstored event is never acknowledged.

use super::app::{App, body, error, read_json};
use crate::clock::{unix_ms, unix_now};
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use std::sync::Arc;
use switchyard_core::event::{MAX_IDENTIFIER_BYTES, SourceEvent};
use switchyard_queue::{Queued, Record};

/// The events of one request, sorted: the valid ones (with their ids), and refusals with reasons.
#[derive(Default)]
struct Sorted {
    valid: Vec<(String, Record)>,
    refused: Vec<Value>,
}

pub async fn ingest(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    request: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body(request) {
        Ok(body) => body,
        Err((status, message)) => return error(status, message),
    };
    let live = app.live();
    let Some(source) = headers
        .get("x-webhook-token")
        .and_then(|v| v.to_str().ok())
        .and_then(|key| live.keys.get(key))
        .cloned()
    else {
        return error(
            StatusCode::UNAUTHORIZED,
            "missing or unknown X-Webhook-Token (a source's write key)",
        );
    };
    let items = match read_items(&app, &headers, &body) {
        Ok(items) => items,
        Err((status, message)) => return error(status, message),
    };
    let sorted = sort(&app, &source, items);
    app.metrics
        .received
        .with_label_values(&[source.as_str(), "rejected"])
        .inc_by(sorted.refused.len() as u64);
    let mut done = Queued::default();
    if !sorted.valid.is_empty() {
        match app.enqueue(&source, sorted.valid).await {
            Ok(q) => done = q,
            Err(refusal) => return refusal,
        }
    }
    let status = if done.queued == 0 && done.duplicates == 0 && !sorted.refused.is_empty() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::ACCEPTED
    };
    let answer =
        json!({"accepted": done.queued, "duplicates": done.duplicates, "rejected": sorted.refused});
    (status, axum::Json(answer)).into_response()
}

/// The request's events, each as the JSON text it came as: one object or an array of them. The
/// body is read once (an array straight into its items' texts); each event is parsed once, by
/// [`sort`]; an event already in normalised form is stored as it came.
fn read_items<'b>(
    app: &App,
    headers: &HeaderMap,
    body: &'b [u8],
) -> Result<Vec<&'b RawValue>, (StatusCode, String)> {
    const TYPES: &[&str] = &["application/json"];
    const HINT: &str = "send JSON, with Content-Type: application/json";
    let not_events = || {
        (
            StatusCode::BAD_REQUEST,
            "the body must be an event (an object) or an array of events".to_owned(),
        )
    };
    if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return read_json(app, headers, body, TYPES, HINT);
    }
    let one: &RawValue = read_json(app, headers, body, TYPES, HINT)?;
    match one.get().as_bytes().first() {
        Some(b'{') => Ok(vec![one]),
        _ => Err(not_events()),
    }
}

/// Validates each event and sorts it: valid (to be queued unless a duplicate), or refused with
/// the reason. Each valid event, parsed, is left for delivery ([`crate::handoff`]).
fn sort(app: &App, source: &str, items: Vec<&RawValue>) -> Sorted {
    let received_at = unix_now();
    let live = app.live();
    let parsed = app.deliverer.parsed();
    let mut sorted = Sorted::default();
    for (index, item) in items.into_iter().enumerate() {
        let checked = SourceEvent::from_json_keeping_text(item.get(), received_at)
            .and_then(|event| live.window.check(&event, received_at).map(|()| event));
        let mut event = match checked {
            Ok(event) => event,
            Err(e) => {
                let id = serde_json::from_str(item.get())
                    .ok()
                    .and_then(|v| claimed_id(&v));
                sorted.refused.push(refusal(index, id, e.to_string()));
                continue;
            }
        };
        let id = event.id().to_owned();
        let record = Record {
            source: source.to_owned(),
            received_at,
            queued_at_ms: unix_ms(),
            // The text as it came when it is already the normalised event: moved, not copied.
            event: event.take_json_text(),
            only: None,
        };
        // Delivery's planner takes it from there instead of parsing the stored text again.
        parsed.put(&record.event, received_at, event);
        sorted.valid.push((id, record));
    }
    sorted
}

/// The `event_id` of a (maybe invalid) event, in any accepted spelling, to name it in a refusal
/// (not when it is longer than an id may be: the refusal says so, without echoing it).
fn claimed_id(event: &Value) -> Option<String> {
    ["event_id", "eventID", "eventId"]
        .iter()
        .find_map(|k| event.get(*k)?.as_str())
        .filter(|id| id.len() <= MAX_IDENTIFIER_BYTES)
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
