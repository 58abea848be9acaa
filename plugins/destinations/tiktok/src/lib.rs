//! The built-in TikTok Ads destination plugin: its config, its default mapping (`mappings/tiktok.yaml`,
//! embedded by `switchyard-mappings`), the TikTok Events API v1.3 wire format (event objects and
//! batched request bodies), the pixel calls of the browser side, and the Events API transport
//! ([`transport`]).

pub mod hashed;
pub mod names;
pub mod new_customer;
pub mod personal;
pub mod transport;
pub mod types;
pub mod user_keys;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;
use switchyard_core::destination::{
    ClientActions, DEFAULT_MAPPING, DestinationCommon, DestinationPlugin, Envelope, Routing,
    Transport, TransportError,
};
use switchyard_core::event::{
    ConsentChoice, MAX_EPOCH_SECONDS, PropertyKey, SourceEvent, parse_timestamp,
};
use switchyard_core::load::{
    Checked, Diagnostic, Document, FileScope, Placer, check_file_in, check_shipped, escape,
    load_str,
};
use switchyard_core::rules::field_types;
use switchyard_core::rules::lint::{dead_paths, misspelled_events};
use switchyard_core::rules::payload::{Payload, value_is_empty};
use switchyard_core::rules::phone::Country;
use switchyard_core::rules::spec::{
    ContentIdMode, ConversionAmount, FieldMap, FieldSpec, MappingFile, ProductIdContentType, Row,
};
use switchyard_core::rules::transform::CompileContext;
use switchyard_core::rules::warning::Warning;
use switchyard_core::rules::{Pointer, mapping_schema};
use switchyard_core::secret::Secret;

/// The default mapping table, as shipped in `mappings/tiktok.yaml`.
pub const DEFAULT_MAPPING_YAML: &str = switchyard_mappings::TIKTOK;

/// The name the embedded default mapping goes by in messages.
pub const DEFAULT_MAPPING_NAME: &str = "<built-in>/mappings/tiktok.yaml";

/// The Events API endpoint that receives events.
pub const DEFAULT_ENDPOINT: &str = "https://business-api.tiktok.com/open_api/v1.3/event/track/";

/// Events per request, as TikTok documents the maximum.
pub const MAX_BATCH: usize = 1000;

/// A TikTok Ads destination (`type: tiktok`).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct TiktokConfig {
    #[serde(flatten)]
    pub common: DestinationCommon,
    /// The TikTok Pixel ID (Events Manager → your pixel): 20 upper-case letters and digits.
    #[schemars(regex(pattern = r"^[A-Z0-9]{20}$"))]
    pub pixel_id: String,
    /// The Events API access token, as `${ENV_VAR}`. Needed to send; a dry run works without it.
    pub access_token: Secret,
    /// The shop's homepage, including `https://`.
    #[schemars(regex(pattern = r"^https://[^\s/]+"))]
    pub domain: String,
    /// Which product id becomes `content_id`.
    #[serde(default)]
    pub content_id: ContentIdMode,
    /// Which amount becomes `value`.
    #[serde(default)]
    pub conversion_amount: ConversionAmount,
    /// The catalog `content_type` of a content id that is a `product_id` (the `default` mode's
    /// fallback, or the `product_id` mode): `product` (the default) or `product_group` (for a
    /// catalog whose items are variants grouped by product id). Variant and SKU ids are always
    /// `product`.
    #[serde(default)]
    pub product_id_content_type: ProductIdContentType,
    /// The code of TikTok's Test Events tool, to see the events there: no spaces, not empty.
    #[serde(default)]
    #[schemars(regex(pattern = r"^\S+$"))]
    pub test_event_code: Option<String>,
    /// The Events API URL, starting with `https://` or `http://` (change only to test against a
    /// local mock).
    #[serde(default = "default_endpoint")]
    #[schemars(regex(pattern = r"^https?://"))]
    pub endpoint: String,
    /// The URL, starting with `https://` or `http://`, of the script that loads TikTok's pixel in
    /// the browser (change only to test with a stand-in).
    #[serde(default = "default_loader")]
    #[schemars(regex(pattern = r"^https?://"))]
    pub pixel_loader_url: String,
    /// Events per request, at most 1000.
    #[serde(default = "default_batch")]
    #[schemars(range(min = 1, max = 1000))]
    pub batch_size: usize,
    /// The country of national phone numbers when the event names none (`$country_code`): an ISO
    /// 3166-1 alpha-2 code in capitals, such as `US`. Without it, a phone number without its
    /// country code is not sent.
    #[serde(default)]
    #[schemars(regex(pattern = r"^[A-Z]{2}$"))]
    pub default_country: Option<String>,
    /// TikTok's Limited Data Use flag (US state privacy laws): `never` (the default), `always`, or
    /// `from_consent` (when the event's `$consent` says `data_sale: denied`). An event's own
    /// `$limited_data_use` (true or false, in event or profile properties) wins.
    #[serde(default)]
    pub limited_data_use: LimitedDataUse,
}

