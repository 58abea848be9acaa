//! Delivery: takes events from the durable queue in rounds, runs each round through the pipeline
//! (plugins and mappings, on a blocking thread), sends every destination's payloads in batches of
//! its `batch_size`, and acknowledges the round's events only once each is delivered, filtered or
//! dead-lettered. A crash before the acknowledgement means the round is read again on restart:
//! at-least-once, made harmless by the platform's `event_id` de-duplication. A round that cannot
//! store its outcome (a disk error) leaves its events queued and makes the loop read them again.
//!
//! - [`sender`]: one destination's rate limit, concurrency limit and retries.

pub mod sender;

use crate::clock::unix_ms;
use crate::config::{DestinationConfig, Loaded};
use crate::metrics::Metrics;
use crate::pipeline::{InputResult, stop_outcome};
use sender::{Client, Sender};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use switchyard_engine::destination::Activation;
use switchyard_engine::router::Status;
use switchyard_queue::{DeadLetter, EventQueue, Record};
use switchyard_tiktok::client::EventsApiClient;
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinSet;

/// The destination name of a dead letter that concerns every destination (a pipeline plugin
/// failed on the event before any destination saw it).
pub const EVERY_DESTINATION: &str = "*";

/// Rounds in flight at once (the pipeline of one overlaps the sending of others).
const ROUNDS_IN_FLIGHT: usize = 4;

/// Why delivery cannot start.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("destination `{0}`: {1}")]
    Destination(String, String),
}

/// The delivery loop's state.
pub struct Deliverer {
    loaded: Arc<Loaded>,
    queue: Arc<dyn EventQueue>,
    /// Per destination, in config order; `None` when deactivated.
    senders: Vec<Option<Arc<Sender>>>,
    metrics: Arc<Metrics>,
    /// Woken when events are queued.
    wake: Arc<Notify>,
    /// Set by a round that could not settle its events (its dead letters or acknowledgement were
    /// not stored, or its pipeline panicked): the loop then reads the queue again from the start.
    rewind: AtomicBool,
}

/// What a round's pipeline decided: payloads to send per destination (with the index of the
/// record each came from), dead letters, and counts of the other outcomes.
struct Plan {
    sends: Vec<Vec<(usize, Value)>>,
    dead: Vec<DeadLetter>,
    counts: BTreeMap<(String, &'static str), u64>,
}

impl Deliverer {
    /// Sets up a sender per active destination. An active destination without its access token
    /// is an error: delivery would fail every event.
    pub fn new(
        loaded: Arc<Loaded>,
        queue: Arc<dyn EventQueue>,
        metrics: Arc<Metrics>,
        wake: Arc<Notify>,
    ) -> Result<Self, DeliveryError> {
        let mut senders = Vec::new();
        for dest in &loaded.config.destinations {
            match dest {
                DestinationConfig::Tiktok(cfg) => {
                    if cfg.common.status == Activation::Deactivated {
                        senders.push(None);
                        continue;
                    }
                    let client = EventsApiClient::new(cfg).map_err(|e| {
                        DeliveryError::Destination(cfg.common.name.clone(), e.to_string())
                    })?;
                    senders.push(Some(Arc::new(Sender::new(
                        &cfg.common.name,
                        Client::Tiktok(client),
                        cfg.common.delivery,
                        metrics.clone(),
                    ))));
                }
            }
        }
        Ok(Self {
            loaded,
            queue,
            senders,
            metrics,
            wake,
            rewind: AtomicBool::new(false),
        })
    }

