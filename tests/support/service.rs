//! `switchyard serve` as a child process, for delivery tests: its config in a temporary folder,
//! its address, an HTTP client for it, and ways to stop it (SIGTERM, or SIGKILL as a crash).

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The access token the tests' destinations send (the mock checks it).
pub const TOKEN: &str = "test-token-0123456789";
/// The write key of the tests' `server` source.
pub const WRITE_KEY: &str = "write-key-abc";
/// The admin token of the tests' configs that turn the admin API on (`$SY_ADMIN_TOKEN`).
pub const ADMIN_TOKEN: &str = "admin-token-9876543210";
/// `server` settings that turn the admin API on, for [`serve_config`].
pub const ADMIN: &str = ", admin: {token: \"${SY_ADMIN_TOKEN}\"}";

/// The `switchyard` binary, built once per test run; `$SWITCHYARD_BIN` names another one instead
/// (A/B runs of a benchmark: two builds, the same bench binary).
///
/// Optimised (under `cargo bench`, or `cargo test --release`), it is built in a target directory
/// of its own, `target/bench-switchyard`: built alone, `switchyard` resolves its dependencies'
/// features differently from the benches, and sharing `target/release` made each of the two
/// builds rebuild the other's artifacts on every run.
pub fn switchyard_bin() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            if let Some(bin) = std::env::var_os("SWITCHYARD_BIN") {
                return PathBuf::from(bin);
            }
            // Tests run from target/<profile>/deps/; the binary is in target/<profile>/.
            let exe = std::env::current_exe().expect("test binary path");
            let profile_dir = exe
                .parent()
                .and_then(Path::parent)
                .expect("target/<profile>")
                .to_path_buf();
            let mut cmd = Command::new(env!("CARGO"));
            cmd.args(["build", "-q", "-p", "switchyard", "--bin", "switchyard"]);
            let profile_dir = if cfg!(debug_assertions) {
                profile_dir
            } else {
                let own = crate::root().join("target/bench-switchyard");
                cmd.arg("--release").arg("--target-dir").arg(&own);
                let mut dir = own;
                // A target triple set for the whole run puts the build under it.
                if let Some(triple) = std::env::var_os("CARGO_BUILD_TARGET") {
                    dir.push(triple);
                }
                dir.join("release")
            };
            let status = cmd.current_dir(crate::root()).status().expect("cargo runs");
            assert!(status.success(), "building switchyard failed");
            profile_dir.join("switchyard")
        })
        .clone()
}

/// A config for `serve`: sources `server` (webhook, write key from $SY_WRITE_KEY) and a TikTok
/// destination pointed at `endpoint` (token from $SY_TIKTOK_TOKEN); `server` and `delivery` are
/// YAML flow maps of extra settings (`, key: value`), each in place of its default.
pub fn serve_config(endpoint: &str, data_dir: &Path, server: &str, delivery: &str) -> String {
    let delivery = with_defaults(
        &[
            ("initial_backoff_ms", "20".into()),
            ("max_backoff_ms", "200".into()),
            ("max_requests_per_second", "1000".into()),
        ],
        delivery,
    );
    let server = with_defaults(
        &[
            ("listen", "\"127.0.0.1:0\"".into()),
            ("data_dir", format!("\"{}\"", data_dir.display())),
            ("linger_ms", "20".into()),
        ],
        server,
    );
    format!(
        "sources:\n  - {{name: server, kind: webhook, write_key: \"${{SY_WRITE_KEY}}\"}}\n\
         destinations:\n  - name: tiktok\n    type: tiktok\n    pixel_id: CJQBODJC77UB4MRTGFRF\n\
         \x20   access_token: \"${{SY_TIKTOK_TOKEN}}\"\n    domain: https://shop.example.com\n\
         \x20   sources: [server]\n    endpoint: {endpoint}\n    batch_size: 100\n\
         \x20   delivery: {{{delivery}}}\n\
         server: {{{server}}}\n"
    )
}

/// The entries of a flow mapping: `defaults` (key, value), but those that `extra` (`, key: value,
/// ...`, appended) gives itself, as a config may not give a key twice.
fn with_defaults(defaults: &[(&str, String)], extra: &str) -> String {
    let mut entries: Vec<String> = defaults
        .iter()
        .filter(|(key, _)| !extra.contains(&format!("{key}:")))
        .map(|(key, value)| format!("{key}: {value}"))
        .collect();
    let extra = extra.trim().trim_start_matches(',').trim();
    if !extra.is_empty() {
        entries.push(extra.to_owned());
    }
    entries.join(", ")
}

