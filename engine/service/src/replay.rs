//! `switchyard replay` and `switchyard dead-letters`: events through the real delivery path (the
//! config's durable queue, pipeline, batching, retries, dead letters), run until the queue is empty,
//! reporting progress as it goes and a summary per destination at the end; and the dead letters
//! listed, retried, or dropped for good.
//!
//! Replay queues a file through the same de-duplication as `serve` (its window and caps): an
//! `event_id` repeated within the file is queued once. Its window starts empty: ids `serve`
//! queued before are not known to it. Re-driven dead letters are not de-duplicated: they are
//! stored events sent again on purpose, to the destination that gave up on them.
//!
//! On NATS JetStream (`server.queue.kind: nats`) these commands work while the nodes run: the
//! command delivers as one more node of the shared consumer until nothing is left to claim, so
//! running nodes may deliver some of what it queued (its summary counts what it delivered), and
//! `replay`'s de-duplication is JetStream's window, shared with the nodes.

use crate::backend::{self, Backend};
use crate::clock::unix_ms;
use crate::config::Loaded;
use crate::dead_letters;
pub use crate::dead_letters::DeadLetterFilter;
use crate::delivery::Deliverer;
use crate::metrics::Metrics;
use crate::serve::ServeError;
use std::io::{BufRead, Write};
use std::sync::Arc;
use std::time::Duration;
use switchyard_core::event::SourceEvent;
use switchyard_queue::{DeadLetter, EventQueue, Queued, Record};
use tokio::sync::Notify;

/// Events appended to the queue per write.
const APPEND_CHUNK: usize = 1000;

/// Told how far delivery is: events settled so far, of how many.
pub type Progress = Arc<dyn Fn(u64, u64) + Send + Sync>;

/// What a run delivered, per destination and status, plus the input lines that were invalid and
/// the events not queued as duplicates.
pub struct DeliverySummary {
    pub invalid: usize,
    pub queued: usize,
    pub duplicates: usize,
    pub per_destination: Vec<(String, Vec<(&'static str, u64)>)>,
}

impl DeliverySummary {
    /// Input lines that were invalid plus events that failed for good (now dead letters): a run
    /// with any is not a success.
    pub fn problems(&self) -> u64 {
        let failed: u64 = self
            .per_destination
            .iter()
            .flat_map(|(_, counts)| counts)
            .filter(|(status, _)| *status == "failed")
            .map(|(_, n)| n)
            .sum();
        self.invalid as u64 + failed
    }
}

impl std::fmt::Display for DeliverySummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} events queued", self.queued)?;
        if self.duplicates > 0 {
            write!(f, ", {} duplicates", self.duplicates)?;
        }
        if self.invalid > 0 {
            write!(f, ", {} invalid lines", self.invalid)?;
        }
        for (dest, counts) in &self.per_destination {
            let count = |status: &str| counts.iter().find(|(s, _)| *s == status).map_or(0, |c| c.1);
            // Sending is counted in the platform's events (an order can make two), what stopped
            // a source event before (a filter, consent, a switched-off destination) in those.
            let sent = ["delivered", "failed"].map(|s| (s, count(s)));
            let stopped = ["filtered", "skipped", "deactivated"].map(|s| (s, count(s)));
            let said = |parts: &[(&str, u64)]| {
                let parts: Vec<String> = parts
                    .iter()
                    .filter(|(_, n)| *n > 0)
                    .map(|(s, n)| format!("{n} {s}"))
                    .collect();
                parts.join(", ")
            };
            let (sent, stopped) = (said(&sent), said(&stopped));
            match (sent.is_empty(), stopped.is_empty()) {
                (true, true) => write!(f, "; {dest}: nothing")?,
                (false, true) => write!(f, "; {dest}: platform events {sent}")?,
                (true, false) => write!(f, "; {dest}: source events {stopped}")?,
                (false, false) => {
                    write!(
                        f,
                        "; {dest}: platform events {sent}; source events {stopped}"
                    )?;
                }
            }
        }
        Ok(())
    }
}

/// The outcomes a summary counts: `delivered` and `failed` in the platform's events (an event a
/// plugin failed on counts once), the others in source events.
const STATUSES: [&str; 5] = ["delivered", "filtered", "skipped", "deactivated", "failed"];

