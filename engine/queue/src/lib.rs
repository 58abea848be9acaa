//! Switchyard's durable queue: events are stored here before ingestion acknowledges them, and stay
//! until every destination has delivered them (or dead-lettered them). Delivery is at-least-once:
//! after a crash, whatever was not acknowledged is read again.
//!
//! - [`EventQueue`]: the trait a backend implements (the embedded one here; the distributed one,
//!   on NATS JetStream, is the `switchyard-queue-nats` crate). Delivery *claims* records (a
//!   backend shared by several processes hands each record to one of them at a time), then acks
//!   them once settled or releases them to be claimed again.
//! - [`DiskQueue`]: the embedded backend, a [redb](https://docs.rs/redb) database in the data
//!   directory (ACID, crash-safe, checksummed pages), written by one thread that commits everything
//!   waiting in one transaction (group commit): one `fsync` for many requests.
//! - [`DeadLetter`]: events a destination gave up on, with the reason, kept in the same database to
//!   list and re-drive.
//! - [`dedup`]: queueing each (source, `event_id`) at most once within a window, also when copies
//!   arrive at the same moment ([`Dedup`], and [`WindowDedup`] over any [`EventQueue`]).

mod block;
pub mod dedup;
mod disk;
mod record;

pub use block::BlockError;
pub use dedup::{Dedup, DedupError, Queued, Queueing, WindowDedup};
pub use disk::DiskQueue;
pub use record::{DeadLetter, EVERY_DESTINATION, Record, decode, encode};

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// Why the queue refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The disk budget is used up: try again later (ingestion answers 503 with Retry-After).
    /// `dead_letters` of the `used` bytes are dead letters, which only a retry or a drop frees.
    #[error(
        "the queue is full ({used} of {budget} bytes used, {dead_letters} of them by dead letters)"
    )]
    Full {
        used: u64,
        dead_letters: u64,
        budget: u64,
    },
    /// One append is larger than the whole budget: it can never be stored (ingestion answers 413).
    #[error("{size} bytes of events exceed the whole queue budget of {budget} bytes")]
    TooLarge { size: u64, budget: u64 },
    /// An event is larger than the queue's server takes in one message (NATS's `max_payload`): it
    /// can never be stored as it is (ingestion answers 413).
    #[error("an event is larger than the queue's server takes in one message ({0})")]
    OverMessageLimit(String),
    /// The store failed while doing `action` (its error is the source).
    #[error("the queue's store failed {action}")]
    Store {
        action: &'static str,
        #[source]
        source: StoreError,
    },
    /// A record could not be encoded for storage, or a stored one does not decode.
    #[error("a record {0}")]
    Record(&'static str, #[source] postcard::Error),
    /// A record too large for the embedded queue's stored form (4 GiB or more).
    #[error("a record of {size} bytes is too large to queue (the most is 4 GiB)")]
    RecordTooLarge { size: usize },
    /// A stored block of records (the embedded queue's stored form) is damaged: the queue's file
    /// cannot be read as it is.
    #[error(
        "the queue's store holds a damaged block of records (from id {key}; keep a copy of \
         queue.redb, then move it out of the data directory to start an empty queue, without its \
         events)"
    )]
    Damaged {
        key: u64,
        #[source]
        source: BlockError,
    },
    /// The queue's server cannot be reached or did not confirm in time (a distributed backend):
    /// try again later (ingestion answers 503 with Retry-After).
    #[error("the queue's server is unavailable while {action}")]
    Unavailable {
        action: &'static str,
        #[source]
        source: StoreError,
    },
    #[error("the queue is closed")]
    Closed,
    /// Another process holds the queue's store (a running `switchyard serve`): the embedded store
    /// has one user at a time.
    #[error("another process (a running `switchyard serve`?) holds the queue's store")]
    InUse,
}

/// The cause of a store failure, shared by every request of the group commit it failed.
pub type StoreError = std::sync::Arc<dyn std::error::Error + Send + Sync>;

/// A wait for a durable write: resolves once the write is on disk (or has failed).
pub type Commit<T> = Pin<Box<dyn Future<Output = Result<T, QueueError>> + Send>>;

/// A wait for records being read or claimed.
pub type Reading<T> = Pin<Box<dyn Future<Output = Result<T, QueueError>> + Send>>;

/// A durable, ordered queue of event records.
///
/// Delivery takes records with [`claim`](EventQueue::claim): a claimed record is not claimed
/// again by this process until it is [released](EventQueue::release), and is removed once
/// [acked](EventQueue::ack). A backend shared by several processes hands each record to one of
/// them; a record whose process dies before acking it is handed to another (at-least-once).
pub trait EventQueue: Send + Sync {
    /// Appends records; the returned future resolves with their ids once they are durable.
    /// Refuses the whole call with [`QueueError::Full`] when it would exceed the disk budget.
    fn append(&self, records: Vec<Record>) -> Commit<Vec<u64>>;

    /// Claims up to `max` records not claimed yet, oldest first. When fewer are there, waits up
    /// to `linger` for more (once), then resolves with what there is (possibly none).
    fn claim(&self, max: usize, linger: Duration) -> Reading<Vec<(u64, Record)>>;

    /// Gives claimed records back unsettled, to be claimed again. Call it once no claimed
    /// record is still being delivered: the embedded backend then hands out every record not
    /// acked again, from the oldest.
    fn release(&self, ids: Vec<u64>);

    /// Removes delivered (or dead-lettered) claimed records; resolves once that is durable.
    fn ack(&self, ids: Vec<u64>) -> Commit<()>;

    /// Records kept, and the bytes of the disk budget used (records and dead letters).
    fn depth(&self) -> (u64, u64);

    /// Stores dead letters durably.
    fn dead_letter(&self, letters: Vec<DeadLetter>) -> Commit<()>;

    /// Every dead letter with its id, oldest first.
    fn dead_letters(&self) -> Reading<Vec<(u64, DeadLetter)>>;

    /// Removes dead letters (after a retry has queued them again).
    fn remove_dead_letters(&self, ids: Vec<u64>) -> Commit<()>;
}
