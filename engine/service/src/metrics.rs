//! The service's Prometheus metrics: what came in, what was queued, and what became of events at
//! each destination; queue depth; delivery latency; transform plugin traps. `GET /metrics`
//! renders them as text. Besides, per destination, the [`Tally`] the admin API shows: totals and
//! per-minute counts of the last [`TALLY_MINUTES`] minutes.

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;

/// What the admin API counts per destination, in this order: source events `received` (routed to
/// it), platform events `sent`, source events `filtered` and `skipped` (deactivated included),
/// events `failed` (given up on), platform events `retried`, records `dead_lettered`.
pub const TALLIED: [&str; 7] = [
    "received",
    "sent",
    "filtered",
    "skipped",
    "failed",
    "retried",
    "dead_lettered",
];

/// How many minutes of per-minute counts are kept.
pub const TALLY_MINUTES: usize = 15;

/// Counts in the order of [`TALLIED`].
pub type Counts = [u64; TALLIED.len()];

/// One destination's counts: since start, and per minute (unix seconds of the minute's start) for
/// the last [`TALLY_MINUTES`] minutes, oldest first, minutes without events included.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    pub totals: Counts,
    pub minutes: Vec<(i64, Counts)>,
}

/// Where a metrics status is counted in a [`Tally`], if it is.
fn tally_slot(status: &str) -> Option<usize> {
    Some(match status {
        "received" => 0,
        "delivered" => 1,
        "filtered" => 2,
        "skipped" | "deactivated" => 3,
        "failed" => 4,
        "retried" => 5,
        "dead_lettered" => 6,
        _ => return None,
    })
}

/// The kept counts of one destination.
#[derive(Default)]
struct Recent {
    totals: Counts,
    minutes: VecDeque<(i64, Counts)>,
}

/// Every metric, registered in one registry.
pub struct Metrics {
    registry: Registry,
    /// Events received, by source and result (`queued`, `duplicate`, `rejected`, `refused_full`,
    /// `refused_busy`: another copy was still being stored, `refused_unavailable`: the NATS server
    /// did not answer).
    pub received: IntCounterVec,
    /// Events at a destination, by destination and status (`delivered`, `retried`, `failed`,
    /// `filtered`, `skipped`, `deactivated`).
    pub events: IntCounterVec,
    /// API requests, by destination and result: `ok`; `retryable`; `permanent` (the request's
    /// events refused for good); `denied` (the destination itself refused: bad token, no
    /// permission); `refused_events` (some events refused by index); `unattributed` (refused
    /// because of an event the platform did not name).
    pub requests: IntCounterVec,
    /// Browser events (`POST /v1/collect`), by destination and what the browser was told to do:
    /// `fired` (pixel calls answered), else why not: `server_only` (its rows or consent keep the
    /// browser quiet), `filtered`, `failed` (e.g. a plugin dropped or failed on the event: then
    /// neither copy goes out), `skipped`, `deactivated`.
    pub pixel: IntCounterVec,
    /// Errors that concern a destination as a whole, by destination and kind (`permission`: its
    /// access token or permissions are refused, so every request will fail the same way).
    pub errors: IntCounterVec,
    /// Events delivery planned, by where the parsed event came from: `ingestion` (handed over,
    /// [`crate::handoff`]) or `queue` (its stored text parsed again).
    pub planned: IntCounterVec,
    /// Records in the queue, and their bytes.
    pub queue_depth: IntGauge,
    pub queue_bytes: IntGauge,
    /// Ids kept for de-duplication, and the bytes counted for them.
    pub dedup_ids: IntGauge,
    pub dedup_bytes: IntGauge,
    /// Seconds from queueing to delivery, by destination.
    pub latency: HistogramVec,
    /// Seconds one API request took (successful or not).
    pub request_seconds: Histogram,
    /// Per destination, what the admin API shows (counted once per round and status).
    recent: Mutex<HashMap<String, Recent>>,
}

/// The delivery latency (by destination) and request duration histograms, registered.
fn histograms(registry: &Registry) -> (HistogramVec, Histogram) {
    let buckets = vec![
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
    ];
    let latency = must(HistogramVec::new(
        HistogramOpts::new(
            "switchyard_delivery_latency_seconds",
            "Seconds from queueing to delivery.",
        )
        .buckets(buckets.clone()),
        &["destination"],
    ));
    must(registry.register(Box::new(latency.clone())));
    let request_seconds = must(Histogram::with_opts(
        HistogramOpts::new(
            "switchyard_request_duration_seconds",
            "Seconds per platform API request.",
        )
        .buckets(buckets),
    ));
    must(registry.register(Box::new(request_seconds.clone())));
    (latency, request_seconds)
}

