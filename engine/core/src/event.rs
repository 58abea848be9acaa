//! The source event: parsing one event of the event spec, checking its envelope, and normalising it.
//!
//! A [`SourceEvent`] is only ever built from input that passed every envelope rule, so the rest of the
//! engine can rely on `event_name`, `event_id`, `properties`, `profile_properties`, `aliases` and an
//! integer `timestamp` (unix seconds) being present with the right types. The browser's camelCase
//! spellings (`eventID`, `profileProperties`, ...) are renamed to the snake_case ones, so rules address
//! one spelling only.

use crate::{json_field, json_text, json_unique};
use chrono::DateTime;
use serde_json::{Map, Value};

/// Why an input event was refused. The message names the field and what was expected; it never
/// echoes field values, which may hold personal data.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EventError {
    #[error("not valid JSON: {0}")]
    NotJson(String),
    /// Valid JSON that an event cannot hold: a number, a depth or an escape past what is read.
    #[error("{0}")]
    Unreadable(String),
    /// An object gives a key twice (which copy is meant is not ours to guess).
    #[error("{0}")]
    RepeatedKey(String),
    #[error("an event must be a JSON object, found {0}")]
    NotObject(&'static str),
    #[error("`{0}` is missing")]
    Missing(&'static str),
    #[error("`{field}` must be {expected}, found {found}")]
    WrongType {
        field: &'static str,
        expected: &'static str,
        found: &'static str,
    },
    #[error("`{field}`: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("both `{0}` and `{1}` are given; send one spelling")]
    BothSpellings(&'static str, &'static str),
}

/// One validated, normalised event of the source spec.
#[derive(Debug, Clone)]
pub struct SourceEvent {
    value: Value,
    /// The event's own JSON text, when known: the text it was parsed from, kept (by
    /// [`SourceEvent::from_json_keeping_text`]) with what normalising changed written into it
    /// (renamed keys, the timestamp), or the text [`SourceEvent::keep_text`] gave back; so that
    /// it can be handed on (to a plugin, to the queue) without serializing.
    text: Option<String>,
    /// Which [`PropertyKey`]s the event's properties hold, noted when it was normalised.
    held: HeldKeys,
    /// The `timestamp` field's value (unix seconds), noted when the event was normalised.
    timestamp: i64,
}

/// A key of the event's properties that every event's path reads and most events leave out. Which
/// of them an event holds is noted once, when it is normalised, so that [`SourceEvent::said`]
/// answers the usual event (without them) with no search of its maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PropertyKey {
    /// `$consent`: the visitor's consent choices.
    Consent,
    /// `$limited_data_use`: the event's own limited-data-use flag.
    LimitedDataUse,
}

impl PropertyKey {
    const ALL: [PropertyKey; 2] = [PropertyKey::Consent, PropertyKey::LimitedDataUse];

    pub fn name(self) -> &'static str {
        match self {
            PropertyKey::Consent => "$consent",
            PropertyKey::LimitedDataUse => "$limited_data_use",
        }
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// The [`PropertyKey`]s found in an event's `properties` or `profile_properties`, as bits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct HeldKeys(u8);

impl HeldKeys {
    fn of(places: [Option<&Value>; 2]) -> Self {
        let mut held = 0;
        for map in places.iter().filter_map(|p| p.and_then(Value::as_object)) {
            for key in PropertyKey::ALL {
                if map.contains_key(key.name()) {
                    held |= key.bit();
                }
            }
        }
        HeldKeys(held)
    }

