//! Sends one destination's events and settles each: under its rate limit (requests per second) and
//! concurrency limit, retrying retryable failures with exponential backoff and full jitter (a
//! `Retry-After` from the platform wins when longer), and acting on answers about single events.
//!
//! A batch of events (each serialized once, by the round's plan) goes out in one request body.
//! When the platform refuses some of its events by index, exactly those are given up on (with the
//! platform's reason) and the others are sent again in a new body, unless the answer says they
//! were delivered. When it refuses the body because of an event it does not name, the batch is
//! split in halves and each half sent again, down to [`MAX_SPLIT_DEPTH`] splits, until the bad
//! events are isolated. When it denies the destination itself (a bad token, no permission), the
//! batch is given up on and the denial logged and counted.

use crate::metrics::Metrics;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use rand::Rng;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use switchyard_core::destination::{
    Delivery, EventText, Others, Refusal, RequestBody, SendError, Transport,
};
use tokio::sync::Semaphore;

/// How many times a batch refused because of an event the platform does not name is split in
/// halves at most: 10 splits isolate single events in batches of up to 1,024 (the built-in
/// destination's limit is 1,000). Parts still refused at that depth are given up on whole.
/// Finding `k` bad events in a batch of `n` this way takes about `2·k·log2(n/k)` requests;
/// `2·n - 1` when every event is bad.
pub const MAX_SPLIT_DEPTH: u32 = 10;

/// Why events to send again were given up on instead.
const CANNOT_TAKE_BACK: &str = "its events could not be taken back out of the request to be sent again (a bug in the destination's request bodies)";

/// How often a denied destination is logged at most (every denial is counted).
const DENIAL_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// One destination's sender.
pub struct Sender {
    name: String,
    transport: Box<dyn Transport>,
    settings: Delivery,
    limiter: DefaultDirectRateLimiter,
    slots: Semaphore,
    metrics: Arc<Metrics>,
    /// When a denial was last logged, and the denials since that were not.
    denials: Mutex<(Option<Instant>, u64)>,
}

/// Why an event was given up on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GaveUp {
    pub reason: String,
}

/// Builds the request body that carries some events (the destination's wire format).
pub type BuildBody<'a> = dyn Fn(&[EventText]) -> RequestBody + Send + Sync + 'a;

/// Told of each try that failed and will be tried again: the positions (in the batch) of the
/// events the request carried, the reason, and the platform's answer code when it gave one.
pub type OnRetry<'a> = dyn Fn(&[usize], &str, Option<i64>) + Send + Sync + 'a;

/// Events of a batch still to send: their positions in the batch, the events, and how many splits
/// made this part.
struct Part {
    positions: Vec<usize>,
    events: Vec<EventText>,
    depth: u32,
}

/// A part that went out: its positions, the body that carried its events, its depth.
struct Sent {
    positions: Vec<usize>,
    body: RequestBody,
    depth: u32,
}

/// What each event of a batch became (`None`: not settled yet), by position.
type Fates = [Option<Result<(), GaveUp>>];

impl Sender {
    pub fn new(
        name: &str,
        transport: Box<dyn Transport>,
        settings: Delivery,
        metrics: Arc<Metrics>,
    ) -> Self {
        let period = Duration::from_secs_f64(1.0 / settings.max_requests_per_second.max(0.001));
        let quota = Quota::with_period(period)
            .unwrap_or_else(|| Quota::per_second(std::num::NonZeroU32::MIN));
        Self {
            name: name.to_owned(),
            transport,
            settings,
            limiter: RateLimiter::direct(quota),
            slots: Semaphore::new(settings.max_concurrency.max(1)),
            metrics,
            denials: Mutex::new((None, 0)),
        }
    }

