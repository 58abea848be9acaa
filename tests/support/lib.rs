//! Helpers shared by the workspace integration tests: configs in temporary folders, events, routing.

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use switchyard_core::event::SourceEvent;
use switchyard_core::load::Diagnostic;
use switchyard_core::router::Status;
use switchyard_core::rules::warning::Warning;
use switchyard_service::config::{Loaded, load};

/// The time received used by tests (2024-09-02T12:00:00Z).
pub const RECEIVED_AT: i64 = 1_725_278_400;

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A TikTok destination on the default mapping, with `extra` YAML lines added to it (indented by
/// four spaces, as destination fields are).
pub fn tiktok_config(extra: &str) -> String {
    let mut text = String::from(
        "sources:\n  - {name: web, kind: browser}\n  - {name: server, kind: webhook}\n\
         destinations:\n  - name: tiktok\n    type: tiktok\n    pixel_id: CJQBODJC77UB4MRTGFRF\n\
         \x20   access_token: \"${TIKTOK_ACCESS_TOKEN}\"\n    domain: https://shop.example.com\n\
         \x20   sources: [web, server]\n",
    );
    for line in extra.lines().filter(|l| !l.trim().is_empty()) {
        text.push_str("    ");
        text.push_str(line);
        text.push('\n');
    }
    text
}

/// A config written to a temporary folder (kept alive by the returned guard), with extra files.
pub struct TempConfig {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
}

pub fn write_config(text: &str, extra_files: &[(&str, &str)]) -> TempConfig {
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, content) in extra_files {
        std::fs::write(dir.path().join(name), content).expect("write extra file");
    }
    let path = dir.path().join("switchyard.yaml");
    std::fs::write(&path, allow_plugin_dir(text)).expect("write config");
    TempConfig { dir, path }
}

/// Where the example and test plugins are built ([`plugin_wasm`]).
pub fn plugin_dir() -> PathBuf {
    root().join("plugins/transforms/examples/target/wasm32-wasip2/release")
}

/// A config text that may load plugins from [`plugin_dir`]: tests' configs live in temporary
/// folders, and a config may load files outside its folder only from its `allowed_dirs`.
pub fn allow_plugin_dir(text: &str) -> String {
    if text.contains("allowed_dirs") || !text.contains(".wasm") {
        return text.to_owned();
    }
    format!(
        "{}\nallowed_dirs: [\"{}\"]\n",
        text.trim_end(),
        plugin_dir().display()
    )
}

/// Loads a config text; panics with the diagnostics if it does not load.
pub fn loaded(text: &str) -> Loaded {
    let cfg = write_config(text, &[]);
    match load(&cfg.path) {
        Ok(l) => l,
        Err(d) => panic!("config did not load:\n{}", lines(&d)),
    }
}

/// Loads a config text that must fail; returns the diagnostics.
pub fn load_errors(text: &str, extra_files: &[(&str, &str)]) -> Vec<Diagnostic> {
    let mut diagnostics = load_diagnostics(text, extra_files);
    diagnostics.retain(Diagnostic::is_error);
    diagnostics
}

/// What loading a config that must fail says: its errors and, in line order among them, its
/// warnings.
pub fn load_diagnostics(text: &str, extra_files: &[(&str, &str)]) -> Vec<Diagnostic> {
    let cfg = write_config(text, extra_files);
    match load(&cfg.path) {
        Ok(_) => panic!("config loaded but should not have:\n{text}"),
        Err(d) => d,
    }
}

pub fn lines(d: &[Diagnostic]) -> String {
    d.iter().map(|d| format!("{d}\n")).collect()
}

/// A valid event of the spec with the given name and properties.
pub fn event(name: &str, properties: Value) -> Value {
    json!({
        "event_name": name,
        "event_id": format!("id-{}", name.to_lowercase().replace(' ', "-")),
        "timestamp": 1_725_280_000,
        "properties": properties,
        "profile_properties": {},
        "aliases": ["urn:cart_token:c1"],
    })
}

/// An outcome, owned, for assertions.
#[derive(Debug)]
pub struct Routed {
    pub status: Status,
    pub reason: Option<String>,
    pub data: Vec<Value>,
    pub client: Vec<String>,
    pub warnings: Vec<Warning>,
    /// The outcome as `map` prints it.
    pub json: Value,
}

/// Routes one event from `source` through a config with one destination; returns its outcome.
pub fn route(loaded: &Loaded, event: Value, source: &str) -> Routed {
    let ev = SourceEvent::from_value(event, RECEIVED_AT).expect("test event is valid");
    let outcomes = loaded.pipeline.outcomes_of(&ev, source);
    assert_eq!(outcomes.len(), 1, "one destination expected");
    let o = &outcomes[0];
    Routed {
        status: o.status,
        reason: o.reason.clone(),
        data: o.data.iter().map(|d| d.to_value()).collect(),
        client: o.client.iter().map(|c| (*c).to_owned()).collect(),
        warnings: o.warnings.clone(),
        json: serde_json::to_value(o).expect("outcomes serialize"),
    }
}

/// The TikTok event objects the server side would send for `event` (from source `web`).
pub fn sent(loaded: &Loaded, event: Value) -> Vec<Value> {
    let outcome = route(loaded, event, "web");
    assert_eq!(
        outcome.status,
        Status::Sent,
        "not sent: {:?}",
        outcome.reason
    );
    outcome.data
}

/// The example and test plugins, built for wasm32-wasip2 once per test run: the path of `name`.
pub fn plugin_wasm(name: &str) -> PathBuf {
    static BUILT: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let manifest = root().join("plugins/transforms/examples/Cargo.toml");
        // The plugins' own target folder, where `plugin_dir` looks, whatever CARGO_TARGET_DIR
        // the tests run with.
        let target_dir = root().join("plugins/transforms/examples/target");
        let status = std::process::Command::new(env!("CARGO"))
            .args(["build", "--release", "--target", "wasm32-wasip2", "--manifest-path"])
            .arg(&manifest)
            .arg("--target-dir")
            .arg(&target_dir)
            .status()
            .map_err(|e| format!("cannot run cargo: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!(
                "building the plugins failed ({status}); is the target installed? `rustup target add wasm32-wasip2`"
            ))
        }
    });
    if let Err(e) = built {
        panic!("{e}");
    }
    plugin_dir().join(format!("{}.wasm", name.replace('-', "_")))
}

pub mod browser;
pub mod mock_tiktok;
pub mod nats_server;
pub mod service;
