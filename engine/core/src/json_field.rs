//! One top-level field of a JSON object's text: found, or rewritten in the text itself. An event
//! whose normalising rewrote only its `timestamp` (an ISO date become unix seconds) is handed on
//! this way, at the cost of a short scan and a copy, instead of being serialized whole; the
//! console points at the field an event's refusal names ([`key_offset`]).
//!
//! The scan reads only text that already parsed as one JSON object (the caller's promise): it
//! follows strings (and their escapes) and brackets up to the field, which events put near the
//! start. A key spelt with escapes (`"time\u0073tamp"`) is not recognised: the caller then
//! serializes, as before. The tests hold the scan to serde_json's own reading of the same texts.

use std::ops::Range;

/// `text`, one JSON object, with the top-level field `key`'s value replaced by `value` (JSON text)
/// when `present`, else with the field added first. `None` when the field is not found as
/// `present` says (a key spelt with escapes, or text that is not one object): serialize instead.
/// `key` must be plain text that needs no escaping.
pub fn with_field(text: &str, key: &str, value: &str, present: bool) -> Option<String> {
    let mut out = String::with_capacity(text.len() + key.len() + value.len() + 4);
    if present {
        let place = value_place(text.as_bytes(), key.as_bytes())?;
        out.push_str(text.get(..place.start)?);
        out.push_str(value);
        out.push_str(text.get(place.end..)?);
        return Some(out);
    }
    // The `{` after any leading JSON white space (checked as a byte, so no cut inside a character).
    let open = text.len() - text.trim_start_matches([' ', '\t', '\n', '\r']).len();
    if text.as_bytes().get(open) != Some(&b'{') {
        return None;
    }
    let (head, tail) = text.split_at(open + 1);
    out.push_str(head);
    out.push('"');
    out.push_str(key);
    out.push_str("\":");
    out.push_str(value);
    if !crate::text::trim_json_space(tail).starts_with('}') {
        out.push(',');
    }
    out.push_str(tail);
    Some(out)
}

/// The byte offset of the opening quote of the top-level key `key` in `text` (one JSON object,
/// `key` plain text that needs no escaping): where an editor should point for that field. A
/// nested field of the same name, or the name as a value, is passed over.
pub fn key_offset(text: &str, key: &str) -> Option<usize> {
    key_place(text.as_bytes(), key.as_bytes()).map(|(open, _)| open)
}

/// Where the value of the top-level field `key` (a plain-text string or a scalar: what a timestamp
/// is) lies in `text`, by byte offsets.
fn value_place(text: &[u8], key: &[u8]) -> Option<Range<usize>> {
    let (_, colon) = key_place(text, key)?;
    let start = skip_space(text, colon + 1);
    Some(start..value_end(text, start)?)
}

/// Where the top-level key `key` is in `text`: the offsets of its opening quote and of the colon
/// after it.
fn key_place(text: &[u8], key: &[u8]) -> Option<(usize, usize)> {
    let mut depth = 0usize;
    let mut at = 0;
    while let Some(&b) = text.get(at) {
        match b {
            b'"' => {
                let end = string_end(text, at)?;
                if depth == 1 && text.get(at + 1..end - 1) == Some(key) {
                    let colon = skip_space(text, end);
                    if text.get(colon) == Some(&b':') {
                        return Some((at, colon));
                    }
                }
                at = end;
            }
            b'{' | b'[' => {
                depth += 1;
                at += 1;
            }
            b'}' | b']' => {
                depth = depth.checked_sub(1)?;
                at += 1;
            }
            _ => at += 1,
        }
    }
    None
}

/// Just past the closing quote of the string whose opening quote is at `open`.
fn string_end(text: &[u8], open: usize) -> Option<usize> {
    let mut at = open + 1;
    loop {
        match text.get(at)? {
            b'\\' => at += 2,
            b'"' => return Some(at + 1),
            _ => at += 1,
        }
    }
}

