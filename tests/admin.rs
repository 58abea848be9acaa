//! The admin API of a running `switchyard serve` (a child process, against the mock TikTok API):
//! the token on every route, destinations switched off and on at run time, dead letters listed,
//! retried and dropped while the service holds its queue (through the API and through the
//! `dead-letters` commands), the journal and the live tap read by a test client (with filters,
//! and `switchyard tap`), and reload (a good config, a bad one, SIGHUP).

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read};
use std::sync::mpsc;
use std::time::Duration;
use switchyard_tests::mock_tiktok::{Fault, MockTiktok};
use switchyard_tests::service::*;

const WAIT: Duration = Duration::from_secs(30);

struct Setup {
    mock: MockTiktok,
    dir: tempfile::TempDir,
    config: std::path::PathBuf,
}

fn setup(extra_server: &str) -> Setup {
    let mock = MockTiktok::start(TOKEN);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("switchyard.yaml");
    let server = format!("{ADMIN}{extra_server}");
    let text = serve_config(&mock.endpoint, &dir.path().join("data"), &server, "");
    std::fs::write(&config, text).unwrap();
    Setup { mock, dir, config }
}

const BEARER: &str = "Bearer admin-token-9876543210";

fn admin(service: &Service, method: &str, path: &str, body: Option<Value>) -> Answer {
    let body = body.map(|b| serde_json::to_vec(&b).unwrap());
    http(
        method,
        &service.url(path),
        &[
            ("authorization", BEARER),
            ("content-type", "application/json"),
        ],
        body,
    )
    .unwrap()
}

