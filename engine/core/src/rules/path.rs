//! Compiled JSONPath: parsed once at load by jsonpath-rust, then evaluated per event without parsing.
//!
//! Paths made only of names, indexes and wildcards (nearly all paths in mappings: `$.properties.items[*]`,
//! `$.profile_properties['$email']`) are lowered to a list of steps that walk the event directly and
//! allocate nothing. Anything else (filters, slices, descendants) keeps jsonpath-rust's own compiled
//! query, which is correct but slower: it builds a normalized path string for every node it visits.

use jsonpath_rust::parser::model::{JpQuery, Segment, Selector};
use jsonpath_rust::parser::parse_json_path;
use jsonpath_rust::query::js_path_process;
use serde_json::Value;
use std::fmt;

/// A JSONPath compiled for repeated evaluation.
#[derive(Clone)]
pub struct CompiledPath {
    text: Box<str>,
    plan: Plan,
}

#[derive(Clone)]
enum Plan {
    /// Names and indexes only: at most one node.
    Single(Box<[Step]>),
    /// Names, indexes and wildcards.
    Direct(Box<[Step]>),
    General(Box<JpQuery>),
}

#[derive(Clone, Debug, PartialEq)]
enum Step {
    Key(Box<str>),
    Index(i64),
    Wildcard,
}

impl fmt::Debug for CompiledPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CompiledPath({})", self.text)
    }
}

/// A parser's multi-line report (`--> 1:22`, the text, a caret, `= expected ...`) as one line:
/// `at character 22: expected ...`.
fn one_line(report: &str) -> String {
    let column = report
        .lines()
        .find_map(|l| l.split("--> ").nth(1))
        .and_then(|place| place.rsplit_once(':'))
        .map(|(_, column)| column.trim().to_owned());
    let reason = report
        .lines()
        .find_map(|l| l.trim().strip_prefix("= "))
        .unwrap_or_else(|| report.lines().next().unwrap_or(report))
        .trim();
    match column {
        Some(c) => format!("at character {c}: {reason}"),
        None => reason.to_owned(),
    }
}

impl CompiledPath {
    /// Parses `text` as JSONPath (RFC 9535). The message of an error says what is wrong and how
    /// to write names that are not plain identifiers.
    pub fn compile(text: &str) -> Result<Self, String> {
        if !text.starts_with('$') {
            return Err(format!(
                "`{text}` is not a JSONPath: paths start with `$` (e.g. `$.properties.price`); \
                 for a fixed value write `{{ const: ... }}`"
            ));
        }
        let query = parse_json_path(text).map_err(|e| {
            format!(
                "`{text}` is not valid JSONPath ({}); names with `$` or spaces need brackets: \
                 `$.profile_properties['$email']`",
                one_line(&e.to_string())
            )
        })?;
        let plan = match lower(&query) {
            Some(steps) if !steps.contains(&Step::Wildcard) => Plan::Single(steps.into()),
            Some(steps) => Plan::Direct(steps.into()),
            None => Plan::General(Box::new(query)),
        };
        Ok(Self {
            text: text.into(),
            plan,
        })
    }

    /// The path as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether evaluation takes the allocation-free direct walk.
    pub fn is_direct(&self) -> bool {
        matches!(self.plan, Plan::Single(_) | Plan::Direct(_))
    }

    /// The names of a path made of names only (`$.properties['$url']`: `properties`, `$url`), which
    /// selects at most one node; `None` for any other path.
    pub fn names(&self) -> Option<impl Iterator<Item = &str>> {
        let Plan::Single(steps) = &self.plan else {
            return None;
        };
        if !steps.iter().all(|s| matches!(s, Step::Key(_))) {
            return None;
        }
        Some(steps.iter().filter_map(|s| match s {
            Step::Key(k) => Some(&**k),
            _ => None,
        }))
    }

    /// The names a path of names, indexes and wildcards walks through, its indexes and wildcards
    /// left out (`$.properties.items[0].*`: `properties`, `items`); `None` for any other path
    /// (filters, slices, unions, descendants).
    pub fn walked_names(&self) -> Option<impl Iterator<Item = &str>> {
        let (Plan::Single(steps) | Plan::Direct(steps)) = &self.plan else {
            return None;
        };
        Some(steps.iter().filter_map(|s| match s {
            Step::Key(k) => Some(&**k),
            _ => None,
        }))
    }

    /// Whether the path selects at most one node (names and indexes only).
    pub fn selects_one(&self) -> bool {
        matches!(self.plan, Plan::Single(_))
    }

