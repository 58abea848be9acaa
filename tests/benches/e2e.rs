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
    let config = config_dir.path().join("switchyard.yaml");
    let text = serve_config(
        &mock.endpoint,
        data_dir,
        &format!(", linger_ms: 5, round_events: 5000{queue}"),
        ", max_requests_per_second: 10000, max_concurrency: 16",
    )
    .replace("batch_size: 100", "batch_size: 1000");
    std::fs::write(&config, text).expect("config");
    // Only events the destination sends server-side: the benchmark waits for every one.
    let loaded = switchyard_service::config::load(&config).expect("config loads");
    let samples: Vec<Value> = samples
        .iter()
        .filter(|v| {
            let Ok(e) = switchyard_core::event::SourceEvent::from_value((*v).clone(), 0) else {
                return false;
            };
            loaded
                .pipeline
                .outcomes_of(&e, "server")
                .iter()
                .all(|o| !o.data.is_empty())
        })
        .cloned()
        .collect();
    // Payloads per sample (orders map to two TikTok events): the wait below polls the count of
    // payloads that arrived, which is cheap, instead of hashing every id under the mock's lock
    // (that stalled the mock's answers while the bench waited).
    let payloads_of: Vec<usize> = samples
        .iter()
        .map(|v| {
            let e = switchyard_core::event::SourceEvent::from_value(v.clone(), 0).expect("valid");
            let outcomes = loaded.pipeline.outcomes_of(&e, "server");
            outcomes.iter().map(|o| o.data.len()).sum()
        })
        .collect();
    let payloads: usize = (0..n).map(|i| payloads_of[i % samples.len()]).sum();
    let services: Vec<Service> = (0..nodes).map(|_| Service::start(&config, None)).collect();
    let perf = std::env::var("E2E_PERF").ok().map(|out| {
        let out = format!("{out}.{}", label.split_whitespace().next().unwrap_or("run"));
        let options = std::env::var("E2E_PERF_ARGS").unwrap_or_else(|_| "-F 999 -g".into());
        std::process::Command::new("perf")
            .args(["record", "-q"])
            .args(options.split_whitespace())
            .args(["-o", &out, "-p"])
            .arg(services[0].pid().to_string())
            .spawn()
            .expect("perf runs")
    });
    let urls: Vec<String> = services.iter().map(|s| s.url("/v1/events")).collect();

    // Request bodies, made before the clock starts.
    let bodies: Vec<(usize, Vec<u8>)> = (0..n)
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
        .collect();
    // This process's CPU from here on: the load generator and the mock, not the bodies made above.
    let own_cpu_before =
        cpu_time_of("/proc/self/stat").expect("this process's CPU time (/proc/self/stat)");
    // Per request: its first event, when it was first sent, and when it was answered 202.
    let acked: Arc<Mutex<Vec<(usize, Instant, Instant)>>> = Arc::new(Mutex::new(Vec::new()));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    switchyard_tiktok::transport::install_crypto_provider();
    let bodies = Arc::new(bodies);
    let started = Instant::now();
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
                    let url = &urls[i % urls.len()];
                    let sent = Instant::now();
                    loop {
                        let r = client
                            .post(url)
                            .header("x-webhook-token", WRITE_KEY)
                            .header("content-type", "application/json")
                            .body(body.clone())
                            .send()
                            .await;
                        match r {
                            Ok(r) if r.status().as_u16() == 202 => break,
                            Ok(r) => eprintln!("status {}", r.status()),
                            Err(e) => eprintln!("{e}"),
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
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
    let ingested = started.elapsed();
    let delivered_while_ingesting = mock.distinct_arrivals();
    let deadline = Instant::now() + Duration::from_secs(600);
    while mock.arrival_count() < payloads && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    // Payloads sent twice (a retry) count twice above: wait until every event is there.
    while mock.distinct_arrivals() < n && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let arrivals = mock.arrivals();
    let delivered = mock.distinct_arrivals();
    let last = arrivals.iter().map(|(_, t)| *t).max().unwrap_or(started);
    let elapsed = last.duration_since(started);
    // Latency: first arrival of each id minus the 202 of its request (and, beside it, minus
    // when its request was first sent: ingestion's own time included).
    let mut acked_at = vec![(started, started); n];
    for (start, sent, t) in acked.lock().map(|a| a.clone()).unwrap_or_default() {
        for slot in acked_at.iter_mut().skip(start).take(PER_REQUEST) {
            *slot = (sent, t);
        }
    }
    let mut first = std::collections::HashMap::new();
    for (id, t) in &arrivals {
        first.entry(id.clone()).or_insert(*t);
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
    let (latencies, from_send) = (since(|(_, acked)| *acked), since(|(sent, _)| *sent));
    let percentile = |of: &[Duration], p: f64| {
        of.get(((of.len() as f64 * p) as usize).min(of.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
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
    // A figure that cannot be read stops the bench rather than printing 0.
    let own_cpu = cpu_time_of("/proc/self/stat")
        .expect("this process's CPU time (/proc/self/stat)")
        - own_cpu_before;
    let serve_cpu: Duration = services
        .iter()
        .map(|s| s.cpu_time().expect("serve's CPU time (/proc/<pid>/stat)"))
        .sum();
    if let Some(mut perf) = perf {
        let _ = std::process::Command::new("kill")
            .args(["-INT", &perf.id().to_string()])
            .status();
        let _ = perf.wait();
    }
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
    drop(services);
}
