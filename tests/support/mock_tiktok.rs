//! A mock TikTok Events API on loopback, for tests and the end-to-end benchmark. It checks what the
//! real API checks that matters here (the `Access-Token` header, the body's shape), records every
//! event it accepts, and injects faults on demand, one per request, in order. Events whose
//! `event_id` starts with `bad-` are invalid: it answers them as TikTok answers invalid events
//! ([`BadEvents`]).

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the mock does with one request instead of accepting it.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer with this HTTP status (and `Retry-After` seconds, if given), recording nothing.
    Status(u16, Option<u64>),
    /// Answer HTTP 200 with this TikTok error code and message, recording nothing.
    Code(i64, &'static str),
    /// Wait this long, then accept (a client with a shorter timeout gives up first: the events
    /// are recorded anyway, as a real server may have processed them).
    Delay(Duration),
    /// Close the connection without an answer.
    Reset,
}

/// The mark of an invalid event: an `event_id` that starts with it.
pub const BAD: &str = "bad-";

/// How the mock answers a request that holds invalid events (ids starting with [`BAD`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum BadEvents {
    /// As TikTok: `40002` naming the first invalid event as `Batch.N.event_id: Not a valid
    /// event_id` (one at a time); nothing of the request is recorded.
    #[default]
    Indexed,
    /// `40002` naming no event (`Invalid parameter: an event is invalid`); nothing recorded.
    Unindexed,
    /// `20001` (`Partial success`): the valid events are recorded, the invalid ones listed in
    /// `data.failed_events` as `{"index": N, "message": "event_id: Not a valid event_id"}`.
    Partial,
}

#[derive(Default)]
struct Inner {
    token: String,
    faults: VecDeque<Fault>,
    /// A fault applied to every request while set (after the queued ones).
    always: Option<Fault>,
    events: Vec<Value>,
    /// When each accepted event arrived, with its id.
    arrivals: Vec<(String, std::time::Instant)>,
    /// Keep whole bodies and events (off for the benchmark, which needs only arrivals).
    keep: bool,
    bodies: Vec<Value>,
    requests: usize,
    bad_events: BadEvents,
    /// Events per request whose body was well formed, refused ones included, in arrival order.
    sizes: Vec<usize>,
}

