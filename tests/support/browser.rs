//! Helpers of the browser tests: the pages of `tests/fixtures/browser` served on loopback (with
//! `{{SDK}}` replaced by the service's script URL), and Chromium driven over WebDriver: Debian's
//! `chromedriver` started on a free loopback port (killed on drop), a headless session through
//! `fantoccini`, and DevTools commands (network conditions) through chromedriver's
//! `goog/cdp/execute`.

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder};
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The fixture pages, served on loopback; `/FILE` is `tests/fixtures/browser/FILE`.
pub struct Pages {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    sdk: Arc<Mutex<String>>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Pages {
    /// Serves the fixtures; `{{SDK}}` stands for the script's URL ([`Pages::set_sdk`]).
    pub fn start() -> Self {
        use axum::extract::{Path as UrlPath, State};
        use axum::http::header::CONTENT_TYPE;
        let sdk = Arc::new(Mutex::new(String::new()));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let state = sdk.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                let page = |State(sdk): State<Arc<Mutex<String>>>,
                            UrlPath(file): UrlPath<String>| async move {
                    let dir = crate::root().join("tests/fixtures/browser");
                    let Ok(text) = std::fs::read_to_string(dir.join(file.replace('/', ""))) else {
                        return (
                            axum::http::StatusCode::NOT_FOUND,
                            [(CONTENT_TYPE, "text/plain")],
                            String::new(),
                        );
                    };
                    let kind = if file.ends_with(".js") {
                        "application/javascript"
                    } else {
                        "text/html"
                    };
                    let text = text.replace("{{SDK}}", &sdk.lock().unwrap());
                    (axum::http::StatusCode::OK, [(CONTENT_TYPE, kind)], text)
                };
                let app = axum::Router::new()
                    .route("/{file}", axum::routing::get(page))
                    .with_state(state);
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await;
            });
        });
        let url = format!("http://{}", addr_rx.recv().unwrap());
        Self {
            url,
            sdk,
            _stop: stop,
        }
    }

    /// The URL `{{SDK}}` stands for from now on.
    pub fn set_sdk(&self, url: &str) {
        *self.sdk.lock().unwrap() = url.to_owned();
    }
}

/// One browser at a time per test binary: Chromium is heavy for the machines tests run on.
pub fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// A DevTools command, sent through chromedriver.
#[derive(Debug)]
struct Cdp {
    cmd: &'static str,
    params: Value,
}

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!(
            "session/{}/goog/cdp/execute",
            session.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        let body = json!({"cmd": self.cmd, "params": self.params});
        (http::Method::POST, Some(body.to_string()))
    }
}

/// Headless Chromium in a fresh profile, driven by its own chromedriver.
pub struct Browser {
    rt: tokio::runtime::Runtime,
    client: Option<Client>,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run chromedriver ({e}); the test command installs it: apt-get install chromium-driver")
            });
        let url = format!("http://127.0.0.1:{port}");
        let until = Instant::now() + Duration::from_secs(20);
        while crate::service::http("GET", &format!("{url}/status"), &[], None).is_err() {
            if Instant::now() > until {
                let _ = driver.kill();
                panic!("chromedriver did not answer on {url}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile = tempfile::tempdir().unwrap();
        let mut options = json!({"args": [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--no-first-run", "--window-size=1000,900",
            format!("--user-data-dir={}", profile.path().display()),
        ]});
        if Path::new("/usr/bin/chromium").exists() {
            options["binary"] = "/usr/bin/chromium".into();
        }
        let mut caps = serde_json::Map::new();
        caps.insert("goog:chromeOptions".into(), options);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = rt.block_on(
            ClientBuilder::new(connector)
                .capabilities(caps)
                .connect(&url),
        );
        let client = match client {
            Ok(c) => c,
            Err(e) => {
                let _ = driver.kill();
                panic!("no WebDriver session: {e}");
            }
        };
        Self {
            rt,
            client: Some(client),
            driver,
            _profile: profile,
        }
    }

    fn client(&self) -> &Client {
        self.client.as_ref().unwrap()
    }

    pub fn goto(&self, url: &str) {
        self.rt.block_on(self.client().goto(url)).unwrap();
    }

    /// Runs `script` (a function body: `return ...`) in the page.
    pub fn execute(&self, script: &str) -> Value {
        self.rt
            .block_on(self.client().execute(script, Vec::new()))
            .unwrap_or_else(|e| panic!("{script}: {e}"))
    }

    /// What `script` returns, once it is truthy (polled); panics after `timeout`.
    pub fn wait_for(&self, script: &str, timeout: Duration) -> Value {
        let until = Instant::now() + timeout;
        loop {
            let v = self.execute(script);
            if !matches!(&v, Value::Null | Value::Bool(false)) {
                return v;
            }
            assert!(
                Instant::now() < until,
                "still false after {timeout:?}: {script}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A DevTools command (`Network.enable`, ...).
    pub fn cdp(&self, cmd: &'static str, params: Value) -> Value {
        self.rt
            .block_on(self.client().issue_cmd(Cdp { cmd, params }))
            .unwrap_or_else(|e| panic!("{cmd}: {e}"))
    }

    /// Switches the page's network off (no request leaves, `navigator.onLine` is false) or on.
    pub fn set_offline(&self, offline: bool) {
        self.cdp("Network.enable", json!({}));
        self.cdp(
            "Network.emulateNetworkConditions",
            json!({"offline": offline, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}),
        );
    }

    /// A PNG of the page, written to `path` (under `target/`).
    pub fn screenshot(&self, path: &Path) {
        let png = self.rt.block_on(self.client().screenshot()).unwrap();
        std::fs::write(path, png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            let _ = self.rt.block_on(async {
                tokio::time::timeout(Duration::from_secs(10), client.close()).await
            });
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
