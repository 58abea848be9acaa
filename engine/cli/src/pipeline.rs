//! The pipeline: what happens to a chunk of valid events on their way to the destinations. First
//! the config's `transforms` (every event), then, per destination, its `transforms` (before its
//! mapping), its mapping (the router) and its `payload_transforms` (on each platform payload).
//! Each plugin is called once per chunk. `map` (the dry run) runs it; so does delivery.
//!
//! It runs in two steps because routed outcomes borrow the events: [`Pipeline::stage`] runs the
//! event plugins and owns what they return ([`Staging`]); [`Pipeline::route`] maps and runs the
//! payload plugins, borrowing from it.

use serde_json::Value;
use switchyard_engine::event::{EventError, SourceEvent};
use switchyard_engine::router::{Outcome, Router, Status};
use switchyard_engine::rules::payload::Payload;
use switchyard_wasm::sandbox::LogLine;
use switchyard_wasm::{Stage, Staged, Stop};

/// Plugin log lines, tagged with the plugin's name.
pub type Logs = Vec<(String, LogLine)>;

/// The plugins of one destination.
pub struct DestinationStages {
    /// On its events, before the mapping.
    pub before: Stage,
    /// On each payload, after the mapping.
    pub after: Stage,
}

/// Every plugin of a config, where it plugs in.
pub struct Pipeline {
    /// The config's `transforms`: on every event, before all destinations.
    pub stage: Stage,
    /// Per destination, in config order.
    pub destinations: Vec<DestinationStages>,
}

/// The events of a chunk after the event plugins.
pub struct Staging {
    /// One per input event: what the config's `transforms` made of it.
    global: Vec<Staged>,
    /// Per destination with `transforms`: one entry per event out of `global`, flattened in order.
    per_destination: Vec<Option<Vec<Staged>>>,
}

/// What became of one input event.
pub enum InputResult<'a> {
    /// A plugin of the config's `transforms` dropped it or failed on it: no destination saw it.
    Stopped(&'a Stop),
    /// The events it became (one, unless a plugin split it), each with its outcome per destination.
    Routed(Vec<RoutedEvent<'a>>),
}

/// One event and its outcome at every destination, in config order.
pub struct RoutedEvent<'a> {
    pub event: &'a SourceEvent,
    pub outcomes: Vec<Outcome<'a>>,
}

impl Pipeline {
    /// A pipeline without plugins, for `destinations` destinations.
    pub fn empty(destinations: usize) -> Self {
        Self {
            stage: Stage::new(Vec::new()),
            destinations: (0..destinations)
                .map(|_| DestinationStages {
                    before: Stage::new(Vec::new()),
                    after: Stage::new(Vec::new()),
                })
                .collect(),
        }
    }

    /// Whether any plugin is configured anywhere.
    pub fn has_plugins(&self) -> bool {
        !self.stage.is_empty()
            || self
                .destinations
                .iter()
                .any(|d| !d.before.is_empty() || !d.after.is_empty())
    }

    /// Parses an event for this pipeline: with plugins, its text is kept when it is already
    /// normalised, so the first plugin gets it without a serialization.
    pub fn parse(&self, text: &str, received_at: i64) -> Result<SourceEvent, EventError> {
        if self.has_plugins() {
            SourceEvent::from_json_keeping_text(text, received_at)
        } else {
            SourceEvent::from_json(text, received_at)
        }
    }

    /// Step one: the event plugins (the config's, then each destination's) over a chunk.
    pub fn stage(&self, events: Vec<SourceEvent>, received_at: i64, logs: &mut Logs) -> Staging {
        let global = if self.stage.is_empty() {
            events.into_iter().map(Staged::kept).collect()
        } else {
            self.stage.run(events, received_at, logs)
        };
        let per_destination = self
            .destinations
            .iter()
            .map(|d| {
                if d.before.is_empty() {
                    return None;
                }
                let flat: Vec<SourceEvent> = global
                    .iter()
                    .filter(|s| s.stop.is_none())
                    .flat_map(|s| s.events.iter().cloned())
                    .collect();
                Some(d.before.run(flat, received_at, logs))
            })
            .collect();
        Staging {
            global,
            per_destination,
        }
    }

