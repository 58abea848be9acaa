//! A stage of plugins run in order over a batch: of source events (on the pipeline, or on a
//! destination before its mapping), or of platform payloads (on a destination, after its mapping).
//!
//! Each plugin gets the batch in one call. What it returns is checked like input (a plugin cannot
//! smuggle an event that breaks the spec past the router): a changed or split item that does not
//! parse as its kind ([`StageItem`]) fails, with the plugin's name. A drop stops the event with the plugin's reason; an
//! error or a failed call (trap, timeout, memory) fails the events of that call, which the caller
//! reports and keeps (dead letters): nothing is lost silently.

use crate::bindings::Outcome;
use crate::plugin::Plugin;
use crate::sandbox::LogLine;
use serde_json::Value;
use smallvec::SmallVec;
use switchyard_engine::event::SourceEvent;

/// What a stage runs over: an item goes to a plugin as JSON text and comes back as JSON text that
/// must parse as the same kind of item.
pub trait StageItem: Sized {
    /// The item as the JSON text a plugin receives.
    fn to_json(&self) -> String;
    /// Parses what a plugin returned; `received_at` fills an event's missing timestamp.
    fn parse(text: &str, received_at: i64) -> Result<Self, String>;
}

impl StageItem for SourceEvent {
    fn to_json(&self) -> String {
        self.json_text()
    }
    fn parse(text: &str, received_at: i64) -> Result<Self, String> {
        // Keeping the text spares the next plugin of a chain a serialization.
        SourceEvent::from_json_keeping_text(text, received_at).map_err(|e| e.to_string())
    }
}

/// A platform payload (one event object of the platform's API), after the mapping.
impl StageItem for Value {
    fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
    fn parse(text: &str, _: i64) -> Result<Self, String> {
        match serde_json::from_str(text) {
            Ok(v @ Value::Object(_)) => Ok(v),
            Ok(other) => Err(format!(
                "a payload must be a JSON object, not {}",
                switchyard_engine::event::type_name(&other)
            )),
            Err(e) => Err(format!("not JSON: {e}")),
        }
    }
}

/// Why an event did not come out of the stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// The plugin dropped it, with this reason.
    Dropped { plugin: String, reason: String },
    /// The plugin failed on it, with this message.
    Failed { plugin: String, message: String },
}

/// What became of one input item: the items it turned into (none when stopped), or the stop.
/// One item (the common case) is held inline: staging a batch allocates nothing per item.
#[derive(Debug)]
pub struct Staged<T = SourceEvent> {
    pub events: SmallVec<[T; 1]>,
    pub stop: Option<Stop>,
}

impl<T> Staged<T> {
    /// An item that went through no plugin.
    pub fn kept(item: T) -> Self {
        let mut events = SmallVec::new();
        events.push(item);
        Self { events, stop: None }
    }
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

    /// Runs every plugin over the batch. One [`Staged`] per input item, in order; the plugins'
    /// log lines, tagged with their names, go to `logs`.
    pub fn run<T: StageItem>(
        &self,
        batch: Vec<T>,
        received_at: i64,
        logs: &mut Vec<(String, LogLine)>,
    ) -> Vec<Staged<T>> {
        let mut staged: Vec<Staged<T>> = batch.into_iter().map(Staged::kept).collect();
        for plugin in &self.plugins {
            // Every live event, in order (the events of inputs not stopped).
            let texts: Vec<String> = staged
                .iter()
                .filter(|s| s.stop.is_none())
                .flat_map(|s| s.events.iter().map(StageItem::to_json))
                .collect();
            if texts.is_empty() {
                break;
            }
            let name = plugin.name();
            match plugin.call_batch(&texts) {
                Err(e) => {
                    for s in staged.iter_mut().filter(|s| s.stop.is_none()) {
                        stop(
                            s,
                            Stop::Failed {
                                plugin: name.to_owned(),
                                message: e.to_string(),
                            },
                        );
                    }
                }
                Ok(out) => {
                    logs.extend(out.logs.into_iter().map(|l| (name.to_owned(), l)));
                    let mut results = out.results.into_iter();
                    for s in staged.iter_mut().filter(|s| s.stop.is_none()) {
                        apply_all(s, &mut results, name, received_at);
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
fn stop<T>(s: &mut Staged<T>, why: Stop) {
    s.events.clear();
    if !matches!(s.stop, Some(Stop::Failed { .. })) {
        s.stop = Some(why);
    }
}

/// Applies the next results to an input's events, in place: events left `unchanged` (the common
/// case) are neither moved nor copied; the first other result rebuilds the list from there on.
fn apply_all<T: StageItem>(
    s: &mut Staged<T>,
    results: &mut impl Iterator<Item = Result<Outcome, String>>,
    plugin: &str,
    received_at: i64,
) {
    let n = s.events.len();
    for k in 0..n {
        let Some(result) = results.next() else { return };
        if matches!(result, Ok(Outcome::Unchanged)) {
            continue;
        }
        let mut old = std::mem::take(&mut s.events).into_iter();
        s.events.extend(old.by_ref().take(k));
        if let Some(event) = old.next() {
            apply(s, event, result, plugin, received_at);
        }
        for event in old {
            // Consumed even once the input has stopped: the results stay aligned.
            let result = results
                .next()
                .unwrap_or_else(|| Err("returned no result for this event".into()));
            apply(s, event, result, plugin, received_at);
        }
        return;
    }
}

fn apply<T: StageItem>(
    s: &mut Staged<T>,
    event: T,
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
        T::parse(text, received_at).map_err(|e| failed(format!("returned an invalid event: {e}")))
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

/// An event as JSON text for a plugin: its input text when that was kept, else serialized.
pub fn to_json(event: &SourceEvent) -> String {
    event.json_text()
}
