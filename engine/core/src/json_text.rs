//! JSON text written by hand on the hot paths (`map`'s result lines, the payloads delivery sends):
//! the same bytes as `serde_json::to_writer`, faster for the strings these hold. serde_json tests a
//! string byte by byte for characters to escape; here a string is checked in one pass that the
//! compiler vectorises and, when nothing in it needs escaping (nearly always: names, ids, hashes,
//! URLs), copied whole. Strings that need escaping, numbers, `null` and booleans are written by
//! serde_json itself, so escaping and number formatting stay serde_json's; only the brackets,
//! commas and colons around them are written here.

use serde::Serialize;
use serde_json::Value;

/// Writes `value` with serde_json (into a `Vec`, this fails only for a value whose `Serialize`
/// fails, such as a map with keys that are not strings).
pub fn serialize<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) -> serde_json::Result<()> {
    serde_json::to_writer(out, value)
}

/// The text that `write` writes, as a `String`.
pub fn text(
    write: impl FnOnce(&mut Vec<u8>) -> serde_json::Result<()>,
) -> serde_json::Result<String> {
    let mut out = Vec::with_capacity(512);
    write(&mut out)?;
    String::from_utf8(out).map_err(serde::ser::Error::custom)
}

/// The JSON text of `v`. It cannot fail (a `Value`'s keys are strings); were it ever to, the text
/// comes from serde_json's own writer instead, never an empty string.
pub fn value_text(v: &Value) -> String {
    text(|out| write_value(out, v)).unwrap_or_else(|_| v.to_string())
}

/// Writes `s` as a JSON string.
pub fn write_str(out: &mut Vec<u8>, s: &str) -> serde_json::Result<()> {
    if needs_escape(s.as_bytes()) {
        return serialize(out, s);
    }
    out.reserve(s.len() + 2);
    out.push(b'"');
    out.extend_from_slice(s.as_bytes());
    out.push(b'"');
    Ok(())
}

/// Whether a byte of `bytes` must be escaped in a JSON string: a control character, `"` or `\`.
/// Checked by blocks of 16 bytes, the last one padded, so that the compiler checks each block with
/// vector instructions (byte by byte, a check costs several instructions per byte).
fn needs_escape(bytes: &[u8]) -> bool {
    let mut blocks = bytes.chunks_exact(16);
    if blocks.any(block_needs_escape) {
        return true;
    }
    let rest = blocks.remainder();
    let mut last = [b' '; 16];
    last[..rest.len()].copy_from_slice(rest);
    block_needs_escape(&last)
}

/// No early exit inside a block: that is what lets it be checked with vector instructions.
fn block_needs_escape(block: &[u8]) -> bool {
    block.iter().fold(false, |any, &b| {
        any | (b < 0x20) | (b == b'"') | (b == b'\\')
    })
}

/// Writes `items` as a JSON array, each with `write`.
pub fn write_array<T>(
    out: &mut Vec<u8>,
    items: &[T],
    mut write: impl FnMut(&mut Vec<u8>, &T) -> serde_json::Result<()>,
) -> serde_json::Result<()> {
    out.push(b'[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write(out, item)?;
    }
    out.push(b']');
    Ok(())
}

/// Writes `entries` as a JSON object, in their order, each value with `write`.
pub fn write_object<'k, T>(
    out: &mut Vec<u8>,
    entries: impl IntoIterator<Item = (&'k str, T)>,
    mut write: impl FnMut(&mut Vec<u8>, T) -> serde_json::Result<()>,
) -> serde_json::Result<()> {
    out.push(b'{');
    for (i, (key, value)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, key)?;
        out.push(b':');
        write(out, value)?;
    }
    out.push(b'}');
    Ok(())
}

/// Writes `v`.
pub fn write_value(out: &mut Vec<u8>, v: &Value) -> serde_json::Result<()> {
    match v {
        Value::String(s) => write_str(out, s),
        Value::Array(items) => write_array(out, items, write_value),
        Value::Object(map) => {
            write_object(out, map.iter().map(|(k, v)| (k.as_str(), v)), write_value)
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => serialize(out, v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn written(v: &Value) -> String {
        let mut out = Vec::new();
        write_value(&mut out, v).expect("writes");
        String::from_utf8(out).expect("UTF-8")
    }

    #[test]
    fn strings_are_written_as_serde_json_writes_them() {
        let long = "x".repeat(40);
        let mut cases: Vec<String> = vec![
            String::new(),
            "plain".into(),
            "a\"b".into(),
            "back\\slash".into(),
            "tab\tnew\nline\r".into(),
            "\u{0}\u{1}\u{1f}\u{7f}".into(),
            "ünïcödé ✓ 日本 😀".into(),
            "\u{2028}\u{2029}".into(),
            long.clone(),
        ];
        // Something to escape at every place of a string longer than one vector.
        for (i, c) in ["\"", "\\", "\n", "\u{1}"]
            .iter()
            .cycle()
            .take(41)
            .enumerate()
        {
            let mut s = long.clone();
            s.insert_str(i, c);
            cases.push(s);
        }
        for s in cases {
            let v = Value::String(s);
            assert_eq!(written(&v), serde_json::to_string(&v).expect("serializes"));
        }
    }

    #[test]
    fn the_escape_check_finds_every_byte_to_escape_at_every_place() {
        let naive = |bytes: &[u8]| bytes.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\');
        for len in 0..40 {
            for at in 0..len {
                for byte in 0..=255u8 {
                    let mut bytes = vec![b'a'; len];
                    bytes[at] = byte;
                    assert_eq!(
                        needs_escape(&bytes),
                        naive(&bytes),
                        "{byte} at {at} of {len}"
                    );
                }
            }
        }
    }

    #[test]
    fn values_are_written_as_serde_json_writes_them() {
        let v = json!({
            "null": null, "t": true, "f": false,
            "ints": [0, -1, 42, u64::MAX, i64::MIN],
            "floats": [0.1, 1.0, -0.0, 1e300, 2.5e-8, 123456.789],
            "nested": {"a\"key": [{"k": "v"}, [], {}], "\n": "x"},
            "text": "line\u{1}with\"all\\of it",
        });
        assert_eq!(written(&v), serde_json::to_string(&v).expect("serializes"));
        assert_eq!(value_text(&v), written(&v));
    }
}