    /// Delivers `events` (one batch, at most the destination's batch size) in bodies made by
    /// `build`, and says per event (in the same order) whether it was delivered or given up on.
    /// Events to send again are taken back out of the refused body ([`RequestBody::take_events`]),
    /// so none is kept twice.
    pub async fn deliver(
        &self,
        events: Vec<EventText>,
        build: &BuildBody<'_>,
    ) -> Vec<Result<(), GaveUp>> {
        self.deliver_telling(events, build, None).await
    }

    /// [`Sender::deliver`], telling `on_retry` of every try that will be tried again.
    pub async fn deliver_telling(
        &self,
        events: Vec<EventText>,
        build: &BuildBody<'_>,
        on_retry: Option<&OnRetry<'_>>,
    ) -> Vec<Result<(), GaveUp>> {
        let mut fates: Vec<Option<Result<(), GaveUp>>> = vec![None; events.len()];
        let mut parts = vec![Part {
            positions: (0..events.len()).collect(),
            events,
            depth: 0,
        }];
        while let Some(Part {
            positions,
            events,
            depth,
        }) = parts.pop()
        {
            let count = events.len() as u64;
            // The body holds the events' text from here on.
            let body = build(&events);
            drop(events);
            let retrying = |reason: &str| {
                if let Some(tell) = on_retry {
                    tell(&positions, reason, self.transport.code_in(reason));
                }
            };
            let answer = self.send(&body, count, &retrying).await;
            let sent = Sent {
                positions,
                body,
                depth,
            };
            self.settle(answer, sent, &mut fates, &mut parts);
        }
        fates
            .into_iter()
            .map(|f| {
                f.unwrap_or_else(|| {
                    Err(GaveUp {
                        reason: "no answer settled this event (a bug)".into(),
                    })
                })
            })
            .collect()
    }

    /// Settles the events of a part that went out by the answer to it; what must be sent again is
    /// pushed onto `parts`.
    fn settle(
        &self,
        answer: Result<(), SendError>,
        sent: Sent,
        fates: &mut Fates,
        parts: &mut Vec<Part>,
    ) {
        let positions = &sent.positions;
        match answer {
            Ok(()) => positions.iter().for_each(|&p| fates[p] = Some(Ok(()))),
            Err(SendError::Permanent { reason } | SendError::Retryable { reason, .. }) => {
                give_up(fates, positions, &reason)
            }
            Err(SendError::Denied { reason }) => {
                self.denied(&reason);
                give_up(fates, positions, &reason);
            }
            Err(SendError::Refused { refused, others }) => {
                let n = positions.len();
                let reasons = by_index(&refused);
                let beyond = reasons
                    .range(n..)
                    .next()
                    .map(|(index, why)| format!("{why} (names event {index} of a request of {n})"));
                match (beyond, others) {
                    // An answer that names events the request did not hold names none.
                    (Some(reason), Others::NotSent) => {
                        self.unattributed(reason, sent, fates, parts)
                    }
                    (Some(reason), Others::Delivered) => give_up(fates, positions, &reason),
                    (None, Others::NotSent) if reasons.is_empty() => {
                        self.unattributed("refused, naming no event".into(), sent, fates, parts)
                    }
                    (None, Others::Delivered) => {
                        for (index, &p) in positions.iter().enumerate() {
                            fates[p] = Some(reasons.get(&index).map_or(Ok(()), |why| {
                                Err(GaveUp {
                                    reason: (*why).to_owned(),
                                })
                            }));
                        }
                    }
                    (None, Others::NotSent) => self.send_the_rest(sent, &reasons, fates, parts),
                }
            }
            Err(SendError::Unattributed { reason }) => {
                self.unattributed(reason, sent, fates, parts)
            }
        }
    }

