//! Switchyard's distributed queue on [NATS JetStream](https://docs.nats.io/nats-concepts/jetstream),
//! for running several `serve` nodes on one queue. [`NatsQueue`] implements
//! [`switchyard_queue::EventQueue`], and [`JetStreamDedup`] implements [`switchyard_queue::Dedup`]
//! with JetStream's own de-duplication.
//!
//! - Events: the stream `<stream>` (subject `<stream>.events`, file storage, work-queue
//!   retention: a message is removed once acked), one message per event. Every node reads it
//!   through one shared durable pull consumer (`delivery`), so each message is handed to one node
//!   at a time; a message not acked within `ack_wait` (its node died) is handed out again. While a
//!   node works on a message it tells the server so (`+WPI`, every third of `ack_wait`), so a
//!   long retry does not hand it out twice.
//! - Dead letters: the stream `<stream>_DEAD` (subject `<stream>.dead`, kept until removed),
//!   readable and re-drivable from any node while the others run.
//! - De-duplication: every event is published with `Nats-Msg-Id` = a hash of (source,
//!   `event_id`); the stream's duplicate window is the configured de-dup window, so a copy sent to
//!   any node within it is stored once.
//!
//! Built without the client's `server_2_10`+ features: it works with nats-server 2.9 and later.

mod dead;

use async_nats::connection::State;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull};
use async_nats::jetstream::message::{AckKind, Acker, PublishMessage};
use async_nats::jetstream::publish::PublishAck;
use async_nats::jetstream::stream::{self, DiscardPolicy, RetentionPolicy, StorageType};
use async_nats::jetstream::{self, Context};
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use switchyard_queue::{
    Commit, DeadLetter, Dedup, DedupError, EVERY_DESTINATION, EventQueue, QueueError, Queued,
    Queueing, Reading, Record, StoreError, decode, encode,
};

/// The name of the shared durable consumer every node delivers from.
pub const CONSUMER: &str = "delivery";

/// How to reach JetStream and how to set up the streams.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The server(s), e.g. `nats://127.0.0.1:4222` (several separated by commas).
    pub url: String,
    /// The events stream's name; the dead letters' is this with `_DEAD`.
    pub stream: String,
    /// Copies of each stream in a NATS cluster (1, 3 or 5).
    pub replicas: usize,
    /// How long a node may hold a message without acking or extending it before it is handed to
    /// another node.
    pub ack_wait: Duration,
    /// Messages handed out and not yet acked, over all nodes, at most.
    pub max_ack_pending: i64,
    /// The de-duplication window (`Nats-Msg-Id`); zero: no de-duplication across requests.
    pub dedup_window: Duration,
    /// The events stream's size limit in bytes (new events are refused past it).
    pub max_bytes: i64,
    /// How long a publish or API request waits for the server's answer.
    pub timeout: Duration,
}

/// The queue on JetStream.
pub struct NatsQueue {
    js: Context,
    subject: String,
    consumer: PullConsumer,
    dead: dead::DeadLetters,
    /// Messages this process claimed and has not settled, by stream sequence.
    held: Arc<Mutex<HashMap<u64, Arc<Acker>>>>,
    depth: Arc<[AtomicU64; 2]>,
    /// The tasks that extend held messages and read the depth; stopped on drop.
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// How long a request waits for the server's answer.
    timeout: Duration,
    /// The events stream's size limit, in bytes (the queue budget).
    budget: u64,
}

