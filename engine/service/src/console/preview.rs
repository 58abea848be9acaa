//! `POST /admin/preview`: what the running config does with one event, without sending or
//! queueing anything. Body `{"event": {...} | "JSON text", "source"?: "name", "destination"?:
//! "name"}`. The event goes through the same steps as `map` (the dry run) and the browser copy
//! of `POST /v1/collect`: [`Pipeline::parse`], [`Pipeline::transform`], [`Pipeline::route`] with
//! both copies; the answer gives per destination its outcome (status, reason, payloads, the
//! requests that would carry them, the pixel calls) and the plugins' log lines.
//!
//! An event given as text that is not JSON, or that breaks the event spec, is refused (422) with
//! the message and, where it can be told, the `line` and `column` of the text where it goes wrong.

use crate::clock::unix_now;
use crate::pipeline::{Copies, InputFate, Pipeline, halt_outcome};
use crate::serve::app::{App, body, error, read_json};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use switchyard_core::event::{EventError, SourceEvent};
use switchyard_core::router::Outcome;
use switchyard_wasm::sandbox::level_name;

/// The body of `POST /admin/preview`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Ask {
    /// The source event: a JSON object, or its JSON text (then errors say their line).
    event: Value,
    /// The source it comes from (default: the config's first source).
    source: Option<String>,
    /// Only this destination (default: every one).
    destination: Option<String>,
}

/// An event refused before routing: the message and where in its text.
struct Refusal {
    message: String,
    line: Option<usize>,
    column: Option<usize>,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut body = json!({"error": self.message});
        if let Some(line) = self.line {
            body["line"] = line.into();
        }
        if let Some(column) = self.column {
            body["column"] = column.into();
        }
        (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response()
    }
}

/// `POST /admin/preview`.
pub async fn preview(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Response {
    let ask = body(raw)
        .and_then(|b| read_json(&app, &headers, &b, &["application/json"], "send JSON"))
        .and_then(|v| {
            serde_json::from_value::<Ask>(v).map_err(|e| {
                let message =
                    format!("{e}: send {{\"event\": {{...}}, \"source\"?, \"destination\"?}}");
                (StatusCode::BAD_REQUEST, message)
            })
        });
    let ask = match ask {
        Ok(ask) => ask,
        Err((status, message)) => return error(status, message),
    };
    // The config running now (a reload replaces it; this request keeps the one it started with).
    let loaded = app.loaded();
    let config = &loaded.config;
    let source = match ask.source {
        Some(s) => s,
        None => match config.sources.first() {
            Some(s) => s.name.clone(),
            None => return error(StatusCode::UNPROCESSABLE_ENTITY, "the config has no source"),
        },
    };
    if !config.sources.iter().any(|s| s.name == source) {
        let known: Vec<&str> = config.sources.iter().map(|s| s.name.as_str()).collect();
        let message = format!(
            "no source is named `{source}` (sources: {})",
            known.join(", ")
        );
        return error(StatusCode::UNPROCESSABLE_ENTITY, message);
    }
    if let Some(d) = &ask.destination
        && loaded.pipeline.destination(d).is_none()
    {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("no destination is named `{d}`"),
        );
    }
    let text = match ask.event {
        Value::String(text) => text,
        other => other.to_string(),
    };
    let work = move || run(&loaded.pipeline, &text, &source, ask.destination.as_deref());
    // Plugins run on the event: off the async threads.
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(answer)) => Json(answer).into_response(),
        Ok(Err(refusal)) => refusal.into_response(),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the preview failed: {e}"),
        ),
    }
}

/// The event `text` from `source` through `pipeline`: the answer, or why it was refused.
fn run(
    pipeline: &Pipeline,
    text: &str,
    source: &str,
    only: Option<&str>,
) -> Result<Value, Refusal> {
    let received_at = unix_now();
    let event = parse(pipeline, text, received_at)?;
    let mut logs = Vec::new();
    let chunk = pipeline.transform(vec![event], received_at, &mut logs);
    let fates = pipeline.route(
        &chunk,
        source,
        Copies::ServerAndBrowser,
        received_at,
        &mut logs,
    );
    let wanted = |o: &Outcome<'_>| only.is_none_or(|d| d == o.destination);
    let mut events = Vec::new();
    for fate in &fates {
        match fate {
            InputFate::Halted(halt) => {
                let (status, reason) = halt_outcome(halt);
                let outcomes = pipeline.not_sent(status, &reason);
                let destinations = outcomes.iter().filter(|o| wanted(o));
                let destinations: Vec<Value> = destinations.map(|o| plain(o)).collect();
                events.push(json!({"destinations": destinations}));
            }
            InputFate::Routed(routed) => {
                for r in routed {
                    let outcomes = r.outcomes.iter().filter(|o| wanted(o));
                    let destinations: Vec<Value> =
                        outcomes.map(|o| described(pipeline, r.event, o)).collect();
                    events.push(json!({
                        "event_id": r.event.id(),
                        "event_name": r.event.name(),
                        "event": r.event.as_value(),
                        "destinations": destinations,
                    }));
                }
            }
        }
    }
    let logs: Vec<Value> = logs
        .iter()
        .map(|(plugin, line)| {
            json!({"plugin": plugin, "level": level_name(line.level), "message": line.message})
        })
        .collect();
    Ok(json!({"source": source, "events": events, "logs": logs}))
}

