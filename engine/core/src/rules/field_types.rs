//! The JSON types a platform takes at its payload fields, as its destination plugin declares them
//! ([`FieldType`]; TikTok's are in `switchyard_tiktok::types`), and the check of built values
//! against them.
//!
//! A platform may refuse a whole request for one field of the wrong type (TikTok answers 40002),
//! so a wrong type is settled before sending. Which fields are typed is decided at load: the plan
//! of each typed field gets its type ([`FieldType::at`] its label), and per event only those
//! fields' values are checked, where they are built. A value of the right type (the usual case)
//! passes at a glance ([`takes_as_is`]). Otherwise ([`check`]):
//! - a number where text is taken becomes its text (`12345` → `"12345"`, as `string` writes it);
//! - text that is a number where a number is taken becomes that number (as `number` reads it);
//! - anything else (an array, an object, `true`, text that is no number) is left out with a
//!   [`Warning`] that names the field and the type found, never the value.
//!
//! A value taken whole from the event (`page: $.properties.page`) is read through, and copied only
//! when a part of it must change. Warnings name fields as labels do: `properties.contents[].price`
//! for a field of every item, `properties.contents[1].price` for one item of a list taken whole.

use super::payload::{Payload, value_is_empty};
use super::warning::Warning;
use serde_json::{Map, Value};
use std::sync::Arc;

/// What a platform takes at a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    Text,
    Number,
    /// An object whose fields have these types; fields not named take any value.
    Object(&'static [(&'static str, FieldType)]),
    /// A list whose items have this type.
    List(&'static FieldType),
}

impl FieldType {
    /// The type of the payload field `label` (`user.ip`, `properties.contents[].price`) of an
    /// event object whose fields have the types `fields`: dots step into objects, `[]` into a
    /// list's items. `None` when the field takes any value.
    pub fn at(
        fields: &'static [(&'static str, FieldType)],
        label: &str,
    ) -> Option<&'static FieldType> {
        let mut fields = fields;
        let mut here: Option<&'static FieldType> = None;
        for part in label.split('.') {
            match here {
                Some(FieldType::Object(inner)) => fields = inner,
                Some(_) => return None,
                None => {}
            }
            let (name, item) = match part.strip_suffix("[]") {
                Some(name) => (name, true),
                None => (part, false),
            };
            let mut found = field_of(fields, name)?;
            if item {
                let FieldType::List(of) = found else {
                    return None;
                };
                found = of;
            }
            here = Some(found);
        }
        here
    }

    /// The type of a value that is text or a number.
    pub fn of_scalar(v: &Value) -> Option<FieldType> {
        match v {
            Value::String(_) => Some(FieldType::Text),
            Value::Number(_) => Some(FieldType::Number),
            _ => None,
        }
    }

    /// The type of the field `key` of an object of this type.
    fn field(self, key: &str) -> Option<FieldType> {
        match self {
            FieldType::Object(fields) => field_of(fields, key).copied(),
            _ => None,
        }
    }
}

fn field_of(fields: &'static [(&'static str, FieldType)], key: &str) -> Option<&'static FieldType> {
    fields.iter().find(|(k, _)| *k == key).map(|(_, t)| t)
}

/// Whether a built value is of type `ty` as it is, at a glance: text or a number where that is
/// taken, settled without a call.
#[inline(always)]
pub fn takes_as_is(ty: FieldType, p: &Payload<'_>) -> bool {
    matches!(
        (ty, p),
        (
            FieldType::Text,
            Payload::Str(_) | Payload::Ref(Value::String(_)) | Payload::Owned(Value::String(_))
        ) | (
            FieldType::Number,
            Payload::Ref(Value::Number(_)) | Payload::Owned(Value::Number(_))
        )
    )
}

/// Checks the built value `p` of the field `label` against `ty`, and every part of it that is
/// typed: converts or leaves out what is of the wrong type, with `warnings`. False when the field
/// itself is to be left out.
pub fn check(
    p: &mut Payload<'_>,
    ty: FieldType,
    label: &Arc<str>,
    warnings: &mut Vec<Warning>,
) -> bool {
    check_at(p, ty, &At::root(label), warnings)
}

