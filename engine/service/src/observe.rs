//! The observation point of delivery: each event's [`Journey`] (the event as received, what the
//! plugins did, and what became of it at each destination, updated as it is sent), kept in a
//! bounded in-memory journal and broadcast to live taps. Delivery builds journeys only while
//! someone watches ([`Observer::watching`]: a journal is kept or a tap is open); otherwise the
//! observation costs one check per round, and without the admin API there is no observer at all.
//!
//! A tap that reads slower than events pass loses updates (it is told how many): the pipeline
//! never waits for a reader.

use serde::Serialize;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// Journey updates a tap may fall behind by before it loses some.
pub const TAP_BUFFER: usize = 1024;

/// Most journeys `GET /admin/events` returns at once.
pub const MAX_LIMIT: usize = 1000;

/// One event's way through the service.
#[derive(Debug, Clone, Serialize)]
pub struct Journey {
    pub id: u64,
    /// RFC 3339.
    pub received_at: String,
    pub source: String,
    pub event_name: String,
    pub event_id: String,
    /// The source event as received (a string when it is not JSON).
    pub event: Value,
    /// What the transform plugins did with it: the config's, then each destination's.
    pub plugins: Vec<PluginStep>,
    /// One per destination the event was addressed to, in config order.
    pub destinations: Vec<Leg>,
}

/// What a plugin did with the event.
#[derive(Debug, Clone, Serialize)]
pub struct PluginStep {
    pub plugin: String,
    /// `kept`, `changed`, `dropped` or `failed`.
    pub action: &'static str,
    pub message: String,
}

/// Where the event stands at one destination ([`Leg`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LegStatus {
    /// To be sent.
    Pending,
    /// A send failed and is to be tried again.
    Retry,
    Success,
    Filtered,
    Skipped,
    DeadLettered,
}

impl LegStatus {
    pub const ALL: [LegStatus; 6] = [
        LegStatus::Pending,
        LegStatus::Retry,
        LegStatus::Success,
        LegStatus::Filtered,
        LegStatus::Skipped,
        LegStatus::DeadLettered,
    ];

    /// The status's name, as the admin API shows it and filters by it.
    pub fn as_str(self) -> &'static str {
        match self {
            LegStatus::Pending => "pending",
            LegStatus::Retry => "retry",
            LegStatus::Success => "success",
            LegStatus::Filtered => "filtered",
            LegStatus::Skipped => "skipped",
            LegStatus::DeadLettered => "dead_lettered",
        }
    }

    /// The status named `name`, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// What became of the event at one destination.
#[derive(Debug, Clone, Serialize)]
pub struct Leg {
    pub destination: String,
    pub status: LegStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The mapping rows that built the server payloads, in order.
    pub rows: Vec<MatchedRow>,
    /// The server payload (an array when the event made several).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<Value>,
    /// The browser side's pixel calls ([`PixelCall`]).
    pub pixel: Vec<PixelCall>,
    pub attempts: Vec<Attempt>,
}

/// A mapping row that built a payload of the event.
#[derive(Debug, Clone, Serialize)]
pub struct MatchedRow {
    /// The source event name.
    pub source: Arc<str>,
    /// The platform event name.
    pub target: Arc<str>,
    /// Where the row is written (`file:line`).
    pub at: Arc<str>,
}

/// One call the browser script makes on a destination's pixel object, read from its
/// `[method, ...arguments]` form: `["track", "AddToCart", {...}, {"event_id": ...}]` is the
/// method `track`, the event `AddToCart`, its params and the options after them.
#[derive(Debug, Clone, Serialize)]
pub struct PixelCall {
    pub method: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub params: Option<Value>,
    /// The arguments after the params.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<Value>,
}

impl PixelCall {
    /// The call `[method, ...arguments]`; `None` when it does not start with a method name.
    pub fn read(call: &Value) -> Option<Self> {
        let mut args = call.as_array()?.iter();
        let method = args.next()?.as_str()?.to_owned();
        let mut args = args.cloned().peekable();
        let event = args
            .next_if(Value::is_string)
            .and_then(|v| v.as_str().map(str::to_owned));
        Some(Self {
            method,
            event,
            params: args.next(),
            options: args.collect(),
        })
    }
}

