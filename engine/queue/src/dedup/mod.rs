//! Queueing at most once per (source, `event_id`) within a window, even when copies of an event
//! arrive at the same moment (a webhook sender retrying while its first request is in flight).
//!
//! [`Dedup`] is what ingestion calls: queue these events unless their ids were queued within the
//! window. [`WindowDedup`] implements it over any [`EventQueue`] with an in-memory [`window`]:
//! a batch claims its new ids (pending) in the same critical section that checks them, appends
//! them, then settles the claim (stored; or forgotten when the append failed). A batch that meets
//! an id another batch is still storing claims nothing and waits for that outcome (at most
//! [`WindowDedup::WAIT`]): so a copy is answered "duplicate" only once the first copy is on
//! disk, and takes over when the first failed. A queue that de-duplicates on its own server (NATS
//! JetStream's message ids, `Nats-Msg-Id`) implements [`Dedup`] with that instead.

pub mod window;

use crate::{EventQueue, QueueError, Record};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::watch;
pub use window::Limits;
use window::{Key, Sorting, Window};

/// What queueing a batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Queued {
    /// Events appended (durably).
    pub queued: usize,
    /// Events not appended: their id was queued within the window, or earlier in the batch.
    pub duplicates: usize,
}

/// Why a batch was not queued. Nothing of it was kept.
#[derive(Debug, thiserror::Error)]
pub enum DedupError {
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// Another copy of one of the events has been being stored for longer than the wait.
    #[error("another copy of one of these events is still being stored after {} ms", .0.as_millis())]
    StillStoring(Duration),
    /// The task that appended the batch ended before it could say how the append went.
    #[error("the append was interrupted")]
    Interrupted(#[source] tokio::task::JoinError),
}

/// A batch being queued: resolves once its new events are durable (or refused).
pub type Queueing = Pin<Box<dyn Future<Output = Result<Queued, DedupError>> + Send>>;

/// Queues events at most once per (source, `event_id`) within a window.
pub trait Dedup: Send + Sync {
    /// Appends those of `events` (each with its `event_id`) from `source` whose ids were not
    /// queued within the window, nor earlier in `events`; says how many were queued and how many
    /// were duplicates. Concurrent calls with the same ids queue each id once; a call answers
    /// only once the copy it counts as the original is durable.
    fn queue_once(&self, source: &str, events: Vec<(String, Record)>) -> Queueing;
}

/// [`Dedup`] with the window in memory, over any queue.
pub struct WindowDedup {
    shared: Arc<Shared>,
}

struct Shared {
    queue: Arc<dyn EventQueue>,
    window: Mutex<Window>,
}

impl WindowDedup {
    /// The longest a batch waits for another copy of one of its events to be stored.
    pub const WAIT: Duration = Duration::from_secs(5);

    pub fn new(queue: Arc<dyn EventQueue>, limits: Limits) -> Self {
        Self {
            shared: Arc::new(Shared {
                queue,
                window: Mutex::new(Window::new(limits)),
            }),
        }
    }

    /// Forgets the ids the window has passed and frees their memory (run it periodically:
    /// otherwise that happens only as new batches arrive).
    pub fn sweep(&self) {
        self.shared.lock().sweep(Instant::now());
    }

    /// Ids remembered, and the bytes counted for them.
    pub fn usage(&self) -> (usize, usize) {
        self.shared.lock().usage()
    }
}

impl Dedup for WindowDedup {
    fn queue_once(&self, source: &str, events: Vec<(String, Record)>) -> Queueing {
        let shared = self.shared.clone();
        let source = source.to_owned();
        Box::pin(async move { shared.queue_once(&source, events).await })
    }
}

/// Claimed ids, until their append settles; dropped unsettled (a panic), they are forgotten.
struct Reservation {
    shared: Arc<Shared>,
    claim: u64,
    keys: Vec<Key>,
    /// Tells batches waiting on these ids that the append has settled.
    settled: watch::Sender<bool>,
    done: bool,
}

impl Reservation {
    fn settle(mut self, stored: bool) {
        self.finish(stored);
    }

    fn finish(&mut self, stored: bool) {
        if !self.done {
            self.done = true;
            self.shared.lock().settle(self.claim, &self.keys, stored);
            self.settled.send_replace(true);
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.finish(false);
    }
}

impl Shared {
    /// The window, locked (a poisoned lock is taken over: a panic cannot leave a half-made entry).
    fn lock(&self) -> MutexGuard<'_, Window> {
        self.window.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn queue_once(
        self: Arc<Self>,
        source: &str,
        events: Vec<(String, Record)>,
    ) -> Result<Queued, DedupError> {
        let (ids, records): (Vec<String>, Vec<Record>) = events.into_iter().unzip();
        let (reservation, fresh) = self.clone().reserve(source, &ids).await?;
        let records: Vec<Record> = records
            .into_iter()
            .zip(fresh)
            .filter_map(|(r, f)| f.then_some(r))
            .collect();
        let queued = records.len();
        let duplicates = ids.len() - queued;
        if records.is_empty() {
            reservation.settle(true);
            return Ok(Queued { queued, duplicates });
        }
        // The append is submitted now and settles in its own task, so that the claim follows
        // what the queue did even when the caller gives up waiting (a client that hangs up).
        let commit = self.queue.append(records);
        let appending = tokio::spawn(async move {
            let result = commit.await;
            reservation.settle(result.is_ok());
            result
        });
        match appending.await {
            Ok(Ok(_)) => Ok(Queued { queued, duplicates }),
            Ok(Err(e)) => Err(e.into()),
            Err(e) => Err(DedupError::Interrupted(e)),
        }
    }