/// When events carry `limited_data_use: true`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LimitedDataUse {
    #[default]
    Never,
    Always,
    /// When the event's `$consent.data_sale` is `denied`.
    FromConsent,
}

fn default_endpoint() -> String {
    DEFAULT_ENDPOINT.to_owned()
}

/// TikTok's pixel loader.
pub const DEFAULT_PIXEL_LOADER: &str = "https://analytics.tiktok.com/i18n/pixel/events.js";

fn default_loader() -> String {
    DEFAULT_PIXEL_LOADER.to_owned()
}

fn default_batch() -> usize {
    MAX_BATCH
}

/// A TikTok destination ready to route events.
#[derive(Debug)]
pub struct Tiktok {
    routing: Routing,
    config: TiktokConfig,
}

impl Tiktok {
    /// Sets the destination up: loads its mapping (the embedded default, or a file `files`
    /// resolves: relative to the config and inside its scope), applies row switches and custom events, compiles everything. `placer` and `at`
    /// place errors in the config file. With the destination, the warnings of `validate` (event
    /// names TikTok does not know or deprecated, custom events that repeat a mapping row).
    pub fn new(
        config: TiktokConfig,
        files: &FileScope,
        placer: &Placer,
        at: &Pointer,
    ) -> Result<(Self, Vec<Diagnostic>), Vec<Diagnostic>> {
        let reference = &config.common.mapping;
        let checked = load_mapping(reference, files).map_err(|message| {
            vec![placer.place(
                at.key("mapping").as_str(),
                format!("{message}; give `default` or a path relative to this config"),
            )]
        })?;
        let mut errors = checked.errors;
        let country = default_country(&config, placer, at);
        let (Some(mapping), Ok(default_country)) = (checked.document, &country) else {
            errors.extend(country.err().into_iter().flatten());
            return Err(errors);
        };
        let ctx = CompileContext {
            content_id: config.content_id,
            conversion_amount: config.conversion_amount,
            default_country: *default_country,
            product_id_content_type: config.product_id_content_type,
            field_types: Some(types::EVENT_FIELDS),
        };
        let routing = Routing::compile(&config.common, &mapping.value, ctx, at);
        if let Err(e) = &routing {
            errors.extend(
                mapping
                    .placer
                    .drop_knock_ons(mapping.placer.place_all(&e.mapping)),
            );
            errors.extend(placer.place_all(&e.config));
        }
        errors.extend(unhashed_errors(&config, &mapping, placer, at));
        let warnings = load_warnings(&config, &mapping, placer, at);
        let mut routing = match routing {
            Ok(routing) if errors.is_empty() => routing,
            // Said with the errors: a misspelled event name may be why a row is wrong.
            _ => return Err(errors.into_iter().chain(warnings).collect()),
        };
        // Mapping rows are in the mapping file; custom events in the config, under `at`.
        routing.mapping.place_rows(|pointer| {
            let file = match pointer.starts_with("/rows/") {
                true => &mapping.placer,
                false => placer,
            };
            let d = file.place(pointer, "");
            format!("{}:{}", d.file.display(), d.line)
        });
        Ok((Self { routing, config }, warnings))
    }

    pub fn config(&self) -> &TiktokConfig {
        &self.config
    }

    /// Whether `event` goes with `limited_data_use: true`: its own `$limited_data_use` (event
    /// properties, then profile properties), else the destination's setting. A flag that is no
    /// boolean is warned about: the text `"true"` or `"false"` is taken as the boolean (it is a
    /// privacy flag, not to be dropped for its spelling), anything else is not taken.
    fn limited_data_use(&self, event: &SourceEvent, warnings: &mut Vec<Warning>) -> bool {
        let said = event
            .said(PropertyKey::LimitedDataUse)
            .into_iter()
            .flatten();
        let own = said.filter(|v| !value_is_empty(v)).find_map(|found| {
            let flag = flag_of(found);
            if !found.is_boolean() {
                warnings.push(Warning {
                    field: Arc::from("$limited_data_use"),
                    message: match flag {
                        Some(_) => {
                            "text where the event spec takes a boolean: taken as the \
                                    boolean; send `true` or `false`"
                        }
                        None => {
                            "not `true` or `false`: not taken; the profile's flag or the \
                             destination's `limited_data_use` setting decides"
                        }
                    },
                });
            }
            flag
        });
        own.unwrap_or_else(|| self.limited_data_use_setting(event))
    }

