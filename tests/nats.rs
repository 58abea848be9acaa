//! Several `switchyard serve` nodes on one queue in NATS JetStream, as child processes, against a
//! real `nats-server` (started by each test on a free loopback port, with its store in a temporary
//! folder) and the mock TikTok Events API: the work spread over three nodes with every
//! acknowledged event delivered (duplicates measured), a node killed with `kill -9` mid-stream,
//! the server restarted mid-stream, the same `event_id` sent to two nodes, dead letters listed
//! and re-driven while the nodes run, and a queue budget the server has no storage for refused at
//! start.

use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};
use switchyard_tests::mock_tiktok::{Fault, MockTiktok};
use switchyard_tests::nats_server::NatsServer;
use switchyard_tests::service::*;

struct Setup {
    nats: NatsServer,
    mock: MockTiktok,
    _dir: tempfile::TempDir,
    config: std::path::PathBuf,
}

/// A nats-server, the mock, and a config whose queue is on that server (`queue` and `delivery`
/// are extra settings of `server.queue` and of the destination's `delivery`).
fn setup(queue: &str, delivery: &str) -> Setup {
    let nats = NatsServer::start();
    let mock = MockTiktok::start(TOKEN);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("switchyard.yaml");
    let server = format!(
        ", queue: {{kind: nats, url: \"{}\", ack_wait_secs: 2{queue}}}",
        nats.url()
    );
    let text = serve_config(&mock.endpoint, &dir.path().join("data"), &server, delivery);
    std::fs::write(&config, text).unwrap();
    Setup {
        nats,
        mock,
        _dir: dir,
        config,
    }
}

