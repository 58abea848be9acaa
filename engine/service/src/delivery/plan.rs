//! A round's plan: runs the round's records through the pipeline, one source at a time (rules
//! depend on it), and decides per record what to send to which destination, what goes to the dead
//! letters (with the reason) and what is only counted (filtered, skipped, deactivated).

use crate::clock::unix_now;
use crate::config::Loaded;
use crate::destination::Destination;
use crate::handoff::ParsedEvents;
use crate::observe::{Journey, Leg, LegStatus, MatchedRow, PixelCall, PluginStep, rfc3339};
use crate::pipeline::{Copies, InputFate, RoutedEvent, Spent, halt_outcome};
use serde_json::Value;
use std::collections::BTreeMap;
use switchyard_core::destination::EventText;
use switchyard_core::event::SourceEvent;
use switchyard_core::router::{Outcome, Status};
use switchyard_core::rules::compile::CompiledRow;
use switchyard_queue::{DeadLetter, Record};
use switchyard_wasm::Halt;
use switchyard_wasm::sandbox::level_name;

pub use switchyard_queue::EVERY_DESTINATION;

/// What a round's pipeline decided.
#[derive(Default)]
pub struct Plan {
    /// Payloads to send, serialized, by destination name, each with the index of the record it
    /// came from.
    pub sends: BTreeMap<String, Vec<(usize, EventText)>>,
    pub dead: Vec<DeadLetter>,
    /// Outcomes that send nothing, by destination name and status.
    pub counts: BTreeMap<(String, &'static str), u64>,
    /// When someone watches: the journey of each record (by its index in the round; ids not yet
    /// given).
    pub journeys: Option<Vec<(usize, Journey)>>,
    /// Events taken as ingestion parsed them, and events parsed from their stored text.
    pub handed: u64,
    pub parsed_again: u64,
}

impl Plan {
    fn count(&mut self, destination: &str, status: Status) {
        let label = match status {
            Status::Invalid | Status::Failed => "failed",
            other => other.as_str(),
        };
        *self
            .counts
            .entry((destination.to_owned(), label))
            .or_default() += 1;
    }

    /// Keeps `record` as a dead letter of `destination`. One of [`EVERY_DESTINATION`] whose record
    /// was queued again for one destination only is that destination's (so that listing, retrying
    /// or dropping by destination finds it).
    fn dead_letter(&mut self, destination: &str, reason: String, at: i64, record: &Record) {
        let destination = match record.only.as_deref() {
            Some(one) if destination == EVERY_DESTINATION => one,
            _ => destination,
        };
        self.dead.push(DeadLetter {
            destination: destination.to_owned(),
            reason,
            at,
            record: only(record, destination),
        });
    }
}

/// The record, re-addressed to one destination (a dead letter re-driven goes there only).
pub fn only(record: &Record, destination: &str) -> Record {
    let mut r = record.clone();
    if destination != EVERY_DESTINATION {
        r.only = Some(destination.to_owned());
    }
    r
}

/// Plans a round; with `observe`, with the journey of each record. The events ingestion left in
/// `parsed` are taken from there rather than parsed again. Also gives back the round's events, for
/// the caller to drop once it has passed the plan on ([`Spent`]).
pub fn plan(
    loaded: &Loaded,
    records: &[(u64, Record)],
    parsed: &ParsedEvents,
    observe: bool,
) -> (Plan, Vec<Spent>) {
    let mut plan = Plan {
        journeys: observe.then(Vec::new),
        ..Plan::default()
    };
    let now = unix_now();
    let mut by_source: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, (_, r)) in records.iter().enumerate() {
        match unaddressed(loaded, r) {
            Some(reason) => plan.dead_letter(EVERY_DESTINATION, reason, now, r),
            None => by_source.entry(r.source.as_str()).or_default().push(i),
        }
    }
    let mut spent = Vec::new();
    for (source, members) in by_source {
        let events = parse_records(loaded, &members, records, parsed, now, &mut plan);
        spent.push(plan_source(loaded, source, events, records, now, &mut plan));
    }
    (plan, spent)
}

