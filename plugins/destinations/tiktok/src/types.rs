//! The JSON types TikTok's Events API takes for the fields it gets as they are (not hashed), and
//! the check of each built event object against them (called by `encode`, once per event object).
//!
//! TikTok refuses a whole request (code 40002) for one field of the wrong type, so a wrong type is
//! handled here, before sending: a number where TikTok takes text becomes its text (`12345` →
//! `"12345"`, as the `string` transform writes it), text that is a number where TikTok takes a
//! number becomes that number (as the `number` transform reads it); anything else (an array, an
//! object, `true`, text that is no number) is left out with a [`Warning`] that names TikTok's path
//! of the field (`properties.contents.0.content_id`) and the type found, never the value. A
//! `contents` entry without a `content_id` is sent, with a warning. Hashed keys (`user.email`, ...)
//! are not checked here: their transforms end in `sha256`, checked at load ([`crate::hashed`]).
//!
//! Built fields are checked in place, in one walk; nothing is allocated unless a field is of the
//! wrong type. A value taken whole from the event (`page: "$.properties.page"`) is first read
//! through, and copied only when a part of it must change.

use serde_json::Value;
use smallvec::SmallVec;
use std::borrow::Cow;
use std::sync::Arc;
use switchyard_core::rules::fields::Warning;
use switchyard_core::rules::payload::Payload;
use switchyard_core::rules::transform::CompiledTransform;

/// What TikTok takes at a field.
#[derive(Clone, Copy)]
enum Want {
    Text,
    Number,
    /// An object of this kind, whose fields [`Kind::want`] gives the wants of.
    Object(Kind),
    /// `properties.contents`: a list of product objects.
    Contents,
}

/// The objects whose fields TikTok types.
#[derive(Clone, Copy)]
enum Kind {
    User,
    Page,
    Properties,
    Content,
}

impl Kind {
    /// What TikTok takes at the field `key` of this object (`None`: any value, not checked).
    fn want(self, key: &str) -> Option<Want> {
        match self {
            Kind::User => user_field(key),
            Kind::Page => page_field(key),
            Kind::Properties => properties_field(key),
            Kind::Content => content_field(key),
        }
    }
}

/// The fields of TikTok's event object that hold checked fields.
fn event_field(key: &str) -> Option<Want> {
    match key {
        "user" => Some(Want::Object(Kind::User)),
        "page" => Some(Want::Object(Kind::Page)),
        "properties" => Some(Want::Object(Kind::Properties)),
        _ => None,
    }
}

/// The matching keys sent as they are (the hashed ones are checked at load).
fn user_field(key: &str) -> Option<Want> {
    match key {
        "ip" | "user_agent" | "ttclid" | "ttp" | "locale" | "city" | "state" | "country" => {
            Some(Want::Text)
        }
        _ => None,
    }
}

fn page_field(key: &str) -> Option<Want> {
    match key {
        "url" | "referrer" => Some(Want::Text),
        _ => None,
    }
}

fn properties_field(key: &str) -> Option<Want> {
    match key {
        "content_id" | "order_id" | "shop_id" | "query" | "description" | "currency"
        | "content_type" => Some(Want::Text),
        "value" => Some(Want::Number),
        "contents" => Some(Want::Contents),
        _ => None,
    }
}

/// The fields of one `contents` entry.
fn content_field(key: &str) -> Option<Want> {
    match key {
        "content_id" | "content_name" | "content_category" | "brand" | "content_type" => {
            Some(Want::Text)
        }
        "price" | "quantity" => Some(Want::Number),
        _ => None,
    }
}

const CONTENT: Want = Want::Object(Kind::Content);

/// Checks `value`, the top-level field `key` of a TikTok event object, and every field inside it
/// that TikTok types; converts or leaves out what is of the wrong type, with `warnings`. False
/// when the field itself is to be left out.
pub fn check_field(key: &str, value: &mut Payload<'_>, warnings: &mut Vec<Warning>) -> bool {
    let at = At::root(key);
    match (event_field(key), value) {
        (Some(Want::Object(kind)), Payload::Object(fields)) => {
            check_object(kind, fields, &at, warnings)
        }
        (Some(want), value) => check(value, want, &at, warnings),
        (None, _) => true,
    }
}

/// Where a field is in the event object, as TikTok names it: `properties.contents.0.price`. Kept
/// on the stack while walking; written out only for a warning.
struct At<'p> {
    step: Step<'p>,
    parent: Option<&'p At<'p>>,
}

