//! Rules that load but would silently do nothing, found at load and reported as warnings:
//! - paths that can never match: a path's first step must be one of the event envelope's fields
//!   (the source event is normalised to them before rules run), so `$.propertys.rating` or
//!   `$.profileProperties.email` would find nothing;
//! - event names one letter off the event spec's (`Placed Ordr`): custom names are allowed, so a
//!   misspelled standard name would only match no event.

use crate::load::did_you_mean;
use serde_json::Value;

/// The fields of a normalised source event.
pub const ENVELOPE: [&str; 6] = [
    "properties",
    "profile_properties",
    "aliases",
    "event_name",
    "event_id",
    "timestamp",
];

/// A path that can never match: where it stands (JSON pointer) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadPath {
    pub pointer: String,
    pub message: String,
}

/// Every event path in a rules document (a mapping file, or a config's destinations) whose first
/// step is not an envelope field. Inside `each`, paths are relative to the item and are not
/// checked; values under a key in `skip` (a plugin's own `config`) are not rules.
pub fn dead_paths(doc: &Value, skip: &[&str]) -> Vec<DeadPath> {
    let mut found = Vec::new();
    walk(doc, &mut String::new(), skip, &mut found);
    found
}

/// `pointer` is where `node` stands; each step is written onto its end and taken off after, so
/// that the walk builds no string per node (only a found path copies it).
fn walk(node: &Value, pointer: &mut String, skip: &[&str], found: &mut Vec<DeadPath>) {
    match node {
        Value::String(path) => {
            if let Some(message) = check(path) {
                let pointer = pointer.clone();
                found.push(DeadPath { pointer, message });
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let back = push_index(pointer, i);
                walk(item, pointer, skip, found);
                pointer.truncate(back);
            }
        }
        Value::Object(map) => {
            let in_each = map.contains_key("each");
            for (key, value) in map {
                if skip.contains(&key.as_str()) || (in_each && key == "fields") {
                    continue;
                }
                let back = push_key(pointer, key);
                walk(value, pointer, skip, found);
                pointer.truncate(back);
            }
        }
        _ => {}
    }
}

/// Writes `/<i>` onto `pointer`; returns its length before, to truncate back to.
fn push_index(pointer: &mut String, i: usize) -> usize {
    let back = pointer.len();
    pointer.push('/');
    pointer.push_str(itoa::Buffer::new().format(i));
    back
}

/// Writes `/<key>` (escaped as a JSON-pointer token) onto `pointer`; returns its length before.
fn push_key(pointer: &mut String, key: &str) -> usize {
    let back = pointer.len();
    pointer.push('/');
    pointer.push_str(&crate::load::escape(key));
    back
}

