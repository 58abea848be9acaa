//! A destination payload as built from one event: a tree that borrows its keys from the compiled
//! plan and every unchanged value from the event, so building it allocates only for the values a
//! transform made and the tree's own vectors. It serializes directly, and writes its JSON text
//! faster with [`Payload::write_json`]; [`Payload::to_value`] gives a `serde_json::Value` where one
//! is needed.

use crate::json_text;
use serde::Serialize;
use serde::ser::{SerializeMap, SerializeSeq};
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq)]
pub enum Payload<'a> {
    /// A value of the event (or of the plan: a constant), unchanged.
    Ref(&'a Value),
    /// Text borrowed from the event or the plan.
    Str(&'a str),
    /// A value made while building (a hash, a number, ...).
    Owned(Value),
    /// An object, fields in plan order.
    Object(Vec<(&'a str, Payload<'a>)>),
    Array(Vec<Payload<'a>>),
}

impl<'a> Payload<'a> {
    /// Whether the value counts as absent: `null`, `""`, `[]`, `{}`.
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        match self {
            Payload::Ref(v) => value_is_empty(v),
            Payload::Owned(v) => value_is_empty(v),
            Payload::Str(s) => s.is_empty(),
            Payload::Object(fields) => fields.is_empty(),
            Payload::Array(items) => items.is_empty(),
        }
    }

    /// The field `key` of an object payload.
    pub fn get(&self, key: &str) -> Option<&Payload<'a>> {
        match self {
            Payload::Object(fields) => fields.iter().find(|(k, _)| *k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Whether both hold the same JSON (a borrowed and an owned copy of one value are the same).
    /// Text and values are compared in place; objects and arrays through [`Payload::to_value`].
    pub fn same_json(&self, other: &Payload<'_>) -> bool {
        match (self.as_text(), other.as_text()) {
            (Some(a), Some(b)) => return a == b,
            (Some(_), None) | (None, Some(_)) if self.is_leaf() && other.is_leaf() => return false,
            _ => {}
        }
        match (self.as_json(), other.as_json()) {
            (Some(a), Some(b)) => a == b,
            _ => self.to_value() == other.to_value(),
        }
    }

    /// The text of a string payload, borrowed.
    fn as_text(&self) -> Option<&str> {
        match self {
            Payload::Str(s) => Some(s),
            Payload::Ref(Value::String(s)) | Payload::Owned(Value::String(s)) => Some(s),
            _ => None,
        }
    }

    /// The value of a payload that holds one (not built objects or arrays).
    pub fn as_json(&self) -> Option<&Value> {
        match self {
            Payload::Ref(v) => Some(v),
            Payload::Owned(v) => Some(v),
            _ => None,
        }
    }

    fn is_leaf(&self) -> bool {
        matches!(self, Payload::Str(_) | Payload::Ref(_) | Payload::Owned(_))
    }

    /// An owned JSON value with the same content.
    pub fn to_value(&self) -> Value {
        match self {
            Payload::Ref(v) => (*v).clone(),
            Payload::Str(s) => Value::String((*s).to_owned()),
            Payload::Owned(v) => v.clone(),
            Payload::Object(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), v.to_value()))
                    .collect::<Map<_, _>>(),
            ),
            Payload::Array(items) => Value::Array(items.iter().map(Payload::to_value).collect()),
        }
    }

    /// Writes the payload's JSON text: the bytes `serde_json::to_writer` writes, faster
    /// ([`json_text`]).
    pub fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        match self {
            Payload::Ref(v) => json_text::write_value(out, v),
            Payload::Owned(v) => json_text::write_value(out, v),
            Payload::Str(s) => json_text::write_str(out, s),
            Payload::Array(items) => json_text::write_array(out, items, |out, p| p.write_json(out)),
            Payload::Object(fields) => {
                let entries = fields.iter().map(|(key, value)| (*key, value));
                json_text::write_object(out, entries, |out, value| value.write_json(out))
            }
        }
    }
}

/// Whether `v` is no value to send: `null`, a text of white space only, `[]` or `{}`.
#[inline(always)]
pub fn value_is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => crate::text::trim(s).is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// Leaves out of `v`'s objects every field without a value ([`value_is_empty`]) and of its lists
/// every item without one, innermost first (`{"page": {"url": " "}}` loses `page` whole), as the
/// mapping never sends a field without a value: for event objects made outside the mapping (what
/// a payload plugin returned).
pub fn drop_empty(v: &mut Value) {
    match v {
        Value::Object(fields) => fields.retain(|_, field| {
            drop_empty(field);
            !value_is_empty(field)
        }),
        Value::Array(items) => items.retain_mut(|item| {
            drop_empty(item);
            !value_is_empty(item)
        }),
        _ => {}
    }
}

impl Serialize for Payload<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Payload::Ref(v) => v.serialize(s),
            Payload::Str(v) => s.serialize_str(v),
            Payload::Owned(v) => v.serialize(s),
            Payload::Object(fields) => {
                let mut map = s.serialize_map(Some(fields.len()))?;
                for (k, v) in fields {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
            Payload::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_and_items_without_a_value_are_dropped_innermost_first() {
        let mut v = json!({
            "event": "Purchase", "value": 0, "flag": false,
            "page": {"url": " ", "referrer": null},
            "user": {"email": ["", "d"], "ip": []},
            "contents": [{}, {"content_id": "", "quantity": 1}, "\t"]
        });
        drop_empty(&mut v);
        assert_eq!(
            v,
            json!({"event": "Purchase", "value": 0, "flag": false, "user": {"email": ["d"]},
                   "contents": [{"quantity": 1}]})
        );
    }

    #[test]
    fn same_json_compares_content_not_form() {
        let s = json!("a@b");
        let n = json!(1);
        let obj = json!({"k": "v"});
        assert!(Payload::Str("a@b").same_json(&Payload::Ref(&s)));
        assert!(Payload::Owned(json!("a@b")).same_json(&Payload::Str("a@b")));
        assert!(!Payload::Str("a@b").same_json(&Payload::Str("a@c")));
        assert!(!Payload::Str("1").same_json(&Payload::Ref(&n)));
        assert!(Payload::Owned(json!(1)).same_json(&Payload::Ref(&n)));
        assert!(Payload::Object(vec![("k", Payload::Str("v"))]).same_json(&Payload::Ref(&obj)));
        assert!(!Payload::Object(vec![("k", Payload::Str("w"))]).same_json(&Payload::Ref(&obj)));
        assert!(!Payload::Array(vec![]).same_json(&Payload::Str("")));
    }

    #[test]
    fn write_json_writes_what_serde_json_writes() {
        let event = json!({"n": 1.5, "s": "quo\"te", "o": {"k": [1, "\n"]}});
        let payload = Payload::Object(vec![
            ("ref", Payload::Ref(&event)),
            ("str", Payload::Str("tab\there")),
            ("owned", Payload::Owned(json!(["a", 2, null, true]))),
            ("empty", Payload::Object(vec![])),
            (
                "array",
                Payload::Array(vec![Payload::Str("x"), Payload::Array(vec![])]),
            ),
            ("a \"key\"", Payload::Str("plain")),
        ]);
        let mut out = Vec::new();
        payload.write_json(&mut out).expect("writes");
        assert_eq!(out, serde_json::to_vec(&payload).expect("serializes"));
    }
}