fn must<T>(r: prometheus::Result<T>) -> T {
    // Metric definitions are constants: an error here is a bug in this file, caught by its tests.
    r.unwrap_or_else(|e| panic!("metric definition: {e}"))
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = must(IntCounterVec::new(Opts::new(name, help), labels));
            must(registry.register(Box::new(c.clone())));
            c
        };
        let received = counter(
            "switchyard_events_received_total",
            "Events received, by source and result.",
            &["source", "result"],
        );
        let events = counter(
            "switchyard_destination_events_total",
            "Events at a destination, by status: delivered, retried and failed count platform events (payloads); filtered, skipped and deactivated count source events.",
            &["destination", "status"],
        );
        let requests = counter(
            "switchyard_requests_total",
            "Platform API requests, by result.",
            &["destination", "result"],
        );
        let pixel = counter(
            "switchyard_pixel_events_total",
            "Browser events by destination and what the browser was told: fired (pixel calls answered), or why not: server_only, filtered, failed, skipped, deactivated (the same pipeline decides the server copy).",
            &["destination", "status"],
        );
        let errors = counter(
            "switchyard_destination_errors_total",
            "Errors that concern a whole destination, by kind: permission (its access token or permissions are refused; every request will fail the same way until its config is fixed).",
            &["destination", "kind"],
        );
        let planned = counter(
            "switchyard_planned_events_total",
            "Events delivery planned, by where the parsed event came from: ingestion (handed over in memory) or queue (its stored text parsed again).",
            &["from"],
        );
        let gauge = |name: &str, help: &str| {
            let g = must(IntGauge::new(name, help));
            must(registry.register(Box::new(g.clone())));
            g
        };
        let queue_depth = gauge("switchyard_queue_depth", "Events in the durable queue.");
        let queue_bytes = gauge("switchyard_queue_bytes", "Bytes of events in the queue.");
        let dedup_ids = gauge("switchyard_dedup_ids", "Event ids kept for de-duplication.");
        let dedup_bytes = gauge(
            "switchyard_dedup_bytes",
            "Bytes counted for the event ids kept for de-duplication.",
        );
        let (latency, request_seconds) = histograms(&registry);
        Self {
            registry,
            received,
            events,
            requests,
            pixel,
            errors,
            planned,
            queue_depth,
            queue_bytes,
            dedup_ids,
            dedup_bytes,
            latency,
            request_seconds,
            recent: Mutex::new(HashMap::new()),
        }
    }

    /// Exposes `switchyard_plugin_traps_total{plugin}`: the plugins' own counts of calls that
    /// trapped, as `read` gives them (per plugin name) each time the metrics are rendered. Called
    /// once per `Metrics` (registering the metric twice is a bug, and panics).
    pub fn count_plugin_traps(
        &self,
        read: impl Fn() -> BTreeMap<String, u64> + Send + Sync + 'static,
    ) {
        let collector = PluginTraps {
            template: plugin_traps_vec(),
            read: Box::new(read),
        };
        must(self.registry.register(Box::new(collector)));
    }

    /// Adds `n` to the count of `status` at `destination`.
    pub fn event(&self, destination: &str, status: &str, n: u64) {
        self.events
            .with_label_values(&[destination, status])
            .inc_by(n);
        if let Some(slot) = tally_slot(status) {
            self.add_recent(destination, slot, n, crate::clock::unix_now());
        }
    }

    fn add_recent(&self, destination: &str, slot: usize, n: u64, now: i64) {
        let minute = now - now.rem_euclid(60);
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        let kept = match recent.get_mut(destination) {
            Some(kept) => kept,
            None => recent.entry(destination.to_owned()).or_default(),
        };
        kept.totals[slot] += n;
        if kept.minutes.back().is_none_or(|(m, _)| *m < minute) {
            kept.minutes.push_back((minute, Counts::default()));
        }
        if let Some((_, counts)) = kept.minutes.back_mut() {
            counts[slot] += n;
        }
        let oldest = minute - 60 * (TALLY_MINUTES as i64 - 1);
        while kept.minutes.front().is_some_and(|(m, _)| *m < oldest) {
            kept.minutes.pop_front();
        }
    }

    /// What the admin API shows of `destination` at `now` (unix seconds).
    pub fn tally(&self, destination: &str, now: i64) -> Tally {
        let minute = now - now.rem_euclid(60);
        let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        let kept = recent.get(destination);
        let minutes = (0..TALLY_MINUTES as i64)
            .rev()
            .map(|back| {
                let m = minute - 60 * back;
                let counts = kept
                    .and_then(|k| k.minutes.iter().find(|(at, _)| *at == m))
                    .map_or_else(Counts::default, |(_, c)| *c);
                (m, counts)
            })
            .collect();
        Tally {
            totals: kept.map_or_else(Counts::default, |k| k.totals),
            minutes,
        }
    }

    /// The count of `status` at `destination` so far.
    pub fn count(&self, destination: &str, status: &str) -> u64 {
        self.events.with_label_values(&[destination, status]).get()
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }
}

