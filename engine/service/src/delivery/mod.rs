//! Delivery: claims events from the durable queue in rounds, runs each round through the pipeline
//! (plugins and mappings, on a blocking thread), sends every destination's payloads in batches of
//! its size, and acknowledges the round's events only once each is delivered, filtered or
//! dead-lettered. A crash before the acknowledgement means the round is claimed again (on
//! restart; with NATS, by another node once its ack wait has passed): at-least-once, made
//! harmless by the platform's `event_id` de-duplication. A round that cannot store its outcome
//! (a disk error) releases its events, and the loop claims them again.
//!
//! With several nodes on one queue, each node's senders get `1/nodes` of every destination's
//! rate limit (`server.queue.nodes`), so that together they keep under it.
//!
//! - [`plan`]: what a round's pipeline decided, per record and destination.
//! - [`sender`]: one destination's rate limit, concurrency limit and retries over its transport,
//!   and what becomes of each event when the platform answers about single events.
//! - [`journeys`]: a round's journeys for the admin API's journal and tap, while someone watches.

pub mod journeys;
pub mod plan;
pub mod sender;

use crate::clock::unix_ms;
use crate::config::Loaded;
use crate::handoff::ParsedEvents;
use crate::metrics::Metrics;
use crate::observe::Observer;
pub use plan::EVERY_DESTINATION;
use plan::only;
use sender::{GaveUp, Sender};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use switchyard_core::destination::{EventText, TransportError};
use switchyard_core::report::with_causes;
use switchyard_queue::{DeadLetter, EventQueue, Record};
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinSet;
use tracing::Instrument;

/// Rounds in flight at once (the pipeline of some overlaps the sending of others). A round keeps
/// its place until its events are acknowledged, i.e. also while it waits for the platform's
/// answers and the queue's commit. With 4, too few rounds were being planned at any time while
/// ingestion kept its share of the CPU: delivery fell behind and the queue grew during a load
/// (BENCHMARKS.md, issue 13 round four: p50 latency 0.9–1.3 s at 4, 0.1–0.37 s at 8). Memory: at
/// most this many rounds of `server.round_events` records and their payloads.
const ROUNDS_IN_FLIGHT: usize = 8;

/// Rounds at most that wait only for a destination's retries, beside [`ROUNDS_IN_FLIGHT`]. A round
/// whose request is to be tried again gives up its place among the rounds in flight for one of
/// these (while one is free), so that one destination's outage or rate limit (a `Retry-After`)
/// does not hold every place while the other destinations wait for events. Memory: at most this
/// many more rounds' records and payloads.
const ROUNDS_RETRYING: usize = 56;

/// A round's place: among the rounds in flight, or, once a request of it is to be tried again,
/// among the rounds retrying when one is free ([`ROUNDS_RETRYING`]). Freed when the round ends.
struct RoundPlace {
    held: Mutex<tokio::sync::OwnedSemaphorePermit>,
    retrying: Arc<Semaphore>,
    moved: AtomicBool,
}

impl RoundPlace {
    /// Moves the round to a place among the rounds retrying, when one is free (else it keeps its
    /// place in flight); once.
    fn retrying(&self) {
        if self.moved.load(Ordering::Acquire) {
            return;
        }
        if let Ok(place) = self.retrying.clone().try_acquire_owned() {
            let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
            if !self.moved.swap(true, Ordering::AcqRel) {
                // The place in flight is freed here, as the old permit drops.
                *held = place;
            }
        }
    }
}

/// The cores this process may use (1 when that cannot be told).
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// Why delivery cannot start.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("destination `{destination}` cannot send")]
    Transport {
        destination: String,
        #[source]
        source: TransportError,
    },
}

/// A config as delivery runs it: the config and a sender per destination. A reload replaces it
/// whole; rounds in flight finish with the one they started with.
pub struct Running {
    pub loaded: Arc<Loaded>,
    /// The sender of every destination that can send (every active one, and the deactivated
    /// ones whose secrets are set), by destination name.
    senders: BTreeMap<String, Arc<Sender>>,
}