/// A failure to reach the server or of its answer, while doing `action`.
fn unavailable<E>(action: &'static str) -> impl Fn(E) -> QueueError
where
    E: std::error::Error + Send + Sync + 'static,
{
    move |e| QueueError::Unavailable {
        action,
        source: Arc::new(e) as StoreError,
    }
}

/// A failed publish, as what it is: an event over the server's message limit (no retry can help:
/// 413), the stream's size limit reached (the queue budget used up: 503, as the embedded queue's
/// `Full`; for a stream with a `budget`, not 0), or else the server away or slow (503).
fn publish_failure(
    action: &'static str,
    budget: u64,
) -> impl Fn(jetstream::context::PublishError) -> QueueError {
    use jetstream::context::PublishErrorKind;
    move |e| {
        let text = std::error::Error::source(&e).map_or_else(|| e.to_string(), ToString::to_string);
        let full = [
            "maximum bytes exceeded",
            "maximum messages exceeded",
            "insufficient",
        ]
        .iter()
        .any(|said| text.to_lowercase().contains(said));
        match e.kind() {
            PublishErrorKind::MaxPayloadExceeded => QueueError::OverMessageLimit(text),
            PublishErrorKind::Other if full && budget > 0 => QueueError::Full {
                used: budget,
                dead_letters: 0,
                budget,
            },
            _ => unavailable(action)(e),
        }
    }
}

/// [`unavailable`] for the client's boxed errors.
fn unavailable_boxed(action: &'static str) -> impl Fn(async_nats::Error) -> QueueError {
    move |e| QueueError::Unavailable {
        action,
        source: Arc::from(e),
    }
}

/// One of the queue's two streams, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueStream {
    Events,
    DeadLetters,
}

impl QueueStream {
    pub fn name(self) -> &'static str {
        match self {
            QueueStream::Events => "events stream",
            QueueStream::DeadLetters => "dead-letter stream",
        }
    }

    /// What creating it is called in errors.
    fn creating(self) -> &'static str {
        match self {
            QueueStream::Events => "creating the events stream",
            QueueStream::DeadLetters => "creating the dead-letter stream",
        }
    }
}

/// The server has no room in its JetStream storage for a stream: the events stream reserves its
/// size limit (the queue budget) when it is created, and the dead-letter stream needs room beside it.
#[derive(Debug, thiserror::Error)]
#[error(
    "the NATS server has no room for the {} in its JetStream storage: the events stream \
     reserves {} MiB (`server.queue_budget_mib`), which must stay below the storage the server \
     has left (`jetstream.max_file_store`, 75% of its disk's free space when unset, less what its \
     other streams reserve; in a cluster, on enough of its servers for the replicas): lower the \
     budget or give JetStream more storage",
    .stream.name(),
    .max_bytes >> 20
)]
pub struct NoRoomForBudget {
    pub stream: QueueStream,
    pub max_bytes: i64,
    /// The server's answer.
    #[source]
    pub source: jetstream::Error,
}

/// The failure of creating (or updating) one of the queue's streams.
/// - No room in JetStream's storage: [`NoRoomForBudget`], which says which settings to change.
/// - Another answer of the server: the store's set-up failed, with the answer (once: the client's
///   own error repeats it).
/// - No answer: the server is unavailable.
fn stream_failure(
    stream: QueueStream,
    max_bytes: i64,
) -> impl Fn(jetstream::context::CreateStreamError) -> QueueError {
    use jetstream::context::CreateStreamErrorKind;
    let action = stream.creating();
    move |error| match error.kind() {
        CreateStreamErrorKind::JetStream(answer) if no_room(&answer) => QueueError::Store {
            action,
            source: Arc::new(NoRoomForBudget {
                stream,
                max_bytes,
                source: answer,
            }),
        },
        CreateStreamErrorKind::JetStream(answer) => QueueError::Store {
            action,
            source: Arc::new(answer),
        },
        _ => unavailable(action)(error),
    }
}

/// Whether the server's answer refuses a stream for lack of storage: 10047 on one server, 10023
/// (insufficient resources), or in a cluster 10005 (no suitable peers) for want of storage.
fn no_room(answer: &jetstream::Error) -> bool {
    use jetstream::ErrorCode;
    match answer.error_code() {
        ErrorCode::STORAGE_RESOURCES_EXCEEDED | ErrorCode::INSUFFICIENT_RESOURCES => true,
        ErrorCode::CLUSTER_NO_PEERS => answer.to_string().contains("insufficient storage"),
        _ => false,
    }
}