/// Queues NDJSON events from `input` as coming from `source` (an `event_id` once), then delivers
/// everything queued. Invalid lines are reported on `err` with their line number and are not
/// queued.
pub async fn replay(
    loaded: Loaded,
    source: &str,
    input: &mut dyn BufRead,
    err: &mut dyn Write,
    progress: Progress,
) -> Result<DeliverySummary, ServeError> {
    let backend = backend::open(&loaded).await?;
    let mut invalid = 0;
    let mut total = Queued::default();
    let mut chunk = Vec::with_capacity(APPEND_CHUNK);
    let now = unix_ms();
    for (n, line) in input.split(b'\n').enumerate() {
        let line = line.map_err(ServeError::Input)?;
        let line = match replay_line(&line, n) {
            Ok(Some(text)) => text,
            Ok(None) => continue,
            Err(reason) => {
                invalid += 1;
                let _ = writeln!(err, "line {}: {reason}", n + 1);
                continue;
            }
        };
        match SourceEvent::from_json(line, now / 1000) {
            Ok(event) => chunk.push((
                event.id().to_owned(),
                Record {
                    source: source.to_owned(),
                    received_at: now / 1000,
                    queued_at_ms: now,
                    event: event.json_text(),
                    only: None,
                },
            )),
            Err(e) => {
                invalid += 1;
                let _ = writeln!(err, "line {}: {e}", n + 1);
            }
        }
        if chunk.len() == APPEND_CHUNK {
            let q = append(&backend, source, std::mem::take(&mut chunk)).await?;
            total.queued += q.queued;
            total.duplicates += q.duplicates;
        }
    }
    let q = append(&backend, source, chunk).await?;
    let mut summary = deliver_queued(loaded, backend.queue, progress).await?;
    summary.invalid = invalid;
    summary.queued = total.queued + q.queued;
    summary.duplicates = total.duplicates + q.duplicates;
    Ok(summary)
}

/// The text of input line `n` (counted from 0, without its `\n`): `None` when blank (JSON
/// whitespace only), an error when not UTF-8. A byte-order mark opening the file is dropped, as
/// `map` drops it.
fn replay_line(line: &[u8], n: usize) -> Result<Option<&str>, String> {
    let text = std::str::from_utf8(line).map_err(|e| {
        format!(
            "not valid UTF-8 (byte {} is not part of a UTF-8 character)",
            e.valid_up_to() + 1
        )
    })?;
    let text = match n {
        0 => text.strip_prefix('\u{feff}').unwrap_or(text),
        _ => text,
    };
    // Only the end is trimmed, as `map` does: a refusal's column counts from the line's start.
    let text = text.trim_end_matches(switchyard_core::text::JSON_SPACE);
    let blank = switchyard_core::text::trim_json_space(text).is_empty();
    Ok((!blank).then_some(text))
}

/// Queues events once each through the backend's de-duplication.
async fn append(
    backend: &Backend,
    source: &str,
    events: Vec<(String, Record)>,
) -> Result<Queued, ServeError> {
    if events.is_empty() {
        return Ok(Queued::default());
    }
    let queueing = backend.dedup.queue_once(source, events);
    Ok(queueing.await.map_err(|e| backend.dedup_error(e))?)
}