    fn has(self, key: PropertyKey) -> bool {
        self.0 & key.bit() != 0
    }
}

/// Events are equal when their content is; the kept text does not count.
impl PartialEq for SourceEvent {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

/// The spellings an event may give the top-level field `field`: its own, then the browser's
/// camelCase ones (`event_id`: `eventID`, `eventId`).
pub fn spellings(field: &'static str) -> impl Iterator<Item = &'static str> {
    let camel = ALIASED_FIELDS
        .iter()
        .filter(move |(_, snake)| *snake == field)
        .map(|(camel, _)| *camel);
    std::iter::once(field).chain(camel)
}

/// The browser's camelCase spellings and the canonical names they become.
const ALIASED_FIELDS: [(&str, &str); 4] = [
    ("eventName", "event_name"),
    ("eventID", "event_id"),
    ("eventId", "event_id"),
    ("profileProperties", "profile_properties"),
];

/// At most this many aliases per event, as the spec says.
const MAX_ALIASES: usize = 10;

/// The longest `event_id` and `event_name`, in bytes (UTF-8). Ids are order numbers, UUIDs,
/// hashes: far shorter. The cap keeps what an event costs to de-duplicate and to forward bounded.
pub const MAX_IDENTIFIER_BYTES: usize = 256;

/// The longest alias (`urn:<kind>:<value>`), in bytes: room for a 254-byte e-mail address.
pub const MAX_ALIAS_BYTES: usize = 512;

/// Epoch values above this are taken to be milliseconds sent by mistake (year 5138 in seconds).
pub const MAX_EPOCH_SECONDS: i64 = 100_000_000_000;

/// Why `seconds`, a time received given by hand (`map --now`, a test file's `now`), is refused:
/// it is not unix seconds from 0 to [`MAX_EPOCH_SECONDS`]. `None` when it is.
pub fn received_at_refusal(seconds: i64) -> Option<String> {
    if (0..MAX_EPOCH_SECONDS).contains(&seconds) {
        return None;
    }
    // Only a time too large can be milliseconds.
    let hint = if seconds < 0 {
        ""
    } else {
        " (milliseconds? divide by 1000)"
    };
    Some(format!(
        "{seconds} is not unix seconds from 0 to {MAX_EPOCH_SECONDS}{hint}"
    ))
}

/// An event's JSON text parsed, every object's keys checked for repeats ([`json_unique`]).
pub fn parse_json(text: &str) -> Result<Value, EventError> {
    json_unique::from_str(text).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => EventError::RepeatedKey(placed(&e)),
        // Invisible too: a file's mark, left inside by joining files (`cat a.ndjson b.ndjson`).
        _ if text.starts_with('\u{feff}') => EventError::NotJson(
            "it opens with a byte-order mark (U+FEFF), which JSON does not take: were files \
             joined? remove the mark"
                .to_owned(),
        ),
        // Blank to the eye, so said plainly: serde_json's "expected value" would not tell why.
        _ if text.chars().all(char::is_whitespace)
            && text.chars().any(|c| !matches!(c, ' ' | '\t' | '\n' | '\r')) =>
        {
            EventError::NotJson(
                "only white space, of a kind JSON does not take (such as a no-break space, a form \
             feed or U+2028)"
                    .to_owned(),
            )
        }
        _ => match past_limits(&e, text) {
            Some(what) => EventError::Unreadable(placed_as(&e, what)),
            None => EventError::NotJson(placed(&e)),
        },
    })
}

/// What JSON allows but an event cannot hold, said plainly where serde_json's words mislead: a
/// number past 64-bit floats (`1e999`: "number out of range"), nesting past 127 levels
/// ("recursion limit exceeded"), and a `\u` escape of half a surrogate pair, which is no character
/// (`"\ud800"`: "unexpected end of hex escape"; `"\udc00"`: "lone leading surrogate").
fn past_limits(e: &serde_json::Error, text: &str) -> Option<&'static str> {
    let message = e.to_string();
    if message.starts_with("number out of range") {
        return Some(
            "a number past the largest an event may hold (64-bit floats, about ±1.8e308): send \
             such a number as text",
        );
    }
    if message.starts_with("recursion limit exceeded") {
        return Some("arrays and objects nested deeper than 127 levels");
    }
    let lone = "a `\\u` escape of half a UTF-16 surrogate pair without its other half, which is no \
                character";
    if message.starts_with("lone leading surrogate") {
        return Some(lone);
    }
    let before = text
        .lines()
        .nth(e.line().checked_sub(1)?)
        .and_then(|line| line.get(..e.column().checked_sub(1)?))?;
    let escape = before
        .get(before.len().checked_sub(6)?..)?
        .to_ascii_lowercase();
    let high = escape.starts_with("\\ud") && matches!(escape.as_bytes().get(3), Some(b'8'..=b'b'));
    (message.starts_with("unexpected end of hex escape") && high).then_some(lone)
}

/// serde_json's message with its place in the event's text said after it, in brackets: the column
/// alone for an event on one line (as `map` reads them), whose line in the input the caller names.
fn placed(e: &serde_json::Error) -> String {
    let message = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    placed_as(e, message.strip_suffix(&suffix).unwrap_or(&message))
}

/// `what`, with the place of `e` said after it.
fn placed_as(e: &serde_json::Error, what: &str) -> String {
    match (e.line(), e.column()) {
        (0, _) | (_, 0) => what.to_owned(),
        (1, column) => format!("{what} (column {column})"),
        (line, column) => format!("{what} (line {line}, column {column})"),
    }
}

impl SourceEvent {
    /// Parses and validates one event from JSON text. `received_at` (unix seconds) becomes the
    /// timestamp of an event that carries none.
    pub fn from_json(text: &str, received_at: i64) -> Result<Self, EventError> {
        Self::from_value(parse_json(text)?, received_at)
    }

    /// [`SourceEvent::from_json`], keeping a copy of `text` as the normalised event (canonical
    /// field names, a timestamp in unix seconds): camelCase keys renamed and the timestamp
    /// written into the copy ([`json_field::rewrite`]). [`SourceEvent::json_text`] then gives it
    /// back. Costs a copy of the text; saves serializing the event later.
    pub fn from_json_keeping_text(text: &str, received_at: i64) -> Result<Self, EventError> {
        Self::from_value_keeping_text(parse_json(text)?, text, received_at)
    }

    /// [`SourceEvent::from_json_keeping_text`] for an event already parsed from `text` (which
    /// must be the JSON text `value` was parsed from): validates and normalises `value`, keeping
    /// a copy of `text`, rewritten as normalising changed the event.
    pub fn from_value_keeping_text(
        value: Value,
        text: &str,
        received_at: i64,
    ) -> Result<Self, EventError> {
        let (mut event, change) = Self::normalise(value, received_at)?;
        event.text = match change.timestamp {
            None if change.renamed.is_empty() => Some(text.to_owned()),
            // The keys renamed and the seconds spliced into the text in place of what it said (or
            // first, where it said nothing): a scan of the text, cheaper than serializing.
            timestamp => {
                let mut seconds = itoa::Buffer::new();
                let set = timestamp.map(|present| json_field::Set {
                    key: "timestamp",
                    value: seconds.format(event.timestamp),
                    present,
                });
                json_field::rewrite(text, &change.renamed, set)
            }
        };
        Ok(event)
    }

    /// The event as JSON text: the text it was parsed from when that was kept, else serialized.
    pub fn json_text(&self) -> String {
        match &self.text {
            Some(t) => t.clone(),
            None => self.serialized(),
        }
    }