/// Why `record` can go nowhere under the config `loaded` (a reload removed or renamed its source,
/// or the one destination it is re-addressed to): it was accepted under another config, so it is
/// kept as a dead letter, with the reason, rather than skipped; `None` when it can go on.
fn unaddressed(loaded: &Loaded, record: &Record) -> Option<String> {
    let config = &loaded.config;
    if !config.sources.iter().any(|s| s.name == record.source) {
        return Some(format!(
            "its source `{}` is not in the config any more (a reload renamed or removed it): kept \
             here, not skipped; retry it once the source is back, or drop it",
            record.source
        ));
    }
    match record.only.as_deref() {
        Some(name) if loaded.pipeline.destination(name).is_none() => Some(format!(
            "the destination it was queued again for, `{name}`, is not in the config any more \
             (a reload renamed or removed it): kept here, not skipped"
        )),
        _ => None,
    }
}

/// Plans the events of one source's records (`kept`: the index in `records` of each event); gives
/// the events back once routed.
fn plan_source(
    loaded: &Loaded,
    source: &str,
    (events, kept): (Vec<SourceEvent>, Vec<usize>),
    records: &[(u64, Record)],
    now: i64,
    plan: &mut Plan,
) -> Spent {
    let pipeline = &loaded.pipeline;
    // While someone watches: the events before the config's plugins (to tell what they did),
    // and the browser copies (the pixel calls); both cost nothing otherwise.
    let observe = plan.journeys.is_some();
    let before: Vec<Value> = match observe && !pipeline.transforms().is_empty() {
        true => events.iter().map(|e| e.as_value().clone()).collect(),
        false => Vec::new(),
    };
    let copies = match observe {
        true => Copies::ServerAndBrowser,
        false => Copies::Server,
    };
    let mut logs = Vec::new();
    let chunk = pipeline.transform(events, now, &mut logs);
    let mut received = vec![0u64; pipeline.destinations().len()];
    // Each event settled as soon as it is routed, while it is still in the cache.
    let mut kept = kept.into_iter().enumerate();
    pipeline.route_each(&chunk, source, copies, now, &mut logs, |fate| {
        if let Some((k, i)) = kept.next() {
            let (record, before) = (&records[i].1, before.get(k));
            settle_input(loaded, (i, record, before), fate, &mut received, now, plan);
        }
    });
    for (plugin, line) in logs {
        log_plugin_line(&plugin, level_name(line.level), &line.message);
    }
    for (n, d) in received.into_iter().zip(pipeline.destinations()) {
        if n > 0 {
            *plan
                .counts
                .entry((d.name().to_owned(), "received"))
                .or_default() += n;
        }
    }
    chunk.spent()
}

/// What becomes of one input event (record `i`; `before`, the event before the config's plugins,
/// when journeys are kept): its journey, its counts (`received`, per destination), and its
/// payloads to send or its dead letters.
fn settle_input(
    loaded: &Loaded,
    (i, record, before): (usize, &Record, Option<&Value>),
    fate: InputFate<'_>,
    received: &mut [u64],
    now: i64,
    plan: &mut Plan,
) {
    let destinations = loaded.pipeline.destinations();
    if let Some(journeys) = &mut plan.journeys {
        journeys.push((i, journey_of(loaded, record, &fate, before)));
    }
    for (n, d) in received.iter_mut().zip(destinations) {
        if addressed_to(record, d.name()) {
            *n += 1;
        }
    }
    match fate {
        InputFate::Halted(halt) => {
            let (status, reason) = halt_outcome(halt);
            for d in destinations {
                if addressed_to(record, d.name()) {
                    plan.count(d.name(), status);
                }
            }
            if status == Status::Failed {
                plan.dead_letter(EVERY_DESTINATION, reason, now, record);
            }
        }
        InputFate::Routed(events) => {
            for routed in events {
                settle(&routed, i, record, now, plan);
            }
        }
    }
}

