//! serde_yaml's errors as diagnostics: placed where serde_yaml found the problem, with the JSON
//! path of the value it names (it writes `destinations[0].delivery.max_attempts: ` before the
//! reason), and the reason in the words of the other load errors, without the place serde_yaml
//! repeats at its end.

use super::diagnostic::{Diagnostic, pointer_to_path};
use super::pointer::{Token, tokens};
use super::spans::SpanIndex;
use std::path::Path;

/// The diagnostic of `text`, which serde_yaml could not read.
pub fn diagnostic(file: &Path, text: &str, e: &serde_yaml::Error) -> Diagnostic {
    let mut message = e.to_string();
    let mut d = Diagnostic::error(file, String::new());
    if let Some(loc) = e.location() {
        let place = format!(" at line {} column {}", loc.line(), loc.column());
        if let Some(at) = message.find(&place) {
            message.replace_range(at..at + place.len(), "");
        }
        d = d.at(loc.line(), loc.column());
    }
    let (pointer, reason) = match pointer_named(text, &message) {
        Some((pointer, reason)) => (Some(pointer), reason),
        None => (None, message.as_str()),
    };
    match pointer {
        // The YAML is well formed; one value of it cannot be read.
        Some(pointer) => Diagnostic {
            message: reworded(reason).to_owned(),
            ..d
        }
        .with_path(pointer_to_path(&pointer)),
        None => Diagnostic {
            message: format!("not valid YAML: {reason}{}", hint(text, d.line, reason)),
            ..d
        },
    }
}

/// What is most likely wrong at `line` (1-based) of `text` when serde_yaml's `reason` does not
/// say it: a tab (YAML indents with spaces only), or a JSONPath with `[` or `*` left unquoted
/// (which YAML reads as its own syntax).
fn hint(text: &str, line: usize, reason: &str) -> &'static str {
    let Some(at) = line.checked_sub(1).and_then(|l| text.lines().nth(l)) else {
        return "";
    };
    if at.contains('\t') && !reason.contains("tab") {
        return " (this line holds a tab: YAML indents with spaces only)";
    }
    let unquoted_path = at
        .match_indices("$.")
        .any(|(i, _)| !matches!(at[..i].chars().last(), Some('"' | '\'')));
    if unquoted_path && (at.contains('[') || at.contains('*')) {
        return " (quote a path that holds `[` or `*`: \"$.items[*]\")";
    }
    ""
}

/// The JSON pointer of the one node of `text` whose serde_yaml path (`a.b[0].c: `) opens
/// `message`, and the reason after it; none when no node's path does, or several do (a key
/// holding a dot or `: ` can make two readings).
fn pointer_named<'m>(text: &str, message: &'m str) -> Option<(String, &'m str)> {
    let spans = SpanIndex::build(text);
    let mut found = spans.pointers().filter_map(|p| {
        let reason = message
            .strip_prefix(&serde_yaml_path(p))?
            .strip_prefix(": ")?;
        Some((p, reason))
    });
    match (found.next(), found.next()) {
        (Some((pointer, reason)), None) => Some((pointer.to_owned(), reason)),
        _ => None,
    }
}

/// A JSON pointer as serde_yaml writes a path: keys joined by `.`, items as `[0]`.
fn serde_yaml_path(pointer: &str) -> String {
    let mut out = String::new();
    for token in tokens(pointer) {
        match token {
            Token::Index(i) => out.push_str(&format!("[{i}]")),
            Token::Key(key) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(&key);
            }
        }
    }
    out
}

/// serde_yaml's reasons for a value it cannot read that say little to someone writing a config, said plainly.
fn reworded(reason: &str) -> &str {
    match reason {
        "JSON number out of range" => {
            "a number too large to be read (numbers are 64-bit integers or decimals)"
        }
        "invalid type: enum, expected any valid JSON value" => {
            "a YAML tag (`!name` before a value) is not supported: write the value without it"
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Diagnostic {
        let e = serde_yaml::from_str::<serde_json::Value>(text).expect_err("not valid");
        diagnostic(Path::new("c.yaml"), text, &e)
    }

    #[test]
    fn a_value_serde_yaml_cannot_take_is_named_by_its_json_path() {
        let d = read("a:\n  - x: 1\n  - x: 99999999999999999999999\n");
        assert_eq!((d.line, d.column), (3, 8));
        assert_eq!(d.path, "$.a[1].x");
        assert_eq!(
            d.message,
            "a number too large to be read (numbers are 64-bit integers or decimals)"
        );
        let d = read("sources:\n  web.site: { id: !custom x }\n");
        assert_eq!(d.path, "$.sources['web.site'].id", "{}", d.message);
        assert!(d.message.starts_with("a YAML tag"), "{}", d.message);
    }

    #[test]
    fn a_tab_and_an_unquoted_path_are_named() {
        let d = read("a:\n\t- x\n");
        assert!(d.message.contains("tab"), "{}", d.message);
        let d = read("f: { path: $.items[*].url }\n");
        assert!(
            d.message
                .ends_with("(quote a path that holds `[` or `*`: \"$.items[*]\")"),
            "{}",
            d.message
        );
        let d = read("f: { path: \"$.items[*].url\" \n");
        assert!(!d.message.contains("quote a path"), "{}", d.message);
    }

    #[test]
    fn a_key_holding_a_colon_does_not_blame_another_key() {
        // The error is not blamed on `page` (the text before the first `: `); the quoted key's
        // node is not found, so it names no path rather than a wrong one.
        let d = read("page: 1\n\"page: url\": { id: !custom x }\n");
        assert_eq!(d.path, "$", "{}", d.message);
    }

    #[test]
    fn a_path_with_two_readings_names_none() {
        let d = read("a.b: 1\na:\n  b: !custom x\n");
        assert_eq!(d.path, "$");
        assert!(
            d.message.contains("a.b: "),
            "the reason keeps it: {}",
            d.message
        );
    }

    #[test]
    fn a_syntax_error_keeps_its_reason_and_is_placed_once() {
        let d = read("a: [1, 2\nb: 3\n");
        assert_eq!(d.path, "$");
        assert_eq!((d.line, d.column), (2, 2));
        assert!(
            d.message
                .starts_with("not valid YAML: did not find expected ',' or ']', while"),
            "{}",
            d.message
        );
        assert!(!d.message.contains("line 2 column 2"), "{}", d.message);
    }
}
