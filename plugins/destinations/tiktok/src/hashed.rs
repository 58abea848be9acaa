//! TikTok's hashed matching keys (`user.email`, `user.phone`, ...), and the checks that each is sent
//! as a SHA-256 digest: at load for a mapping (a custom mapping that forgets the `sha256` transform
//! would otherwise send a customer's e-mail to TikTok in plain text), and per event for what a
//! payload plugin returned.

use serde_json::{Map, Value};
use std::sync::Arc;
use switchyard_core::load::escape;
use switchyard_core::rules::payload::value_is_empty;
use switchyard_core::rules::spec::{FieldMap, FieldSpec, MappingFile, Row, Transform};
use switchyard_core::rules::transform::{is_empty_text_digest, is_sha256_hex};
use switchyard_core::rules::warning::Warning;

use crate::personal::{self, PERSONAL_KEYS, Reach};
use crate::user_keys::HASHED_FIELDS;

/// A field a mapping may send unhashed (a hashed key without `sha256`, or a key under `user` that
/// TikTok does not take): its JSON pointer (in the file that holds it) and what to do about it.
pub struct Unhashed {
    pub pointer: String,
    pub message: String,
}

/// The hashed fields of `mapping` (templates and rows) that are not sure to be digests.
pub fn in_mapping(mapping: &MappingFile) -> Vec<Unhashed> {
    let templates = mapping
        .templates
        .iter()
        .flat_map(|(name, fields)| in_fields(&format!("/templates/{}", escape(name)), fields));
    templates.chain(in_rows("/rows", &mapping.rows)).collect()
}

/// The hashed fields of `rows` (under `at`, e.g. a config's `/destinations/0/custom_events`) that
/// are not sure to be digests.
pub fn in_rows<'r>(at: &'r str, rows: &'r [Row]) -> impl Iterator<Item = Unhashed> + 'r {
    rows.iter()
        .enumerate()
        .flat_map(move |(i, row)| in_fields(&format!("{at}/{i}/fields"), &row.fields))
}

fn in_fields(at: &str, fields: &FieldMap) -> Vec<Unhashed> {
    let hashed = |key: &str, spec| HASHED_FIELDS.contains(&key) && !always_hashed(spec);
    fields
        .iter()
        .filter_map(|(key, spec)| {
            let mut place = String::new();
            let message = if key == "user" {
                // The whole object from the event: its e-mail and phone would go as they are.
                "map `user` key by key (`user.email`, `user.ip`, ...): built as a whole, its \
                 hashed keys would reach TikTok unhashed"
                    .to_owned()
            } else if let Some(unknown) = crate::user_keys::unknown_message(key) {
                unknown
            } else if let Some(default) = hashed(key, spec).then(|| plain_default(spec)).flatten() {
                place = default;
                format!(
                    "this default of `{key}` would be sent as it is, while TikTok takes `{key}` \
                     only as a SHA-256 digest: give a digest (64 hexadecimal characters), or no \
                     default"
                )
            } else if hashed(key, spec) {
                format!(
                    "TikTok takes `{key}` only as a SHA-256 digest: end its transforms with \
                     `sha256` (after normalising, e.g. `[trim, lower, sha256]`); a value that \
                     already is a digest passes `sha256` unchanged"
                )
            } else if HASHED_FIELDS.contains(&key.as_str()) {
                return None;
            } else if key == "event" || key.starts_with("event.") {
                "`event` is the row's `target`, the name the pixel fires too: TikTok \
                 de-duplicates the browser and server copies only under one name; to send \
                 another event, add a row (`custom_events`)"
                    .to_owned()
            } else if key == "event_id" {
                // Never sent: TikTok's `event_id` is always the source event's, so what this one
                // reads cannot reach TikTok (`validate` warns that it is replaced).
                return None;
            } else if let Some((path, reach)) = personal::unhashed_source(spec) {
                personal_message(key, path, reach)
            } else {
                return None;
            };
            let pointer = format!("{at}/{}{place}", escape(key));
            Some(Unhashed { pointer, message })
        })
        .collect()
}

/// Why `key` is refused when it reads the event's personal data at `path` unhashed.
fn personal_message(key: &str, path: &str, reach: Reach) -> String {
    let tiktok = "TikTok takes it only as a SHA-256 digest, under `user.*` (`user.email`, \
                  `user.phone`, ...), and it would reach TikTok in plain text";
    match reach {
        Reach::Key => format!(
            "`{key}` reads `{path}`, personal data: {tiktok}; map it to its `user` key, or end \
             this field's transforms with `sha256`"
        ),
        Reach::Whole => format!(
            "`{key}` reads `{path}` as a whole, which can hold personal data (`{}`, aliases): \
             {tiktok}; map the keys you need one by one",
            PERSONAL_KEYS.join("`, `")
        ),
    }
}