impl NatsQueue {
    /// Connects, creates or updates the streams and the shared consumer, and starts extending
    /// held messages. A server that cannot be reached is an error (not retried here).
    pub async fn open(settings: &Settings) -> Result<Self, QueueError> {
        let client = async_nats::ConnectOptions::new()
            .name("switchyard")
            .connection_timeout(settings.timeout)
            .connect(settings.url.as_str())
            .await
            .map_err(unavailable("connecting"))?;
        let js = jetstream::ContextBuilder::new()
            .timeout(settings.timeout)
            .backpressure_on_inflight(true)
            .build(client);
        let subject = format!("{}.events", settings.stream);
        let mut config = stream::Config {
            name: settings.stream.clone(),
            subjects: vec![subject.clone()],
            retention: RetentionPolicy::WorkQueue,
            storage: StorageType::File,
            num_replicas: settings.replicas,
            max_bytes: settings.max_bytes,
            discard: DiscardPolicy::New,
            ..Default::default()
        };
        if !settings.dedup_window.is_zero() {
            config.duplicate_window = settings.dedup_window;
        }
        js.create_or_update_stream(config)
            .await
            .map_err(stream_failure(QueueStream::Events, settings.max_bytes))?;
        let events = js
            .get_stream(&settings.stream)
            .await
            .map_err(unavailable("opening the events stream"))?;
        let consumer: PullConsumer = events
            .create_consumer(pull::Config {
                durable_name: Some(CONSUMER.into()),
                deliver_policy: DeliverPolicy::All,
                ack_policy: AckPolicy::Explicit,
                ack_wait: settings.ack_wait,
                max_ack_pending: settings.max_ack_pending,
                max_deliver: -1,
                ..Default::default()
            })
            .await
            .map_err(unavailable("creating the delivery consumer"))?;
        let dead = dead::DeadLetters::open(&js, settings).await?;
        let mut queue = Self {
            js,
            subject,
            consumer,
            dead,
            held: Arc::default(),
            depth: Arc::default(),
            tasks: Vec::new(),
            timeout: settings.timeout,
            budget: u64::try_from(settings.max_bytes).unwrap_or(0),
        };
        queue.read_depth_now(events).await;
        queue.tasks.push(tokio::spawn(extend(
            queue.held.clone(),
            settings.ack_wait / 3,
        )));
        Ok(queue)
    }

    /// Reads the stream's depth once, then every second in a task.
    async fn read_depth_now(&mut self, events: stream::Stream) {
        let depth = self.depth.clone();
        let read = move |info: stream::Info| {
            depth[0].store(info.state.messages, Ordering::Relaxed);
            depth[1].store(info.state.bytes, Ordering::Relaxed);
        };
        if let Ok(info) = events.get_info().await {
            read(info);
        }
        self.tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                if let Ok(info) = events.get_info().await {
                    read(info);
                }
            }
        }));
    }

    fn held(&self) -> MutexGuard<'_, HashMap<u64, Arc<Acker>>> {
        lock(&self.held)
    }

    /// Publishes each payload (with its message id, when it has one) and waits for every ack.
    fn publish(&self, items: Vec<(Option<String>, Vec<u8>)>) -> Commit<Vec<PublishAck>> {
        let (js, subject, budget) = (self.js.clone(), self.subject.clone(), self.budget);
        Box::pin(async move { publish_all(&js, &subject, items, budget).await })
    }

    /// Claims messages: up to `max`, waiting up to `linger` for them to fill the round (none:
    /// only those there). A message that does not decode is dead-lettered under `*` and removed;
    /// one handed out before (`delivered > 1`) is counted and logged, as it may reach a
    /// destination twice.
    ///
    /// Each request is a no-wait pull: the server answers at once with what it has, then a
    /// status. A waiting pull (`expires`) is not used, because nats-server 2.9 may not answer
    /// its expiry, and the client then waits 5 s past it; lingering is done here instead, by
    /// asking again every [`LINGER_POLL`] until the round is full or `linger` has passed.
    async fn fetch(
        claim: Claim,
        max: usize,
        linger: Duration,
    ) -> Result<Vec<(u64, Record)>, QueueError> {
        let deadline = tokio::time::Instant::now() + linger;
        let mut records = Vec::with_capacity(max.min(1 << 16));
        let mut again = 0u64;
        loop {
            let before = records.len();
            claim
                .pull(max - records.len(), &mut records, &mut again)
                .await?;
            let now = tokio::time::Instant::now();
            if records.len() >= max || now >= deadline {
                break;
            }
            if records.len() == before {
                tokio::time::sleep_until(deadline.min(now + LINGER_POLL)).await;
            }
        }
        if again > 0 {
            tracing::warn!(
                events = again,
                "events handed out again (a node stopped or held them past ack_wait): they may reach a destination twice"
            );
        }
        // Held (and extended) only once the whole round is in: a claim given up half way leaves
        // its messages to be handed out again after the ack wait.
        let mut held = lock(&claim.held);
        Ok(records
            .into_iter()
            .map(|(seq, record, acker)| {
                held.insert(seq, acker);
                (seq, record)
            })
            .collect())
    }
}