    /// The first node the path selects, if any.
    pub fn first<'a>(&self, root: &'a Value) -> Option<&'a Value> {
        match &self.plan {
            Plan::Single(steps) => walk_single(root, steps),
            _ => {
                let mut found = None;
                self.for_each(root, &mut |v| {
                    if found.is_none() {
                        found = Some(v);
                    }
                });
                found
            }
        }
    }

    /// Calls `f` with every node the path selects, in document order.
    pub fn for_each<'a>(&self, root: &'a Value, f: &mut dyn FnMut(&'a Value)) {
        match &self.plan {
            Plan::Single(steps) => walk_single(root, steps).into_iter().for_each(f),
            Plan::Direct(steps) => walk(root, steps, f),
            Plan::General(query) => {
                if let Ok(nodes) = js_path_process(query, root) {
                    nodes.into_iter().for_each(|n| f(n.val));
                }
            }
        }
    }
}

fn lower(query: &JpQuery) -> Option<Vec<Step>> {
    query
        .segments
        .iter()
        .map(|segment| match segment {
            Segment::Selector(Selector::Name(name)) => Some(Step::Key(name.as_str().into())),
            Segment::Selector(Selector::Index(i)) => Some(Step::Index(*i)),
            Segment::Selector(Selector::Wildcard) => Some(Step::Wildcard),
            _ => None,
        })
        .collect()
}

/// Event objects are small: up to this many fields, a key is found by a linear scan that compares
/// lengths before bytes, cheaper than the map's ordered search (which compares bytes at every step).
const SCAN_LIMIT: usize = 16;

fn field<'a>(map: &'a serde_json::Map<String, Value>, key: &str) -> Option<&'a Value> {
    if map.len() <= SCAN_LIMIT {
        map.iter().find(|(k, _)| k.as_str() == key).map(|(_, v)| v)
    } else {
        map.get(key)
    }
}

fn index(items: &[Value], i: i64) -> Option<&Value> {
    let i = if i < 0 {
        items.len().checked_sub(i.unsigned_abs() as usize)?
    } else {
        usize::try_from(i).ok()?
    };
    items.get(i)
}

fn walk_single<'a>(mut node: &'a Value, steps: &[Step]) -> Option<&'a Value> {
    for step in steps {
        node = match (step, node) {
            (Step::Key(k), Value::Object(map)) => field(map, k)?,
            (Step::Index(i), Value::Array(items)) => index(items, *i)?,
            _ => return None,
        };
    }
    Some(node)
}

fn walk<'a>(node: &'a Value, steps: &[Step], f: &mut dyn FnMut(&'a Value)) {
    let Some((step, rest)) = steps.split_first() else {
        f(node);
        return;
    };
    match (step, node) {
        (Step::Key(k), Value::Object(map)) => {
            if let Some(child) = field(map, k) {
                walk(child, rest, f);
            }
        }
        (Step::Index(i), Value::Array(items)) => {
            if let Some(child) = index(items, *i) {
                walk(child, rest, f);
            }
        }
        (Step::Wildcard, Value::Array(items)) => items.iter().for_each(|c| walk(c, rest, f)),
        (Step::Wildcard, Value::Object(map)) => map.values().for_each(|c| walk(c, rest, f)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn all(path: &str, v: &Value) -> Vec<Value> {
        let p = CompiledPath::compile(path).unwrap();
        let mut out = vec![];
        p.for_each(v, &mut |n| out.push(n.clone()));
        out
    }

    #[test]
    fn plain_paths_are_direct_and_agree_with_jsonpath_rust() {
        let v = json!({"properties": {"$url": "u", "items": [{"id": 1}, {"id": 2}]}});
        for path in [
            "$.properties['$url']",
            "$.properties.items[*].id",
            "$.properties.items[-1]",
            "$['properties']['items'][0]['id']",
            "$.properties.*",
        ] {
            let p = CompiledPath::compile(path).unwrap();
            assert!(p.is_direct(), "{path}");
            let general = jsonpath_rust::JsonPath::query(&v, path).unwrap();
            let general: Vec<Value> = general.into_iter().cloned().collect();
            assert_eq!(all(path, &v), general, "{path}");
        }
        assert_eq!(
            CompiledPath::compile("$.properties.items[1].id")
                .unwrap()
                .first(&v),
            Some(&json!(2))
        );
    }

    #[test]
    fn filters_take_the_general_path() {
        let v = json!({"aliases": ["urn:email:x", "urn:user_id:42"]});
        let p = CompiledPath::compile("$.aliases[?search(@, '^urn:user_id:')]").unwrap();
        assert!(!p.is_direct());
        assert_eq!(p.first(&v), Some(&json!("urn:user_id:42")));
    }

    #[test]
    fn errors_say_how_to_write_the_path() {
        let e = CompiledPath::compile("properties.price").unwrap_err();
        assert!(e.contains("start with `$`"), "{e}");
        let e = CompiledPath::compile("$.properties.$url").unwrap_err();
        assert!(e.contains("need brackets"), "{e}");
    }
}