    /// A mapped `limited_data_use` held to the boolean TikTok takes: text `"true"`/`"false"` is
    /// taken as the boolean; anything else is replaced by what the event and the destination's
    /// setting say ([`Tiktok::limited_data_use`]), with a warning.
    fn settle_mapped_flag(
        &self,
        value: &mut Payload<'_>,
        event: &SourceEvent,
        warnings: &mut Vec<Warning>,
    ) {
        if let Some(Value::Bool(_)) = value.as_json() {
            return;
        }
        let flag = flag_of(&value.to_value()).unwrap_or_else(|| {
            warnings.push(Warning {
                field: Arc::from("limited_data_use"),
                message: "not `true` or `false` (the mapping gave it): what the event and the \
                          destination's `limited_data_use` setting say is sent",
            });
            // Its own warnings would say again what the one above says.
            self.limited_data_use(event, &mut Vec::new())
        });
        *value = Payload::Owned(Value::Bool(flag));
    }

    fn limited_data_use_setting(&self, event: &SourceEvent) -> bool {
        match self.config.limited_data_use {
            LimitedDataUse::Never => false,
            LimitedDataUse::Always => true,
            LimitedDataUse::FromConsent => {
                // A choice that is neither granted nor denied limits too.
                matches!(
                    event.consent("data_sale"),
                    Some(ConsentChoice::Denied | ConsentChoice::Unreadable)
                )
            }
        }
    }
}

/// What `validate` warns about a TikTok destination and its mapping (findings that do not stop
/// loading): event names, a mapped `event_id`, plain HTTP, paths that never match, misspellings.
fn load_warnings(
    config: &TiktokConfig,
    mapping: &Document<MappingFile>,
    placer: &Placer,
    at: &Pointer,
) -> Vec<Diagnostic> {
    let mut warnings = name_warnings(config, mapping, placer, at);
    warnings.extend(replaced_event_id_warnings(config, mapping, placer, at));
    warnings.extend(plain_http_warnings(config, placer, at));
    let in_mapping = |pointer: &str, message| mapping.placer.place(pointer, message).warning();
    let dead = dead_paths(&mapping.raw, &[]).into_iter();
    warnings.extend(dead.map(|d| in_mapping(&d.pointer, d.message)));
    let misspelled = misspelled_events(&mapping.raw, &[]).into_iter();
    warnings.extend(misspelled.map(|d| in_mapping(&d.pointer, d.message)));
    warnings
}