/// A running mock; it stops when dropped.
pub struct MockTiktok {
    pub endpoint: String,
    inner: Arc<Mutex<Inner>>,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl MockTiktok {
    /// Starts the mock on a free loopback port; requests must carry `token`.
    pub fn start(token: &str) -> Self {
        let inner = Arc::new(Mutex::new(Inner {
            token: token.to_owned(),
            keep: true,
            ..Inner::default()
        }));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let state = inner.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("mock runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("mock binds");
                addr_tx
                    .send(listener.local_addr().expect("mock address"))
                    .expect("mock reports its address");
                let app = Router::new()
                    .route("/open_api/v1.3/event/track/", post(track))
                    .with_state(state);
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = rx.await;
                    })
                    .await;
            });
        });
        let addr = addr_rx.recv().expect("mock started");
        Self {
            endpoint: format!("http://{addr}/open_api/v1.3/event/track/"),
            inner,
            _shutdown: tx,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues faults for the next requests, in order.
    pub fn fail_next(&self, faults: impl IntoIterator<Item = Fault>) {
        self.lock().faults.extend(faults);
    }

    /// Applies `fault` to every request from now on (`None`: accept again).
    pub fn fail_always(&self, fault: Option<Fault>) {
        self.lock().always = fault;
    }

    /// How to answer requests holding invalid events from now on.
    pub fn bad_events(&self, answer: BadEvents) {
        self.lock().bad_events = answer;
    }

    /// Events per well-formed request received (refused ones included), in arrival order.
    pub fn sizes(&self) -> Vec<usize> {
        self.lock().sizes.clone()
    }

    /// Keeps only arrival times from now on (what the benchmark needs), not events and bodies.
    pub fn arrivals_only(&self) {
        self.lock().keep = false;
    }

    /// Every accepted event's id with when it arrived, in arrival order.
    pub fn arrivals(&self) -> Vec<(String, std::time::Instant)> {
        self.lock().arrivals.clone()
    }

    /// Payloads that arrived (an id sent twice counts twice): cheap to poll, unlike
    /// [`distinct_arrivals`](Self::distinct_arrivals), which hashes every id under the mock's lock.
    pub fn arrival_count(&self) -> usize {
        self.lock().arrivals.len()
    }

    /// Distinct event ids that arrived.
    pub fn distinct_arrivals(&self) -> usize {
        let s = self.lock();
        let ids: std::collections::HashSet<&str> =
            s.arrivals.iter().map(|(id, _)| id.as_str()).collect();
        ids.len()
    }

    /// Every event accepted so far (duplicates included), in arrival order.
    pub fn events(&self) -> Vec<Value> {
        self.lock().events.clone()
    }

    /// Every accepted request body.
    pub fn bodies(&self) -> Vec<Value> {
        self.lock().bodies.clone()
    }

    /// Requests received, faulty ones included.
    pub fn requests(&self) -> usize {
        self.lock().requests
    }

    /// The `event_id`s accepted, sorted, duplicates included.
    pub fn event_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .events()
            .iter()
            .filter_map(|e| e["event_id"].as_str().map(str::to_owned))
            .collect();
        ids.sort();
        ids
    }

    /// Waits until `n` distinct event ids arrived (or `timeout` passed); returns how many did.
    pub fn wait_for_distinct(&self, n: usize, timeout: Duration) -> usize {
        let until = std::time::Instant::now() + timeout;
        loop {
            let mut ids = self.event_ids();
            ids.dedup();
            if ids.len() >= n || std::time::Instant::now() > until {
                return ids.len();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn answer(code: i64, message: &str) -> Response {
    axum::Json(json!({"code": code, "message": message, "request_id": "mock", "data": {}}))
        .into_response()
}

/// The body's shape as the Events API wants it, or what is wrong.
fn check_body(body: &Value) -> Result<&Vec<Value>, String> {
    let data = body["data"].as_array();
    check_envelope(
        body["event_source"].as_str(),
        body["event_source_id"].as_str(),
        data.map(Vec::len),
    )?;
    let data = data.ok_or("data must be an array")?;
    for e in data {
        if !e["event"].is_string() || !e["event_id"].is_string() || !e["event_time"].is_i64() {
            return Err(format!("an event lacks event, event_id or event_time: {e}"));
        }
    }
    Ok(data)
}

/// The body-level rules both reads check: the source, the pixel code, and 1 to 1000 events
/// (`events`: `None` when `data` is not an array).
fn check_envelope(
    event_source: Option<&str>,
    pixel: Option<&str>,
    events: Option<usize>,
) -> Result<(), String> {
    if event_source != Some("web") {
        return Err("event_source must be \"web\"".into());
    }
    if pixel.map(str::len) != Some(20) {
        return Err("event_source_id must be a pixel code".into());
    }
    match events {
        None => Err("data must be an array".into()),
        Some(n) if !(1..=1000).contains(&n) => {
            Err(format!("data must hold 1 to 1000 events, not {n}"))
        }
        Some(_) => Ok(()),
    }
}

/// Whether an event id marks an invalid event ([`BAD`]).
fn is_bad(id: &str) -> bool {
    id.starts_with(BAD)
}

async fn track(
    State(state): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (fault, keep) = {
        let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
        s.requests += 1;
        (s.faults.pop_front().or_else(|| s.always.clone()), s.keep)
    };
    if let Some(injected) = inject(fault).await {
        return injected;
    }
    let token = headers.get("access-token").and_then(|v| v.to_str().ok());
    if token
        != Some(
            state
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .token
                .as_str(),
        )
    {
        return answer(40001, "Invalid access token");
    }
    if !keep && let Some(ids) = good_ids(&body) {
        let now = std::time::Instant::now();
        let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
        s.sizes.push(ids.len());
        s.arrivals.extend(ids.into_iter().map(|id| (id, now)));
        return answer(0, "OK");
    }
    accept(&state, body)
}

/// The answer an injected fault makes, if it makes one (a delay only waits).
async fn inject(fault: Option<Fault>) -> Option<Response> {
    match fault? {
        Fault::Status(status, retry_after) => {
            let mut r = (
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                "injected fault",
            )
                .into_response();
            if let Some(s) = retry_after
                && let Ok(v) = s.to_string().parse()
            {
                r.headers_mut().insert("retry-after", v);
            }
            Some(r)
        }
        Fault::Code(code, message) => Some(answer(code, message)),
        Fault::Delay(d) => {
            tokio::time::sleep(d).await;
            None
        }
        // Dropping the connection: the task serving it ends without an answer.
        Fault::Reset => panic!("mock: connection reset on purpose"),
    }
}

/// Checks a request's body as TikTok does and records its good events: `OK`, a partial success
/// naming the events refused, or the code that refuses the whole request.
fn accept(state: &Mutex<Inner>, body: Bytes) -> Response {
    // Parsed and checked outside the lock: concurrent requests are not served one at a time.
    let body: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return answer(40002, &format!("body is not JSON: {e}")),
    };
    let data = match check_body(&body) {
        Ok(data) => data,
        Err(why) => return answer(40002, &why),
    };
    let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
    s.sizes.push(data.len());
    let bad = match invalid_events(data, s.bad_events) {
        Ok(bad) => bad,
        Err(message) => return answer(40002, &message),
    };
    let is_good = |i: &usize| !bad.contains(i);
    let now = std::time::Instant::now();
    let ids: Vec<(String, std::time::Instant)> = (0..data.len())
        .filter(is_good)
        .filter_map(|i| Some((data[i]["event_id"].as_str()?.to_owned(), now)))
        .collect();
    s.arrivals.extend(ids);
    if s.keep {
        let good: Vec<Value> = (0..data.len())
            .filter(is_good)
            .map(|i| data[i].clone())
            .collect();
        s.events.extend(good);
        s.bodies.push(body);
    }
    if bad.is_empty() {
        return answer(0, "OK");
    }
    let failed: Vec<Value> = bad
        .iter()
        .map(|i| json!({"index": i, "message": "event_id: Not a valid event_id"}))
        .collect();
    let partial = json!({"code": 20001, "message": "Partial success", "request_id": "mock",
        "data": {"failed_events": failed}});
    axum::Json(partial).into_response()
}

/// What [`check_body`] reads of a body, borrowed from it. The benchmark's path: it records only
/// arrivals, and the mock shares the machine with the service it measures, so it does not build
/// a tree of every event it receives.
///
/// It is laxer than the full path in ways the service never tests: it does not look into the
/// fields it does not read (a lone surrogate or 128 levels of nesting there), and serde would
/// read an event written as an array in field order. The tests that check what the service sends
/// keep whole bodies, so they go through the full path.
#[derive(serde::Deserialize)]
struct Shape<'a> {
    #[serde(borrow)]
    event_source: Cow<'a, str>,
    #[serde(borrow)]
    event_source_id: Cow<'a, str>,
    #[serde(borrow)]
    data: Vec<Head<'a>>,
}

/// What [`check_body`] reads of an event: `event` and `event_time` are read for their types.
#[derive(serde::Deserialize)]
struct Head<'a> {
    #[serde(borrow, rename = "event")]
    _event: Cow<'a, str>,
    #[serde(borrow)]
    event_id: Cow<'a, str>,
    #[serde(rename = "event_time")]
    _event_time: i64,
}