/// Why `path` can never match, if it is an event path (`$.x...`, `$['x']...`) that cannot.
fn check(path: &str) -> Option<String> {
    let rest = path.strip_prefix('$')?;
    let first = if let Some(dotted) = rest.strip_prefix('.') {
        dotted.split(['.', '[']).next()?
    } else if let Some(bracket) = rest.strip_prefix("['").or_else(|| rest.strip_prefix("[\"")) {
        bracket.split(['\'', '"']).next()?
    } else {
        return None;
    };
    if first.is_empty() || first == "*" || ENVELOPE.contains(&first) {
        return None;
    }
    let hint = did_you_mean(first, &ENVELOPE);
    Some(format!(
        "`{path}` can never match: an event has only `{}` at its top; {hint}(field names are \
         snake_case after normalising)",
        ENVELOPE.join("`, `")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_outside_the_envelope_are_found_and_each_items_and_skipped_keys_are_not() {
        let doc = json!({
            "rows": [{"fields": {
                "a": "$.propertys.rating",
                "b": {"first_of": ["$.properties.x", "$.profileProperties.email"]},
                "c": {"each": "$.properties.items[*]", "fields": {"id": "$.product_id"}},
                "d": "$['properties']['$url']",
                "e": "${NOT_A_PATH}",
                "f": "$.event_id",
            }}],
            "transforms": [{"config": {"selector": "$.anything"}}],
        });
        let found = dead_paths(&doc, &["config"]);
        let pointers: Vec<&str> = found.iter().map(|d| d.pointer.as_str()).collect();
        assert_eq!(
            pointers,
            ["/rows/0/fields/a", "/rows/0/fields/b/first_of/1"],
            "{found:?}"
        );
        assert!(found[0].message.contains("did you mean `properties`?"));
    }

    #[test]
    fn misspelled_names_are_found_where_they_stand_and_skipped_keys_are_not_read() {
        let doc = json!({
            "filters": [{"events": ["Placed Order", "Placed Ordr", "Quiz Completed"]}],
            "custom_events": [{"source": "Viewed Prodct"}, {"source": "Searched"}],
            "a/b": {"source": "Signed Upp"},
            "transforms": [{"config": {"source": "Logged Inn"}}],
        });
        let found = misspelled_events(&doc, &["config"]);
        let pointers: Vec<&str> = found.iter().map(|d| d.pointer.as_str()).collect();
        assert_eq!(
            pointers,
            [
                "/a~1b/source",
                "/custom_events/0/source",
                "/filters/0/events/1"
            ],
            "{found:?}"
        );
        assert!(found[2].message.contains("did you mean `Placed Order`?"));
    }
}

/// The standard event names of the event spec.
pub const SPEC_EVENTS: [&str; 19] = [
    "$page_load",
    "Viewed Product",
    "Viewed Collection",
    "Added To Cart",
    "Viewed Cart",
    "Started Checkout",
    "Added Payment Info",
    "Placed Order",
    "Started Subscription",
    "Placed Recurring Subscription Order",
    "Cancelled Subscription",
    "Activated Subscription",
    "Searched",
    "Subscribed To Newsletter",
    "Added To Wishlist",
    "Logged In",
    "Signed Up",
    "Received Refund",
    "New Customer Order",
];

/// A source event name that is not the event spec's but close to one: where and the suggestion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MisspelledEvent {
    pub pointer: String,
    pub message: String,
}

/// Every source event name in a rules document (`source:` of rows, row switches and custom events,
/// `events:` of filters) that is close to, but not, one of [`SPEC_EVENTS`]. Values under a key in
/// `skip` are not rules.
pub fn misspelled_events(doc: &Value, skip: &[&str]) -> Vec<MisspelledEvent> {
    let mut found = Vec::new();
    names_walk(doc, &mut String::new(), skip, &mut found);
    found
}

/// As [`walk`]: `pointer` is where `node` stands, written onto and taken back.
fn names_walk(node: &Value, pointer: &mut String, skip: &[&str], found: &mut Vec<MisspelledEvent>) {
    match node {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let back = push_index(pointer, i);
                names_walk(item, pointer, skip, found);
                pointer.truncate(back);
            }
        }
        Value::Object(map) => {
            for (key, value) in map {
                if skip.contains(&key.as_str()) {
                    continue;
                }
                let back = push_key(pointer, key);
                match (key.as_str(), value) {
                    ("source", Value::String(name)) => check_name(name, pointer, found),
                    ("events", Value::Array(names)) => {
                        for (i, name) in names.iter().enumerate() {
                            if let Value::String(name) = name {
                                let here = push_index(pointer, i);
                                check_name(name, pointer, found);
                                pointer.truncate(here);
                            }
                        }
                    }
                    _ => names_walk(value, pointer, skip, found),
                }
                pointer.truncate(back);
            }
        }
        _ => {}
    }
}

fn check_name(name: &str, pointer: &str, found: &mut Vec<MisspelledEvent>) {
    if SPEC_EVENTS.contains(&name) {
        return;
    }
    if let Some(close) = crate::load::closest(name, &SPEC_EVENTS) {
        found.push(MisspelledEvent {
            pointer: pointer.to_owned(),
            message: format!(
                "`{name}` is no event of the event spec, so only custom events of that name match; did you mean `{close}`?"
            ),
        });
    }
}
