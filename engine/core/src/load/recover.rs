//! Going on after schema errors, so that one run reports every error of every stage.
//!
//! A document that breaks its schema is repaired the way its user most likely meant it (a
//! misspelled key read as the key it is closest to, a value outside an enum as the closest allowed
//! one) and checked again: errors that vanish were knock-ons of the repaired ones and are dropped.
//! What the types still cannot take is pruned (the key, else the enclosing item) until the document
//! deserializes; the later, semantic checks then run on what is left. [`Remap`] turns the pointers
//! of the repaired, pruned document back into pointers of the file as written.

use super::pointer::{escape, unescape};
use super::schema_errors::{self, Explained, Repair};
use super::{Schema, path_to_pointer};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::HashMap;

/// How many times the document is repaired and checked again, at most.
const REPAIR_PASSES: usize = 3;

/// How many nodes are pruned, at most, before giving up on the later checks.
const MAX_PRUNED: usize = 256;

/// From pointers of the repaired, pruned document to pointers of the file as written.
#[derive(Debug, Clone, Default)]
pub struct Remap {
    /// Keys renamed, in order: (object, from, to).
    renames: Vec<(String, String, String)>,
    /// Per array (pointer in the repaired document), the original indexes of the items pruned.
    pruned: HashMap<String, Vec<usize>>,
}

impl Remap {
    /// The pointer in the file as written of the node at `pointer` of the pruned document.
    pub fn original(&self, pointer: &str) -> String {
        let mut out = self.unpruned(pointer);
        for (object, from, to) in self.renames.iter().rev() {
            let renamed = format!("{object}/{}", escape(to));
            if let Some(rest) = out.strip_prefix(&renamed)
                && (rest.is_empty() || rest.starts_with('/'))
            {
                out = format!("{object}/{}{rest}", escape(from));
            }
        }
        out
    }

    /// The pointer in the repaired document (before pruning) of `pointer`.
    fn unpruned(&self, pointer: &str) -> String {
        if self.pruned.is_empty() {
            return pointer.to_owned();
        }
        let mut out = String::new();
        for token in pointer.split('/').skip(1) {
            let index = token.parse::<usize>().ok();
            let token = match (self.pruned.get(&out), index) {
                (Some(gone), Some(i)) => survivor(gone, i).to_string(),
                _ => token.to_owned(),
            };
            out.push('/');
            out.push_str(&token);
        }
        out
    }
}

/// The original index of the `i`-th item left once the items `gone` are pruned.
fn survivor(gone: &[usize], i: usize) -> usize {
    (0..).filter(|j| !gone.contains(j)).nth(i).unwrap_or(i)
}

/// The schema's findings on `value` (pointers of the file as written), knock-ons dropped, and the
/// document repaired as far as the findings allow.
///
/// Also returns the pointers (in the repaired document) of the values the schema refuses and no
/// repair fixed, for [`drop_refused`].
pub fn check_schema(
    value: &Value,
    schema: &Schema,
    remap: &mut Remap,
) -> (Vec<Explained>, Value, Vec<String>) {
    let mut doc = value.clone();
    let mut found: Vec<Explained> = Vec::new();
    let mut refused: Vec<String> = Vec::new();
    for pass in 0..REPAIR_PASSES {
        let errors: Vec<Explained> = schema
            .validator
            .iter_errors(&doc)
            .flat_map(|e| schema_errors::explain(&e, &schema.schema))
            .collect();
        let repairable = pass + 1 < REPAIR_PASSES && errors.iter().any(|e| e.repair.is_some());
        for mut e in errors {
            if repairable && e.repair.is_none() {
                // Checked again after the repairs: kept then, unless it was a knock-on.
                continue;
            }
            match &e.repair {
                Some(repair) => apply(&mut doc, repair, remap),
                None if e.at.is_none() => refused.push(e.pointer.clone()),
                None => {}
            }
            e.pointer = remap.original(&e.pointer);
            e.at = e.at.map(|at| remap.original(&at));
            let seen = found
                .iter()
                .any(|f| (&f.pointer, &f.at, &f.message) == (&e.pointer, &e.at, &e.message));
            if !seen {
                found.push(e);
            }
        }
        if !repairable {
            break;
        }
    }
    (found, doc, refused)
}

