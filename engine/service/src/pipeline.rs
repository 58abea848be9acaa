//! The pipeline: what happens to a chunk of valid events on their way to the destinations. First
//! the config's `transforms` (every event), then, per destination, its `transforms` (before its
//! mapping), its mapping (the router) and its `payload_transforms` (on each platform payload).
//! Each plugin is called once per chunk. `map` (the dry run) runs it; so does delivery; so does
//! `POST /v1/collect`, for the browser copy ([`Copies::ServerAndBrowser`]): one path builds both
//! copies, so a plugin that changes, drops or fails an event does the same to both.
//!
//! The browser copy of a `client_and_server` row is its server copy (`ClientPayload::Server`):
//! the payload plugins run on that one object, and the pixel call is derived from what they
//! return, so both sides carry the same value, currency, contents, event name and `event_id`.
//! The objects of `client`-only rows go through the payload plugins too, in the same batch.
//!
//! It runs in two steps because routed outcomes borrow the events: [`Pipeline::transform`] runs
//! the event plugins and owns what they return ([`TransformedChunk`]); [`Pipeline::route`] maps and
//! runs the payload plugins, borrowing from it ([`Pipeline::route_each`] hands each event's fate
//! on as soon as it is known, for delivery to settle it while it is in the cache).

pub use crate::destination::Copies;
use crate::destination::Destination;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use switchyard_core::event::{EventError, SourceEvent};
use switchyard_core::router::{ClientPayload, Extras, Outcome, PerRow, Status};
use switchyard_core::rules::payload::{Payload, drop_empty};
use switchyard_wasm::sandbox::LogLine;
use switchyard_wasm::{Chain, Halt, Plugin, Transformed};

/// Plugin log lines, tagged with the plugin's name.
pub type Logs = Vec<(String, LogLine)>;

/// The config's transform plugins and every destination, in config order.
pub struct Pipeline {
    /// The config's `transforms`: on every event, before all destinations.
    transforms: Chain,
    destinations: Vec<Arc<Destination>>,
}

/// The events of a chunk after the event plugins.
pub struct TransformedChunk<'p> {
    /// One per input event: what the config's `transforms` made of it.
    inputs: Vec<Transformed>,
    /// Every destination, in config order, with what its `transforms` made of the chunk.
    at_destinations: Vec<AtDestination<'p>>,
}

/// A chunk's events once routed, owned, to be dropped later: freeing a round of parsed events takes
/// time (they are many small allocations, by then cold, made by another thread when ingestion
/// parsed them: BENCHMARKS.md, issue 13 round six) that the round need not wait for.
pub struct Spent {
    _events: Vec<Vec<Transformed>>,
}

impl TransformedChunk<'_> {
    /// Its events, for dropping once the round no longer waits ([`Spent`]).
    pub fn spent(self) -> Spent {
        let mut events = vec![self.inputs];
        events.extend(
            self.at_destinations
                .into_iter()
                .filter_map(|d| d.transformed),
        );
        Spent { _events: events }
    }
}

/// One destination and what its `transforms` made of each live event of `inputs` (flattened, in
/// order); `None` when it has no `transforms`.
struct AtDestination<'p> {
    destination: &'p Destination,
    transformed: Option<Vec<Transformed>>,
}

/// What became of one input event.
pub enum InputFate<'a> {
    /// A plugin of the config's `transforms` dropped it or failed on it: no destination saw it.
    Halted(&'a Halt),
    /// The events it became (one, unless a plugin split it), each with its outcome per destination.
    Routed(Vec<RoutedEvent<'a>>),
}

/// One event and its outcome at every destination, in config order (each names its destination).
pub struct RoutedEvent<'a> {
    pub event: &'a SourceEvent,
    pub outcomes: Vec<Outcome<'a>>,
}

impl Pipeline {
    pub fn new(transforms: Chain, destinations: Vec<Arc<Destination>>) -> Self {
        Self {
            transforms,
            destinations,
        }
    }

