//! An event's text rewritten in place of serializing the event: its top-level keys renamed
//! (`eventID` to `event_id`) and one top-level field's value set (an ISO `timestamp` become unix
//! seconds), at the cost of one short scan and a copy ([`rewrite`]). Also where a top-level key
//! is, for the console to point at the field an event's refusal names ([`key_offset`]).
//!
//! The scan reads only text that already parsed as one JSON object (the caller's promise): it
//! follows strings (and their escapes) and brackets, and stops once it has found what it looks
//! for, which events put near the start. A key spelt with escapes (`"time\u0073tamp"`) is not
//! recognised: the caller then serializes, as before. The tests hold the scan to serde_json's own
//! reading of the same texts.

use crate::text::{JSON_SPACE, is_json_space};
use std::ops::Range;

/// A top-level field to set: its key, its value as JSON text, and whether the text has the field
/// (its value is written over) or not (the field is added first).
#[derive(Debug, Clone, Copy)]
pub struct Set<'a> {
    pub key: &'a str,
    pub value: &'a str,
    pub present: bool,
}

/// `text`, one JSON object, with each top-level key `from` of `renames` written `to`, and `set`
/// done. `None` when a key is not found once where it should be (a key spelt with escapes, or
/// text that is not one object): serialize instead. Keys and names must be plain text that needs
/// no escaping, each key renamed at most once.
pub fn rewrite(text: &str, renames: &[(&str, &str)], set: Option<Set<'_>>) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len() + 32);
    // `text[..copied]` is in `out`, edited.
    let mut copied = 0;
    if let Some(Set {
        key,
        value,
        present: false,
    }) = set
    {
        // The `{` after any leading JSON white space (a byte: no cut inside a character).
        let open = text.len() - text.trim_start_matches(JSON_SPACE).len();
        if bytes.get(open) != Some(&b'{') {
            return None;
        }
        out.push_str(&text[..=open]);
        out.push('"');
        out.push_str(key);
        out.push_str("\":");
        out.push_str(value);
        if !crate::text::trim_json_space(&text[open + 1..]).starts_with('}') {
            out.push(',');
        }
        copied = open + 1;
    }
    let written_over = set.filter(|s| s.present);
    let mut left = renames.len() + usize::from(written_over.is_some());
    let mut keys = TopKeys {
        text: bytes,
        at: 0,
        depth: 0,
    };
    while left > 0 {
        let (quoted, colon) = keys.next()?;
        let key = &bytes[quoted.start + 1..quoted.end - 1];
        let (edited, replacement) =
            if let Some((_, to)) = renames.iter().find(|(from, _)| from.as_bytes() == key) {
                out.push_str(text.get(copied..quoted.start)?);
                out.push('"');
                out.push_str(to);
                (quoted, "\"")
            } else if let Some(field) = written_over.filter(|s| s.key.as_bytes() == key) {
                let start = skip_space(bytes, colon + 1);
                let end = value_end(bytes, start)?;
                out.push_str(text.get(copied..start)?);
                (start..end, field.value)
            } else {
                continue;
            };
        out.push_str(replacement);
        copied = edited.end;
        keys.at = edited.end;
        left -= 1;
    }
    out.push_str(text.get(copied..)?);
    Some(out)
}

/// The byte offset of the opening quote of the top-level key `key` in `text` (one JSON object,
/// `key` plain text that needs no escaping): where an editor should point for that field. A
/// nested field of the same name, or the name as a value, is passed over.
pub fn key_offset(text: &str, key: &str) -> Option<usize> {
    let mut keys = TopKeys {
        text: text.as_bytes(),
        at: 0,
        depth: 0,
    };
    std::iter::from_fn(|| keys.next())
        .find(|(quoted, _)| {
            text.as_bytes().get(quoted.start + 1..quoted.end - 1) == Some(key.as_bytes())
        })
        .map(|(quoted, _)| quoted.start)
}