/// Parses the records of `members` (or takes the events ingestion parsed from `parsed`): the
/// events, and the index of the record of each; a record that is not a valid event is
/// dead-lettered (a queue holds only valid events: a bug or damage).
fn parse_records(
    loaded: &Loaded,
    members: &[usize],
    records: &[(u64, Record)],
    parsed: &ParsedEvents,
    now: i64,
    plan: &mut Plan,
) -> (Vec<SourceEvent>, Vec<usize>) {
    let pipeline = &loaded.pipeline;
    let mut events = Vec::with_capacity(members.len());
    let mut kept = Vec::with_capacity(members.len());
    let keep_text = pipeline.has_plugins();
    for &i in members {
        let r = &records[i].1;
        let event = match parsed.take(&r.event, r.received_at) {
            Some(mut event) => {
                plan.handed += 1;
                if keep_text {
                    // As `Pipeline::parse` does: the stored text is the normalised event.
                    event.keep_text(r.event.clone());
                }
                Ok(event)
            }
            None => {
                plan.parsed_again += 1;
                pipeline.parse(&r.event, r.received_at)
            }
        };
        match event {
            Ok(e) => {
                events.push(e);
                kept.push(i);
            }
            Err(e) => {
                let reason = format!("invalid event in the queue: {e}");
                if let Some(journeys) = &mut plan.journeys {
                    let mut j = journey(r, "", "");
                    j.destinations = pipeline
                        .destinations()
                        .iter()
                        .filter(|d| addressed_to(r, d.name()))
                        .map(|d| leg(d.name(), LegStatus::DeadLettered, Some(reason.clone())))
                        .collect();
                    journeys.push((i, j));
                }
                plan.dead_letter(EVERY_DESTINATION, reason, now, r);
            }
        }
    }
    (events, kept)
}

/// Whether `record` goes to the destination `name` (a re-driven dead letter goes to one only).
fn addressed_to(record: &Record, name: &str) -> bool {
    record.only.as_deref().is_none_or(|o| o == name)
}

/// Plans one routed event of record `i` at every destination it is addressed to.
fn settle(routed: &RoutedEvent<'_>, i: usize, record: &Record, now: i64, plan: &mut Plan) {
    for outcome in &routed.outcomes {
        let name = outcome.destination;
        if !addressed_to(record, name) {
            continue;
        }
        match outcome.status {
            Status::Sent => {
                // Serialized once, here; the request bodies are made of these texts.
                let texts: Result<Vec<EventText>, _> =
                    outcome.data.iter().map(EventText::of_payload).collect();
                let texts = match texts {
                    Ok(texts) => texts,
                    Err(e) => {
                        plan.count(name, Status::Failed);
                        let reason = format!("its payload does not serialize: {e}");
                        plan.dead_letter(name, reason, now, record);
                        continue;
                    }
                };
                // The name is copied once per destination and round, not once per event.
                let payloads = texts.into_iter().map(|t| (i, t));
                match plan.sends.get_mut(name) {
                    Some(sends) => sends.extend(payloads),
                    None => {
                        plan.sends.insert(name.to_owned(), payloads.collect());
                    }
                }
            }
            status @ (Status::Failed | Status::Invalid) => {
                plan.count(name, status);
                let reason = outcome
                    .reason
                    .clone()
                    .unwrap_or_else(|| format!("{} at this destination", status.as_str()));
                plan.dead_letter(name, reason, now, record);
            }
            other => plan.count(name, other),
        }
    }
}

/// A plugin's log line, at its own level, naming the plugin.
pub(crate) fn log_plugin_line(plugin: &str, level: &str, message: &str) {
    match level {
        "error" => tracing::error!(plugin, "{message}"),
        "warn" => tracing::warn!(plugin, "{message}"),
        "info" => tracing::info!(plugin, "{message}"),
        _ => tracing::debug!(plugin, "{message}"),
    }
}

/// A journey's start: the record's event, no destination yet.
fn journey(record: &Record, name: &str, id: &str) -> Journey {
    Journey {
        id: 0,
        received_at: rfc3339(record.received_at),
        source: record.source.clone(),
        event_name: name.to_owned(),
        event_id: id.to_owned(),
        event: serde_json::from_str(&record.event).unwrap_or_else(|_| record.event.clone().into()),
        plugins: Vec::new(),
        destinations: Vec::new(),
    }
}

