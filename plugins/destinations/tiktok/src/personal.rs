//! The event's personal data outside TikTok's `user` object: the load-time check that a mapping
//! sends none of it unhashed under another key. TikTok takes a person's e-mail, phone number,
//! external id, names and zip code only as SHA-256 digests of `user.*` keys ([`crate::hashed`]);
//! `properties.note: "$.properties['$email']"`, or `properties: "$.properties"` on an order (orders
//! repeat the profile there), would send them in plain text beside those digests.

use switchyard_core::rules::path::CompiledPath;
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

/// The path of `spec` that can send personal data unhashed, and how much of it the path reads;
/// `None` when no value it builds can. A value counts as safe once a transform has made something
/// else of it ([`derives`]).
pub fn unhashed_source(spec: &FieldSpec) -> Option<(&str, Reach)> {
    source_in(spec, None)
}

/// How much personal data a path reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// One of [`PERSONAL_KEYS`].
    Key,
    /// An object or list that can hold them (`$.properties`, `$.aliases`, a filter, `$..`).
    Whole,
}

/// [`unhashed_source`] of `spec`, a field built for each node of `item` (the path of the `each`
/// around it, if any): there `$` is that node, so a field that takes it whole reads what `each`
/// walks to (text for `$.properties.tags[*]`, the whole profile for `$.profile_properties`).
fn source_in<'r>(spec: &'r FieldSpec, item: Option<&'r str>) -> Option<(&'r str, Reach)> {
    match spec {
        FieldSpec::Path(path) => reach_in(path, item, &[]),
        FieldSpec::Rule(rule) if rule.transform.iter().any(derives) => None,
        FieldSpec::Rule(rule) => rule_source(rule, item),
    }
}

fn rule_source<'r>(rule: &'r FieldRule, item: Option<&'r str>) -> Option<(&'r str, Reach)> {
    if let Some(path) = &rule.path {
        return reach_in(path, item, &rule.transform);
    }
    let mut candidates = rule.first_of.iter().chain(&rule.all_of).flatten();
    let found = candidates.find_map(|c| match c {
        // A bare candidate goes through the rule's transforms (`all_of`).
        FieldSpec::Path(path) => reach_in(path, item, &rule.transform),
        rule => source_in(rule, item),
    });
    // Inside `each`, the fields' paths are its item's: each is checked as a field of its own.
    let each = rule.each.as_deref();
    let mut fields = rule.fields.iter().flat_map(|fields| fields.values());
    found.or_else(|| fields.find_map(|field| source_in(field, each)))
}

/// [`reach`] of `path` read inside `item` (see [`source_in`]), with the path it names.
fn reach_in<'r>(
    path: &'r str,
    item: Option<&'r str>,
    transforms: &[Transform],
) -> Option<(&'r str, Reach)> {
    let path = match item {
        Some(item) if path.trim() == "$" => item,
        _ => path,
    };
    reach(path, transforms).map(|r| (path, r))
}

/// Whether a transform makes a value that can no longer be the personal data it was given: a
/// digest, a content id or type, an amount, a URL's query parameter, an alias of another kind.
/// `number`, `integer`, `unix_seconds`, `country` and `currency` can pass it on as it is (a zip
/// code, a numeric external id, a short name), so they do not count.
fn derives(transform: &Transform) -> bool {
    match transform {
        Transform::Alias(kind) | Transform::Aliases(kind) => !is_personal_alias(kind),
        Transform::Sha256
        | Transform::ContentId
        | Transform::ContentType
        | Transform::ConversionAmount
        | Transform::QueryParam(_) => true,
        Transform::Trim
        | Transform::Lower
        | Transform::Upper
        | Transform::E164
        | Transform::Currency
        | Transform::Country
        | Transform::UnixSeconds
        | Transform::Number
        | Transform::Integer
        | Transform::String
        | Transform::Replace(_)
        | Transform::StripPrefix(_)
        | Transform::Lookup(_) => false,
    }
}

/// Whether aliases of `kind` (`urn:<kind>:...`, in any case) hold personal data.
fn is_personal_alias(kind: &str) -> bool {
    PERSONAL_ALIASES
        .iter()
        .any(|personal| kind.trim().eq_ignore_ascii_case(personal))
}