    /// Gives up on the refused events of a part that went out (by their index in its request) and
    /// queues the others to be sent again.
    fn send_the_rest(
        &self,
        sent: Sent,
        reasons: &BTreeMap<usize, &str>,
        fates: &mut Fates,
        parts: &mut Vec<Part>,
    ) {
        let (positions, events) = match self.take_back(sent.body, sent.positions) {
            Ok(taken) => taken,
            Err(positions) => {
                let reason = format!("sent with a refused event; {CANNOT_TAKE_BACK}");
                for (index, p) in positions.into_iter().enumerate() {
                    let reason = reasons
                        .get(&index)
                        .map_or(reason.clone(), |r| (*r).to_owned());
                    fates[p] = Some(Err(GaveUp { reason }));
                }
                return;
            }
        };
        let mut rest = Part {
            positions: Vec::with_capacity(positions.len()),
            events: Vec::with_capacity(positions.len()),
            depth: sent.depth,
        };
        for (index, (p, event)) in positions.into_iter().zip(events).enumerate() {
            match reasons.get(&index) {
                Some(why) => {
                    fates[p] = Some(Err(GaveUp {
                        reason: (*why).to_owned(),
                    }))
                }
                None => {
                    rest.positions.push(p);
                    rest.events.push(event);
                }
            }
        }
        if !rest.positions.is_empty() {
            parts.push(rest);
        }
    }

    /// A part refused because of an event nobody named: split in halves to find it (the first
    /// half pushed last, so that it is sent first), or given up on when it is one event or
    /// [`MAX_SPLIT_DEPTH`] splits deep.
    fn unattributed(&self, reason: String, sent: Sent, fates: &mut Fates, parts: &mut Vec<Part>) {
        let n = sent.positions.len();
        if n <= 1 || sent.depth >= MAX_SPLIT_DEPTH {
            let reason = if n > 1 {
                format!("{reason} (not isolated after {MAX_SPLIT_DEPTH} splits)")
            } else {
                reason
            };
            return give_up(fates, &sent.positions, &reason);
        }
        let depth = sent.depth + 1;
        let (mut positions, mut events) = match self.take_back(sent.body, sent.positions) {
            Ok(taken) => taken,
            Err(positions) => {
                return give_up(fates, &positions, &format!("{reason}; {CANNOT_TAKE_BACK}"));
            }
        };
        let (second_positions, second_events) =
            (positions.split_off(n / 2), events.split_off(n / 2));
        parts.push(Part {
            positions: second_positions,
            events: second_events,
            depth,
        });
        parts.push(Part {
            positions,
            events,
            depth,
        });
    }

    /// The events of a body that went out, taken back out of it to be sent again, with their
    /// positions; `Err` (with the positions) when the transport cannot.
    fn take_back(
        &self,
        body: RequestBody,
        positions: Vec<usize>,
    ) -> Result<(Vec<usize>, Vec<EventText>), Vec<usize>> {
        match body.take_events() {
            Some(events) if events.len() == positions.len() => Ok((positions, events)),
            _ => Err(positions),
        }
    }

    /// Logs a denial (at most once per [`DENIAL_LOG_INTERVAL`], saying how many were not logged)
    /// and counts it: every later request of this destination will fail the same way.
    fn denied(&self, reason: &str) {
        self.metrics
            .errors
            .with_label_values(&[self.name.as_str(), "permission"])
            .inc();
        let mut denials = self.denials.lock().unwrap_or_else(|p| p.into_inner());
        let (last, unlogged) = &mut *denials;
        if last.is_some_and(|at| at.elapsed() < DENIAL_LOG_INTERVAL) {
            *unlogged += 1;
            return;
        }
        let since = match *unlogged {
            0 => String::new(),
            n => format!(" ({n} more requests were refused the same way since the last report)"),
        };
        tracing::error!(
            destination = %self.name,
            "destination `{}` is refused access: {reason}{since}. Every request to it will fail \
             the same way until its access token or permissions are fixed; its events go to the \
             dead letters (`switchyard dead-letters retry` sends them again).",
            self.name
        );
        *last = Some(Instant::now());
        *unlogged = 0;
    }