fn leg(destination: &str, status: LegStatus, reason: Option<String>) -> Leg {
    Leg {
        destination: destination.to_owned(),
        status,
        reason,
        rows: Vec::new(),
        payload: None,
        pixel: Vec::new(),
        attempts: Vec::new(),
    }
}

/// The reason of a leg whose rows fire in the browser only.
const BROWSER_ONLY: &str = "its rows fire in the browser only (the pixel calls): nothing to send";

/// The journey status of a routing status (`pending`: to be sent).
fn journey_status(status: Status) -> LegStatus {
    match status {
        Status::Sent => LegStatus::Pending,
        Status::Filtered => LegStatus::Filtered,
        Status::Skipped | Status::Deactivated => LegStatus::Skipped,
        Status::Invalid | Status::Failed => LegStatus::DeadLettered,
    }
}

/// The journey of a record, as its round planned it; `before`: its event before the config's
/// plugins, when there are any.
fn journey_of(
    loaded: &Loaded,
    record: &Record,
    fate: &InputFate<'_>,
    before: Option<&Value>,
) -> Journey {
    let pipeline = &loaded.pipeline;
    let addressed = pipeline
        .destinations()
        .iter()
        .filter(|d| addressed_to(record, d.name()));
    match fate {
        InputFate::Halted(halt) => {
            let mut j = journey(record, "", "");
            if let Ok(e) = serde_json::from_str::<Value>(&record.event) {
                j.event_name = e["event_name"].as_str().unwrap_or_default().to_owned();
                j.event_id = e["event_id"].as_str().unwrap_or_default().to_owned();
            }
            let (status, reason) = halt_outcome(halt);
            j.plugins.push(match halt {
                Halt::Dropped { plugin, reason } => PluginStep {
                    plugin: plugin.clone(),
                    action: "dropped",
                    message: reason.clone(),
                },
                Halt::Failed { plugin, message } => PluginStep {
                    plugin: plugin.clone(),
                    action: "failed",
                    message: message.clone(),
                },
            });
            j.destinations = addressed
                .map(|d| leg(d.name(), journey_status(status), Some(reason.clone())))
                .collect();
            j
        }
        InputFate::Routed(events) => {
            let first = events.first();
            let mut j = journey(
                record,
                first.map_or("", |e| e.event.name()),
                first.map_or("", |e| e.event.id()),
            );
            if let Some(before) = before {
                j.plugins.push(what_plugins_did(loaded, before, events));
            }
            for routed in events {
                // One outcome per destination, in config order.
                for (outcome, dest) in routed.outcomes.iter().zip(pipeline.destinations()) {
                    if addressed_to(record, outcome.destination) {
                        j.destinations.push(leg_of(dest, routed.event, outcome));
                    }
                }
            }
            j
        }
    }
}

/// What the config's plugins did with an event they let through: kept it as it was, changed it,
/// or split it. A chain of several plugins is one step, named by all of them.
fn what_plugins_did(loaded: &Loaded, before: &Value, after: &[RoutedEvent<'_>]) -> PluginStep {
    let names: Vec<&str> = loaded
        .pipeline
        .transforms()
        .plugins()
        .iter()
        .map(|p| p.name())
        .collect();
    let after: Vec<&Value> = after.iter().map(|r| r.event.as_value()).collect();
    plugin_step(&names, before, &after)
}

/// The step of the plugins `names` that made `after` of `before`.
fn plugin_step(names: &[&str], before: &Value, after: &[&Value]) -> PluginStep {
    let (action, message) = match after {
        [one] if *one == before => ("kept", "passed it on unchanged".to_owned()),
        [_] => ("changed", "changed it".to_owned()),
        many => ("changed", format!("split it into {} events", many.len())),
    };
    PluginStep {
        plugin: names.join(" → "),
        action,
        message,
    }
}

/// The rows of `event` at `dest` that fire only in the browser (mode `client`) and did: the router
/// keeps the rows that built server payloads only ([`Outcome::rows_built`]), so these are found
/// again by the browser events the outcome names.
fn browser_only_rows<'a>(
    dest: &'a Destination,
    event: &'a SourceEvent,
    outcome: &'a Outcome<'_>,
) -> impl Iterator<Item = &'a CompiledRow> {
    let rows = match outcome.status == Status::Sent && !outcome.client.is_empty() {
        true => dest.plugin().routing().mapping.rows_for(event.name()),
        false => &[],
    };
    rows.iter().filter(move |row| {
        !row.mode.includes_server()
            && row.enabled
            && row.applies(event.as_value())
            && outcome.client.contains(&&*row.target)
    })
}