    /// The config's `transforms`: on every event, before all destinations.
    pub fn transforms(&self) -> &Chain {
        &self.transforms
    }

    /// Every destination, in config order.
    pub fn destinations(&self) -> &[Arc<Destination>] {
        &self.destinations
    }

    /// The destination named `name`.
    pub fn destination(&self, name: &str) -> Option<&Arc<Destination>> {
        self.destinations.iter().find(|d| d.name() == name)
    }

    /// Every transform plugin: the config's `transforms`, then each destination's `transforms` and
    /// `payload_transforms`, in config order.
    pub fn plugins(&self) -> impl Iterator<Item = &Plugin> {
        let at_destinations = self.destinations.iter().flat_map(|d| {
            let chains = [&d.transforms, &d.payload_transforms];
            chains.into_iter().flat_map(|c| c.plugins())
        });
        self.transforms.plugins().iter().chain(at_destinations)
    }

    /// How many calls trapped so far, per plugin name (plugins of the same name, declared at
    /// several places, are added up).
    pub fn plugin_traps(&self) -> BTreeMap<String, u64> {
        let mut traps = BTreeMap::new();
        for p in self.plugins() {
            *traps.entry(p.name().to_owned()).or_default() += p.traps();
        }
        traps
    }

    /// Whether any plugin is configured anywhere.
    pub fn has_plugins(&self) -> bool {
        !self.transforms.is_empty() || self.destinations.iter().any(|d| d.has_plugins())
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

    /// The same outcome at every destination: for input that never reached routing (invalid
    /// input, an event the config's `transforms` halted).
    pub fn not_sent(&self, status: Status, reason: &str) -> Vec<Outcome<'_>> {
        self.destinations
            .iter()
            .map(|d| Outcome::not_sent(d.name(), status, reason.to_owned()))
            .collect()
    }

    /// The outcome at every destination of one event, by its mapping alone (no plugin runs): what
    /// the dry run shows for a config without plugins.
    pub fn outcomes_of<'a>(&'a self, event: &'a SourceEvent, source: &str) -> Vec<Outcome<'a>> {
        self.destinations
            .iter()
            .map(|d| d.route(event, source, Copies::Server.into()))
            .collect()
    }

