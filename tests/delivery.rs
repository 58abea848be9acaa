//! `switchyard serve` end to end, as a child process against the mock TikTok Events API on
//! loopback: ingestion answers, exactly-once delivery in the happy path, retries under faults,
//! dead letters for permanent errors, answers about single events (an invalid event named by its
//! index, named by none, a partial success) and a denied destination, a `kill -9` mid-stream, a
//! full disk budget, a graceful shutdown; a transform plugin's poison event failing alone; and
//! `replay` / `dead-letters` through the same path; and the PGO build's training load
//! (`scripts/pgo-train.py`), which drives `serve` the same way; and `serve`'s memory without
//! transparent huge pages.

use serde_json::{Value, json};
use std::time::Duration;
use switchyard_tests::mock_tiktok::{BadEvents, Fault, MockTiktok};
use switchyard_tests::service::*;

struct Setup {
    mock: MockTiktok,
    dir: tempfile::TempDir,
    config: std::path::PathBuf,
}

fn setup(server: &str, delivery: &str) -> Setup {
    let mock = MockTiktok::start(TOKEN);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("switchyard.yaml");
    let text = serve_config(&mock.endpoint, &dir.path().join("data"), server, delivery);
    std::fs::write(&config, text).unwrap();
    Setup { mock, dir, config }
}

const WAIT: Duration = Duration::from_secs(30);

fn distinct(ids: &[String]) -> usize {
    let mut d = ids.to_vec();
    d.dedup();
    d.len()
}

#[test]
fn every_event_is_delivered_exactly_once_in_the_happy_path() {
    let s = setup("", "");
    let service = Service::start(&s.config, None);
    let url = service.url("/v1/events");
    for chunk in 0..4 {
        let events = cart_events("happy", chunk * 50..(chunk + 1) * 50);
        let a = post_events(&url, &json!(events)).unwrap();
        assert_eq!(a.status, 202, "{}", a.body);
        assert_eq!(a.body["accepted"], 50);
    }
    assert_eq!(s.mock.wait_for_distinct(200, WAIT), 200);
    std::thread::sleep(Duration::from_millis(300));
    let ids = s.mock.event_ids();
    assert_eq!(ids.len(), 200, "no duplicates without faults");
    // Batches up to batch_size (100), with the destination's body shape.
    let bodies = s.mock.bodies();
    assert!(
        bodies
            .iter()
            .all(|b| b["data"].as_array().unwrap().len() <= 100)
    );
    assert_eq!(bodies[0]["event_source_id"], "CJQBODJC77UB4MRTGFRF");
    assert_eq!(s.mock.events()[0]["event"], "AddToCart");
    let text = service.metrics();
    assert!(
        text.contains(
            "switchyard_destination_events_total{destination=\"tiktok\",status=\"delivered\"} 200"
        ),
        "{text}"
    );
    assert!(text.contains("switchyard_delivery_latency_seconds_count{destination=\"tiktok\"} 200"));
    // Every event was planned as ingestion parsed it: none parsed again from the queue.
    assert!(
        text.contains("switchyard_planned_events_total{from=\"ingestion\"} 200"),
        "{text}"
    );
    assert!(!text.contains("switchyard_planned_events_total{from=\"queue\"}"));
    assert_eq!(
        http("GET", &service.url("/healthz"), &[], None)
            .unwrap()
            .status,
        200
    );
    assert_eq!(
        http("GET", &service.url("/readyz"), &[], None)
            .unwrap()
            .status,
        200
    );
}

/// mimalloc's arenas on huge pages made the kernel zero 2 MiB at a time under `serve`'s churn
/// (BENCHMARKS.md, round twenty-eight): `serve` turns them off for itself.
#[test]
#[cfg(target_os = "linux")]
fn serve_runs_without_transparent_huge_pages() {
    let s = setup("", "");
    let service = Service::start(&s.config, None);
    let status = std::fs::read_to_string(format!("/proc/{}/status", service.pid())).unwrap();
    let thp = status
        .lines()
        .find_map(|l| l.strip_prefix("THP_enabled:"))
        .map(str::trim);
    assert_eq!(thp, Some("0"), "{status}");
    // And it serves as before.
    let url = service.url("/v1/events");
    let a = post_events(&url, &json!(cart_events("thp", 0..3))).unwrap();
    assert_eq!(a.status, 202, "{}", a.body);
    assert_eq!(s.mock.wait_for_distinct(3, WAIT), 3);
}