    /// [`SourceEvent::json_text`] without a copy: the kept text is moved out (else the event is
    /// serialized). Hand it back with [`SourceEvent::keep_text`] when the event stays as it is.
    pub fn take_json_text(&mut self) -> String {
        self.text.take().unwrap_or_else(|| self.serialized())
    }

    /// Keeps `text`, which must be what [`SourceEvent::take_json_text`] gave for this event
    /// unchanged since: the event's own JSON text, handed on again without a copy.
    pub fn keep_text(&mut self, text: String) {
        self.text = Some(text);
    }

    fn serialized(&self) -> String {
        json_text::value_text(&self.value)
    }

    /// Validates and normalises an already parsed event.
    pub fn from_value(value: Value, received_at: i64) -> Result<Self, EventError> {
        Self::normalise(value, received_at).map(|(event, _)| event)
    }

    /// Validates and normalises; says what normalising changed.
    fn normalise(value: Value, received_at: i64) -> Result<(Self, Change), EventError> {
        let Value::Object(mut map) = value else {
            return Err(EventError::NotObject(type_name(&value)));
        };
        let mut change = Change::default();
        let mut top = TopLevel::of(&map);
        if top.has_camel_case_alias {
            change.renamed = rename_aliased_fields(&mut map)?;
            top = TopLevel::of(&map);
        }
        identifier(top.event_name, "event_name")?;
        identifier(top.event_id, "event_id")?;
        object(top.properties, "properties")?;
        object(top.profile_properties, "profile_properties")?;
        check_aliases(top.aliases)?;
        let held = HeldKeys::of([top.properties, top.profile_properties]);
        let (timestamp, rewrite) = match top.timestamp {
            None | Some(Value::Null) => (received_at, true),
            // Checked, kept as it is.
            Some(v) if v.is_i64() => (parse_timestamp(v)?, false),
            Some(v) => (parse_timestamp(v)?, true),
        };
        if rewrite {
            // Written in place where the event has the field: no new key to allocate.
            let seconds = Value::from(timestamp);
            let written_over = match map.get_mut("timestamp") {
                Some(field) => {
                    *field = seconds;
                    true
                }
                None => {
                    map.insert("timestamp".to_owned(), seconds);
                    false
                }
            };
            change.timestamp = Some(written_over);
        }
        let event = Self {
            value: Value::Object(map),
            text: None,
            held,
            timestamp,
        };
        Ok((event, change))
    }

    /// The event name (`event_name`).
    pub fn name(&self) -> &str {
        self.str_field("event_name")
    }

    /// The event id (`event_id`), kept as is for client/server de-duplication.
    pub fn id(&self) -> &str {
        self.str_field("event_id")
    }

    /// When the event happened, in unix seconds.
    pub fn timestamp(&self) -> i64 {
        self.timestamp
    }

    /// The whole normalised event, the document that rule paths (`$...`) address.
    pub fn as_value(&self) -> &Value {
        &self.value
    }

    /// The visitor's choice for a consent category, if the event says: `$consent` in the profile
    /// properties and in the event properties (orders repeat the profile there), `granted` or
    /// `denied` in any case (or `true` / `false`). A denial in either place wins, then a choice
    /// that is neither (`"revoked"`, `["denied"]`, a `$consent` that is no object): a choice is
    /// never read as more than the visitor allowed.
    pub fn consent(&self, category: &str) -> Option<ConsentChoice> {
        let read = |found: &Value| match found {
            Value::Object(choices) => choices.get(category).and_then(ConsentChoice::read),
            other => ConsentChoice::read(other).map(|_| ConsentChoice::Unreadable),
        };
        let [first, second] = self
            .said(PropertyKey::Consent)
            .map(|found| found.and_then(read));
        first.max(second)
    }

    /// The values of `key` in the event properties and in the profile properties, in that order:
    /// `None` where it is absent (found without a search when the event has it nowhere).
    pub fn said(&self, key: PropertyKey) -> [Option<&Value>; 2] {
        if !self.held.has(key) {
            return [None, None];
        }
        ["properties", "profile_properties"].map(|place| self.value.get(place)?.get(key.name()))
    }

    fn str_field(&self, field: &str) -> &str {
        self.value
            .get(field)
            .and_then(Value::as_str)
            .unwrap_or_default()
    }
}

/// What normalising changed in an event (nothing, by default).
#[derive(Debug, Default)]
struct Change {
    /// The keys renamed: `(camelCase, snake_case)`.
    renamed: Vec<(&'static str, &'static str)>,
    /// The top-level `timestamp`, when written as unix seconds: over the event's own (`true`) or
    /// added (`false`).
    timestamp: Option<bool>,
}

/// What a visitor chose for one consent category ([`SourceEvent::consent`]), in the order of
/// what it allows, most first (a choice read twice counts as the later of the two).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ConsentChoice {
    Granted,
    /// Something that is neither `granted` nor `denied`: allows no more than a denial.
    Unreadable,
    Denied,
}

impl ConsentChoice {
    /// The choice `value` says; `None` for no choice (`null`, blank text).
    fn read(value: &Value) -> Option<Self> {
        match value {
            Value::Null => None,
            Value::Bool(true) => Some(Self::Granted),
            Value::Bool(false) => Some(Self::Denied),
            Value::String(s) => match crate::text::trim(s) {
                "" => None,
                s if s.eq_ignore_ascii_case("denied") => Some(Self::Denied),
                s if s.eq_ignore_ascii_case("granted") => Some(Self::Granted),
                _ => Some(Self::Unreadable),
            },
            _ => Some(Self::Unreadable),
        }
    }
}

