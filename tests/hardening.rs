//! What a hostile or clumsy client must not be able to do to the running service: events dated
//! where the platform cannot use them, dead letters that fill the disk, requests larger than the
//! whole queue, a browser that names its own IP address, a bad entry that cannot be dropped.
//! Each test starts `serve` on loopback with the mock Events API.

use serde_json::{Value, json};
use std::time::Duration;
use switchyard_tests::mock_tiktok::{Fault, MockTiktok};
use switchyard_tests::service::*;

const PUBLIC_KEY: &str = "pk-hardening";

struct Setup {
    mock: MockTiktok,
    dir: tempfile::TempDir,
    config: std::path::PathBuf,
}

/// A service config with a webhook source (`server`) and a browser source (`web`).
fn setup(server: &str) -> Setup {
    let mock = MockTiktok::start(TOKEN);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("switchyard.yaml");
    let text = serve_config(&mock.endpoint, &dir.path().join("data"), server, "")
        .replace(
            "sources:\n",
            &format!("sources:\n  - {{name: web, kind: browser, public_key: {PUBLIC_KEY}}}\n"),
        )
        .replace("sources: [server]", "sources: [server, web]");
    std::fs::write(&config, text).unwrap();
    Setup { mock, dir, config }
}

fn collect(service: &Service, event: &Value, headers: &[(&str, &str)]) -> Answer {
    let mut all = vec![("content-type", "application/json")];
    all.extend_from_slice(headers);
    http(
        "POST",
        &service.url(&format!("/v1/collect?key={PUBLIC_KEY}")),
        &all,
        Some(serde_json::to_vec(event).unwrap()),
    )
    .unwrap()
}

fn cart(id: &str, timestamp: Value) -> Value {
    let mut e = cart_events(id, 0..1).remove(0);
    e["event_id"] = id.into();
    e["timestamp"] = timestamp;
    e
}