#[derive(Clone, Copy)]
enum Step<'p> {
    Key(&'p str),
    Index(usize),
}

impl<'p> At<'p> {
    fn root(key: &'p str) -> Self {
        At {
            step: Step::Key(key),
            parent: None,
        }
    }

    fn key(&'p self, key: &'p str) -> Self {
        At {
            step: Step::Key(key),
            parent: Some(self),
        }
    }

    fn index(&'p self, i: usize) -> Self {
        At {
            step: Step::Index(i),
            parent: Some(self),
        }
    }

    /// The path, dot-separated.
    fn path(&self) -> String {
        let mut steps = Vec::new();
        let mut here = Some(self);
        while let Some(at) = here {
            steps.push(at.step);
            here = at.parent;
        }
        let parts: Vec<String> = steps
            .iter()
            .rev()
            .map(|s| match s {
                Step::Key(k) => (*k).to_owned(),
                Step::Index(i) => i.to_string(),
            })
            .collect();
        parts.join(".")
    }

    fn warn(&self, message: &'static str, warnings: &mut Vec<Warning>) {
        warnings.push(Warning {
            field: Arc::from(self.path()),
            message,
        });
    }
}

/// Checks a built value against `want`; false when it is to be left out.
fn check(p: &mut Payload<'_>, want: Want, at: &At<'_>, warnings: &mut Vec<Warning>) -> bool {
    let found = match (want, &mut *p) {
        (Want::Object(kind), Payload::Object(fields)) => {
            return check_object(kind, fields, at, warnings);
        }
        (Want::Contents, Payload::Array(items)) => return check_contents(items, at, warnings),
        (_, Payload::Object(_)) => Found::Object,
        (_, Payload::Array(_)) => Found::Array,
        (Want::Text, Payload::Str(_)) => return true,
        (_, Payload::Str(s)) => {
            // Text where TikTok takes something else: rare, so copied to be checked as a value.
            *p = Payload::Owned(Value::from(*s));
            return check(p, want, at, warnings);
        }
        (_, Payload::Ref(v)) => {
            if scan(v, want, at, warnings) {
                return true;
            }
            let mut owned = Value::clone(v);
            let keep = repair(&mut owned, want);
            *p = Payload::Owned(owned);
            return keep;
        }
        (_, Payload::Owned(v)) => return scan(v, want, at, warnings) || repair(v, want),
    };
    at.warn(refusal(want, found), warnings);
    false
}

