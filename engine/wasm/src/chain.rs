//! A chain of plugins run in order over a batch: of source events (the config's `transforms`, or a
//! destination's, before its mapping), or of platform payloads (a destination's
//! `payload_transforms`, after its mapping).
//!
//! Each plugin gets the batch in one call ([`Plugin::transform_batch`]: when that call traps, the
//! events are run again one at a time, so only those the plugin fails on fail). What it returns is
//! checked like input (a plugin cannot smuggle an event that breaks the spec past the router): a
//! changed or split item that does not parse as its kind ([`ChainItem`]) fails, with the plugin's
//! name. A drop halts the event with the plugin's reason; an error, or a failed call with that
//! event alone, fails the event; a failure of the batch as such (a wrong result count) fails every
//! event of the call. The caller reports and keeps failed events (dead letters): nothing is lost
//! silently.

use crate::batch::{BatchResults, EventFailure};
use crate::bindings::Action;
use crate::plugin::Plugin;
use crate::sandbox::LogLine;
use serde_json::Value;
use smallvec::SmallVec;
use switchyard_core::event::SourceEvent;
use switchyard_core::json_text;

/// What a chain runs over: an item goes to a plugin as JSON text and comes back as JSON text that
/// must parse as the same kind of item.
pub trait ChainItem: Sized {
    /// The item as the JSON text a plugin receives.
    fn to_json(&self) -> String;
    /// The same, moved out of the item where it keeps its text (no copy); the item gets it back
    /// with [`ChainItem::give_back`] when the plugin leaves it unchanged.
    fn take_json(&mut self) -> String {
        self.to_json()
    }
    /// Takes back the text [`ChainItem::take_json`] gave, the item being unchanged.
    fn give_back(&mut self, _json: String) {}
    /// Parses what a plugin returned; `received_at` fills an event's missing timestamp.
    fn parse(text: &str, received_at: i64) -> Result<Self, String>;
}

impl ChainItem for SourceEvent {
    fn to_json(&self) -> String {
        self.json_text()
    }
    fn take_json(&mut self) -> String {
        self.take_json_text()
    }
    fn give_back(&mut self, json: String) {
        self.keep_text(json);
    }
    fn parse(text: &str, received_at: i64) -> Result<Self, String> {
        // Keeping the text spares the next plugin of a chain a serialization.
        SourceEvent::from_json_keeping_text(text, received_at).map_err(|e| e.to_string())
    }
}

/// A platform payload (one event object of the platform's API), after the mapping.
impl ChainItem for Value {
    fn to_json(&self) -> String {
        json_text::value_text(self)
    }
    fn parse(text: &str, _: i64) -> Result<Self, String> {
        match serde_json::from_str(text) {
            Ok(v @ Value::Object(_)) => Ok(v),
            Ok(other) => Err(format!(
                "a payload must be a JSON object, not {}",
                switchyard_core::event::type_name(&other)
            )),
            Err(e) => Err(format!("not JSON: {e}")),
        }
    }
}

/// Why an event did not come out of the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Halt {
    /// The plugin dropped it, with this reason.
    Dropped { plugin: String, reason: String },
    /// The plugin failed on it, with this message.
    Failed { plugin: String, message: String },
}

/// What became of one input item: the items it turned into (none when halted), or why it halted.
/// One item (the common case) is held inline: transforming a batch allocates nothing per item.
#[derive(Debug)]
pub struct Transformed<T = SourceEvent> {
    pub events: SmallVec<[T; 1]>,
    pub halt: Option<Halt>,
}

impl<T> Transformed<T> {
    /// An item that went through no plugin.
    pub fn kept(item: T) -> Self {
        let mut events = SmallVec::new();
        events.push(item);
        Self { events, halt: None }
    }
}

/// Plugins run in order.
pub struct Chain {
    plugins: Vec<Plugin>,
}

impl Chain {
    pub fn new(plugins: Vec<Plugin>) -> Self {
        Self { plugins }
    }

    pub fn is_empty(&self) -> bool {
        self.plugins.is_empty()
    }

    pub fn plugins(&self) -> &[Plugin] {
        &self.plugins
    }