fn reasons(answer: &Answer) -> Vec<(String, String)> {
    answer.body["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["event_id"].as_str().unwrap().to_owned(),
                r["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn event_times_the_platform_cannot_use_are_refused_at_ingestion_with_the_reason() {
    let s = setup("");
    let service = Service::start(&s.config, None);
    let now = unix_now();
    let events = json!([
        cart("far-future", json!("9999-12-31T23:59:59Z")),
        cart("before-1970", json!("1969-07-20T20:17:00Z")),
        cart("too-old", json!(now - 29 * 86_400)),
        cart("ahead", json!(now + 3_600)),
        cart("fine", json!(now - 27 * 86_400)),
    ]);
    let a = post_events(&service.url("/v1/events"), &events).unwrap();
    assert_eq!(a.status, 202, "{}", a.body);
    assert_eq!(a.body["accepted"], 1);
    let reasons = reasons(&a);
    let expected = [
        ("far-future", "is after the year 5138"),
        ("before-1970", "is before 1970"),
        ("too-old", "events older than 28 days are refused"),
        ("ahead", "events more than 600 s ahead are refused"),
    ];
    assert_eq!(reasons.len(), expected.len(), "{reasons:?}");
    for ((id, reason), (want_id, want)) in reasons.iter().zip(expected) {
        assert_eq!(id, want_id);
        assert!(reason.contains(want), "{id}: {reason}");
    }
    let browser = collect(
        &service,
        &cart("old-browser", json!(now - 40 * 86_400)),
        &[],
    );
    assert_eq!(browser.status, 400, "{}", browser.body);
    assert!(
        browser.body["error"]
            .as_str()
            .unwrap()
            .contains("older than")
    );
    assert_eq!(s.mock.wait_for_distinct(1, Duration::from_secs(20)), 1);
    assert_eq!(s.mock.event_ids(), ["fine"]);
}

#[test]
fn a_source_sends_only_the_events_it_lists() {
    let s = setup("");
    let text = std::fs::read_to_string(&s.config).unwrap().replace(
        &format!("public_key: {PUBLIC_KEY}}}"),
        &format!("public_key: {PUBLIC_KEY}, events: [$page_load, Added To Cart]}}"),
    );
    std::fs::write(&s.config, text).unwrap();
    let service = Service::start(&s.config, None);
    // The public key cannot make an order.
    let mut order = switchyard_tests::event(
        "Placed Order",
        json!({"id": "5002", "total_price": 99999, "currency": "EUR", "$is_new_customer": true}),
    );
    order["event_id"] = "order-5002".into();
    order["timestamp"] = json!(unix_now());
    let a = collect(&service, &order, &[]);
    assert_eq!(a.status, 400, "{}", a.body);
    assert_eq!(
        a.body["error"],
        "`event_name`: `Placed Order` is not one of the events source `web` may send (sources[].events)"
    );
    let a = collect(&service, &cart("listed", json!(unix_now())), &[]);
    assert_eq!(a.status, 202, "{}", a.body);
    // The shop's server, with no list, sends the order.
    let a = post_events(&service.url("/v1/events"), &json!([order])).unwrap();
    assert_eq!(a.body["accepted"], 1, "{}", a.body);
    assert_eq!(s.mock.wait_for_distinct(2, Duration::from_secs(20)), 2);
    let metrics = service.metrics();
    assert!(
        metrics.contains("switchyard_events_received_total{result=\"rejected\",source=\"web\"} 1"),
        "a browser refusal is counted: {metrics}"
    );
}

#[test]
fn the_browser_cannot_choose_its_ip_and_forwarded_for_counts_only_from_trusted_proxies() {
    let untrusting = setup("");
    let service = Service::start(&untrusting.config, None);
    let mut event = cart("ip-1", json!(unix_now()));
    event["profile_properties"]["$ip"] = "5.6.7.8".into();
    let a = collect(&service, &event, &[("x-forwarded-for", "1.2.3.4")]);
    assert_eq!(a.status, 202, "{}", a.body);
    untrusting
        .mock
        .wait_for_distinct(1, Duration::from_secs(20));
    assert_eq!(untrusting.mock.events()[0]["user"]["ip"], "127.0.0.1");
    drop(service);

    let behind_proxy = setup(", trusted_proxies: [127.0.0.1, 10.0.0.0/8]");
    let service = Service::start(&behind_proxy.config, None);
    for (i, forwarded) in ["9.9.9.9, 1.2.3.4", "9.9.9.9, 1.2.3.4, 10.1.2.3"]
        .iter()
        .enumerate()
    {
        let mut event = cart(&format!("ip-proxy-{i}"), json!(unix_now()));
        event["profile_properties"]["$ip"] = "5.6.7.8".into();
        let a = collect(&service, &event, &[("x-forwarded-for", forwarded)]);
        assert_eq!(a.status, 202, "{}", a.body);
    }
    behind_proxy
        .mock
        .wait_for_distinct(2, Duration::from_secs(20));
    let ips: Vec<Value> = behind_proxy
        .mock
        .events()
        .iter()
        .map(|e| e["user"]["ip"].clone())
        .collect();
    // The nearest address no trusted proxy vouches for: the client of the first proxy.
    assert_eq!(ips, [json!("1.2.3.4"), json!("1.2.3.4")]);
}

#[test]
fn oversized_bodies_get_a_json_413_with_cors_on_collect() {
    let s = setup(", max_body_kib: 1");
    let service = Service::start(&s.config, None);
    let mut big = cart("big", json!(unix_now()));
    big["properties"]["note"] = "x".repeat(2048).into();
    let a = post_events(&service.url("/v1/events"), &json!([big])).unwrap();
    assert_eq!(a.status, 413);
    assert!(
        a.body["error"].as_str().unwrap().contains("max_body_kib"),
        "{}",
        a.body
    );
    let b = collect(&service, &big, &[]);
    assert_eq!(b.status, 413);
    assert!(b.body["error"].is_string(), "{}", b.body);
    assert_eq!(b.allow_origin.as_deref(), Some("*"));
}

#[test]
fn a_request_larger_than_the_whole_queue_budget_gets_413_not_503() {
    // The body limit equals the budget (the most a config may allow); the stored records of a
    // body just under it are larger than the budget.
    let s = setup(", queue_budget_mib: 1, max_body_kib: 1024");
    let service = Service::start(&s.config, None);
    let now = unix_now();
    let events: Vec<Value> = (0..980)
        .map(|i| {
            let mut e = cart(&format!("huge-{i}"), json!(now));
            e["properties"]["note"] = "y".repeat(850).into();
            e
        })
        .collect();
    let body = serde_json::to_vec(&events).unwrap();
    assert!(body.len() < 1 << 20, "{} bytes", body.len());
    let a = post_events(&service.url("/v1/events"), &json!(events)).unwrap();
    assert_eq!(a.status, 413, "{}", a.body);
    assert!(a.retry_after.is_none(), "no wait can fix it");
    assert!(
        a.body["error"]
            .as_str()
            .unwrap()
            .contains("exceed the whole queue budget"),
        "{}",
        a.body
    );
}

fn list(config: &std::path::Path) -> Vec<Value> {
    let (code, listed, err) = cli_with_input(
        &["dead-letters", "list", "--config", config.to_str().unwrap()],
        "",
    );
    assert_eq!(code, 0, "{err}");
    listed
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn dead_letters_fill_the_budget_until_dropped_and_drop_asks_first() {
    let s = setup(", queue_budget_mib: 1");
    s.mock
        .fail_always(Some(Fault::Code(40001, "No permission to operate pixel")));
    let service = Service::start(&s.config, None);
    let url = service.url("/v1/events");
    // A revoked token: everything becomes a dead letter, which keeps its place in the budget.
    let mut refused = None;
    for start in (0..20_000).step_by(500) {
        let a = post_events(&url, &json!(cart_events("dl", start..start + 500))).unwrap();
        if a.status == 503 {
            refused = Some(a);
            break;
        }
        assert_eq!(a.status, 202, "{}", a.body);
        std::thread::sleep(Duration::from_millis(100));
    }
    let refused = refused.expect("dead letters filled the budget");
    let message = refused.body["error"].as_str().unwrap().to_owned();
    assert!(message.contains("by dead letters"), "{message}");
    let (clean, log) = service.terminate();
    assert!(clean, "{log}");
    let letters = list(&s.config);
    assert!(letters.len() > 1000, "{} dead letters", letters.len());

    let config = s.config.to_str().unwrap();
    let first = letters[0]["id"].to_string();
    let (code, _, err) = cli_with_input(
        &["dead-letters", "drop", "--config", config, "--id", &first],
        "n\n",
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("drop 1 dead letters for good"), "{err}");
    assert!(err.contains("dropped 0 dead letters"), "{err}");
    let (code, _, err) = cli_with_input(
        &["dead-letters", "drop", "--config", config, "--id", &first],
        "y\n",
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("dropped 1 dead letters"), "{err}");
    assert_eq!(list(&s.config).len(), letters.len() - 1);
    let (code, _, err) = cli_with_input(&["dead-letters", "drop", "--config", config], "");
    assert_eq!(code, 2, "a drop must say which: {err}");
    let (code, _, err) = cli_with_input(
        &[
            "dead-letters",
            "drop",
            "--config",
            config,
            "--older-than",
            "1h",
            "--yes",
        ],
        "",
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("dropped 0 dead letters"),
        "none is an hour old: {err}"
    );
    let (code, _, err) = cli_with_input(
        &[
            "dead-letters",
            "drop",
            "--config",
            config,
            "--destination",
            "tiktok",
            "--yes",
        ],
        "",
    );
    assert_eq!(code, 0, "{err}");
    assert!(list(&s.config).is_empty());

    // With the budget free again, ingestion takes events.
    s.mock.fail_always(None);
    let service = Service::start(&s.config, None);
    let a = post_events(
        &service.url("/v1/events"),
        &json!(cart_events("after", 0..10)),
    )
    .unwrap();
    assert_eq!(a.status, 202, "{}", a.body);
    assert_eq!(s.mock.wait_for_distinct(10, Duration::from_secs(20)), 10);
    drop(s.dir);
}

#[test]
fn a_token_with_a_line_break_is_refused_at_load_without_showing_it() {
    let s = setup("");
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let text = std::fs::read_to_string(&s.config)
        .unwrap()
        .replace("SY_TIKTOK_TOKEN", "SY_HARDENING_NEWLINE_TOKEN");
    std::fs::write(&s.config, text).unwrap();
    // SAFETY: only this test reads or writes this variable.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var("SY_HARDENING_NEWLINE_TOKEN", "secret-token-value\n");
    }
    let argv = ["switchyard", "validate", s.config.to_str().unwrap()];
    let code = switchyard::cli::run(argv, &mut "".as_bytes(), &mut out, &mut err);
    let err = String::from_utf8(err).unwrap();
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("access_token: the environment variable SY_HARDENING_NEWLINE_TOKEN holds a control character"),
        "{err}"
    );
    assert!(!err.contains("secret-token-value"), "{err}");
}

/// Posts `body` as it is, as the tests' `server` source.
fn post_text(service: &Service, body: &str) -> Answer {
    http(
        "POST",
        &service.url("/v1/events"),
        &[
            ("x-webhook-token", WRITE_KEY),
            ("content-type", "application/json"),
        ],
        Some(body.as_bytes().to_vec()),
    )
    .unwrap()
}

#[test]
fn an_event_nests_at_most_127_levels_and_one_that_does_not_parse_is_refused_alone() {
    let s = setup("");
    let service = Service::start(&s.config, None);
    let outcome = |a: &Answer| (a.status, a.body["accepted"].clone());
    // The event is one level, `properties` a second: a value of `levels - 2` more makes the event
    // `levels` deep.
    let event = |id: &str, levels: usize| {
        let deep = format!("{}{}", "[".repeat(levels - 2), "]".repeat(levels - 2));
        let mut text = serde_json::to_string(&cart(id, json!(unix_now()))).unwrap();
        text.insert_str(
            text.find("\"properties\":{").unwrap() + 14,
            &format!("\"deep\":{deep},"),
        );
        text
    };
    let alone = post_text(&service, &event("deep-alone", 127));
    assert_eq!(outcome(&alone), (202, json!(1)), "{}", alone.body);
    let array = format!(
        "[\n  {},\n  {}\n]\n",
        event("deep-1", 127),
        event("shallow", 3)
    );
    let a = post_text(&service, &array);
    assert_eq!(outcome(&a), (202, json!(2)), "{}", a.body);

    // JSON that does not parse into an event (one level deeper; a lone surrogate) is refused
    // alone, with the reason; the other events of its request are queued.
    let surrogate = serde_json::to_string(&cart("surrogate", json!(unix_now())))
        .unwrap()
        .replace("\"properties\":{", "\"properties\":{\"note\":\"\\ud800\",");
    // A key given twice is refused too: which copy is meant is not ours to guess.
    let repeated = serde_json::to_string(&cart("repeated", json!(unix_now())))
        .unwrap()
        .replacen("{", "{\"event_name\":\"Searched\",", 1);
    let body = format!(
        "[{}, {}, {}, {}]",
        event("ok", 3),
        event("deeper", 128),
        surrogate,
        repeated
    );
    let a = post_text(&service, &body);
    assert_eq!(outcome(&a), (202, json!(1)), "{}", a.body);
    let refused = a.body["rejected"].as_array().unwrap();
    let expected = [
        (1, "arrays and objects nested deeper than 127 levels"),
        (
            2,
            "a `\\u` escape of half a UTF-16 surrogate pair without its other half",
        ),
        (3, "`event_name` is given twice in one object"),
    ];
    assert_eq!(refused.len(), expected.len(), "{}", a.body);
    for (r, (index, reason)) in refused.iter().zip(expected) {
        assert_eq!(r["index"], json!(index), "{}", a.body);
        assert!(
            r["reason"].as_str().unwrap().starts_with(reason),
            "{}",
            a.body
        );
    }
    // Alone, such an event makes a request of only invalid events: 400, with the reason.
    let alone = post_text(&service, &event("deeper-alone", 128));
    assert_eq!(outcome(&alone), (400, json!(0)), "{}", alone.body);
    assert!(
        alone.body["rejected"][0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("arrays and objects nested deeper than 127 levels")
    );
}
