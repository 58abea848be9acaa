//! What every destination shares, and the trait a destination plugin implements.
//!
//! A destination's YAML config flattens [`DestinationCommon`] (name, status, sources, mapping, row
//! switches, custom events, filters, consent, transform plugins, delivery settings) beside its own
//! fields. [`Routing::compile`] turns the common part into the compiled form the router uses; the
//! plugin supplies its wire format and its [`Transport`] through [`DestinationPlugin`].

mod consent;
mod delivery;
mod filter;
mod transport;

pub use consent::{Consent, ConsentCategory, ConsentMode, ConsentVerdict};
pub use delivery::Delivery;
pub use filter::{CompiledFilter, Filter, FilterRule};
pub use transport::{
    Envelope, EventText, Others, Refusal, RequestBody, SendError, Sending, Transport,
    TransportError,
};

use crate::event::SourceEvent;
use crate::plugin_config::PluginConfig;
use crate::rules::compile::{CompiledMapping, MappingCompiler};
use crate::rules::payload::Payload;
use crate::rules::spec::{MappingFile, Mode, Row};
use crate::rules::transform::CompileContext;
use crate::rules::warning::Warning;
use crate::rules::{CompileError, Pointer};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;

/// Whether a destination forwards anything.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    #[default]
    Active,
    /// Configured, checked, but forwards nothing (e.g. while old tracking is being removed).
    Deactivated,
}

/// Settings every destination has.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct DestinationCommon {
    /// A unique name for this destination (used in output, metrics and logs).
    pub name: String,
    /// `active` forwards; `deactivated` forwards nothing.
    #[serde(default)]
    pub status: Activation,
    /// The sources (by name) this destination forwards events from.
    #[schemars(length(min = 1))]
    pub sources: Vec<String>,
    /// `default` for the built-in mapping table, or a path to a mapping file (relative to this
    /// config file) to use instead.
    #[serde(default = "default_mapping")]
    pub mapping: String,
    /// Switch rows of the mapping on or off, or change their forwarding mode.
    #[serde(default)]
    pub rows: Vec<RowSwitch>,
    /// Extra rows: any source event name (spec or custom) to any destination event name.
    #[serde(default)]
    pub custom_events: Vec<Row>,
    /// Conditions that keep events from this destination.
    #[serde(default)]
    pub filters: Vec<Filter>,
    /// Which consent category gates this destination, and how.
    #[serde(default)]
    pub consent: Consent,
    /// WebAssembly plugins run in order on the events this destination gets, before its mapping.
    #[serde(default)]
    pub transforms: Vec<PluginConfig>,
    /// WebAssembly plugins run in order on each platform payload (the API's event object), after
    /// the mapping.
    #[serde(default)]
    pub payload_transforms: Vec<PluginConfig>,
    /// Rate and concurrency limits, timeout and retries of `serve` and `replay`.
    #[serde(default)]
    pub delivery: Delivery,
}

fn default_mapping() -> String {
    DEFAULT_MAPPING.to_owned()
}

/// The value of `mapping` that selects the destination's built-in table.
pub const DEFAULT_MAPPING: &str = "default";

/// A change to the rows of the mapping that match `source` (and `target`, when given).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RowSwitch {
    /// The source event name of the rows to change.
    pub source: String,
    /// Only the row with this destination event name (all rows of the source when absent).
    #[serde(default)]
    pub target: Option<String>,
    /// Switch the rows on or off.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Change where the rows are sent from.
    #[serde(default)]
    pub mode: Option<Mode>,
}

/// What is wrong with `switch` given after `earlier`: it changes nothing, or it names the same rows
/// as an earlier switch (the later would silently win where they disagree).
fn switch_conflict(earlier: &[RowSwitch], switch: &RowSwitch) -> Option<String> {
    if switch.enabled.is_none() && switch.mode.is_none() {
        return Some(
            "this row switch gives neither `enabled` nor `mode`: it changes nothing".into(),
        );
    }
    let j = earlier
        .iter()
        .position(|e| e.source == switch.source && e.target == switch.target)?;
    Some(format!(
        "this row switch names the same rows as `rows[{j}]` (`{}`{}): give one switch for them",
        switch.source,
        switch
            .target
            .as_ref()
            .map(|t| format!(" → `{t}`"))
            .unwrap_or_default()
    ))
}

