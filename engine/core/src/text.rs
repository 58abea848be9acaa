//! Text helpers of the per-event path.

/// `s` without what stands around it and is no part of a value: white space (as `str::trim`
/// cuts it), control characters (NUL, DEL, ...) and the invisible zero-width characters that
/// copying text brings along ([`is_invisible`]: zero-width space, joiners, the byte-order mark).
/// So `" jane@example.com\u{200b}"` is `jane@example.com`, and a text of such characters only is
/// empty (no value to send). Characters inside the text stay.
///
/// Without the work for the common text that starts and ends with a visible ASCII character
/// (which no trimming changes): a value is trimmed this way several times per event, and
/// decoding characters from both ends costs some 50 instructions even when nothing is to be cut.
#[inline]
pub fn trim(s: &str) -> &str {
    match s.as_bytes() {
        [first, .., last] if first.is_ascii_graphic() && last.is_ascii_graphic() => s,
        [only] if only.is_ascii_graphic() => s,
        _ => s.trim_matches(is_blank),
    }
}

/// Whether `c` is cut by [`trim`]: white space, a control character or [`is_invisible`].
fn is_blank(c: char) -> bool {
    c.is_whitespace() || c.is_control() || is_invisible(c)
}

/// The zero-width characters that are not white space to Unicode but show nothing: zero-width
/// space (U+200B), non-joiner and joiner (U+200C, U+200D), word joiner (U+2060) and the
/// byte-order mark / zero-width no-break space (U+FEFF).
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200b}'..='\u{200d}' | '\u{2060}' | '\u{feff}')
}

/// The number a text writes (surrounding white space ignored), as the `number` transform reads
/// it: a whole number as an integer, else a finite decimal; `None` when it writes none.
pub fn number(s: &str) -> Option<serde_json::Value> {
    let s = trim(s);
    if let Ok(i) = s.parse::<i64>() {
        return Some(i.into());
    }
    // Past `i64` up to 2^64 - 1, as JSON parsing keeps it: exactly.
    if let Ok(u) = s.parse::<u64>() {
        return Some(u.into());
    }
    s.parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
        .map(Into::into)
}

/// 2^53: from here on a float no longer holds every whole number, so a whole number that JSON
/// parsing kept as a float (written with a fraction or an exponent, or outside 64-bit integers:
/// below -2^63 or past 2^64 - 1) may have other digits than the ones written.
const FLOAT_EXACT_UP_TO: f64 = 9_007_199_254_740_992.0;

/// A JSON number as text, as an id or a value to hash is written: a whole number with its digits
/// (`12`, also for `12.0` or `1.2e1`), any other with serde_json's shortest form (`12.5`). A whole
/// number parsed as a float from 2^53 on (a 20-digit product id, past the 2^64 - 1 that JSON
/// parsing keeps exactly) is refused: its digits may not be the ones written, and an id or a hash of it
/// would match nothing.
pub fn number_text(n: &serde_json::Number) -> Result<String, &'static str> {
    let whole_float = n.as_f64().filter(|f| n.is_f64() && f.fract() == 0.0);
    match whole_float {
        None => Ok(n.to_string()),
        // In range, the cast is exact (and `-0.0` is `0`).
        Some(f) if f.abs() < FLOAT_EXACT_UP_TO => Ok((f as i64).to_string()),
        Some(_) => Err(
            "a whole number too large to be read exactly (outside 64-bit integers, or past 2^53 \
             written with a fraction or an exponent; send it as text): left out",
        ),
    }
}

/// JSON's own white space (space, tab, line feed, carriage return): what may stand between and
/// around its tokens. Other Unicode spaces (no-break space, form feed, U+2028, ...) are not.
pub const JSON_SPACE: [char; 4] = [' ', '\t', '\n', '\r'];

/// Whether the byte `b` is [`JSON_SPACE`].
pub fn is_json_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// `s` without [`JSON_SPACE`] around it: what may stand around a JSON text. Other Unicode spaces
/// stay, so that a line of them is refused as not JSON instead of skipped as blank.
pub fn trim_json_space(s: &str) -> &str {
    let bytes = s.as_bytes();
    let start = bytes
        .iter()
        .position(|b| !is_json_space(*b))
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_json_space(*b))
        .map_or(start, |last| last + 1);
    // Both ends stand next to an ASCII byte or the text's ends: character boundaries.
    s.get(start..end).unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_white_space_as_str_trim_does() {
        let texts = [
            "",
            " ",
            "a",
            " a",
            "a ",
            "\ta\n",
            "a b",
            "x",
            "\u{a0}a\u{3000}",
            "é",
            " é ",
            "aé",
            "éa",
            "\u{2028}",
            "a\u{85}",
            "\u{85}a",
            "ab",
            "-.-",
        ];
        for text in texts {
            assert_eq!(trim(text), text.trim(), "{text:?}");
        }
    }

    #[test]
    fn trims_control_and_zero_width_characters_around_a_value_not_inside() {
        for (text, want) in [
            ("\u{7f}", ""),
            ("\u{0}", ""),
            ("\u{200b}", ""),
            ("\u{feff} \u{200d}\u{0}", ""),
            ("\u{0}a\u{1}", "a"),
            (" jane@example.com\u{200b}", "jane@example.com"),
            ("\u{feff}jane@example.com", "jane@example.com"),
            ("\u{2060}a\u{200c}b\u{200c}", "a\u{200c}b"),
            ("a\u{0}b", "a\u{0}b"),
        ] {
            assert_eq!(trim(text), want, "{text:?}");
        }
    }

    #[test]
    fn json_space_is_all_that_is_trimmed_around_json() {
        assert_eq!(trim_json_space(" \t{}\r\n"), "{}");
        for (text, want) in [
            ("", ""),
            (" \r\n", ""),
            ("é ", "é"),
            (" é", "é"),
            ("a", "a"),
        ] {
            assert_eq!(trim_json_space(text), want, "{text:?}");
        }
        for kept in [
            "\u{a0}",
            "\u{c}",
            "\u{b}",
            "\u{85}",
            "\u{2028}",
            "\u{3000}{}",
        ] {
            assert_eq!(trim_json_space(kept), kept, "{kept:?}");
        }
    }
}