    /// The platform's answer code in a reason this sender gave ([`Transport::code_in`]).
    pub fn code_in(&self, reason: &str) -> Option<i64> {
        self.transport.code_in(reason)
    }

    /// Sends `body` (holding `events` events) until delivered, an answer other than "try again",
    /// or the last try (then a `Permanent` answer saying so); `retrying` hears of each try that
    /// will be tried again.
    async fn send(
        &self,
        body: &RequestBody,
        events: u64,
        retrying: &(dyn Fn(&str) + Sync),
    ) -> Result<(), SendError> {
        let mut attempt = 1;
        loop {
            let result = {
                let _slot = self
                    .slots
                    .acquire()
                    .await
                    .map_err(|_| SendError::Permanent {
                        reason: "shutting down".into(),
                    })?;
                self.limiter.until_ready().await;
                let started = Instant::now();
                let r = self.transport.send(body).await;
                self.metrics
                    .request_seconds
                    .observe(started.elapsed().as_secs_f64());
                r
            };
            let label = match &result {
                Ok(()) => "ok",
                Err(SendError::Retryable { .. }) => "retryable",
                Err(SendError::Refused { .. }) => "refused_events",
                Err(SendError::Unattributed { .. }) => "unattributed",
                Err(SendError::Permanent { .. }) => "permanent",
                Err(SendError::Denied { .. }) => "denied",
            };
            self.metrics
                .requests
                .with_label_values(&[self.name.as_str(), label])
                .inc();
            let Err(SendError::Retryable {
                reason,
                retry_after,
            }) = result
            else {
                return result;
            };
            if attempt >= self.settings.max_attempts {
                return Err(SendError::Permanent {
                    reason: format!("gave up after {attempt} tries: {reason}"),
                });
            }
            self.metrics.event(&self.name, "retried", events);
            retrying(&reason);
            let wait = self.backoff(attempt, retry_after);
            tracing::warn!(
                destination = %self.name,
                attempt,
                events,
                wait_ms = wait.as_millis() as u64,
                "request failed, retrying: {reason}"
            );
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    /// The wait before try `attempt + 1`: full jitter over an exponential ceiling, or the
    /// platform's `Retry-After` when that is longer, never past `max_backoff_ms` (a `Retry-After`
    /// of hours, or of a mistaken number, would hold the round's events that long).
    fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let longest = self.settings.max_backoff_ms;
        let ceiling = self
            .settings
            .initial_backoff_ms
            .saturating_mul(1u64 << attempt.saturating_sub(1).min(30))
            .min(longest);
        let jittered = Duration::from_millis(rand::rng().random_range(ceiling / 2..=ceiling));
        let wait = retry_after.map_or(jittered, |r| r.max(jittered));
        wait.min(Duration::from_millis(longest))
    }
}

/// Gives up on the events at `positions`, all for `reason`.
fn give_up(fates: &mut Fates, positions: &[usize], reason: &str) {
    for &p in positions {
        fates[p] = Some(Err(GaveUp {
            reason: reason.to_owned(),
        }));
    }
}

/// The reasons of refused events by their index in the request (the first, for an index named
/// twice).
fn by_index(refused: &[Refusal]) -> BTreeMap<usize, &str> {
    let mut reasons = BTreeMap::new();
    for r in refused {
        reasons.entry(r.index).or_insert(r.reason.as_str());
    }
    reasons
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};
    use switchyard_core::destination::Sending;

    type Answer = dyn Fn(&[Value]) -> Result<(), SendError> + Send + Sync;

    /// A transport whose bodies are arrays of events, answered by a function; it keeps the size
    /// of every body.
    struct Fake {
        answer: Box<Answer>,
        sizes: Arc<Mutex<Vec<usize>>>,
    }

    impl Transport for Fake {
        fn send<'a>(&'a self, body: &'a RequestBody) -> Sending<'a> {
            let events: Vec<Value> = serde_json::from_str(body.text()).unwrap();
            self.sizes.lock().unwrap().push(events.len());
            let answer = (self.answer)(&events);
            Box::pin(async move { answer })
        }
    }

