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
        return write_escaped(out, s);
    }
    out.reserve(s.len() + 2);
    out.push(b'"');
    out.extend_from_slice(s.as_bytes());
    out.push(b'"');
    Ok(())
}

/// [`write_str`] of a string with characters to escape: rare, kept out of the common path.
#[cold]
#[inline(never)]
fn write_escaped(out: &mut Vec<u8>, s: &str) -> serde_json::Result<()> {
    serialize(out, s)
}

/// Whether a byte of `bytes` must be escaped in a JSON string: a control character, `"` or `\`.
/// Checked by blocks of 16 bytes, so that the compiler checks each block with vector instructions
/// (byte by byte, a check costs several instructions per byte). The bytes after the last whole
/// block are checked as the last 16 bytes of `bytes`, overlapping the block before; a text shorter
/// than a block, a word at a time ([`short_needs_escape`]). Neither copies the text.
fn needs_escape(bytes: &[u8]) -> bool {
    let Some(last) = bytes.last_chunk::<16>() else {
        return short_needs_escape(bytes);
    };
    let mut blocks = bytes.chunks_exact(16);
    let any_block = blocks.any(|b| b.first_chunk::<16>().is_some_and(block_needs_escape));
    any_block || (!blocks.remainder().is_empty() && block_needs_escape(last))
}

/// Whether JSON escapes byte `b` in a string: a control character, `"` or `\\`.
#[inline(always)]
fn escaped(b: u8) -> bool {
    (b < 0x20) | (b == b'"') | (b == b'\\')
}

/// No early exit inside a block: that is what lets it be checked with vector instructions.
/// Inlined: a call per block would cost more than the check.
#[inline(always)]
fn block_needs_escape(block: &[u8; 16]) -> bool {
    block.iter().fold(false, |any, &b| any | escaped(b))
}

/// [`needs_escape`] for fewer than 16 bytes, each word tested at once ([`word_needs_escape`]):
/// 8–15 bytes as two 8-byte words read from both ends (overlapping below 16); 4–7 bytes as two
/// 4-byte halves read from both ends (overlapping below 8), put in one word; under 4, byte by byte.
fn short_needs_escape(bytes: &[u8]) -> bool {
    let word = |b: Option<&[u8; 8]>| b.map(|w| u64::from_le_bytes(*w));
    let half = |b: Option<&[u8; 4]>| b.map(|w| u64::from(u32::from_le_bytes(*w)));
    if let (Some(first), Some(last)) = (word(bytes.first_chunk()), word(bytes.last_chunk())) {
        return word_needs_escape(first) | word_needs_escape(last);
    }
    if let (Some(first), Some(last)) = (half(bytes.first_chunk()), half(bytes.last_chunk())) {
        return word_needs_escape(first | (last << 32));
    }
    bytes.iter().any(|&b| escaped(b))
}

/// Whether any of the eight bytes of `word` must be escaped. The classic tests for a byte below a
/// value and for a zero byte ("Bit Twiddling Hacks"): a borrow can only start at a byte below the
/// value, so the lowest byte a test flags is always a real one (bytes above it may be flagged too).
/// The yes-or-no answer, which is all that is used here, is exact for values up to 0x80.
fn word_needs_escape(word: u64) -> bool {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    let below = |w: u64, n: u8| w.wrapping_sub(ONES * u64::from(n)) & !w & HIGH;
    let control = below(word, 0x20);
    let quote = below(word ^ (ONES * u64::from(b'"')), 1);
    let backslash = below(word ^ (ONES * u64::from(b'\\')), 1);
    (control | quote | backslash) != 0
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
        // Around the texts: plain letters, and the bytes next to the ones to escape, where a
        // word test's borrow or carry would go wrong first.
        for around in [
            b'a', 0x20, 0x21, 0x23, 0x5b, 0x5d, 0x7f, 0x80, 0xa2, 0xdc, 0xff,
        ] {
            for len in 0..40 {
                let mut bytes = vec![around; len];
                assert_eq!(needs_escape(&bytes), naive(&bytes), "{around} × {len}");
                for at in 0..len {
                    for byte in 0..=255u8 {
                        bytes[at] = byte;
                        assert_eq!(
                            needs_escape(&bytes),
                            naive(&bytes),
                            "{byte} at {at} of {len} × {around}"
                        );
                    }
                    bytes[at] = around;
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