#[test]
fn ingestion_authenticates_validates_and_says_what_it_refused() {
    let s = setup(", max_body_kib: 4", "");
    let service = Service::start(&s.config, None);
    let url = service.url("/v1/events");
    let one = cart_events("in", 0..1).remove(0);
    let body = serde_json::to_vec(&one).unwrap();
    let no_key = http(
        "POST",
        &url,
        &[("content-type", "application/json")],
        Some(body.clone()),
    );
    assert_eq!(no_key.unwrap().status, 401);
    let bad_key = http(
        "POST",
        &url,
        &[
            ("x-webhook-token", "nope"),
            ("content-type", "application/json"),
        ],
        Some(body.clone()),
    );
    assert_eq!(bad_key.unwrap().status, 401);
    // A byte-order mark first (as .NET writes it) is read past, for one event or an array.
    for (i, text) in [
        cart_events("in-bom", 1..2).remove(0),
        json!(cart_events("in-bom", 2..3)),
    ]
    .iter()
    .enumerate()
    {
        let mut with_bom = "\u{feff}".as_bytes().to_vec();
        with_bom.extend(serde_json::to_vec(text).unwrap());
        let headers = [
            ("x-webhook-token", WRITE_KEY),
            ("content-type", "application/json"),
        ];
        let a = http("POST", &url, &headers, Some(with_bom)).unwrap();
        assert_eq!(a.status, 202, "{i}: {}", a.body);
    }
    let not_json = http(
        "POST",
        &url,
        &[
            ("x-webhook-token", WRITE_KEY),
            ("content-type", "text/plain"),
        ],
        Some(body.clone()),
    );
    assert_eq!(not_json.unwrap().status, 415);
    // A compressed body, or JSON in another charset, would be misread: refused as unsupported.
    for (name, value) in [
        ("content-encoding", "gzip"),
        ("content-type", "application/json; charset=latin1"),
    ] {
        let mut headers = vec![("x-webhook-token", WRITE_KEY), (name, value)];
        if name != "content-type" {
            headers.push(("content-type", "application/json"));
        }
        let a = http("POST", &url, &headers, Some(body.clone())).unwrap();
        assert_eq!(a.status, 415, "{name}: {value}: {}", a.body);
    }
    let too_big = post_events(&url, &json!(cart_events("big", 0..40))).unwrap();
    assert_eq!(too_big.status, 413);

    // A single event (not an array) is accepted.
    let a = post_events(&url, &one).unwrap();
    assert_eq!((a.status, a.body["accepted"].clone()), (202, json!(1)));
    // Partial failure: which events were refused, and why; a repeat is a duplicate.
    let mut broken = cart_events("in", 1..2).remove(0);
    broken.as_object_mut().unwrap().remove("aliases");
    let a = post_events(&url, &json!([one, broken, cart_events("in", 2..3)[0]])).unwrap();
    assert_eq!(a.status, 202, "{}", a.body);
    assert_eq!(a.body["accepted"], 1);
    assert_eq!(a.body["duplicates"], 1);
    assert_eq!(
        a.body["rejected"],
        json!([{"index": 1, "event_id": "in-1", "reason": "`aliases` is missing"}])
    );
    let all_bad = post_events(&url, &json!([{"event_name": "x"}])).unwrap();
    assert_eq!(all_bad.status, 400, "{}", all_bad.body);
    // Bodies of the wrong shape: named, with serde_json's line and column for broken JSON.
    let raw = |body: &str| {
        let headers = [
            ("x-webhook-token", WRITE_KEY),
            ("content-type", "application/json"),
        ];
        http("POST", &url, &headers, Some(body.as_bytes().to_vec())).unwrap()
    };
    let broken = raw("[{\"event_name\": ");
    assert_eq!(broken.status, 400);
    assert!(
        broken.body["error"]
            .as_str()
            .unwrap()
            .starts_with("the body is not JSON: EOF while parsing"),
        "{}",
        broken.body
    );
    for scalar in ["\"an event\"", "42", "null"] {
        let a = raw(scalar);
        assert_eq!(a.status, 400, "{scalar}");
        assert_eq!(
            a.body["error"],
            "the body must be an event (an object) or an array of events"
        );
    }
    let spaced = format!("\n  {}", json!([cart_events("in", 3..4)[0]]));
    let a = raw(&spaced);
    assert_eq!((a.status, a.body["accepted"].clone()), (202, json!(1)));
    assert_eq!(
        s.mock.wait_for_distinct(5, WAIT),
        5,
        "three, and the two after a mark"
    );
}

#[test]
fn retryable_faults_are_retried_until_delivered() {
    let s = setup("", "");
    s.mock.fail_next([
        Fault::Status(429, Some(1)),
        Fault::Status(500, None),
        Fault::Code(40100, "Too many requests"),
        Fault::Reset,
        Fault::Status(503, None),
    ]);
    let service = Service::start(&s.config, None);
    let a = post_events(
        &service.url("/v1/events"),
        &json!(cart_events("retry", 0..30)),
    )
    .unwrap();
    assert_eq!(a.status, 202);
    assert_eq!(s.mock.wait_for_distinct(30, WAIT), 30);
    assert!(s.mock.requests() >= 6, "five faults, then success");
    let text = service.metrics();
    assert!(
        text.contains("switchyard_requests_total{destination=\"tiktok\",result=\"retryable\"} 5"),
        "{text}"
    );
}

#[test]
fn one_destination_retrying_does_not_hold_up_the_others() {
    // `slow` answers every request with a rate limit and a long `Retry-After`: its rounds wait
    // for their retries. `fast` must get every event meanwhile, though there are more rounds than
    // rounds in flight (8).
    let fast = setup("shutdown_timeout_ms: 500", "");
    let slow = MockTiktok::start(TOKEN);
    slow.fail_always(Some(Fault::Status(429, Some(30))));
    let config = std::fs::read_to_string(&fast.config).unwrap();
    let second = format!(
        "  - name: slow\n    type: tiktok\n    pixel_id: CJQBODJC77UB4MRTGFRF\n    access_token: \"${{SY_TIKTOK_TOKEN}}\"\n    domain: https://shop.example.com\n    sources: [server]\n    endpoint: {}\n    delivery: {{max_backoff_ms: 60000, max_requests_per_second: 1000}}\nserver:",
        slow.endpoint
    );
    std::fs::write(&fast.config, config.replacen("server:", &second, 1)).unwrap();
    let service = Service::start(&fast.config, None);
    for i in 0..20 {
        let events = json!(cart_events(&format!("hol{i}"), 0..1));
        assert_eq!(
            post_events(&service.url("/v1/events"), &events)
                .unwrap()
                .status,
            202
        );
        std::thread::sleep(Duration::from_millis(60));
    }
    assert_eq!(fast.mock.wait_for_distinct(20, WAIT), 20);
    assert!(
        slow.requests() >= 9,
        "more rounds than in flight reached `slow`"
    );
}

#[test]
fn timeouts_are_retried() {
    let s = setup("", ", timeout_ms: 300");
    s.mock
        .fail_next([Fault::Delay(Duration::from_millis(1500))]);
    let service = Service::start(&s.config, None);
    let a = post_events(
        &service.url("/v1/events"),
        &json!(cart_events("slow", 0..5)),
    )
    .unwrap();
    assert_eq!(a.status, 202);
    assert_eq!(s.mock.wait_for_distinct(5, WAIT), 5);
    drop(service);
}

