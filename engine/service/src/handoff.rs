//! Events parsed at ingestion, handed to delivery so that the planner does not parse them again.
//!
//! `POST /v1/events` parses and validates every event before it queues it; the planner, a few
//! milliseconds later, would parse the stored text once more, on the path of every event of its
//! round (BENCHMARKS.md, issue 13 rounds five and six: a fifth of `serve`'s instructions per
//! event; taking it out shortens the e2e p99 latency by a fifth, while CPU time per event stays
//! within the noise, the kept events having gone cold in memory). Ingestion puts each valid event
//! here, keyed by the text it stores and its `received_at` (all that the planner's parse reads);
//! the planner takes it back out and parses only when it is not here. What the planner gets is the
//! same either way: the key is the stored text itself, compared whole, not a hash of it, and
//! normalising is idempotent (the stored text of an event parses to the event it was made from).
//!
//! The durable queue stays the only source of truth. This is a bounded cache in memory
//! ([`CAPACITY`] events; when it is full, the events least likely to be claimed soon are evicted),
//! lost on a restart; on a node whose events another node plans (NATS) it only ever misses.

use quick_cache::Equivalent;
use quick_cache::sync::Cache;
use switchyard_core::event::SourceEvent;

/// At most this many parsed events are kept: at ~3 KB each (the parsed form of a 430-byte
/// event), about 25 MB. Ingestion runs ahead of the planner by about one round
/// (`server.round_events`, 5,000 by default) under a steady load; beyond that the planner parses.
pub const CAPACITY: usize = 8_192;

/// Parsed events by the text stored for them: ingestion puts, the planner takes.
pub struct ParsedEvents {
    cache: Cache<Key, SourceEvent>,
}

#[derive(Hash, PartialEq, Eq, Clone)]
struct Key {
    received_at: i64,
    text: Box<str>,
}

/// A [`Key`] borrowed: hashes as a `Key` with the same fields does (derived `Hash` feeds the
/// fields in order, and `Box<str>` hashes as `str`).
#[derive(Hash)]
struct Probe<'a> {
    received_at: i64,
    text: &'a str,
}

impl Equivalent<Key> for Probe<'_> {
    fn equivalent(&self, key: &Key) -> bool {
        self.received_at == key.received_at && self.text == &*key.text
    }
}

impl Default for ParsedEvents {
    fn default() -> Self {
        Self::with_capacity(CAPACITY)
    }
}

impl ParsedEvents {
    /// A handoff of at most `capacity` events.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            cache: Cache::new(capacity),
        }
    }

    /// Keeps `event`, parsed from `text` with `received_at`, for the planner. `text` is what is
    /// stored for the event (its input text, or the normalised event serialized).
    pub fn put(&self, text: &str, received_at: i64, event: SourceEvent) {
        let key = Key {
            received_at,
            text: text.into(),
        };
        self.cache.insert(key, event);
    }

    /// The event parsed from `text` with `received_at`, when ingestion kept it (once: it is
    /// removed).
    pub fn take(&self, text: &str, received_at: i64) -> Option<SourceEvent> {
        let probe = Probe { received_at, text };
        self.cache.remove(&probe).map(|(_, event)| event)
    }

    /// How many events are kept now.
    pub fn len(&self) -> usize {
        self.cache.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cache.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"{"event_name":"Placed Order","event_id":"o-1","timestamp":1700000000,"properties":{},"profile_properties":{},"aliases":["urn:email:a@b.c"]}"#;

    fn parsed(text: &str, received_at: i64) -> SourceEvent {
        SourceEvent::from_json(text, received_at).expect("valid")
    }

    #[test]
    fn an_event_is_taken_once_by_its_text_and_received_at() {
        let handoff = ParsedEvents::default();
        handoff.put(TEXT, 5, parsed(TEXT, 5));
        assert!(handoff.take(TEXT, 6).is_none(), "another received_at");
        let other = TEXT.replace("o-1", "o-2");
        assert!(handoff.take(&other, 5).is_none(), "another text");
        assert_eq!(handoff.take(TEXT, 5), Some(parsed(TEXT, 5)));
        assert!(handoff.take(TEXT, 5).is_none(), "taken once");
        assert!(handoff.is_empty());
    }

    #[test]
    fn it_keeps_at_most_its_capacity() {
        let handoff = ParsedEvents::with_capacity(100);
        for i in 0..1_000 {
            let text = TEXT.replace("o-1", &format!("o-{i}"));
            handoff.put(&text, 5, parsed(&text, 5));
        }
        assert!(handoff.len() <= 100, "kept {}", handoff.len());
        let last = TEXT.replace("o-1", "o-999");
        assert!(handoff.take(&last, 5).is_some(), "the newest is kept");
    }

    #[test]
    fn the_stored_text_of_a_normalised_event_parses_to_the_event() {
        // What ingestion stores when it had to normalise (here: a camelCase name, a timestamp
        // as a date): the planner's parse of that text gives what the handoff holds.
        let input = r#"{"eventName":"Viewed Product","eventID":"v-1","timestamp":"2024-09-02T12:00:00Z","properties":{"price":12.5},"profileProperties":{},"aliases":["urn:email:a@b.c"]}"#;
        let mut event = SourceEvent::from_json_keeping_text(input, 5).expect("valid");
        let stored = event.take_json_text();
        assert_ne!(stored, input, "normalised");
        assert_eq!(
            SourceEvent::from_json(&stored, 5).expect("valid"),
            event,
            "idempotent"
        );
    }
}
