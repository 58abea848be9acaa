//! Turning JSON Schema violations into messages a person can act on.
//!
//! The validator reports a failed `oneOf`/`anyOf` (every enum and tagged union in our schemas) as
//! "not valid under any of the schemas". This module looks inside: an enum of constants becomes
//! "expected one of `a`, `b`"; otherwise the branch the value came closest to matching is explained,
//! recursively. Messages are masked: they never echo the value (it may be a pasted secret).

use jsonschema::JsonType;
use jsonschema::ValidationError;
use jsonschema::error::{TypeKind, ValidationErrorKind};
use serde_json::Value;

/// For value errors (pattern, range, length), the description of the field in the schema, lower-cased
/// at the start so it reads as "expected ...".
fn expectation(error: &ValidationError<'_>, schema: &Value) -> Option<String> {
    let value_error = matches!(
        error.kind(),
        ValidationErrorKind::Pattern { .. }
            | ValidationErrorKind::Minimum { .. }
            | ValidationErrorKind::Maximum { .. }
            | ValidationErrorKind::MinLength { .. }
            | ValidationErrorKind::MaxLength { .. }
            | ValidationErrorKind::MinItems { .. }
    );
    if !value_error {
        return None;
    }
    let (parent, _keyword) = error.schema_path().as_str().rsplit_once('/')?;
    let text = schema_node(schema, parent)?.get("description")?.as_str()?;
    let first = first_sentence(text);
    let mut chars = first.chars();
    let head = chars.next()?;
    Some(head.to_lowercase().chain(chars).collect())
}

/// The first sentence of a description, on one line (a diagnostic is one line), without its full
/// stop: up to a `. ` before a capital letter, not after `e.g` or `i.e`.
fn first_sentence(text: &str) -> String {
    let paragraph = text.split("\n\n").next().unwrap_or(text).replace('\n', " ");
    let end = paragraph
        .match_indices(". ")
        .find(|(at, _)| {
            let before = &paragraph[..*at];
            let abbreviation = before.ends_with("e.g") || before.ends_with("i.e");
            !abbreviation && paragraph[at + 2..].starts_with(char::is_uppercase)
        })
        .map_or(paragraph.len(), |(at, _)| at);
    paragraph[..end].trim_end_matches('.').to_owned()
}

/// The schema node at a schema path (as the validator reports it: `$ref` steps included).
fn schema_node<'s>(schema: &'s Value, path: &str) -> Option<&'s Value> {
    let mut node = schema;
    for token in path.split('/').skip(1) {
        node = if token == "$ref" {
            resolve(schema, node.get("$ref")?.as_str()?)?
        } else {
            let token = super::pointer::unescape(token);
            match node {
                Value::Array(items) => items.get(token.parse::<usize>().ok()?)?,
                _ => node.get(&*token)?,
            }
        };
    }
    Some(node)
}

/// A schema value as written in a message: strings bare, in backticks.
fn quote(v: &Value) -> String {
    format!(
        "`{}`",
        v.as_str().map_or_else(|| v.to_string(), str::to_owned)
    )
}

/// Resolves a local reference (`#/$defs/Name`).
fn resolve<'s>(schema: &'s Value, reference: &str) -> Option<&'s Value> {
    schema.pointer(reference.strip_prefix('#')?)
}

/// One explained violation: where (JSON pointer) and what.
pub struct Explained {
    pub pointer: String,
    pub message: String,
    /// Where to place it when that is not `pointer`'s node: an unknown key is placed at the key,
    /// while its path stays the enclosing object's (a key is never echoed: it may be a secret).
    pub at: Option<String>,
    /// How to change the document so that the later checks can go on as if this were fixed.
    pub repair: Option<Repair>,
}

/// A change to a document that stands in for the user's fix, so that one run finds every error:
/// the later checks see what the user most likely meant, and knock-on errors disappear.
#[derive(Debug, Clone, PartialEq)]
pub enum Repair {
    /// A misspelled key read as the allowed key it is closest to.
    Rename {
        object: String,
        from: String,
        to: String,
    },
    /// A value the schema does not allow replaced by the closest allowed one (else the first).
    Replace { pointer: String, value: Value },
}

impl Explained {
    fn new(pointer: String, message: String) -> Self {
        Self {
            pointer,
            message,
            at: None,
            repair: None,
        }
    }

    fn repaired(mut self, repair: Option<Repair>) -> Self {
        self.repair = repair;
        self
    }
}