/// Environment a child needs for the tests' configs.
pub fn serve_env(cmd: &mut Command) -> &mut Command {
    cmd.env("SY_WRITE_KEY", WRITE_KEY)
        .env("SY_TIKTOK_TOKEN", TOKEN)
        .env("SY_ADMIN_TOKEN", ADMIN_TOKEN)
}

/// A running `switchyard serve`.
pub struct Service {
    child: Child,
    pub addr: String,
    /// Everything it wrote to standard error so far.
    pub stderr: Arc<Mutex<String>>,
}

impl Service {
    /// Starts `serve` on `config` (listening where the config says, or on `listen`).
    pub fn start(config: &Path, listen: Option<&str>) -> Self {
        Self::start_with(config, listen, &[])
    }

    /// [`Service::start`] with extra arguments (e.g. `--log-format json`).
    pub fn start_with(config: &Path, listen: Option<&str>, extra: &[&str]) -> Self {
        let mut cmd = Command::new(switchyard_bin());
        cmd.args(["serve", "--config"]).arg(config).args(extra);
        if let Some(l) = listen {
            cmd.args(["--listen", l]);
        }
        let mut child = serve_env(&mut cmd)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("serve starts");
        let stderr = Arc::new(Mutex::new(String::new()));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let pipe = child.stderr.take().expect("stderr piped");
        let log = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                // A text line ends with the address; a JSON line quotes it.
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let addr: String = rest
                        .chars()
                        .take_while(|c| c.is_ascii_hexdigit() || ".:[]".contains(*c))
                        .collect();
                    let _ = addr_tx.send(addr);
                }
                let mut l = log.lock().unwrap_or_else(|p| p.into_inner());
                l.push_str(&line);
                l.push('\n');
            }
        });
        let addr = match addr_rx.recv_timeout(Duration::from_secs(30)) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "serve did not start: {}",
                    stderr.lock().unwrap_or_else(|p| p.into_inner())
                );
            }
        };
        Self {
            child,
            addr,
            stderr,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The text of its `/metrics` (empty when it does not answer).
    pub fn metrics(&self) -> String {
        http("GET", &self.url("/metrics"), &[], None)
            .ok()
            .and_then(|a| a.body.as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    /// Its process id (e.g. to profile it, or to read its CPU time).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The CPU time it used so far (user + system, from `/proc/<pid>/stat`); `None` when it
    /// cannot be read (not Linux, or the process is gone).
    pub fn cpu_time(&self) -> Option<Duration> {
        cpu_time_of(&format!("/proc/{}/stat", self.pid()))
    }

    /// Kills it at once (SIGKILL): a crash.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends it a signal (e.g. `HUP`).
    pub fn signal(&self, name: &str) {
        let _ = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status();
    }

    /// Whether it still runs.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Everything it wrote to standard error so far.
    pub fn log(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Waits (up to `timeout`) until its standard error contains `needle`; its stderr is read
    /// by a thread, so a line logged before an answer may arrive after it. Returns whether it did.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        let start = std::time::Instant::now();
        while !self.log().contains(needle) {
            if start.elapsed() > timeout {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }

    /// Asks it to stop (SIGTERM) and waits; returns whether it exited cleanly, and its stderr.
    pub fn terminate(mut self) -> (bool, String) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let ok = self.child.wait().map(|s| s.success()).unwrap_or(false);
        std::thread::sleep(Duration::from_millis(50));
        let log = self
            .stderr
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        (ok, log)
    }
}

/// The CPU time (user + system) of the process whose `/proc/.../stat` is at `stat`: this
/// process's with `/proc/self/stat`. Assumes the usual 100 clock ticks per second.
pub fn cpu_time_of(stat: &str) -> Option<Duration> {
    let text = std::fs::read_to_string(stat).ok()?;
    // The command name (field 2) may hold spaces: fields are counted after its closing paren.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP answer: status, `Retry-After` and `Access-Control-Allow-Origin` headers, body (JSON
/// when it is).
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<String>,
    pub allow_origin: Option<String>,
    pub body: Value,
}

/// Sends a request with a short-lived runtime (tests are synchronous).
pub fn http(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<Vec<u8>>,
) -> Result<Answer, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        switchyard_tiktok::transport::install_crypto_provider();
        send(&reqwest::Client::new(), method, url, headers, body).await
    })
}