/// Errors of a destination's setup, by the file they belong to.
#[derive(Debug, Default)]
pub struct SetupErrors {
    /// Placed in the mapping file.
    pub mapping: Vec<CompileError>,
    /// Placed in the config file, under the destination.
    pub config: Vec<CompileError>,
}

impl SetupErrors {
    pub fn is_empty(&self) -> bool {
        self.mapping.is_empty() && self.config.is_empty()
    }
}

/// The compiled common part of a destination: everything the router needs.
#[derive(Debug, Clone)]
pub struct Routing {
    pub name: Arc<str>,
    pub activation: Activation,
    pub sources: Vec<String>,
    pub filters: Vec<CompiledFilter>,
    pub consent: Consent,
    pub mapping: CompiledMapping,
}

impl Routing {
    /// Compiles the mapping file with the destination's row switches and custom events applied.
    /// `at` is the destination's pointer in the config file.
    pub fn compile(
        common: &DestinationCommon,
        mapping_file: &MappingFile,
        ctx: CompileContext,
        at: &Pointer,
    ) -> Result<Self, SetupErrors> {
        let mut errors = SetupErrors::default();
        let rows = switched_rows(common, mapping_file, at, &mut errors);
        let mapping = compile_mapping(common, mapping_file, &rows, ctx, at, &mut errors);
        let mut filters = Vec::with_capacity(common.filters.len());
        for (i, f) in common.filters.iter().enumerate() {
            match CompiledFilter::compile(f, &at.key("filters").index(i)) {
                Ok(f) => filters.push(f),
                Err(e) => errors.config.extend(e),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Self {
            name: common.name.as_str().into(),
            activation: common.status,
            sources: common.sources.clone(),
            filters,
            consent: common.consent,
            mapping,
        })
    }
}

/// The mapping file's rows with the destination's row switches (`rows`: `enabled`, `mode`)
/// applied. A switch that conflicts with an earlier one, or matches no row, is an error.
fn switched_rows(
    common: &DestinationCommon,
    mapping_file: &MappingFile,
    at: &Pointer,
    errors: &mut SetupErrors,
) -> Vec<Row> {
    let mut rows = mapping_file.rows.clone();
    for (i, switch) in common.rows.iter().enumerate() {
        if let Some(message) = switch_conflict(&common.rows[..i], switch) {
            errors.config.push(at.key("rows").index(i).error(message));
        }
        let matching: Vec<&mut Row> = rows
            .iter_mut()
            .filter(|r| {
                r.source == switch.source && switch.target.as_ref().is_none_or(|t| *t == r.target)
            })
            .collect();
        if matching.is_empty() {
            let names: Vec<&str> = mapping_file
                .rows
                .iter()
                .map(|r| r.source.as_str())
                .collect();
            let hint = crate::load::did_you_mean(&switch.source, &names);
            errors.config.push(at.key("rows").index(i).error(format!(
                "no row of the mapping maps `{}`{}; {hint}to add one, use `custom_events`",
                switch.source,
                switch.target.as_ref().map(|t| format!(" to `{t}`")).unwrap_or_default()
            )));
        }
        for row in matching {
            row.enabled = switch.enabled.unwrap_or(row.enabled);
            row.mode = switch.mode.unwrap_or(row.mode);
        }
    }
    rows
}

/// The mapping's `rows`, then the destination's `custom_events`, compiled. The errors of a row of
/// the mapping file go with the mapping's, those of a custom event with the config's.
fn compile_mapping(
    common: &DestinationCommon,
    mapping_file: &MappingFile,
    rows: &[Row],
    ctx: CompileContext,
    at: &Pointer,
    errors: &mut SetupErrors,
) -> CompiledMapping {
    let mut mapping = CompiledMapping::default();
    let (compiler, template_errors) = MappingCompiler::new(mapping_file, ctx);
    errors.mapping.extend(template_errors);
    let rows_at = Pointer::root().key("rows");
    for (i, row) in rows.iter().enumerate() {
        match compiler.row(row, &rows_at.index(i)) {
            Ok(r) => mapping.push(r),
            Err(e) => errors.mapping.extend(e),
        }
    }
    let custom_at = at.key("custom_events");
    for (i, row) in common.custom_events.iter().enumerate() {
        match compiler.row(row, &custom_at.index(i)) {
            Ok(r) => mapping.push(r),
            Err(e) => errors.config.extend(e),
        }
    }
    mapping
}

/// A destination plugin (TikTok is the built-in one): its compiled routing plus its platform's
/// wire format and transport. The service bundles it with the destination's transform plugins and
/// delivery settings; nothing outside the plugin knows the platform by name.
pub trait DestinationPlugin: Send + Sync {
    /// The compiled common settings and mapping.
    fn routing(&self) -> &Routing;