    /// Step one: the event plugins (the config's, then each destination's) over a chunk.
    pub fn transform(
        &self,
        events: Vec<SourceEvent>,
        received_at: i64,
        logs: &mut Logs,
    ) -> TransformedChunk<'_> {
        let inputs = if self.transforms.is_empty() {
            events.into_iter().map(Transformed::kept).collect()
        } else {
            self.transforms.run(events, received_at, logs)
        };
        let at_destinations = self
            .destinations
            .iter()
            .map(|d| AtDestination {
                destination: d,
                transformed: (!d.transforms.is_empty()).then(|| {
                    let flat: Vec<SourceEvent> = live_events(&inputs).cloned().collect();
                    d.transforms.run(flat, received_at, logs)
                }),
            })
            .collect();
        TransformedChunk {
            inputs,
            at_destinations,
        }
    }

    /// Step two: every transformed event through every destination's mapping, then the payload
    /// plugins, building the copies asked for ([`Copies`], or [`Extras`] with the count of field
    /// use that `map` reports). One [`InputFate`] per input event of [`Pipeline::transform`], in
    /// order.
    pub fn route<'a>(
        &'a self,
        chunk: &'a TransformedChunk<'a>,
        source: &str,
        extras: impl Into<Extras>,
        received_at: i64,
        logs: &mut Logs,
    ) -> Vec<InputFate<'a>> {
        let extras = extras.into();
        let mut flat = 0;
        let mut fates: Vec<InputFate<'a>> = chunk
            .inputs
            .iter()
            .map(|input| self.fate_of(chunk, input, &mut flat, source, extras))
            .collect();
        for dest in &self.destinations {
            if !dest.payload_transforms.is_empty() {
                run_payload_plugins(dest, &mut fates, received_at, logs);
            }
        }
        fates
    }

    /// [`Pipeline::route`], handing each input's fate to `settle`, in order, as soon as it is
    /// known: right after the input is routed when no destination runs payload plugins, so that
    /// its payloads are written out while the event is still in the cache (delivery's rounds hold
    /// thousands of events: by the end of a round, its first events are cold; BENCHMARKS.md,
    /// round twenty-nine); after the whole chunk's payload plugins otherwise (they take the
    /// chunk at once).
    pub fn route_each<'a>(
        &'a self,
        chunk: &'a TransformedChunk<'a>,
        source: &str,
        extras: impl Into<Extras>,
        received_at: i64,
        logs: &mut Logs,
        mut settle: impl FnMut(InputFate<'a>),
    ) {
        let extras = extras.into();
        if self
            .destinations
            .iter()
            .any(|d| !d.payload_transforms.is_empty())
        {
            let fates = self.route(chunk, source, extras, received_at, logs);
            fates.into_iter().for_each(settle);
            return;
        }
        let mut flat = 0;
        for input in &chunk.inputs {
            settle(self.fate_of(chunk, input, &mut flat, source, extras));
        }
    }

    /// The fate of one input of the chunk: halted by the config's plugins, or its events routed
    /// (`flat`: the number of the chunk's live events before it, counted on).
    fn fate_of<'a>(
        &'a self,
        chunk: &'a TransformedChunk<'a>,
        input: &'a Transformed,
        flat: &mut usize,
        source: &str,
        extras: Extras,
    ) -> InputFate<'a> {
        if let Some(halt) = &input.halt {
            return InputFate::Halted(halt);
        }
        let routed = input.events.iter().map(|event| {
            let outcomes = self.route_one(chunk, *flat, event, source, extras);
            *flat += 1;
            RoutedEvent { event, outcomes }
        });
        InputFate::Routed(routed.collect())
    }

    /// The outcome at every destination of the `flat`-th live event of the chunk: one outcome
    /// per destination, always, in config order.
    fn route_one<'a>(
        &self,
        chunk: &'a TransformedChunk<'a>,
        flat: usize,
        event: &'a SourceEvent,
        source: &str,
        extras: Extras,
    ) -> Vec<Outcome<'a>> {
        chunk
            .at_destinations
            .iter()
            .map(|at| (at.destination, &at.transformed))
            .map(|(dest, transformed)| match transformed {
                None => dest.route(event, source, extras),
                Some(all) => match all.get(flat) {
                    Some(t) => route_transformed(dest, t, source, extras),
                    None => Outcome::not_sent(
                        dest.name(),
                        Status::Failed,
                        "its transforms returned fewer results than events".into(),
                    ),
                },
            })
            .collect()
    }
}

/// The events of the inputs that no plugin halted, in order.
fn live_events(inputs: &[Transformed]) -> impl Iterator<Item = &SourceEvent> {
    inputs
        .iter()
        .filter(|t| t.halt.is_none())
        .flat_map(|t| t.events.iter())
}

/// The outcome at `dest` of what its `transforms` made of one event.
fn route_transformed<'a>(
    dest: &'a Destination,
    transformed: &'a Transformed,
    source: &str,
    extras: Extras,
) -> Outcome<'a> {
    if let Some(halt) = &transformed.halt {
        let (status, reason) = halt_outcome(halt);
        return Outcome::not_sent(dest.name(), status, reason);
    }
    transformed
        .events
        .iter()
        .map(|e| dest.route(e, source, extras))
        .reduce(merge)
        .unwrap_or_else(|| {
            Outcome::not_sent(
                dest.name(),
                Status::Filtered,
                "its transforms returned no events".into(),
            )
        })
}

