//! The router: runs one event through every destination and reports what became of it at each.
//!
//! Order of checks at a destination: deactivated, source, consent, filters, mapping rows. The first
//! that stops the event gives its status and reason; otherwise the event is mapped and `sent`.

use crate::destination::{Activation, ConsentVerdict, Destination};
use crate::event::SourceEvent;
use crate::rules::compile::CompiledRow;
use crate::rules::fields::Warning;
use crate::rules::payload::Payload;
use serde::Serialize;
use serde_json::Value;

/// What became of an event at a destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Mapped; `data` holds what goes to the platform's server API.
    Sent,
    /// Stopped by a filter.
    Filtered,
    /// Not forwarded: no active row, another source, or consent.
    Skipped,
    /// The event breaks the event spec.
    Invalid,
    /// A plugin failed on the event (trap, timeout, error); it goes to the dead letters.
    Failed,
    /// The destination is deactivated.
    Deactivated,
}

/// The outcome of one event at one destination. It borrows from the event and the router.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome<'a> {
    #[serde(skip)]
    pub destination: &'a str,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Platform event objects for the server side (rows with mode `server` or `client_and_server`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub data: Vec<Payload<'a>>,
    /// Platform event names the browser side fires (rows with mode `client` or `client_and_server`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub client: Vec<&'a str>,
    /// Fields left out because their rules could not apply.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<Warning>,
    /// The platform event objects of the browser side, one per `client` entry; built only by
    /// [`Router::route_for_browser`].
    #[serde(skip)]
    pub client_data: Vec<Payload<'a>>,
}

impl<'a> Outcome<'a> {
    /// An outcome that sends nothing, with the reason.
    pub fn stopped(destination: &'a str, status: Status, reason: String) -> Self {
        Self {
            destination,
            status,
            reason: Some(reason),
            data: Vec::new(),
            client: Vec::new(),
            warnings: Vec::new(),
            client_data: Vec::new(),
        }
    }
}

/// All destinations of a config, ready to route events.
pub struct Router {
    destinations: Vec<Box<dyn Destination>>,
}

impl Router {
    pub fn new(destinations: Vec<Box<dyn Destination>>) -> Self {
        Self { destinations }
    }

    pub fn destinations(&self) -> &[Box<dyn Destination>] {
        &self.destinations
    }

    /// The outcome at every destination, in config order, of an event from `source`.
    pub fn route<'a>(&'a self, event: &'a SourceEvent, source: &str) -> Vec<Outcome<'a>> {
        self.destinations
            .iter()
            .map(|d| route_one(d.as_ref(), event, source, false))
            .collect()
    }

    /// [`Router::route`], also building the browser side's event objects (`client_data`).
    pub fn route_for_browser<'a>(
        &'a self,
        event: &'a SourceEvent,
        source: &str,
    ) -> Vec<Outcome<'a>> {
        self.destinations
            .iter()
            .map(|d| route_one(d.as_ref(), event, source, true))
            .collect()
    }

    /// The outcome at the destination at `index` (in config order), if there is one.
    pub fn route_at<'a>(
        &'a self,
        index: usize,
        event: &'a SourceEvent,
        source: &str,
    ) -> Option<Outcome<'a>> {
        let dest = self.destinations.get(index)?;
        Some(route_one(dest.as_ref(), event, source, false))
    }

    /// The outcome at every destination of input that is not a valid event.
    pub fn invalid(&self, reason: &str) -> Vec<Outcome<'_>> {
        self.stopped(Status::Invalid, reason)
    }

    /// The same outcome at every destination: for events stopped before routing (invalid input,
    /// a plugin that failed or dropped the event).
    pub fn stopped(&self, status: Status, reason: &str) -> Vec<Outcome<'_>> {
        self.destinations
            .iter()
            .map(|d| Outcome::stopped(&d.routing().name, status, reason.to_owned()))
            .collect()
    }
}

fn route_one<'a>(
    dest: &'a dyn Destination,
    event: &'a SourceEvent,
    source: &str,
    with_client_data: bool,
) -> Outcome<'a> {
    let routing = dest.routing();
    let name: &'a str = &routing.name;
    if routing.activation == Activation::Deactivated {
        return Outcome::stopped(
            name,
            Status::Deactivated,
            "the destination is deactivated".into(),
        );
    }
    if !routing.sources.iter().any(|s| s == source) {
        return Outcome::stopped(
            name,
            Status::Skipped,
            format!("source `{source}` is not one of this destination's sources"),
        );
    }
    let client_allowed = match routing.consent.verdict(event) {
        ConsentVerdict::Both => true,
        ConsentVerdict::ServerOnly => false,
        ConsentVerdict::Refused(why) => {
            let category = routing.consent.category.as_str();
            return Outcome::stopped(
                name,
                Status::Skipped,
                format!("consent ({category}): {why}"),
            );
        }
    };
    let doc = event.as_value();
    if let Some(f) = routing.filters.iter().find(|f| f.stops(event.name(), doc)) {
        return Outcome::stopped(
            name,
            Status::Filtered,
            format!("filter `{}` stopped it", f.name),
        );
    }
    let rows = routing.mapping.rows_for(event.name());
    if rows.is_empty() {
        return Outcome::stopped(
            name,
            Status::Skipped,
            format!("no mapping row for event `{}`", event.name()),
        );
    }
    let mut outcome = Outcome {
        destination: name,
        status: Status::Sent,
        reason: None,
        data: Vec::new(),
        client: Vec::new(),
        warnings: Vec::new(),
        client_data: Vec::new(),
    };
    for row in rows {
        let client = row.mode.includes_client() && client_allowed;
        if !row.enabled || !row.applies(doc) || !(row.mode.includes_server() || client) {
            continue;
        }
        if row.mode.includes_server() {
            let payload = row.build(doc, &mut outcome.warnings);
            outcome.data.push(dest.encode(&row.target, event, payload));
        }
        if client {
            outcome.client.push(&row.target);
            if with_client_data {
                let payload = match (row.mode.includes_server(), outcome.data.last()) {
                    (true, Some(built)) => built.clone(),
                    _ => {
                        let mut ignored = Vec::new();
                        let fields = row.build(doc, &mut ignored);
                        dest.encode(&row.target, event, fields)
                    }
                };
                outcome.client_data.push(payload);
            }
        }
    }
    if outcome.data.is_empty() && outcome.client.is_empty() {
        // Reasons are put into words only when nothing is sent: off the common path.
        return Outcome::stopped(name, Status::Skipped, why_no_row_applied(rows, doc));
    }
    outcome
}

fn why_no_row_applied(rows: &[CompiledRow], doc: &Value) -> String {
    let reasons: Vec<String> = rows
        .iter()
        .map(|row| {
            if !row.enabled {
                format!("{} is switched off", row.label())
            } else if !row.applies(doc) {
                format!("{}: its `when` condition does not hold", row.label())
            } else {
                format!(
                    "{} is client-side only and consent allows server-side only",
                    row.label()
                )
            }
        })
        .collect();
    reasons.join("; ")
}
