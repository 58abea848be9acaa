//! `POST /v1/events`: events from a shop's server. Authenticates the source by its write key
//! (`X-Webhook-Token`), takes JSON only (one event or an array), validates every event with a
//! precise reason, skips ids already queued within the de-duplication window (or earlier in the
//! request, or by a concurrent request: then once that copy is stored), refuses events whose time
//! lies outside `server.max_event_age_hours` / `max_event_ahead_secs`, and answers **202 only
//! once the accepted events are durably queued**. A full queue answers 503 with `Retry-After` and
//! keeps nothing of the request; an unstored event is never acknowledged.

use super::app::{App, body, check_json_request, error, parse_json_body};
use crate::clock::{unix_ms, unix_now};
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use std::sync::Arc;
use switchyard_core::event::{self, EventError, MAX_IDENTIFIER_BYTES, SourceEvent};
use switchyard_core::json_unique::Unique;
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
    let mut refused = sorted.refused;
    let more = refused.len().saturating_sub(MAX_LISTED_REFUSALS);
    refused.truncate(MAX_LISTED_REFUSALS);
    let mut answer =
        json!({"accepted": done.queued, "duplicates": done.duplicates, "rejected": refused});
    if more > 0 {
        answer["rejected_more"] = more.into();
    }
    (status, axum::Json(answer)).into_response()
}

/// Refused events listed one by one in an answer, at most (the first ones); past it, the answer
/// says how many more (`rejected_more`), so that a body of many small invalid items cannot make
/// an answer many times its size.
pub const MAX_LISTED_REFUSALS: usize = 1000;

/// One event of a request: the JSON text it came as, and that text parsed (each event is parsed
/// once, here), or why it does not parse (too deep, a lone surrogate, a number out of range: JSON
/// that the whole read takes, refused for this event alone).
type Item<'b> = (&'b str, Result<Value, EventError>);

/// The request's events: one object or an array of them. An array of valid JSON is read in one
/// pass, each event parsed straight from the body ([`parse_array`]); anything else is read as
/// before, whole ([`parse_json_body`]), for its precise error. An event already in normalised form is
/// stored as it came.
fn read_items<'b>(
    app: &App,
    headers: &HeaderMap,
    body: &'b [u8],
) -> Result<Vec<Item<'b>>, (StatusCode, String)> {
    const TYPES: &[&str] = &["application/json"];
    const HINT: &str = "send JSON, with Content-Type: application/json";
    let not_events = || {
        (
            StatusCode::BAD_REQUEST,
            "the body must be an event (an object) or an array of events".to_owned(),
        )
    };
    check_json_request(app, headers, TYPES, HINT)?;
    let body = super::app::without_bom(body);
    let array = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    if array {
        if let Some(items) = std::str::from_utf8(body).ok().and_then(parse_array) {
            return Ok(items);
        }
        return read_array_whole(body);
    }
    let one: &RawValue = parse_json_body(body)?;
    match one.get().as_bytes().first() {
        Some(b'{') => Ok(vec![parse_item(one.get())]),
        _ => Err(not_events()),
    }
}

/// An array body read whole: each item's text (`RawValue`) and that text parsed, or the `400`
/// that says where the body is not JSON.
fn read_array_whole(body: &[u8]) -> Result<Vec<Item<'_>>, (StatusCode, String)> {
    let raw: Vec<&RawValue> = parse_json_body(body)?;
    Ok(raw.into_iter().map(|r| parse_item(r.get())).collect())
}

/// One event's text (JSON, as the whole read found it) and its parse.
fn parse_item(text: &str) -> Item<'_> {
    (text, event::parse_json(text))
}

/// The items of `body`, a JSON array, each with its text exactly as in the body (as
/// `serde_json`'s `RawValue` gives it) and parsed in the same pass; `None` when `body` is not one
/// JSON array, is not valid JSON (its error is then [`parse_json_body`]'s), or has an item that does
/// not parse into a `Value` (nested over 127 levels, a lone surrogate, a number out of range, a
/// key given twice: the whole read then refuses that item alone).
fn parse_array(body: &str) -> Option<Vec<Item<'_>>> {
    /// Where the JSON whitespace from `at` ends.
    fn skip_space(text: &str, at: usize) -> Option<usize> {
        let rest = text.get(at..)?;
        Some(
            text.len()
                - rest
                    .trim_start_matches(switchyard_core::text::JSON_SPACE)
                    .len(),
        )
    }
    let mut at = skip_space(body, 0)?;
    if body.as_bytes().get(at) != Some(&b'[') {
        return None;
    }
    let mut items = Vec::new();
    at = skip_space(body, at + 1)?;
    if body.as_bytes().get(at) == Some(&b']') {
        return (skip_space(body, at + 1)? == body.len()).then_some(items);
    }
    loop {
        let rest = body.get(at..)?;
        let mut stream = serde_json::Deserializer::from_str(rest).into_iter::<Unique>();
        let Unique(value) = stream.next()?.ok()?;
        let end = at + stream.byte_offset();
        items.push((body.get(at..end)?, Ok(value)));
        at = skip_space(body, end)?;
        match body.as_bytes().get(at) {
            Some(b',') => at = skip_space(body, at + 1)?,
            Some(b']') => return (skip_space(body, at + 1)? == body.len()).then_some(items),
            _ => return None,
        }
    }
}

