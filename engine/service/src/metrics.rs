//! The service's Prometheus metrics: what came in, what was queued, and what became of events at
//! each destination; queue depth; delivery latency. `GET /metrics` renders them as text.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

/// Every metric, registered in one registry.
pub struct Metrics {
    registry: Registry,
    /// Events received, by source and result (`queued`, `duplicate`, `rejected`, `refused_full`,
    /// `refused_busy`: another copy was still being stored).
    pub received: IntCounterVec,
    /// Events at a destination, by destination and status (`delivered`, `retried`, `failed`,
    /// `filtered`, `skipped`, `deactivated`).
    pub events: IntCounterVec,
    /// API requests, by destination and result (`ok`, `retryable`, `permanent`).
    pub requests: IntCounterVec,
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
        Self {
            registry,
            received,
            events,
            requests,
            queue_depth,
            queue_bytes,
            dedup_ids,
            dedup_bytes,
            latency,
            request_seconds,
        }
    }

    /// Adds `n` to the count of `status` at `destination`.
    pub fn event(&self, destination: &str, status: &str, n: u64) {
        self.events
            .with_label_values(&[destination, status])
            .inc_by(n);
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

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