#[test]
fn permanent_errors_go_to_dead_letters_and_can_be_retried() {
    let s = setup("", "");
    // Every request refused, naming no event: delivery splits the batch down to single events,
    // each refused too (a one-off refusal would only make it send the halves again).
    s.mock
        .fail_always(Some(Fault::Code(40002, "Invalid parameter: event_time")));
    let service = Service::start(&s.config, None);
    let a = post_events(
        &service.url("/v1/events"),
        &json!(cart_events("perm", 0..3)),
    )
    .unwrap();
    assert_eq!(a.status, 202);
    // Wait until the round is settled, then stop the service: `dead-letters` works on the data
    // directory of a stopped service (the queue file is locked while one runs).
    let failed = "switchyard_destination_events_total{destination=\"tiktok\",status=\"failed\"} 3";
    let mut settled = false;
    for _ in 0..400 {
        if service.metrics().contains(failed) {
            settled = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(settled, "three events failed for good");
    let (clean, log) = service.terminate();
    assert!(clean, "{log}");
    let (code, listed, err) = cli(&[
        "dead-letters",
        "list",
        "--config",
        s.config.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let letters: Vec<Value> = listed
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(letters.len(), 3, "{listed}\n{log}");
    assert_eq!(letters[0]["destination"], "tiktok");
    assert_eq!(
        letters[0]["reason"],
        "refused: HTTP 200, code 40002: Invalid parameter: event_time"
    );
    assert_eq!(letters[0]["event"]["event_id"], "perm-0");
    assert!(s.mock.event_ids().is_empty());
    assert!(
        !log.contains(TOKEN) && !listed.contains(TOKEN),
        "the token never shows"
    );

    s.mock.fail_always(None);
    let config = s.config.to_str().unwrap();
    // One chosen by id, then a listing of one destination's, then the rest.
    let second = letters[1]["id"].as_u64().unwrap().to_string();
    let (code, _, err) = cli(&["dead-letters", "retry", "--config", config, "--id", &second]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("retried 1 dead letters"), "{err}");
    assert_eq!(s.mock.event_ids(), ["perm-1"]);
    let (code, listed, err) = cli(&[
        "dead-letters",
        "list",
        "--config",
        config,
        "--destination",
        "tiktok",
    ]);
    assert_eq!((code, listed.lines().count()), (0, 2), "{err}");
    let (_, listed, _) = cli(&[
        "dead-letters",
        "list",
        "--config",
        config,
        "--destination",
        "other",
    ]);
    assert!(listed.is_empty(), "{listed}");
    let (code, _, err) = cli(&["dead-letters", "retry", "--config", config]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("retried 2 dead letters"), "{err}");
    assert!(err.contains("tiktok: platform events 2 delivered"), "{err}");
    assert_eq!(s.mock.event_ids(), ["perm-0", "perm-1", "perm-2"]);
    let (_, listed, _) = cli(&[
        "dead-letters",
        "list",
        "--config",
        s.config.to_str().unwrap(),
    ]);
    assert!(listed.is_empty(), "{listed}");
}

/// Adds the `picky` plugin (the hostile example: it traps on any event that holds `boom`) to the
/// setup's config, as a transform of every event.
fn with_picky_plugin(s: &Setup) {
    let mut text = std::fs::read_to_string(&s.config).unwrap();
    text.push_str(&format!(
        "transforms:\n  - name: picky\n    path: {}\n    config: {{mode: picky}}\n",
        switchyard_tests::plugin_wasm("hostile").display()
    ));
    std::fs::write(&s.config, switchyard_tests::allow_plugin_dir(&text)).unwrap();
}

/// The traps `serve` counted for the `picky` plugin (0 before the first).
fn picky_traps(service: &Service) -> u64 {
    let metrics = service.metrics();
    let prefix = "switchyard_plugin_traps_total{plugin=\"picky\"} ";
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(prefix))
        .map_or(0, |n| n.trim().parse().expect("a count"))
}

#[test]
fn a_poison_event_fails_alone_in_delivery_and_plugin_traps_are_counted() {
    let s = setup("", "");
    with_picky_plugin(&s);
    let service = Service::start(&s.config, None);
    let mut events = cart_events("poison", 0..50);
    for i in [10, 30] {
        events[i]["properties"]["note"] = json!("boom");
    }
    // One request: one append, read as one round, one batch call for the plugin.
    let a = post_events(&service.url("/v1/events"), &json!(events)).unwrap();
    assert_eq!(a.status, 202, "{}", a.body);
    assert_eq!(s.mock.wait_for_distinct(48, WAIT), 48);
    // The batch call trapped, then each poison event alone: 3 traps.
    let traps = "switchyard_plugin_traps_total{plugin=\"picky\"} 3";
    let mut counted = false;
    for _ in 0..400 {
        if service.metrics().contains(traps) {
            counted = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(counted, "{}", service.metrics());
    let (letters, _) = stop_and_list(service, &s.config);
    let ids = s.mock.event_ids();
    assert_eq!(ids.len(), 48, "each good event once");
    assert!(!ids.iter().any(|id| id == "poison-10" || id == "poison-30"));
    let found: Vec<(&str, &str, &str)> = letters
        .iter()
        .map(|l| {
            (
                l["destination"].as_str().unwrap(),
                l["event"]["event_id"].as_str().unwrap(),
                l["reason"].as_str().unwrap(),
            )
        })
        .collect();
    let trap = "plugin `picky` failed: trapped: wasm trap: wasm `unreachable` instruction executed";
    assert_eq!(
        found,
        [("*", "poison-10", trap), ("*", "poison-30", trap)],
        "{letters:?}"
    );
}

/// A plugin under load: clients posting at once, rounds planned side by side (one per core, each
/// calling the plugin), poison events scattered through the stream. Every good event reaches the
/// API exactly once, every poison event is dead-lettered with its trap, nothing else is.
#[test]
fn under_load_a_plugin_fails_only_its_poison_events_and_loses_none() {
    const CLIENTS: usize = 4;
    const REQUESTS: usize = 10;
    const PER_REQUEST: usize = 20;
    let s = setup("", "");
    with_picky_plugin(&s);
    let service = Service::start(&s.config, None);
    let url = service.url("/v1/events");
    let poison = |i: usize| i % 29 == 5;
    std::thread::scope(|scope| {
        for c in 0..CLIENTS {
            let url = &url;
            scope.spawn(move || {
                for r in 0..REQUESTS {
                    let first = (c * REQUESTS + r) * PER_REQUEST;
                    let mut events = cart_events("load", first..first + PER_REQUEST);
                    for (i, e) in (first..).zip(events.iter_mut()) {
                        if poison(i) {
                            e["properties"]["note"] = json!("boom");
                        }
                    }
                    let a = post_events(url, &json!(events)).unwrap();
                    assert_eq!(a.status, 202, "{}", a.body);
                }
            });
        }
    });
    let total = CLIENTS * REQUESTS * PER_REQUEST;
    let bad: Vec<String> = (0..total)
        .filter(|i| poison(*i))
        .map(|i| format!("load-{i}"))
        .collect();
    let good = total - bad.len();
    assert_eq!(s.mock.wait_for_distinct(good, WAIT), good);
    // Each poison event trapped alone (besides the batch calls it made trap first).
    for _ in 0..400 {
        if picky_traps(&service) >= bad.len() as u64 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        picky_traps(&service) >= bad.len() as u64,
        "{}",
        service.metrics()
    );
    let (letters, _) = stop_and_list(service, &s.config);
    let ids = s.mock.event_ids();
    assert_eq!(ids.len(), good, "each good event once");
    assert!(
        ids.iter().all(|id| !bad.contains(id)),
        "a poison event was sent"
    );
    let mut dead: Vec<String> = letters
        .iter()
        .map(|l| {
            let reason = l["reason"].as_str().unwrap();
            assert!(reason.starts_with("plugin `picky` failed: trapped"), "{l}");
            l["event"]["event_id"].as_str().unwrap().to_owned()
        })
        .collect();
    dead.sort();
    let mut expected = bad.clone();
    expected.sort();
    assert_eq!(dead, expected, "exactly the poison events are dead letters");
}

/// A free loopback port (bound, then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn a_kill_9_mid_stream_loses_nothing() {
    const N: usize = 3000;
    // Slow delivery (10 requests/s of 100 events) so that events are queued when the kill comes.
    let s = setup("", ", max_requests_per_second: 10");
    let listen = format!("127.0.0.1:{}", free_port());
    let mut service = Some(Service::start(&s.config, Some(&listen)));
    let url = format!("http://{listen}/v1/events");
    let mut restarted = false;
    let mut acknowledged = 0;
    for start in (0..N).step_by(100) {
        let events = json!(cart_events("crash", start..start + 100));
        loop {
            match post_events(&url, &events) {
                Ok(a) if a.status == 202 => break,
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
        acknowledged += 100;
        if acknowledged == N / 2 && !restarted {
            // Crash with half the stream acknowledged, most of it not yet delivered.
            let delivered_before = distinct(&s.mock.event_ids());
            assert!(
                delivered_before < acknowledged,
                "the kill must find events queued"
            );
            service.take().unwrap().kill9();
            service = Some(Service::start(&s.config, Some(&listen)));
            restarted = true;
        }
    }
    // Speed up: the restarted service still runs at 10 requests/s; 3000 events need ~3 s.
    assert_eq!(s.mock.wait_for_distinct(N, Duration::from_secs(60)), N);
    let ids = s.mock.event_ids();
    for id in &ids {
        assert!(id.starts_with("crash-"), "only the stream's ids: {id}");
    }
    // The restarted service parsed what the first one had queued from the queue (nothing was
    // handed over across the crash), and the events it ingested itself as ingestion parsed them.
    let text = service.as_ref().unwrap().metrics();
    let planned = |from: &str| -> u64 {
        let line = format!("switchyard_planned_events_total{{from=\"{from}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(line.as_str()))
            .map_or(0, |n| n.parse().unwrap())
    };
    assert!(planned("queue") > 0, "{text}");
    assert!(planned("ingestion") > 0, "{text}");
    drop(service);
}

#[test]
fn a_full_disk_budget_answers_503_and_loses_nothing() {
    // 1 MiB of queue; the mock refuses everything at first, so nothing drains.
    // Retries outlast the refusals: nothing may end in the dead letters here.
    let s = setup(", queue_budget_mib: 1", ", max_attempts: 100");
    s.mock.fail_always(Some(Fault::Status(503, None)));
    let service = Service::start(&s.config, None);
    let url = service.url("/v1/events");
    let mut accepted = Vec::new();
    let mut refused = None;
    for start in (0..20_000).step_by(200) {
        let events = cart_events("full", start..start + 200);
        let a = post_events(&url, &json!(events)).unwrap();
        if a.status == 503 {
            assert_eq!(a.retry_after.as_deref(), Some("5"));
            assert!(
                a.body["error"]
                    .as_str()
                    .unwrap()
                    .contains("the queue is full")
            );
            refused = Some(events);
            break;
        }
        assert_eq!(a.status, 202);
        accepted.extend(events);
    }
    let refused = refused.expect("the budget filled up");
    assert!(!accepted.is_empty());
    // Let it drain, then the refused request goes through.
    s.mock.fail_always(None);
    let mut retried = false;
    for _ in 0..600 {
        if post_events(&url, &json!(refused)).unwrap().status == 202 {
            retried = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        retried,
        "the refused request is accepted once the queue drains"
    );
    let total = accepted.len() + refused.len();
    assert_eq!(
        s.mock.wait_for_distinct(total, Duration::from_secs(60)),
        total
    );
}

#[test]
fn a_graceful_shutdown_flushes_what_is_queued() {
    // A long linger: without the shutdown flush, these events would wait 60 s.
    let s = setup(", linger_ms: 60000", "");
    let service = Service::start(&s.config, None);
    let a = post_events(
        &service.url("/v1/events"),
        &json!(cart_events("bye", 0..10)),
    )
    .unwrap();
    assert_eq!(a.status, 202);
    std::thread::sleep(Duration::from_millis(100));
    assert!(s.mock.event_ids().is_empty(), "still lingering");
    let (clean, log) = service.terminate();
    assert!(clean, "{log}");
    assert!(log.contains("delivery finished"), "{log}");
    assert!(log.contains("stopped; 0 events queued"), "{log}");
    assert_eq!(s.mock.event_ids().len(), 10);
}

#[test]
fn a_stalled_client_holds_neither_its_connection_nor_the_shutdown() {
    use std::io::{Read, Write};
    let s = setup(", read_timeout_ms: 400, shutdown_timeout_ms: 1500", "");
    let service = Service::start(&s.config, None);
    let addr = service.url("").trim_start_matches("http://").to_owned();
    let connect = || {
        let stream = std::net::TcpStream::connect(&addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream
    };
    let head = format!(
        "POST /v1/events HTTP/1.1\r\nHost: x\r\nx-webhook-token: {WRITE_KEY}\r\ncontent-type: application/json\r\n"
    );
    // Headers that stop half-way: the connection is closed.
    let mut half = connect();
    half.write_all(head.as_bytes()).unwrap();
    let started = std::time::Instant::now();
    let mut answer = Vec::new();
    let _ = half.read_to_end(&mut answer);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // A body that stops: the request is refused, with the reason.
    let mut body = connect();
    body.write_all(format!("{head}content-length: 100\r\n\r\n[").as_bytes())
        .unwrap();
    let mut answer = [0u8; 512];
    let n = body.read(&mut answer).unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]).into_owned();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("server.read_timeout_ms"), "{answer}");
    // One that trickles its body (a byte per 200 ms, within the read limit, for 20 s) at shutdown
    // holds it no longer than the grace period.
    let mut slow = connect();
    slow.write_all(format!("{head}content-length: 100\r\n\r\n").as_bytes())
        .unwrap();
    let trickle = std::thread::spawn(move || {
        for _ in 0..100 {
            if slow.write_all(b" ").is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    let a = post_events(&service.url("/v1/events"), &json!(cart_events("ok", 0..3))).unwrap();
    assert_eq!(a.status, 202);
    let started = std::time::Instant::now();
    let (clean, log) = service.terminate();
    assert!(clean, "{log}");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    assert!(log.contains("delivery finished"), "{log}");
    assert_eq!(s.mock.wait_for_distinct(3, WAIT), 3);
    trickle.join().unwrap();
}

#[test]
fn a_body_that_trickles_is_refused_at_the_body_timeout() {
    use std::io::{Read, Write};
    let s = setup(", read_timeout_ms: 400, body_timeout_ms: 1500", "");
    let service = Service::start(&s.config, None);
    let addr = service.url("").trim_start_matches("http://").to_owned();
    let mut slow = std::net::TcpStream::connect(&addr).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let head = format!(
        "POST /v1/events HTTP/1.1\r\nHost: x\r\nx-webhook-token: {WRITE_KEY}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n"
    );
    slow.write_all(head.as_bytes()).unwrap();
    // A byte per 200 ms: every pause within read_timeout_ms, the whole past body_timeout_ms.
    let started = std::time::Instant::now();
    let mut writer = slow.try_clone().unwrap();
    let trickle = std::thread::spawn(move || {
        for _ in 0..99 {
            if writer.write_all(b" ").is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    let mut answer = [0u8; 1024];
    let n = slow.read(&mut answer).unwrap();
    let elapsed = started.elapsed();
    let answer = String::from_utf8_lossy(&answer[..n]).into_owned();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("server.body_timeout_ms"), "{answer}");
    assert!(
        elapsed >= Duration::from_millis(1400) && elapsed < Duration::from_secs(6),
        "{elapsed:?}"
    );
    drop(slow);
    trickle.join().unwrap();
    // Nothing of it was kept; the service takes the next request.
    let a = post_events(
        &service.url("/v1/events"),
        &json!(cart_events("next", 0..2)),
    )
    .unwrap();
    assert_eq!(a.status, 202, "{}", a.body);
    assert_eq!(s.mock.wait_for_distinct(2, WAIT), 2);
}

#[test]
fn clients_past_max_connections_wait_until_a_connection_closes() {
    let s = setup(", max_connections: 2, read_timeout_ms: 60000", "");
    let service = Service::start(&s.config, None);
    let addr = service.url("").trim_start_matches("http://").to_owned();
    // Two idle connections take both places.
    let idle: Vec<_> = (0..2)
        .map(|_| std::net::TcpStream::connect(&addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let url = service.url("/v1/events");
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let waiting = std::thread::spawn(move || {
        let answer = post_events(&url, &json!(cart_events("waited", 0..3)));
        done_tx.send(answer).unwrap();
    });
    assert!(
        done_rx.recv_timeout(Duration::from_millis(1500)).is_err(),
        "a third connection was served while two were open"
    );
    drop(idle);
    let answer = done_rx
        .recv_timeout(Duration::from_secs(10))
        .unwrap()
        .unwrap();
    assert_eq!(answer.status, 202, "{}", answer.body);
    waiting.join().unwrap();
    assert_eq!(s.mock.wait_for_distinct(3, WAIT), 3);
    let (clean, log) = service.terminate();
    assert!(clean, "{log}");
    assert!(
        log.contains("2 connections open (server.max_connections)"),
        "{log}"
    );
}

#[test]
fn replay_sends_a_file_through_the_delivery_path() {
    let s = setup("", "");
    let mut lines: Vec<String> = cart_events("replay", 0..250)
        .iter()
        .map(Value::to_string)
        .collect();
    lines.push("{\"event_name\": \"broken\"}".into());
    let file = s.dir.path().join("events.ndjson");
    // A line that is not UTF-8 is one invalid line, not the end of the run; a byte-order mark
    // opens the file as in `map`.
    let mut bytes = b"\xef\xbb\xbf".to_vec();
    bytes.extend(lines.join("\n").into_bytes());
    bytes.extend(b"\n{\"event_name\": \"\xff\"}\n");
    std::fs::write(&file, bytes).unwrap();
    // One test-events code: TikTok shows these in its Test Events tool.
    let text = std::fs::read_to_string(&s.config).unwrap().replace(
        "batch_size: 100",
        "batch_size: 100\n    test_event_code: TEST123",
    );
    std::fs::write(&s.config, text).unwrap();
    let (code, _, err) = cli(&[
        "replay",
        "--config",
        s.config.to_str().unwrap(),
        file.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "an invalid line fails the run: {err}");
    assert!(
        err.contains("error: 2 invalid lines, not queued (each is named above"),
        "{err}"
    );
    assert!(!err.contains("dead-letters list"), "{err}");
    assert!(err.contains("line 251: `event_id` is missing"), "{err}");
    assert!(err.contains("line 252: not valid UTF-8 (byte 17 "), "{err}");
    assert!(
        err.contains("250 events queued, 2 invalid lines; tiktok: platform events 250 delivered"),
        "{err}"
    );
    assert_eq!(distinct(&s.mock.event_ids()), 250);
    assert!(
        s.mock
            .bodies()
            .iter()
            .all(|b| b["test_event_code"] == "TEST123")
    );
}

/// The `switchyard_destination_events_total` line of the destination `tiktok` and `status`.
fn events_line(status: &str, n: usize) -> String {
    format!("switchyard_destination_events_total{{destination=\"tiktok\",status=\"{status}\"}} {n}")
}

/// Stops the service (the queue file is locked while it runs) and lists its dead letters; returns
/// them with its log.
fn stop_and_list(service: Service, config: &std::path::Path) -> (Vec<Value>, String) {
    let (clean, log) = service.terminate();
    assert!(clean, "{log}");
    let (code, listed, err) = cli(&["dead-letters", "list", "--config", config.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        !listed.contains(TOKEN) && !log.contains(TOKEN),
        "the token never shows"
    );
    let letters = listed
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (letters, log)
}

/// `(event_id, reason)` of each dead letter, in order.
fn ids_and_reasons(letters: &[Value]) -> Vec<(String, String)> {
    letters
        .iter()
        .map(|l| {
            assert_eq!(l["destination"], "tiktok");
            (
                l["event"]["event_id"].as_str().unwrap().to_owned(),
                l["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn a_batch_of_1000_with_3_invalid_events_delivers_997_and_dead_letters_the_3() {
    let s = setup("", "");
    let text = std::fs::read_to_string(&s.config).unwrap();
    std::fs::write(
        &s.config,
        text.replace("batch_size: 100", "batch_size: 1000"),
    )
    .unwrap();
    let mut events = cart_events("many", 0..1000);
    for i in [10, 500, 990] {
        events[i]["event_id"] = format!("bad-{i}").into();
    }
    let service = Service::start(&s.config, None);
    let a = post_events(&service.url("/v1/events"), &json!(events)).unwrap();
    assert_eq!(
        (a.status, a.body["accepted"].clone()),
        (202, json!(1000)),
        "{}",
        a.body
    );
    assert!(
        wait_for_metrics(
            &service,
            &[&events_line("delivered", 997), &events_line("failed", 3)]
        ),
        "{}",
        service.metrics()
    );
    // TikTok names one invalid event per answer: each request holds one event less.
    assert_eq!(s.mock.sizes(), [1000, 999, 998, 997]);
    let text = service.metrics();
    for result in ["result=\"refused_events\"} 3", "result=\"ok\"} 1"] {
        assert!(
            text.contains(&format!(
                "switchyard_requests_total{{destination=\"tiktok\",{result}"
            )),
            "{text}"
        );
    }
    let ids = s.mock.event_ids();
    assert_eq!(distinct(&ids), 997);
    assert_eq!(ids.len(), 997, "every valid event once");
    assert!(
        ids.iter().all(|id| id.starts_with("many-")),
        "no invalid event delivered"
    );
    let (letters, _) = stop_and_list(service, &s.config);
    // Each with TikTok's message, whose index is the event's in the request that refused it.
    let reason = |n: usize| {
        format!("refused: HTTP 200, code 40002: Batch.{n}.event_id: Not a valid event_id")
    };
    assert_eq!(
        ids_and_reasons(&letters),
        [
            ("bad-10".to_owned(), reason(10)),
            ("bad-500".to_owned(), reason(499)),
            ("bad-990".to_owned(), reason(988)),
        ]
    );
}

/// The sizes of the requests that bisecting `range` sends, left half first, until the events in
/// `bad` are alone (at most 10 splits deep).
fn bisection(range: std::ops::Range<usize>, bad: &[usize], depth: u32, sizes: &mut Vec<usize>) {
    sizes.push(range.len());
    if range.len() > 1 && depth < 10 && bad.iter().any(|b| range.contains(b)) {
        let middle = range.start + range.len() / 2;
        bisection(range.start..middle, bad, depth + 1, sizes);
        bisection(middle..range.end, bad, depth + 1, sizes);
    }
}

#[test]
fn invalid_events_named_by_no_index_are_found_by_splitting_the_batch() {
    let s = setup("", "");
    s.mock.bad_events(BadEvents::Unindexed);
    let bad = [13, 77];
    let mut events = cart_events("split", 0..100);
    for i in bad {
        events[i]["event_id"] = format!("bad-{i}").into();
    }
    let service = Service::start(&s.config, None);
    let a = post_events(&service.url("/v1/events"), &json!(events)).unwrap();
    assert_eq!(a.status, 202, "{}", a.body);
    assert!(
        wait_for_metrics(
            &service,
            &[&events_line("delivered", 98), &events_line("failed", 2)]
        ),
        "{}",
        service.metrics()
    );
    let mut expected = Vec::new();
    bisection(0..100, &bad, 0, &mut expected);
    // 100, 50, 25, 12, 13, 6, 3, 1, 2, 1, 1, ...: 27 requests for 2 invalid events in 100.
    assert_eq!(expected.len(), 27);
    assert_eq!(s.mock.sizes(), expected);
    let ids = s.mock.event_ids();
    assert_eq!(
        (ids.len(), distinct(&ids)),
        (98, 98),
        "each valid event once"
    );
    let (letters, _) = stop_and_list(service, &s.config);
    let reason = "refused: HTTP 200, code 40002: Invalid parameter: an event is invalid".to_owned();
    assert_eq!(
        ids_and_reasons(&letters),
        [
            ("bad-13".to_owned(), reason.clone()),
            ("bad-77".to_owned(), reason)
        ]
    );
}

#[test]
fn a_partial_success_dead_letters_the_events_it_lists_and_no_others() {
    let s = setup("", "");
    s.mock.bad_events(BadEvents::Partial);
    let mut events = cart_events("part", 0..50);
    for i in [5, 6] {
        events[i]["event_id"] = format!("bad-{i}").into();
    }
    let service = Service::start(&s.config, None);
    let a = post_events(&service.url("/v1/events"), &json!(events)).unwrap();
    assert_eq!(a.status, 202, "{}", a.body);
    assert!(
        wait_for_metrics(
            &service,
            &[&events_line("delivered", 48), &events_line("failed", 2)]
        ),
        "{}",
        service.metrics()
    );
    assert_eq!(
        s.mock.sizes(),
        [50],
        "one request: the others were delivered by it"
    );
    let ids = s.mock.event_ids();
    assert_eq!((ids.len(), distinct(&ids)), (48, 48));
    let (letters, _) = stop_and_list(service, &s.config);
    let reason = "refused: HTTP 200, code 20001: event_id: Not a valid event_id".to_owned();
    assert_eq!(
        ids_and_reasons(&letters),
        [
            ("bad-5".to_owned(), reason.clone()),
            ("bad-6".to_owned(), reason)
        ]
    );
}

#[test]
fn a_denied_destination_dead_letters_each_event_once_and_says_so_loudly() {
    let s = setup("", "");
    s.mock
        .fail_always(Some(Fault::Code(40001, "No permission to operate pixel")));
    let service = Service::start(&s.config, None);
    let url = service.url("/v1/events");
    // Two batches (of 100 and 50) in one round, then a later round: all fail the same way.
    assert_eq!(
        post_events(&url, &json!(cart_events("denied", 0..150)))
            .unwrap()
            .status,
        202
    );
    assert!(
        wait_for_metrics(&service, &[&events_line("failed", 150)]),
        "{}",
        service.metrics()
    );
    assert_eq!(
        post_events(&url, &json!(cart_events("denied", 150..180)))
            .unwrap()
            .status,
        202
    );
    let denials =
        "switchyard_destination_errors_total{destination=\"tiktok\",kind=\"permission\"} 3";
    assert!(
        wait_for_metrics(&service, &[&events_line("failed", 180), denials]),
        "{}",
        service.metrics()
    );
    assert_eq!(s.mock.requests(), 3, "no retries, no splitting");
    assert!(
        service
            .metrics()
            .contains("switchyard_requests_total{destination=\"tiktok\",result=\"denied\"} 3")
    );
    let (letters, log) = stop_and_list(service, &s.config);
    // Logged once, not per request (the metric counts every one).
    let loud = "ERROR switchyard_service::delivery::sender: destination `tiktok` is refused access: refused: HTTP 200, code 40001: No permission to operate pixel";
    assert_eq!(log.matches(loud).count(), 1, "{log}");
    // Each event given up on is logged with its reason and id (a line per destination and reason).
    assert!(
        log.contains("WARN switchyard_service::delivery: dead-lettered: refused: HTTP 200, code 40001: No permission to operate pixel (event_id denied-"),
        "{log}"
    );
    let letters = ids_and_reasons(&letters);
    let mut ids: Vec<&str> = letters.iter().map(|(id, _)| id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(
        (letters.len(), ids.len()),
        (180, 180),
        "one dead letter per event"
    );
    assert!(
        letters
            .iter()
            .all(|(_, r)| r == "refused: HTTP 200, code 40001: No permission to operate pixel")
    );
    assert!(s.mock.event_ids().is_empty());
}

/// Posts until the answer is not a 503 (as a webhook sender retries); the final answer.
fn until_not_busy(url: &str, events: &Value) -> Answer {
    for _ in 0..600 {
        let a = post_events(url, events).unwrap();
        if a.status != 503 {
            return a;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("still refused after 30 s");
}

/// `(result, count)` pairs of `switchyard_events_received_total` for the `server` source.
fn received(service: &Service, result: &str) -> String {
    let line =
        format!("switchyard_events_received_total{{result=\"{result}\",source=\"server\"}} ");
    service
        .metrics()
        .lines()
        .find_map(|l| l.strip_prefix(&line).map(str::to_owned))
        .unwrap_or_default()
}

#[test]
fn concurrent_copies_of_the_same_batches_are_queued_and_delivered_once() {
    // A sender retrying while its first request is in flight: 6 clients send the same 40
    // batches of 100 ids at the same moment.
    let s = setup("", "");
    let service = Service::start(&s.config, None);
    let url = service.url("/v1/events");
    let batches: Vec<Value> = (0..40)
        .map(|b| json!(cart_events("twice", b * 100..(b + 1) * 100)))
        .collect();
    let requests = (0..6)
        .flat_map(|_| batches.iter().map(|b| events_request(&url, b)))
        .collect();
    let (mut accepted, mut duplicates) = (0, 0);
    for (i, a) in at_once(requests).into_iter().enumerate() {
        let mut a = a.unwrap();
        if a.status == 503 {
            // A copy that waited too long for the first one is refused whole: sent again.
            assert_eq!(a.retry_after.as_deref(), Some("1"), "{}", a.body);
            a = until_not_busy(&url, &batches[i % 40]);
        }
        assert_eq!(a.status, 202, "{}", a.body);
        accepted += a.body["accepted"].as_u64().unwrap();
        duplicates += a.body["duplicates"].as_u64().unwrap();
    }
    assert_eq!((accepted, duplicates), (4000, 20_000));
    assert_eq!(s.mock.wait_for_distinct(4000, WAIT), 4000);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(s.mock.event_ids().len(), 4000, "each id delivered once");
    assert_eq!(received(&service, "queued"), "4000");
    assert_eq!(received(&service, "duplicate"), "20000");
}

#[test]
fn copies_refused_by_a_full_queue_are_accepted_once_on_retry() {
    // 1 MiB of queue; the mock refuses everything at first, so nothing drains. Retries (up to
    // 100, up to a second apart) outlast the filling on a slow machine: nothing is dead-lettered.
    let s = setup(", queue_budget_mib: 1", ", max_attempts: 100");
    let text = std::fs::read_to_string(&s.config).unwrap();
    std::fs::write(
        &s.config,
        text.replace("max_backoff_ms: 200", "max_backoff_ms: 1000"),
    )
    .unwrap();
    s.mock.fail_always(Some(Fault::Status(503, None)));
    let service = Service::start(&s.config, None);
    let url = service.url("/v1/events");
    // Fill it up to the last event: requests of 200, then of one, until refused.
    let mut filled = 0;
    for size in [200, 1] {
        loop {
            let a = post_events(&url, &json!(cart_events("fill", filled..filled + size))).unwrap();
            if a.status == 503 {
                break;
            }
            assert_eq!(a.status, 202, "{}", a.body);
            filled += size;
        }
    }
    // Copies of one request at once: the first append fails, and so does every copy's own;
    // none is told "duplicate".
    let copies = json!(cart_events("again", 0..100));
    for a in at_once((0..4).map(|_| events_request(&url, &copies)).collect()) {
        let a = a.unwrap();
        assert_eq!(a.status, 503, "{}", a.body);
        assert_eq!(a.retry_after.as_deref(), Some("5"));
        let error = a.body["error"].as_str().unwrap();
        assert!(error.starts_with("the queue is full"), "{error}");
        assert!(error.ends_with("nothing of this request was kept; retry later"));
    }
    s.mock.fail_always(None);
    let a = until_not_busy(&url, &copies);
    assert_eq!(a.status, 202, "{}", a.body);
    assert_eq!(
        (&a.body["accepted"], &a.body["duplicates"]),
        (&json!(100), &json!(0))
    );
    let a = post_events(&url, &copies).unwrap();
    assert_eq!(
        (&a.body["accepted"], &a.body["duplicates"]),
        (&json!(0), &json!(100))
    );
    let total = filled + 100;
    assert_eq!(
        s.mock.wait_for_distinct(total, Duration::from_secs(60)),
        total
    );
    std::thread::sleep(Duration::from_millis(500));
    let again = s.mock.event_ids();
    assert_eq!(
        again.iter().filter(|i| i.starts_with("again-")).count(),
        100
    );
}

#[test]
fn an_overlong_event_id_is_refused_with_the_limit_and_refusals_listed_up_to_1000() {
    let s = setup(", max_body_kib: 4096", "");
    let service = Service::start(&s.config, None);
    let url = service.url("/v1/events");
    let mut long = cart_events("cap", 0..1).remove(0);
    long["event_id"] = "x".repeat(1 << 20).into();
    let mut at_cap = cart_events("cap", 1..2).remove(0);
    at_cap["event_id"] = "y".repeat(256).into();
    let a = post_events(&url, &json!([long, at_cap])).unwrap();
    assert_eq!(a.status, 202, "{}", a.body);
    assert_eq!(a.body["accepted"], 1);
    assert_eq!(
        a.body["rejected"],
        json!([{"index": 0, "reason": "`event_id`: must be at most 256 bytes long, found 1048576"}]),
        "the refusal does not echo the overlong id"
    );
    let a = post_events(&url, &json!([long])).unwrap();
    assert_eq!(a.status, 400, "{}", a.body);
    // Many small invalid items: the first 1,000 listed, and how many more.
    let a = post_events(&url, &json!(vec![0; 1500])).unwrap();
    assert_eq!(a.status, 400, "{}", a.body);
    assert_eq!(a.body["rejected"].as_array().map(Vec::len), Some(1000));
    assert_eq!(a.body["rejected"][999]["index"], 999);
    assert_eq!(a.body["rejected_more"], 500);
    assert_eq!(s.mock.wait_for_distinct(1, WAIT), 1);
    assert_eq!(s.mock.event_ids(), ["y".repeat(256)]);
}

/// The value of a metric without labels (empty when it is missing).
fn gauge(service: &Service, name: &str) -> String {
    let prefix = format!("{name} ");
    service
        .metrics()
        .lines()
        .find_map(|l| l.strip_prefix(&prefix).map(str::to_owned))
        .unwrap_or_default()
}

/// Polls `gauge` until it reads `value` (or 20 s passed); returns what it read last.
fn wait_for_gauge(service: &Service, name: &str, value: &str) -> String {
    let mut last = String::new();
    for _ in 0..400 {
        last = gauge(service, name);
        if last == value {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    last
}

#[test]
fn the_de_duplication_memory_is_capped_and_given_back_when_the_window_passes() {
    use switchyard_queue::dedup::window::ENTRY_OVERHEAD;
    let s = setup(", dedup_window_secs: 8, dedup_max_mib: 1", "");
    let service = Service::start(&s.config, None);
    let url = service.url("/v1/events");
    // Ids of 256 bytes: each counts "server" (6), the id and the overhead.
    let id = |i: usize| format!("{i:0>256}");
    let batch = |range: std::ops::Range<usize>| -> Value {
        let mut events = cart_events("mem", range.clone());
        for (e, i) in events.iter_mut().zip(range) {
            e["event_id"] = id(i).into();
        }
        json!(events)
    };
    for start in (0..5000).step_by(1000) {
        let a = post_events(&url, &batch(start..start + 1000)).unwrap();
        assert_eq!(
            (a.status, &a.body["accepted"]),
            (202, &json!(1000)),
            "{}",
            a.body
        );
    }
    let weight = 6 + 256 + ENTRY_OVERHEAD;
    let kept = (1 << 20) / weight;
    assert_eq!(
        wait_for_gauge(&service, "switchyard_dedup_ids", &kept.to_string()),
        kept.to_string()
    );
    assert_eq!(
        gauge(&service, "switchyard_dedup_bytes"),
        (kept * weight).to_string()
    );
    // The newest ids are kept; the oldest were forgotten, and a repeat of them is queued again.
    let a = post_events(&url, &batch(4900..5000)).unwrap();
    assert_eq!(
        (&a.body["accepted"], &a.body["duplicates"]),
        (&json!(0), &json!(100))
    );
    let a = post_events(&url, &batch(0..100)).unwrap();
    assert_eq!(
        (&a.body["accepted"], &a.body["duplicates"]),
        (&json!(100), &json!(0))
    );
    // Once the window has passed, nothing is kept.
    std::thread::sleep(Duration::from_secs(8));
    assert_eq!(wait_for_gauge(&service, "switchyard_dedup_ids", "0"), "0");
    assert_eq!(gauge(&service, "switchyard_dedup_bytes"), "0");
    let a = post_events(&url, &batch(4900..5000)).unwrap();
    assert_eq!(a.body["accepted"], 100, "{}", a.body);
}

#[test]
fn replay_queues_an_event_id_once() {
    let s = setup("", "");
    let lines: Vec<String> = cart_events("twice", 0..100)
        .iter()
        .chain(&cart_events("twice", 50..150))
        .map(Value::to_string)
        .collect();
    let file = s.dir.path().join("events.ndjson");
    std::fs::write(&file, lines.join("\n")).unwrap();
    let (code, _, err) = cli(&[
        "replay",
        "--config",
        s.config.to_str().unwrap(),
        file.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("150 events queued, 50 duplicates; tiktok: platform events 150 delivered"),
        "{err}"
    );
    assert_eq!(s.mock.event_ids().len(), 150);
}

// A round whose acknowledgement fails, in process (the queue is a wrapper that fails once).
mod acknowledgement {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;
    use switchyard_queue::{
        Commit, DeadLetter, DiskQueue, EventQueue, QueueError, Reading, Record,
    };
    use switchyard_service::delivery::Deliverer;
    use switchyard_service::metrics::Metrics;
    use tokio::sync::Notify;

    /// A disk queue whose first acknowledgement fails, as on a disk error.
    struct FailFirstAck {
        inner: DiskQueue,
        acks: AtomicUsize,
    }

    impl EventQueue for FailFirstAck {
        fn append(&self, records: Vec<Record>) -> Commit<Vec<u64>> {
            self.inner.append(records)
        }
        fn claim(&self, max: usize, linger: Duration) -> Reading<Vec<(u64, Record)>> {
            self.inner.claim(max, linger)
        }
        fn release(&self, ids: Vec<u64>) {
            self.inner.release(ids)
        }
        fn ack(&self, ids: Vec<u64>) -> Commit<()> {
            if self.acks.fetch_add(1, Ordering::SeqCst) == 0 {
                return Box::pin(async {
                    Err(QueueError::Store {
                        action: "committing",
                        source: std::sync::Arc::new(std::io::Error::other("disk error")),
                    })
                });
            }
            self.inner.ack(ids)
        }
        fn depth(&self) -> (u64, u64) {
            self.inner.depth()
        }
        fn dead_letter(&self, letters: Vec<DeadLetter>) -> Commit<()> {
            self.inner.dead_letter(letters)
        }
        fn dead_letters(&self) -> Reading<Vec<(u64, DeadLetter)>> {
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
        let loaded = switchyard_service::config::load(&config).unwrap_or_else(|d| panic!("{d:?}"));
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

/// `scripts/build-pgo`'s training load runs as it does there (on this build, a short input): `map`
/// and `map --request` succeed, and `serve` delivers to the script's own stand-in API and exits
/// cleanly on SIGTERM. Otherwise the PGO build would stop at its training step, or learn from a
/// load that failed.
#[test]
fn the_pgo_training_load_maps_and_delivers() {
    let work = tempfile::tempdir().expect("work dir");
    let out = std::process::Command::new("python3")
        .arg(switchyard_tests::root().join("scripts/pgo-train.py"))
        .arg(switchyard_bin())
        .arg(switchyard_tests::root())
        .arg(work.path())
        .env("PGO_TRAIN_LINES", "400")
        .output()
        .expect("python3 runs (scripts/test installs it when missing)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "training failed: {stderr}");
    let delivered: usize = stderr
        .split("serve: ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count of delivered payloads: {stderr}"));
    assert!(delivered > 0, "{stderr}");
}