/// One try to send the event's payload.
#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    /// RFC 3339.
    pub at: String,
    /// `sent`, `retry` (failed; it will be tried again) or `refused` (given up).
    pub outcome: &'static str,
    /// The platform's answer code, when it gave one (TikTok's `40002`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Unix seconds as RFC 3339 (UTC).
pub fn rfc3339(unix_secs: i64) -> String {
    chrono::DateTime::from_timestamp(unix_secs, 0)
        .map_or_else(|| unix_secs.to_string(), |t| t.to_rfc3339())
}

/// Which journeys (every condition given must hold) and which of their legs to show.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct JourneyFilter {
    pub source: Option<String>,
    /// The event's name.
    pub event: Option<String>,
    /// Journeys that reached this destination; only its leg is shown.
    pub destination: Option<String>,
    /// Journeys with a leg of this status.
    pub status: Option<String>,
    pub event_id: Option<String>,
}

impl JourneyFilter {
    pub fn matches(&self, j: &Journey) -> bool {
        let is = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        is(&self.source, &j.source)
            && is(&self.event, &j.event_name)
            && is(&self.event_id, &j.event_id)
            && j.destinations.iter().any(|leg| {
                is(&self.destination, &leg.destination) && is(&self.status, leg.status.as_str())
            })
    }

    /// The journey as JSON, with only the legs the filter asks for.
    pub fn show(&self, j: &Journey) -> Value {
        let mut v = json!(j);
        if let (Some(want), Some(legs)) = (&self.destination, v["destinations"].as_array_mut()) {
            legs.retain(|leg| leg["destination"] == want.as_str());
        }
        v
    }
}

/// The journal and the taps.
pub struct Observer {
    tap: broadcast::Sender<Arc<Journey>>,
    /// Turns true when the service stops: open taps end.
    closed: tokio::sync::watch::Sender<bool>,
    /// The most recent journeys, oldest first (none kept when `capacity` is 0).
    journal: Mutex<VecDeque<Arc<Journey>>>,
    capacity: usize,
    next_id: AtomicU64,
}

impl Observer {
    /// An observer that keeps the last `journal_events` journeys.
    pub fn new(journal_events: usize) -> Self {
        Self {
            tap: broadcast::channel(TAP_BUFFER).0,
            closed: tokio::sync::watch::channel(false).0,
            journal: Mutex::new(VecDeque::with_capacity(journal_events.min(MAX_LIMIT))),
            capacity: journal_events,
            next_id: AtomicU64::new(1),
        }
    }

    /// Whether anyone looks: a journal is kept, or a tap is open.
    pub fn watching(&self) -> bool {
        self.capacity > 0 || self.tap.receiver_count() > 0
    }

    /// A new journey id.
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Opens a tap: every journey update from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Journey>> {
        self.tap.subscribe()
    }

    /// Ends every open tap (the service stops, and waits for open connections).
    pub fn close(&self) {
        self.closed.send_replace(true);
    }

