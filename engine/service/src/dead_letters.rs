//! The dead letters of a queue, whoever asks (the `dead-letters` commands on a stopped service, the
//! admin API on a running one): listed as JSON, queued again to their destination, or dropped for
//! good by a [`DeadLetterFilter`].

use crate::clock::{unix_ms, unix_now};
use serde_json::{Value, json};
use switchyard_queue::{DeadLetter, EventQueue, QueueError, Record};

/// Which dead letters: every condition given must hold (none given: none match).
#[derive(Debug, Clone, Default)]
pub struct DeadLetterFilter {
    /// These ids (as `dead-letters list` prints them).
    pub ids: Vec<u64>,
    /// This destination's.
    pub destination: Option<String>,
    /// Given up on at least this many seconds ago.
    pub older_than_secs: Option<u64>,
}

impl DeadLetterFilter {
    /// Whether the filter names anything at all (an empty filter would take everything).
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty() && self.destination.is_none() && self.older_than_secs.is_none()
    }

    /// Whether dead letter `id` matches, `now` being unix seconds.
    pub fn matches(&self, id: u64, letter: &DeadLetter, now: i64) -> bool {
        self.matches_parts(id, &letter.destination, letter.at, now)
    }

    /// Whether dead letter `id` of `destination`, given up on `at` (unix seconds), matches.
    pub fn matches_parts(&self, id: u64, destination: &str, at: i64, now: i64) -> bool {
        let old_enough = |secs: u64| now.saturating_sub(at) >= secs as i64;
        !self.is_empty()
            && (self.ids.is_empty() || self.ids.contains(&id))
            && self.destination.as_ref().is_none_or(|d| d == destination)
            && self.older_than_secs.is_none_or(old_enough)
    }
}

/// One dead letter as `dead-letters list` and `GET /admin/dead-letters` show it: id, destination,
/// reason, at (unix seconds), source, event (as JSON; as a string when it is not).
pub fn to_json(id: u64, letter: &DeadLetter) -> Value {
    let event: Value = serde_json::from_str(&letter.record.event)
        .unwrap_or_else(|_| letter.record.event.clone().into());
    json!({"id": id, "destination": letter.destination, "reason": letter.reason, "at": letter.at,
        "source": letter.record.source, "event": event})
}

/// The dead letters that `filter` matches; every one when it is empty and `all_when_empty`.
pub async fn matching(
    queue: &dyn EventQueue,
    filter: &DeadLetterFilter,
    all_when_empty: bool,
) -> Result<Vec<(u64, DeadLetter)>, QueueError> {
    let now = unix_now();
    Ok(queue
        .dead_letters()
        .await?
        .into_iter()
        .filter(|(id, l)| (all_when_empty && filter.is_empty()) || filter.matches(*id, l, now))
        .collect())
}

/// Queues `letters` again (each to its destination only) and removes them from the dead letters;
/// delivery sends them (those that fail again become dead letters again). Returns how many.
pub async fn requeue(
    queue: &dyn EventQueue,
    letters: &[(u64, DeadLetter)],
) -> Result<usize, QueueError> {
    if letters.is_empty() {
        return Ok(0);
    }
    let now = unix_ms();
    let records = letters
        .iter()
        .map(|(_, l)| Record {
            queued_at_ms: now,
            ..l.record.clone()
        })
        .collect();
    queue.append(records).await?;
    queue
        .remove_dead_letters(letters.iter().map(|(id, _)| *id).collect())
        .await?;
    Ok(letters.len())
}

/// Drops `letters` for good; returns how many.
pub async fn remove(
    queue: &dyn EventQueue,
    letters: &[(u64, DeadLetter)],
) -> Result<usize, QueueError> {
    if letters.is_empty() {
        return Ok(0);
    }
    queue
        .remove_dead_letters(letters.iter().map(|(id, _)| *id).collect())
        .await?;
    Ok(letters.len())
}
