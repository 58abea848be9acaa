//! JSON parsed with every object's keys checked for repeats. serde_json keeps the last of two equal
//! keys and drops the first without a word, so `{"event_name":"Searched","event_name":"Placed
//! Order"}` would become an order; an event is input where that guess is not ours to make.
//! [`Unique`] builds the same `serde_json::Value` as serde_json does, refusing a repeated key with
//! its name and place instead.

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::map::Entry;
use serde_json::{Map, Number, Value};
use std::fmt;

/// A JSON value none of whose objects repeats a key.
#[derive(Debug, Clone, PartialEq)]
pub struct Unique(pub Value);

/// Parses `text` into a [`Unique`] value: serde_json's errors, and a repeated key as a data error
/// (`serde_json::error::Category::Data`) that names it.
pub fn from_str(text: &str) -> serde_json::Result<Value> {
    serde_json::from_str::<Unique>(text).map(|u| u.0)
}

impl<'de> Deserialize<'de> for Unique {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(Build).map(Unique)
    }
}

/// Builds one value, its nested values the same way.
struct Build;

impl<'de> DeserializeSeed<'de> for Build {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(Build)
    }
}

impl<'de> Visitor<'de> for Build {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(Build)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Build)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            match object.entry(key) {
                Entry::Vacant(place) => {
                    place.insert(map.next_value_seed(Build)?);
                }
                Entry::Occupied(taken) => {
                    return Err(de::Error::custom(format_args!(
                        "`{}` is given twice in one object; send each key once",
                        taken.key()
                    )));
                }
            }
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::error::Category;

    #[test]
    fn builds_what_serde_json_builds() {
        let texts = [
            r#"{"a":1,"b":[true,null,-2,3.5,"x\n"],"c":{"d":{}},"e":[]}"#,
            r#"[1e308, -0, 18446744073709551615, -9223372036854775808, "\ud83d\ude00"]"#,
            r#""text""#,
            "null",
        ];
        for text in texts {
            let ours = from_str(text).unwrap();
            let theirs: Value = serde_json::from_str(text).unwrap();
            assert_eq!(ours, theirs, "{text}");
            assert_eq!(ours.to_string(), theirs.to_string(), "{text}");
        }
    }

    #[test]
    fn a_repeated_key_is_refused_with_its_name_and_place_at_any_depth() {
        for (text, key) in [
            (
                r#"{"event_name":"Searched","event_name":"Placed Order"}"#,
                "event_name",
            ),
            (r#"{"properties":{"a":1,"b":2,"a":3}}"#, "a"),
            (r#"[{"x":[{"k":1,"k":1}]}]"#, "k"),
        ] {
            let e = from_str(text).unwrap_err();
            assert_eq!(e.classify(), Category::Data, "{text}");
            let message = e.to_string();
            assert!(
                message.contains(&format!("`{key}` is given twice")),
                "{message}"
            );
            assert!(message.contains("line 1 column"), "{message}");
        }
        // The same key in different objects is no repeat.
        assert!(from_str(r#"{"a":{"a":1},"b":{"a":2}}"#).is_ok());
    }

    #[test]
    fn nesting_is_limited_as_serde_json_limits_it() {
        let nested = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        assert!(from_str(&nested(127)).is_ok());
        assert!(from_str(&nested(129)).is_err());
    }
}