/// The event ids of a well-formed body that holds no invalid event, read through [`Shape`] (see
/// there for what it does not check); `None` for any other body, which the full path then answers
/// (and words what is wrong).
fn good_ids(body: &[u8]) -> Option<Vec<String>> {
    let text = std::str::from_utf8(body).ok()?;
    if !text.trim_start().starts_with('{') {
        return None;
    }
    let shape: Shape = serde_json::from_str(text).ok()?;
    let envelope = check_envelope(
        Some(&shape.event_source),
        Some(&shape.event_source_id),
        Some(shape.data.len()),
    );
    let good = envelope.is_ok() && !shape.data.iter().any(|e| is_bad(&e.event_id));
    good.then(|| {
        shape
            .data
            .into_iter()
            .map(|e| e.event_id.into_owned())
            .collect()
    })
}

/// The indexes of a request's invalid events (ids starting with [`BAD`]) when the mock answers
/// them per event (`Partial`), or the message of the `40002` that refuses the whole request.
fn invalid_events(data: &[Value], answer_with: BadEvents) -> Result<Vec<usize>, String> {
    let bad: Vec<usize> = (0..data.len())
        .filter(|&i| data[i]["event_id"].as_str().is_some_and(is_bad))
        .collect();
    match (bad.first(), answer_with) {
        (None, _) | (Some(_), BadEvents::Partial) => Ok(bad),
        (Some(first), BadEvents::Indexed) => {
            Err(format!("Batch.{first}.event_id: Not a valid event_id"))
        }
        (Some(_), BadEvents::Unindexed) => Err("Invalid parameter: an event is invalid".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The benchmark's path accepts the bodies the full path accepts without invalid events, and
    /// reads the same ids; of these bodies, it accepts nothing else.
    #[test]
    fn the_light_path_answers_these_bodies_as_the_full_path_does() {
        let event =
            |id: &str| json!({"event": "Purchase", "event_id": id, "event_time": 1, "x": [1]});
        let body = |data: Value| json!({"event_source": "web", "event_source_id": "CJQBODJC77UB4MRTGFRF", "data": data});
        let mut bodies = vec![
            body(json!([event("a"), event("b")])),
            body(json!([event("a"), event("bad-1")])),
            body(json!([])),
            body(json!(
                (0..1001).map(|i| event(&i.to_string())).collect::<Vec<_>>()
            )),
            body(json!([{"event": "Purchase", "event_id": "a", "event_time": "1"}])),
            body(json!([{"event": 1, "event_id": "a", "event_time": 1}])),
            body(json!([{"event_id": "a", "event_time": 1}])),
            body(json!([{"event": "Purchase", "event_id": "a", "event_time": 1.5}])),
            json!({"event_source": "app", "event_source_id": "CJQBODJC77UB4MRTGFRF", "data": [event("a")]}),
            json!({"event_source": "web", "event_source_id": "short", "data": [event("a")]}),
            json!({"event_source": "web", "event_source_id": "CJQBODJC77UB4MRTGFRF"}),
        ];
        bodies.push(body(json!(
            (0..1000).map(|i| event(&i.to_string())).collect::<Vec<_>>()
        )));
        let mut accepted = 0;
        for b in &bodies {
            let text = serde_json::to_vec(b).unwrap();
            let full = check_body(b).ok().and_then(|data| {
                let ids: Vec<String> = data
                    .iter()
                    .map(|e| e["event_id"].as_str().unwrap_or_default().to_owned())
                    .collect();
                (!ids.iter().any(|id| is_bad(id))).then_some(ids)
            });
            assert_eq!(good_ids(&text), full, "{b}");
            accepted += usize::from(full.is_some());
        }
        assert_eq!(accepted, 2);
        // Text the full path refuses as JSON, and a body that is an array.
        let event = r#"{"event":"Purchase","event_id":"a","event_time":1}"#;
        for text in [
            "not json".to_owned(),
            format!(
                r#"{{"event_source":"web","event_source_id":"CJQBODJC77UB4MRTGFRF","data":[{event}]"#
            ),
            r#"["web","CJQBODJC77UB4MRTGFRF",[["Purchase","a",1]]]"#.to_owned(),
        ] {
            assert_eq!(good_ids(text.as_bytes()), None, "{text}");
        }
        let mut invalid = format!(
            r#"{{"event_source":"web","event_source_id":"CJQBODJC77UB4MRTGFRF","data":[{event}]}}"#
        )
        .into_bytes();
        let at = invalid.len() - 40;
        invalid[at] = 0xff;
        assert_eq!(good_ids(&invalid), None, "not UTF-8");
    }
}