/// The event's top-level fields that the envelope's rules check, found in one pass over its keys
/// (cheaper than a search of the map per field).
#[derive(Default)]
struct TopLevel<'a> {
    event_name: Option<&'a Value>,
    event_id: Option<&'a Value>,
    properties: Option<&'a Value>,
    profile_properties: Option<&'a Value>,
    aliases: Option<&'a Value>,
    timestamp: Option<&'a Value>,
    /// Whether a camelCase spelling of [`ALIASED_FIELDS`] is among the keys.
    has_camel_case_alias: bool,
}

impl<'a> TopLevel<'a> {
    fn of(map: &'a Map<String, Value>) -> Self {
        let mut top = Self::default();
        for (key, value) in map {
            let field = match key.as_str() {
                "event_name" => &mut top.event_name,
                "event_id" => &mut top.event_id,
                "properties" => &mut top.properties,
                "profile_properties" => &mut top.profile_properties,
                "aliases" => &mut top.aliases,
                "timestamp" => &mut top.timestamp,
                other => {
                    top.has_camel_case_alias |=
                        ALIASED_FIELDS.iter().any(|(camel, _)| other == *camel);
                    continue;
                }
            };
            *field = Some(value);
        }
        top
    }
}

/// Renames camelCase spellings to the canonical ones, and says which: `(camel, snake)`. Two
/// spellings of one field are refused, named as the event wrote them (`eventID` and `eventId`,
/// not a `event_id` it never sent).
fn rename_aliased_fields(
    map: &mut Map<String, Value>,
) -> Result<Vec<(&'static str, &'static str)>, EventError> {
    let mut renamed: Vec<(&'static str, &'static str)> = Vec::new();
    for (camel, snake) in ALIASED_FIELDS {
        if let Some(v) = map.remove(camel) {
            if map.contains_key(snake) {
                let first = renamed
                    .iter()
                    .find(|(_, to)| *to == snake)
                    .map_or(snake, |(from, _)| *from);
                return Err(EventError::BothSpellings(first, camel));
            }
            map.insert(snake.to_owned(), v);
            renamed.push((camel, snake));
        }
    }
    Ok(renamed)
}

/// A non-empty string of at most [`MAX_IDENTIFIER_BYTES`], without control characters (a line
/// break in an `event_id` would make the browser's copy and the server's differ).
fn identifier(found: Option<&Value>, field: &'static str) -> Result<(), EventError> {
    match found {
        None | Some(Value::Null) => Err(EventError::Missing(field)),
        Some(Value::String(s)) if s.chars().all(char::is_whitespace) => Err(EventError::Invalid {
            field,
            reason: "must not be empty".to_owned(),
        }),
        Some(Value::String(s)) if s.len() > MAX_IDENTIFIER_BYTES => Err(EventError::Invalid {
            field,
            reason: too_long(s.len(), MAX_IDENTIFIER_BYTES),
        }),
        Some(Value::String(s)) if has_control(s) => Err(EventError::Invalid {
            field,
            reason: "must not hold control characters (such as a line break or a tab)".to_owned(),
        }),
        Some(Value::String(_)) => Ok(()),
        Some(other) => Err(wrong_type(field, "a string", other)),
    }
}

/// Whether `s` holds a control character (C0, DEL or C1). Bytes are checked without an early exit,
/// which the compiler vectorises (an `any` cost ~6 instructions a byte).
pub(crate) fn has_control(s: &str) -> bool {
    // One pass flags an ASCII control character or any byte of a non-ASCII character; only text
    // with the latter is looked at again, character by character, for C1 controls.
    let flagged = s
        .bytes()
        .fold(false, |found, b| found | !(0x20..0x7f).contains(&b));
    flagged && s.chars().any(char::is_control)
}

fn too_long(len: usize, max: usize) -> String {
    format!("must be at most {max} bytes long, found {len}")
}

fn object(found: Option<&Value>, field: &'static str) -> Result<(), EventError> {
    match found {
        None => Err(EventError::Missing(field)),
        Some(Value::Object(_)) => Ok(()),
        Some(other) => Err(wrong_type(field, "an object", other)),
    }
}

fn check_aliases(found: Option<&Value>) -> Result<(), EventError> {
    const FIELD: &str = "aliases";
    let aliases = match found {
        None => return Err(EventError::Missing(FIELD)),
        Some(Value::Array(a)) => a,
        Some(other) => return Err(wrong_type(FIELD, "an array of strings", other)),
    };
    if aliases.is_empty() || aliases.len() > MAX_ALIASES {
        return Err(EventError::Invalid {
            field: FIELD,
            reason: format!(
                "must hold 1 to {MAX_ALIASES} entries, found {}",
                aliases.len()
            ),
        });
    }
    for (i, alias) in aliases.iter().enumerate() {
        let Some(s) = alias.as_str() else {
            return Err(EventError::Invalid {
                field: FIELD,
                reason: format!("entry {i} must be a string, found {}", type_name(alias)),
            });
        };
        if s.len() > MAX_ALIAS_BYTES {
            return Err(EventError::Invalid {
                field: FIELD,
                reason: format!("entry {i} {}", too_long(s.len(), MAX_ALIAS_BYTES)),
            });
        }
        if !is_urn(s) {
            return Err(EventError::Invalid {
                field: FIELD,
                reason: format!("entry {i} must look like `urn:<kind>:<value>`"),
            });
        }
    }
    Ok(())
}