/// Explains one violation as one or more placed messages. `schema` is the root schema, where the
/// description of the offending field is looked up to say what is expected.
pub fn explain(error: &ValidationError<'_>, schema: &Value) -> Vec<Explained> {
    let pointer = error.instance_path().as_str().to_owned();
    let branches = match error.kind() {
        ValidationErrorKind::OneOfNotValid { context } | ValidationErrorKind::AnyOf { context } => {
            context
        }
        ValidationErrorKind::Enum { options } => {
            let all: Vec<String> = options
                .as_array()
                .into_iter()
                .flatten()
                .map(quote)
                .collect();
            let repair = replacement(error, &pointer, options.as_array().into_iter().flatten());
            return vec![
                Explained::new(
                    pointer,
                    format!("{}expected one of {}", suggest(error, &all), all.join(", ")),
                )
                .repaired(repair),
            ];
        }
        ValidationErrorKind::Required { property } => {
            return vec![Explained::new(
                pointer,
                format!("missing required field {property}"),
            )];
        }
        ValidationErrorKind::AdditionalProperties { unexpected }
        | ValidationErrorKind::UnevaluatedProperties { unexpected } => {
            return unknown_keys(error, schema, &pointer, unexpected);
        }
        ValidationErrorKind::Type { kind } => {
            return wrong_type(pointer, &taken_words(kind), error.instance());
        }
        _ => {
            let message = match (error.kind(), expectation(error, schema)) {
                // A regular expression says little to someone writing a config; the field's
                // description says what is expected.
                (ValidationErrorKind::Pattern { .. }, Some(hint)) => {
                    format!("wrong form: expected {hint}")
                }
                (_, Some(hint)) => format!("{}: expected {hint}", error.masked()),
                (_, None) => error.masked().to_string(),
            };
            return vec![Explained::new(pointer, message)];
        }
    };
    if let Some(options) = constant_options(branches, &pointer, schema) {
        return vec![one_of_constants(error, pointer, &options)];
    }
    if let Some(tag) = tag_mismatch(branches, &pointer) {
        return vec![tag];
    }
    if let Some(taken) = types_taken(branches, &pointer) {
        return wrong_type(pointer, &taken, error.instance());
    }
    match closest_branch(branches, &pointer) {
        Some(branch) => branch.iter().flat_map(|e| explain(e, schema)).collect(),
        None => vec![Explained::new(pointer, error.masked().to_string())],
    }
}

/// A value that is none of the constants `options` (as quoted for messages) a `oneOf` takes:
/// the closest, if one is close, and the list.
fn one_of_constants(error: &ValidationError<'_>, pointer: String, options: &[String]) -> Explained {
    let constants: Vec<Value> = options
        .iter()
        .filter(|o| !o.starts_with("`{"))
        .map(|o| Value::String(o.trim_matches('`').to_owned()))
        .collect();
    let repair = replacement(error, &pointer, constants.iter());
    let message = format!(
        "{}expected one of {}",
        suggest(error, options),
        options.join(", ")
    );
    Explained::new(pointer, message).repaired(repair)
}

/// One finding per key the object at `pointer` may not have, placed at the key, never naming it
/// (a pasted secret can stand where a key should): with the closest allowed key, or the list. A key
/// some branch of the object's schema allows is no finding: it is only "unevaluated" because that
/// branch failed, and the branch's own error says why.
fn unknown_keys(
    error: &ValidationError<'_>,
    schema: &Value,
    pointer: &str,
    unexpected: &[String],
) -> Vec<Explained> {
    let allowed: Option<Vec<&str>> = error
        .schema_path()
        .as_str()
        .rsplit_once('/')
        .and_then(|(parent, _)| schema_node(schema, parent))
        .map(|node| {
            let mut names = Vec::new();
            allowed_keys(schema, node, &mut names, 0);
            names
        });
    let present = |key: &str| error.instance().get(key).is_some();
    unexpected
        .iter()
        .filter(|key| !allowed.as_ref().is_some_and(|a| a.contains(&key.as_str())))
        .map(|key| {
            let close = allowed.as_deref().and_then(|names| closest(key, names));
            let hint = match (allowed.as_deref(), close) {
                (None, _) => "see the schema for the keys this object takes".to_owned(),
                (Some([]), _) => "this object takes no other keys".to_owned(),
                (Some(_), Some(name)) => format!("did you mean `{name}`?"),
                (Some(names), None) => format!("expected one of `{}`", names.join("`, `")),
            };
            let repair = close
                .filter(|name| !present(name))
                .map(|name| Repair::Rename {
                    object: pointer.to_owned(),
                    from: key.clone(),
                    to: name.to_owned(),
                });
            Explained {
                pointer: pointer.to_owned(),
                message: format!("unknown key (not shown, it may be a secret); {hint}"),
                at: Some(format!("{pointer}/{}", super::pointer::escape(key))),
                repair,
            }
        })
        .collect()
}