/// One request of [`at_once`]: method, URL, headers, body.
pub struct Request {
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

/// Sends every request at the same moment (each on its own connection, released together by a
/// barrier), as concurrent clients do; the answers in the requests' order.
pub fn at_once(requests: Vec<Request>) -> Vec<Result<Answer, String>> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("a runtime");
    rt.block_on(async {
        switchyard_tiktok::transport::install_crypto_provider();
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(requests.len()));
        let tasks: Vec<_> = requests
            .into_iter()
            .map(|r| {
                let barrier = barrier.clone();
                tokio::spawn(async move {
                    let client = reqwest::Client::new();
                    let headers: Vec<(&str, &str)> =
                        r.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
                    barrier.wait().await;
                    send(&client, r.method, &r.url, &headers, Some(r.body)).await
                })
            })
            .collect();
        let mut answers = Vec::new();
        for t in tasks {
            answers.push(t.await.map_err(|e| e.to_string()).and_then(|a| a));
        }
        answers
    })
}

async fn send(
    client: &reqwest::Client,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<Vec<u8>>,
) -> Result<Answer, String> {
    let mut req = match method {
        "GET" => client.get(url),
        _ => client.post(url),
    };
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(b) = body {
        req = req.body(b);
    }
    let r = req.send().await.map_err(|e| e.to_string())?;
    let status = r.status().as_u16();
    let header = |name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (retry_after, allow_origin) =
        (header("retry-after"), header("access-control-allow-origin"));
    let text = r.text().await.map_err(|e| e.to_string())?;
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Ok(Answer {
        status,
        retry_after,
        allow_origin,
        body,
    })
}

/// A request posting `events` (JSON) as the tests' `server` source, for [`at_once`].
pub fn events_request(service_url: &str, events: &Value) -> Request {
    Request {
        method: "POST",
        url: service_url.to_owned(),
        headers: vec![
            ("x-webhook-token", WRITE_KEY.to_owned()),
            ("content-type", "application/json".to_owned()),
        ],
        body: serde_json::to_vec(events).unwrap_or_default(),
    }
}

/// Posts events (a JSON array) as the tests' `server` source.
pub fn post_events(service_url: &str, events: &Value) -> Result<Answer, String> {
    http(
        "POST",
        service_url,
        &[
            ("x-webhook-token", WRITE_KEY),
            ("content-type", "application/json"),
        ],
        Some(serde_json::to_vec(events).unwrap_or_default()),
    )
}

/// `n` valid `Added To Cart` events with ids `{prefix}-{i}`, that happened a minute ago (the
/// service refuses events older than its `max_event_age_hours`).
pub fn cart_events(prefix: &str, range: std::ops::Range<usize>) -> Vec<Value> {
    let a_minute_ago = unix_now() - 60;
    range
        .map(|i| {
            let mut e = crate::event(
                "Added To Cart",
                serde_json::json!({"product_id": format!("p{i}"), "price": 10, "quantity": 1, "currency": "EUR"}),
            );
            e["event_id"] = format!("{prefix}-{i}").into();
            e["timestamp"] = a_minute_ago.into();
            e
        })
        .collect()
}

/// Now, in unix seconds.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Runs the `switchyard` CLI in process with the environment the tests' configs read; returns
/// (exit code, standard output, standard error).
pub fn cli(args: &[&str]) -> (i32, String, String) {
    cli_with_input(args, "")
}

/// [`cli`] with `stdin` as standard input (for commands that ask).
pub fn cli_with_input(args: &[&str], stdin: &str) -> (i32, String, String) {
    // SAFETY: the tests set these two variables only here, always to the same values.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var("SY_WRITE_KEY", WRITE_KEY);
        std::env::set_var("SY_TIKTOK_TOKEN", TOKEN);
        std::env::set_var("SY_ADMIN_TOKEN", ADMIN_TOKEN);
    }
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut argv = vec!["switchyard"];
    argv.extend_from_slice(args);
    let code = switchyard::cli::run(argv, &mut stdin.as_bytes(), &mut out, &mut err);
    (
        code,
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
    )
}

/// Waits (up to 30 s) until the service's metrics contain every one of `lines`; says whether
/// they did.
pub fn wait_for_metrics(service: &Service, lines: &[&str]) -> bool {
    for _ in 0..600 {
        let text = service.metrics();
        if lines.iter().all(|l| text.contains(l)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}