/// Polls `GET path` until `done` holds for its answer (or fails after 30 s).
fn wait_until(service: &Service, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let start = std::time::Instant::now();
    loop {
        let a = admin(service, "GET", path, None);
        if done(&a.body) {
            return a.body;
        }
        assert!(start.elapsed() < WAIT, "{path}: {}", a.body);
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn every_admin_route_needs_the_token_and_the_api_is_off_without_config() {
    let s = setup("");
    let service = Service::start(&s.config, None);
    let routes = [
        ("GET", "/admin/destinations"),
        ("POST", "/admin/destinations/tiktok/activate"),
        ("POST", "/admin/destinations/tiktok/deactivate"),
        ("GET", "/admin/dead-letters"),
        ("POST", "/admin/dead-letters/retry"),
        ("POST", "/admin/dead-letters/drop"),
        ("GET", "/admin/events"),
        ("GET", "/admin/events/1"),
        ("GET", "/admin/tap"),
        ("POST", "/admin/reload"),
    ];
    for (method, path) in routes {
        for headers in [
            vec![],
            vec![("authorization", "Bearer wrong-token")],
            vec![("cookie", "switchyard_admin=wrong")],
        ] {
            let a = http(method, &service.url(path), &headers, None).unwrap();
            assert_eq!(a.status, 401, "{method} {path} {headers:?}: {}", a.body);
            assert!(a.body["error"].as_str().unwrap().contains("token"));
        }
    }
    let a = http(
        "GET",
        &service.url("/admin/destinations"),
        &[("cookie", "a=b; switchyard_admin=admin-token-9876543210")],
        None,
    )
    .unwrap();
    assert_eq!(a.status, 200, "the console's cookie works too");
    let (_, log) = service.terminate();
    assert!(
        !log.contains(ADMIN_TOKEN),
        "the token is never logged: {log}"
    );

    // Without server.admin, there is no admin API at all.
    let plain = tempfile::tempdir().unwrap();
    let config = plain.path().join("switchyard.yaml");
    let text = serve_config(&s.mock.endpoint, &plain.path().join("data"), "", "");
    std::fs::write(&config, text).unwrap();
    let service = Service::start(&config, None);
    let a = http(
        "GET",
        &service.url("/admin/destinations"),
        &[("authorization", BEARER)],
        None,
    )
    .unwrap();
    assert_eq!(a.status, 404);
}

#[test]
fn destinations_are_switched_off_and_on_at_run_time_and_counted() {
    let s = setup("");
    let service = Service::start(&s.config, None);
    let a = admin(&service, "GET", "/admin/destinations", None);
    assert_eq!(a.status, 200);
    let d = &a.body[0];
    assert_eq!(
        (&d["name"], &d["type"], &d["status"], &d["mapping"]),
        (
            &json!("tiktok"),
            &json!("tiktok"),
            &json!("active"),
            &json!("default")
        )
    );
    assert_eq!(d["sources"], json!(["server"]));
    assert_eq!(d["per_minute"].as_array().unwrap().len(), 15);

    let a = admin(
        &service,
        "POST",
        "/admin/destinations/tiktok/deactivate",
        None,
    );
    assert_eq!(a.status, 200);
    assert_eq!(a.body["status"], "deactivated");
    let url = service.url("/v1/events");
    assert_eq!(
        post_events(&url, &json!(cart_events("off", 0..2)))
            .unwrap()
            .status,
        202
    );
    let skipped = wait_until(&service, "/admin/events?status=skipped", |b| {
        b.as_array().is_some_and(|a| a.len() == 2)
    });
    assert_eq!(
        skipped[0]["destinations"][0]["reason"],
        "destination deactivated"
    );
    assert!(
        s.mock.event_ids().is_empty(),
        "nothing went to a deactivated destination"
    );

    let a = admin(
        &service,
        "POST",
        "/admin/destinations/tiktok/activate",
        None,
    );
    assert_eq!(a.body["status"], "active");
    assert_eq!(
        post_events(&url, &json!(cart_events("on", 0..3)))
            .unwrap()
            .status,
        202
    );
    assert_eq!(s.mock.wait_for_distinct(3, WAIT), 3);
    let d = wait_until(&service, "/admin/destinations", |b| {
        b[0]["counts"]["sent"] == 3
    });
    let counts = &d[0]["counts"];
    assert_eq!(
        (&counts["received"], &counts["skipped"]),
        (&json!(5), &json!(2)),
        "{d}"
    );
    let this_minute = d[0]["per_minute"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert!(this_minute["sent"].as_u64().unwrap() <= 3 && this_minute["minute"].is_i64());

    let a = admin(&service, "POST", "/admin/destinations/nope/activate", None);
    assert_eq!(a.status, 404);
    assert!(
        a.body["error"].as_str().unwrap().contains("tiktok"),
        "{}",
        a.body
    );
}

#[test]
fn dead_letters_are_listed_retried_and_dropped_while_the_service_runs() {
    let s = setup("");
    s.mock
        .fail_always(Some(Fault::Code(40002, "Invalid parameter: event_time")));
    let service = Service::start(&s.config, None);
    let url = service.url("/v1/events");
    assert_eq!(
        post_events(&url, &json!(cart_events("dl", 0..3)))
            .unwrap()
            .status,
        202
    );
    let letters = wait_until(&service, "/admin/dead-letters", |b| {
        b.as_array().is_some_and(|a| a.len() == 3)
    });
    assert_eq!(letters[0]["destination"], "tiktok");
    assert_eq!(letters[0]["event"]["event_id"], "dl-0");
    let config = s.config.to_str().unwrap();
    let addr = service.url("");

    // The commands go through the admin API while the service holds the queue.
    // As a process (as a user runs it), then in process.
    let mut cmd = std::process::Command::new(switchyard_bin());
    cmd.args(["dead-letters", "list", "--config", config, "--url", &addr]);
    let output = serve_env(&mut cmd).output().unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{err}");
    assert!(err.contains("3 dead letters"), "{err}");
    let (code, listed, err) = cli(&["dead-letters", "list", "--config", config, "--url", &addr]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(listed.lines().count(), 3, "{listed}");
    let other = ["--url", &addr, "--destination", "other"];
    let (_, none, _) = cli(&[&["dead-letters", "list", "--config", config][..], &other].concat());
    assert!(none.is_empty(), "{none}");
    let first: Value = serde_json::from_str(listed.lines().next().unwrap()).unwrap();
    let drop_id = first["id"].as_u64().unwrap().to_string();
    let (code, _, err) = cli(&[
        "dead-letters",
        "drop",
        "--config",
        config,
        "--url",
        &addr,
        "--id",
        &drop_id,
        "--yes",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("dropped 1 dead letters"), "{err}");

    // An empty selection takes nothing, for either.
    for action in ["retry", "drop"] {
        let path = format!("/admin/dead-letters/{action}");
        let a = admin(&service, "POST", &path, Some(json!({"ids": []})));
        assert_eq!(a.status, 400, "{action}: {}", a.body);
        assert!(
            a.body["error"]
                .as_str()
                .unwrap()
                .starts_with("`ids` is empty"),
            "{}",
            a.body
        );
    }
    s.mock.fail_always(None);
    let (code, _, err) = cli(&["dead-letters", "retry", "--config", config, "--url", &addr]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("queued 2 dead letters again"), "{err}");
    assert_eq!(s.mock.wait_for_distinct(2, WAIT), 2);
    assert_eq!(s.mock.event_ids(), ["dl-1", "dl-2"]);
    let a = admin(&service, "GET", "/admin/dead-letters", None);
    assert_eq!(a.body, json!([]));

    // The API itself: an empty drop is refused; retry with nothing to retry says 0.
    let a = admin(
        &service,
        "POST",
        "/admin/dead-letters/drop",
        Some(json!({})),
    );
    assert_eq!(a.status, 400, "{}", a.body);
    let a = admin(
        &service,
        "POST",
        "/admin/dead-letters/retry",
        Some(json!({"destination": "tiktok"})),
    );
    assert_eq!(a.body, json!({"retried": 0}));
    // Letters cannot go back to a destination the config does not have.
    let a = admin(
        &service,
        "POST",
        "/admin/dead-letters/retry",
        Some(json!({"destination": "nope"})),
    );
    assert_eq!(a.status, 404, "{}", a.body);
    assert!(
        a.body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("no destination named `nope`"),
        "{}",
        a.body
    );

    // Without server.admin, the commands say how to fix it.
    let plain = s.dir.path().join("plain.yaml");
    let text = std::fs::read_to_string(&s.config)
        .unwrap()
        .replace(ADMIN, "");
    std::fs::write(&plain, text).unwrap();
    let (code, _, err) = cli(&["dead-letters", "list", "--config", plain.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        err.contains("running `switchyard serve`") && err.contains("server.admin"),
        "{err}"
    );
}

/// Reads the tap at `path` on a thread; its lines come through the channel. Returns once the
/// service answered (it subscribes before it answers: nothing after this call is missed).
fn tap(service: &Service, path: &str) -> mpsc::Receiver<Value> {
    let (tx, rx) = mpsc::channel();
    let (open_tx, open_rx) = mpsc::channel();
    let addr = service.addr.clone();
    let path = path.to_owned();
    std::thread::spawn(move || {
        let mut stream = std::net::TcpStream::connect(&addr).unwrap();
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {BEARER}\r\nConnection: close\r\n\r\n"
        );
        std::io::Write::write_all(&mut stream, request.as_bytes()).unwrap();
        let mut reader = BufReader::new(stream);
        let mut head = String::new();
        while reader.read_line(&mut head).unwrap() > 2 {
            if head.ends_with("\r\n\r\n") {
                break;
            }
        }
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(head.contains("application/x-ndjson"), "{head}");
        let _ = open_tx.send(());
        // Chunked: a size line, then the chunk; each chunk holds one line.
        loop {
            let mut size = String::new();
            if reader.read_line(&mut size).unwrap_or(0) == 0 {
                return;
            }
            let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
                return;
            };
            if n == 0 {
                return;
            }
            let mut chunk = vec![0; n + 2];
            reader.read_exact(&mut chunk).unwrap();
            for line in String::from_utf8_lossy(&chunk[..n]).lines() {
                if tx.send(serde_json::from_str(line).unwrap()).is_err() {
                    return;
                }
            }
        }
    });
    open_rx.recv_timeout(WAIT).expect("the tap answered");
    rx
}

#[test]
fn the_tap_streams_each_journey_with_its_outcome_and_payload_and_filters() {
    let s = setup("");
    let service = Service::start(&s.config, None);
    let all = tap(&service, "/admin/tap");
    let orders = tap(
        &service,
        "/admin/tap?event=Placed%20Order&destination=tiktok",
    );
    let nothing = tap(&service, "/admin/tap?source=elsewhere");
    let url = service.url("/v1/events");
    assert_eq!(
        post_events(&url, &json!(cart_events("tap", 0..2)))
            .unwrap()
            .status,
        202
    );
    let mut order = switchyard_tests::event(
        "Placed Order",
        json!({"id": 7, "total_price": 20, "currency": "EUR", "items": [{"product_id": "p1", "price": 20, "quantity": 1}]}),
    );
    order["event_id"] = "order-7".into();
    order["timestamp"] = (unix_now() - 60).into();
    assert_eq!(post_events(&url, &json!([order])).unwrap().status, 202);

    // Each journey: once planned (pending, with its payload), once sent (success).
    let mut finals = std::collections::BTreeMap::new();
    while finals.len() < 3 {
        let line = all.recv_timeout(WAIT).expect("a tap line");
        let leg = &line["destinations"][0];
        assert_eq!(leg["destination"], "tiktok");
        assert!(leg["payload"]["event"].is_string(), "the payload: {line}");
        if leg["status"] == "success" {
            assert_eq!(leg["attempts"][0]["outcome"], "sent");
            finals.insert(line["event_id"].as_str().unwrap().to_owned(), line.clone());
        } else {
            assert_eq!(leg["status"], "pending", "{line}");
        }
    }
    let cart = &finals["tap-0"];
    assert_eq!(cart["source"], "server");
    assert_eq!(cart["event_name"], "Added To Cart");
    assert_eq!(cart["event"]["properties"]["product_id"], "p0");
    assert_eq!(cart["destinations"][0]["payload"]["event"], "AddToCart");
    assert_eq!(
        finals["order-7"]["destinations"][0]["payload"]["event"],
        "Purchase"
    );

    let mut seen = Vec::new();
    while let Ok(line) = orders.recv_timeout(Duration::from_secs(2)) {
        seen.push(line["event_id"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        seen,
        ["order-7", "order-7"],
        "only the order, planned then sent"
    );
    assert!(nothing.try_recv().is_err(), "no event from that source");

    // The journal keeps them: newest first, one by id.
    let journal = admin(&service, "GET", "/admin/events?limit=2", None).body;
    assert_eq!(journal.as_array().unwrap().len(), 2);
    assert_eq!(journal[0]["event_id"], "order-7");
    let id = journal[0]["id"].as_u64().unwrap();
    let one = admin(&service, "GET", &format!("/admin/events/{id}"), None);
    assert_eq!(one.body["destinations"][0]["status"], "success");
    assert_eq!(
        admin(&service, "GET", "/admin/events/999999", None).status,
        404
    );
    // A status no leg has is named, with those there are (it answered an empty list).
    let a = admin(&service, "GET", "/admin/events?status=bogus", None);
    assert_eq!(a.status, 400, "{}", a.body);
    let message = a.body["error"].as_str().unwrap_or_default();
    assert!(message.contains("no status `bogus`"), "{}", a.body);
    assert!(message.contains("dead_lettered"), "{}", a.body);
    // What the API cannot read is answered in JSON, as every other error here.
    for path in [
        "/admin/events?limit=-1",
        "/admin/events/abc",
        "/admin/dead-letters?x=1&destination=a&destination=b",
    ] {
        let a = admin(&service, "GET", path, None);
        assert_eq!(a.status, 400, "{path}: {}", a.body);
        assert!(a.body["error"].is_string(), "{path}: {}", a.body);
    }

    // `switchyard tap` (the binary, as a user runs it) prints the same stream.
    let mut cmd = std::process::Command::new(switchyard_bin());
    cmd.args([
        "tap",
        "--url",
        &service.url(""),
        "--token-env",
        "SY_ADMIN_TOKEN",
    ])
    .args(["--event", "Added To Cart", "--limit", "2"])
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped());
    let mut printer = serve_env(&mut cmd).spawn().unwrap();
    // It says `tapping …` once the service answered: from then on nothing is missed.
    let mut stderr = BufReader::new(printer.stderr.take().unwrap());
    let mut opened = String::new();
    stderr.read_line(&mut opened).unwrap();
    assert!(opened.starts_with("tapping "), "{opened}");
    assert_eq!(
        post_events(&url, &json!(cart_events("cli", 0..1)))
            .unwrap()
            .status,
        202
    );
    let output = printer.wait_with_output().unwrap();
    let mut err = String::new();
    stderr.read_to_string(&mut err).unwrap();
    let out = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{err}");
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines.iter().all(|l| l["event_id"] == "cli-0"), "{out}");
    let (_, log) = service.terminate();
    assert!(!log.contains(ADMIN_TOKEN));
}

/// A config like [`setup`]'s with a custom row (`Quiz Completed` → `Lead`) when `custom`.
/// The line of `- source: NAME` in the built-in TikTok mapping.
fn mapping_line(name: &str) -> usize {
    let text =
        std::fs::read_to_string(switchyard_tests::root().join("mappings/tiktok.yaml")).unwrap();
    let row = format!("- source: {name}");
    1 + text.lines().position(|l| l.trim() == row).unwrap()
}

#[test]
fn a_journey_shows_its_rows_pixel_calls_tries_and_the_platforms_code() {
    let s = setup("");
    let service = Service::start(&s.config, None);
    let url = service.url("/v1/events");
    let all = tap(&service, "/admin/tap?event=Added%20To%20Cart");
    // The first try is answered with a server error (retried), the second accepted.
    s.mock.fail_next([Fault::Code(50002, "Internal error")]);
    let a = post_events(&url, &json!(cart_events("rt", 0..1))).unwrap();
    assert_eq!(a.status, 202, "{}", a.body);
    let mut statuses = Vec::new();
    while statuses.last() != Some(&"success".to_owned()) {
        let line = all.recv_timeout(WAIT).expect("a tap line");
        statuses.push(
            line["destinations"][0]["status"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(statuses, ["pending", "retry", "success"]);
    let journeys = admin(&service, "GET", "/admin/events?event_id=rt-0", None).body;
    let leg = &journeys[0]["destinations"][0];
    assert_eq!(leg["status"], "success", "{leg}");
    let at = format!(
        "<built-in>/mappings/tiktok.yaml:{}",
        mapping_line("Added To Cart")
    );
    assert_eq!(
        leg["rows"],
        json!([{"source": "Added To Cart", "target": "AddToCart", "at": at}])
    );
    let attempts = leg["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{leg}");
    assert_eq!(attempts[0]["outcome"], "retry");
    assert_eq!(attempts[0]["code"], 50002);
    assert!(
        attempts[0]["message"]
            .as_str()
            .unwrap()
            .contains("Internal error")
    );
    assert_eq!(attempts[1]["outcome"], "sent");
    // The pixel calls the browser copy makes, with their params (the server copy's values).
    let track = leg["pixel"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["method"] == "track")
        .unwrap_or_else(|| panic!("no track call: {leg}"));
    assert_eq!(track["event"], "AddToCart");
    assert_eq!(track["params"], leg["payload"]["properties"]);
    assert_eq!(track["params"]["contents"][0]["content_id"], "p0");
    assert_eq!(track["options"][0]["event_id"], "rt-0");

    // An answer that refuses the event for good: its code is a field of its own.
    s.mock
        .fail_always(Some(Fault::Code(40002, "Invalid parameter: event_time")));
    let a = post_events(&url, &json!(cart_events("no", 0..1))).unwrap();
    assert_eq!(a.status, 202, "{}", a.body);
    let journeys = wait_until(&service, "/admin/events?event_id=no-0", |b| {
        b[0]["destinations"][0]["status"] == "dead_lettered"
    });
    let refused = &journeys[0]["destinations"][0]["attempts"][0];
    assert_eq!(refused["outcome"], "refused", "{refused}");
    assert_eq!(refused["code"], 40002);
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("Invalid parameter: event_time"),
        "{refused}"
    );
    // A server-side only row (Placed Order) makes no pixel call.
    s.mock.fail_always(None);
    let mut order = switchyard_tests::event(
        "Placed Order",
        json!({"id": 8, "total_price": 20, "currency": "EUR", "items": [{"product_id": "p1", "price": 20, "quantity": 1}]}),
    );
    order["event_id"] = "order-8".into();
    order["timestamp"] = (unix_now() - 60).into();
    assert_eq!(post_events(&url, &json!([order])).unwrap().status, 202);
    let journeys = wait_until(&service, "/admin/events?event_id=order-8", |b| {
        b[0]["destinations"][0]["status"] == "success"
    });
    let leg = &journeys[0]["destinations"][0];
    assert_eq!(leg["pixel"], json!([]), "{leg}");
    assert_eq!(leg["rows"][0]["target"], "Purchase");
}

#[test]
fn a_browser_only_row_is_named_with_its_pixel_call_and_sends_nothing() {
    let s = setup("");
    let text = std::fs::read_to_string(&s.config).unwrap().replace(
        "    sources: [server]\n",
        "    sources: [server]\n    rows: [{source: Added To Cart, mode: client}]\n",
    );
    std::fs::write(&s.config, text).unwrap();
    let service = Service::start(&s.config, None);
    let url = service.url("/v1/events");
    let a = post_events(&url, &json!(cart_events("pix", 0..1))).unwrap();
    assert_eq!(a.status, 202, "{}", a.body);
    let journeys = wait_until(&service, "/admin/events?event_id=pix-0", |b| {
        b.as_array().is_some_and(|a| !a.is_empty())
    });
    let leg = &journeys[0]["destinations"][0];
    assert_eq!(leg["status"], "skipped", "{leg}");
    assert!(
        leg["reason"].as_str().unwrap().contains("browser only"),
        "{leg}"
    );
    assert!(leg.get("payload").is_none(), "{leg}");
    let at = format!(
        "<built-in>/mappings/tiktok.yaml:{}",
        mapping_line("Added To Cart")
    );
    assert_eq!(
        leg["rows"],
        json!([{"source": "Added To Cart", "target": "AddToCart", "at": at}])
    );
    let calls: Vec<&Value> = leg["pixel"].as_array().unwrap().iter().collect();
    assert!(
        calls
            .iter()
            .any(|c| c["method"] == "track" && c["event"] == "AddToCart"),
        "{leg}"
    );
    assert_eq!(s.mock.requests(), 0, "nothing went to the Events API");
}

fn config_text(original: &str, custom: bool) -> String {
    let text = original.to_owned();
    let marker = "    batch_size: 100\n";
    let row = "    custom_events:\n      - {source: Quiz Completed, target: Lead}\n";
    match (custom, text.contains(row)) {
        (true, false) => text.replace(marker, &format!("{marker}{row}")),
        (false, true) => text.replace(row, ""),
        _ => text,
    }
}

#[test]
fn events_queued_for_a_source_a_reload_removes_are_kept_as_dead_letters() {
    // A long linger: the events wait, queued, until the reload has renamed their source.
    let s = setup(", linger_ms: 3000");
    let original = std::fs::read_to_string(&s.config).unwrap();
    let service = Service::start(&s.config, None);
    let url = service.url("/v1/events");
    let a = post_events(&url, &json!(cart_events("orphan", 0..2))).unwrap();
    assert_eq!(a.status, 202);
    let renamed = original
        .replace("name: server,", "name: backend,")
        .replace("sources: [server]", "sources: [backend]");
    assert_ne!(renamed, original);
    std::fs::write(&s.config, &renamed).unwrap();
    let a = admin(&service, "POST", "/admin/reload", None);
    assert_eq!(a.body, json!({"reloaded": true}), "{}", a.body);
    let letters = wait_until(&service, "/admin/dead-letters", |b| {
        b.as_array().is_some_and(|a| a.len() == 2)
    });
    let reason = letters[0]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("its source `server` is not in the config any more"),
        "{reason}"
    );
    assert!(s.mock.event_ids().is_empty());
    // The source back, they are retried and delivered.
    std::fs::write(&s.config, &original).unwrap();
    assert_eq!(
        admin(&service, "POST", "/admin/reload", None).body,
        json!({"reloaded": true})
    );
    let a = admin(
        &service,
        "POST",
        "/admin/dead-letters/retry",
        Some(json!({})),
    );
    assert_eq!(a.body, json!({"retried": 2}), "{}", a.body);
    assert_eq!(s.mock.wait_for_distinct(2, WAIT), 2);
}

fn quiz(id: &str) -> Value {
    let mut e = switchyard_tests::event("Quiz Completed", json!({}));
    e["event_id"] = id.into();
    e["timestamp"] = (unix_now() - 60).into();
    e
}

#[test]
fn reload_switches_to_a_good_config_and_keeps_the_old_one_on_errors() {
    let s = setup("");
    let original = std::fs::read_to_string(&s.config).unwrap();
    let mut service = Service::start(&s.config, None);
    let url = service.url("/v1/events");
    assert_eq!(
        post_events(&url, &json!([quiz("quiz-1")])).unwrap().status,
        202
    );
    wait_until(&service, "/admin/events?status=skipped", |b| {
        b.as_array().is_some_and(|a| a.len() == 1)
    });

    // A bad config: 422 with file:line, logged; the old one keeps running.
    std::fs::write(
        &s.config,
        config_text(&original, true).replace("batch_size: 100", "batch_size: lots"),
    )
    .unwrap();
    let a = admin(&service, "POST", "/admin/reload", None);
    assert_eq!(a.status, 422, "{}", a.body);
    let message = a.body["error"].as_str().unwrap();
    assert!(message.contains("switchyard.yaml:"), "{message}");
    assert!(
        service.wait_for_log("reload refused", WAIT),
        "{}",
        service.log()
    );
    assert_eq!(
        post_events(&url, &json!(cart_events("still", 0..1)))
            .unwrap()
            .status,
        202
    );
    assert_eq!(s.mock.wait_for_distinct(1, WAIT), 1);

    // A good one, with a changed listen address (needs a restart: kept, with a warning) and a
    // new row, applied by SIGHUP while events are queued: nothing queued is lost.
    s.mock
        .fail_next([Fault::Status(503, None), Fault::Status(503, None)]);
    assert_eq!(
        post_events(&url, &json!(cart_events("queued", 0..20)))
            .unwrap()
            .status,
        202
    );
    let good = config_text(&original, true).replace("127.0.0.1:0", "127.0.0.1:1");
    std::fs::write(&s.config, good).unwrap();
    service.signal("HUP");
    assert!(
        service.wait_for_log("config reloaded", WAIT),
        "{}",
        service.log()
    );
    assert!(service.running(), "SIGHUP does not stop the service");
    assert!(
        service.wait_for_log("server.listen changed", WAIT),
        "{}",
        service.log()
    );
    assert_eq!(
        post_events(&url, &json!([quiz("quiz-2")])).unwrap().status,
        202
    );
    assert_eq!(
        s.mock.wait_for_distinct(22, WAIT),
        22,
        "the queued events and the new row"
    );
    let events = s.mock.events();
    let lead: Vec<&Value> = events.iter().filter(|e| e["event"] == "Lead").collect();
    assert_eq!(lead.len(), 1);
    assert_eq!(
        lead[0]["event_id"], "quiz-2",
        "the old event was not sent again"
    );

    // Through the API as well.
    let a = admin(&service, "POST", "/admin/reload", None);
    assert_eq!(a.body, json!({"reloaded": true}));
    let (clean, log) = service.terminate();
    assert!(clean, "{log}");
}
