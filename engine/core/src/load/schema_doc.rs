//! Finishing a generated JSON Schema for editors and readers: an `$id`, a description on every
//! property (from the type it refers to, or the variant it selects, when its field has no doc
//! comment of its own), and only the standard `format`s (schemars adds `uint`, `int64`, `double`
//! and the like, which editors flag as unknown; the type and range already say it).

use serde_json::{Map, Value};

/// The `format`s JSON Schema 2020-12 defines.
const STANDARD_FORMATS: [&str; 19] = [
    "date-time",
    "date",
    "time",
    "duration",
    "email",
    "idn-email",
    "hostname",
    "idn-hostname",
    "ipv4",
    "ipv6",
    "uri",
    "uri-reference",
    "iri",
    "iri-reference",
    "uuid",
    "uri-template",
    "json-pointer",
    "relative-json-pointer",
    "regex",
];

/// The `$id` of the schema of files of `kind` (`config`, `mapping`, ...).
pub fn schema_id(kind: &str) -> String {
    format!("urn:switchyard:schema:{kind}")
}

/// Adds `$id`, fills in missing property descriptions and drops non-standard formats.
pub fn finish(schema: &mut Value, kind: &str) {
    let defs = schema.get("$defs").cloned().unwrap_or(Value::Null);
    walk(schema, &defs, None);
    if let Value::Object(map) = schema {
        map.insert("$id".to_owned(), Value::String(schema_id(kind)));
    }
}

/// `branch`: the description of the enclosing `oneOf`/`anyOf` branch, for its properties.
fn walk(node: &mut Value, defs: &Value, branch: Option<&str>) {
    match node {
        Value::Object(map) => {
            if map
                .get("format")
                .and_then(Value::as_str)
                .is_some_and(|f| !STANDARD_FORMATS.contains(&f))
            {
                map.remove("format");
            }
            let own = map
                .get("description")
                .and_then(Value::as_str)
                .map(str::to_owned);
            if let Some(Value::Object(props)) = map.get_mut("properties") {
                describe(props, defs, own.as_deref().or(branch));
            }
            for (key, value) in map.iter_mut() {
                let inherited = match key.as_str() {
                    "oneOf" | "anyOf" => None,
                    _ => own.as_deref().or(branch),
                };
                walk(value, defs, inherited);
            }
        }
        Value::Array(items) => {
            for item in items {
                walk(item, defs, branch);
            }
        }
        _ => {}
    }
}

fn describe(props: &mut Map<String, Value>, defs: &Value, branch: Option<&str>) {
    let single = props.len() == 1;
    for prop in props.values_mut() {
        let Value::Object(p) = prop else { continue };
        if p.contains_key("description") {
            continue;
        }
        let referred = p
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix("#/$defs/"))
            .and_then(|name| defs.get(name)?.get("description")?.as_str());
        let tag = p.get("const").and_then(Value::as_str);
        let text = match (tag, branch, referred) {
            (Some(tag), Some(what), _) => format!("`{tag}`: {what}"),
            (Some(tag), None, _) => format!("`{tag}` selects this kind."),
            (None, Some(what), _) if single => what.to_owned(),
            (None, _, Some(text)) => text.to_owned(),
            _ => continue,
        };
        p.insert("description".to_owned(), Value::String(text));
    }
}