/// The hashed keys of an event object a payload plugin returned: a digest, or a list of digests
/// (as the mapping sends every identity an event carries), is sent in lower case; anything else
/// (text that is no digest, the digest of the empty text, a number, an object), whole or as one
/// item of a list, is left out with a warning, as it would reach TikTok unhashed or match no one.
/// Empty values stay absent.
pub fn settle_returned(object: &mut Map<String, Value>, warnings: &mut Vec<Warning>) {
    let Some(Value::Object(user)) = object.get_mut("user") else {
        return;
    };
    for field in HASHED_FIELDS {
        let key = field.trim_start_matches("user.");
        let Some(value) = user.get_mut(key) else {
            continue;
        };
        let keep = match value {
            v if value_is_empty(v) => true,
            Value::Array(items) => {
                let mut at = 0;
                items.retain_mut(|item| {
                    let kept = settle_digest(item);
                    if !kept {
                        warnings.push(unhashed(format!("{field}[{at}]").into()));
                    }
                    at += 1;
                    kept
                });
                !items.is_empty()
            }
            v => {
                let kept = settle_digest(v);
                if !kept {
                    warnings.push(unhashed(Arc::from(field)));
                }
                kept
            }
        };
        if !keep {
            user.remove(key);
        }
    }
}

/// Whether `v` is a digest that can be sent, lower-cased in place.
fn settle_digest(v: &mut Value) -> bool {
    match v {
        Value::String(s) if is_sha256_hex(s) && !is_empty_text_digest(s) => {
            s.make_ascii_lowercase();
            true
        }
        _ => false,
    }
}

fn unhashed(field: Arc<str>) -> Warning {
    Warning {
        field,
        message: "not a SHA-256 digest where TikTok takes only hashed values (a payload plugin \
                  returned it): left out",
    }
}

/// Whether every value `spec` builds is a SHA-256 digest: its last transform is `sha256`, or it
/// has no transforms and all its candidates are such; a fixed value or default counts when it is
/// a digest itself.
/// Where in `spec` (a JSON pointer from it) a default that is no digest is sent as it is: a
/// default is not put through its field's transforms, so `sha256` does not hash it. `None` when
/// no such default is, or when the transforms around it hash it (a candidate's, by its field's).
fn plain_default(spec: &FieldSpec) -> Option<String> {
    let FieldSpec::Rule(rule) = spec else {
        return None;
    };
    if rule
        .default
        .as_ref()
        .is_some_and(|d| !d.as_str().is_some_and(is_sha256_hex))
    {
        return Some("/default".to_owned());
    }
    if !rule.transform.is_empty() {
        return None;
    }
    let (kind, candidates) = match (&rule.first_of, &rule.all_of) {
        (Some(candidates), _) => ("first_of", candidates),
        (_, Some(candidates)) => ("all_of", candidates),
        _ => return None,
    };
    candidates
        .iter()
        .enumerate()
        .find_map(|(i, c)| Some(format!("/{kind}/{i}{}", plain_default(c)?)))
}

fn always_hashed(spec: &FieldSpec) -> bool {
    let FieldSpec::Rule(rule) = spec else {
        return false;
    };
    let digest = |v: &serde_json::Value| v.as_str().is_some_and(is_sha256_hex);
    if rule.default.as_ref().is_some_and(|d| !digest(d)) {
        return false;
    }
    match rule.transform.last() {
        Some(Transform::Sha256) => true,
        Some(_) => false,
        None => match (&rule.first_of, &rule.all_of, &rule.constant) {
            (Some(candidates), ..) | (_, Some(candidates), _) => {
                candidates.iter().all(always_hashed)
            }
            (_, _, Some(value)) => digest(value),
            _ => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> FieldSpec {
        serde_json::from_str(json).expect("a field spec")
    }

    #[test]
    fn a_hashed_key_is_hashed_only_when_every_value_ends_in_sha256() {
        let digest = "8c87b489ce35cf2e2f39f80e282cb2e804932a56a213983eeeb428407d43b52d";
        for yes in [
            r#"{"path": "$.e", "transform": ["trim", "lower", "sha256"]}"#,
            r#"{"first_of": [{"path": "$.a", "transform": ["sha256"]},
                             {"all_of": ["$.b"], "transform": ["e164", "sha256"]}]}"#,
            r#"{"all_of": ["$.a", "$.b"], "transform": ["sha256"]}"#,
            &format!(r#"{{"const": "{digest}"}}"#),
        ] {
            assert!(always_hashed(&spec(yes)), "{yes}");
        }
        for no in [
            r#""$.properties.email""#,
            r#"{"path": "$.e"}"#,
            r#"{"path": "$.e", "transform": ["sha256", "lower"]}"#,
            r#"{"path": "$.e", "transform": ["e164"]}"#,
            r#"{"first_of": [{"path": "$.a", "transform": ["sha256"]}, "$.b"]}"#,
            r#"{"path": "$.e", "transform": ["sha256"], "default": "someone@example.com"}"#,
            r#"{"const": "someone@example.com"}"#,
            r#"{"each": "$.items", "fields": {"a": "$.a"}}"#,
        ] {
            assert!(!always_hashed(&spec(no)), "{no}");
        }
    }

    #[test]
    fn user_as_a_whole_object_is_refused() {
        let fields: FieldMap =
            serde_json::from_str(r#"{"user": "$.profile_properties", "user.ip": "$.ip"}"#)
                .expect("fields");
        let found: Vec<String> = in_fields("/x", &fields)
            .into_iter()
            .map(|u| u.pointer)
            .collect();
        assert_eq!(found, ["/x/user"]);
    }

    #[test]
    fn the_default_mapping_hashes_every_hashed_key() {
        let mapping = crate::default_mapping().expect("the default mapping loads");
        let unhashed: Vec<String> = in_mapping(&mapping)
            .into_iter()
            .map(|u| u.pointer)
            .collect();
        assert!(unhashed.is_empty(), "{unhashed:?}");
    }
}
