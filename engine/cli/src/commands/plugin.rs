//! `switchyard plugin`: scaffold a plugin crate (`new`) and run a plugin over events (`test`).

use serde_json::{Value, json};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use switchyard_engine::event::SourceEvent;
use switchyard_wasm::bindings::{Level, Outcome};
use switchyard_wasm::stage::StageItem;
use switchyard_wasm::{Limits, Plugin};

/// Events per plugin call in `plugin test`.
const CHUNK: usize = 256;

/// What `plugin test` feeds the plugin.
#[derive(Debug, Clone, Copy)]
pub enum TestInput {
    /// Source events (pipeline and destination plugins); `received_at` fills missing timestamps.
    Events { received_at: i64 },
    /// Platform payloads: JSON objects (payload plugins).
    Payloads,
}

/// Runs `plugin` over NDJSON events (or payloads): one JSON line per input line with what the
/// plugin did (`unchanged`, `changed`, `split`, `dropped`, `failed`, or `invalid` input), the events
/// it returned, and the reason. Log lines go to `log`. Returns counts per status.
pub fn test(
    plugin: &Plugin,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
    log: &mut dyn Write,
    kind: TestInput,
) -> std::io::Result<std::collections::BTreeMap<&'static str, usize>> {
    let mut counts = std::collections::BTreeMap::new();
    let mut lines = input.lines().enumerate();
    loop {
        let chunk: Vec<(usize, std::io::Result<String>)> = lines
            .by_ref()
            .take(CHUNK)
            .map(|(i, l)| (i + 1, l))
            .collect();
        if chunk.is_empty() {
            break;
        }
        let mut texts = Vec::new();
        let mut verdicts: Vec<(usize, Result<usize, String>)> = Vec::new();
        for (line, text) in chunk {
            let text = text?;
            if text.trim().is_empty() {
                continue;
            }
            let parsed = match kind {
                TestInput::Events { received_at } => {
                    SourceEvent::parse(&text, received_at).map(|e| e.to_json())
                }
                TestInput::Payloads => Value::parse(&text, 0).map(|p| p.to_json()),
            };
            match parsed {
                Ok(json) => {
                    verdicts.push((line, Ok(texts.len())));
                    texts.push(json);
                }
                Err(e) => verdicts.push((line, Err(e))),
            }
        }
        let results = plugin.call_batch(&texts);
        if let Ok(output) = &results {
            for l in &output.logs {
                writeln!(
                    log,
                    "plugin {}: {}: {}",
                    plugin.name(),
                    level_name(l.level),
                    l.message
                )?;
            }
        }
        for (line, verdict) in verdicts {
            let record = match (verdict, &results) {
                (Err(reason), _) => Record::stopped(line, "invalid", reason),
                (Ok(_), Err(e)) => Record::stopped(line, "failed", e.to_string()),
                (Ok(i), Ok(output)) => Record::of(line, &output.results[i]),
            };
            *counts.entry(record.status).or_insert(0) += 1;
            serde_json::to_writer(&mut *out, &record)?;
            out.write_all(b"\n")?;
        }
    }
    Ok(counts)
}

/// One line of `plugin test` output.
#[derive(serde::Serialize)]
struct Record {
    line: usize,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    events: Vec<Value>,
}

impl Record {
    fn stopped(line: usize, status: &'static str, reason: String) -> Self {
        Self {
            line,
            status,
            reason: Some(reason),
            events: Vec::new(),
        }
    }

    fn of(line: usize, result: &Result<Outcome, String>) -> Self {
        let parse = |text: &String| {
            serde_json::from_str(text).unwrap_or_else(|_| json!({"not_json": text}))
        };
        let (status, events) = match result {
            Err(reason) => return Self::stopped(line, "failed", reason.clone()),
            Ok(Outcome::Drop(reason)) => return Self::stopped(line, "dropped", reason.clone()),
            Ok(Outcome::Unchanged) => ("unchanged", Vec::new()),
            Ok(Outcome::Changed(text)) => ("changed", vec![parse(text)]),
            Ok(Outcome::Split(texts)) => ("split", texts.iter().map(parse).collect()),
        };
        Self {
            line,
            status,
            reason: None,
            events,
        }
    }
}

