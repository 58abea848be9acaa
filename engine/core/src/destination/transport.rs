//! How a destination plugin sends one request body to its platform, and the answer in the generic
//! terms delivery works with: delivered; worth another try (after how long, when the platform
//! says); refused for good; this destination's access refused (every request will fail the same
//! way); some events refused, each by its index in the body's events; or refused because of an
//! event the platform did not name. Delivery owns the retries, rate and concurrency limits, and
//! what to do with the rest of a body when some of its events are refused; a transport sends once
//! and classifies.
//!
//! Delivery serializes each event object once, when its round is planned ([`EventText`]), and a
//! [`RequestBody`] is the text of the request, made once from those and sent as it is on every
//! try; it knows where each event lies in it, so the events of a refused body are taken back out
//! of it, not kept twice.

use crate::json_text;
use crate::rules::payload::Payload;
use serde::de::IgnoredAny;
use serde_json::{Map, Value};
use std::future::Future;
use std::ops::Range;
use std::pin::Pin;
use std::time::Duration;

/// A send in progress.
pub type Sending<'a> = Pin<Box<dyn Future<Output = Result<(), SendError>> + Send + 'a>>;

/// Sends request bodies built by [`super::DestinationPlugin::serialized_body`].
pub trait Transport: Send + Sync {
    /// Sends one body, once.
    fn send<'a>(&'a self, body: &'a RequestBody) -> Sending<'a>;

    /// The platform's answer code that a reason of this transport's [`SendError`]s carries in its
    /// words (TikTok's `40002`), for whoever shows it as a field of its own; `None` when it
    /// carries none (the default).
    fn code_in(&self, _reason: &str) -> Option<i64> {
        None
    }
}

/// One event object of a request, serialized: the JSON text of one value, with no whitespace around
/// it. It is only made by writing a payload, or from a text that parses, so it always holds one
/// JSON value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventText(String);

impl EventText {
    /// The payload's JSON text ([`Payload::write_json`]).
    pub fn of_payload(payload: &Payload<'_>) -> serde_json::Result<Self> {
        json_text::text(|out| payload.write_json(out)).map(Self)
    }

    /// `text` when it is one JSON value (with nothing but whitespace around it, which is left
    /// out).
    pub fn parsed(text: &str) -> serde_json::Result<Self> {
        serde_json::from_str::<IgnoredAny>(text)?;
        // JSON's whitespace is ASCII.
        Ok(Self(text.trim_ascii().to_owned()))
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a request body holds beside its events: an object with these fields, and the events as an
/// array under `events_key` (after the fields). Bodies never hold secrets: those travel in headers.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    pub fields: Map<String, Value>,
    pub events_key: &'static str,
}

/// The JSON text of one request, and where each of its events lies in it (in the order they were
/// given).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestBody {
    text: String,
    events: Vec<Range<usize>>,
}

impl RequestBody {
    /// The body `{<fields>, "<events_key>": [<events>]}` of `envelope`, carrying `events`.
    pub fn new(envelope: &Envelope, events: &[EventText]) -> Self {
        let size: usize = events.iter().map(|e| e.as_str().len() + 1).sum();
        // `{...}` of the fields (a map of JSON values always serializes), reopened.
        let mut text = Value::Object(envelope.fields.clone()).to_string();
        text.reserve(size + envelope.events_key.len() + 8);
        text.pop();
        if !envelope.fields.is_empty() {
            text.push(',');
        }
        text.push_str(&Value::from(envelope.events_key).to_string());
        text.push_str(":[");
        let mut ranges = Vec::with_capacity(events.len());
        for (i, event) in events.iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            let start = text.len();
            text.push_str(event.as_str());
            ranges.push(start..text.len());
        }
        text.push_str("]}");
        Self::from_parts(text, ranges)
    }

    /// A body laid out by its destination: its text, and the byte range of each event in it.
    pub fn from_parts(text: String, events: Vec<Range<usize>>) -> Self {
        Self { text, events }
    }

    /// The JSON text to send.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// How many events it carries.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Its events, taken back out of it (to send some of them again); `None` when a range does
    /// not hold a JSON value of the text (a body laid out wrongly: a bug of its destination).
    pub fn take_events(self) -> Option<Vec<EventText>> {
        self.events
            .into_iter()
            .map(|r| {
                let text = self.text.get(r)?;
                EventText::parsed(text).ok()
            })
            .collect()
    }
}