    /// Step two: every staged event through every destination's mapping, then the payload
    /// plugins. One [`InputResult`] per input event of [`Pipeline::stage`], in order.
    pub fn route<'a>(
        &'a self,
        router: &'a Router,
        staging: &'a Staging,
        source: &str,
        received_at: i64,
        logs: &mut Logs,
    ) -> Vec<InputResult<'a>> {
        let mut flat = 0;
        let mut results: Vec<InputResult<'a>> = staging
            .global
            .iter()
            .map(|staged| {
                if let Some(stop) = &staged.stop {
                    return InputResult::Stopped(stop);
                }
                let routed = staged
                    .events
                    .iter()
                    .map(|event| {
                        let j = flat;
                        flat += 1;
                        let outcomes = (0..router.destinations().len())
                            .filter_map(|d| {
                                match staging.per_destination.get(d).and_then(Option::as_ref) {
                                    None => router.route_at(d, event, source),
                                    Some(per) => {
                                        per.get(j).and_then(|s| route_staged(router, d, s, source))
                                    }
                                }
                            })
                            .collect();
                        RoutedEvent { event, outcomes }
                    })
                    .collect();
                InputResult::Routed(routed)
            })
            .collect();
        for (d, stages) in self.destinations.iter().enumerate() {
            if !stages.after.is_empty() {
                run_payload_plugins(&stages.after, d, &mut results, received_at, logs);
            }
        }
        results
    }
}

/// The outcome at destination `d` of what its `transforms` made of one event.
fn route_staged<'a>(
    router: &'a Router,
    d: usize,
    staged: &'a Staged,
    source: &str,
) -> Option<Outcome<'a>> {
    let name: &'a str = &router.destinations().get(d)?.routing().name;
    if let Some(stop) = &staged.stop {
        let (status, reason) = stop_outcome(stop);
        return Some(Outcome::stopped(name, status, reason));
    }
    let mut outcomes = staged
        .events
        .iter()
        .filter_map(|e| router.route_at(d, e, source));
    let first = outcomes.next()?;
    Some(outcomes.fold(first, merge))
}

/// The status and reason of an event a plugin stopped.
pub fn stop_outcome(stop: &Stop) -> (Status, String) {
    match stop {
        Stop::Dropped { plugin, reason } => (
            Status::Filtered,
            format!("plugin `{plugin}` dropped it: {reason}"),
        ),
        Stop::Failed { plugin, message } => (
            Status::Failed,
            format!("plugin `{plugin}` failed: {message}"),
        ),
    }
}

/// One outcome for the several events a destination's plugin split an event into: what any of
/// them sends is sent.
fn merge<'a>(mut a: Outcome<'a>, b: Outcome<'a>) -> Outcome<'a> {
    if a.status != Status::Sent {
        return if b.status == Status::Sent { b } else { a };
    }
    if b.status == Status::Sent {
        a.data.extend(b.data);
        a.client.extend(b.client);
        a.warnings.extend(b.warnings);
    }
    a
}

/// Runs destination `d`'s payload plugins over every payload it was to send in the chunk, in one
/// batch, and puts back what they return. A failed payload fails its event at that destination
/// (the event goes to the dead letters); dropping every payload filters the event there.
fn run_payload_plugins(
    stage: &Stage,
    d: usize,
    results: &mut [InputResult<'_>],
    received_at: i64,
    logs: &mut Logs,
) {
    let mut payloads: Vec<Value> = Vec::new();
    for outcome in outcomes_at(results, d) {
        payloads.extend(outcome.data.iter().map(Payload::to_value));
    }
    if payloads.is_empty() {
        return;
    }
    let mut staged = stage.run(payloads, received_at, logs).into_iter();
    for outcome in outcomes_at(results, d) {
        let mut data = Vec::with_capacity(outcome.data.len());
        let mut dropped = None;
        let mut failed = None;
        for _ in 0..outcome.data.len() {
            let Some(s) = staged.next() else { break };
            match s.stop {
                None => data.extend(s.events.into_iter().map(Payload::Owned)),
                Some(stop @ Stop::Dropped { .. }) => dropped = Some(stop),
                Some(stop @ Stop::Failed { .. }) => failed = failed.or(Some(stop)),
            }
        }
        outcome.data = data;
        let stop = failed.or(if outcome.data.is_empty() && outcome.client.is_empty() {
            dropped
        } else {
            None
        });
        if let Some(stop) = stop {
            let (status, reason) = stop_outcome(&stop);
            *outcome = Outcome::stopped(outcome.destination, status, reason);
        }
    }
}

/// The outcomes at destination `d` that send payloads, in order.
fn outcomes_at<'r, 'a>(
    results: &'r mut [InputResult<'a>],
    d: usize,
) -> impl Iterator<Item = &'r mut Outcome<'a>> {
    results
        .iter_mut()
        .filter_map(|r| match r {
            InputResult::Routed(events) => Some(events),
            InputResult::Stopped(_) => None,
        })
        .flatten()
        .filter_map(move |e| e.outcomes.get_mut(d))
        .filter(|o| o.status == Status::Sent && !o.data.is_empty())
}
