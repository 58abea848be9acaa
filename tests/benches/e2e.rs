//! End to end: HTTP ingestion → durable queue → pipeline (default TikTok mapping) → batching →
//! the mock TikTok Events API on loopback, with `switchyard serve` (release build) as a child
//! process and the load generator in this process: events/s from the first request to the last
//! event's arrival at the mock, and the delivery latency (202 answer → arrival at the mock), p50
//! and p99. Run twice: the queue on tmpfs (`/dev/shm`: no real fsync) and on disk.
//!
//! Run: `cargo bench -p switchyard-tests --bench e2e` (default 200,000 events; pass a number after
//! `--` to change it). With `-- nats`: the queue on NATS JetStream instead (a `nats-server` with
//! JetStream started here, its store on disk and its storage limit set), with 1 node and with 2 nodes (requests alternate between
//! them). Figures go to BENCHMARKS.md.
//!
//! Each run also prints the CPU time `serve` used (from `/proc/<pid>/stat`, per event) and the
//! bench process's own, and the load average. With `E2E_PERF=<file>` set, `perf record` samples
//! the (first) `serve` from its start to the end of the run into `<file>.<first word of the run's
//! label>`, with the options of `$E2E_PERF_ARGS` (default `-F 999 -g`).

use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use switchyard_tests::mock_tiktok::MockTiktok;
use switchyard_tests::nats_server::NatsServer;
use switchyard_tests::service::*;

/// Events per request, and requests in flight.
const PER_REQUEST: usize = 500;
const CLIENTS: usize = 4;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: usize = args.iter().find_map(|a| a.parse().ok()).unwrap_or(200_000);
    let samples = sample_events();
    let disk = tempfile::tempdir_in(switchyard_tests::root().join("target")).expect("temp dir");
    println!("| queue | events | events/s | p50 latency | p99 latency |");
    println!("|---|---|---|---|---|");
    if args.iter().any(|a| a == "nats") {
        for nodes in [1, 2] {
            // A fresh server (store on disk) for each run.
            let nats = NatsServer::start_in(disk.path());
            let queue = format!(", queue: {{kind: nats, url: \"{}\"}}", nats.url());
            let label = format!(
                "JetStream, {nodes} node{}",
                if nodes > 1 { "s" } else { "" }
            );
            run(&label, disk.path(), &queue, nodes, n, &samples);
        }
        return;
    }
    for (label, base) in [
        ("tmpfs (/dev/shm)", std::path::PathBuf::from("/dev/shm")),
        ("disk", disk.path().to_path_buf()),
    ] {
        let dir = tempfile::tempdir_in(&base).expect("data dir");
        run(label, dir.path(), "", 1, n, &samples);
    }
}

/// The valid events of `examples/events.ndjson`, to cycle through with fresh ids, dated now (the
/// service refuses events older than `max_event_age_hours`).
fn sample_events() -> Vec<Value> {
    let text = std::fs::read_to_string(switchyard_tests::root().join("examples/events.ndjson"))
        .expect("examples/events.ndjson");
    let now = switchyard_tests::service::unix_now();
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| switchyard_core::event::SourceEvent::from_value(v.clone(), 0).is_ok())
        .map(|mut v| {
            v["timestamp"] = now.into();
            v
        })
        .collect()
}