/// How often a lingering claim asks the server again for more events.
const LINGER_POLL: Duration = Duration::from_millis(5);

/// What a claim needs: the shared consumer, the map of held messages, the dead letters (for
/// messages that do not decode) and how long to wait for the server.
struct Claim {
    consumer: PullConsumer,
    held: Arc<Mutex<HashMap<u64, Arc<Acker>>>>,
    dead: dead::DeadLetters,
    timeout: Duration,
}

/// A claimed message not yet held: its stream sequence, record and ack handle.
type Claimed = (u64, Record, Arc<Acker>);

impl Claim {
    /// One no-wait pull of up to `want` messages, added to `records`.
    async fn pull(
        &self,
        want: usize,
        records: &mut Vec<Claimed>,
        again: &mut u64,
    ) -> Result<(), QueueError> {
        let mut batch = self
            .consumer
            .fetch()
            .max_messages(want)
            .messages()
            .await
            .map_err(unavailable("claiming events"))?;
        loop {
            let next = tokio::time::timeout(self.timeout, batch.next())
                .await
                .map_err(unavailable("claiming events (waiting for the server)"))?;
            let Some(message) = next else {
                return Ok(());
            };
            let message = message.map_err(unavailable_boxed("claiming events"))?;
            let Ok((seq, delivered)) = message.info().map(|i| (i.stream_sequence, i.delivered))
            else {
                continue; // not a stream message (a status): nothing to claim
            };
            *again += u64::from(delivered > 1);
            let (message, acker) = message.split();
            match decode::<Record>(&message.payload) {
                Ok(record) => records.push((seq, record, Arc::new(acker))),
                Err(e) => undecodable(&self.dead, seq, &message.payload, &e, acker).await,
            }
        }
    }
}

/// Longest part of an undecodable message kept in its dead letter, in bytes.
const UNDECODABLE_KEPT: usize = 64 * 1024;

/// A stream message that is not a record (written by something else, or by another version):
/// kept as a dead letter under `*` with the reason and its bytes as far as they are text, then
/// removed from the events stream. If the dead letter cannot be stored the message stays, to
/// be handed out again.
async fn undecodable(
    dead: &dead::DeadLetters,
    seq: u64,
    payload: &[u8],
    error: &QueueError,
    acker: Acker,
) {
    let now = since_epoch();
    let kept = &payload[..payload.len().min(UNDECODABLE_KEPT)];
    let letter = DeadLetter {
        destination: EVERY_DESTINATION.to_owned(),
        reason: format!("stream message {seq} is not a Switchyard event record: {error}"),
        at: now.as_secs() as i64,
        record: Record {
            source: String::new(),
            received_at: now.as_secs() as i64,
            queued_at_ms: now.as_millis() as i64,
            event: String::from_utf8_lossy(kept).into_owned(),
            only: None,
        },
    };
    match dead.store(vec![letter]).await {
        Ok(()) => {
            tracing::error!(
                seq,
                "a stream message does not decode ({error}); kept as a dead letter under `*`"
            );
            let _ = acker.ack_with(AckKind::Term).await;
        }
        Err(e) => tracing::error!(
            seq,
            "a stream message does not decode ({error}) and cannot be dead-lettered ({e}); left in the stream"
        ),
    }
}