/// Checks an event object made outside the mapping (what a payload plugin returned) against the
/// types `fields` of the platform's event object, as a built payload is checked: what converts is
/// converted, the rest left out with `warnings` (labels from the object's own fields: `user.ip`,
/// `properties.contents[1].price`). Empty values stay: they mean the field is absent.
pub fn check_fields(
    object: &mut Map<String, Value>,
    fields: &'static [(&'static str, FieldType)],
    warnings: &mut Vec<Warning>,
) {
    for (key, ty) in fields {
        let Some(v) = object.get_mut(*key) else {
            continue;
        };
        let at = At::named(key);
        let keep = value_is_empty(v) || scan(v, *ty, &at, warnings) || repair(v, *ty);
        if !keep {
            object.remove(*key);
        }
    }
}

/// Where a part of a field is: the field's label, then keys and items. Kept on the stack while
/// walking; written out only for a warning.
struct At<'p> {
    step: Step<'p>,
    parent: Option<&'p At<'p>>,
}

#[derive(Clone, Copy)]
enum Step<'p> {
    Label(&'p Arc<str>),
    /// A field's name, made a label only for a warning.
    Name(&'p str),
    Key(&'p str),
    Item(usize),
}

impl<'p> At<'p> {
    fn root(label: &'p Arc<str>) -> Self {
        At {
            step: Step::Label(label),
            parent: None,
        }
    }

    fn named(name: &'p str) -> Self {
        At {
            step: Step::Name(name),
            parent: None,
        }
    }

    fn key(&'p self, key: &'p str) -> Self {
        At {
            step: Step::Key(key),
            parent: Some(self),
        }
    }

    fn item(&'p self, i: usize) -> Self {
        At {
            step: Step::Item(i),
            parent: Some(self),
        }
    }

    /// The path: `label.key[1].key`.
    fn path(&self) -> Arc<str> {
        if let (Step::Label(label), None) = (self.step, self.parent) {
            return label.clone();
        }
        let mut steps = Vec::new();
        let mut here = Some(self);
        while let Some(at) = here {
            steps.push(at.step);
            here = at.parent;
        }
        let mut path = String::new();
        for step in steps.iter().rev() {
            match step {
                Step::Label(label) => path.push_str(label),
                Step::Name(name) => path.push_str(name),
                Step::Key(key) => {
                    path.push('.');
                    path.push_str(key);
                }
                Step::Item(i) => path.push_str(&format!("[{i}]")),
            }
        }
        path.into()
    }

    fn warn(&self, message: &'static str, warnings: &mut Vec<Warning>) {
        warnings.push(Warning {
            field: self.path(),
            message,
        });
    }
}

fn check_at(p: &mut Payload<'_>, ty: FieldType, at: &At<'_>, warnings: &mut Vec<Warning>) -> bool {
    if takes_as_is(ty, p) {
        return true;
    }
    let found = match (ty, &mut *p) {
        (FieldType::Object(_), Payload::Object(fields)) => {
            return check_object(ty, fields, at, warnings);
        }
        (FieldType::List(item), Payload::Array(items)) => {
            return check_items(*item, items, at, warnings);
        }
        (_, Payload::Object(_)) => Found::Object,
        (_, Payload::Array(_)) => Found::Array,
        (_, Payload::Str(s)) => {
            // Text where something else is taken: rare, so copied to be checked as a value.
            *p = Payload::Owned(Value::from(*s));
            return check_at(p, ty, at, warnings);
        }
        (_, Payload::Ref(v)) => {
            if scan(v, ty, at, warnings) {
                return true;
            }
            let mut owned = Value::clone(v);
            let keep = repair(&mut owned, ty);
            *p = Payload::Owned(owned);
            return keep;
        }
        (_, Payload::Owned(v)) => return scan(v, ty, at, warnings) || repair(v, ty),
    };
    at.warn(refusal(ty, found), warnings);
    false
}

/// [`check_at`] of a built object: its typed fields checked, those of the wrong type left out.
fn check_object(
    ty: FieldType,
    fields: &mut Vec<(&str, Payload<'_>)>,
    at: &At<'_>,
    warnings: &mut Vec<Warning>,
) -> bool {
    fields.retain_mut(|(key, value)| {
        ty.field(key)
            .is_none_or(|t| check_at(value, t, &at.key(key), warnings))
    });
    !fields.is_empty()
}

/// [`check_at`] of a built list: each item checked, those of the wrong type left out.
fn check_items(
    ty: FieldType,
    items: &mut Vec<Payload<'_>>,
    at: &At<'_>,
    warnings: &mut Vec<Warning>,
) -> bool {
    let mut i = 0;
    items.retain_mut(|item| {
        i += 1;
        check_at(item, ty, &at.item(i - 1), warnings)
    });
    !items.is_empty()
}

/// Whether a value is of type `ty`, every part of it, as it is; warns about every part that is not.
fn scan(v: &Value, ty: FieldType, at: &At<'_>, warnings: &mut Vec<Warning>) -> bool {
    match (ty, v) {
        (FieldType::Object(_), Value::Object(map)) => {
            let mut fine = true;
            for (key, value) in map {
                if let Some(t) = ty.field(key) {
                    fine &= scan(value, t, &at.key(key), warnings);
                }
            }
            fine
        }
        (FieldType::List(item), Value::Array(items)) => {
            let mut fine = true;
            for (i, value) in items.iter().enumerate() {
                fine &= scan(value, *item, &at.item(i), warnings);
            }
            fine
        }
        _ => match judge(ty, v) {
            Verdict::Fine => true,
            Verdict::Becomes(_) => false,
            Verdict::Refused(message) => {
                at.warn(message, warnings);
                false
            }
        },
    }
}

/// A value the mapping gives as it is (a `const`, a `default`) at a field the platform types as
/// `ty`, settled at load: converted where it converts, as a value built per event would be; the
/// reason it cannot be sent where it does not (with where, for each part of it that cannot). An
/// empty value (`null`, `""`, `[]`, `{}`) stays: it means the field is absent.
pub fn settle_constant(v: &mut Value, ty: FieldType, label: &Arc<str>) -> Result<(), String> {
    let mut refused = Vec::new();
    if value_is_empty(v) || scan(v, ty, &At::root(label), &mut refused) {
        return Ok(());
    }
    if refused.is_empty() {
        repair(v, ty);
        return Ok(());
    }
    let reasons: Vec<String> = refused
        .iter()
        .map(|w| {
            let why = w.message.strip_suffix(": left out").unwrap_or(w.message);
            match *w.field == **label {
                true => why.to_owned(),
                false => format!("`{}`: {why}", w.field),
            }
        })
        .collect();
    let never = match reasons.len() {
        1 => "it would never be sent",
        _ => "they would never be sent",
    };
    Err(format!("{}: {never}", reasons.join("; ")))
}

/// Makes `v` of type `ty`, as [`scan`] found it is not (without warning again): converts what
/// converts, removes the rest. False when nothing of it is left.
fn repair(v: &mut Value, ty: FieldType) -> bool {
    match (ty, &mut *v) {
        (FieldType::Object(_), Value::Object(map)) => {
            map.retain(|key, value| ty.field(key).is_none_or(|t| repair(value, t)));
            !map.is_empty()
        }
        (FieldType::List(item), Value::Array(items)) => {
            items.retain_mut(|value| repair(value, *item));
            !items.is_empty()
        }
        _ => match judge(ty, v) {
            Verdict::Fine => true,
            Verdict::Becomes(new) => {
                *v = new;
                true
            }
            Verdict::Refused(_) => false,
        },
    }
}

/// What becomes of a value at a field of type `ty`.
enum Verdict {
    Fine,
    Becomes(Value),
    Refused(&'static str),
}

fn judge(ty: FieldType, v: &Value) -> Verdict {
    let found = match (ty, v) {
        (FieldType::Text, Value::String(_))
        | (FieldType::Number, Value::Number(_))
        | (FieldType::Object(_), Value::Object(_))
        | (FieldType::List(_), Value::Array(_)) => return Verdict::Fine,
        (FieldType::Text, Value::Number(n)) => {
            return match crate::text::number_text(n) {
                Ok(text) => Verdict::Becomes(Value::String(text)),
                Err(why) => Verdict::Refused(why),
            };
        }
        (FieldType::Number, Value::String(s)) => match crate::text::number(s) {
            Some(number) => return Verdict::Becomes(number),
            None => Found::Text,
        },
        (_, Value::Null) => Found::Null,
        (_, Value::Bool(_)) => Found::Bool,
        (_, Value::Number(_)) => Found::Number,
        (_, Value::String(_)) => Found::Text,
        (_, Value::Array(_)) => Found::Array,
        (_, Value::Object(_)) => Found::Object,
    };
    Verdict::Refused(refusal(ty, found))
}

/// The JSON type of a value of the wrong type, as a warning names it.
#[derive(Clone, Copy)]
enum Found {
    Null,
    Bool,
    Number,
    Text,
    Array,
    Object,
}

/// The warning for `found` where the platform takes `ty`: the type found and the type taken.
fn refusal(ty: FieldType, found: Found) -> &'static str {
    macro_rules! refused {
        ($taken:literal) => {
            match found {
                Found::Null => concat!("null where the platform takes ", $taken, ": left out"),
                Found::Bool => {
                    concat!(
                        "true or false where the platform takes ",
                        $taken,
                        ": left out"
                    )
                }
                Found::Number => {
                    concat!("a number where the platform takes ", $taken, ": left out")
                }
                Found::Text => concat!("text where the platform takes ", $taken, ": left out"),
                Found::Array => concat!("an array where the platform takes ", $taken, ": left out"),
                Found::Object => {
                    concat!("an object where the platform takes ", $taken, ": left out")
                }
            }
        };
    }
    match (ty, found) {
        (FieldType::Number, Found::Text) => {
            "text that is no number where the platform takes a number: left out"
        }
        (FieldType::Text, _) => refused!("text"),
        (FieldType::Number, _) => refused!("a number"),
        (FieldType::Object(_), _) => refused!("an object"),
        (FieldType::List(_), _) => refused!("a list"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::CompileError;
    use crate::rules::compile::{CompiledMapping, compile_mapping};
    use crate::rules::spec::MappingFile;
    use crate::rules::transform::CompileContext;
    use serde_json::json;

    const TEXT: FieldType = FieldType::Text;
    const NUMBER: FieldType = FieldType::Number;

    /// A platform's typed fields, shaped as TikTok's.
    const TYPES: &[(&str, FieldType)] = &[
        (
            "user",
            FieldType::Object(&[("ip", TEXT), ("locale", TEXT), ("ttp", TEXT), ("ua", TEXT)]),
        ),
        (
            "page",
            FieldType::Object(&[("url", TEXT), ("referrer", TEXT)]),
        ),
        (
            "properties",
            FieldType::Object(&[
                ("value", NUMBER),
                ("query", TEXT),
                (
                    "contents",
                    FieldType::List(&FieldType::Object(&[
                        ("content_id", TEXT),
                        ("price", NUMBER),
                        ("quantity", NUMBER),
                    ])),
                ),
            ]),
        ),
    ];

    /// The payload of a row with these `fields` (YAML lines indented by six spaces), compiled
    /// with [`TYPES`] and built from `event`, and its warnings as (field, message).
    fn built(fields: &str, event: &Value) -> (Value, Vec<(String, &'static str)>) {
        let mapping = compiled(fields).expect("compiles");
        let row = &mapping.rows_for("A")[0];
        let mut warnings = Vec::new();
        let payload = Payload::Object(row.build(event, &mut warnings)).to_value();
        let warnings = warnings
            .into_iter()
            .map(|w| (w.field.to_string(), w.message))
            .collect();
        (payload, warnings)
    }

    /// The errors of compiling a row with these `fields` with [`TYPES`], as (pointer, message).
    fn refused(fields: &str) -> Vec<(String, String)> {
        let errors = compiled(fields).expect_err("refused");
        errors.into_iter().map(|e| (e.pointer, e.message)).collect()
    }

    /// A mapping of one row (`A` to `B`) with these `fields`, compiled with [`TYPES`].
    fn compiled(fields: &str) -> Result<CompiledMapping, Vec<CompileError>> {
        let yaml = format!("rows:\n  - source: A\n    target: B\n    fields:\n{fields}");
        let file: MappingFile = serde_yaml::from_str(&yaml).expect("mapping YAML");
        let ctx = CompileContext {
            field_types: Some(TYPES),
            ..CompileContext::default()
        };
        compile_mapping(&file, ctx)
    }

    #[test]
    fn constants_and_defaults_are_converted_at_load() {
        let fields = r#"
      user.ip: { const: 12345 }
      user.locale: { const: "" }
      properties.value: { path: $.value, default: " 0.50 " }
      properties.contents: { const: [{ content_id: 7, price: "19.90", other: true }] }
"#;
        let (sent, warnings) = built(fields, &json!({}));
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(
            sent,
            json!({"user": {"ip": "12345"},
                   "properties": {"value": 0.5,
                                  "contents": [{"content_id": "7", "price": 19.9, "other": true}]}}),
            "converted as a value built per event is; an empty constant means absent"
        );
        let (sent, _) = built(fields, &json!({"value": "3"}));
        assert_eq!(
            sent["properties"]["value"],
            json!(3),
            "the path's value first"
        );
    }

    #[test]
    fn constants_and_defaults_that_cannot_be_sent_are_refused_at_load() {
        let fields = r#"
      properties.value: { const: lots }
      user.ip: { path: $.ip, default: [203.0.113.7] }
      properties.contents: { const: [{ content_id: p1, price: cheap }, { content_id: p2, quantity: [2] }] }
      user.locale: { const: "12", transform: [number] }
      properties.query: { const: tee }
"#;
        let at = "/rows/0/fields";
        assert_eq!(
            refused(fields),
            [
                (
                    format!("{at}/properties.value/const"),
                    "text that is no number where the platform takes a number: it would never \
                     be sent"
                        .to_owned()
                ),
                (
                    format!("{at}/user.ip/default"),
                    "an array where the platform takes text: it would never be sent".to_owned()
                ),
                (
                    format!("{at}/properties.contents/const"),
                    "`properties.contents[0].price`: text that is no number where the platform \
                     takes a number; `properties.contents[1].quantity`: an array where the \
                     platform takes a number: they would never be sent"
                        .to_owned()
                ),
            ],
            "a constant a transform changes is checked as it comes out, per event"
        );
    }

    #[test]
    fn types_are_found_by_label() {
        assert_eq!(FieldType::at(TYPES, "user.ip"), Some(&TEXT));
        assert_eq!(
            FieldType::at(TYPES, "properties.contents[].price"),
            Some(&NUMBER)
        );
        assert!(matches!(
            FieldType::at(TYPES, "page"),
            Some(FieldType::Object(_))
        ));
        for untyped in [
            "user.email",
            "event_id",
            "user.ip.x",
            "page[]",
            "properties.value[]",
        ] {
            assert_eq!(FieldType::at(TYPES, untyped), None, "{untyped}");
        }
    }

    #[test]
    fn values_of_the_right_type_stay_as_built_and_borrowed() {
        let event = json!({"ip": "203.0.113.7", "price": 19.9, "page": {"url": "https://s.example/"},
                           "items": [{"id": "v1", "price": 5}]});
        let fields = r#"
      user.ip: $.ip
      page: $.page
      properties.contents:
        each: "$.items[*]"
        fields: { content_id: $.id, price: $.price }
"#;
        let (sent, warnings) = built(fields, &event);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(
            sent,
            json!({"user": {"ip": "203.0.113.7"}, "page": {"url": "https://s.example/"},
                   "properties": {"contents": [{"content_id": "v1", "price": 5}]}})
        );
    }

    #[test]
    fn numbers_become_text_and_numeric_text_numbers() {
        let event = json!({"ip": 12345, "value": " 12.50 ", "items": [{"q": "2"}]});
        let fields = r#"
      user.ip: $.ip
      properties.value: $.value
      properties.contents:
        each: "$.items[*]"
        fields: { quantity: $.q }
"#;
        let (sent, warnings) = built(fields, &event);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(
            sent,
            json!({"user": {"ip": "12345"},
                   "properties": {"value": 12.5, "contents": [{"quantity": 2}]}})
        );
        // A whole number past what parsing keeps exactly has no digits to send: left out.
        let event: Value =
            serde_json::from_str(r#"{"ip": 1e3, "value": 1, "items": [{"q": 2}], "id": 1e20}"#)
                .unwrap();
        let with_id = format!("{fields}      properties.query: $.id\n");
        let (sent, warnings) = built(&with_id, &event);
        assert_eq!(sent["user"], json!({"ip": "1000"}));
        assert!(sent["properties"].get("query").is_none(), "{sent}");
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0]
                .1
                .starts_with("a whole number too large to be read exactly"),
            "{warnings:?}"
        );
    }

    #[test]
    fn values_that_do_not_convert_are_left_out_with_their_field_and_type() {
        let event = json!({"url": ["https://s.example/"], "agent": {"ua": "x"}, "locale": true,
                           "value": "12,50", "query": ["tee"], "ip": "203.0.113.7",
                           "items": [{"id": ["v1"], "price": 5}]});
        let fields = r#"
      page.url: $.url
      user.ua: $.agent
      user.ip: $.ip
      user.locale: $.locale
      user.email: $.query
      properties.value: $.value
      properties.query: $.query
      properties.contents:
        each: "$.items[*]"
        fields: { content_id: $.id, price: $.price }
"#;
        let (sent, warnings) = built(fields, &event);
        assert_eq!(
            sent,
            json!({"user": {"ip": "203.0.113.7", "email": ["tee"]},
                   "properties": {"contents": [{"price": 5}]}}),
            "an object left empty (page) is left out; untyped fields are sent as built"
        );
        let expected = [
            (
                "page.url",
                "an array where the platform takes text: left out",
            ),
            (
                "user.ua",
                "an object where the platform takes text: left out",
            ),
            (
                "user.locale",
                "true or false where the platform takes text: left out",
            ),
            (
                "properties.value",
                "text that is no number where the platform takes a number: left out",
            ),
            (
                "properties.query",
                "an array where the platform takes text: left out",
            ),
            (
                "properties.contents[].content_id",
                "an array where the platform takes text: left out",
            ),
        ];
        let expected: Vec<(String, &str)> = expected
            .iter()
            .map(|(f, m)| ((*f).to_owned(), *m))
            .collect();
        assert_eq!(warnings, expected);
    }

    #[test]
    fn a_value_taken_whole_is_copied_only_to_be_repaired_and_parts_are_named_by_position() {
        let event = json!({
            "page": {"url": 7, "referrer": ["a"], "title": ["kept: not typed"]},
            "items": [{"content_id": "p1", "price": "x"}, "not an object", {"content_id": 42}]
        });
        let fields = "      page: $.page\n      properties.contents: $.items\n";
        let (sent, warnings) = built(fields, &event);
        assert_eq!(
            sent,
            json!({"page": {"url": "7", "title": ["kept: not typed"]},
                   "properties": {"contents": [{"content_id": "p1"}, {"content_id": "42"}]}})
        );
        let fields: Vec<&str> = warnings.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            [
                "page.referrer",
                "properties.contents[0].price",
                "properties.contents[1]"
            ]
        );
        assert_eq!(
            warnings[2].1,
            "text where the platform takes an object: left out"
        );
    }

    #[test]
    fn several_fields_left_out_of_one_value_leave_the_others_in_order() {
        let event = json!({"user": {"ttp": ["x"], "ip": "203.0.113.7", "locale": {"a": 1},
                                    "ua": "UA", "other": [1]}});
        let (sent, warnings) = built("      user: $.user\n", &event);
        assert_eq!(
            sent,
            json!({"user": {"ip": "203.0.113.7", "ua": "UA", "other": [1]}})
        );
        let fields: Vec<&str> = warnings.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            ["user.locale", "user.ttp"],
            "in the event's key order"
        );
    }

    #[test]
    fn without_field_types_nothing_is_checked() {
        let yaml = "rows:\n  - source: A\n    target: B\n    fields:\n      user.ip: $.ip\n";
        let file: MappingFile = serde_yaml::from_str(yaml).expect("mapping YAML");
        let mapping = compile_mapping(&file, CompileContext::default()).expect("compiles");
        let event = json!({"ip": ["x"]});
        let mut warnings = Vec::new();
        let payload = mapping.rows_for("A")[0].build(&event, &mut warnings);
        assert!(warnings.is_empty());
        assert_eq!(
            Payload::Object(payload).to_value(),
            json!({"user": {"ip": ["x"]}})
        );
    }

    #[test]
    fn warnings_never_hold_the_value() {
        let event = json!({"ip": ["198.51.100.23"], "user": {"ttp": {"name": "Amsterdam"}}});
        let (_, warnings) = built("      user.ip: $.ip\n      page: $.user\n", &event);
        let (_, more) = built("      user: $.user\n", &event);
        assert_eq!(warnings.len() + more.len(), 2, "{warnings:?} {more:?}");
        for (field, message) in warnings.iter().chain(&more) {
            for text in [field.as_str(), message] {
                assert!(
                    !text.contains("198.51") && !text.contains("Amsterdam"),
                    "{text}"
                );
            }
        }
    }
}
