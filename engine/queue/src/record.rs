//! What the queue stores: an accepted event with where it came from, and a dead letter. Stored
//! with postcard (compact binary serde): the event's JSON text is kept as raw bytes, not escaped
//! into another JSON document.

use crate::QueueError;
use serde::{Deserialize, Serialize};

/// One accepted source event, as queued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The source it came from.
    pub source: String,
    /// When it was received, unix seconds (its timestamp when it carries none).
    pub received_at: i64,
    /// When it was queued, unix milliseconds (delivery latency is measured from here).
    pub queued_at_ms: i64,
    /// The event, as JSON text.
    pub event: String,
    /// Deliver to this destination only (a dead letter re-driven); every destination when `None`.
    pub only: Option<String>,
}

/// The destination name of a dead letter that concerns every destination (the event is invalid,
/// a plugin of the config's `transforms` failed on it before any destination saw it, or the
/// stored record itself is unreadable).
pub const EVERY_DESTINATION: &str = "*";

/// An event a destination could not deliver, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub destination: String,
    pub reason: String,
    /// Unix seconds when it was given up on.
    pub at: i64,
    pub record: Record,
}

/// A record or dead letter in its stored form.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, QueueError> {
    // Measured first (a walk that copies nothing), so the buffer is allocated once: a record of
    // a few hundred bytes grown from empty was reallocated and copied ~7 times.
    let failed = |e| QueueError::Record("cannot be encoded", e);
    let size = postcard::serialize_with_flavor(value, postcard::ser_flavors::Size::default())
        .map_err(failed)?;
    postcard::to_extend(value, Vec::with_capacity(size)).map_err(failed)
}

/// A record or dead letter from its stored form.
pub fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, QueueError> {
    postcard::from_bytes(bytes).map_err(|e| QueueError::Record("in the store does not decode", e))
}