/// Time since the Unix epoch (zero if the clock is before it).
fn since_epoch() -> Duration {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
}

/// Locks the map of held messages (a poisoned lock is taken over: entries are whole).
fn lock(held: &Mutex<HashMap<u64, Arc<Acker>>>) -> MutexGuard<'_, HashMap<u64, Arc<Acker>>> {
    held.lock().unwrap_or_else(|p| p.into_inner())
}

/// Every `period`: tells the server that the held messages are still being worked on.
async fn extend(held: Arc<Mutex<HashMap<u64, Arc<Acker>>>>, period: Duration) {
    let mut tick = tokio::time::interval(period.max(Duration::from_millis(100)));
    tick.tick().await;
    loop {
        tick.tick().await;
        let ackers: Vec<Arc<Acker>> = lock(&held).values().cloned().collect();
        for acker in ackers {
            let _ = acker.ack_with(AckKind::Progress).await;
        }
    }
}

/// The client is not connected to the server (it is reconnecting).
#[derive(Debug, thiserror::Error)]
#[error("not connected to the NATS server (reconnecting)")]
struct NotConnected;

/// Publishes every payload to `subject`, then waits for the server's ack of each. A failure
/// after some were sent leaves their outcome unknown: they may be stored (a retry with the same
/// message ids is de-duplicated).
async fn publish_all(
    js: &Context,
    subject: &str,
    items: Vec<(Option<String>, Vec<u8>)>,
    budget: u64,
) -> Result<Vec<PublishAck>, QueueError> {
    // While disconnected the client would buffer the messages and send them on reconnecting,
    // after the caller was told they failed: refuse at once instead.
    if js.client().connection_state() != State::Connected {
        return Err(QueueError::Unavailable {
            action: "publishing",
            source: Arc::new(NotConnected),
        });
    }
    // An event over the server's message limit is refused before any of the request is sent,
    // so that a 413 means that nothing of it was kept (room is left for the message id header).
    let max_payload = js.client().server_info().max_payload;
    let over = |p: &Vec<u8>| max_payload > 0 && p.len() + 512 > max_payload;
    if let Some((_, big)) = items.iter().find(|(_, p)| over(p)) {
        let said = format!("{} bytes, the server takes {max_payload}", big.len());
        return Err(QueueError::OverMessageLimit(said));
    }
    let mut pending = Vec::with_capacity(items.len());
    for (id, payload) in items {
        let mut publish = PublishMessage::build().payload(payload.into());
        if let Some(id) = id {
            publish = publish.message_id(id);
        }
        let ack = js
            .send_publish(subject.to_owned(), publish)
            .await
            .map_err(publish_failure("publishing", budget))?;
        pending.push(ack);
    }
    let mut acks = Vec::with_capacity(pending.len());
    for ack in pending {
        acks.push(
            ack.await
                .map_err(publish_failure("storing (publish ack)", budget))?,
        );
    }
    Ok(acks)
}

impl Drop for NatsQueue {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl EventQueue for NatsQueue {
    fn append(&self, records: Vec<Record>) -> Commit<Vec<u64>> {
        let items: Result<Vec<_>, _> = records.iter().map(|r| Ok((None, encode(r)?))).collect();
        let publishing = match items {
            Ok(items) => self.publish(items),
            Err(e) => return Box::pin(async move { Err(e) }),
        };
        Box::pin(async move { Ok(publishing.await?.iter().map(|a| a.sequence).collect()) })
    }

