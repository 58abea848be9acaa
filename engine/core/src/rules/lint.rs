//! Rule paths that can never match: a path's first step must be one of the event envelope's
//! fields (the source event is normalised to them before rules run), so `$.propertys.rating` or
//! `$.profileProperties.email` would silently find nothing. Found at load, reported as warnings.

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
    walk(doc, String::new(), skip, &mut found);
    found
}

fn walk(node: &Value, pointer: String, skip: &[&str], found: &mut Vec<DeadPath>) {
    match node {
        Value::String(path) => {
            if let Some(message) = check(path) {
                found.push(DeadPath { pointer, message });
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                walk(item, format!("{pointer}/{i}"), skip, found);
            }
        }
        Value::Object(map) => {
            let in_each = map.contains_key("each");
            for (key, value) in map {
                if skip.contains(&key.as_str()) || (in_each && key == "fields") {
                    continue;
                }
                let escaped = key.replace('~', "~0").replace('/', "~1");
                walk(value, format!("{pointer}/{escaped}"), skip, found);
            }
        }
        _ => {}
    }
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
}