/// The keys an object schema allows: its `properties` and those of every branch it combines
/// (`oneOf`, `anyOf`, `allOf`, references followed), in schema order, each once.
fn allowed_keys<'s>(schema: &'s Value, node: &'s Value, names: &mut Vec<&'s str>, depth: usize) {
    if depth > 8 {
        return;
    }
    if let Some(target) = node
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| resolve(schema, r))
    {
        allowed_keys(schema, target, names, depth + 1);
    }
    for key in node
        .get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, _)| k)
    {
        if !names.contains(&key.as_str()) {
            names.push(key);
        }
    }
    for combinator in ["allOf", "oneOf", "anyOf"] {
        for branch in node
            .get(combinator)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            allowed_keys(schema, branch, names, depth + 1);
        }
    }
}

/// The repair of a value that is none of `options`: the closest option when the value is a string
/// close to one, else the first option (a stand-in: the error is reported either way).
fn replacement<'v>(
    error: &ValidationError<'_>,
    pointer: &str,
    mut options: impl Iterator<Item = &'v Value> + Clone,
) -> Option<Repair> {
    let names: Vec<&str> = options.clone().filter_map(Value::as_str).collect();
    let close = error
        .instance()
        .as_str()
        .and_then(|value| closest(value, &names))
        .map(|name| Value::String(name.to_owned()));
    let value = close.or_else(|| options.next().cloned())?;
    Some(Repair::Replace {
        pointer: pointer.to_owned(),
        value,
    })
}

/// "did you mean `x`? " when the offending value is a string close to one of the (quoted) options.
fn suggest(error: &ValidationError<'_>, options: &[String]) -> String {
    let names: Vec<&str> = options.iter().map(|o| o.trim_matches('`')).collect();
    error
        .instance()
        .as_str()
        .map_or_else(String::new, |value| did_you_mean(value, &names))
}

/// `did you mean `x`? ` (with a trailing space) when an allowed name is close to `key`, else
/// nothing: a suggestion is optional, its absence no failure.
pub fn did_you_mean(key: &str, allowed: &[&str]) -> String {
    closest(key, allowed).map_or_else(String::new, |name| format!("did you mean `{name}`? "))
}

/// The allowed name closest to `key`, if it is close enough to be a misspelling.
pub fn closest<'a>(key: &str, allowed: &[&'a str]) -> Option<&'a str> {
    let near = |name: &str| {
        strsim::jaro_winkler(key, name) >= 0.85
            || strsim::damerau_levenshtein(key, name) <= (name.len() / 4).max(1)
    };
    allowed
        .iter()
        .filter(|name| near(name))
        .max_by(|a, b| strsim::jaro_winkler(key, a).total_cmp(&strsim::jaro_winkler(key, b)))
        .copied()
}