    fn claim(&self, max: usize, linger: Duration) -> Reading<Vec<(u64, Record)>> {
        let claim = Claim {
            consumer: self.consumer.clone(),
            held: self.held.clone(),
            dead: self.dead.clone(),
            timeout: self.timeout,
        };
        Box::pin(Self::fetch(claim, max, linger))
    }

    fn release(&self, ids: Vec<u64>) {
        let ackers: Vec<Arc<Acker>> = {
            let mut held = self.held();
            ids.iter().filter_map(|id| held.remove(id)).collect()
        };
        tokio::spawn(async move {
            for acker in ackers {
                let _ = acker.ack_with(AckKind::Nak(None)).await;
            }
        });
    }

    fn ack(&self, ids: Vec<u64>) -> Commit<()> {
        let ackers: Vec<Arc<Acker>> = {
            let mut held = self.held();
            ids.iter().filter_map(|id| held.remove(id)).collect()
        };
        let client = self.js.client();
        Box::pin(async move {
            for acker in ackers {
                acker.ack().await.map_err(unavailable_boxed("acking"))?;
            }
            client.flush().await.map_err(unavailable("acking"))
        })
    }

    fn depth(&self) -> (u64, u64) {
        (
            self.depth[0].load(Ordering::Relaxed),
            self.depth[1].load(Ordering::Relaxed),
        )
    }

    fn dead_letter(&self, letters: Vec<DeadLetter>) -> Commit<()> {
        self.dead.store(letters)
    }

    fn dead_letters(&self) -> Reading<Vec<(u64, DeadLetter)>> {
        self.dead.list()
    }

    fn remove_dead_letters(&self, ids: Vec<u64>) -> Commit<()> {
        self.dead.remove(ids)
    }
}

/// [`Dedup`] by JetStream: each event published with `Nats-Msg-Id` = [`message_id`]; the
/// server stores one copy per id within the stream's duplicate window, whichever node the copies
/// reach. Repeats within one call are dropped before publishing.
pub struct JetStreamDedup {
    queue: Arc<NatsQueue>,
    /// False when the window is zero: events are published without an id.
    by_id: bool,
}

impl JetStreamDedup {
    pub fn new(queue: Arc<NatsQueue>, window: Duration) -> Self {
        Self {
            queue,
            by_id: !window.is_zero(),
        }
    }
}

/// The `Nats-Msg-Id` of an event: the hex SHA-256 of its source, a zero byte and its `event_id`
/// (a fixed length, and safe in a header whatever the id holds).
pub fn message_id(source: &str, event_id: &str) -> String {
    let mut hash = Sha256::new();
    hash.update(source.as_bytes());
    hash.update([0]);
    hash.update(event_id.as_bytes());
    hex::encode(hash.finalize())
}

impl Dedup for JetStreamDedup {
    fn queue_once(&self, source: &str, events: Vec<(String, Record)>) -> Queueing {
        let total = events.len();
        let mut seen = HashSet::with_capacity(total);
        let mut items = Vec::with_capacity(total);
        for (id, record) in events {
            if !seen.insert(id.clone()) {
                continue;
            }
            match encode(&record) {
                Ok(bytes) => items.push((self.by_id.then(|| message_id(source, &id)), bytes)),
                Err(e) => return Box::pin(async move { Err(DedupError::Queue(e)) }),
            }
        }
        let publishing = self.queue.publish(items);
        Box::pin(async move {
            let acks = publishing.await?;
            let queued = acks.iter().filter(|a| !a.duplicate).count();
            Ok(Queued {
                queued,
                duplicates: total - queued,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_tell_sources_apart_and_fit_a_header() {
        let a = message_id("web", "e1");
        assert_eq!(a.len(), 64);
        assert_eq!(a, message_id("web", "e1"));
        assert_ne!(a, message_id("we", "be1"));
        assert_ne!(a, message_id("shop", "e1"));
        assert!(
            message_id("web", "a\r\nb")
                .chars()
                .all(|c| c.is_ascii_hexdigit())
        );
    }
}