/// The status and reason of an event a plugin halted.
pub fn halt_outcome(halt: &Halt) -> (Status, String) {
    match halt {
        Halt::Dropped { plugin, reason } => (
            Status::Filtered,
            format!("plugin `{plugin}` dropped it: {reason}"),
        ),
        Halt::Failed { plugin, message } => (
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
        let shift = a.data.len();
        a.data.extend(b.data);
        a.client.extend(b.client);
        a.client_data
            .extend(b.client_data.into_iter().map(|c| match c {
                ClientPayload::Server(i) => ClientPayload::Server(i + shift),
                own @ ClientPayload::Own(_) => own,
            }));
        a.warnings.extend(b.warnings);
        a.rows_built.extend(b.rows_built);
    }
    a
}

/// Runs `dest`'s payload plugins over every payload it was to send in the chunk (the server
/// copies, then the browser's own), in one batch, and puts back what they return. A failed payload
/// fails its event at that destination, both copies (the event goes to the dead letters); dropping
/// every payload filters the event there.
fn run_payload_plugins(
    dest: &Destination,
    fates: &mut [InputFate<'_>],
    received_at: i64,
    logs: &mut Logs,
) {
    let mut payloads: Vec<Value> = Vec::new();
    for (_, outcome) in sending_at(fates, dest.name()) {
        payloads.extend(outcome.data.iter().map(Payload::to_value));
        payloads.extend(browser_only(outcome).map(Payload::to_value));
    }
    if payloads.is_empty() {
        return;
    }
    let mut transformed = dest
        .payload_transforms
        .run(payloads, received_at, logs)
        .into_iter();
    for (event, outcome) in sending_at(fates, dest.name()) {
        put_back(outcome, &mut transformed);
        settle_returned(dest, event, outcome);
    }
}

/// Holds the event objects the payload plugins returned into `outcome` to what the platform takes,
/// as the mapping's would be: a field of the wrong type, or a matching key that is not hashed, is
/// converted or left out with a warning (`DestinationPlugin::settle_returned`), then fields
/// without a value are left out ([`drop_empty`]), those the check emptied too (a `user` whose
/// only key was unhashed).
fn settle_returned(dest: &Destination, event: &SourceEvent, outcome: &mut Outcome<'_>) {
    let plugin = dest.plugin();
    let own = outcome.client_data.iter_mut().filter_map(|c| match c {
        ClientPayload::Own(p) => Some(p),
        ClientPayload::Server(_) => None,
    });
    for payload in outcome.data.iter_mut().chain(own) {
        if let Payload::Owned(object) = payload {
            plugin.settle_returned(object, event, &mut outcome.warnings);
            drop_empty(object);
        }
    }
}

/// The browser side's own event objects of `outcome` (not shared with the server side).
fn browser_only<'r, 'a>(outcome: &'r Outcome<'a>) -> impl Iterator<Item = &'r Payload<'a>> {
    outcome.client_data.iter().filter_map(|c| match c {
        ClientPayload::Own(p) => Some(p),
        ClientPayload::Server(_) => None,
    })
}

/// Puts what the payload plugins made of `outcome`'s payloads (the next results of `results`, in
/// the order [`run_payload_plugins`] gave them) back into it. The browser copies follow their
/// server copy: dropped with it, split with it.
fn put_back(outcome: &mut Outcome<'_>, results: &mut impl Iterator<Item = Transformed<Value>>) {
    let mut halt = None;
    let mut take = |n: usize| -> Vec<Vec<Value>> {
        let mut out = Vec::with_capacity(n);
        for t in results.by_ref().take(n) {
            match t.halt {
                None => out.push(t.events.into_vec()),
                Some(h) => {
                    // A failure outweighs a drop: the event must reach the dead letters.
                    if !matches!(halt, Some(Halt::Failed { .. })) {
                        halt = Some(h);
                    }
                    out.push(Vec::new());
                }
            }
        }
        out
    };
    let server = take(outcome.data.len());
    let own = take(browser_only(outcome).count());
    // Where each server copy's results start in the new `data`, and how many there are.
    let mut spans = Vec::with_capacity(server.len());
    let mut data = PerRow::new();
    for events in server {
        spans.push(data.len()..data.len() + events.len());
        data.extend(events.into_iter().map(Payload::Owned));
    }
    outcome.data = data;
    // Untracked (`Copies::Server`): the browser side's names stay as routed.
    if outcome.client_data.len() == outcome.client.len() {
        let mut own = own.into_iter();
        let mut client = PerRow::with_capacity(outcome.client.len());
        let mut client_data = Vec::with_capacity(outcome.client.len());
        for (name, c) in outcome.client.iter().zip(&outcome.client_data) {
            let made: Vec<ClientPayload<'_>> = match c {
                ClientPayload::Server(i) => spans
                    .get(*i)
                    .into_iter()
                    .flat_map(|span| span.clone().map(ClientPayload::Server))
                    .collect(),
                ClientPayload::Own(_) => own
                    .next()
                    .into_iter()
                    .flatten()
                    .map(|v| ClientPayload::Own(Payload::Owned(v)))
                    .collect(),
            };
            client.extend(made.iter().map(|_| *name));
            client_data.extend(made);
        }
        outcome.client = client;
        outcome.client_data = client_data;
    }
    let nothing_left = outcome.data.is_empty() && outcome.client.is_empty();
    let halt = halt.filter(|h| matches!(h, Halt::Failed { .. }) || nothing_left);
    if let Some(halt) = halt {
        let (status, reason) = halt_outcome(&halt);
        *outcome = Outcome::not_sent(outcome.destination, status, reason);
    }
}

/// The outcomes at the destination named `name` that send payloads (to either side), in order.
fn sending_at<'r, 'a>(
    fates: &'r mut [InputFate<'a>],
    name: &'r str,
) -> impl Iterator<Item = (&'a SourceEvent, &'r mut Outcome<'a>)> {
    fates
        .iter_mut()
        .filter_map(|f| match f {
            InputFate::Routed(events) => Some(events),
            InputFate::Halted(_) => None,
        })
        .flatten()
        .flat_map(|e| e.outcomes.iter_mut().map(|o| (e.event, o)))
        .filter(move |(_, o)| o.destination == name)
        .filter(|(_, o)| {
            o.status == Status::Sent && !(o.data.is_empty() && o.client_data.is_empty())
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// What a fate says, in words: each event's id with each outcome's destination, status and
    /// payloads (as JSON).
    fn described(fate: &InputFate<'_>) -> Vec<String> {
        let InputFate::Routed(events) = fate else {
            return vec!["halted".into()];
        };
        let mut said = Vec::new();
        for routed in events {
            for o in &routed.outcomes {
                let data: Vec<Value> = o.data.iter().map(Payload::to_value).collect();
                let (id, status) = (routed.event.id(), o.status.as_str());
                said.push(format!(
                    "{id} {} {status} {}",
                    o.destination,
                    Value::Array(data)
                ));
            }
        }
        said
    }

    #[test]
    fn route_each_hands_on_what_route_returns_in_the_same_order() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let loaded = crate::config::load(&root.join("examples/switchyard.yaml"))
            .unwrap_or_else(|d| panic!("the example config loads: {d:?}"));
        let text = std::fs::read_to_string(root.join("examples/events.ndjson")).expect("events");
        let events: Vec<SourceEvent> = text
            .lines()
            .filter_map(|line| SourceEvent::from_json(line, 1_725_280_500).ok())
            .collect();
        assert!(events.len() > 5, "the sample events parse");
        let (pipeline, mut logs) = (&loaded.pipeline, Vec::new());
        let chunk = pipeline.transform(events, 1_725_280_500, &mut logs);
        let routed = pipeline.route(&chunk, "shop-web", Copies::Server, 0, &mut logs);
        let all: Vec<Vec<String>> = routed.iter().map(described).collect();
        assert!(
            all.iter().flatten().any(|o| o.contains(" sent [{")),
            "payloads built"
        );
        let mut each = Vec::new();
        pipeline.route_each(&chunk, "shop-web", Copies::Server, 0, &mut logs, |fate| {
            each.push(described(&fate));
        });
        assert_eq!(each, all);
    }
}