/// A boolean flag: `true`, `false`, or the same as text (trimmed, any case).
fn flag_of(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(flag) => Some(*flag),
        Value::String(text) => match text.trim().to_ascii_lowercase().as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// The destination's `default_country`, checked against the phone-number library's countries.
fn default_country(
    config: &TiktokConfig,
    placer: &Placer,
    at: &Pointer,
) -> Result<Option<Country>, Vec<Diagnostic>> {
    let Some(code) = &config.default_country else {
        return Ok(None);
    };
    Country::from_code(code).map(Some).ok_or_else(|| {
        vec![placer.place(
            at.key("default_country").as_str(),
            format!("`{code}` is not a country code (ISO 3166-1 alpha-2, e.g. `US`)"),
        )]
    })
}

/// Warnings on URLs that leave the machine in plain `http`: the Events API endpoint would carry the
/// access token and customer data unencrypted, and an `http` pixel loader is blocked as mixed
/// content on an `https` shop. Loopback hosts (a local mock) are left alone.
fn plain_http_warnings(config: &TiktokConfig, placer: &Placer, at: &Pointer) -> Vec<Diagnostic> {
    let urls = [
        (
            "endpoint",
            &config.endpoint,
            "the access token and customer data would cross the network unencrypted",
        ),
        (
            "pixel_loader_url",
            &config.pixel_loader_url,
            "browsers block an `http` script on an `https` shop",
        ),
    ];
    urls.into_iter()
        .filter(|(_, url, _)| leaves_in_plain_http(url))
        .map(|(key, _, why)| {
            let message = format!("`{key}` is plain `http` to another machine: {why}; use `https`");
            placer.place(at.key(key).as_str(), message).warning()
        })
        .collect()
}

/// Whether `url` is `http` to a host other than this machine (`localhost`, `127.0.0.0/8`, `::1`).
fn leaves_in_plain_http(url: &str) -> bool {
    let Ok(url) = url::Url::parse(url) else {
        return false; // the schema refuses it
    };
    let loopback = match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    url.scheme() == "http" && !loopback
}

/// Errors for hashed matching keys (`user.email`, ...) that a mapping row, template or custom
/// event could send unhashed.
fn unhashed_errors(
    config: &TiktokConfig,
    mapping: &Document<MappingFile>,
    placer: &Placer,
    at: &Pointer,
) -> Vec<Diagnostic> {
    let in_file = hashed::in_mapping(&mapping.value)
        .into_iter()
        .map(|u| mapping.placer.place(&u.pointer, u.message));
    let custom_events = at.key("custom_events");
    let in_config = hashed::in_rows(custom_events.as_str(), &config.common.custom_events)
        .map(|u| placer.place(&u.pointer, u.message));
    in_file.chain(in_config).collect()
}

/// Warnings on event names: every row's target (mapping rows in the mapping file, custom events
/// in the config), and custom events that repeat a mapping row (named with its file and line).
fn name_warnings(
    config: &TiktokConfig,
    mapping: &Document<MappingFile>,
    placer: &Placer,
    at: &Pointer,
) -> Vec<Diagnostic> {
    let mut warnings = Vec::new();
    let rows = &mapping.value.rows;
    for (pointer, message) in repeated_rows(rows, "/rows", &mapping.placer) {
        warnings.push(mapping.placer.place(&pointer, message).warning());
    }
    let custom_at = at.key("custom_events");
    for (pointer, message) in
        repeated_rows(&config.common.custom_events, custom_at.as_str(), placer)
    {
        warnings.push(placer.place(&pointer, message).warning());
    }
    for (i, row) in mapping.value.rows.iter().enumerate() {
        if let Some(message) = names::check(&row.target, row.custom) {
            let pointer = format!("/rows/{i}/target");
            warnings.push(mapping.placer.place(&pointer, message).warning());
        }
    }
    for (i, row) in config.common.custom_events.iter().enumerate() {
        let here = at.key("custom_events").index(i);
        if let Some(message) = names::check(&row.target, row.custom) {
            let pointer = here.key("target");
            warnings.push(placer.place(pointer.as_str(), message).warning());
        }
        let repeated = mapping
            .value
            .rows
            .iter()
            .position(|r| r.source == row.source && r.target == row.target);
        if let Some(j) = repeated {
            let there = mapping.placer.place(&format!("/rows/{j}"), "");
            let message = format!(
                "this custom event repeats the mapping's row `{}` → `{}` ({}:{}): both send, so TikTok gets the event twice; switch the mapping's row off under `rows:` or drop this one",
                row.source,
                row.target,
                there.file.display(),
                there.line
            );
            warnings.push(placer.place(here.as_str(), message).warning());
        }
    }
    warnings
}

/// Rows of one list (under `at`, placed by `placer`) that repeat an earlier one: the same source
/// and target, both switched on, both without a condition, sent from a side in common. Both send,
/// so TikTok would get the event twice. Each with its pointer and the warning.
fn repeated_rows(rows: &[Row], at: &str, placer: &Placer) -> Vec<(String, String)> {
    let sides = |r: &Row| (r.mode.includes_client(), r.mode.includes_server());
    let overlap = |a: &Row, b: &Row| {
        let ((ac, as_), (bc, bs)) = (sides(a), sides(b));
        (ac && bc) || (as_ && bs)
    };
    let plain = |r: &Row| r.enabled && r.when.is_none();
    let mut found = Vec::new();
    for (j, later) in rows.iter().enumerate().filter(|(_, r)| plain(r)) {
        let earlier = rows[..j].iter().position(|r| {
            plain(r) && r.source == later.source && r.target == later.target && overlap(r, later)
        });
        if let Some(i) = earlier {
            let there = placer.place(&format!("{at}/{i}"), "");
            let message = format!(
                "this row repeats `{}` → `{}` ({}:{}): both send, so TikTok gets the event twice; \
                 drop one, or give each a `when`",
                later.source,
                later.target,
                there.file.display(),
                there.line
            );
            found.push((format!("{at}/{j}"), message));
        }
    }
    found
}

/// Warnings on fields that build `event_id` from anything but the event's own (`$.event_id`), in
/// the mapping file (templates and rows) and in custom events: `encode` always sends the source
/// event's `event_id`, on the server as in the pixel, so that TikTok de-duplicates the two copies,
/// and such a field is never sent.
fn replaced_event_id_warnings(
    config: &TiktokConfig,
    mapping: &Document<MappingFile>,
    placer: &Placer,
    at: &Pointer,
) -> Vec<Diagnostic> {
    const REPLACED: &str = "`event_id` is always the source event's `event_id`, sent by the \
                            server and the pixel alike so that TikTok de-duplicates the two \
                            copies: this field is never sent; remove it";
    let replaced = |fields: &FieldMap| {
        fields
            .get("event_id")
            .is_some_and(|f| !reads_own_event_id(f))
    };
    let file = &mapping.value;
    let templates = file.templates.iter().filter(|(_, fields)| replaced(fields));
    let rows = file
        .rows
        .iter()
        .enumerate()
        .filter(|(_, row)| replaced(&row.fields));
    let custom = config.common.custom_events.iter().enumerate();
    let in_file = templates
        .map(|(name, _)| format!("/templates/{}/event_id", escape(name)))
        .chain(rows.map(|(i, _)| format!("/rows/{i}/fields/event_id")))
        .map(|pointer| mapping.placer.place(&pointer, REPLACED).warning());
    let in_config = custom
        .filter(|(_, row)| replaced(&row.fields))
        .map(|(i, _)| {
            let pointer = at
                .key("custom_events")
                .index(i)
                .key("fields")
                .key("event_id");
            placer.place(pointer.as_str(), REPLACED).warning()
        });
    in_file.chain(in_config).collect()
}

/// Whether `field` reads the event's own `event_id` as it is: what is sent anyway.
fn reads_own_event_id(field: &FieldSpec) -> bool {
    let own = |path: &str| matches!(path, "$.event_id" | "$['event_id']" | "$[\"event_id\"]");
    match field {
        FieldSpec::Path(path) => own(path),
        FieldSpec::Rule(rule) => rule.path.as_deref().is_some_and(own) && rule.transform.is_empty(),
    }
}

/// The default mapping, parsed (for tests and docs).
pub fn default_mapping() -> Result<MappingFile, Vec<Diagnostic>> {
    default_document().map(|d| d.value)
}

fn default_document() -> LoadedMapping {
    load_str(
        Path::new(DEFAULT_MAPPING_NAME),
        DEFAULT_MAPPING_YAML,
        mapping_schema(),
    )
}

/// The mapping `reference` names: the embedded default, or a file in the config's scope (else
/// why not, as the outer error); the inner result is the loading's.
type LoadedMapping = Result<Document<MappingFile>, Vec<Diagnostic>>;

fn load_mapping(reference: &str, files: &FileScope) -> Result<Checked<MappingFile>, String> {
    if reference == DEFAULT_MAPPING {
        return Ok(check_shipped(
            Path::new(DEFAULT_MAPPING_NAME),
            DEFAULT_MAPPING_YAML,
        ));
    }
    let file = files.resolve(reference)?;
    Ok(check_file_in(&file, mapping_schema(), files))
}

impl DestinationPlugin for Tiktok {
    fn routing(&self) -> &Routing {
        &self.routing
    }

    /// The payload with `event` (the target name). `event_id` is always the source event's id (the
    /// pixel/server de-duplication key), even when a custom mapping leaves it out or maps it from
    /// elsewhere. The fields TikTok types were checked as they were built ([`types`]); a
    /// `contents` entry without its id and a `Placed Order` without its first-order flag are
    /// warned about ([`new_customer`]).
    fn encode<'a>(
        &'a self,
        target: &'a str,
        event: &'a SourceEvent,
        mut fields: Vec<(&'a str, Payload<'a>)>,
        warnings: &mut Vec<Warning>,
    ) -> Payload<'a> {
        let (mut has_id, mut has_time, mut has_limited) = (false, false, false);
        for (key, value) in fields.iter_mut() {
            match *key {
                // The source event's id whatever the mapping put there: the pixel's copy carries
                // it, and TikTok de-duplicates the two copies only when both do.
                "event_id" => (has_id, *value) = (true, Payload::Str(event.id())),
                "event_time" => {
                    has_time = true;
                    settle_mapped_time(value, event, warnings);
                }
                "limited_data_use" => {
                    has_limited = true;
                    self.settle_mapped_flag(value, event, warnings);
                }
                "properties" => types::warn_missing_ids(value, warnings),
                _ => {}
            }
        }
        new_customer::check(event, warnings);
        let head = [
            Some(("event", Payload::Str(target))),
            (!has_id).then(|| ("event_id", Payload::Str(event.id()))),
            (!has_time).then(|| ("event_time", Payload::Owned(event.timestamp().into()))),
        ];
        // Added at the end and turned to the front: the mapped fields move once, however many
        // of the three go before them.
        let mapped = fields.len();
        fields.extend(head.into_iter().flatten());
        let added = fields.len() - mapped;
        fields.rotate_right(added);
        if !has_limited && self.limited_data_use(event, warnings) {
            fields.push(("limited_data_use", Payload::Owned(Value::Bool(true))));
        }
        Payload::Object(fields)
    }

    /// What a payload plugin returned, held to the types TikTok takes ([`types::EVENT_FIELDS`],
    /// [`types::RETURNED_FIELDS`], [`settle_returned_time`]), to the keys of its `user` object
    /// ([`user_keys`]) and to its hashed keys ([`hashed::settle_returned`]), as the mapping's own
    /// objects are.
    fn settle_returned(
        &self,
        object: &mut Value,
        event: &SourceEvent,
        warnings: &mut Vec<Warning>,
    ) {
        if let Value::Object(fields) = object {
            settle_returned_time(fields, event, warnings);
            field_types::check_fields(fields, types::EVENT_FIELDS, warnings);
            field_types::check_fields(fields, types::RETURNED_FIELDS, warnings);
            user_keys::settle_returned(fields, warnings);
            hashed::settle_returned(fields, warnings);
        }
    }

    fn max_batch(&self) -> usize {
        self.config.batch_size.clamp(1, MAX_BATCH)
    }

    fn envelope(&self) -> Envelope {
        let mut fields = serde_json::Map::new();
        fields.insert("event_source".into(), "web".into());
        fields.insert(
            "event_source_id".into(),
            self.config.pixel_id.as_str().into(),
        );
        if let Some(code) = &self.config.test_event_code {
            fields.insert("test_event_code".into(), code.as_str().into());
        }
        Envelope {
            fields,
            events_key: "data",
        }
    }

    fn transport(&self) -> Result<Box<dyn Transport>, TransportError> {
        Ok(Box::new(transport::EventsApi::new(&self.config)?))
    }

    /// `ttq.identify` with the hashed identifiers the server side sends (when there are any), then
    /// per event object `ttq.track(event, properties, {event_id})`: the same name and `event_id` as
    /// the server copy, so TikTok counts the event once. Page views too: `ttq.page()` takes no
    /// `event_id` and reports `Pageview`, which never de-duplicates with the server's `PageView`.
    fn client_actions(&self, event: &SourceEvent, payloads: &[Value]) -> Option<ClientActions> {
        let mut calls = Vec::new();
        let user = payloads.iter().find_map(|p| p.get("user"));
        let mut identify = serde_json::Map::new();
        for (from, to) in [
            ("email", "email"),
            ("phone", "phone_number"),
            ("external_id", "external_id"),
        ] {
            // The pixel takes one value per key: the first of a list.
            let value = user.and_then(|u| u.get(from));
            let first = value.and_then(|v| v.as_array().map_or(Some(v), |list| list.first()));
            if let Some(v) = first {
                identify.insert(to.to_owned(), v.clone());
            }
        }
        if !identify.is_empty() {
            calls.push(json!(["identify", identify]));
        }
        for p in payloads {
            let Some(name) = p.get("event").and_then(Value::as_str) else {
                continue;
            };
            let properties = p.get("properties").cloned().unwrap_or_else(|| json!({}));
            // The payload's own id: the server copy's, also when a payload plugin changed it.
            let id = p
                .get("event_id")
                .and_then(Value::as_str)
                .unwrap_or(event.id());
            calls.push(json!(["track", name, properties, {"event_id": id}]));
        }
        Some(ClientActions {
            destination: self.routing.name.to_string(),
            pixel_id: self.config.pixel_id.clone(),
            loader: self.config.pixel_loader_url.clone(),
            calls,
        })
    }

    fn dry_run_request(&self, body: Value) -> Value {
        let token = format!("${{{}}} (redacted)", self.config.access_token.var());
        json!({
            "method": "POST",
            "url": self.config.endpoint,
            "headers": {"Access-Token": token, "Content-Type": "application/json"},
            "body": body,
        })
    }
}