fn plugin_traps_vec() -> IntCounterVec {
    must(IntCounterVec::new(
        Opts::new(
            "switchyard_plugin_traps_total",
            "Transform plugin calls that trapped (a panic, the time budget, the memory cap), by plugin; a batch that trapped is run again one event at a time, each trap counted.",
        ),
        &["plugin"],
    ))
}

/// The plugins' trap counts, read when the metrics are gathered (the counts live in the plugins:
/// `switchyard-wasm` knows nothing of Prometheus).
struct PluginTraps {
    /// Describes the metric; each gathering fills a fresh vector of the same shape.
    template: IntCounterVec,
    read: Box<dyn Fn() -> BTreeMap<String, u64> + Send + Sync>,
}

impl Collector for PluginTraps {
    fn desc(&self) -> Vec<&Desc> {
        self.template.desc()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let fresh = plugin_traps_vec();
        for (plugin, traps) in (self.read)() {
            fresh.with_label_values(&[plugin.as_str()]).inc_by(traps);
        }
        fresh.collect()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tally_counts_per_minute_for_the_last_15_minutes() {
        let m = Metrics::new();
        let t0 = 1_800_000_000; // a minute's start
        m.add_recent("ads", 1, 2, t0 - 20 * 60); // too old for the minutes, still in the totals
        m.add_recent("ads", 1, 3, t0 + 5);
        m.add_recent("ads", 3, 1, t0 + 59);
        m.add_recent("ads", 1, 4, t0 + 120);
        let tally = m.tally("ads", t0 + 130);
        assert_eq!(tally.totals, [0, 9, 0, 1, 0, 0, 0]);
        assert_eq!(tally.minutes.len(), TALLY_MINUTES);
        let last: Vec<(i64, u64, u64)> = tally.minutes[12..]
            .iter()
            .map(|(m, c)| (*m, c[1], c[3]))
            .collect();
        assert_eq!(last, [(t0, 3, 1), (t0 + 60, 0, 0), (t0 + 120, 4, 0)]);
        assert!(
            tally.minutes[..12]
                .iter()
                .all(|(_, c)| *c == Counts::default())
        );
        assert_eq!(m.tally("other", t0).totals, Counts::default());
        // The metrics statuses map onto the tally's.
        m.event("ads", "deactivated", 2);
        assert_eq!(m.tally("ads", crate::clock::unix_now()).totals[3], 3);
    }

    #[test]
    fn metrics_render_with_their_labels() {
        let m = Metrics::new();
        m.event("ads", "delivered", 3);
        m.received.with_label_values(&["web", "queued"]).inc();
        let text = m.render();
        assert!(
            text.contains(
                "switchyard_destination_events_total{destination=\"ads\",status=\"delivered\"} 3"
            ),
            "{text}"
        );
        assert!(
            text.contains("switchyard_events_received_total{result=\"queued\",source=\"web\"} 1")
        );
        assert_eq!(m.count("ads", "delivered"), 3);
    }

    #[test]
    fn plugin_traps_are_read_from_the_plugins_at_each_rendering() {
        let m = Metrics::new();
        let traps = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(2));
        let seen = traps.clone();
        m.count_plugin_traps(move || {
            let n = seen.load(std::sync::atomic::Ordering::Relaxed);
            BTreeMap::from([("picky".to_owned(), n), ("fx".to_owned(), 0)])
        });
        let text = m.render();
        assert!(
            text.contains("switchyard_plugin_traps_total{plugin=\"picky\"} 2"),
            "{text}"
        );
        assert!(text.contains("switchyard_plugin_traps_total{plugin=\"fx\"} 0"));
        traps.store(5, std::sync::atomic::Ordering::Relaxed);
        assert!(
            m.render()
                .contains("switchyard_plugin_traps_total{plugin=\"picky\"} 5")
        );
    }
}
