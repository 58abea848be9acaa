//! The router: runs one event through one destination plugin's compiled routing and mapping, and
//! says what became of it there ([`Outcome`]).
//!
//! Order of checks at a destination: deactivated, source, consent, filters, mapping rows. The first
//! that keeps the event from being sent gives its status and reason; otherwise the event is mapped
//! and `sent`.

use crate::destination::{Activation, ConsentVerdict, DestinationPlugin, Routing};
use crate::event::SourceEvent;
use crate::json_text;
use crate::rules::compile::{CompiledRow, RowGroup};
use crate::rules::fields::FieldBits;
use crate::rules::payload::Payload;
use crate::rules::resolve::Resolved;
use crate::rules::warning::Warning;
use serde::Serialize;
use serde_json::Value;
use smallvec::SmallVec;

/// The items an [`Outcome`] holds per platform event: one per server-side row that applied (`data`,
/// `rows_built`), one per browser-side row (`client`), or, after payload plugins, one per event
/// they returned. Nearly always one, which is kept inline: no allocation per event for it.
/// `SmallVec` is invariant in its item type, so an `Outcome<'a>` is invariant in `'a`: a function
/// that takes outcomes of a shorter-lived borrow than the slice holding them names both lifetimes.
pub type PerRow<T> = SmallVec<[T; 1]>;

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

impl Status {
    /// The status as written in output, metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Sent => "sent",
            Status::Filtered => "filtered",
            Status::Skipped => "skipped",
            Status::Invalid => "invalid",
            Status::Failed => "failed",
            Status::Deactivated => "deactivated",
        }
    }
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
    #[serde(skip_serializing_if = "SmallVec::is_empty")]
    pub data: PerRow<Payload<'a>>,
    /// Platform event names the browser side fires (rows with mode `client` or `client_and_server`).
    #[serde(skip_serializing_if = "SmallVec::is_empty")]
    pub client: PerRow<&'a str>,
    /// Fields left out because their rules could not apply or the platform would refuse them
    /// ([`DestinationPlugin::encode`]), and what else is wrong with what goes to the server side.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<Warning>,
    /// The platform event objects of the browser side, one per `client` entry; built only when
    /// [`route`] is asked for them ([`Extras::client_data`]). [`Outcome::client_payloads`]
    /// resolves them.
    #[serde(skip)]
    pub client_data: Vec<ClientPayload<'a>>,
    /// The rows that built a server payload (`data`), each with the fields that got a value when
    /// [`route`] is asked for them ([`Extras::field_use`]): what `map` counts to report fields
    /// that never matched.
    #[serde(skip)]
    pub rows_built: PerRow<RowBuilt<'a>>,
}

/// One row that built a payload for an event, and which of its fields got a value.
#[derive(Debug, Clone)]
pub struct RowBuilt<'a> {
    pub row: &'a CompiledRow,
    /// Which fields got a value; `None` when [`route`] was not asked ([`Extras::field_use`]).
    pub present: Option<FieldBits>,
}

/// One browser-side event object of an [`Outcome`].
#[derive(Debug, Clone, PartialEq)]
pub enum ClientPayload<'a> {
    /// The server copy `data[i]`: a `client_and_server` row sends one object to both sides, so
    /// whatever changes it (a payload plugin) changes both.
    Server(usize),
    /// Built for the browser only (a `client` row).
    Own(Payload<'a>),
}

impl<'a> Outcome<'a> {
    /// An outcome that sends nothing, with the reason.
    pub fn not_sent(destination: &'a str, status: Status, reason: String) -> Self {
        Self {
            destination,
            status,
            reason: Some(reason),
            data: PerRow::new(),
            client: PerRow::new(),
            warnings: Vec::new(),
            client_data: Vec::new(),
            rows_built: PerRow::new(),
        }
    }

    /// The browser side's event objects ([`Outcome::client_data`]), resolved, in order.
    pub fn client_payloads(&self) -> impl Iterator<Item = &Payload<'a>> {
        self.client_data.iter().filter_map(|c| match c {
            ClientPayload::Server(i) => self.data.get(*i),
            ClientPayload::Own(p) => Some(p),
        })
    }

    /// Writes the outcome's JSON text: the bytes `serde_json::to_writer` writes, faster
    /// ([`json_text`]).
    pub fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        out.extend_from_slice(b"{\"status\":");
        json_text::write_str(out, self.status.as_str())?;
        if let Some(reason) = &self.reason {
            out.extend_from_slice(b",\"reason\":");
            json_text::write_str(out, reason)?;
        }
        if !self.data.is_empty() {
            out.extend_from_slice(b",\"data\":");
            json_text::write_array(out, &self.data, |out, p| p.write_json(out))?;
        }
        if !self.client.is_empty() {
            out.extend_from_slice(b",\"client\":");
            json_text::write_array(out, &self.client, |out, name| {
                json_text::write_str(out, name)
            })?;
        }
        if !self.warnings.is_empty() {
            out.extend_from_slice(b",\"warnings\":");
            json_text::serialize(out, &self.warnings)?;
        }
        out.push(b'}');
        Ok(())
    }
}

/// What [`route`] builds beside the server payloads and the browser side's event names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Extras {
    /// The browser side's event objects ([`Outcome::client_data`]).
    pub client_data: bool,
    /// Which fields of each row got a value ([`RowBuilt::present`], `None` without): what `map`
    /// counts to report fields that never matched. Delivery does not need it.
    pub field_use: bool,
}

