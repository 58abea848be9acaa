//! Event paths resolved once per event: the plain paths (names only, from the event's root) of a
//! group of rows, gathered at load into one tree ([`PathTable`]), are looked up in a single pass
//! over the event ([`PathTable::resolve`]), so a field reads its value from a slot instead of
//! walking the event again.
//!
//! A mapping reads the same few objects over and over (`$.profile_properties['$email']`, then
//! `$.properties['$email']`, then the next key of the same two objects, ...). Walking each path from
//! the root compares the event's keys again for every path; the pass here visits each object the
//! paths enter once, merging its (sorted) keys with the tree's (sorted) names.

use super::path::CompiledPath;
use serde_json::{Map, Value};
use smallvec::SmallVec;
use std::cmp::Ordering;

/// A slot of a [`PathTable`]: where one path's value is found in [`Resolved`].
pub type Slot = u32;

/// The values of a [`PathTable`]'s paths in one event, by [`Slot`]: `None` where a path finds
/// nothing. Inline up to 64 paths (the default TikTok mapping has 45 for its largest row group).
pub type Resolved<'a> = SmallVec<[Option<&'a Value>; 64]>;

/// The plain paths of a group of rows, as a tree of names.
#[derive(Debug, Clone, Default)]
pub struct PathTable {
    root: Node,
    slots: Slot,
}

#[derive(Debug, Clone, Default)]
struct Node {
    slot: Option<Slot>,
    /// Sorted by name, in the order of the event's own maps (bytewise).
    children: Vec<Child>,
}

/// A name looked for in an object, and what is looked for under it.
#[derive(Debug, Clone)]
struct Child {
    name: Box<str>,
    /// [`prefix`] of `name`.
    prefix: u64,
    node: Node,
}

/// Above this many keys per name looked for, an object's names are found one by one (ordered
/// search of the map) instead of by one pass over all its keys.
const MERGE_FACTOR: usize = 8;

impl PathTable {
    /// The slot of `path`, added if new; `None` for a path that is not plain (indexes, wildcards,
    /// filters), which is walked per field as before.
    pub fn intern(&mut self, path: &CompiledPath) -> Option<Slot> {
        let names = path.names()?;
        let mut node = &mut self.root;
        for name in names {
            let at = match node.children.binary_search_by(|c| (*c.name).cmp(name)) {
                Ok(at) => at,
                Err(at) => {
                    let child = Child {
                        name: name.into(),
                        prefix: prefix(name),
                        node: Node::default(),
                    };
                    node.children.insert(at, child);
                    at
                }
            };
            node = &mut node.children[at].node;
        }
        Some(*node.slot.get_or_insert_with(|| {
            self.slots += 1;
            self.slots - 1
        }))
    }

    /// How many paths the table holds.
    pub fn len(&self) -> usize {
        self.slots as usize
    }

    pub fn is_empty(&self) -> bool {
        self.slots == 0
    }

    /// The value of every path of the table in `event`.
    pub fn resolve<'a>(&self, event: &'a Value) -> Resolved<'a> {
        let mut out = Resolved::new();
        self.resolve_into(event, &mut out);
        out
    }

    /// [`PathTable::resolve`] into the caller's `out` (cleared first), so that the values (up to
    /// 64 inline, 520 bytes) are written in place, not returned and copied.
    pub fn resolve_into<'a>(&self, event: &'a Value, out: &mut Resolved<'a>) {
        out.clear();
        out.resize(self.len(), None);
        fill(&self.root, event, out);
    }
}

fn fill<'a>(node: &Node, value: &'a Value, out: &mut [Option<&'a Value>]) {
    if let Some(slot) = node.slot
        && let Some(place) = out.get_mut(slot as usize)
    {
        *place = Some(value);
    }
    if node.children.is_empty() {
        return;
    }
    let Value::Object(map) = value else {
        return;
    };
    if map.len() > node.children.len() * MERGE_FACTOR {
        for child in &node.children {
            if let Some(v) = map.get(&*child.name) {
                fill(&child.node, v, out);
            }
        }
    } else {
        merge(&node.children, map, out);
    }
}

/// One pass over both sorted lists: the event object's keys and the names looked for in it.
/// Keys are ordered by their [`prefix`] first, and by all their bytes only when the prefixes tie.
fn merge<'a>(children: &[Child], map: &'a Map<String, Value>, out: &mut [Option<&'a Value>]) {
    let mut entries = map.iter().map(|(key, v)| (key.as_str(), prefix(key), v));
    let mut entry = entries.next();
    for child in children {
        while let Some((key, key_prefix, v)) = entry {
            let order = key_prefix
                .cmp(&child.prefix)
                .then_with(|| key.cmp(&child.name));
            match order {
                Ordering::Less => entry = entries.next(),
                Ordering::Equal => {
                    fill(&child.node, v, out);
                    entry = entries.next();
                    break;
                }
                Ordering::Greater => break,
            }
        }
        if entry.is_none() {
            return;
        }
    }
}