/// One run: `nodes` services on one config (`queue`: extra `server` settings), requests spread
/// over them.
fn run(
    label: &str,
    data_dir: &std::path::Path,
    queue: &str,
    nodes: usize,
    n: usize,
    samples: &[Value],
) {
    let mock = MockTiktok::start(TOKEN);
    mock.arrivals_only();
    let config_dir = tempfile::tempdir().expect("config dir");
    let config = write_config(config_dir.path(), &mock, data_dir, queue);
    let loaded = switchyard_service::config::load(&config).expect("config loads");
    let (samples, payloads_of) = sent_server_side(&loaded, samples);
    let payloads: usize = (0..n).map(|i| payloads_of[i % samples.len()]).sum();
    let services: Vec<Service> = (0..nodes).map(|_| Service::start(&config, None)).collect();
    let perf = start_perf(label, &services[0]);
    let urls: Vec<String> = services.iter().map(|s| s.url("/v1/events")).collect();
    let bodies = request_bodies(&samples, n);
    // This process's CPU from here on: the load generator and the mock, not the bodies made above.
    let own_cpu_before =
        cpu_time_of("/proc/self/stat").expect("this process's CPU time (/proc/self/stat)");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    switchyard_tiktok::transport::install_crypto_provider();
    let started = Instant::now();
    let acked = send_all(&rt, urls, bodies);
    let ingested = started.elapsed();
    let delivered_while_ingesting = mock.distinct_arrivals();
    wait_for_arrivals(&mock, payloads, n);
    let arrivals = mock.arrivals();
    let delivered = mock.distinct_arrivals();
    let last = arrivals.iter().map(|(_, t)| *t).max().unwrap_or(started);
    let elapsed = last.duration_since(started);
    let (latencies, from_send) = latencies(&arrivals, &acked, started, n);
    let pct = |p: f64| percentile(&latencies, p);
    println!(
        "| {label} | {delivered}/{n} | {:.0} | {:.1} ms | {:.1} ms |",
        delivered as f64 / elapsed.as_secs_f64(),
        pct(0.50).as_secs_f64() * 1000.0,
        pct(0.99).as_secs_f64() * 1000.0
    );
    eprintln!(
        "  ({label}: ingestion of all requests took {:.2} s ({delivered_while_ingesting} events delivered by then), delivery done at {:.2} s, {} payloads beyond one per event: orders map to two TikTok events)",
        ingested.as_secs_f64(),
        elapsed.as_secs_f64(),
        arrivals.len() - delivered
    );
    eprintln!(
        "  ({label}: latency from the request's send: p50 {:.1} ms, p99 {:.1} ms)",
        percentile(&from_send, 0.50).as_secs_f64() * 1000.0,
        percentile(&from_send, 0.99).as_secs_f64() * 1000.0
    );
    report_cpu(label, &services, own_cpu_before, n);
    stop_perf(perf);
    drop(services);
}

/// The bench's config: the default mapping, the mock as the Events API, batches of 1,000.
fn write_config(
    dir: &std::path::Path,
    mock: &MockTiktok,
    data_dir: &std::path::Path,
    queue: &str,
) -> std::path::PathBuf {
    let config = dir.join("switchyard.yaml");
    let text = serve_config(
        &mock.endpoint,
        data_dir,
        &format!(", linger_ms: 5, round_events: 5000{queue}"),
        ", max_requests_per_second: 10000, max_concurrency: 16",
    )
    .replace("batch_size: 100", "batch_size: 1000");
    std::fs::write(&config, text).expect("config");
    config
}

/// The samples the destination sends server-side (the bench waits for every one), each with
/// its count of payloads: orders map to two TikTok events. The wait polls the count of payloads
/// that arrived, which is cheap, instead of hashing every id under the mock's lock (that
/// stalled the mock's answers while the bench waited).
fn sent_server_side(
    loaded: &switchyard_service::config::Loaded,
    samples: &[Value],
) -> (Vec<Value>, Vec<usize>) {
    samples
        .iter()
        .filter_map(|v| {
            let e = switchyard_core::event::SourceEvent::from_value(v.clone(), 0).ok()?;
            let outcomes = loaded.pipeline.outcomes_of(&e, "server");
            let sent = outcomes.iter().all(|o| !o.data.is_empty());
            let payloads: usize = outcomes.iter().map(|o| o.data.len()).sum();
            sent.then(|| (v.clone(), payloads))
        })
        .unzip()
}

/// With `E2E_PERF=<file>`: `perf record` of `service` into `<file>.<first word of label>`.
fn start_perf(label: &str, service: &Service) -> Option<std::process::Child> {
    let out = std::env::var("E2E_PERF").ok()?;
    let out = format!("{out}.{}", label.split_whitespace().next().unwrap_or("run"));
    let options = std::env::var("E2E_PERF_ARGS").unwrap_or_else(|_| "-F 999 -g".into());
    let perf = std::process::Command::new("perf")
        .args(["record", "-q"])
        .args(options.split_whitespace())
        .args(["-o", &out, "-p"])
        .arg(service.pid().to_string())
        .spawn()
        .expect("perf runs");
    Some(perf)
}

fn stop_perf(perf: Option<std::process::Child>) {
    if let Some(mut perf) = perf {
        let _ = std::process::Command::new("kill")
            .args(["-INT", &perf.id().to_string()])
            .status();
        let _ = perf.wait();
    }
}

/// Request bodies of `PER_REQUEST` events (made before the clock starts), each with the index of
/// its first event; event `i` is sample `i` (cycling) with the id `b-<i>`.
fn request_bodies(samples: &[Value], n: usize) -> Vec<(usize, Vec<u8>)> {
    (0..n)
        .step_by(PER_REQUEST)
        .map(|start| {
            let events: Vec<Value> = (start..(start + PER_REQUEST).min(n))
                .map(|i| {
                    let mut e = samples[i % samples.len()].clone();
                    e["event_id"] = format!("b-{i}").into();
                    e
                })
                .collect();
            (start, serde_json::to_vec(&events).expect("body"))
        })
        .collect()
}