    /// Turns true when the service stops.
    pub fn closing(&self) -> tokio::sync::watch::Receiver<bool> {
        self.closed.subscribe()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Arc<Journey>>> {
        self.journal.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a journey's new state: in the journal (replacing its earlier state) and to the taps.
    pub fn publish(&self, journey: Journey) {
        let journey = Arc::new(journey);
        if self.capacity > 0 {
            let mut journal = self.lock();
            match journal.binary_search_by_key(&journey.id, |j| j.id) {
                Ok(at) => journal[at] = journey.clone(),
                Err(at) => {
                    journal.insert(at, journey.clone());
                    while journal.len() > self.capacity {
                        journal.pop_front();
                    }
                }
            }
        }
        // No tap open is not an error.
        let _ = self.tap.send(journey);
    }

    /// The most recent journeys `filter` matches, newest first, at most `limit`.
    pub fn recent(&self, filter: &JourneyFilter, limit: usize) -> Vec<Arc<Journey>> {
        self.lock()
            .iter()
            .rev()
            .filter(|j| filter.matches(j))
            .take(limit.min(MAX_LIMIT))
            .cloned()
            .collect()
    }

    /// The journey `id`, while the journal keeps it.
    pub fn get(&self, id: u64) -> Option<Arc<Journey>> {
        let journal = self.lock();
        let at = journal.binary_search_by_key(&id, |j| j.id).ok()?;
        journal.get(at).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn journey(id: u64, source: &str, destination: &str, status: &'static str) -> Journey {
        Journey {
            id,
            received_at: rfc3339(0),
            source: source.into(),
            event_name: "Placed Order".into(),
            event_id: format!("e{id}"),
            event: json!({}),
            plugins: Vec::new(),
            destinations: vec![Leg {
                destination: destination.into(),
                status: LegStatus::from_name(status).expect("a leg status"),
                reason: None,
                rows: Vec::new(),
                payload: None,
                pixel: Vec::new(),
                attempts: Vec::new(),
            }],
        }
    }

    #[test]
    fn a_leg_status_is_shown_and_found_by_one_name() {
        for status in LegStatus::ALL {
            assert_eq!(json!(status), json!(status.as_str()));
            assert_eq!(LegStatus::from_name(status.as_str()), Some(status));
        }
        assert_eq!(LegStatus::from_name("bogus"), None);
        assert_eq!(LegStatus::DeadLettered.as_str(), "dead_lettered");
    }

    #[test]
    fn the_journal_keeps_the_last_journeys_and_replaces_updated_ones() {
        let o = Observer::new(2);
        for id in 1..=3 {
            o.publish(journey(id, "web", "tiktok", "pending"));
        }
        o.publish(journey(3, "web", "tiktok", "success"));
        let all: Vec<(u64, &str)> = o
            .recent(&JourneyFilter::default(), 10)
            .iter()
            .map(|j| (j.id, j.destinations[0].status.as_str()))
            .collect();
        assert_eq!(all, [(3, "success"), (2, "pending")]);
        assert!(o.get(1).is_none());
        let only = JourneyFilter {
            status: Some("pending".into()),
            ..JourneyFilter::default()
        };
        assert_eq!(o.recent(&only, 10).len(), 1);
    }

    #[test]
    fn without_a_journal_nobody_watches_until_a_tap_opens() {
        let o = Observer::new(0);
        assert!(!o.watching());
        let mut tap = o.subscribe();
        assert!(o.watching());
        o.publish(journey(1, "web", "tiktok", "pending"));
        assert_eq!(tap.try_recv().map(|j| j.id).ok(), Some(1));
        assert!(o.recent(&JourneyFilter::default(), 10).is_empty());
    }

    #[test]
    fn pixel_calls_are_read_as_method_event_params_and_options() {
        let track = json!(["track", "AddToCart", {"value": 10}, {"event_id": "e1"}]);
        let call = json!(PixelCall::read(&track));
        let want = json!({"method": "track", "event": "AddToCart", "params": {"value": 10},
                          "options": [{"event_id": "e1"}]});
        assert_eq!(call, want);
        let identify = json!(PixelCall::read(&json!(["identify", {"email": "h"}])));
        assert_eq!(
            identify,
            json!({"method": "identify", "params": {"email": "h"}})
        );
        assert!(PixelCall::read(&json!([1, 2])).is_none());
        assert!(PixelCall::read(&json!("track")).is_none());
    }

    #[test]
    fn a_destination_filter_shows_only_its_leg() {
        let mut j = journey(1, "web", "tiktok", "pending");
        j.destinations.push(Leg {
            destination: "other".into(),
            ..j.destinations[0].clone()
        });
        let f = JourneyFilter {
            destination: Some("other".into()),
            ..JourneyFilter::default()
        };
        assert!(f.matches(&j));
        let shown = f.show(&j);
        assert_eq!(shown["destinations"].as_array().map(Vec::len), Some(1));
        assert_eq!(shown["destinations"][0]["destination"], "other");
    }
}