/// Delivers everything in the queue, telling `progress` as it goes; returns the counts.
pub async fn deliver_queued(
    loaded: Loaded,
    queue: Arc<dyn EventQueue>,
    progress: Progress,
) -> Result<DeliverySummary, ServeError> {
    let names: Vec<String> = loaded
        .pipeline
        .destinations()
        .iter()
        .map(|d| d.name().to_owned())
        .collect();
    let metrics = Arc::new(Metrics::new());
    let deliverer = Arc::new(Deliverer::new(
        Arc::new(loaded),
        queue.clone(),
        metrics.clone(),
        Arc::new(Notify::new()),
    )?);
    let (total, _) = queue.depth();
    let watched = queue.clone();
    let told = progress.clone();
    let ticker = tokio::spawn(async move {
        loop {
            let (left, _) = watched.depth();
            told(total.saturating_sub(left), total);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    deliverer.drain().await;
    ticker.abort();
    progress(total, total);
    let per_destination = names
        .into_iter()
        .map(|name| {
            let counts = STATUSES
                .iter()
                .map(|s| (*s, metrics.count(&name, s)))
                .collect();
            (name, counts)
        })
        .collect();
    Ok(DeliverySummary {
        invalid: 0,
        queued: 0,
        duplicates: 0,
        per_destination,
    })
}

/// Writes the dead letters `filter` matches (all, when it names nothing) as JSON lines: id,
/// destination, reason, when, source, event.
pub async fn list_dead_letters(
    loaded: &Loaded,
    filter: &DeadLetterFilter,
    out: &mut dyn Write,
) -> Result<usize, ServeError> {
    let backend = backend::open(loaded).await?;
    let listing = dead_letters::matching(backend.queue.as_ref(), filter, true);
    let letters = listing.await.map_err(|e| backend.error(e))?;
    for (id, l) in &letters {
        writeln!(out, "{}", dead_letters::to_json(*id, l)).map_err(ServeError::Output)?;
    }
    Ok(letters.len())
}

/// Queues the dead letters `filter` matches (all, when it names nothing) again, each to its
/// destination only, and delivers them. Those that fail again become dead letters again.
pub async fn retry_dead_letters(
    loaded: Loaded,
    filter: &DeadLetterFilter,
    progress: Progress,
) -> Result<(usize, DeliverySummary), ServeError> {
    let backend = backend::open(&loaded).await?;
    let queue = backend.queue.clone();
    let store = |e| backend.error(e);
    let letters = dead_letters::matching(queue.as_ref(), filter, true)
        .await
        .map_err(store)?;
    let n = dead_letters::requeue(queue.as_ref(), &letters)
        .await
        .map_err(store)?;
    let summary = deliver_queued(loaded, queue, progress).await?;
    Ok((n, summary))
}

/// Drops, for good, the dead letters `filter` matches, once `confirm` (shown them) agrees; says
/// how many were dropped (0 when none matched or `confirm` declined).
pub async fn drop_dead_letters(
    loaded: &Loaded,
    filter: &DeadLetterFilter,
    confirm: impl FnOnce(&[(u64, DeadLetter)]) -> bool,
) -> Result<usize, ServeError> {
    let backend = backend::open(loaded).await?;
    let queue = backend.queue.clone();
    let store = |e| backend.error(e);
    let matching = dead_letters::matching(queue.as_ref(), filter, false)
        .await
        .map_err(store)?;
    if matching.is_empty() || !confirm(&matching) {
        return Ok(0);
    }
    Ok(dead_letters::remove(queue.as_ref(), &matching)
        .await
        .map_err(store)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_summary_says_in_which_events_it_counts() {
        let summary = |counts: Vec<(&'static str, u64)>| DeliverySummary {
            invalid: 0,
            queued: 18,
            duplicates: 0,
            per_destination: vec![("tiktok".to_owned(), counts)],
        };
        let mixed = summary(vec![("delivered", 16), ("skipped", 2), ("failed", 1)]);
        assert_eq!(
            mixed.to_string(),
            "18 events queued; tiktok: platform events 16 delivered, 1 failed; source events 2 skipped"
        );
        let skipped = summary(vec![("skipped", 18)]);
        assert_eq!(
            skipped.to_string(),
            "18 events queued; tiktok: source events 18 skipped"
        );
        assert_eq!(
            summary(vec![]).to_string(),
            "18 events queued; tiktok: nothing"
        );
    }

    #[test]
    fn replay_lines_are_read_as_map_reads_them() {
        assert_eq!(replay_line(b"\xef\xbb\xbf{}", 0), Ok(Some("{}")));
        assert_eq!(replay_line(b"\xef\xbb\xbf{}", 1), Ok(Some("\u{feff}{}")));
        assert_eq!(replay_line(b" \t\r", 3), Ok(None));
        assert_eq!(replay_line("\u{a0}".as_bytes(), 3), Ok(Some("\u{a0}")));
        assert_eq!(
            replay_line(b"{\"a\":\"\xff\"}", 2),
            Err("not valid UTF-8 (byte 7 is not part of a UTF-8 character)".into())
        );
    }
}