    /// Delivers until `stop` turns true, then finishes the rounds in flight and what is queued
    /// (the caller bounds that with a timeout; what is not delivered stays queued).
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let server = &self.loaded.config.server;
        let linger = Duration::from_millis(server.linger_ms);
        let round_events = server.round_events;
        let rounds = Arc::new(Semaphore::new(ROUNDS_IN_FLIGHT));
        let mut tasks = JoinSet::new();
        let mut cursor = None;
        let mut lingered_on = None;
        loop {
            while tasks.try_join_next().is_some() {}
            if self.rewind.swap(false, Ordering::AcqRel) {
                // Rounds in flight finish first, so that nothing they hold is read twice; a
                // lasting failure (a broken disk) is retried once a second, not in a spin.
                while tasks.join_next().await.is_some() {}
                cursor = None;
                lingered_on = None;
                eprintln!("switchyard: a round did not settle; reading the queue again");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            let stopping = *stop.borrow();
            let records = match self.queue.read(cursor, round_events) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("switchyard: reading the queue failed: {e}; retrying in 1 s");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            self.update_depth();
            let Some(&(first, _)) = records.first() else {
                if stopping {
                    while tasks.join_next().await.is_some() {}
                    if self.rewind.load(Ordering::Acquire) {
                        continue;
                    }
                    break;
                }
                tokio::select! {
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    _ = stop.changed() => {}
                }
                continue;
            };
            if records.len() < round_events && !stopping && lingered_on != Some(first) {
                // Let the batch fill for up to `linger` (once per first event).
                lingered_on = Some(first);
                tokio::select! {
                    _ = tokio::time::sleep(linger) => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
            cursor = records.last().map(|(id, _)| *id);
            let Ok(permit) = rounds.clone().acquire_owned().await else {
                break;
            };
            let me = self.clone();
            tasks.spawn(async move {
                me.round(records).await;
                drop(permit);
            });
        }
        while tasks.join_next().await.is_some() {}
        self.update_depth();
    }

    /// Delivers everything queued, then returns (for `replay` and `dead-letters retry`).
    pub async fn drain(self: Arc<Self>) {
        let (_tx, rx) = watch::channel(true);
        self.run(rx).await;
    }

    fn update_depth(&self) {
        let (count, bytes) = self.queue.depth();
        self.metrics.queue_depth.set(count as i64);
        self.metrics.queue_bytes.set(bytes as i64);
    }

    /// One round: plan, send, dead-letter, acknowledge.
    async fn round(self: Arc<Self>, records: Vec<(u64, Record)>) {
        let ids: Vec<u64> = records.iter().map(|(id, _)| *id).collect();
        let loaded = self.loaded.clone();
        let records = Arc::new(records);
        let for_plan = records.clone();
        let plan = match tokio::task::spawn_blocking(move || plan(&loaded, &for_plan)).await {
            Ok(plan) => plan,
            Err(e) => {
                // The pipeline panicked: the round stays queued and is read again.
                eprintln!("switchyard: a delivery round failed ({e}); its events stay queued");
                self.rewind.store(true, Ordering::Release);
                return;
            }
        };
        for ((dest, status), n) in &plan.counts {
            self.metrics.event(dest, status, *n);
        }
        let mut dead = plan.dead;
        let mut sends = JoinSet::new();
        for (d, payloads) in plan.sends.into_iter().enumerate() {
            let (Some(sender), Some(dest)) = (
                self.senders.get(d).cloned().flatten(),
                self.loaded.router.destinations().get(d),
            ) else {
                continue;
            };
            let name = dest.routing().name.to_string();
            let batch = match &self.loaded.config.destinations[d] {
                DestinationConfig::Tiktok(cfg) => cfg.batch_size.max(1),
            };
            let mut payloads = payloads.into_iter().peekable();
            while payloads.peek().is_some() {
                let (members, values): (Vec<usize>, Vec<Value>) =
                    payloads.by_ref().take(batch).unzip();
                for body in dest.request_bodies_owned(values) {
                    let sender = sender.clone();
                    let name = name.clone();
                    let members = members.clone();
                    sends.spawn(async move {
                        let r = sender.deliver(&body, members.len() as u64).await;
                        (name, members, r)
                    });
                }
            }
        }
        let now_ms = unix_ms();
        while let Some(joined) = sends.join_next().await {
            let Ok((name, members, result)) = joined else {
                continue;
            };
            match result {
                Ok(()) => {
                    self.metrics.event(&name, "delivered", members.len() as u64);
                    let h = self.metrics.latency.with_label_values(&[name.as_str()]);
                    for i in &members {
                        let queued = records[*i].1.queued_at_ms;
                        h.observe((now_ms - queued).max(0) as f64 / 1000.0);
                    }
                }
                Err(gave_up) => {
                    self.metrics.event(&name, "failed", members.len() as u64);
                    let mut seen = std::collections::BTreeSet::new();
                    for i in members.into_iter().filter(|i| seen.insert(*i)) {
                        dead.push(DeadLetter {
                            destination: name.clone(),
                            reason: gave_up.reason.clone(),
                            at: now_ms / 1000,
                            record: only(&records[i].1, &name),
                        });
                    }
                }
            }
        }
        if !dead.is_empty()
            && let Err(e) = self.queue.dead_letter(dead).await
        {
            eprintln!("switchyard: storing dead letters failed ({e}); their events stay queued");
            self.rewind.store(true, Ordering::Release);
            return;
        }
        if let Err(e) = self.queue.ack(ids).await {
            eprintln!(
                "switchyard: acknowledging delivered events failed ({e}); they stay queued and will be sent again"
            );
            self.rewind.store(true, Ordering::Release);
        }
        self.update_depth();
    }
}

/// The record, re-addressed to one destination (a dead letter re-driven goes there only).
fn only(record: &Record, destination: &str) -> Record {
    let mut r = record.clone();
    if destination != EVERY_DESTINATION {
        r.only = Some(destination.to_owned());
    }
    r
}

/// Runs a round's records through the pipeline, one source at a time (rules depend on it).
fn plan(loaded: &Loaded, records: &[(u64, Record)]) -> Plan {
    let destinations = loaded.router.destinations();
    let mut plan = Plan {
        sends: vec![Vec::new(); destinations.len()],
        dead: Vec::new(),
        counts: BTreeMap::new(),
    };
    let now = crate::clock::unix_now();
    let mut by_source: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, (_, r)) in records.iter().enumerate() {
        by_source.entry(r.source.as_str()).or_default().push(i);
    }
    for (source, members) in by_source {
        let mut events = Vec::with_capacity(members.len());
        let mut kept = Vec::with_capacity(members.len());
        for i in members {
            let r = &records[i].1;
            match loaded.pipeline.parse(&r.event, r.received_at) {
                Ok(e) => {
                    events.push(e);
                    kept.push(i);
                }
                Err(e) => plan.dead.push(DeadLetter {
                    destination: EVERY_DESTINATION.into(),
                    reason: format!("invalid event in the queue: {e}"),
                    at: now,
                    record: r.clone(),
                }),
            }
        }
        let mut logs = Vec::new();
        let received_at = now;
        let staging = loaded.pipeline.stage(events, received_at, &mut logs);
        let routed =
            loaded
                .pipeline
                .route(&loaded.router, &staging, source, received_at, &mut logs);
        for (plugin, line) in logs {
            eprintln!(
                "plugin {plugin}: {}: {}",
                crate::commands::plugin::level_name(line.level),
                line.message
            );
        }
        for (i, result) in kept.into_iter().zip(routed) {
            let record = &records[i].1;
            match result {
                InputResult::Stopped(stop) => {
                    let (status, reason) = stop_outcome(stop);
                    for d in destinations {
                        let name = d.routing().name.to_string();
                        if record.only.as_ref().is_some_and(|o| *o != name) {
                            continue;
                        }
                        *plan.counts.entry((name, status_label(status))).or_default() += 1;
                    }
                    if status == Status::Failed {
                        plan.dead.push(DeadLetter {
                            destination: EVERY_DESTINATION.into(),
                            reason,
                            at: now,
                            record: record.clone(),
                        });
                    }
                }
                InputResult::Routed(events) => {
                    for routed in events {
                        for (d, outcome) in routed.outcomes.iter().enumerate() {
                            let name = outcome.destination;
                            if record.only.as_ref().is_some_and(|o| o != name) {
                                continue;
                            }
                            match outcome.status {
                                Status::Sent => plan.sends[d]
                                    .extend(outcome.data.iter().map(|p| (i, p.to_value()))),
                                Status::Failed | Status::Invalid => {
                                    *plan.counts.entry((name.to_owned(), "failed")).or_default() +=
                                        1;
                                    plan.dead.push(DeadLetter {
                                        destination: name.to_owned(),
                                        reason: outcome.reason.clone().unwrap_or_default(),
                                        at: now,
                                        record: only(record, name),
                                    });
                                }
                                other => {
                                    *plan
                                        .counts
                                        .entry((name.to_owned(), status_label(other)))
                                        .or_default() += 1;
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    plan
}

fn status_label(s: Status) -> &'static str {
    match s {
        Status::Invalid | Status::Failed => "failed",
        other => crate::commands::map::status_name(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use switchyard_queue::{Commit, DiskQueue, QueueError};

    /// A disk queue whose first acknowledgement fails, as on a disk error.
    struct FailFirstAck {
        inner: DiskQueue,
        acks: AtomicUsize,
    }

    impl EventQueue for FailFirstAck {
        fn append(&self, records: Vec<Record>) -> Commit<Vec<u64>> {
            self.inner.append(records)
        }
        fn read(&self, after: Option<u64>, max: usize) -> Result<Vec<(u64, Record)>, QueueError> {
            self.inner.read(after, max)
        }
        fn ack(&self, ids: Vec<u64>) -> Commit<()> {
            if self.acks.fetch_add(1, Ordering::SeqCst) == 0 {
                return Box::pin(async { Err(QueueError::Store("disk error".into())) });
            }
            self.inner.ack(ids)
        }
        fn depth(&self) -> (u64, u64) {
            self.inner.depth()
        }
        fn dead_letter(&self, letters: Vec<DeadLetter>) -> Commit<()> {
            self.inner.dead_letter(letters)
        }
        fn dead_letters(&self) -> Result<Vec<(u64, DeadLetter)>, QueueError> {
            self.inner.dead_letters()
        }
        fn remove_dead_letters(&self, ids: Vec<u64>) -> Commit<()> {
            self.inner.remove_dead_letters(ids)
        }
    }

    #[tokio::test]
    async fn a_round_whose_acknowledgement_fails_is_read_again_not_left_behind() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("switchyard.yaml");
        // A deactivated destination: rounds settle without sending anything.
        std::fs::write(
            &config,
            "sources: [{name: web, kind: webhook}]\ndestinations:\n  - name: tiktok\n    type: tiktok\n    status: deactivated\n    pixel_id: CJQBODJC77UB4MRTGFRF\n    access_token: \"${SY_UNIT_TEST_UNSET}\"\n    domain: https://shop.example.com\n    sources: [web]\n",
        )
        .unwrap();
        let loaded = crate::config::load(&config).unwrap_or_else(|d| panic!("{d:?}"));
        let queue = Arc::new(FailFirstAck {
            inner: DiskQueue::open(&dir.path().join("data"), 1 << 20).unwrap(),
            acks: AtomicUsize::new(0),
        });
        let event = r#"{"event_name":"x","event_id":"1","properties":{},"profile_properties":{},"aliases":["urn:email:a"]}"#;
        let record = Record {
            source: "web".into(),
            received_at: 1,
            queued_at_ms: 1000,
            event: event.into(),
            only: None,
        };
        queue.append(vec![record.clone(), record]).await.unwrap();
        let metrics = Arc::new(Metrics::new());
        let deliverer = Deliverer::new(
            Arc::new(loaded),
            queue.clone(),
            metrics.clone(),
            Arc::new(Notify::new()),
        )
        .unwrap();
        Arc::new(deliverer).drain().await;
        assert_eq!(queue.depth().0, 0, "the second reading settled the round");
        assert_eq!(queue.acks.load(Ordering::SeqCst), 2);
        assert_eq!(
            metrics.count("tiktok", "deactivated"),
            4,
            "read twice, counted twice"
        );
    }
}
