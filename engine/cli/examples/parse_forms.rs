//! What the event's parsed form costs, to judge a borrowed form before changing the engine's event
//! type (BENCHMARKS.md, "Peers"): reads NDJSON (a file, or stdin) and, per line, parses it into
//! one form, looks up the paths the default TikTok mapping reads, and (with `write`) writes the
//! event back. Run each form as a whole process and compare CPU seconds:
//!
//! ```sh
//! cargo build --release -p switchyard --example parse_forms
//! for form in value borrowed; do
//!   /usr/bin/time -f "$form %U+%S s" target/release/examples/parse_forms $form events.ndjson >/dev/null
//! done
//! ```
//!
//! - `value`: `serde_json::Value` (a `BTreeMap<String, Value>` per object, a `String` per string),
//!   the engine's form today.
//! - `borrowed`: keys and strings borrowed from the line (copied only when they hold escapes),
//!   objects as vectors of pairs, searched in order.
//!
//! Add `paths` to look up the mapping's paths in each event, `write` to serialize it back.

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::Value;
use std::borrow::Cow;
use std::fmt;
use std::io::{BufRead, BufReader, BufWriter, Write};

/// A JSON value borrowing its keys and strings from the text it was parsed from.
enum Node<'a> {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(Cow<'a, str>),
    Array(Vec<Node<'a>>),
    Object(Vec<(Cow<'a, str>, Node<'a>)>),
}

/// A string, borrowed when the text holds it as is.
struct Text<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(s.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de> Deserialize<'de> for Node<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("JSON")
    }
    fn visit_unit<E>(self) -> Result<Node<'de>, E> {
        Ok(Node::Null)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Node<'de>, E> {
        Ok(Node::Bool(b))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Node<'de>, E> {
        Ok(Node::Number(n.into()))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Node<'de>, E> {
        Ok(Node::Number(n.into()))
    }
    fn visit_f64<E>(self, n: f64) -> Result<Node<'de>, E> {
        Ok(serde_json::Number::from_f64(n).map_or(Node::Null, Node::Number))
    }
    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Node<'de>, E> {
        Ok(Node::String(Cow::Borrowed(s)))
    }
    fn visit_str<E>(self, s: &str) -> Result<Node<'de>, E> {
        Ok(Node::String(Cow::Owned(s.to_owned())))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node<'de>, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node<'de>, A::Error> {
        let mut fields = Vec::new();
        while let Some((Text(k), v)) = map.next_entry::<Text<'de>, Node<'de>>()? {
            fields.push((k, v));
        }
        Ok(Node::Object(fields))
    }
}

impl Serialize for Node<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Node::Null => s.serialize_unit(),
            Node::Bool(b) => s.serialize_bool(*b),
            Node::Number(n) => n.serialize(s),
            Node::String(t) => s.serialize_str(t),
            Node::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for i in items {
                    seq.serialize_element(i)?;
                }
                seq.end()
            }
            Node::Object(fields) => {
                let mut map = s.serialize_map(Some(fields.len()))?;
                for (k, v) in fields {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

/// The paths the default TikTok mapping reads from a page view or a product view, as keys.
const PATHS: [[&str; 2]; 25] = [
    ["event_id", ""],
    ["timestamp", ""],
    ["profile_properties", "$email"],
    ["properties", "$email"],
    ["profile_properties", "$phone_number"],
    ["properties", "$phone_number"],
    ["profile_properties", "$external_id"],
    ["properties", "$external_id"],
    ["profile_properties", "$locale"],
    ["properties", "$locale"],
    ["profile_properties", "$first_name"],
    ["properties", "$first_name"],
    ["profile_properties", "$city"],
    ["properties", "$city"],
    ["properties", "$url"],
    ["profile_properties", "$ttclid"],
    ["properties", "$ttclid"],
    ["profile_properties", "$ttp"],
    ["profile_properties", "$ip"],
    ["profile_properties", "$user_agent"],
    ["properties", "referrer"],
    ["properties", "currency"],
    ["properties", "price"],
    ["properties", "quantity"],
    ["aliases", ""],
];

fn value_paths(v: &Value) -> usize {
    PATHS
        .iter()
        .filter(|[a, b]| {
            let first = v.get(a);
            if b.is_empty() {
                first.is_some()
            } else {
                first.and_then(|f| f.get(b)).is_some()
            }
        })
        .count()
}

fn get<'n, 'a>(node: &'n Node<'a>, key: &str) -> Option<&'n Node<'a>> {
    match node {
        Node::Object(fields) => fields.iter().find(|(k, _)| k == key).map(|(_, v)| v),
        _ => None,
    }
}

fn node_paths(n: &Node<'_>) -> usize {
    PATHS
        .iter()
        .filter(|[a, b]| {
            let first = get(n, a);
            if b.is_empty() {
                first.is_some()
            } else {
                first.and_then(|f| get(f, b)).is_some()
            }
        })
        .count()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let borrowed = match args.first().map(String::as_str) {
        Some("value") => false,
        Some("borrowed") => true,
        _ => return Err("usage: parse_forms value|borrowed [paths] [write] [FILE]".into()),
    };
    let paths = args.iter().any(|a| a == "paths");
    let write = args.iter().any(|a| a == "write");
    let file = args
        .iter()
        .skip(1)
        .find(|a| !matches!(a.as_str(), "paths" | "write"));
    let mut input: Box<dyn BufRead> = match file {
        Some(path) => Box::new(BufReader::new(std::fs::File::open(path)?)),
        None => Box::new(BufReader::new(std::io::stdin())),
    };
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let (mut line, mut found) = (String::new(), 0usize);
    while input.read_line(&mut line)? > 0 {
        let text = line.trim();
        if !text.is_empty() {
            if borrowed {
                let node: Node<'_> = serde_json::from_str(text)?;
                found += if paths { node_paths(&node) } else { 0 };
                if write {
                    serde_json::to_writer(&mut out, &node)?;
                    out.write_all(b"\n")?;
                }
            } else {
                let value: Value = serde_json::from_str(text)?;
                found += if paths { value_paths(&value) } else { 0 };
                if write {
                    serde_json::to_writer(&mut out, &value)?;
                    out.write_all(b"\n")?;
                }
            }
        }
        line.clear();
    }
    out.flush()?;
    eprintln!("{found} paths found");
    Ok(())
}