impl Running {
    /// Sets up a sender per destination. An active destination whose transport cannot be made
    /// (its access token is not set) is an error: delivery would fail every event; a deactivated
    /// one gets no sender (it cannot be activated at run time).
    pub fn new(loaded: Arc<Loaded>, metrics: &Arc<Metrics>) -> Result<Self, DeliveryError> {
        let mut senders = BTreeMap::new();
        let nodes = f64::from(loaded.config.server.queue.nodes().max(1));
        for dest in loaded.pipeline.destinations() {
            let transport = match dest.transport() {
                Ok(t) => t,
                Err(_) if !dest.is_active() => continue,
                Err(source) => {
                    return Err(DeliveryError::Transport {
                        destination: dest.name().to_owned(),
                        source,
                    });
                }
            };
            let mut delivery = dest.delivery;
            delivery.max_requests_per_second /= nodes;
            let sender = Sender::new(dest.name(), transport, delivery, metrics.clone());
            senders.insert(dest.name().to_owned(), Arc::new(sender));
        }
        Ok(Self { loaded, senders })
    }

    /// Whether the destination `name` can send (it has a sender).
    pub fn can_send(&self, name: &str) -> bool {
        self.senders.contains_key(name)
    }

    /// The platform's answer code in a reason the sender of `destination` gave.
    fn code_in(&self, destination: &str, reason: &str) -> Option<i64> {
        self.senders.get(destination)?.code_in(reason)
    }
}

/// The round's journeys, locked (a poisoned lock is taken over: it holds what was observed).
fn lock(j: &journeys::Shared) -> std::sync::MutexGuard<'_, journeys::RoundJourneys> {
    j.lock().unwrap_or_else(|p| p.into_inner())
}

/// The delivery loop's state.
pub struct Deliverer {
    /// The config it runs (replaced by a reload).
    running: std::sync::RwLock<Arc<Running>>,
    queue: Arc<dyn EventQueue>,
    metrics: Arc<Metrics>,
    /// Woken when events are queued.
    wake: Arc<Notify>,
    /// Set by a round that could not settle its events (its dead letters or acknowledgement were
    /// not stored, or its pipeline panicked): the loop then releases them to claim them again.
    rewind: AtomicBool,
    /// The events of the rounds that could not settle, to release.
    unsettled: Mutex<Vec<u64>>,
    /// The journal and taps of the admin API (none without it).
    observer: Option<Arc<Observer>>,
    /// Events ingestion parsed, for the planner.
    parsed: Arc<ParsedEvents>,
    /// Rounds planned at once when the config has plugins, at most one per core: the plans run
    /// the plugins, whose time budget is time on the clock, so more plans than cores would spend
    /// each other's budgets.
    planners: Arc<Semaphore>,
}

/// A batch of one destination that went out in a round: per payload, the index of the record it
/// came from and how it ended.
pub type Sent = (String, Vec<(usize, Result<(), GaveUp>)>);

impl Deliverer {
    /// Sets up delivery of `loaded` ([`Running::new`]).
    pub fn new(
        loaded: Arc<Loaded>,
        queue: Arc<dyn EventQueue>,
        metrics: Arc<Metrics>,
        wake: Arc<Notify>,
    ) -> Result<Self, DeliveryError> {
        let running = Running::new(loaded, &metrics)?;
        Ok(Self {
            running: std::sync::RwLock::new(Arc::new(running)),
            queue,
            metrics,
            wake,
            rewind: AtomicBool::new(false),
            unsettled: Mutex::new(Vec::new()),
            observer: None,
            parsed: Arc::new(ParsedEvents::default()),
            planners: Arc::new(Semaphore::new(cores())),
        })
    }

    /// Where ingestion leaves the events it parsed, for the planner to take instead of parsing
    /// them again.
    pub fn parsed(&self) -> &ParsedEvents {
        &self.parsed
    }