    /// Turns a row's payload fields into the platform's event object. `fields` arrive with room
    /// for four more (`rules::compile`'s `ENCODE_ROOM`): adding up to four fields does not allocate.
    /// What the platform would refuse or should know about (a field of the wrong type, left out)
    /// goes to `warnings`, beside the mapping's own.
    fn encode<'a>(
        &'a self,
        target: &'a str,
        event: &'a SourceEvent,
        fields: Vec<(&'a str, Payload<'a>)>,
        warnings: &mut Vec<Warning>,
    ) -> Payload<'a>;

    /// Holds an event object a payload plugin returned (`payload_transforms`) for `event` to what
    /// the platform takes, as the mapping's own objects are held when built and at load: what
    /// converts is converted, anything else left out (or, where the platform needs the field,
    /// taken from `event` again), each with a warning in `warnings`. By default nothing is
    /// checked.
    fn settle_returned(
        &self,
        _object: &mut Value,
        _event: &SourceEvent,
        _warnings: &mut Vec<Warning>,
    ) {
    }

    /// Event objects per request at most (the configured batch size, within the platform's limit).
    fn max_batch(&self) -> usize;

    /// What the platform's request bodies hold beside their events. Bodies never hold secrets:
    /// those travel in headers.
    fn envelope(&self) -> Envelope;

    /// The API request body that carries `events` (at most [`DestinationPlugin::max_batch`]), as
    /// a value (what a dry run shows).
    fn request_body(&self, events: Vec<Value>) -> Value {
        let Envelope {
            mut fields,
            events_key,
        } = self.envelope();
        fields.insert(events_key.to_owned(), Value::Array(events));
        Value::Object(fields)
    }

    /// The same body, serialized, from serialized events: what delivery sends.
    fn serialized_body(&self, events: &[EventText]) -> RequestBody {
        RequestBody::new(&self.envelope(), events)
    }

    /// What a dry run shows of the request that carries `body`: method, URL, headers with every
    /// secret replaced by the name of the variable it comes from, and the body.
    fn dry_run_request(&self, body: Value) -> Value;

    /// The transport that sends request bodies. Fails when something only sending needs (an
    /// access token) is missing; dry runs never call it.
    fn transport(&self) -> Result<Box<dyn Transport>, TransportError>;

    /// The browser side of one event: which pixel to load and the calls that fire the event, from
    /// the event objects its client rows built, after the destination's payload plugins
    /// (`Outcome::client_payloads`): the calls carry what these objects carry (name, `event_id`,
    /// properties, hashed identifiers), so they agree with the server copy field by field.
    /// `None` when the destination has no browser side.
    fn client_actions(&self, _event: &SourceEvent, _payloads: &[Value]) -> Option<ClientActions> {
        None
    }
}

/// What the browser script does for one destination and one event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClientActions {
    /// The destination's name.
    pub destination: String,
    /// The pixel to load (once per page), and the script that loads it.
    pub pixel_id: String,
    pub loader: String,
    /// Calls on the pixel's object, each `[method, ...arguments]` (e.g. `["track", "AddToCart",
    /// {...}, {"event_id": "..."}]`).
    pub calls: Vec<Value>,
}