/// The `event_time` a payload plugin returned, in the whole unix seconds TikTok takes: read as an
/// event's `timestamp` is ([`parse_timestamp`]: ISO-8601 text with a timezone, or epoch seconds
/// from 1970, as a number or as text). One event without a valid time fails TikTok's whole
/// request, so a time that is none of these (milliseconds, a fraction, text that is no time), or
/// none at all, is replaced by the event's own, with a warning.
fn settle_returned_time(
    fields: &mut serde_json::Map<String, Value>,
    event: &SourceEvent,
    warnings: &mut Vec<Warning>,
) {
    let seconds = match fields.get("event_time") {
        None | Some(Value::Null) => {
            Err("missing (a payload plugin left it out): the event's own time is sent")
        }
        Some(time) => returned_seconds(time).ok_or(
            "not a time TikTok takes (a payload plugin returned it): unix seconds from 1970, or \
             ISO-8601 text with a timezone; the event's own time is sent",
        ),
    };
    let seconds = seconds_or_own(seconds, event, warnings);
    // Written in place where the object has the field: no new key to allocate.
    match fields.get_mut("event_time") {
        Some(time) => *time = Value::from(seconds),
        None => {
            fields.insert("event_time".into(), Value::from(seconds));
        }
    }
}

/// A mapped `event_time` held to what TikTok takes, as a returned one is
/// ([`settle_returned_time`]): unix seconds are sent as they are (the default mapping's, from the
/// event's checked `timestamp`, with no further test); ISO-8601 text with a timezone and seconds
/// as text are converted; anything else (milliseconds, a fraction, an object) is replaced by the
/// event's own time, with a warning, as TikTok would refuse the whole request for it.
fn settle_mapped_time(time: &mut Payload<'_>, event: &SourceEvent, warnings: &mut Vec<Warning>) {
    if let Some(Value::Number(n)) = time.as_json()
        && n.as_i64()
            .is_some_and(|s| (0..MAX_EPOCH_SECONDS).contains(&s))
    {
        return;
    }
    let seconds = returned_seconds(&time.to_value()).ok_or(
        "not a time TikTok takes (the mapping gave it): unix seconds from 1970, or ISO-8601 text \
         with a timezone; the event's own time is sent",
    );
    *time = Payload::Owned(seconds_or_own(seconds, event, warnings).into());
}

