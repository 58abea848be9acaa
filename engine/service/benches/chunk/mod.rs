//! What the service pays per chunk: the example config with and without the no-op plugin in its
//! `transforms`, and one chunk of events through the real pipeline (`Pipeline::parse`, then
//! `Pipeline::transform`, then `Pipeline::route`, the outcomes serialized), as delivery runs it
//! (engine/service/src/delivery/plan.rs) over the texts the queue holds ([`queued`]). Shared by
//! the `plugins` bench and the `plugin_cost` example (the deterministic driver counted under
//! valgrind).

use std::path::PathBuf;
use switchyard_core::event::SourceEvent;
use switchyard_service::config::Loaded;
use switchyard_service::pipeline::{Copies, InputFate};

/// The receive time of every event (inside the example events' time window).
pub const RECEIVED_AT: i64 = 1_725_278_400;

/// The source every event comes from.
const SOURCE: &str = "shop-web";

/// The no-op example plugin, built first if needed.
pub fn noop_wasm() -> PathBuf {
    let root = super::common::root();
    let wasm = root.join("plugins/transforms/examples/target/wasm32-wasip2/release/noop.wasm");
    if !wasm.is_file() {
        let status = std::process::Command::new(env!("CARGO"))
            .args([
                "build",
                "--release",
                "--target",
                "wasm32-wasip2",
                "--manifest-path",
            ])
            .arg(root.join("plugins/transforms/examples/Cargo.toml"))
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building the example plugins failed");
    }
    wasm
}

/// The example config as shipped: no plugin.
pub fn without_plugin() -> Loaded {
    switchyard_service::config::load(&super::common::root().join("examples/switchyard.yaml"))
        .expect("example config loads")
}

/// The example config with the no-op plugin as its only `transforms`.
pub fn with_noop() -> Loaded {
    let root = super::common::root();
    let mut text =
        std::fs::read_to_string(root.join("examples/switchyard.yaml")).expect("example config");
    let wasm = noop_wasm();
    let folder = wasm.parent().expect("the plugin's folder");
    text.push_str(&format!(
        "transforms:\n  - name: noop\n    path: {}\nallowed_dirs: [\"{}\"]\n",
        wasm.display(),
        folder.display()
    ));
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("switchyard.yaml");
    std::fs::write(&path, text).expect("config written");
    let loaded = switchyard_service::config::load(&path).expect("config with noop loads");
    assert!(
        loaded.pipeline.has_plugins(),
        "the noop plugin is configured"
    );
    loaded
}

/// The events as `serve` queues them (engine/service/src/serve/ingest.rs): normalised at ingestion
/// (canonical field names, the timestamp in unix seconds; the text as it came when it already
/// was), plugins or not. Delivery parses these texts.
pub fn queued(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .map(|l| {
            SourceEvent::from_json_keeping_text(l, RECEIVED_AT)
                .expect("valid event")
                .take_json_text()
        })
        .collect()
}

/// One chunk through the pipeline: every line parsed, transformed, routed; the outcomes serialized
/// into `out`. Returns how many events were routed.
pub fn run(loaded: &Loaded, lines: &[String], out: &mut Vec<u8>) -> usize {
    let pipeline = &loaded.pipeline;
    let events: Vec<SourceEvent> = lines
        .iter()
        .map(|l| pipeline.parse(l, RECEIVED_AT).expect("valid event"))
        .collect();
    let mut logs = Vec::new();
    let chunk = pipeline.transform(events, RECEIVED_AT, &mut logs);
    let fates = pipeline.route(&chunk, SOURCE, Copies::Server, RECEIVED_AT, &mut logs);
    let mut routed = 0;
    for fate in &fates {
        if let InputFate::Routed(events) = fate {
            for event in events {
                serde_json::to_writer(&mut *out, &event.outcomes).expect("serialize");
                routed += 1;
            }
        }
    }
    routed
}
