//! The JSON types TikTok's Events API takes at the fields it gets as they are (not hashed),
//! declared for the engine, which checks each built value against them
//! ([`switchyard_core::rules::field_types`]), and the check that each `contents` entry has its id.
//!
//! TikTok refuses a whole request (code 40002) for one field of the wrong type. The engine
//! converts a number where TikTok takes text to its text and text that is a number where TikTok
//! takes a number to that number, and leaves out anything else with a warning. Hashed keys
//! (`user.email`, ...) are not typed here: their transforms end in `sha256`, checked at load
//! ([`crate::hashed`]). A `contents` entry without a `content_id` is sent, with a warning.

use serde_json::Value;
use switchyard_core::rules::field_types::FieldType;
use switchyard_core::rules::payload::Payload;
use switchyard_core::rules::warning::Warning;

const TEXT: FieldType = FieldType::Text;
const NUMBER: FieldType = FieldType::Number;

/// The typed fields of TikTok's event object (`CompileContext::field_types`).
pub const EVENT_FIELDS: &[(&str, FieldType)] = &[
    ("user", FieldType::Object(USER_FIELDS)),
    (
        "page",
        FieldType::Object(&[("url", TEXT), ("referrer", TEXT)]),
    ),
    ("properties", FieldType::Object(PROPERTIES_FIELDS)),
];

/// The field of an event object that the mapping sets from the event's own checked `event_id`,
/// typed only in what a payload plugin returned (its `event_time` is settled on its own).
pub const RETURNED_FIELDS: &[(&str, FieldType)] = &[("event_id", TEXT)];

/// The matching keys sent as they are (the hashed ones are checked at load).
pub const USER_FIELDS: &[(&str, FieldType)] = &[
    ("ip", TEXT),
    ("user_agent", TEXT),
    ("ttclid", TEXT),
    ("ttp", TEXT),
    ("locale", TEXT),
    ("city", TEXT),
    ("state", TEXT),
    ("country", TEXT),
];

const PROPERTIES_FIELDS: &[(&str, FieldType)] = &[
    ("content_id", TEXT),
    ("order_id", TEXT),
    ("shop_id", TEXT),
    ("query", TEXT),
    ("description", TEXT),
    ("currency", TEXT),
    ("content_type", TEXT),
    ("value", NUMBER),
    (
        "contents",
        FieldType::List(&FieldType::Object(CONTENT_FIELDS)),
    ),
];

/// The fields of one `contents` entry.
const CONTENT_FIELDS: &[(&str, FieldType)] = &[
    ("content_id", TEXT),
    ("content_name", TEXT),
    ("content_category", TEXT),
    ("brand", TEXT),
    ("content_type", TEXT),
    ("price", NUMBER),
    ("quantity", NUMBER),
];

/// Warns about each entry of the `contents` of the built `properties` that is an object without a
/// `content_id` (`properties.contents[1].content_id`): sent so, it matches no catalog item.
pub fn warn_missing_ids(properties: &Payload<'_>, warnings: &mut Vec<Warning>) {
    match properties {
        Payload::Object(fields) => match fields.iter().find(|(key, _)| *key == "contents") {
            Some((_, Payload::Array(items))) => report(items.iter().map(lacks_id), warnings),
            Some((_, other)) => report_value(other.as_json(), warnings),
            None => {}
        },
        other => report_value(other.as_json().and_then(|p| p.get("contents")), warnings),
    }
}

/// [`warn_missing_ids`] of a list taken whole.
fn report_value(contents: Option<&Value>, warnings: &mut Vec<Warning>) {
    if let Some(Value::Array(items)) = contents {
        report(items.iter().map(value_lacks_id), warnings);
    }
}

/// A warning for each entry that lacks its id, by position.
fn report(lacking: impl Iterator<Item = bool>, warnings: &mut Vec<Warning>) {
    for (i, lacks) in lacking.enumerate() {
        if lacks {
            warnings.push(Warning {
                field: format!("properties.contents[{i}].content_id").into(),
                message: "missing: sent without it, the entry matches no catalog item",
            });
        }
    }
}

/// Whether a built `contents` entry is an object without a `content_id`.
fn lacks_id(entry: &Payload<'_>) -> bool {
    match entry {
        Payload::Object(fields) => !fields.iter().any(|(key, _)| *key == "content_id"),
        other => other.as_json().is_some_and(value_lacks_id),
    }
}

fn value_lacks_id(entry: &Value) -> bool {
    entry.is_object() && entry.get("content_id").is_none()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_fields_tiktok_types_are_found_by_their_labels() {
        let at = |label| FieldType::at(EVENT_FIELDS, label);
        assert_eq!(at("user.ip"), Some(&TEXT));
        assert_eq!(at("page.referrer"), Some(&TEXT));
        assert_eq!(at("properties.value"), Some(&NUMBER));
        assert_eq!(at("properties.contents[].price"), Some(&NUMBER));
        assert_eq!(at("properties.contents[].content_id"), Some(&TEXT));
        assert!(matches!(
            at("properties.contents"),
            Some(FieldType::List(_))
        ));
        assert!(matches!(at("page"), Some(FieldType::Object(_))));
        for untyped in [
            "user.email",
            "properties.custom",
            "event_id",
            "user.ip.x",
            "page[]",
        ] {
            assert_eq!(at(untyped), None, "{untyped}");
        }
    }

    fn missing(properties: &Payload<'_>) -> Vec<String> {
        let mut warnings = Vec::new();
        warn_missing_ids(properties, &mut warnings);
        warnings.into_iter().map(|w| w.field.to_string()).collect()
    }

    #[test]
    fn built_entries_without_an_id_are_named_by_position() {
        let event = json!({"whole": {"name": "Cap"}, "with": {"content_id": "c1"}});
        let properties = Payload::Object(vec![
            ("value", Payload::Str("1")),
            (
                "contents",
                Payload::Array(vec![
                    Payload::Object(vec![("content_id", Payload::Str("v1"))]),
                    Payload::Object(vec![("price", Payload::Str("1"))]),
                    Payload::Ref(&event["with"]),
                    Payload::Ref(&event["whole"]),
                ]),
            ),
        ]);
        assert_eq!(
            missing(&properties),
            [
                "properties.contents[1].content_id",
                "properties.contents[3].content_id"
            ]
        );
        let no_contents = Payload::Object(vec![("value", Payload::Str("1"))]);
        assert!(missing(&no_contents).is_empty());
    }

    #[test]
    fn entries_taken_whole_from_the_event_are_checked_for_their_id_too() {
        let event = json!({"items": [{"content_id": "c1"}, {"name": "Cap"}, "not an object"],
                           "properties": {"contents": [{"name": "Tee"}]}});
        let built = Payload::Object(vec![("contents", Payload::Ref(&event["items"]))]);
        assert_eq!(missing(&built), ["properties.contents[1].content_id"]);
        let whole = Payload::Ref(&event["properties"]);
        assert_eq!(missing(&whole), ["properties.contents[0].content_id"]);
    }
}