/// Where the value that starts at `start` ends: a string, or a scalar (number, `true`, `false`,
/// `null`). `None` for an object or a list, which no timestamp is.
fn value_end(text: &[u8], start: usize) -> Option<usize> {
    match text.get(start)? {
        b'"' => string_end(text, start),
        b'{' | b'[' => None,
        _ => Some(
            text[start..]
                .iter()
                .position(|b| matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
                .map_or(text.len(), |n| start + n),
        ),
    }
}

fn skip_space(text: &[u8], mut at: usize) -> usize {
    while matches!(text.get(at), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        at += 1;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_found_at_the_top_only() {
        let text = r#"{"name":"\"timestamp\"","properties":{"timestamp":"x"},"t":["timestamp"],
 "timestamp" : "bad"}"#;
        let at = key_offset(text, "timestamp").expect("found");
        assert_eq!(&text[at..], r#""timestamp" : "bad"}"#);
        assert_eq!(key_offset(r#"{"a":{"timestamp":1}}"#, "timestamp"), None);
        assert_eq!(key_offset(r#"{"a":"timestamp"}"#, "timestamp"), None);
    }
    use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
    use serde_json::Value;
    use serde_json::value::RawValue;
    use std::fmt;

    /// serde_json's answer: where the value of the top-level field `key` lies (from the raw text
    /// it borrows), read by its own parser.
    fn oracle(text: &str, key: &str) -> Option<Range<usize>> {
        struct Find<'k>(&'k str);
        impl<'de> Visitor<'de> for Find<'_> {
            type Value = Option<&'de RawValue>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut found = None;
                while let Some(k) = map.next_key::<String>()? {
                    match k == self.0 {
                        true => found = Some(map.next_value::<&'de RawValue>()?),
                        false => drop(map.next_value::<IgnoredAny>()?),
                    }
                }
                Ok(found)
            }
        }
        struct Seed<'k>(&'k str);
        impl<'de> DeserializeSeed<'de> for Seed<'_> {
            type Value = Option<&'de RawValue>;
            fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_map(Find(self.0))
            }
        }
        let raw = Seed(key)
            .deserialize(&mut serde_json::Deserializer::from_str(text))
            .unwrap()?;
        let start = raw.get().as_ptr() as usize - text.as_ptr() as usize;
        Some(start..start + raw.get().len())
    }

    fn parsed(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn the_scan_finds_what_serde_json_finds() {
        let samples = include_str!("../../../examples/events.ndjson");
        let crafted = [
            r#"{"a":"\"timestamp\":1","timestamp":2}"#,
            r#"{"a":{"timestamp":1},"b":[{"timestamp":[]}],"timestamp":"x\\"}"#,
            r#"{"a":"\\","timestamp" :	null }"#,
            r#"{"timestamp":-1.5e3}"#,
            r#"{ "b" : [ "]" , "[" , { "}" : "{" } ] , "timestamp" : "2024-09-02T12:30:00Z" }"#,
            r#"{"timestamps":1,"timestam":2,"timestamp":true}"#,
            r#"{"a":"timestamp","b":1}"#,
            r#"{"a":["timestamp",{"timestamp":3}]}"#,
            "{\"\\u00e9\":\"\\ud83d\\ude00\",\"timestamp\":\"\u{e9}\"}",
        ];
        let texts = samples
            .lines()
            .filter(|l| l.starts_with('{'))
            .chain(crafted);
        let mut found = 0;
        for text in texts {
            let ours = value_place(text.as_bytes(), b"timestamp");
            assert_eq!(ours, oracle(text, "timestamp"), "{text}");
            found += usize::from(ours.is_some());
        }
        assert!(
            found >= 12,
            "the samples and texts hold timestamps: {found}"
        );
    }

    #[test]
    fn a_field_s_value_is_replaced_where_it_stands() {
        let text = r#"{"a":{"timestamp":"x"},"timestamp" : "2024-09-02T12:30:00Z","b":[1]}"#;
        let out = with_field(text, "timestamp", "1725280200", true).unwrap();
        assert_eq!(
            out,
            r#"{"a":{"timestamp":"x"},"timestamp" : 1725280200,"b":[1]}"#
        );
    }

    #[test]
    fn a_key_written_with_escapes_is_left_to_the_caller() {
        let text = r#"{"time\u0073tamp":null,"s":"\"timestamp\":1"}"#;
        assert_eq!(with_field(text, "timestamp", "7", true), None);
    }

    #[test]
    fn a_missing_field_is_added_first() {
        let out = with_field(" \n{ \"a\" : 1 }", "timestamp", "7", false).unwrap();
        assert_eq!(out, " \n{\"timestamp\":7, \"a\" : 1 }");
        assert_eq!(parsed(&out), parsed(r#"{"timestamp":7,"a":1}"#));
        let empty = with_field("{}", "timestamp", "7", false).unwrap();
        assert_eq!(empty, r#"{"timestamp":7}"#);
        let blank = with_field("{ }", "timestamp", "7", false).unwrap();
        assert_eq!(blank, r#"{"timestamp":7 }"#);
    }

    #[test]
    fn text_that_is_not_an_object_gives_nothing() {
        for text in ["[1]", "1", "", r#"["timestamp",1]"#, "\u{feff}{}"] {
            assert_eq!(with_field(text, "timestamp", "7", false), None, "{text}");
            assert_eq!(with_field(text, "timestamp", "7", true), None, "{text}");
        }
    }
}