/// Validates each event and sorts it: valid (to be queued unless a duplicate), or refused with
/// the reason. Each valid event, parsed, is left for delivery ([`crate::handoff`]).
fn sort(app: &App, source: &str, items: Vec<Item<'_>>) -> Sorted {
    let received_at = unix_now();
    let live = app.live();
    let parsed = app.deliverer.parsed();
    let mut sorted = Sorted::default();
    for (index, (text, value)) in items.into_iter().enumerate() {
        let checked = value
            .and_then(|value| SourceEvent::from_value_keeping_text(value, text, received_at))
            .and_then(|event| live.admits(source, &event, received_at).map(|()| event));
        let mut event = match checked {
            Ok(event) => event,
            Err(e) => {
                // Parsed again, only to name the event in its refusal.
                let id = serde_json::from_str(text).ok().and_then(|v| claimed_id(&v));
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

#[cfg(test)]
mod tests {
    use super::*;

    /// What reading the body whole gives ([`read_array_whole`]), without its error.
    fn read_whole(body: &str) -> Option<Vec<Item<'_>>> {
        read_array_whole(body.as_bytes()).ok()
    }

    #[test]
    fn an_array_is_read_in_one_pass_as_reading_it_whole_reads_it() {
        let bodies = [
            "[]",
            " \n[ ]\r\n",
            r#"[{"event_name":"Viewed Product","event_id":"a"}]"#,
            "[ {\"a\": [1, {\"b\": \"],{\\\"\"}]} ,\n\t{\"c\" : -1.5e3} , 7 , \"x\" ,null,true,[] ] \n",
            r#"[{"s":"é \u00e9 \ud83d\ude00 \\ \/"},{"n":12345678901234567890}]"#,
            r#"[1,2.0,-0,1e-7,{"k":{}}]"#,
        ];
        for body in bodies {
            let whole = read_whole(body).expect(body);
            let one_pass = parse_array(body).expect(body);
            assert_eq!(one_pass, whole, "{body}");
        }
    }

    #[test]
    fn what_is_not_one_valid_array_is_left_to_the_whole_read_for_its_error() {
        let bodies = [
            "",
            "[",
            "]",
            "[,]",
            "[1,]",
            "[,1]",
            "[1 2]",
            "[{}{}]",
            "[1],",
            "[1] x",
            "[1][2]",
            "[]]",
            "[\"a]",
            "[{\"a\":}]",
            "[01]",
            "[1.]",
            "{}",
            "\u{feff}[]",
            "[\u{c}1]",
        ];
        for body in bodies {
            assert_eq!(parse_array(body), None, "{body:?}");
            assert!(
                read_whole(body).is_none() || !body.trim_start().starts_with('['),
                "{body:?} is an array the one pass should have read"
            );
        }
    }

    #[test]
    fn each_item_may_nest_as_deep_as_one_event_and_what_does_not_parse_is_refused_alone() {
        let nested = |levels: usize| format!("{}{}", "[".repeat(levels), "]".repeat(levels));
        // An item of 127 levels: as deep as an event sent alone may be.
        assert!(serde_json::from_str::<Value>(&nested(127)).is_ok());
        let body = format!("[{}]", nested(127));
        let items = parse_array(&body).unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].0, nested(127));
        // JSON that does not parse into a `Value` (one level more; a lone surrogate; a number out
        // of range) is left to the whole read, which takes the body and refuses that item alone.
        for bad in [nested(128), r#""\ud800""#.to_owned(), "1e400".to_owned()] {
            assert!(serde_json::from_str::<Value>(&bad).is_err(), "{bad}");
            let body = format!("[{{\"a\":1}}, {bad}]");
            assert_eq!(parse_array(&body), None, "{bad}");
            let whole = read_whole(&body).unwrap();
            assert!(whole[0].1.is_ok() && whole[1].1.is_err(), "{bad}");
        }
    }
}