fn is_urn(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("urn:") else {
        return false;
    };
    // A byte search: `split_once(':')` costs some 150 instructions on a text this short.
    let colon = rest.bytes().position(|b| b == b':');
    matches!(colon, Some(at) if at > 0 && at + 1 < rest.len())
}

/// Reads an ISO-8601 timestamp with a timezone, or integer epoch seconds, as unix seconds: a time
/// from 1970 up to (not including) year 5138, whichever way it is written.
pub fn parse_timestamp(v: &Value) -> Result<i64, EventError> {
    let seconds = match v {
        Value::Number(n) => epoch_seconds(n)?,
        Value::String(s) => iso_seconds(crate::text::trim(s)).ok_or_else(|| {
            invalid_time(format!(
                "`{s}` is not an ISO-8601 time with a timezone (e.g. 2024-09-02T12:34:56+00:00)"
            ))
        })?,
        other => {
            return Err(wrong_type(
                "timestamp",
                "an ISO-8601 string or epoch seconds",
                other,
            ));
        }
    };
    match seconds {
        s if s < 0 => Err(invalid_time(format!(
            "{} is before 1970 (epoch seconds must not be negative)",
            show_time(v)
        ))),
        s if s >= MAX_EPOCH_SECONDS && v.is_number() => Err(invalid_time(format!(
            "{s} is too large for epoch seconds (milliseconds? divide by 1000)"
        ))),
        s if s >= MAX_EPOCH_SECONDS => Err(invalid_time(format!(
            "{} is after the year 5138",
            show_time(v)
        ))),
        s => Ok(s),
    }
}

/// The unix seconds of an ISO-8601 time with a timezone: RFC 3339 (`2024-09-02T12:34:56Z`,
/// `+02:00`), or with an offset written without its colon (`+0200`), as many systems write it.
fn iso_seconds(text: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(text)
        .or_else(|_| DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .ok()
        .map(|t| t.timestamp())
}

/// Epoch seconds as a whole number: `12.0` and `-0` are whole, `1.5` is not. A number past `i64`
/// (`1e300`) is named too large (or before 1970), not "not whole"; [`parse_timestamp`] checks the
/// bounds of the others.
fn epoch_seconds(n: &serde_json::Number) -> Result<i64, EventError> {
    if let Some(s) = n.as_i64() {
        return Ok(s);
    }
    let whole = n.as_f64().filter(|f| f.fract() == 0.0);
    match whole {
        None => Err(invalid_time(format!(
            "epoch seconds must be a whole number, found {n}"
        ))),
        Some(f) if f < 0.0 => Err(invalid_time(format!(
            "{n} is before 1970 (epoch seconds must not be negative)"
        ))),
        Some(f) if f >= MAX_EPOCH_SECONDS as f64 => {
            Err(invalid_time(format!("{n} is too large for epoch seconds")))
        }
        Some(f) => Ok(f as i64),
    }
}

fn invalid_time(reason: String) -> EventError {
    EventError::Invalid {
        field: "timestamp",
        reason,
    }
}

/// A timestamp as the sender wrote it, for messages.
fn show_time(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_owned)
}

/// How far from the time it is received an event's own time may be: a bound into the past (the
/// platform ignores older conversions) and a tolerance into the future (clocks that run ahead).
/// Checked where events enter the service (`/v1/events`, `/v1/collect`), not by `map` or `replay`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWindow {
    /// The oldest accepted event, in seconds before it was received.
    pub max_age_secs: i64,
    /// The furthest accepted event, in seconds after it was received.
    pub max_ahead_secs: i64,
}

impl TimeWindow {
    /// Whether `event`'s time lies in the window around `received_at` (unix seconds).
    pub fn check(&self, event: &SourceEvent, received_at: i64) -> Result<(), EventError> {
        let t = event.timestamp();
        if t < received_at.saturating_sub(self.max_age_secs) {
            return Err(invalid_time(format!(
                "{t} is {} before the time received; events older than {} are refused \
                 (server.max_event_age_hours)",
                span(received_at - t),
                span(self.max_age_secs)
            )));
        }
        if t > received_at.saturating_add(self.max_ahead_secs) {
            return Err(invalid_time(format!(
                "{t} is {} after the time received; events more than {} ahead are refused \
                 (server.max_event_ahead_secs)",
                span(t - received_at),
                span(self.max_ahead_secs)
            )));
        }
        Ok(())
    }
}

/// A duration for messages, in its largest whole unit: `3 days`, `5 hours`, `42 s`.
fn span(secs: i64) -> String {
    match secs {
        s if s >= 86_400 && s % 86_400 == 0 => format!("{} days", s / 86_400),
        s if s >= 86_400 => format!("{:.1} days", s as f64 / 86_400.0),
        s if s >= 3_600 => format!("{:.1} hours", s as f64 / 3_600.0),
        s => format!("{s} s"),
    }
}

fn wrong_type(field: &'static str, expected: &'static str, found: &Value) -> EventError {
    EventError::WrongType {
        field,
        expected,
        found: type_name(found),
    }
}

