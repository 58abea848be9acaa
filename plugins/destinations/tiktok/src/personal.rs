//! The event's personal data outside TikTok's `user` object: the load-time check that a mapping
//! sends none of it unhashed under another key. TikTok takes a person's e-mail, phone number,
//! external id, names and zip code only as SHA-256 digests of `user.*` keys ([`crate::hashed`]);
//! `properties.note: "$.properties.$email"`, or `properties: "$.properties"` on an order (orders
//! repeat the profile there), would send them in plain text beside those digests.

use switchyard_core::rules::spec::{FieldRule, FieldSpec, Transform};

/// The event spec's keys whose values TikTok takes only hashed.
pub const PERSONAL_KEYS: [&str; 6] = [
    "$email",
    "$phone_number",
    "$external_id",
    "$first_name",
    "$last_name",
    "$zip_code",
];

/// The alias kinds (`urn:<kind>:<value>`) that hold the same data.
const PERSONAL_ALIASES: [&str; 3] = ["email", "phone", "user_id"];

/// The path of `spec` that can send personal data unhashed, and whether it reads a whole object
/// (or every alias) rather than one personal key; `None` when no value it builds can. A value
/// counts as safe once a transform has made something else of it: a digest, a number, a code, a
/// content id, an alias of another kind ([`derives`]).
pub fn unhashed_source(spec: &FieldSpec) -> Option<(&str, Reach)> {
    match spec {
        FieldSpec::Path(path) => reach(path, &[]).map(|r| (path.as_str(), r)),
        FieldSpec::Rule(rule) if rule.transform.iter().any(derives) => None,
        FieldSpec::Rule(rule) => rule_source(rule),
    }
}

/// How much personal data a path reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// One of [`PERSONAL_KEYS`].
    Key,
    /// An object or list that holds them (`$.properties`, `$.aliases`, `$..`).
    Whole,
}

fn rule_source(rule: &FieldRule) -> Option<(&str, Reach)> {
    if let Some(path) = &rule.path {
        return reach(path, &rule.transform).map(|r| (path.as_str(), r));
    }
    let candidates = rule.first_of.iter().chain(&rule.all_of).flatten();
    // Inside `each`, the fields' paths are the item's: each is checked as a field of its own.
    let items = rule.fields.iter().flat_map(|fields| fields.values());
    candidates.chain(items).find_map(|c| match c {
        // A bare candidate goes through the rule's transforms (`all_of`).
        FieldSpec::Path(path) => reach(path, &rule.transform).map(|r| (path.as_str(), r)),
        rule => unhashed_source(rule),
    })
}

/// Whether a transform makes a value that is no longer the personal data it was given.
fn derives(transform: &Transform) -> bool {
    match transform {
        Transform::Alias(kind) | Transform::Aliases(kind) => !is_personal_alias(kind),
        Transform::Sha256
        | Transform::Number
        | Transform::Integer
        | Transform::Currency
        | Transform::Country
        | Transform::UnixSeconds
        | Transform::ContentId
        | Transform::ContentType
        | Transform::ConversionAmount
        | Transform::QueryParam(_) => true,
        Transform::Trim
        | Transform::Lower
        | Transform::Upper
        | Transform::E164
        | Transform::String
        | Transform::Replace(_)
        | Transform::StripPrefix(_)
        | Transform::Lookup(_) => false,
    }
}

/// `email`, `urn:email:` or `urn:email`: an alias kind that holds personal data.
fn is_personal_alias(kind: &str) -> bool {
    let kind = kind.strip_prefix("urn:").unwrap_or(kind);
    let kind = kind.strip_suffix(':').unwrap_or(kind);
    PERSONAL_ALIASES.contains(&kind)
}

/// What of the event's personal data `path` reads, with `transforms` applied after it (an alias
/// of another kind picked from `$.aliases` holds none).
fn reach(path: &str, transforms: &[Transform]) -> Option<Reach> {
    if path.contains("..") {
        return Some(Reach::Whole);
    }
    let names = names(path);
    let named: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| *n != "*" && n.parse::<i64>().is_err())
        .collect();
    match named.as_slice() {
        [] => Some(Reach::Whole),
        ["properties" | "profile_properties"] => Some(Reach::Whole),
        ["aliases"] if !transforms.iter().any(derives) => Some(Reach::Whole),
        [.., last] if PERSONAL_KEYS.contains(last) => Some(Reach::Key),
        _ => None,
    }
}

/// The names and indexes a JSONPath steps through: `$.a['$b'][0].*` → `a`, `$b`, `0`, `*`.
fn names(path: &str) -> Vec<&str> {
    let rest = path.trim().strip_prefix('$').unwrap_or(path);
    rest.split(['.', '[', ']'])
        .map(|part| part.trim().trim_matches(['\'', '"']))
        .filter(|part| !part.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> FieldSpec {
        serde_json::from_str(json).expect("a field spec")
    }

    #[test]
    fn personal_keys_and_the_objects_that_hold_them_are_found_unless_transformed_away() {
        for (json, path, whole) in [
            (
                r#""$.properties.$email""#,
                "$.properties.$email",
                Reach::Key,
            ),
            (
                r#""$.profile_properties['$phone_number']""#,
                "$.profile_properties['$phone_number']",
                Reach::Key,
            ),
            (r#""$.properties""#, "$.properties", Reach::Whole),
            (
                r#""$.profile_properties.*""#,
                "$.profile_properties.*",
                Reach::Whole,
            ),
            (r#""$""#, "$", Reach::Whole),
            (r#""$..$email""#, "$..$email", Reach::Whole),
            (r#""$.aliases""#, "$.aliases", Reach::Whole),
            (r#""$.aliases[0]""#, "$.aliases[0]", Reach::Whole),
            (
                r#"{"path": "$.aliases", "transform": [{"aliases": "email"}]}"#,
                "$.aliases",
                Reach::Whole,
            ),
            (
                r#"{"path": "$.properties.$email", "transform": ["trim", "lower"]}"#,
                "$.properties.$email",
                Reach::Key,
            ),
            (
                r#"{"first_of": ["$.properties.name", "$.properties.$first_name"]}"#,
                "$.properties.$first_name",
                Reach::Key,
            ),
            (
                r#"{"each": "$.properties.items[*]", "fields": {"who": "$.$zip_code"}}"#,
                "$.$zip_code",
                Reach::Key,
            ),
        ] {
            assert_eq!(unhashed_source(&spec(json)), Some((path, whole)), "{json}");
        }
        for json in [
            r#""$.properties.name""#,
            r#""$.profile_properties.$city""#,
            r#""$.properties.items[0].price""#,
            r#"{"path": "$.properties.$email", "transform": ["lower", "sha256"]}"#,
            r#"{"path": "$.aliases", "transform": [{"alias": "urn:cart_token:"}]}"#,
            r#"{"all_of": ["$.properties.$email"], "transform": ["sha256"]}"#,
            r#"{"path": "$.properties", "transform": ["conversion_amount"]}"#,
            r#"{"each": "$.properties.items[*]", "fields": {"content_id": {"path": "$", "transform": ["content_id"]}}}"#,
            r#"{"const": "$email"}"#,
        ] {
            assert_eq!(unhashed_source(&spec(json)), None, "{json}");
        }
    }
}