    /// Claims the batch's new ids, waiting while another batch is storing one of them.
    async fn reserve(
        self: Arc<Self>,
        source: &str,
        ids: &[String],
    ) -> Result<(Reservation, Vec<bool>), DedupError> {
        let started = tokio::time::Instant::now();
        let deadline = started + WindowDedup::WAIT;
        loop {
            let (settled, watched) = watch::channel(false);
            let sorting = self.lock().claim(source, ids, &watched, Instant::now());
            match sorting {
                Sorting::Claimed { claim, keys, fresh } => {
                    let shared = self.clone();
                    let done = false;
                    let r = Reservation {
                        shared,
                        claim,
                        keys,
                        settled,
                        done,
                    };
                    return Ok((r, fresh));
                }
                Sorting::Busy(mut other) => {
                    let waited = tokio::time::timeout_at(deadline, other.wait_for(|s| *s)).await;
                    if waited.is_err() {
                        return Err(DedupError::StillStoring(started.elapsed()));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Commit, DeadLetter, DiskQueue};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::sync::Semaphore;

    fn record(id: &str) -> (String, Record) {
        let r = Record {
            source: "web".into(),
            received_at: 1,
            queued_at_ms: 1000,
            event: format!("{{\"event_id\": \"{id}\"}}"),
            only: None,
        };
        (id.to_owned(), r)
    }

    fn limits() -> Limits {
        Limits {
            window: Duration::from_secs(600),
            max_ids: 10_000,
            max_bytes: 1 << 20,
        }
    }

    /// A disk queue whose appends answer once a permit is given each, and fail (storing nothing)
    /// while `fail` is above zero.
    struct Gated {
        inner: DiskQueue,
        gate: Arc<Semaphore>,
        fail: AtomicUsize,
        appends: AtomicUsize,
    }

    impl EventQueue for Gated {
        fn append(&self, records: Vec<Record>) -> Commit<Vec<u64>> {
            self.appends.fetch_add(1, Ordering::SeqCst);
            let gate = self.gate.clone();
            let failing = self
                .fail
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            // The write itself happens at once; its answer waits for the gate.
            let commit = (!failing).then(|| self.inner.append(records));
            Box::pin(async move {
                let _permit = gate.acquire_owned().await;
                match commit {
                    Some(commit) => commit.await,
                    None => Err(QueueError::Full {
                        used: 9,
                        dead_letters: 0,
                        budget: 9,
                    }),
                }
            })
        }
        fn claim(&self, max: usize, linger: Duration) -> crate::Reading<Vec<(u64, Record)>> {
            self.inner.claim(max, linger)
        }
        fn release(&self, ids: Vec<u64>) {
            self.inner.release(ids)
        }
        fn ack(&self, ids: Vec<u64>) -> Commit<()> {
            self.inner.ack(ids)
        }
        fn depth(&self) -> (u64, u64) {
            self.inner.depth()
        }
        fn dead_letter(&self, letters: Vec<DeadLetter>) -> Commit<()> {
            self.inner.dead_letter(letters)
        }
        fn dead_letters(&self) -> crate::Reading<Vec<(u64, DeadLetter)>> {
            self.inner.dead_letters()
        }
        fn remove_dead_letters(&self, ids: Vec<u64>) -> Commit<()> {
            self.inner.remove_dead_letters(ids)
        }
    }

    fn gated(dir: &std::path::Path, fail: usize) -> Arc<Gated> {
        Arc::new(Gated {
            inner: DiskQueue::open(dir, 1 << 20).unwrap(),
            gate: Arc::new(Semaphore::new(0)),
            fail: AtomicUsize::new(fail),
            appends: AtomicUsize::new(0),
        })
    }

    /// Waits until `n` appends were submitted.
    async fn appends(queue: &Gated, n: usize) {
        while queue.appends.load(Ordering::SeqCst) < n {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_copies_of_a_batch_are_queued_once() {
        let dir = tempfile::tempdir().unwrap();
        let queue = Arc::new(DiskQueue::open(dir.path(), 64 << 20).unwrap());
        let dedup = Arc::new(WindowDedup::new(queue.clone(), limits()));
        let mut tasks = Vec::new();
        for _copy in 0..6 {
            for batch in 0..40 {
                let dedup = dedup.clone();
                let events = (0..100)
                    .map(|i| record(&format!("e-{batch}-{i}")))
                    .collect();
                tasks.push(tokio::spawn(async move {
                    dedup.queue_once("web", events).await
                }));
            }
        }
        let (mut queued, mut duplicates) = (0, 0);
        for t in tasks {
            let q = t.await.unwrap().unwrap();
            queued += q.queued;
            duplicates += q.duplicates;
        }
        assert_eq!((queued, duplicates), (4000, 20_000));
        assert_eq!(queue.depth().0, 4000);
        let mut stored: Vec<String> = queue
            .read(None, 100_000)
            .unwrap()
            .into_iter()
            .map(|(_, r)| r.event)
            .collect();
        stored.sort();
        stored.dedup();
        assert_eq!(stored.len(), 4000, "each id once");
    }

    #[tokio::test]
    async fn a_copy_waits_for_the_first_and_is_a_duplicate_once_it_is_stored() {
        let dir = tempfile::tempdir().unwrap();
        let queue = gated(dir.path(), 0);
        let dedup = Arc::new(WindowDedup::new(queue.clone(), limits()));
        let first = tokio::spawn(dedup.queue_once("web", vec![record("a"), record("b")]));
        appends(&queue, 1).await;
        let second = tokio::spawn(dedup.queue_once("web", vec![record("b"), record("c")]));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !second.is_finished(),
            "the copy waits for the first's outcome"
        );
        assert_eq!(queue.appends.load(Ordering::SeqCst), 1);
        queue.gate.add_permits(2);
        let q = first.await.unwrap().unwrap();
        assert_eq!((q.queued, q.duplicates), (2, 0));
        let q = second.await.unwrap().unwrap();
        assert_eq!(
            (q.queued, q.duplicates),
            (1, 1),
            "b is a duplicate, c is new"
        );
        assert_eq!(queue.depth().0, 3);
    }

    #[tokio::test]
    async fn when_the_first_append_fails_the_waiting_copy_takes_over() {
        let dir = tempfile::tempdir().unwrap();
        let queue = gated(dir.path(), 1);
        let dedup = Arc::new(WindowDedup::new(queue.clone(), limits()));
        let first = tokio::spawn(dedup.queue_once("web", vec![record("a")]));
        appends(&queue, 1).await;
        let second = tokio::spawn(dedup.queue_once("web", vec![record("a")]));
        tokio::time::sleep(Duration::from_millis(50)).await;
        queue.gate.add_permits(2);
        let refused = first.await.unwrap();
        assert!(
            matches!(refused, Err(DedupError::Queue(QueueError::Full { .. }))),
            "{refused:?}"
        );
        let q = second.await.unwrap().unwrap();
        assert_eq!((q.queued, q.duplicates), (1, 0), "never called a duplicate");
        assert_eq!(queue.depth().0, 1);
        // A later retry of the first request is now a duplicate.
        let q = dedup.queue_once("web", vec![record("a")]).await.unwrap();
        assert_eq!((q.queued, q.duplicates), (0, 1));
    }

    #[tokio::test]
    async fn a_copy_gives_up_when_the_first_is_not_stored_in_time() {
        tokio::time::pause();
        let dir = tempfile::tempdir().unwrap();
        let queue = gated(dir.path(), 0);
        let dedup = Arc::new(WindowDedup::new(queue.clone(), limits()));
        let _first = tokio::spawn(dedup.queue_once("web", vec![record("a")]));
        appends(&queue, 1).await;
        let second = tokio::time::timeout(
            2 * WindowDedup::WAIT,
            dedup.queue_once("web", vec![record("a"), record("b")]),
        )
        .await
        .expect("the copy answers");
        assert!(
            matches!(second, Err(DedupError::StillStoring(d)) if d >= WindowDedup::WAIT),
            "{second:?}"
        );
        assert_eq!(dedup.usage().0, 1, "nothing of the second batch is claimed");
    }

    #[tokio::test]
    async fn a_caller_that_gives_up_leaves_the_claim_to_the_append() {
        let dir = tempfile::tempdir().unwrap();
        let queue = gated(dir.path(), 0);
        let dedup = Arc::new(WindowDedup::new(queue.clone(), limits()));
        let first = tokio::spawn(dedup.queue_once("web", vec![record("a")]));
        appends(&queue, 1).await;
        first.abort();
        let _ = first.await;
        queue.gate.add_permits(1);
        let q = dedup.queue_once("web", vec![record("a")]).await.unwrap();
        assert_eq!(
            (q.queued, q.duplicates),
            (0, 1),
            "the abandoned append was stored, and counts"
        );
        assert_eq!(queue.depth().0, 1);
    }
}