/// When each request was first sent and answered 202: its first event, then both times.
type Acked = Vec<(usize, Instant, Instant)>;

/// Sends every body, `CLIENTS` requests in flight, spread over `urls`; a request that is not
/// answered 202 is sent again 100 ms later.
fn send_all(
    rt: &tokio::runtime::Runtime,
    urls: Vec<String>,
    bodies: Vec<(usize, Vec<u8>)>,
) -> Acked {
    let acked: Arc<Mutex<Acked>> = Arc::new(Mutex::new(Vec::new()));
    let (urls, bodies) = (Arc::new(urls), Arc::new(bodies));
    rt.block_on(async {
        let client = reqwest::Client::new();
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..CLIENTS {
            let (client, urls, bodies, next, acked) = (
                client.clone(),
                urls.clone(),
                bodies.clone(),
                next.clone(),
                acked.clone(),
            );
            tasks.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some((start, body)) = bodies.get(i) else {
                        break;
                    };
                    let sent = Instant::now();
                    send_until_accepted(&client, &urls[i % urls.len()], body).await;
                    let now = Instant::now();
                    if let Ok(mut a) = acked.lock() {
                        a.push((*start, sent, now));
                    }
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
    });
    let acked = acked.lock().map(|a| a.clone());
    acked.expect("no sender panicked holding the list")
}

async fn send_until_accepted(client: &reqwest::Client, url: &str, body: &[u8]) {
    loop {
        let r = client
            .post(url)
            .header("x-webhook-token", WRITE_KEY)
            .header("content-type", "application/json")
            .body(body.to_vec())
            .send()
            .await;
        match r {
            Ok(r) if r.status().as_u16() == 202 => return,
            Ok(r) => eprintln!("status {}", r.status()),
            Err(e) => eprintln!("{e}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits (up to 10 minutes) until `payloads` payloads and `n` distinct events have arrived.
fn wait_for_arrivals(mock: &MockTiktok, payloads: usize, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(600);
    while mock.arrival_count() < payloads && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    // Payloads sent twice (a retry) count twice above: wait until every event is there.
    while mock.distinct_arrivals() < n && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Latency of each event, sorted: its first arrival minus the 202 of its request, and (beside
/// it) minus when its request was first sent, ingestion's own time included.
fn latencies(
    arrivals: &[(String, Instant)],
    acked: &Acked,
    started: Instant,
    n: usize,
) -> (Vec<Duration>, Vec<Duration>) {
    let mut acked_at = vec![(started, started); n];
    for (start, sent, t) in acked {
        for slot in acked_at.iter_mut().skip(*start).take(PER_REQUEST) {
            *slot = (*sent, *t);
        }
    }
    let mut first = std::collections::HashMap::new();
    for (id, t) in arrivals {
        first.entry(id.as_str()).or_insert(*t);
    }
    let since = |from: fn(&(Instant, Instant)) -> Instant| {
        let mut latencies: Vec<Duration> = first
            .iter()
            .filter_map(|(id, t)| {
                let i: usize = id.strip_prefix("b-")?.parse().ok()?;
                Some(t.saturating_duration_since(from(acked_at.get(i)?)))
            })
            .collect();
        latencies.sort();
        latencies
    };
    (since(|(_, acked)| *acked), since(|(sent, _)| *sent))
}

/// The `p` quantile of sorted latencies. None at all stops the bench rather than printing 0 ms.
fn percentile(of: &[Duration], p: f64) -> Duration {
    let at = ((of.len() as f64 * p) as usize).min(of.len().saturating_sub(1));
    *of.get(at).expect("latencies of the events that arrived")
}

/// Prints the CPU time `serve` used and this process's own since `own_cpu_before`, per event,
/// and the load average. A figure that cannot be read stops the bench rather than printing 0.
fn report_cpu(label: &str, services: &[Service], own_cpu_before: Duration, n: usize) {
    let own_cpu = cpu_time_of("/proc/self/stat")
        .expect("this process's CPU time (/proc/self/stat)")
        - own_cpu_before;
    let serve_cpu: Duration = services
        .iter()
        .map(|s| s.cpu_time().expect("serve's CPU time (/proc/<pid>/stat)"))
        .sum();
    eprintln!(
        "  ({label}: CPU of serve {:.2} s = {:.1} µs per event; of this process {:.2} s = {:.1} µs per event; load average {})",
        serve_cpu.as_secs_f64(),
        serve_cpu.as_secs_f64() * 1e6 / n as f64,
        own_cpu.as_secs_f64(),
        own_cpu.as_secs_f64() * 1e6 / n as f64,
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
}