    fn fake(answer: Box<Answer>) -> (Sender, Arc<Mutex<Vec<usize>>>, Arc<Metrics>) {
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let metrics = Arc::new(Metrics::new());
        let settings = Delivery {
            max_requests_per_second: 1_000_000.0,
            ..Delivery::default()
        };
        let fake = Fake {
            answer,
            sizes: sizes.clone(),
        };
        let sender = Sender::new("d", Box::new(fake), settings, metrics.clone());
        (sender, sizes, metrics)
    }

    /// Bodies that are arrays of the events.
    fn array(events: &[EventText]) -> RequestBody {
        let mut text = "[".to_owned();
        let mut ranges = Vec::new();
        for (i, e) in events.iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            ranges.push(text.len()..text.len() + e.as_str().len());
            text.push_str(e.as_str());
        }
        text.push(']');
        RequestBody::from_parts(text, ranges)
    }

    /// Bodies that are arrays of the events but say that they lie elsewhere (a bug).
    fn misplaced(events: &[EventText]) -> RequestBody {
        let body = array(events);
        let text = body.text().to_owned();
        RequestBody::from_parts(text, vec![0..1; events.len()])
    }

    fn texts(values: impl IntoIterator<Item = Value>) -> Vec<EventText> {
        values
            .into_iter()
            .map(|v| EventText::parsed(&v.to_string()).unwrap())
            .collect()
    }

    fn gave_up(reason: &str) -> Result<(), GaveUp> {
        Err(GaveUp {
            reason: reason.into(),
        })
    }

    #[test]
    fn a_retry_after_is_honoured_up_to_the_longest_backoff() {
        let (sender, _, _) = fake(Box::new(|_: &[Value]| Ok(())));
        let longest = Duration::from_millis(Delivery::default().max_backoff_ms);
        let ten = Duration::from_secs(10);
        // Longer than the backoff: honoured.
        assert_eq!(sender.backoff(1, Some(ten)), ten);
        // Hours, or a mistaken number: held to the longest wait.
        for after in [Duration::from_secs(3600), Duration::from_secs(u64::MAX / 2)] {
            assert_eq!(sender.backoff(1, Some(after)), longest);
        }
        // Without one, the wait grows to the longest and no further.
        assert!(sender.backoff(1, None) <= Duration::from_millis(200));
        assert!(sender.backoff(30, None) <= longest);
    }

    #[tokio::test]
    async fn splitting_stops_at_the_depth_limit() {
        // 4,096 events that are all refused without attribution: 10 splits make parts of 4,
        // which are given up on whole; 1 + 2 + ... + 1,024 = 2,047 requests.
        let refuse = |_: &[Value]| -> Result<(), SendError> {
            Err(SendError::Unattributed {
                reason: "bad".into(),
            })
        };
        let (sender, sizes, _) = fake(Box::new(refuse));
        let events = texts((0..4096).map(|i| json!(i)));
        let fates = sender.deliver(events.clone(), &array).await;
        let sizes = sizes.lock().unwrap().clone();
        assert_eq!(sizes.len(), 2047);
        assert_eq!(sizes.iter().filter(|&&n| n == 4).count(), 1024);
        assert!(sizes.iter().all(|&n| n >= 4));
        assert!(
            fates
                .iter()
                .all(|f| *f == gave_up("bad (not isolated after 10 splits)"))
        );
    }

    #[tokio::test]
    async fn refused_events_are_given_up_on_and_the_others_sent_again_or_not() {
        // Refuses, one at a time by index, the events that are `"bad"`.
        let first_bad = |events: &[Value]| -> Result<(), SendError> {
            match events.iter().position(|e| e == "bad") {
                Some(index) => Err(SendError::Refused {
                    refused: vec![Refusal {
                        index,
                        reason: format!("event {index}"),
                    }],
                    others: Others::NotSent,
                }),
                None => Ok(()),
            }
        };
        let (sender, sizes, _) = fake(Box::new(first_bad));
        let events = texts([json!("a"), json!("bad"), json!("b"), json!("bad")]);
        let fates = sender.deliver(events.clone(), &array).await;
        assert_eq!(
            fates,
            [Ok(()), gave_up("event 1"), Ok(()), gave_up("event 2")]
        );
        assert_eq!(*sizes.lock().unwrap(), [4, 3, 2]);

        // A partial success: the others were delivered, nothing is sent again.
        let partial = |_: &[Value]| -> Result<(), SendError> {
            Err(SendError::Refused {
                refused: vec![Refusal {
                    index: 2,
                    reason: "no".into(),
                }],
                others: Others::Delivered,
            })
        };
        let (sender, sizes, _) = fake(Box::new(partial));
        let fates = sender.deliver(events.clone(), &array).await;
        assert_eq!(fates, [Ok(()), Ok(()), gave_up("no"), Ok(())]);
        assert_eq!(*sizes.lock().unwrap(), [4]);
    }

    #[tokio::test]
    async fn an_answer_naming_an_event_the_request_did_not_hold_names_none() {
        let beyond = |others: Others| {
            move |events: &[Value]| -> Result<(), SendError> {
                if events.len() == 1 {
                    return Ok(());
                }
                Err(SendError::Refused {
                    refused: vec![Refusal {
                        index: 5,
                        reason: "no".into(),
                    }],
                    others,
                })
            }
        };
        let events = texts([json!(1), json!(2)]);
        // The others not sent: as if nobody were named, the batch is split.
        let (sender, sizes, _) = fake(Box::new(beyond(Others::NotSent)));
        assert_eq!(
            sender.deliver(events.clone(), &array).await,
            [Ok(()), Ok(())]
        );
        assert_eq!(*sizes.lock().unwrap(), [2, 1, 1]);
        // The others delivered: which were is unknown, so the whole request failed.
        let (sender, sizes, _) = fake(Box::new(beyond(Others::Delivered)));
        let why = "no (names event 5 of a request of 2)";
        assert_eq!(
            sender.deliver(events.clone(), &array).await,
            [gave_up(why), gave_up(why)]
        );
        assert_eq!(*sizes.lock().unwrap(), [2]);
    }

    #[tokio::test]
    async fn a_denial_gives_up_at_once_and_is_counted() {
        let deny = |_: &[Value]| -> Result<(), SendError> {
            Err(SendError::Denied {
                reason: "no access".into(),
            })
        };
        let (sender, sizes, metrics) = fake(Box::new(deny));
        for _ in 0..2 {
            let fates = sender.deliver(texts([json!(1), json!(2)]), &array).await;
            assert_eq!(fates, [gave_up("no access"), gave_up("no access")]);
        }
        assert_eq!(*sizes.lock().unwrap(), [2, 2], "neither retried nor split");
        let denials = metrics.errors.with_label_values(&["d", "permission"]).get();
        assert_eq!(denials, 2);
        assert_eq!(
            sender.denials.lock().unwrap().1,
            1,
            "logged once, then counted"
        );
    }

    #[tokio::test]
    async fn events_that_cannot_be_taken_back_are_given_up_on_not_lost() {
        let refuse = |_: &[Value]| -> Result<(), SendError> {
            Err(SendError::Unattributed {
                reason: "bad".into(),
            })
        };
        let (sender, sizes, _) = fake(Box::new(refuse));
        let fates = sender
            .deliver(texts([json!(1), json!(2)]), &misplaced)
            .await;
        let why = "bad; its events could not be taken back out of the request to be sent again (a bug in the destination's request bodies)";
        assert_eq!(fates, [gave_up(why), gave_up(why)]);
        assert_eq!(*sizes.lock().unwrap(), [2]);
    }
}