/// A JSON type's name, for messages.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn base() -> Value {
        json!({"event_name": "Viewed Product", "event_id": "e1", "properties": {},
               "profile_properties": {}, "aliases": ["urn:email:a@b.co"]})
    }

    #[test]
    fn a_key_given_twice_is_refused_not_guessed() {
        let text = r#"{"event_name":"Searched","event_id":"e1","event_name":"Placed Order","properties":{"a":1,"a":2}}"#;
        for parse in [SourceEvent::from_json, SourceEvent::from_json_keeping_text] {
            match parse(text, 1_700_000_000) {
                Err(EventError::RepeatedKey(m)) => {
                    assert!(m.contains("`event_name` is given twice"), "{m}")
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn a_null_object_or_list_is_named_for_its_type_not_missing() {
        for (field, said) in [
            (
                "profile_properties",
                "`profile_properties` must be an object, found null",
            ),
            ("properties", "`properties` must be an object, found null"),
            (
                "aliases",
                "`aliases` must be an array of strings, found null",
            ),
        ] {
            let mut v = base();
            v[field] = Value::Null;
            let e = SourceEvent::from_value(v, 5).unwrap_err().to_string();
            assert_eq!(e, said);
        }
    }

    #[test]
    fn said_finds_the_marked_keys_in_either_place_and_only_there() {
        let mut v = base();
        let event = SourceEvent::from_value(v.clone(), 5).unwrap();
        assert_eq!(event.said(PropertyKey::Consent), [None, None]);
        v["properties"]["$limited_data_use"] = json!(true);
        v["profileProperties"] = json!({"$consent": {"marketing": "denied"}});
        v.as_object_mut().unwrap().remove("profile_properties");
        let event = SourceEvent::from_value(v, 5).unwrap();
        let consent = json!({"marketing": "denied"});
        assert_eq!(event.said(PropertyKey::Consent), [None, Some(&consent)]);
        assert_eq!(event.consent("marketing"), Some(ConsentChoice::Denied));
        let flag = json!(true);
        assert_eq!(event.said(PropertyKey::LimitedDataUse), [Some(&flag), None]);
        // Deeper down, or at the top, the keys are not the event's properties.
        let mut v = base();
        v["properties"]["items"] = json!([{"$consent": {"marketing": "denied"}}]);
        v["$limited_data_use"] = json!(true);
        let event = SourceEvent::from_value(v, 5).unwrap();
        assert_eq!(event.said(PropertyKey::Consent), [None, None]);
        assert_eq!(event.said(PropertyKey::LimitedDataUse), [None, None]);
    }

    #[test]
    fn the_input_text_is_kept_when_normalising_changes_nothing_but_the_timestamp() {
        let normalised = r#"{"event_name":"x","event_id":"1","timestamp":1725278400,"properties":{},"profile_properties":{},"aliases":["urn:email:a"]}"#;
        let kept = SourceEvent::from_json_keeping_text(normalised, 5).unwrap();
        assert_eq!(kept.json_text(), normalised);
        assert_eq!(kept, SourceEvent::from_json(normalised, 5).unwrap());
        // Only the timestamp changed: the seconds are written into the text, the rest as it came.
        for (said, received_at, written) in [
            (r#" "2024-09-02T12:00:00+00:00" "#, 5, " 1725278400 "),
            ("null", 1725278400, "1725278400"),
            ("1725278400.0", 5, "1725278400"),
        ] {
            let input = normalised.replace("1725278400", said);
            let e = SourceEvent::from_json_keeping_text(&input, received_at).unwrap();
            let expected = normalised.replace("1725278400", written);
            assert_eq!(e.json_text(), expected, "{input}");
        }
        // camelCase keys renamed in the text too, with or without the timestamp.
        let camel = normalised
            .replace("\"event_id\"", "\"eventID\"")
            .replace("\"event_name\"", "\"eventName\"");
        let e = SourceEvent::from_json_keeping_text(&camel, 5).unwrap();
        assert_eq!(e.json_text(), normalised, "{camel}");
        let dated = camel.replace("1725278400", r#""2024-09-02T12:00:00+00:00""#);
        let e = SourceEvent::from_json_keeping_text(&dated, 5).unwrap();
        assert_eq!(e.json_text(), normalised, "{dated}");
        let undated = normalised.replace(r#","timestamp":1725278400"#, "");
        let e = SourceEvent::from_json_keeping_text(&undated, 5).unwrap();
        assert_eq!(
            e.json_text(),
            undated.replacen('{', r#"{"timestamp":5,"#, 1)
        );
        for changed in [
            undated,
            normalised.replace("1725278400", r#""2024-09-02T12:00:00+00:00""#),
            normalised.replace("event_id", "eventID"),
        ] {
            let e = SourceEvent::from_json_keeping_text(&changed, 5).unwrap();
            let text = e.json_text();
            assert_ne!(text, changed, "{changed}");
            let again: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(&again, e.as_value(), "the text is the normalised event");
        }
    }

    #[test]
    fn valid_json_past_what_an_event_holds_is_said_so() {
        let said = |text: &str| parse_json(text).unwrap_err().to_string();
        for number in ["1e999", "-1e999", "1e400"] {
            let e = said(&format!(r#"{{"a":{{"b":{number}}}}}"#));
            assert!(e.starts_with("a number past the largest an event may hold (64-bit floats, about ±1.8e308): send such a number as text (column "), "{e}");
        }
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert_eq!(
            said(&deep),
            "arrays and objects nested deeper than 127 levels (column 128)"
        );
        let lone = "a `\\u` escape of half a UTF-16 surrogate pair without its other half, which is no character";
        for text in [
            r#"{"a":"\ud800"}"#,
            r#"{"a":"\uDBFFx"}"#,
            "{\n\"a\":\"\\udc00\"}",
        ] {
            let e = said(text);
            assert!(e.starts_with(lone), "{text}: {e}");
        }
        // A broken escape that is no surrogate keeps serde_json's words.
        assert!(said(r#"{"a":"\u12"}"#).starts_with("not valid JSON: "));
        assert!(said(r#"{"a":"\u00e9\"}"#).starts_with("not valid JSON: "));
    }

    #[test]
    fn a_refusal_says_where_in_the_event_and_what_blank_text_holds() {
        let twice = r#"{"event_id":"1","event_id":"2"}"#;
        let e = parse_json(twice).unwrap_err().to_string();
        assert_eq!(
            e,
            "`event_id` is given twice in one object; send each key once (column 26)"
        );
        let e = parse_json("{\n\"a\":}").unwrap_err().to_string();
        assert_eq!(e, "not valid JSON: expected value (line 2, column 5)");
        // White space before the event counts (map keeps a line's start for this).
        let e = parse_json("  {\"a\":}").unwrap_err().to_string();
        assert_eq!(e, "not valid JSON: expected value (column 8)");
        let e = parse_json("\u{a0}\u{2028}").unwrap_err().to_string();
        assert!(
            e.starts_with("not valid JSON: only white space, of a kind JSON"),
            "{e}"
        );
        let e = parse_json("\u{feff}{\"a\":1}").unwrap_err().to_string();
        assert!(e.contains("opens with a byte-order mark (U+FEFF)"), "{e}");
        for blank in ["", " \t"] {
            let e = parse_json(blank).unwrap_err().to_string();
            assert!(
                e.starts_with("not valid JSON: EOF while parsing a value"),
                "{e}"
            );
        }
    }

    #[test]
    fn the_kept_text_is_moved_out_and_back_without_a_copy() {
        let normalised = r#"{"event_name":"x","event_id":"1","timestamp":1725278400,"properties":{},"profile_properties":{},"aliases":["urn:email:a"]}"#;
        let mut kept = SourceEvent::from_json_keeping_text(normalised, 5).unwrap();
        let text = kept.take_json_text();
        assert_eq!(text, normalised);
        let at = text.as_ptr();
        kept.keep_text(text);
        let again = kept.take_json_text();
        assert_eq!(again.as_ptr(), at, "moved, not copied");
        // Taken out and not given back: serialized from then on.
        let serialized: Value = serde_json::from_str(&kept.take_json_text()).unwrap();
        assert_eq!(&serialized, kept.as_value());
    }

    #[test]
    fn accepts_camel_case_and_defaults_timestamp() {
        let ev = SourceEvent::from_value(
            json!({"event_name": "X", "eventID": "e9", "properties": {},
                   "profileProperties": {"$email": "a@b.co"}, "aliases": ["urn:email:a@b.co"]}),
            77,
        )
        .unwrap();
        assert_eq!(ev.id(), "e9");
        assert_eq!(ev.timestamp(), 77);
        assert!(ev.as_value().get("profile_properties").is_some());
    }

    #[test]
    fn timestamps_iso_with_offset_and_epoch() {
        let mut v = base();
        v["timestamp"] = json!("2024-09-02T12:34:56+02:00");
        assert_eq!(
            SourceEvent::from_value(v.clone(), 0).unwrap().timestamp(),
            1_725_273_296
        );
        // The same instant, in the other spellings of an offset.
        for same in [
            "2024-09-02T12:34:56+0200",
            "2024-09-02T10:34:56Z",
            "2024-09-02T10:34:56.250+0000",
        ] {
            v["timestamp"] = json!(same);
            let event = SourceEvent::from_value(v.clone(), 0);
            assert_eq!(event.map(|e| e.timestamp()), Ok(1_725_273_296), "{same}");
        }
        v["timestamp"] = json!(1_725_312_229);
        assert_eq!(
            SourceEvent::from_value(v.clone(), 0).unwrap().timestamp(),
            1_725_312_229
        );
        v["timestamp"] = json!("2024-09-02T12:34:56");
        assert!(matches!(
            SourceEvent::from_value(v.clone(), 0),
            Err(EventError::Invalid {
                field: "timestamp",
                ..
            })
        ));
        v["timestamp"] = json!(1_725_312_229_000_i64);
        let err = SourceEvent::from_value(v, 0).unwrap_err().to_string();
        assert!(err.contains("milliseconds"), "{err}");
    }

    #[test]
    fn timestamps_outside_1970_to_5138_are_refused_in_every_spelling() {
        let cases = [
            (json!("9999-12-31T23:59:59Z"), "after the year 5138"),
            (json!("1969-12-31T23:59:59Z"), "before 1970"),
            (json!(-1), "before 1970"),
            (json!(1.5), "must be a whole number, found 1.5"),
            (json!(1e300), "1e+300 is too large for epoch seconds"),
            (json!(-1e300), "before 1970"),
            (json!(u64::MAX), "too large for epoch seconds"),
        ];
        for (time, expected) in cases {
            let mut v = base();
            v["timestamp"] = time.clone();
            let err = SourceEvent::from_value(v, 0).unwrap_err().to_string();
            assert!(err.contains(expected), "{time}: {err}");
        }
        let mut v = base();
        v["timestamp"] = json!("5137-12-31T23:59:59Z");
        assert!(SourceEvent::from_value(v, 0).is_ok());
        // A whole number written with a fraction or a sign is the number it means.
        for (written, seconds) in [("1725312229.0", 1_725_312_229), ("-0", 0), ("-0.0", 0)] {
            let mut v = base();
            v["timestamp"] = serde_json::from_str(written).unwrap();
            let event = SourceEvent::from_value(v, 0).expect(written);
            assert_eq!(event.timestamp(), seconds, "{written}");
        }
    }

    #[test]
    fn the_time_window_bounds_age_and_lead() {
        let window = TimeWindow {
            max_age_secs: 7 * 86_400,
            max_ahead_secs: 600,
        };
        let now = 1_800_000_000;
        let at = |t: i64| {
            let mut v = base();
            v["timestamp"] = json!(t);
            window.check(&SourceEvent::from_value(v, now).unwrap(), now)
        };
        assert!(at(now).is_ok());
        assert!(at(now - 7 * 86_400).is_ok(), "at the age limit");
        assert!(at(now + 600).is_ok(), "at the lead limit");
        let old = at(now - 7 * 86_400 - 1).unwrap_err().to_string();
        assert!(old.contains("older than 7 days"), "{old}");
        let ahead = at(now + 601).unwrap_err().to_string();
        assert!(ahead.contains("601 s after"), "{ahead}");
    }

    #[test]
    fn rejects_bad_envelopes_with_the_field() {
        let mut v = base();
        v.as_object_mut().unwrap().remove("event_id");
        assert_eq!(
            SourceEvent::from_value(v, 0).unwrap_err(),
            EventError::Missing("event_id")
        );
        let mut v = base();
        v["event_id"] = json!(12);
        assert_eq!(
            SourceEvent::from_value(v, 0).unwrap_err().to_string(),
            "`event_id` must be a string, found a number"
        );
        let mut v = base();
        v["aliases"] = json!(["email:x"]);
        assert!(
            SourceEvent::from_value(v, 0)
                .unwrap_err()
                .to_string()
                .contains("urn:<kind>:<value>")
        );
        let mut v = base();
        v["eventID"] = json!("again");
        assert_eq!(
            SourceEvent::from_value(v, 0).unwrap_err(),
            EventError::BothSpellings("event_id", "eventID")
        );
        let mut two_camels = base();
        let map = two_camels.as_object_mut().unwrap();
        let id = map.remove("event_id").unwrap();
        map.insert("eventID".into(), id.clone());
        map.insert("eventId".into(), id);
        assert_eq!(
            SourceEvent::from_value(two_camels, 0)
                .unwrap_err()
                .to_string(),
            "both `eventID` and `eventId` are given; send one spelling"
        );
        assert!(matches!(
            SourceEvent::from_json("{not json", 0),
            Err(EventError::NotJson(_))
        ));
        assert_eq!(
            SourceEvent::from_json("[1]", 0).unwrap_err(),
            EventError::NotObject("an array")
        );
    }

    #[test]
    fn aliases_are_urns_with_a_kind_and_a_value() {
        for yes in ["urn:email:a", "urn:k:v:w", "urn:cart_token:c1", "urn:é:ü"] {
            assert!(is_urn(yes), "{yes}");
        }
        for no in [
            "urn:", "urn::v", "urn:k:", "urn:k", "urn:kv", "email:a", "URN:k:v", "",
        ] {
            assert!(!is_urn(no), "{no}");
        }
    }

    #[test]
    fn identifiers_hold_no_control_characters() {
        for field in ["event_id", "event_name"] {
            for id in ["order-1\n", "a\tb", "x\u{7f}", "é\u{85}", "é\n", "\u{9f}"] {
                let mut v = base();
                v[field] = json!(id);
                assert_eq!(
                    SourceEvent::from_value(v, 0).unwrap_err().to_string(),
                    format!(
                        "`{field}`: must not hold control characters (such as a line break or a tab)"
                    ),
                    "{id:?}"
                );
            }
            let mut v = base();
            v[field] = json!("Ordre №1 — été");
            assert!(SourceEvent::from_value(v, 0).is_ok(), "{field}");
            for blank in ["", " ", "\u{3000}\u{a0}"] {
                let mut v = base();
                v[field] = json!(blank);
                assert_eq!(
                    SourceEvent::from_value(v, 0).unwrap_err().to_string(),
                    format!("`{field}`: must not be empty"),
                    "{blank:?}"
                );
            }
        }
    }

    #[test]
    fn identifiers_and_aliases_have_a_length_cap() {
        let mut v = base();
        v["event_id"] = json!("i".repeat(MAX_IDENTIFIER_BYTES));
        v["event_name"] = json!("n".repeat(MAX_IDENTIFIER_BYTES));
        v["aliases"] = json!([format!("urn:email:{}", "a".repeat(MAX_ALIAS_BYTES - 10))]);
        assert!(SourceEvent::from_value(v.clone(), 0).is_ok(), "at the caps");
        let mut long_id = v.clone();
        long_id["event_id"] = json!("é".repeat(129));
        assert_eq!(
            SourceEvent::from_value(long_id, 0).unwrap_err().to_string(),
            "`event_id`: must be at most 256 bytes long, found 258"
        );
        let mut long_name = v.clone();
        long_name.as_object_mut().unwrap().remove("event_name");
        long_name["eventName"] = json!("n".repeat(257));
        assert_eq!(
            SourceEvent::from_value(long_name, 0)
                .unwrap_err()
                .to_string(),
            "`event_name`: must be at most 256 bytes long, found 257"
        );
        let mut long_alias = v;
        long_alias["aliases"] = json!(["urn:user_id:1", format!("urn:email:{}", "a".repeat(503))]);
        assert_eq!(
            SourceEvent::from_value(long_alias, 0)
                .unwrap_err()
                .to_string(),
            "`aliases`: entry 1 must be at most 512 bytes long, found 513"
        );
    }
}