/// [`check`] of a built object of `kind`: the fields of text or numbers where those are wanted
/// (the usual case) pass at a glance; the others are checked one by one.
fn check_object(
    kind: Kind,
    fields: &mut Vec<(&str, Payload<'_>)>,
    at: &At<'_>,
    warnings: &mut Vec<Warning>,
) -> bool {
    let mut left_out = LeftOut::new();
    for (i, (key, value)) in fields.iter_mut().enumerate() {
        let Some(want) = kind.want(key) else {
            continue;
        };
        if !fine_as_is(value, want) && !check(value, want, &at.key(key), warnings) {
            left_out.push(i);
        }
    }
    remove(fields, left_out);
    !fields.is_empty()
}

/// [`check`] of a built `contents` list: each entry checked, and named when it lacks its id.
fn check_contents(items: &mut Vec<Payload<'_>>, at: &At<'_>, warnings: &mut Vec<Warning>) -> bool {
    let mut left_out = LeftOut::new();
    for (i, item) in items.iter_mut().enumerate() {
        let here = at.index(i);
        if lacks_id(item) {
            warn_missing_id(&here, warnings);
        }
        let fine = match item {
            Payload::Object(fields) => check_object(Kind::Content, fields, &here, warnings),
            other => check(other, CONTENT, &here, warnings),
        };
        if !fine {
            left_out.push(i);
        }
    }
    remove(items, left_out);
    !items.is_empty()
}

/// Whether a built value is what TikTok takes as `want` at a glance: text or a number where that
/// is wanted, the usual case, settled without a call.
#[inline(always)]
fn fine_as_is(p: &Payload<'_>, want: Want) -> bool {
    matches!(
        (want, p),
        (
            Want::Text,
            Payload::Str(_) | Payload::Ref(Value::String(_)) | Payload::Owned(Value::String(_))
        ) | (
            Want::Number,
            Payload::Ref(Value::Number(_)) | Payload::Owned(Value::Number(_))
        )
    )
}

/// The positions of the entries of one object or list to leave out, in order.
type LeftOut = SmallVec<[usize; 4]>;

/// Removes the entries at `left_out` (in order) from `entries`.
fn remove<T>(entries: &mut Vec<T>, left_out: LeftOut) {
    for i in left_out.into_iter().rev() {
        entries.remove(i);
    }
}

/// Whether a `contents` entry is an object without a `content_id`.
fn lacks_id(entry: &Payload<'_>) -> bool {
    match entry {
        Payload::Object(fields) => !fields.iter().any(|(key, _)| *key == "content_id"),
        Payload::Ref(v) => value_lacks_id(v),
        Payload::Owned(v) => value_lacks_id(v),
        Payload::Str(_) | Payload::Array(_) => false,
    }
}

fn value_lacks_id(entry: &Value) -> bool {
    entry.is_object() && entry.get("content_id").is_none()
}

fn warn_missing_id(at: &At<'_>, warnings: &mut Vec<Warning>) {
    at.key("content_id").warn(
        "missing: sent without it, the entry matches no catalog item",
        warnings,
    );
}

/// Whether a value is what TikTok takes as `want`, every part of it, as it is; warns about every
/// part that is not (and about `contents` entries without a `content_id`).
fn scan(v: &Value, want: Want, at: &At<'_>, warnings: &mut Vec<Warning>) -> bool {
    match (want, v) {
        (Want::Object(kind), Value::Object(map)) => {
            let mut fine = true;
            for (key, value) in map {
                if let Some(want) = kind.want(key) {
                    fine &= scan(value, want, &at.key(key), warnings);
                }
            }
            fine
        }
        (Want::Contents, Value::Array(items)) => {
            let mut fine = true;
            for (i, item) in items.iter().enumerate() {
                let here = at.index(i);
                if value_lacks_id(item) {
                    warn_missing_id(&here, warnings);
                }
                fine &= scan(item, CONTENT, &here, warnings);
            }
            fine
        }
        _ => match judge(want, v) {
            Verdict::Fine => true,
            Verdict::Becomes(_) => false,
            Verdict::Refused(message) => {
                at.warn(message, warnings);
                false
            }
        },
    }
}

/// Makes `v` what TikTok takes as `want`, as [`scan`] found it is not (without warning again):
/// converts what converts, removes the rest. False when nothing of it is left.
fn repair(v: &mut Value, want: Want) -> bool {
    match (want, &mut *v) {
        (Want::Object(kind), Value::Object(map)) => {
            map.retain(|key, value| kind.want(key).is_none_or(|want| repair(value, want)));
            !map.is_empty()
        }
        (Want::Contents, Value::Array(items)) => {
            items.retain_mut(|item| repair(item, CONTENT));
            !items.is_empty()
        }
        _ => match judge(want, v) {
            Verdict::Fine => true,
            Verdict::Becomes(new) => {
                *v = new;
                true
            }
            Verdict::Refused(_) => false,
        },
    }
}

/// What becomes of a value at a field that wants `want`.
enum Verdict {
    Fine,
    Becomes(Value),
    Refused(&'static str),
}

fn judge(want: Want, v: &Value) -> Verdict {
    let found = match (want, v) {
        (Want::Text, Value::String(_))
        | (Want::Number, Value::Number(_))
        | (Want::Object(_), Value::Object(_))
        | (Want::Contents, Value::Array(_)) => return Verdict::Fine,
        (Want::Text, Value::Number(n)) => return Verdict::Becomes(Value::String(n.to_string())),
        (Want::Number, Value::String(_)) => {
            match CompiledTransform::Number.apply(Cow::Borrowed(v), &Value::Null) {
                Ok(Some(number)) => return Verdict::Becomes(number.into_owned()),
                _ => Found::Text,
            }
        }
        (_, Value::Null) => Found::Null,
        (_, Value::Bool(_)) => Found::Bool,
        (_, Value::Number(_)) => Found::Number,
        (_, Value::String(_)) => Found::Text,
        (_, Value::Array(_)) => Found::Array,
        (_, Value::Object(_)) => Found::Object,
    };
    Verdict::Refused(refusal(want, found))
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

/// The warning for `found` where TikTok takes `want`: the type found and the type wanted.
fn refusal(want: Want, found: Found) -> &'static str {
    macro_rules! refused {
        ($want:literal) => {
            match found {
                Found::Null => concat!("null where TikTok takes ", $want, ": left out"),
                Found::Bool => concat!("true or false where TikTok takes ", $want, ": left out"),
                Found::Number => concat!("a number where TikTok takes ", $want, ": left out"),
                Found::Text => concat!("text where TikTok takes ", $want, ": left out"),
                Found::Array => concat!("an array where TikTok takes ", $want, ": left out"),
                Found::Object => concat!("an object where TikTok takes ", $want, ": left out"),
            }
        };
    }
    match (want, found) {
        (Want::Number, Found::Text) => {
            "text that is no number where TikTok takes a number: left out"
        }
        (Want::Text, _) => refused!("text"),
        (Want::Number, _) => refused!("a number"),
        (Want::Object(_), _) => refused!("an object"),
        (Want::Contents, _) => refused!("a list of objects"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The fields of `payload` (an object) checked as `encode` checks them, with the warnings.
    fn checked<'a>(mut payload: Vec<(&'a str, Payload<'a>)>) -> (Value, Vec<(String, String)>) {
        let mut warnings = Vec::new();
        payload.retain_mut(|(key, value)| check_field(key, value, &mut warnings));
        let warnings = warnings
            .into_iter()
            .map(|w| (w.field.to_string(), w.message.to_owned()))
            .collect();
        (Payload::Object(payload).to_value(), warnings)
    }

    #[test]
    fn fields_of_the_right_type_stay_as_built_and_borrowed() {
        let event = json!({"ip": "203.0.113.7", "url": "https://shop.example/p", "price": 19.9,
                           "page": {"url": "https://shop.example/", "referrer": "https://a.example/"}});
        let mut fields = vec![
            ("event", Payload::Str("Purchase")),
            (
                "user",
                Payload::Object(vec![("ip", Payload::Ref(&event["ip"]))]),
            ),
            ("page", Payload::Ref(&event["page"])),
            (
                "properties",
                Payload::Object(vec![(
                    "contents",
                    Payload::Array(vec![Payload::Object(vec![
                        ("content_id", Payload::Str("v1")),
                        ("price", Payload::Ref(&event["price"])),
                    ])]),
                )]),
            ),
        ];
        let before = Payload::Object(fields.clone());
        let mut warnings = Vec::new();
        fields.retain_mut(|(key, value)| check_field(key, value, &mut warnings));
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(Payload::Object(fields.clone()), before);
        assert!(matches!(fields[2].1, Payload::Ref(_)), "not copied");
    }

    #[test]
    fn several_fields_left_out_of_one_object_leave_the_others_in_order() {
        let event = json!({"list": ["x"], "map": {"a": 1}, "ip": "203.0.113.7", "ua": "UA"});
        let (sent, warnings) = checked(vec![(
            "user",
            Payload::Object(vec![
                ("ttclid", Payload::Ref(&event["list"])),
                ("ip", Payload::Ref(&event["ip"])),
                ("ttp", Payload::Ref(&event["map"])),
                ("user_agent", Payload::Ref(&event["ua"])),
                ("locale", Payload::Ref(&event["list"])),
            ]),
        )]);
        assert_eq!(
            sent,
            json!({"user": {"ip": "203.0.113.7", "user_agent": "UA"}})
        );
        let fields: Vec<&str> = warnings.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(fields, ["user.ttclid", "user.ttp", "user.locale"]);
    }

    #[test]
    fn a_number_where_text_is_taken_becomes_its_text() {
        let n = json!(12345);
        let (sent, warnings) = checked(vec![(
            "user",
            Payload::Object(vec![("ip", Payload::Ref(&n))]),
        )]);
        assert_eq!(sent, json!({"user": {"ip": "12345"}}));
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    #[test]
    fn values_that_do_not_convert_are_left_out_with_their_path_and_type() {
        let event = json!({"url": ["https://shop.example/"], "agent": {"ua": "x"}, "locale": true,
                           "value": "12,50", "query": ["tee"]});
        let (sent, warnings) = checked(vec![
            (
                "page",
                Payload::Object(vec![("url", Payload::Ref(&event["url"]))]),
            ),
            (
                "user",
                Payload::Object(vec![
                    ("user_agent", Payload::Ref(&event["agent"])),
                    ("locale", Payload::Ref(&event["locale"])),
                    ("email", Payload::Ref(&event["query"])), // hashed keys are not checked here
                ]),
            ),
            (
                "properties",
                Payload::Object(vec![
                    ("value", Payload::Ref(&event["value"])),
                    ("query", Payload::Ref(&event["query"])),
                ]),
            ),
        ]);
        assert_eq!(
            sent,
            json!({"user": {"email": ["tee"]}}),
            "page emptied is left out"
        );
        let expected = [
            ("page.url", "an array where TikTok takes text: left out"),
            (
                "user.user_agent",
                "an object where TikTok takes text: left out",
            ),
            (
                "user.locale",
                "true or false where TikTok takes text: left out",
            ),
            (
                "properties.value",
                "text that is no number where TikTok takes a number: left out",
            ),
            (
                "properties.query",
                "an array where TikTok takes text: left out",
            ),
        ];
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(f, m)| ((*f).to_owned(), (*m).to_owned()))
            .collect();
        assert_eq!(warnings, expected);
    }

    #[test]
    fn contents_entries_are_checked_and_named_by_position() {
        let event =
            json!({"ids": ["v1", "v2"], "price": "19.90", "quantity": "two", "brand": false});
        let contents = Payload::Array(vec![
            Payload::Object(vec![
                ("content_id", Payload::Ref(&event["ids"])),
                ("price", Payload::Ref(&event["price"])),
            ]),
            Payload::Object(vec![
                ("quantity", Payload::Ref(&event["quantity"])),
                ("brand", Payload::Ref(&event["brand"])),
                ("content_name", Payload::Str("Tee")),
            ]),
        ]);
        let (sent, warnings) = checked(vec![(
            "properties",
            Payload::Object(vec![("contents", contents)]),
        )]);
        assert_eq!(
            sent,
            json!({"properties": {"contents": [{"price": 19.9}, {"content_name": "Tee"}]}})
        );
        let fields: Vec<&str> = warnings.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            [
                "properties.contents.0.content_id",
                "properties.contents.1.content_id",
                "properties.contents.1.quantity",
                "properties.contents.1.brand",
            ]
        );
        assert_eq!(warnings[0].1, "an array where TikTok takes text: left out");
        assert_eq!(
            warnings[1].1,
            "missing: sent without it, the entry matches no catalog item"
        );
    }

    #[test]
    fn a_value_taken_whole_is_copied_only_to_be_repaired() {
        let event = json!({
            "page": {"url": 7, "referrer": ["a"], "title": ["kept: not TikTok's"]},
            "items": [{"product_id": "p1", "price": "x"}, "not an object", {"content_id": 42}]
        });
        let (sent, warnings) = checked(vec![
            ("page", Payload::Ref(&event["page"])),
            (
                "properties",
                Payload::Object(vec![("contents", Payload::Ref(&event["items"]))]),
            ),
        ]);
        assert_eq!(
            sent,
            json!({"page": {"url": "7", "title": ["kept: not TikTok's"]},
                   "properties": {"contents": [{"product_id": "p1"}, {"content_id": "42"}]}})
        );
        let fields: Vec<&str> = warnings.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            [
                "page.referrer",
                "properties.contents.0.content_id",
                "properties.contents.0.price",
                "properties.contents.1",
            ]
        );
        assert_eq!(warnings[3].1, "text where TikTok takes an object: left out");
    }

    #[test]
    fn entries_taken_whole_from_the_event_are_checked_for_their_id_too() {
        let event = json!({"items": [{"content_id": "c1"}, {"name": "Cap"}]});
        let items = event["items"].as_array().expect("items");
        let contents = Payload::Array(items.iter().map(Payload::Ref).collect());
        let (sent, warnings) = checked(vec![(
            "properties",
            Payload::Object(vec![("contents", contents)]),
        )]);
        assert_eq!(sent["properties"]["contents"], event["items"]);
        let fields: Vec<&str> = warnings.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(fields, ["properties.contents.1.content_id"]);
    }

    #[test]
    fn warnings_never_hold_the_value() {
        let event = json!({"ip": ["198.51.100.23"], "city": {"name": "Amsterdam"}});
        let (_, warnings) = checked(vec![(
            "user",
            Payload::Object(vec![
                ("ip", Payload::Ref(&event["ip"])),
                ("city", Payload::Ref(&event["city"])),
            ]),
        )]);
        assert_eq!(warnings.len(), 2);
        for (field, message) in &warnings {
            assert!(!message.contains("198.51") && !message.contains("Amsterdam"));
            assert!(!field.contains("198.51") && !field.contains("Amsterdam"));
        }
    }
}
