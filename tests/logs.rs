//! The service's logs: `tracing` lines, as JSON with `--log-format json`, filtered by `RUST_LOG`;
//! every retry and dead letter is logged with its destination, and the token never is.

use serde_json::{Value, json};
use std::time::Duration;
use switchyard_tests::mock_tiktok::{Fault, MockTiktok};
use switchyard_tests::service::*;

fn config(mock: &MockTiktok, dir: &tempfile::TempDir) -> std::path::PathBuf {
    let path = dir.path().join("switchyard.yaml");
    let text = serve_config(
        &mock.endpoint,
        &dir.path().join("data"),
        "",
        ", max_attempts: 2",
    );
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn json_logs_name_the_destination_of_every_retry_and_dead_letter_and_never_the_token() {
    let mock = MockTiktok::start(TOKEN);
    // Two tries, each answered "too many requests": one retry, then the events are dead letters.
    mock.fail_always(Some(Fault::Code(40100, "Too many requests")));
    let dir = tempfile::tempdir().unwrap();
    let path = config(&mock, &dir);
    let service = Service::start_with(&path, None, &["--log-format", "json"]);
    let a = post_events(&service.url("/v1/events"), &json!(cart_events("log", 0..3))).unwrap();
    assert_eq!(a.status, 202);
    let failed = "switchyard_destination_events_total{destination=\"tiktok\",status=\"failed\"} 3";
    assert!(
        wait_for_metrics(&service, &[failed]),
        "{}",
        service.metrics()
    );
    let (clean, log) = service.terminate();
    assert!(clean, "{log}");
    assert!(!log.contains(TOKEN), "the token never shows");
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let find = |level: &str, start: &str| {
        lines.iter().find(|l| {
            l["level"] == level
                && l["fields"]["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with(start))
        })
    };
    assert!(find("INFO", "listening on 127.0.0.1:").is_some(), "{log}");
    let retry = find("WARN", "request failed, retrying").expect("a retry is logged");
    assert_eq!(retry["fields"]["destination"], "tiktok");
    assert_eq!(retry["fields"]["attempt"], 1);
    assert_eq!(retry["fields"]["events"], 3);
    let dead = find("WARN", "dead-lettered: gave up after 2 tries").expect("dead letters logged");
    assert_eq!(dead["fields"]["destination"], "tiktok");
    assert_eq!(dead["fields"]["events"], 3);
    let message = dead["fields"]["message"].as_str().unwrap();
    assert!(message.contains("code 40100"), "{message}");
    assert!(message.contains("log-0, log-1, log-2"), "{message}");
    assert!(find("INFO", "stopped;").is_some(), "{log}");
}

#[test]
fn rust_log_filters_the_lines() {
    let mock = MockTiktok::start(TOKEN);
    let dir = tempfile::tempdir().unwrap();
    let path = config(&mock, &dir);
    // Only errors: the start and stop lines (info) are not written. `serve` is found by its
    // address, so the test passes it and reads none.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let mut cmd = std::process::Command::new(switchyard_bin());
    cmd.args(["serve", "--config"])
        .arg(&path)
        .args(["--listen", &listen])
        .env("RUST_LOG", "error")
        .stderr(std::process::Stdio::piped());
    let child = serve_env(&mut cmd).spawn().unwrap();
    let url = format!("http://{listen}/healthz");
    let mut up = false;
    for _ in 0..200 {
        if http("GET", &url, &[], None).is_ok_and(|a| a.status == 200) {
            up = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let out = child.wait_with_output().unwrap();
    assert!(up, "serve did not answer");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(!log.contains("listening on"), "{log}");
    assert!(!log.contains("INFO"), "{log}");
}

#[test]
fn a_rust_log_that_is_not_a_filter_is_refused_before_any_work() {
    let root = switchyard_tests::root();
    let out = std::process::Command::new(switchyard_bin())
        .args(["map", "--config"])
        .arg(root.join("examples/switchyard.yaml"))
        .arg(root.join("examples/events.ndjson"))
        .env("RUST_LOG", "switchyard=loud")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(out.stdout.is_empty(), "nothing mapped: {stderr}");
    assert!(
        stderr.starts_with("error: RUST_LOG is not a log filter"),
        "{stderr}"
    );
}