/// Posts `events` to `url` until it is acknowledged (202); panics after a minute.
fn post_until_accepted(url: &str, events: &Value) -> Answer {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match post_events(url, events) {
            Ok(a) if a.status == 202 => return a,
            other if Instant::now() > deadline => {
                panic!("not accepted: {:?}", other.map(|a| (a.status, a.body)))
            }
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// How many times each id arrived at the mock.
fn arrivals(mock: &MockTiktok) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for id in mock.event_ids() {
        *counts.entry(id).or_insert(0) += 1;
    }
    counts
}

/// Waits until every id of `expected` arrived; returns (missing, duplicates beyond the first).
fn wait_for_all(
    mock: &MockTiktok,
    expected: &HashSet<String>,
    timeout: Duration,
) -> (usize, usize) {
    let deadline = Instant::now() + timeout;
    loop {
        let counts = arrivals(mock);
        let missing = expected
            .iter()
            .filter(|id| !counts.contains_key(*id))
            .count();
        if missing == 0 || Instant::now() > deadline {
            let duplicates = counts.values().map(|n| n - 1).sum();
            return (missing, duplicates);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn three_nodes_deliver_every_acknowledged_event_of_30000() {
    const N: usize = 30_000;
    const BATCH: usize = 500;
    let s = setup("", "");
    // An ack wait no round outlasts even on a loaded machine: a copy then means a real redelivery,
    // not a slow round (the kill -9 test keeps the short wait, to see redelivery happen).
    let text = std::fs::read_to_string(&s.config).unwrap();
    std::fs::write(
        &s.config,
        text.replace("ack_wait_secs: 2", "ack_wait_secs: 20"),
    )
    .unwrap();
    let nodes: Vec<Service> = (0..3).map(|_| Service::start(&s.config, None)).collect();
    let mut expected = HashSet::new();
    let mut per_node = [0usize; 3];
    for (i, start) in (0..N).step_by(BATCH).enumerate() {
        let events = cart_events("spread", start..start + BATCH);
        let node = i % 3;
        let a = post_until_accepted(&nodes[node].url("/v1/events"), &json!(events));
        assert_eq!(a.body["accepted"], BATCH, "{}", a.body);
        expected.extend(
            events
                .iter()
                .map(|e| e["event_id"].as_str().unwrap().to_owned()),
        );
        per_node[node] += BATCH;
    }
    let (missing, duplicates) = wait_for_all(&s.mock, &expected, Duration::from_secs(90));
    println!(
        "3 nodes, {N} events acknowledged ({per_node:?} per node): {missing} missing, \
         {duplicates} delivered more than once"
    );
    assert_eq!(missing, 0, "every acknowledged event arrives");
    // At-least-once: a copy comes only from a message handed out again (an ack wait passed).
    assert!(duplicates <= N / 100, "{duplicates} duplicates");
    // Every node delivered a share (one shared consumer, not one node doing it all).
    let delivered = |n: &Service| {
        n.metrics()
            .lines()
            .find(|l| l.starts_with("switchyard_destination_events_total{destination=\"tiktok\",status=\"delivered\"}"))
            .and_then(|l| l.rsplit(' ').next()?.parse::<usize>().ok())
            .unwrap_or(0)
    };
    let shares: Vec<usize> = nodes.iter().map(delivered).collect();
    println!("delivered per node: {shares:?}");
    assert_eq!(shares.iter().sum::<usize>(), N + duplicates);
}

#[test]
fn a_node_killed_mid_stream_loses_no_acknowledged_event() {
    const N: usize = 6000;
    // Slow delivery (each node 10 requests/s of 100 events) so that events are held when the
    // kill comes; the killed node's are handed out again after the ack wait (2 s).
    let s = setup("", ", max_requests_per_second: 10");
    let mut nodes: Vec<Option<Service>> = (0..3)
        .map(|_| Some(Service::start(&s.config, None)))
        .collect();
    let urls: Vec<String> = nodes
        .iter()
        .map(|n| n.as_ref().unwrap().url("/v1/events"))
        .collect();
    let mut expected = HashSet::new();
    let mut killed = false;
    for (i, start) in (0..N).step_by(100).enumerate() {
        let events = cart_events("kill", start..start + 100);
        // After the kill, only the two others are sent to.
        let node = if killed { 1 + i % 2 } else { i % 3 };
        post_until_accepted(&urls[node], &json!(events));
        expected.extend(
            events
                .iter()
                .map(|e| e["event_id"].as_str().unwrap().to_owned()),
        );
        if start == N / 2 {
            assert!(
                arrivals(&s.mock).len() < expected.len(),
                "the kill must find events not yet delivered"
            );
            nodes[0].take().unwrap().kill9();
            killed = true;
        }
    }
    let (missing, duplicates) = wait_for_all(&s.mock, &expected, Duration::from_secs(90));
    println!("kill -9 of one node of 3: {missing} missing, {duplicates} duplicates");
    assert_eq!(missing, 0, "0 acknowledged events lost");
}

#[test]
fn a_nats_restart_answers_503_meanwhile_and_loses_nothing() {
    let mut s = setup(", timeout_ms: 500", "");
    let node = Service::start(&s.config, None);
    let url = node.url("/v1/events");
    let mut expected = HashSet::new();
    let mut send = |from: usize, url: &str| {
        let events = cart_events("restart", from..from + 100);
        post_until_accepted(url, &json!(events));
        expected.extend(
            events
                .iter()
                .map(|e| e["event_id"].as_str().unwrap().to_owned()),
        );
    };
    send(0, &url);
    s.nats.stop();
    // 503 with Retry-After, not 500 (once the client has seen the connection drop; a request
    // in flight at that moment waits for `timeout_ms`).
    let away = json!(cart_events("away", 0..10));
    let deadline = Instant::now() + Duration::from_secs(10);
    let refused = loop {
        let a = post_events(&url, &away).unwrap();
        if a.status != 202 || Instant::now() > deadline {
            break a;
        }
    };
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert_eq!(refused.retry_after.as_deref(), Some("2"));
    s.nats.restart();
    // Ingestion resumes by itself once the client has reconnected.
    send(100, &url);
    send(200, &url);
    let (missing, duplicates) = wait_for_all(&s.mock, &expected, Duration::from_secs(60));
    println!("nats-server restart: {missing} missing, {duplicates} duplicates");
    assert_eq!(missing, 0, "0 acknowledged events lost");
}

#[test]
fn the_same_event_id_sent_to_two_nodes_is_delivered_once() {
    let s = setup("", "");
    let (a, b) = (
        Service::start(&s.config, None),
        Service::start(&s.config, None),
    );
    let events = json!(cart_events("twin", 0..50));
    let answers = at_once(vec![
        events_request(&a.url("/v1/events"), &events),
        events_request(&b.url("/v1/events"), &events),
    ]);
    let (mut accepted, mut duplicates) = (0, 0);
    for answer in answers {
        let answer = answer.unwrap();
        assert_eq!(answer.status, 202, "{}", answer.body);
        accepted += answer.body["accepted"].as_u64().unwrap();
        duplicates += answer.body["duplicates"].as_u64().unwrap();
    }
    assert_eq!((accepted, duplicates), (50, 50));
    // A marker sent after both: once it has arrived, the twins would have too.
    post_until_accepted(&b.url("/v1/events"), &json!(cart_events("marker", 0..1)));
    let marker: HashSet<String> = ["marker-0".to_owned()].into();
    assert_eq!(wait_for_all(&s.mock, &marker, Duration::from_secs(30)).0, 0);
    std::thread::sleep(Duration::from_millis(500));
    let counts = arrivals(&s.mock);
    let twins: Vec<usize> = (0..50).map(|i| counts[&format!("twin-{i}")]).collect();
    assert!(twins.iter().all(|&n| n == 1), "{twins:?}");
}

#[test]
fn an_event_over_the_servers_message_limit_is_refused_with_413_not_503() {
    let s = setup("", "");
    let text = std::fs::read_to_string(&s.config).unwrap();
    let text = text.replacen("linger_ms: 20", "linger_ms: 20, max_body_kib: 4096", 1);
    std::fs::write(&s.config, text).unwrap();
    let service = Service::start(&s.config, None);
    // NATS takes at most 1 MiB per message (its default `max_payload`).
    let mut big = cart_events("big", 0..1);
    big[0]["properties"]["note"] = "x".repeat(1_100_000).into();
    let a = post_events(&service.url("/v1/events"), &json!(big)).unwrap();
    assert_eq!(a.status, 413, "{}", a.body);
    let said = a.body["error"].as_str().unwrap_or_default();
    assert!(
        said.starts_with("an event is larger than the queue's server takes in one message"),
        "{said}"
    );
    assert!(a.retry_after.is_none(), "no wait can help");
    let a = post_events(
        &service.url("/v1/events"),
        &json!(cart_events("small", 0..1)),
    )
    .unwrap();
    assert_eq!(a.status, 202, "{}", a.body);
    assert_eq!(s.mock.wait_for_distinct(1, Duration::from_secs(30)), 1);
}

/// JetStream reserves the events stream's size limit (`server.queue_budget_mib`) from its storage.
/// A server with less storage than the budget refuses the stream: `serve` says which setting to
/// change, with the server's answer once, and starts with a budget that fits.
#[test]
fn a_budget_larger_than_the_servers_storage_is_refused_at_start_with_the_setting_to_change() {
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsServer::start_with(dir.path(), 256 << 20);
    let mock = MockTiktok::start(TOKEN);
    let config = dir.path().join("switchyard.yaml");
    let write = |budget: &str| {
        let server = format!(", queue: {{kind: nats, url: \"{}\"}}{budget}", nats.url());
        let text = serve_config(&mock.endpoint, &dir.path().join("data"), &server, "");
        std::fs::write(&config, text).unwrap();
    };
    write("");
    let stderr = refused_start(&config);
    let line = stderr.lines().find(|l| l.starts_with("error: ")).unwrap();
    assert!(
        line.contains(
            "creating the events stream: the NATS server has no room for the events stream in its \
             JetStream storage: the events stream reserves 1024 MiB (`server.queue_budget_mib`)"
        ) && line.contains("`jetstream.max_file_store`"),
        "{line}"
    );
    assert_eq!(line.matches("error code 10047").count(), 1, "{line}");

    // The dead-letter stream needs room beside the events stream: a budget of all the storage
    // leaves none for it.
    write(", queue_budget_mib: 256");
    let stderr = refused_start(&config);
    assert!(
        stderr.contains("creating the dead-letter stream: the NATS server has no room for the dead-letter stream")
            && stderr.matches("error code 10047").count() == 1,
        "{stderr}"
    );

    write(", queue_budget_mib: 128");
    let node = Service::start(&config, None);
    let accepted = post_until_accepted(&node.url("/v1/events"), &json!(cart_events("fits", 0..5)));
    assert_eq!(accepted.status, 202);
}

/// Runs `serve` on `config`, which must stop at start with exit code 1; returns its standard error.
/// A `serve` that starts anyway fails the test (after 30 s) instead of hanging it.
fn refused_start(config: &std::path::Path) -> String {
    let mut cmd = std::process::Command::new(switchyard_bin());
    let mut child = serve_env(cmd.args(["serve", "--config"]).arg(config))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("serve started although the server has no room for its streams");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    stderr
}

#[test]
fn dead_letters_are_listed_and_retried_while_the_nodes_run() {
    let s = setup("", "");
    s.mock
        .fail_always(Some(Fault::Code(40002, "Invalid parameter: event_time")));
    let nodes: Vec<Service> = (0..2).map(|_| Service::start(&s.config, None)).collect();
    post_until_accepted(
        &nodes[0].url("/v1/events"),
        &json!(cart_events("perm", 0..3)),
    );
    let config = s.config.to_str().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let letters = loop {
        let letters = dead_letters(config);
        if letters.len() == 3 || Instant::now() > deadline {
            break letters;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(letters.len(), 3, "listed from any node while they run");
    let mut ids: Vec<&str> = letters
        .iter()
        .map(|l| l["event"]["event_id"].as_str().unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids, ["perm-0", "perm-1", "perm-2"]);
    assert_eq!(
        letters[0]["reason"],
        "refused: HTTP 200, code 40002: Invalid parameter: event_time"
    );
    assert!(s.mock.event_ids().is_empty());

    s.mock.fail_always(None);
    let (code, _, err) = cli(&["dead-letters", "retry", "--config", config]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("retried 3 dead letters"), "{err}");
    let expected: HashSet<String> = ids.iter().map(|s| (*s).to_owned()).collect();
    let (missing, duplicates) = wait_for_all(&s.mock, &expected, Duration::from_secs(30));
    assert_eq!((missing, duplicates), (0, 0), "re-delivered once each");
    let (_, listed, _) = cli(&["dead-letters", "list", "--config", config]);
    assert!(listed.is_empty(), "{listed}");
    drop(nodes);
}

#[test]
fn a_stream_message_that_is_not_an_event_is_dead_lettered_and_blocks_nothing() {
    let s = setup("", "");
    let node = Service::start(&s.config, None);
    // Something other than Switchyard writes to the events subject.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = async_nats::connect(s.nats.url()).await.unwrap();
        let js = async_nats::jetstream::new(client);
        let ack = js
            .publish("SWITCHYARD.events", "not a record".into())
            .await
            .unwrap();
        ack.await.unwrap();
    });
    post_until_accepted(&node.url("/v1/events"), &json!(cart_events("after", 0..2)));
    let expected: HashSet<String> = ["after-0", "after-1"].map(String::from).into();
    let (missing, _) = wait_for_all(&s.mock, &expected, Duration::from_secs(30));
    assert_eq!(missing, 0, "the events behind it are delivered");

    let config = s.config.to_str().unwrap();
    let letters = dead_letters(config);
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0]["destination"], "*");
    let reason = letters[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("is not a Switchyard event record"),
        "{reason}"
    );
    let (code, _, err) = cli(&[
        "dead-letters",
        "drop",
        "--config",
        config,
        "--destination",
        "*",
        "--yes",
    ]);
    assert_eq!(code, 0, "{err}");
    let (_, listed, _) = cli(&["dead-letters", "list", "--config", config]);
    assert!(listed.is_empty(), "dropped: {listed}");
}

/// The dead letters `switchyard dead-letters list` prints for `config`, one JSON object each.
fn dead_letters(config: &str) -> Vec<Value> {
    let (code, listed, err) = cli(&["dead-letters", "list", "--config", config]);
    assert_eq!(code, 0, "{err}");
    listed
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}