/// What of the event's personal data `path` reads, with `transforms` applied after it (an alias
/// of another kind picked from `$.aliases` holds none). A path that is not valid JSONPath is
/// refused at load on its own account. One that is not a walk through names, indexes and
/// wildcards (a filter, a slice, a union, a descendant search) may select anything: it counts as
/// reading a whole object.
fn reach(path: &str, transforms: &[Transform]) -> Option<Reach> {
    let compiled = CompiledPath::compile(path).ok()?;
    let Some(names) = compiled.walked_names() else {
        return Some(Reach::Whole);
    };
    let names: Vec<&str> = names.collect();
    match names.as_slice() {
        [] | ["properties" | "profile_properties"] => Some(Reach::Whole),
        ["aliases"] if !transforms.iter().any(derives) => Some(Reach::Whole),
        [.., last] if PERSONAL_KEYS.contains(last) => Some(Reach::Key),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> FieldSpec {
        serde_json::from_str(json).expect("a field spec")
    }

    #[test]
    fn personal_keys_and_what_holds_them_are_found() {
        for (json, path, reach) in [
            (
                r#""$.properties['$email']""#,
                "$.properties['$email']",
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
            (
                r#""$.profile_properties[*]""#,
                "$.profile_properties[*]",
                Reach::Whole,
            ),
            (r#""$""#, "$", Reach::Whole),
            (r#""$..['$email']""#, "$..['$email']", Reach::Whole),
            (r#""$.aliases""#, "$.aliases", Reach::Whole),
            (r#""$.aliases[0]""#, "$.aliases[0]", Reach::Whole),
            (r#""$.aliases[0:1]""#, "$.aliases[0:1]", Reach::Whole),
            (
                r#""$.aliases[?search(@, '^urn:email:')]""#,
                "$.aliases[?search(@, '^urn:email:')]",
                Reach::Whole,
            ),
            (
                r#""$.profile_properties['$email','$ip']""#,
                "$.profile_properties['$email','$ip']",
                Reach::Whole,
            ),
            (
                r#"{"path": "$.aliases", "transform": [{"aliases": "EMAIL"}]}"#,
                "$.aliases",
                Reach::Whole,
            ),
            (
                r#"{"path": "$.properties['$email']", "transform": ["trim", "lower"]}"#,
                "$.properties['$email']",
                Reach::Key,
            ),
            (
                r#"{"path": "$.properties['$zip_code']", "transform": ["number"]}"#,
                "$.properties['$zip_code']",
                Reach::Key,
            ),
            (
                r#"{"first_of": ["$.properties.name", "$.properties['$first_name']"]}"#,
                "$.properties['$first_name']",
                Reach::Key,
            ),
            (
                r#"{"each": "$.properties.items[*]", "fields": {"who": "$['$zip_code']"}}"#,
                "$['$zip_code']",
                Reach::Key,
            ),
        ] {
            assert_eq!(unhashed_source(&spec(json)), Some((path, reach)), "{json}");
        }
    }

    #[test]
    fn an_item_taken_whole_reads_what_each_walks_to() {
        for (json, path, reach) in [
            (
                r#"{"each": "$.profile_properties", "fields": {"who": "$"}}"#,
                "$.profile_properties",
                Reach::Whole,
            ),
            (
                r#"{"each": "$.aliases[*]", "fields": {"who": {"path": "$", "transform": ["trim"]}}}"#,
                "$.aliases[*]",
                Reach::Whole,
            ),
            (
                r#"{"each": "$.properties['$email']", "fields": {"who": "$"}}"#,
                "$.properties['$email']",
                Reach::Key,
            ),
            (
                r#"{"each": "$.profile_properties", "fields": {"who": {"first_of": ["$.name", "$"]}}}"#,
                "$.profile_properties",
                Reach::Whole,
            ),
        ] {
            assert_eq!(unhashed_source(&spec(json)), Some((path, reach)), "{json}");
        }
        for json in [
            r#"{"each": "$.properties.tags[*]", "fields": {"content_name": "$"}}"#,
            r#"{"each": "$.properties.items[*]", "fields": {"content_name": {"path": "$", "transform": ["trim"]}}}"#,
            r#"{"each": "$.properties.tags[*]", "fields": {"content_name": {"first_of": ["$"]}}}"#,
        ] {
            assert_eq!(unhashed_source(&spec(json)), None, "{json}");
        }
    }

    #[test]
    fn other_keys_and_values_made_into_something_else_are_not_personal_data() {
        for json in [
            r#""$.properties.name""#,
            r#""$.profile_properties['$city']""#,
            r#""$.properties.items[0].price""#,
            r#"{"path": "$.properties['$email']", "transform": ["lower", "sha256"]}"#,
            r#"{"path": "$.aliases", "transform": [{"alias": "cart_token"}]}"#,
            r#"{"all_of": ["$.properties['$email']"], "transform": ["sha256"]}"#,
            r#"{"path": "$.properties", "transform": ["conversion_amount"]}"#,
            r#"{"each": "$.properties.items[*]", "fields": {"content_id": {"path": "$", "transform": ["content_id"]}}}"#,
            r#"{"const": "$email"}"#,
        ] {
            assert_eq!(unhashed_source(&spec(json)), None, "{json}");
        }
    }
}