/// When every branch is a constant (a string enum with documented variants) or a one-key map that
/// the value is not (`{ query_param: ... }`), the allowed forms.
fn constant_options(
    branches: &[Vec<ValidationError<'static>>],
    pointer: &str,
    schema: &Value,
) -> Option<Vec<String>> {
    let quote = |v: &Value| {
        format!(
            "`{}`",
            v.as_str().map_or_else(|| v.to_string(), str::to_owned)
        )
    };
    let mut options = Vec::new();
    for branch in branches {
        let [e] = branch.as_slice() else { return None };
        if e.instance_path().as_str() != pointer {
            return None;
        }
        match e.kind() {
            ValidationErrorKind::Constant { expected_value } => options.push(quote(expected_value)),
            ValidationErrorKind::Enum { options: values } => {
                options.extend(values.as_array().into_iter().flatten().map(quote));
            }
            ValidationErrorKind::Type { .. } => {
                let node = schema_node(schema, e.schema_path().as_str().rsplit_once('/')?.0)?;
                let [key] = node.get("required")?.as_array()?.as_slice() else {
                    return None;
                };
                options.push(format!("`{{ {}: ... }}`", key.as_str()?));
            }
            _ => return None,
        }
    }
    options
        .iter()
        .any(|o| !o.starts_with("`{"))
        .then_some(options)
}

/// A tagged union (`type: tiktok`) whose tag matches no branch: every branch fails on a constant of
/// the same property right below the value. Then the tag is the one thing to fix.
fn tag_mismatch(branches: &[Vec<ValidationError<'static>>], pointer: &str) -> Option<Explained> {
    let base = pointer.matches('/').count();
    let mut tag_pointer: Option<&str> = None;
    let mut options = Vec::new();
    for branch in branches {
        let (at, expected) = branch.iter().find_map(|e| match e.kind() {
            ValidationErrorKind::Constant { expected_value }
                if e.instance_path().as_str().matches('/').count() == base + 1 =>
            {
                Some((e.instance_path().as_str(), expected_value))
            }
            _ => None,
        })?;
        if tag_pointer.is_some_and(|p| p != at) {
            return None;
        }
        tag_pointer = Some(at);
        options.push(quote(expected));
    }
    Some(Explained::new(
        tag_pointer?.to_owned(),
        format!("expected one of {}", options.join(", ")),
    ))
}

/// The types the branches take, in words, when the value at `pointer` is of none of them: every
/// branch fails on `type` at the value itself (`5` where a field takes a path or a rule).
fn types_taken(
    branches: &[Vec<ValidationError<'static>>],
    pointer: &str,
) -> Option<Vec<&'static str>> {
    let mut taken = Vec::new();
    for branch in branches {
        let kind = branch.iter().find_map(|e| match e.kind() {
            ValidationErrorKind::Type { kind } if e.instance_path().as_str() == pointer => {
                Some(kind)
            }
            _ => None,
        })?;
        for words in taken_words(kind) {
            if !taken.contains(&words) {
                taken.push(words);
            }
        }
    }
    (!taken.is_empty()).then_some(taken)
}

/// The types a `type` keyword takes, in words.
fn taken_words(kind: &TypeKind) -> Vec<&'static str> {
    match kind {
        TypeKind::Single(t) => vec![type_words(*t)],
        TypeKind::Multiple(set) => set.iter().map(type_words).collect(),
    }
}

/// A value of a type the schema does not take there: the types it takes, and the type found
/// (never the value, which may be a pasted secret).
fn wrong_type(pointer: String, taken: &[&str], found: &Value) -> Vec<Explained> {
    let found = type_words(json_type(found));
    let message = format!("expected {}, found {found}", taken.join(" or "));
    vec![Explained::new(pointer, message)]
}

/// A JSON type as the messages name it.
fn type_words(t: JsonType) -> &'static str {
    match t {
        JsonType::String => "text",
        JsonType::Number => "a number",
        JsonType::Integer => "a whole number",
        JsonType::Object => "an object",
        JsonType::Array => "a list",
        JsonType::Boolean => "true or false",
        JsonType::Null => "null",
    }
}

/// The JSON type of a value (any number a `Number`).
fn json_type(v: &Value) -> JsonType {
    match v {
        Value::Null => JsonType::Null,
        Value::Bool(_) => JsonType::Boolean,
        Value::Number(_) => JsonType::Number,
        Value::String(_) => JsonType::String,
        Value::Array(_) => JsonType::Array,
        Value::Object(_) => JsonType::Object,
    }
}

/// The branch the value came closest to: one that does not reject the value's type outright and
/// does not fail on a discriminating constant right below the value, then the one whose errors lie
/// deepest, then the one with the fewest errors.
fn closest_branch<'e>(
    branches: &'e [Vec<ValidationError<'static>>],
    pointer: &str,
) -> Option<&'e Vec<ValidationError<'static>>> {
    let depth = |e: &ValidationError<'_>| e.instance_path().as_str().matches('/').count();
    let base = pointer.matches('/').count();
    branches
        .iter()
        .filter(|b| !b.is_empty())
        .max_by_key(|branch| {
            let wrong_type = branch.iter().any(|e| {
                matches!(e.kind(), ValidationErrorKind::Type { .. })
                    && e.instance_path().as_str() == pointer
            });
            let wrong_tag = branch.iter().any(|e| {
                matches!(e.kind(), ValidationErrorKind::Constant { .. }) && depth(e) == base + 1
            });
            let deepest = branch.iter().map(depth).max().unwrap_or(0);
            (!wrong_type, !wrong_tag, deepest, usize::MAX - branch.len())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hint_is_the_first_sentence_on_one_line() {
        for (description, hint) in [
            (
                "The TikTok Pixel ID: 20 letters.",
                "The TikTok Pixel ID: 20 letters",
            ),
            (
                "The stream's name: 1 to 32 letters (the dead letters go to\n`x_DEAD`). Nodes share it.",
                "The stream's name: 1 to 32 letters (the dead letters go to `x_DEAD`)",
            ),
            (
                "The country, e.g. US. Used for phones.",
                "The country, e.g. US",
            ),
            ("A code, i.e. EUR. More.", "A code, i.e. EUR"),
            ("One. two. Three.", "One. two"),
            ("First paragraph.\n\nSecond.", "First paragraph"),
        ] {
            assert_eq!(first_sentence(description), hint, "{description}");
        }
    }
}