/// A log level as written in logs.
pub fn level_name(level: Level) -> &'static str {
    match level {
        Level::Debug => "debug",
        Level::Info => "info",
        Level::Warn => "warn",
        Level::Error => "error",
    }
}

/// The plugin SDK of this source tree, for new plugin crates.
pub fn default_sdk() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins/sdk")
}

/// Writes a new plugin crate named `name` into `dir/name`; returns the crate's folder.
pub fn new(name: &str, dir: &Path, sdk: &Path) -> std::io::Result<PathBuf> {
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && name.starts_with(|c: char| c.is_ascii_lowercase());
    if !valid {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "`{name}` is not a crate name: lower-case letters, digits, - and _, starting with a letter"
            ),
        ));
    }
    let root = dir.join(name);
    if root.exists() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!("{} already exists", root.display()),
        ));
    }
    let sdk = std::fs::canonicalize(sdk).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("the plugin SDK is not at {}: {e}", sdk.display()),
        )
    })?;
    std::fs::create_dir_all(root.join("src"))?;
    std::fs::create_dir_all(root.join(".cargo"))?;
    std::fs::write(
        root.join("Cargo.toml"),
        format!(
            "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\npublish = false\n\n\
             [lib]\ncrate-type = [\"cdylib\"]\n\n\
             [dependencies]\nswitchyard-plugin-sdk = {{ path = \"{}\" }}\nserde = {{ version = \"1\", features = [\"derive\"] }}\n\n\
             [profile.release]\nopt-level = \"s\"\nstrip = true\n\n\
             # A crate of its own, even when created inside another workspace.\n[workspace]\n",
            sdk.display()
        ),
    )?;
    std::fs::write(
        root.join(".cargo/config.toml"),
        "[build]\ntarget = \"wasm32-wasip2\"\n",
    )?;
    std::fs::write(root.join("src/lib.rs"), TEMPLATE)?;
    Ok(root)
}

const TEMPLATE: &str = r#"//! A Switchyard transform plugin. Build: `cargo build --release` (target wasm32-wasip2, set in
//! .cargo/config.toml); the plugin is `target/wasm32-wasip2/release/<name>.wasm`. Try it:
//! `switchyard plugin test target/wasm32-wasip2/release/<name>.wasm --input events.ndjson`.

use serde::Deserialize;
use switchyard_plugin_sdk::{Action, Error, Event, Plugin, Value, log, plugin};

/// The plugin's `config` from the Switchyard YAML.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Stamped on every event as `properties.source_tag`.
    #[serde(default = "default_tag")]
    tag: String,
}

fn default_tag() -> String {
    "switchyard".into()
}

struct Tagger {
    tag: String,
}

impl Plugin for Tagger {
    type Config = Config;
    type Event = Event;

    fn new(config: Config) -> Result<Self, Error> {
        if config.tag.is_empty() {
            return Err(Error::new("tag must not be empty"));
        }
        Ok(Self { tag: config.tag })
    }

    fn transform(&self, mut event: Event) -> Result<Action<Event>, Error> {
        if event.event_name == "Internal Test" {
            return Ok(Action::Drop("internal test events are not forwarded".into()));
        }
        log::debug(&format!("tagging {}", event.event_id));
        event.properties.insert("source_tag".into(), Value::String(self.tag.clone()));
        Ok(Action::Changed(event))
    }
}

plugin!(Tagger);
"#;

/// Reads a plugin config file (YAML or JSON); none means `{}`.
pub fn read_config(path: Option<&Path>) -> Result<Value, String> {
    let Some(path) = path else {
        return Ok(json!({}));
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_yaml::from_str(&text)
        .map_err(|e| format!("{}: not valid YAML or JSON: {e}", path.display()))
}

/// Limits for `plugin test`, from the defaults.
pub fn limits(time_ms: Option<u64>, memory_mib: Option<u64>) -> Limits {
    let d = Limits::default();
    Limits {
        time_ms: time_ms.unwrap_or(d.time_ms),
        memory_mib: memory_mib.unwrap_or(d.memory_mib),
        ..d
    }
}