    /// Reports each event's journey to `observer` while it watches.
    pub fn with_observer(mut self, observer: Arc<Observer>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// The config delivery runs now.
    pub fn running(&self) -> Arc<Running> {
        self.running
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Runs `running` from the next round on (rounds in flight finish with the config they
    /// started with; nothing queued is touched).
    pub fn replace(&self, running: Running) {
        *self.running.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(running);
    }

    /// Delivers until `shutdown` turns true, then finishes the rounds in flight and what is
    /// queued (the caller bounds that with a timeout; what is not delivered stays queued).
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let rounds = Arc::new(Semaphore::new(ROUNDS_IN_FLIGHT));
        let retrying = Arc::new(Semaphore::new(ROUNDS_RETRYING));
        let mut tasks = JoinSet::new();
        loop {
            while tasks.try_join_next().is_some() {}
            if self.rewind.swap(false, Ordering::AcqRel) {
                // Rounds in flight finish first, so that nothing they hold is claimed twice; a
                // lasting failure (a broken disk) is retried once a second, not in a spin.
                while tasks.join_next().await.is_some() {}
                let ids = std::mem::take(&mut *self.lock_unsettled());
                self.queue.release(ids);
                tracing::warn!("a round did not settle; claiming its events again");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            let shutting_down = *shutdown.borrow();
            match self.next_round(shutting_down, &mut shutdown).await {
                Next::Again => continue,
                Next::Empty if shutting_down => {
                    while tasks.join_next().await.is_some() {}
                    if self.rewind.load(Ordering::Acquire) {
                        continue;
                    }
                    break;
                }
                Next::Empty => {
                    tokio::select! {
                        _ = self.wake.notified() => {}
                        _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                        _ = shutdown.changed() => {}
                    }
                }
                Next::Round(records) => {
                    let Ok(permit) = rounds.clone().acquire_owned().await else {
                        break;
                    };
                    let me = self.clone();
                    let span = tracing::debug_span!("round", events = records.len());
                    let place = Arc::new(RoundPlace {
                        held: Mutex::new(permit),
                        retrying: retrying.clone(),
                        moved: AtomicBool::new(false),
                    });
                    tasks.spawn(me.round(records, place).instrument(span));
                }
            }
        }
        while tasks.join_next().await.is_some() {}
        self.update_depth();
    }

    /// Claims the next round. A round smaller than `round_events` first waits up to `linger_ms`
    /// for the batch to fill (not while shutting down).
    async fn next_round(&self, shutting_down: bool, shutdown: &mut watch::Receiver<bool>) -> Next {
        let running = self.running();
        let server = &running.loaded.config.server;
        let linger = if shutting_down {
            Duration::ZERO
        } else {
            Duration::from_millis(server.linger_ms)
        };
        let claiming = self.queue.claim(server.round_events, linger);
        let claimed = tokio::select! {
            claimed = claiming => claimed,
            _ = shutdown.changed(), if !shutting_down => return Next::Again,
        };
        let records = match claimed {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(
                    "claiming events failed: {}; retrying in 1 s",
                    with_causes(&e)
                );
                tokio::time::sleep(Duration::from_secs(1)).await;
                return Next::Again;
            }
        };
        self.update_depth();
        if records.is_empty() {
            return Next::Empty;
        }
        Next::Round(records)
    }

    /// The events of rounds that did not settle (a poisoned lock is taken over: it holds ids).
    fn lock_unsettled(&self) -> std::sync::MutexGuard<'_, Vec<u64>> {
        self.unsettled.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Marks a round's events as not settled: the loop releases them and claims them again.
    fn unsettle(&self, ids: Vec<u64>) {
        self.lock_unsettled().extend(ids);
        self.rewind.store(true, Ordering::Release);
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

    /// A place among the rounds planned at once, when `loaded` has plugins. Only plugins have a
    /// time budget to share; without them, plans go as they come (capped, they cost `serve` some
    /// 10 % more CPU per event: BENCHMARKS.md, round thirty-one). An error once delivery stops.
    async fn planner(
        &self,
        loaded: &Loaded,
    ) -> Result<Option<tokio::sync::OwnedSemaphorePermit>, tokio::sync::AcquireError> {
        if loaded.pipeline.plugins().next().is_none() {
            return Ok(None);
        }
        self.planners.clone().acquire_owned().await.map(Some)
    }

    /// One round: plan, send, dead-letter, acknowledge. Its `place` is freed as it ends.
    async fn round(self: Arc<Self>, records: Vec<(u64, Record)>, place: Arc<RoundPlace>) {
        let ids: Vec<u64> = records.iter().map(|(id, _)| *id).collect();
        let running = self.running();
        let loaded = running.loaded.clone();
        let records = Arc::new(records);
        let for_plan = records.clone();
        let observer = self.observer.clone().filter(|o| o.watching());
        let observe = observer.is_some();
        let parsed = self.parsed.clone();
        let (planned, plan) = tokio::sync::oneshot::channel();
        let Ok(planner) = self.planner(&loaded).await else {
            self.unsettle(ids);
            return;
        };
        let planning = tokio::task::spawn_blocking(move || {
            let _planner = planner;
            let (plan, spent) = plan::plan(&loaded, &for_plan, &parsed, observe);
            // The round goes on with its plan; its events are freed meanwhile, on this thread.
            let _ = planned.send(plan);
            drop(spent);
        });
        let mut plan = match plan.await {
            Ok(plan) => plan,
            Err(_) => {
                // The pipeline panicked: the round stays queued and is claimed again.
                let e = planning.await.err().map(|e| e.to_string());
                let e = e.as_deref().unwrap_or("no plan");
                tracing::error!("a delivery round failed ({e}); its events stay queued");
                self.unsettle(ids);
                return;
            }
        };
        for ((dest, status), n) in &plan.counts {
            self.metrics.event(dest, status, *n);
        }
        let planned = [("ingestion", plan.handed), ("queue", plan.parsed_again)];
        for (from, n) in planned.into_iter().filter(|(_, n)| *n > 0) {
            self.metrics.planned.with_label_values(&[from]).inc_by(n);
        }
        let journeys = observer
            .zip(plan.journeys.take())
            .map(|(o, planned)| journeys::RoundJourneys::begin(o, planned).shared());
        let mut dead = plan.dead;
        let mut sends = send(&running, plan.sends, journeys.as_ref(), &place);
        let mut complete = true;
        while let Some(joined) = sends.join_next().await {
            match joined {
                Ok(sent) => {
                    if let Some(j) = &journeys {
                        let code_in = |reason: &str| running.code_in(&sent.0, reason);
                        lock(j).answered(&sent, &code_in);
                    }
                    self.record(sent, &records, &mut dead);
                }
                Err(_) => complete = false,
            }
        }
        if let Some(j) = &journeys {
            lock(j).finish();
        }
        if !complete {
            // A send task panicked: its events were not settled, so the round stays queued.
            tracing::error!("a delivery request failed; its round stays queued");
            self.unsettle(ids);
            return;
        }
        self.settle(ids, dead).await;
    }

    /// Counts a finished batch's payloads; the records of those given up on go to the dead
    /// letters (once per record, with the first payload's reason).
    fn record(&self, sent: Sent, records: &[(u64, Record)], dead: &mut Vec<DeadLetter>) {
        let (name, fates) = sent;
        let now_ms = unix_ms();
        let latency = self.metrics.latency.with_label_values(&[name.as_str()]);
        let (mut delivered, mut failed) = (0, 0);
        let mut seen = BTreeSet::new();
        for (i, fate) in fates {
            match fate {
                Ok(()) => {
                    delivered += 1;
                    let queued = records[i].1.queued_at_ms;
                    latency.observe((now_ms - queued).max(0) as f64 / 1000.0);
                }
                Err(gave_up) => {
                    failed += 1;
                    if seen.insert(i) {
                        dead.push(DeadLetter {
                            destination: name.clone(),
                            reason: gave_up.reason,
                            at: now_ms / 1000,
                            record: only(&records[i].1, &name),
                        });
                    }
                }
            }
        }
        for (status, n) in [("delivered", delivered), ("failed", failed)] {
            if n > 0 {
                self.metrics.event(&name, status, n);
            }
        }
    }

    /// Stores the round's dead letters, then acknowledges its records; on a failure, the round
    /// stays queued and the loop claims it again.
    async fn settle(&self, ids: Vec<u64>, dead: Vec<DeadLetter>) {
        log_dead_letters(&dead);
        let mut dead_by_destination: BTreeMap<String, u64> = BTreeMap::new();
        for letter in &dead {
            *dead_by_destination
                .entry(letter.destination.clone())
                .or_default() += 1;
        }
        if !dead.is_empty()
            && let Err(e) = self.queue.dead_letter(dead).await
        {
            tracing::error!(
                "storing dead letters failed ({}); their events stay queued",
                with_causes(&e)
            );
            self.unsettle(ids);
            return;
        }
        for (destination, n) in dead_by_destination {
            self.metrics.event(&destination, "dead_lettered", n);
        }
        if let Err(e) = self.queue.ack(ids.clone()).await {
            tracing::error!(
                "acknowledging delivered events failed ({}); they stay queued and will be sent again",
                with_causes(&e)
            );
            self.unsettle(ids);
        }
        self.update_depth();
    }
}

/// Starts sending every destination's payloads, in batches of its batch size; its sender
/// settles each payload (refused ones given up on, the rest sent again or split as the
/// platform's answer requires). With `journeys`, each try to be tried again is told there.
fn send(
    running: &Running,
    sends: BTreeMap<String, Vec<(usize, EventText)>>,
    journeys: Option<&journeys::Shared>,
    place: &Arc<RoundPlace>,
) -> JoinSet<Sent> {
    let mut tasks = JoinSet::new();
    for (name, payloads) in sends {
        let (Some(sender), Some(dest)) = (
            running.senders.get(&name).cloned(),
            running.loaded.pipeline.destination(&name),
        ) else {
            continue;
        };
        let mut payloads = payloads.into_iter().peekable();
        while payloads.peek().is_some() {
            let (members, texts): (Vec<usize>, Vec<EventText>) =
                payloads.by_ref().take(dest.max_batch()).unzip();
            let (loaded, sender, name) = (running.loaded.clone(), sender.clone(), name.clone());
            let (journeys, place) = (journeys.cloned(), place.clone());
            tasks.spawn(async move {
                let fates = match loaded.pipeline.destination(&name) {
                    Some(dest) => {
                        let build = |events: &[EventText]| dest.plugin().serialized_body(events);
                        let retrying = |positions: &[usize], reason: &str, code| {
                            place.retrying();
                            if let Some(j) = &journeys {
                                let records = positions.iter().filter_map(|&p| members.get(p));
                                let records = records.copied().collect();
                                lock(j).retrying(&name, &records, reason, code);
                            }
                        };
                        sender.deliver_telling(texts, &build, Some(&retrying)).await
                    }
                    None => vec![
                        Err(GaveUp {
                            reason: format!("destination `{name}` is not configured"),
                        });
                        members.len()
                    ],
                };
                (name, members.into_iter().zip(fates).collect())
            });
        }
    }
    tasks
}

/// Logs a round's dead letters: one line per destination and reason, with their count and the
/// first `event_id`s (an event is read only when it is given up on, which is rare).
fn log_dead_letters(dead: &[DeadLetter]) {
    let mut groups: std::collections::BTreeMap<(&str, &str), Vec<String>> = Default::default();
    for letter in dead {
        let id = serde_json::from_str::<serde_json::Value>(&letter.record.event)
            .ok()
            .and_then(|e| e.get("event_id")?.as_str().map(str::to_owned))
            .unwrap_or_else(|| "?".to_owned());
        groups
            .entry((letter.destination.as_str(), letter.reason.as_str()))
            .or_default()
            .push(id);
    }
    for ((destination, reason), ids) in groups {
        let shown: Vec<&str> = ids.iter().take(10).map(String::as_str).collect();
        let more = if ids.len() > shown.len() { ", ..." } else { "" };
        tracing::warn!(
            destination,
            events = ids.len(),
            "dead-lettered: {reason} (event_id {}{more})",
            shown.join(", ")
        );
    }
}

/// What the loop does next.
enum Next {
    /// Read again (after lingering, or after a read error).
    Again,
    /// Nothing left to claim.
    Empty,
    /// A round to deliver.
    Round(Vec<(u64, Record)>),
}