/// The first eight bytes of `text` as a big-endian number, zero-padded. Where the prefixes of
/// two texts differ, they are in the texts' own (bytewise) order: a padding zero stands where the
/// shorter text ends, and a text that ends first comes first. Comparing them takes one
/// instruction instead of a call to `memcmp`.
fn prefix(text: &str) -> u64 {
    let bytes = text.as_bytes();
    if let Some(head) = bytes.first_chunk::<8>() {
        return u64::from_be_bytes(*head);
    }
    let mut padded = [0u8; 8];
    for (to, from) in padded.iter_mut().zip(bytes) {
        *to = *from;
    }
    u64::from_be_bytes(padded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn path(text: &str) -> CompiledPath {
        CompiledPath::compile(text).unwrap()
    }

    #[test]
    fn every_plain_path_finds_what_a_walk_finds() {
        let texts = [
            "$",
            "$.event_id",
            "$.properties",
            "$.properties['$url']",
            "$.properties.missing",
            "$.profile_properties['$email']",
            "$.profile_properties['$ip']",
            "$.profile_properties.nested.deep",
            "$.zzz",
            "$.aaa",
            "$.event_id.not_an_object",
        ];
        let mut table = PathTable::default();
        let paths: Vec<(CompiledPath, Slot)> = texts
            .iter()
            .map(|t| {
                let p = path(t);
                let slot = table.intern(&p).expect("plain");
                (p, slot)
            })
            .collect();
        assert_eq!(table.len(), texts.len());
        // The same path again gets the same slot.
        assert_eq!(
            table.intern(&path("$.properties['$url']")),
            Some(paths[3].1)
        );
        let events = [
            json!({"event_id": "e", "properties": {"$url": "u", "a": 1, "zz": 2},
                   "profile_properties": {"$email": "x@y", "$ip": "1.2.3.4",
                                          "nested": {"deep": [1]}}}),
            json!({"aaa": 0, "properties": "not an object"}),
            json!([1, 2]),
            json!({}),
        ];
        for event in &events {
            let resolved = table.resolve(event);
            for (p, slot) in &paths {
                assert_eq!(resolved[*slot as usize], p.first(event), "{}", p.as_str());
            }
        }
    }

    #[test]
    fn ordering_by_prefix_then_by_text_is_the_texts_own_order() {
        let texts = [
            "",
            "\0",
            "\0\0",
            "a",
            "a\0",
            "a\0b",
            "ab",
            "abcdefgh",
            "abcdefgh\0",
            "abcdefghi",
            "abcdefgg",
            "$email",
            "$e",
            "$ip",
            "properties",
            "profile_properties",
            "\u{ff}",
            "é",
            "z",
        ];
        for a in texts {
            for b in texts {
                let order = prefix(a).cmp(&prefix(b)).then_with(|| a.cmp(b));
                assert_eq!(order, a.cmp(b), "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn keys_with_one_prefix_are_told_apart_by_their_other_bytes() {
        let names = [
            "$phone_number",
            "$phone_numbers",
            "$phone",
            "$phone_n",
            "$phone_nx",
            "a",
        ];
        let mut table = PathTable::default();
        let slots: Vec<Slot> = names
            .iter()
            .map(|n| table.intern(&path(&format!("$.p['{n}']"))).unwrap())
            .collect();
        let keys: Map<String, Value> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.to_string(), json!(i)))
            .collect();
        let event = json!({ "p": keys });
        let resolved = table.resolve(&event);
        for (i, slot) in slots.iter().enumerate() {
            assert_eq!(resolved[*slot as usize], Some(&json!(i)), "{}", names[i]);
        }
    }

    #[test]
    fn large_objects_are_searched_by_name() {
        let mut table = PathTable::default();
        let slot = table.intern(&path("$.properties.k77")).unwrap();
        let props: Map<String, Value> = (0..200).map(|i| (format!("k{i}"), json!(i))).collect();
        let event = json!({ "properties": props });
        assert_eq!(table.resolve(&event)[slot as usize], Some(&json!(77)));
    }

    #[test]
    fn paths_with_indexes_or_wildcards_are_not_plain() {
        let mut table = PathTable::default();
        assert_eq!(table.intern(&path("$.properties.items[0]")), None);
        assert_eq!(table.intern(&path("$.properties.items[*].id")), None);
        assert_eq!(table.intern(&path("$.aliases[?search(@, 'x')]")), None);
        assert!(table.is_empty());
    }
}