/// The event in `text`, or where and why it is refused.
fn parse(pipeline: &Pipeline, text: &str, received_at: i64) -> Result<SourceEvent, Refusal> {
    if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(text) {
        return Err(Refusal {
            message: format!("not valid JSON: {e}"),
            line: Some(e.line()),
            column: Some(e.column()),
        });
    }
    pipeline.parse(text, received_at).map_err(|e| {
        let at = field_of(&e).and_then(|f| key_position(text, f));
        let message = match at {
            Some((line, _)) => format!("line {line}: {e}"),
            None => e.to_string(),
        };
        Refusal {
            message,
            line: at.map(|(l, _)| l),
            column: at.map(|(_, c)| c),
        }
    })
}

/// The top-level field an event spec error is about, when it names one that is in the text.
fn field_of(e: &EventError) -> Option<&'static str> {
    match e {
        EventError::WrongType { field, .. } | EventError::Invalid { field, .. } => Some(field),
        EventError::BothSpellings(_, second) => Some(second),
        EventError::NotJson(_)
        | EventError::Unreadable(_)
        | EventError::RepeatedKey(_)
        | EventError::NotObject(_)
        | EventError::Missing(_) => None,
    }
}

/// The line and column (1-based) of the top-level key `"field"` in `text`, in any spelling the
/// event may give it (`eventID` for `event_id`); not a nested field of the same name, nor the
/// name as a value.
fn key_position(text: &str, field: &'static str) -> Option<(usize, usize)> {
    let at = switchyard_core::event::spellings(field)
        .find_map(|key| switchyard_core::json_field::key_offset(text, key))?;
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let column = before.rfind('\n').map_or(at, |n| at - n - 1) + 1;
    Some((line, column))
}

/// An outcome of an event that never reached a destination's mapping.
fn plain(o: &Outcome<'_>) -> Value {
    json!({"destination": o.destination, "status": o.status, "reason": o.reason})
}

/// One destination's outcome: status, reason, payloads, warnings (as `map` prints them), the
/// requests that would carry the payloads, and the pixel calls of the browser copy.
fn described(pipeline: &Pipeline, event: &SourceEvent, o: &Outcome<'_>) -> Value {
    let mut v = match serde_json::to_value(o) {
        Ok(v) => v,
        Err(e) => json!({"status": "failed", "reason": format!("cannot show the outcome: {e}")}),
    };
    v["destination"] = o.destination.into();
    let Some(dest) = pipeline.destination(o.destination) else {
        return v;
    };
    let payloads: Vec<Value> = o.data.iter().map(|d| d.to_value()).collect();
    let requests: Vec<Value> = dest
        .request_bodies(payloads)
        .into_iter()
        .map(|body| dest.plugin().dry_run_request(body))
        .collect();
    v["requests"] = requests.into();
    if let Some(actions) = dest.client_actions(event, o) {
        v["pixel"] = match serde_json::to_value(actions) {
            Ok(calls) => calls,
            Err(e) => json!({"error": format!("the pixel calls do not serialize: {e}")}),
        };
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_is_pointed_at_in_the_spelling_the_event_gave_it() {
        let text = "{\n  \"properties\": {\"event_id\": 1},\n  \"eventID\": 7\n}";
        assert_eq!(key_position(text, "event_id"), Some((3, 3)));
        let snake = "{\"eventID\": 7, \"event_id\": \"x\"}";
        assert_eq!(key_position(snake, "event_id"), Some((1, 16)));
        assert_eq!(
            key_position("{\"a\": {\"timestamp\": 1}}", "timestamp"),
            None
        );
    }
}
