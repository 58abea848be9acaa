//! Environment variables in config and mapping files: `${VAR}` and `${VAR:-default}` in any string
//! value are replaced before the file is checked, so `validate` sees what `serve` will use
//! (`listen: "${LISTEN_ADDR:-127.0.0.1:8080}"`). `$${` writes a literal `${`.
//!
//! Secrets are the exception: a field whose schema is a secret keeps its `${VAR}` reference, which
//! the secret itself resolves (and never shows). Which keys those are is read from the schema. A
//! variable that a secret field names is a secret wherever it stands: in any other field of the
//! same file it is refused, as its value would be shown (`validate`, a dry run) or sent (a payload
//! field). So it is in the files the config loads (its mapping files): the config's
//! [`FileScope`](super::FileScope) carries its secret variables ([`secret_variables`]) to them.

use crate::secret::Secret;
use serde_json::Value;
use std::collections::{BTreeSet, HashSet};

/// A reference that cannot be replaced: its variable, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unresolved {
    /// The JSON pointer of the string that holds it.
    pub pointer: String,
    pub message: String,
}

/// The keys whose values are secrets in `schema` (properties that refer to `#/$defs/Secret`).
pub fn secret_keys(schema: &Value) -> HashSet<String> {
    let mut keys = HashSet::new();
    collect_secret_keys(schema, &mut keys);
    keys
}

fn collect_secret_keys(node: &Value, keys: &mut HashSet<String>) {
    match node {
        Value::Object(map) => {
            if let Some(Value::Object(props)) = map.get("properties") {
                for (name, prop) in props {
                    if refers_to_secret(prop) {
                        keys.insert(name.clone());
                    }
                }
            }
            map.values().for_each(|v| collect_secret_keys(v, keys));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_secret_keys(v, keys)),
        _ => {}
    }
}

fn refers_to_secret(prop: &Value) -> bool {
    let direct = prop.get("$ref").and_then(Value::as_str) == Some("#/$defs/Secret");
    let any_of = prop
        .get("anyOf")
        .and_then(Value::as_array)
        .is_some_and(|branches| branches.iter().any(refers_to_secret));
    direct || any_of
}