/// The seconds of an `event_time` that is one, else the event's own time, with the warning that
/// says why on `event_time` ([`settle_returned_time`], [`settle_mapped_time`]).
fn seconds_or_own(
    seconds: Result<i64, &'static str>,
    event: &SourceEvent,
    warnings: &mut Vec<Warning>,
) -> i64 {
    seconds.unwrap_or_else(|message| {
        warnings.push(Warning {
            field: Arc::from("event_time"),
            message,
        });
        event.timestamp()
    })
}

/// A returned `event_time` as unix seconds, when it is one ([`settle_returned_time`]).
fn returned_seconds(time: &Value) -> Option<i64> {
    let number = match time {
        Value::String(text) => text.trim().parse::<serde_json::Number>().ok(),
        _ => None,
    };
    match number {
        Some(n) => parse_timestamp(&Value::Number(n)),
        None => parse_timestamp(time),
    }
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_default_passes_the_whole_check_and_loads_as_it_does_unchecked() {
        // Runs load the default without its schema (`check_shipped`); this is where it is checked.
        let checked = default_document().expect("the default mapping passes every check");
        let shipped = load_mapping(DEFAULT_MAPPING, &FileScope::new(Path::new("."), &[]));
        let shipped = shipped.expect("the default needs no file").into_result();
        let shipped = shipped.expect("the shipped default loads");
        assert_eq!(shipped.raw, checked.raw);
        assert_eq!(
            format!("{:?}", shipped.value),
            format!("{:?}", checked.value)
        );
        // Later findings are placed in the shipped text as the checked document places them.
        let pointer = "/templates/event/event_id";
        let placed = |doc: &Document<MappingFile>| {
            let d = doc.placer.place(pointer, "x");
            (d.file, d.line, d.column, d.path)
        };
        assert_eq!(placed(&shipped), placed(&checked));
        let line = DEFAULT_MAPPING_YAML
            .lines()
            .position(|l| l.contains("event_id: \"$.event_id\""));
        assert_eq!(Some(placed(&shipped).1), line.map(|at| at + 1));
    }

    #[test]
    fn plain_http_is_flagged_unless_it_stays_on_this_machine() {
        for url in [
            "http://business-api.tiktok.com/open_api/v1.3/event/track/",
            "HTTP://10.0.0.5:8080/track",
            "http://localhost.example.com/",
        ] {
            assert!(leaves_in_plain_http(url), "{url}");
        }
        for url in [
            DEFAULT_ENDPOINT,
            DEFAULT_PIXEL_LOADER,
            "http://127.0.0.1:9/track",
            "http://127.8.0.1/",
            "http://LocalHost:8080/",
            "http://[::1]:8080/",
        ] {
            assert!(!leaves_in_plain_http(url), "{url}");
        }
    }

    /// A `Placed Order` whose own time is 1725280000, with nothing else.
    fn order_at_1725280000() -> SourceEvent {
        SourceEvent::from_json(
            r#"{"event_name":"Placed Order","event_id":"o-1","timestamp":1725280000,
                "properties":{},"profile_properties":{},"aliases":["urn:cart_token:c1"]}"#,
            0,
        )
        .expect("a valid event")
    }

    #[test]
    fn a_returned_time_is_sent_in_whole_seconds_or_the_events_own_is() {
        let event = order_at_1725280000();
        let settled = |time: Option<Value>| {
            let mut fields = serde_json::Map::new();
            if let Some(time) = time {
                fields.insert("event_time".into(), time);
            }
            let mut warnings = Vec::new();
            settle_returned_time(&mut fields, &event, &mut warnings);
            (fields["event_time"].clone(), warnings.len())
        };
        let sent = |time: Value| settled(Some(time));
        for read in [
            json!("2024-09-02T14:00:00+02:00"),
            json!(" 2024-09-02T12:00:00Z "),
            json!("1725278400"),
            json!(1725278400),
            json!(1725278400.0),
            json!("1725278400.0"),
        ] {
            assert_eq!(sent(read.clone()), (json!(1725278400), 0), "{read}");
        }
        for refused in [
            json!("yesterday"),
            json!("2024-09-02T12:00:00"),
            json!("1969-12-31T23:59:59Z"),
            json!(1725278400000_i64),
            json!("1725278400000"),
            json!(1725278400.5),
            json!(-5),
            json!(1e300),
            json!(true),
            json!({}),
            json!(""),
        ] {
            assert_eq!(sent(refused.clone()), (json!(1725280000), 1), "{refused}");
        }
        assert_eq!(settled(None), (json!(1725280000), 1));
        assert_eq!(sent(Value::Null), (json!(1725280000), 1));
    }

    #[test]
    fn a_mapped_time_is_sent_in_whole_seconds_or_the_events_own_is() {
        let event = order_at_1725280000();
        let sent = |time: Payload<'_>| {
            let mut time = time;
            let mut warnings = Vec::new();
            settle_mapped_time(&mut time, &event, &mut warnings);
            (time.to_value(), warnings.len())
        };
        let text = "2024-09-02T14:00:00+02:00";
        for read in [
            Payload::Owned(json!(1725278400)),
            Payload::Str(text),
            Payload::Owned(json!("1725278400")),
            Payload::Owned(json!(1725278400.0)),
        ] {
            assert_eq!(sent(read.clone()), (json!(1725278400), 0), "{read:?}");
        }
        for refused in [
            json!(1725278400000_i64),
            json!("soon"),
            json!({"a": 1}),
            json!([1725278400]),
            json!(-5),
        ] {
            let read = Payload::Owned(refused.clone());
            assert_eq!(sent(read), (json!(1725280000), 1), "{refused}");
        }
    }

    #[test]
    fn default_mapping_loads_and_has_every_seed_row() {
        let m = default_mapping().unwrap();
        let pairs: Vec<(&str, &str)> = m
            .rows
            .iter()
            .map(|r| (r.source.as_str(), r.target.as_str()))
            .collect();
        for expected in [
            ("$page_load", "PageView"),
            ("Viewed Product", "ViewContent"),
            ("Viewed Collection", "ViewContent"),
            ("Added To Cart", "AddToCart"),
            ("Started Checkout", "InitiateCheckout"),
            ("Added Payment Info", "AddPaymentInfo"),
            ("Placed Order", "Purchase"),
            ("Started Subscription", "Subscribe"),
            (
                "Placed Recurring Subscription Order",
                "RecurringSubscriptionPaymentSucceeded",
            ),
            ("Cancelled Subscription", "CancelSubscription"),
            ("Activated Subscription", "Subscribe"),
            ("Searched", "Search"),
            ("Subscribed To Newsletter", "CompleteRegistration"),
            ("Placed Order", "NewCustomerPurchase"),
        ] {
            assert!(pairs.contains(&expected), "missing row {expected:?}");
        }
        assert_eq!(pairs.len(), 14);
    }
}