/// A destination's leg of a journey, as routed: the rows that matched, the server payloads and
/// the browser's pixel calls.
fn leg_of(dest: &Destination, event: &SourceEvent, outcome: &Outcome<'_>) -> Leg {
    let mut payloads: Vec<Value> = outcome.data.iter().map(|p| p.to_value()).collect();
    let payload = match payloads.len() {
        0 => None,
        1 => payloads.pop(),
        _ => Some(Value::Array(payloads)),
    };
    let matched = |row: &CompiledRow| MatchedRow {
        source: row.source.clone(),
        target: row.target.clone(),
        at: row.location.clone(),
    };
    let mut rows: Vec<MatchedRow> = outcome.rows_built.iter().map(|b| matched(b.row)).collect();
    rows.extend(browser_only_rows(dest, event, outcome).map(matched));
    let pixel = dest
        .client_actions(event, outcome)
        .map_or_else(Vec::new, |actions| {
            actions.calls.iter().filter_map(PixelCall::read).collect()
        });
    // Routed, but with nothing for the server side: only the browser fires it.
    let (status, reason) = match (outcome.status, &payload) {
        (Status::Sent, None) => (LegStatus::Skipped, Some(BROWSER_ONLY.to_owned())),
        (status, _) => (journey_status(status), outcome.reason.clone()),
    };
    Leg {
        rows,
        payload,
        pixel,
        ..leg(outcome.destination, status, reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_record_queued_again_for_one_destination_stays_that_destinations_dead_letter() {
        let record = |only: Option<&str>| Record {
            source: "server".into(),
            received_at: 0,
            queued_at_ms: 0,
            event: "{}".into(),
            only: only.map(str::to_owned),
        };
        let mut plan = Plan::default();
        plan.dead_letter(EVERY_DESTINATION, "gone".into(), 0, &record(Some("tiktok")));
        plan.dead_letter(EVERY_DESTINATION, "gone".into(), 0, &record(None));
        plan.dead_letter("tiktok", "refused".into(), 0, &record(None));
        let filed: Vec<(&str, Option<&str>)> = plan
            .dead
            .iter()
            .map(|d| (d.destination.as_str(), d.record.only.as_deref()))
            .collect();
        assert_eq!(
            filed,
            [
                ("tiktok", Some("tiktok")),
                (EVERY_DESTINATION, None),
                ("tiktok", Some("tiktok")),
            ]
        );
    }

    #[test]
    fn a_plugin_step_says_whether_the_event_was_kept_changed_or_split() {
        let before = json!({"event_name": "Placed Order", "properties": {"currency": "USD"}});
        let changed = json!({"event_name": "Placed Order", "properties": {"currency": "EUR"}});
        let step = |after: &[&Value]| {
            let s = plugin_step(&["fx", "scrub"], &before, after);
            (s.plugin, s.action, s.message)
        };
        let kept = step(&[&before.clone()]);
        assert_eq!(
            kept,
            ("fx → scrub".into(), "kept", "passed it on unchanged".into())
        );
        assert_eq!(step(&[&changed]).1, "changed");
        let split = step(&[&before, &changed]);
        assert_eq!(
            (split.1, split.2.as_str()),
            ("changed", "split it into 2 events")
        );
    }
}