    /// Runs every plugin over the batch. One [`Transformed`] per input item, in order; the plugins'
    /// log lines, tagged with their names, go to `logs`.
    pub fn run<T: ChainItem>(
        &self,
        batch: Vec<T>,
        received_at: i64,
        logs: &mut Vec<(String, LogLine)>,
    ) -> Vec<Transformed<T>> {
        let mut items: Vec<Transformed<T>> = batch.into_iter().map(Transformed::kept).collect();
        for plugin in &self.plugins {
            // Every live event, in order (the events of inputs not halted); kept texts are moved.
            let texts: Vec<String> = live(&mut items).map(ChainItem::take_json).collect();
            if texts.is_empty() {
                break;
            }
            let name = plugin.name();
            match plugin.transform_batch(&texts) {
                Err(e) => {
                    for s in items.iter_mut().filter(|s| s.halt.is_none()) {
                        halt(
                            s,
                            Halt::Failed {
                                plugin: name.to_owned(),
                                message: e.to_string(),
                            },
                        );
                    }
                }
                Ok(out) => {
                    logs.extend(out.logs.into_iter().map(|l| (name.to_owned(), l)));
                    give_back_unchanged(&mut items, texts, &out.results);
                    let mut results = out
                        .results
                        .into_iter()
                        .map(|r| r.map_err(EventFailure::into_message));
                    for s in items.iter_mut().filter(|s| s.halt.is_none()) {
                        apply_all(s, &mut results, name, received_at);
                    }
                }
            }
            for s in items
                .iter_mut()
                .filter(|s| s.events.is_empty() && s.halt.is_none())
            {
                s.halt = Some(Halt::Dropped {
                    plugin: name.to_owned(),
                    reason: "returned no events".into(),
                });
            }
        }
        items
    }
}

/// Every live item of the batch, in order: the items of inputs not halted.
fn live<T>(items: &mut [Transformed<T>]) -> impl Iterator<Item = &mut T> {
    items
        .iter_mut()
        .filter(|s| s.halt.is_none())
        .flat_map(|s| s.events.iter_mut())
}

/// Gives each live item the plugin left `unchanged` its text back (moved, not copied): the next
/// plugin, or whoever stores the event, gets it without a serialization.
fn give_back_unchanged<T: ChainItem>(
    items: &mut [Transformed<T>],
    texts: Vec<String>,
    results: &BatchResults,
) {
    for (i, (item, text)) in live(items).zip(texts).enumerate() {
        if results.is_unchanged(i) {
            item.give_back(text);
        }
    }
}

/// A halt discards whatever else the input had turned into: the input is reported (and kept) whole.
fn halt<T>(s: &mut Transformed<T>, why: Halt) {
    s.events.clear();
    if !matches!(s.halt, Some(Halt::Failed { .. })) {
        s.halt = Some(why);
    }
}

/// Applies the next results to an input's events, in place: events left `unchanged` (the common
/// case) are neither moved nor copied; the first other result rebuilds the list from there on.
fn apply_all<T: ChainItem>(
    s: &mut Transformed<T>,
    results: &mut impl Iterator<Item = Result<Action, String>>,
    plugin: &str,
    received_at: i64,
) {
    let n = s.events.len();
    for k in 0..n {
        let Some(result) = results.next() else { return };
        if matches!(result, Ok(Action::Unchanged)) {
            continue;
        }
        let mut old = std::mem::take(&mut s.events).into_iter();
        s.events.extend(old.by_ref().take(k));
        if let Some(event) = old.next() {
            apply(s, event, result, plugin, received_at);
        }
        for event in old {
            // Consumed even once the input has halted: the results stay aligned.
            let result = results
                .next()
                .unwrap_or_else(|| Err("returned no result for this event".into()));
            apply(s, event, result, plugin, received_at);
        }
        return;
    }
}

fn apply<T: ChainItem>(
    s: &mut Transformed<T>,
    event: T,
    result: Result<Action, String>,
    plugin: &str,
    received_at: i64,
) {
    if s.halt.is_some() {
        return;
    }
    let failed = |message: String| Halt::Failed {
        plugin: plugin.to_owned(),
        message,
    };
    let parse = |text: &str| {
        T::parse(text, received_at).map_err(|e| failed(format!("returned an invalid event: {e}")))
    };
    match result {
        Err(message) => halt(s, failed(message)),
        Ok(Action::Unchanged) => s.events.push(event),
        Ok(Action::Changed(text)) => match parse(&text) {
            Ok(e) => s.events.push(e),
            Err(why) => halt(s, why),
        },
        Ok(Action::Split(texts)) => {
            for text in texts {
                match parse(&text) {
                    Ok(e) => s.events.push(e),
                    Err(why) => return halt(s, why),
                }
            }
        }
        Ok(Action::Drop(reason)) => halt(
            s,
            Halt::Dropped {
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
