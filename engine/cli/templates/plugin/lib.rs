//! A Switchyard transform plugin. Build: `cargo build --release` (target wasm32-wasip2, set in
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
