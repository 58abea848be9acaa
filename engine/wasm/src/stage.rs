//! A stage of plugins run in order over a batch of source events, before the destinations.
//!
//! Each plugin gets the batch in one call. What it returns is checked like input (a plugin cannot
//! smuggle an event that breaks the spec past the router): a changed or split event that is not a
//! valid event fails, with the plugin's name. A drop stops the event with the plugin's reason; an
//! error or a failed call (trap, timeout, memory) fails the events of that call, which the caller
//! reports and keeps (dead letters): nothing is lost silently.

use crate::bindings::Outcome;
use crate::limits::Limits;
use crate::plugin::Plugin;
use crate::sandbox::LogLine;
use schemars::JsonSchema;
use serde::Deserialize;
use switchyard_engine::event::SourceEvent;

/// A plugin as declared in YAML.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    /// A name for messages and logs.
    #[schemars(length(min = 1))]
    pub name: String,
    /// The plugin's `.wasm` file (a component of `plugins/wit/plugin.wit`), relative to the config.
    pub path: String,
    /// The plugin's own config, handed to its `init` as JSON.
    #[serde(default = "empty_object")]
    pub config: serde_json::Value,
    /// What one call may use.
    #[serde(default)]
    pub limits: Limits,
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(Default::default())
}

/// Why an event did not come out of the stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// The plugin dropped it, with this reason.
    Dropped { plugin: String, reason: String },
    /// The plugin failed on it, with this message.
    Failed { plugin: String, message: String },
}

/// What became of one input event: the events it turned into (none when stopped), or the stop.
#[derive(Debug)]
pub struct Staged {
    pub events: Vec<SourceEvent>,
    pub stop: Option<Stop>,
}

/// Plugins run in order.
pub struct Stage {
    plugins: Vec<Plugin>,
}

impl Stage {
    pub fn new(plugins: Vec<Plugin>) -> Self {
        Self { plugins }
    }

    pub fn is_empty(&self) -> bool {
        self.plugins.is_empty()
    }

    pub fn plugins(&self) -> &[Plugin] {
        &self.plugins
    }

    /// Runs every plugin over the batch. One [`Staged`] per input event, in order; the plugins'
    /// log lines, tagged with their names, go to `logs`.
    pub fn run(
        &self,
        batch: Vec<SourceEvent>,
        received_at: i64,
        logs: &mut Vec<(String, LogLine)>,
    ) -> Vec<Staged> {
        let mut staged: Vec<Staged> = batch
            .into_iter()
            .map(|e| Staged {
                events: vec![e],
                stop: None,
            })
            .collect();
        for plugin in &self.plugins {
            // Every live event with the index of the input it came from.
            let live: Vec<(usize, SourceEvent)> = staged
                .iter_mut()
                .enumerate()
                .flat_map(|(i, s)| {
                    std::mem::take(&mut s.events)
                        .into_iter()
                        .map(move |e| (i, e))
                })
                .collect();
            if live.is_empty() {
                break;
            }
            let texts: Vec<String> = live.iter().map(|(_, e)| e.as_value().to_string()).collect();
            let output = plugin.call_batch(&texts);
            let name = plugin.name();
            match output {
                Err(e) => {
                    for (i, _) in live {
                        stop(
                            &mut staged[i],
                            Stop::Failed {
                                plugin: name.to_owned(),
                                message: e.to_string(),
                            },
                        );
                    }
                }
                Ok(out) => {
                    logs.extend(out.logs.into_iter().map(|l| (name.to_owned(), l)));
                    for ((i, event), result) in live.into_iter().zip(out.results) {
                        apply(&mut staged[i], event, result, name, received_at);
                    }
                }
            }
            for s in staged
                .iter_mut()
                .filter(|s| s.events.is_empty() && s.stop.is_none())
            {
                s.stop = Some(Stop::Dropped {
                    plugin: name.to_owned(),
                    reason: "returned no events".into(),
                });
            }
        }
        staged
    }
}

/// A stop discards whatever else the input had turned into: the input is reported (and kept) whole.
fn stop(s: &mut Staged, why: Stop) {
    s.events.clear();
    if !matches!(s.stop, Some(Stop::Failed { .. })) {
        s.stop = Some(why);
    }
}

fn apply(
    s: &mut Staged,
    event: SourceEvent,
    result: Result<Outcome, String>,
    plugin: &str,
    received_at: i64,
) {
    if s.stop.is_some() {
        return;
    }
    let failed = |message: String| Stop::Failed {
        plugin: plugin.to_owned(),
        message,
    };
    let parse = |text: &str| {
        SourceEvent::from_json(text, received_at)
            .map_err(|e| failed(format!("returned an invalid event: {e}")))
    };
    match result {
        Err(message) => stop(s, failed(message)),
        Ok(Outcome::Unchanged) => s.events.push(event),
        Ok(Outcome::Changed(text)) => match parse(&text) {
            Ok(e) => s.events.push(e),
            Err(why) => stop(s, why),
        },
        Ok(Outcome::Split(texts)) => {
            for text in texts {
                match parse(&text) {
                    Ok(e) => s.events.push(e),
                    Err(why) => return stop(s, why),
                }
            }
        }
        Ok(Outcome::Drop(reason)) => stop(
            s,
            Stop::Dropped {
                plugin: plugin.to_owned(),
                reason,
            },
        ),
    }
}
