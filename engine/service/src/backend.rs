//! The queue backend a config names (`server.queue`), opened for `serve`, `replay` and
//! `dead-letters`: the embedded redb queue in the data directory with the in-memory
//! de-duplication window, or NATS JetStream with its own de-duplication by message id.

use crate::config::{Loaded, NatsQueueConfig, QueueConfig};
use std::sync::Arc;
use std::time::Duration;
use switchyard_queue::dedup::Limits;
use switchyard_queue::{Dedup, DedupError, DiskQueue, EventQueue, QueueError, WindowDedup};
use switchyard_queue_nats::{JetStreamDedup, NatsQueue, Settings};

/// A queue failure, with where the queue is: its folder, or its NATS stream (not its URL,
/// which may carry credentials).
#[derive(Debug, thiserror::Error)]
#[error("the queue in {place}")]
pub struct QueueFailure {
    pub place: String,
    #[source]
    pub source: QueueError,
}

/// Why a batch could not be queued through the backend.
#[derive(Debug, thiserror::Error)]
pub enum QueueingError {
    #[error(transparent)]
    Queue(#[from] QueueFailure),
    #[error("queueing the events failed")]
    Dedup(#[source] DedupError),
}

/// An open queue and the de-duplication in front of it.
pub struct Backend {
    pub queue: Arc<dyn EventQueue>,
    pub dedup: Arc<dyn Dedup>,
    /// The in-memory window, when the backend uses one (to sweep and to measure).
    pub window: Option<Arc<WindowDedup>>,
    /// Where the queue is, for messages: its folder, or its NATS stream.
    pub place: String,
}

impl Backend {
    /// A queue failure, saying where the queue is.
    pub fn error(&self, source: QueueError) -> QueueFailure {
        QueueFailure {
            place: self.place.clone(),
            source,
        }
    }

    /// A de-duplication failure, saying where the queue is when the queue failed.
    pub fn dedup_error(&self, e: DedupError) -> QueueingError {
        match e {
            DedupError::Queue(source) => self.error(source).into(),
            other => QueueingError::Dedup(other),
        }
    }
}

/// Opens the queue of a config: connects to NATS for `kind: nats`.
pub async fn open(loaded: &Loaded) -> Result<Backend, QueueFailure> {
    match &loaded.config.server.queue {
        QueueConfig::Redb => open_redb(loaded),
        QueueConfig::Nats(nats) => open_nats(loaded, nats).await,
    }
}

fn open_redb(loaded: &Loaded) -> Result<Backend, QueueFailure> {
    let dir = loaded.data_dir();
    let server = &loaded.config.server;
    let budget = server.queue_budget_mib.saturating_mul(1 << 20);
    let place = dir.display().to_string();
    let queue: Arc<dyn EventQueue> = match DiskQueue::open(&dir, budget) {
        Ok(q) => Arc::new(q),
        Err(source) => return Err(QueueFailure { place, source }),
    };
    let limits = Limits {
        window: Duration::from_secs(server.dedup_window_secs),
        max_ids: server.dedup_max_ids,
        max_bytes: server.dedup_max_mib.saturating_mul(1 << 20),
    };
    let window = Arc::new(WindowDedup::new(queue.clone(), limits));
    Ok(Backend {
        queue,
        dedup: window.clone(),
        window: Some(window),
        place,
    })
}

async fn open_nats(loaded: &Loaded, nats: &NatsQueueConfig) -> Result<Backend, QueueFailure> {
    let server = &loaded.config.server;
    let window = Duration::from_secs(server.dedup_window_secs);
    let settings = Settings {
        url: nats.url.clone(),
        stream: nats.stream.clone(),
        replicas: nats.replicas,
        ack_wait: Duration::from_secs(nats.ack_wait_secs),
        max_ack_pending: nats.max_ack_pending,
        dedup_window: window,
        max_bytes: i64::try_from(server.queue_budget_mib.saturating_mul(1 << 20))
            .unwrap_or(i64::MAX),
        timeout: Duration::from_millis(nats.timeout_ms),
    };
    // The URL is not named: it may carry credentials.
    let place = format!("NATS stream `{}`", nats.stream);
    let queue = match NatsQueue::open(&settings).await {
        Ok(q) => Arc::new(q),
        Err(source) => return Err(QueueFailure { place, source }),
    };
    Ok(Backend {
        dedup: Arc::new(JetStreamDedup::new(queue.clone(), window)),
        queue,
        window: None,
        place,
    })
}