/// Why a request was not (wholly) delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Worth trying again: after `retry_after` when the platform said so.
    #[error("{reason}")]
    Retryable {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// Trying again will not help (bad parameters): the body's events go to the dead letters.
    #[error("{reason}")]
    Permanent { reason: String },
    /// The platform refuses this destination itself (a bad access token, no permission on the
    /// account): permanent for the body, and every later request will fail the same way until the
    /// destination's config changes, so delivery reports it loudly.
    #[error("{reason}")]
    Denied { reason: String },
    /// The platform refused some of the body's events for good, each named by its index in the
    /// body's events (the order they were given to `request_body`) with the platform's reason;
    /// `others` says what became of the events it did not name.
    #[error("{} events refused", refused.len())]
    Refused {
        refused: Vec<Refusal>,
        others: Others,
    },
    /// The platform refused the whole body because of some event in it, without saying which:
    /// delivery splits the body to find it.
    #[error("{reason}")]
    Unattributed { reason: String },
}

/// One event refused for good: its index in the body's events, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub index: usize,
    pub reason: String,
}

/// What became of the events of a body that an answer did not refuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Others {
    /// They were delivered (a partial success).
    Delivered,
    /// They were not processed (the platform fails a body for one bad event): send them again.
    NotSent,
}

/// Why a transport could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// A secret that sending needs is not set (its variable's name, never its value).
    #[error("the environment variable {0} is not set")]
    MissingSecret(String),
    #[error("cannot build the HTTP client")]
    Http(#[source] Box<dyn std::error::Error + Send + Sync>),
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn texts(values: &[Value]) -> Vec<EventText> {
        values
            .iter()
            .map(|v| EventText::of_payload(&Payload::Ref(v)).unwrap())
            .collect()
    }

    #[test]
    fn a_body_is_its_envelope_with_the_events_and_gives_them_back() {
        let mut fields = Map::new();
        fields.insert("event_source".into(), "web".into());
        fields.insert("event_source_id".into(), "P\"1".into());
        let envelope = Envelope {
            fields,
            events_key: "data",
        };
        let events = [json!({"event": "A", "n": 1.5}), json!({"event": "B\n"})];
        let body = RequestBody::new(&envelope, &texts(&events));
        let sent: Value = serde_json::from_str(body.text()).unwrap();
        let expected =
            json!({"event_source": "web", "event_source_id": "P\"1", "data": events.clone()});
        assert_eq!(sent, expected);
        assert_eq!(body.len(), 2);
        let back: Vec<Value> = body
            .take_events()
            .unwrap()
            .iter()
            .map(|t| serde_json::from_str(t.as_str()).unwrap())
            .collect();
        assert_eq!(back, events);
        // No fields, no events.
        let bare = Envelope {
            fields: Map::new(),
            events_key: "events",
        };
        let body = RequestBody::new(&bare, &[]);
        assert_eq!(body.text(), r#"{"events":[]}"#);
        assert!(body.is_empty());
        assert_eq!(body.take_events().map(|e| e.len()), Some(0));
    }

    #[test]
    fn a_body_laid_out_wrongly_gives_nothing_back() {
        let text = r#"[{"a":1}]"#.to_owned();
        assert!(
            RequestBody::from_parts(text.clone(), std::iter::once(1..8).collect())
                .take_events()
                .is_some()
        );
        // A whole value with whitespace around it: given back without it.
        let spaced = RequestBody::from_parts(" [ 1 ] ".to_owned(), vec![0..7, 2..4]);
        let back = spaced.take_events().expect("values");
        assert_eq!(back[0].as_str(), "[ 1 ]");
        assert_eq!(back[1].as_str(), "1");
        // Part of a value; a value and what follows it; out of the text.
        for wrong in [0..1, 1..7, 1..9, 5..100] {
            let body =
                RequestBody::from_parts(text.clone(), std::iter::once(wrong.clone()).collect());
            assert!(body.take_events().is_none(), "{wrong:?}");
        }
    }
}
