//! A destination payload as built from one event: a tree that borrows its keys from the compiled
//! plan and every unchanged value from the event, so building it allocates only for the values a
//! transform made and the tree's own vectors. It serializes directly; [`Payload::to_value`] gives a
//! `serde_json::Value` where one is needed.

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
}

pub fn value_is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
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