/// What becomes of `event` from `source` at the destination `dest`, with the `extras` asked for.
pub fn route<'a>(
    dest: &'a dyn DestinationPlugin,
    event: &'a SourceEvent,
    source: &str,
    extras: Extras,
) -> Outcome<'a> {
    let routing = dest.routing();
    let name: &'a str = &routing.name;
    let (client_allowed, group) = match gate(routing, event, source) {
        Ok(gated) => gated,
        Err((status, reason)) => return Outcome::not_sent(name, status, reason),
    };
    let rows = group.rows();
    let doc = event.as_value();
    let mut outcome = Outcome::not_sent(name, Status::Sent, String::new());
    outcome.reason = None;
    // The event's paths, resolved for the first row that builds a payload (into this buffer,
    // not returned through the stack).
    let mut resolved = Resolved::new();
    let mut resolved_yet = false;
    for row in rows {
        let client = row.mode.includes_client() && client_allowed;
        if !row.enabled || !row.applies(doc) || !(row.mode.includes_server() || client) {
            continue;
        }
        if row.mode.includes_server() {
            if !resolved_yet {
                group.paths().resolve_into(doc, &mut resolved);
                resolved_yet = true;
            }
            let mut present = extras.field_use.then(FieldBits::default);
            let warnings = &mut outcome.warnings;
            let payload = row.build_resolved(doc, &resolved, warnings, present.as_mut());
            let encoded = dest.encode(&row.target, event, payload, warnings);
            outcome.rows_built.push(RowBuilt { row, present });
            outcome.data.push(encoded);
        }
        if client {
            outcome.client.push(&row.target);
            if extras.client_data {
                let payload = client_payload(dest, row, event, &outcome);
                outcome.client_data.push(payload);
            }
        }
    }
    if outcome.data.is_empty() && outcome.client.is_empty() {
        // Reasons are put into words only when nothing is sent: off the common path.
        return Outcome::not_sent(name, Status::Skipped, why_no_row_applied(rows, doc));
    }
    outcome
}

/// The checks before the mapping: whether the destination takes the event at all, and then whether
/// consent allows its browser side and the rows of its name (looked up once, with the paths they
/// read); or the status and reason that keep it out.
fn gate<'r>(
    routing: &'r Routing,
    event: &SourceEvent,
    source: &str,
) -> Result<(bool, &'r RowGroup), (Status, String)> {
    if routing.activation == Activation::Deactivated {
        return Err((Status::Deactivated, "the destination is deactivated".into()));
    }
    if !routing.sources.iter().any(|s| s == source) {
        return Err((
            Status::Skipped,
            format!("source `{source}` is not one of this destination's sources"),
        ));
    }
    let client_allowed = match routing.consent.verdict(event) {
        ConsentVerdict::Both => true,
        ConsentVerdict::ServerOnly => false,
        ConsentVerdict::Refused(why) => {
            let category = routing.consent.category.as_str();
            return Err((Status::Skipped, format!("consent ({category}): {why}")));
        }
    };
    let (doc, name) = (event.as_value(), event.name());
    if let Some(f) = routing.filters.iter().find(|f| f.stops(name, doc)) {
        return Err((Status::Filtered, format!("filter `{}` stopped it", f.name)));
    }
    match routing.mapping.group_for(name) {
        Some(group) => Ok((client_allowed, group)),
        None => Err((
            Status::Skipped,
            format!("no mapping row for event `{name}`"),
        )),
    }
}

/// The browser side's event object of `row`: the server copy when the row built one (the same
/// object, so both sides agree), else built now.
fn client_payload<'a>(
    dest: &'a dyn DestinationPlugin,
    row: &'a CompiledRow,
    event: &'a SourceEvent,
    outcome: &Outcome<'a>,
) -> ClientPayload<'a> {
    match (
        row.mode.includes_server(),
        outcome.data.len().checked_sub(1),
    ) {
        (true, Some(last)) => ClientPayload::Server(last),
        _ => {
            // `warnings` are the server copies': a browser-only copy's are not reported.
            let mut ignored = Vec::new();
            let fields = row.build(event.as_value(), &mut ignored);
            ClientPayload::Own(dest.encode(&row.target, event, fields, &mut ignored))
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::warning::Warning;

    #[test]
    fn write_json_writes_what_serde_json_writes() {
        let mut sent = Outcome::not_sent("tiktok", Status::Sent, String::new());
        sent.reason = None;
        sent.data = [Payload::Object(vec![("event", Payload::Str("Purchase"))])].into();
        sent.client = vec!["Purchase", "Complete\"Payment"].into();
        sent.warnings = vec![Warning {
            field: "user.phone".into(),
            message: "not a phone number",
        }];
        let mut outcomes = vec![sent];
        for status in [
            Status::Filtered,
            Status::Skipped,
            Status::Invalid,
            Status::Failed,
            Status::Deactivated,
        ] {
            outcomes.push(Outcome::not_sent("tiktok", status, "why\nnot".into()));
        }
        for o in &outcomes {
            let mut out = Vec::new();
            o.write_json(&mut out).expect("writes");
            let expected = serde_json::to_vec(o).expect("serializes");
            assert_eq!(
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(&expected)
            );
        }
    }
}