/// The keys of a JSON object's top level, in order: each as the byte range of its quoted text,
/// with the offset of the colon after it.
struct TopKeys<'t> {
    text: &'t [u8],
    at: usize,
    depth: usize,
}

impl TopKeys<'_> {
    fn next(&mut self) -> Option<(Range<usize>, usize)> {
        let text = self.text;
        while let Some(&b) = text.get(self.at) {
            match b {
                b'"' => {
                    let start = self.at;
                    self.at = string_end(text, start)?;
                    if self.depth == 1 {
                        let colon = skip_space(text, self.at);
                        if text.get(colon) == Some(&b':') {
                            return Some((start..self.at, colon));
                        }
                    }
                }
                b'{' | b'[' => {
                    self.depth += 1;
                    self.at += 1;
                }
                b'}' | b']' => {
                    self.depth = self.depth.checked_sub(1)?;
                    self.at += 1;
                }
                _ => self.at += 1,
            }
        }
        None
    }
}

/// Just past the closing quote of the string whose opening quote is at `open` (the next quote or
/// backslash found by `memchr`, a vectorised search: fewer instructions than a loop over bytes
/// over an event's strings, counted in callgrind).
fn string_end(text: &[u8], open: usize) -> Option<usize> {
    let mut at = open + 1;
    loop {
        at += memchr::memchr2(b'"', b'\\', text.get(at..)?)?;
        match text[at] {
            b'\\' => at += 2,
            _ => return Some(at + 1),
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
                .position(|b| matches!(b, b',' | b'}' | b']') || is_json_space(*b))
                .map_or(text.len(), |n| start + n),
        ),
    }
}

fn skip_space(text: &[u8], mut at: usize) -> usize {
    while text.get(at).is_some_and(|b| is_json_space(*b)) {
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

    /// Where the value of the top-level field `key` lies in `text`, by the scan.
    fn value_place(text: &[u8], key: &[u8]) -> Option<Range<usize>> {
        let mut keys = TopKeys {
            text,
            at: 0,
            depth: 0,
        };
        let (_, colon) = std::iter::from_fn(|| keys.next())
            .find(|(quoted, _)| text[quoted.start + 1..quoted.end - 1] == *key)?;
        let start = skip_space(text, colon + 1);
        Some(start..value_end(text, start)?)
    }

    fn with_field(text: &str, key: &str, value: &str, present: bool) -> Option<String> {
        rewrite(
            text,
            &[],
            Some(Set {
                key,
                value,
                present,
            }),
        )
    }

    #[test]
    fn keys_are_renamed_where_they_stand_and_only_at_the_top() {
        let renames = [("eventID", "event_id"), ("eventName", "event_name")];
        let text = r#"{"eventName" : "A", "p":{"eventID":1,"s":"\"eventID\":"}, "eventID":"7"}"#;
        let out = rewrite(text, &renames, None).unwrap();
        assert_eq!(
            out,
            r#"{"event_name" : "A", "p":{"eventID":1,"s":"\"eventID\":"}, "event_id":"7"}"#
        );
        let set = |present| Set {
            key: "timestamp",
            value: "5",
            present,
        };
        let dated = r#"{"eventID":"7","timestamp":"2024-09-02T12:30:00Z","eventName":"A"}"#;
        let out = rewrite(dated, &renames, Some(set(true))).unwrap();
        assert_eq!(out, r#"{"event_id":"7","timestamp":5,"event_name":"A"}"#);
        let undated = r#"{"eventID":"7","eventName":"A"}"#;
        let out = rewrite(undated, &renames, Some(set(false))).unwrap();
        assert_eq!(out, r#"{"timestamp":5,"event_id":"7","event_name":"A"}"#);
        // A key not found as said (spelt with escapes, or absent): the caller serializes.
        let escaped = r#"{"event\u0049D":"7","eventName":"A"}"#;
        assert_eq!(rewrite(escaped, &renames, None), None);
        assert_eq!(rewrite(undated, &renames, Some(set(true))), None);
        assert_eq!(rewrite(r#"{"eventName":"A"}"#, &renames, None), None);
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