/// Replaces every reference in the string values of `doc` (not in keys, not under `secrets`),
/// reading variables with `lookup`; every reference that cannot be replaced is reported. The
/// variables of `doc`'s own secret fields, and those in `guarded` (the secrets of the config that
/// loads this file), are refused outside secret fields.
pub fn interpolate(
    doc: &mut Value,
    secrets: &HashSet<String>,
    guarded: &BTreeSet<String>,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Vec<Unresolved> {
    let mut secret_variables = secret_variables(doc, secrets);
    secret_variables.extend(guarded.iter().cloned());
    // A secret's variable reads as unset outside its field: `resolve` then names it as one.
    let guarded = |name: &str| match secret_variables.contains(name) {
        true => Err(format!(
            "`${{{name}}}` is a secret (a secret field such as `access_token` names it): it may stand \
             only in a secret field, where it is never shown; here it would be shown or sent"
        )),
        false => Ok(lookup(name)),
    };
    let mut problems = Vec::new();
    walk(doc, String::new(), secrets, &guarded, &mut problems);
    problems
}

/// The variables the secret fields (`secrets`) of `doc` name (`access_token: "${VAR}"` → `VAR`).
pub fn secret_variables(doc: &Value, secrets: &HashSet<String>) -> BTreeSet<String> {
    let mut known = BTreeSet::new();
    collect_secret_variables(doc, secrets, &mut known);
    known
}

/// Adds the variable of every secret field of `node` (`${VAR}`) to `known`.
fn collect_secret_variables(node: &Value, secrets: &HashSet<String>, known: &mut BTreeSet<String>) {
    match node {
        Value::Object(map) => {
            for (key, value) in map {
                match value.as_str() {
                    // A secret field holds `${VAR}` or is refused when the file is checked.
                    Some(text) if secrets.contains(key) => {
                        if let Some(secret) = Secret::from_reference(text.trim()) {
                            known.insert(secret.var().to_owned());
                        }
                    }
                    _ => collect_secret_variables(value, secrets, known),
                }
            }
        }
        Value::Array(items) => items
            .iter()
            .for_each(|v| collect_secret_variables(v, secrets, known)),
        _ => {}
    }
}

/// How a variable is read: its value (`None` when unset), or why it may not be used here.
type Lookup<'a> = dyn Fn(&str) -> Result<Option<String>, String> + 'a;

fn walk(
    node: &mut Value,
    pointer: String,
    secrets: &HashSet<String>,
    lookup: &Lookup<'_>,
    problems: &mut Vec<Unresolved>,
) {
    match node {
        Value::String(s) if s.contains('$') => match expand(s, lookup) {
            Ok(expanded) => *s = expanded,
            Err(message) => problems.push(Unresolved { pointer, message }),
        },
        Value::Object(map) => {
            for (key, value) in map.iter_mut().filter(|(k, _)| !secrets.contains(*k)) {
                let escaped = super::pointer::escape(key);
                walk(
                    value,
                    format!("{pointer}/{escaped}"),
                    secrets,
                    lookup,
                    problems,
                );
            }
        }
        Value::Array(items) => {
            for (i, value) in items.iter_mut().enumerate() {
                walk(value, format!("{pointer}/{i}"), secrets, lookup, problems);
            }
        }
        _ => {}
    }
}

/// One string with its references replaced.
fn expand(text: &str, lookup: &Lookup<'_>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at..];
        if let Some(literal) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = literal;
        } else if let Some(reference) = after.strip_prefix("${") {
            let end = reference
                .find('}')
                .ok_or_else(|| "a `${` without its closing `}`".to_owned())?;
            out.push_str(&resolve(&reference[..end], lookup)?);
            rest = &reference[end + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// `VAR` or `VAR:-default`: the variable's value (an empty one counts as unset), or the default.
fn resolve(reference: &str, lookup: &Lookup<'_>) -> Result<String, String> {
    let (name, default) = match reference.split_once(":-") {
        Some((name, default)) => (name, Some(default)),
        None => (reference, None),
    };
    let valid = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        // Not shown: what stands between the braces may be a pasted secret.
        return Err(
            "this `${…}` is not a variable reference (not shown, it may be a secret): a name is \
             letters, digits and `_`; write `$${` for a literal `${`"
                .to_owned(),
        );
    }
    match (lookup(name)?.filter(|v| !v.is_empty()), default) {
        (Some(value), _) => Ok(value),
        (None, Some(default)) => Ok(default.to_owned()),
        (None, None) => Err(format!(
            "the environment variable {name} is not set (give a default: `${{{name}:-value}}`)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env(name: &str) -> Option<String> {
        match name {
            "LISTEN_ADDR" => Some("0.0.0.0:9000".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn references_are_replaced_in_strings_with_defaults_and_escapes() {
        let mut doc = json!({
            "listen": "${LISTEN_ADDR}",
            "data_dir": "/var/${UNSET:-lib}/switchyard",
            "empty": "${EMPTY:-fallback}",
            "path": "$.properties['$url']",
            "literal": "$${NOT_A_VAR}",
            "list": [1, "${LISTEN_ADDR}"],
        });
        assert_eq!(
            interpolate(&mut doc, &HashSet::new(), &BTreeSet::new(), &env),
            []
        );
        assert_eq!(
            doc,
            json!({
                "listen": "0.0.0.0:9000",
                "data_dir": "/var/lib/switchyard",
                "empty": "fallback",
                "path": "$.properties['$url']",
                "literal": "${NOT_A_VAR}",
                "list": [1, "0.0.0.0:9000"],
            })
        );
    }

    #[test]
    fn unset_and_malformed_references_are_reported_at_their_place_and_secrets_left_alone() {
        let mut doc = json!({
            "a": {"b": ["${UNSET}"]},
            "c": "${not valid}",
            "d": "${OPEN",
            "access_token": "${UNSET_TOKEN}",
        });
        let secrets = HashSet::from(["access_token".to_owned()]);
        let problems = interpolate(&mut doc, &secrets, &BTreeSet::new(), &env);
        let places: Vec<&str> = problems.iter().map(|p| p.pointer.as_str()).collect();
        assert_eq!(places, ["/a/b/0", "/c", "/d"]);
        assert!(problems[0].message.contains("UNSET is not set"));
        // What stands between the braces of a malformed reference is not shown.
        assert!(
            problems[1]
                .message
                .contains("not a variable reference (not shown")
        );
        assert!(!problems[1].message.contains("not valid"), "{problems:?}");
        assert_eq!(doc["access_token"], "${UNSET_TOKEN}");
    }

    #[test]
    fn a_secret_s_variable_is_refused_outside_secret_fields_of_this_file_and_the_files_it_loads() {
        let lookup = |name: &str| (name == "INTERP_TEST_TOKEN").then(|| "s3cr3t-value".to_owned());
        let secrets = HashSet::from(["access_token".to_owned()]);
        let mut config = json!({
            "destinations": [{"access_token": "${INTERP_TEST_TOKEN}"}],
            "sources": ["${INTERP_TEST_TOKEN}"],
        });
        let problems = interpolate(&mut config, &secrets, &BTreeSet::new(), &lookup);
        let places: Vec<&str> = problems.iter().map(|p| p.pointer.as_str()).collect();
        assert_eq!(places, ["/sources/0"]);
        assert!(problems[0].message.contains("is a secret"), "{problems:?}");
        assert!(!config.to_string().contains("s3cr3t-value"), "{config}");
        // A file the config loads (a mapping file, with no secret fields) may not use it either:
        // the config's secret variables guard it.
        let guarded = secret_variables(&config, &secrets);
        assert_eq!(guarded, BTreeSet::from(["INTERP_TEST_TOKEN".to_owned()]));
        let text = json!({"rows": [{"fields": {"x": {"const": "a ${INTERP_TEST_TOKEN}"}}}]});
        let mut mapping = text.clone();
        let problems = interpolate(&mut mapping, &HashSet::new(), &guarded, &lookup);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(!mapping.to_string().contains("s3cr3t-value"), "{mapping}");
        // Without that config (another process's, another test's), the variable is no secret.
        let mut alone = text;
        assert_eq!(
            interpolate(&mut alone, &HashSet::new(), &BTreeSet::new(), &lookup),
            []
        );
    }

    #[test]
    fn secret_keys_are_read_from_the_schema() {
        let schema = json!({"$defs": {"X": {"properties": {
            "access_token": {"$ref": "#/$defs/Secret"},
            "write_key": {"anyOf": [{"$ref": "#/$defs/Secret"}, {"type": "null"}]},
            "listen": {"type": "string"},
        }}}});
        let keys = secret_keys(&schema);
        assert_eq!(keys.len(), 2);
        assert!(keys.contains("access_token") && keys.contains("write_key"));
    }
}