/// Removes the values the schema refused (`refused`, pointers) where the type has a default for
/// them, so that later checks run on the default and not on the refused value (a time budget of
/// 0 would make a plugin fail to start: a knock-on). A required value stays (the later checks of
/// its neighbours need it), and so do array items (their removal is [`prune`]'s).
pub fn drop_refused<T: DeserializeOwned>(doc: &mut Value, refused: &[String]) {
    for pointer in refused {
        let Some((parent, key)) = pointer.rsplit_once('/') else {
            continue;
        };
        let key = unescape(key);
        let mut without = doc.clone();
        let removed = without
            .pointer_mut(parent)
            .and_then(Value::as_object_mut)
            .and_then(|map| map.remove(&*key))
            .is_some();
        if !removed {
            continue;
        }
        let required = serde_path_to_error::deserialize::<_, T>(&without)
            .err()
            .is_some_and(|e| e.inner().to_string() == format!("missing field `{key}`"));
        if !required {
            *doc = without;
        }
    }
}

fn apply(doc: &mut Value, repair: &Repair, remap: &mut Remap) {
    match repair {
        Repair::Rename { object, from, to } => {
            if let Some(map) = doc.pointer_mut(object).and_then(Value::as_object_mut)
                && !map.contains_key(to)
                && let Some(v) = map.remove(from)
            {
                map.insert(to.clone(), v);
                remap
                    .renames
                    .push((object.clone(), from.clone(), to.clone()));
            }
        }
        Repair::Replace { pointer, value } => {
            if let Some(slot) = doc.pointer_mut(pointer) {
                *slot = value.clone();
            }
        }
    }
}

/// `T` from `doc`, pruning what it cannot take (the node serde stops at, else its parent) until it
/// can; `None` when nothing would be left. Returns what was left, too.
pub fn prune<T: DeserializeOwned>(mut doc: Value, remap: &mut Remap) -> Option<(T, Value)> {
    for _ in 0..MAX_PRUNED {
        match serde_path_to_error::deserialize::<_, T>(&doc) {
            Ok(typed) => return Some((typed, doc)),
            Err(e) => {
                let pointer = path_to_pointer(e.path());
                if !remove(&mut doc, &pointer, remap) {
                    return None;
                }
            }
        }
    }
    None
}

/// Removes the node at `pointer` (or its nearest existing ancestor), never the root.
fn remove(doc: &mut Value, pointer: &str, remap: &mut Remap) -> bool {
    let mut pointer = pointer;
    while doc.pointer(pointer).is_none() {
        match pointer.rfind('/') {
            Some(i) => pointer = &pointer[..i],
            None => return false,
        }
    }
    let Some((parent, last)) = pointer.rsplit_once('/') else {
        return false;
    };
    let unpruned_parent = remap.unpruned(parent);
    match doc.pointer_mut(parent) {
        Some(Value::Object(map)) => map.remove(&*unescape(last)).is_some(),
        Some(Value::Array(items)) => {
            let Some(i) = last.parse::<usize>().ok().filter(|i| *i < items.len()) else {
                return false;
            };
            items.remove(i);
            let gone = remap.pruned.entry(unpruned_parent).or_default();
            let original = survivor(gone, i);
            gone.push(original);
            true
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pruned_items_map_back_to_their_original_index() {
        let mut doc = json!({"a": [0, 1, 2, 3]});
        let mut remap = Remap::default();
        assert!(remove(&mut doc, "/a/1", &mut remap));
        assert!(remove(&mut doc, "/a/0", &mut remap));
        assert_eq!(doc, json!({"a": [2, 3]}));
        assert_eq!(remap.original("/a/0"), "/a/2");
        assert_eq!(remap.original("/a/1/x"), "/a/3/x");
        assert!(!remove(&mut doc, "", &mut remap));
    }

    #[test]
    fn renamed_keys_map_back_to_the_key_as_written() {
        let mut doc = json!({"f": {"drop_wen": {"op": "lt"}}});
        let mut remap = Remap::default();
        let repair = Repair::Rename {
            object: "/f".into(),
            from: "drop_wen".into(),
            to: "drop_when".into(),
        };
        apply(&mut doc, &repair, &mut remap);
        assert_eq!(doc, json!({"f": {"drop_when": {"op": "lt"}}}));
        assert_eq!(remap.original("/f/drop_when/op"), "/f/drop_wen/op");
        assert_eq!(remap.original("/f/drop_whenever"), "/f/drop_whenever");
    }
}
