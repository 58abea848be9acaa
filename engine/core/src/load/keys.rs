//! Keys YAML would read otherwise than written, refused at the key:
//! - a key given twice: a mapping that repeats a key keeps the last value and loses the first
//!   without a word (a second `rows:` drops every row of the first, a second `pixel_id:` replaces
//!   the first); the refusal names the first's line;
//! - a merge key (`<<: *base`): the YAML parser here reads it as a key named `<<`, not as the
//!   fields of `base`, so the object would silently lack them.
//!
//! One pass over the parser's events; nothing is built.

use super::diagnostic::pointer_to_path;
use super::pointer::Pointer;
use std::collections::HashMap;
use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::TScalarStyle;

/// A key refused: where it is (line, column), its JSON path, and the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRefusal {
    pub line: usize,
    pub column: usize,
    pub path: String,
    pub message: String,
}

/// A mapping or sequence being read, with its JSON pointer.
enum Open {
    Sequence {
        pointer: Pointer,
        next: usize,
    },
    Mapping {
        pointer: Pointer,
        /// Each scalar key met so far, with its line.
        keys: HashMap<String, usize>,
        /// The pointer of the value that comes next; `None` while a key is awaited.
        value: Option<Pointer>,
    },
}

/// What a node that begins inside an open mapping or sequence is.
enum Node {
    /// A value (or a key met for the first time), at this pointer.
    At(Pointer),
    /// A key the mapping already has: the mapping's pointer and the line of the first.
    Repeated(Pointer, usize),
    /// A merge key (`<<`, plain): its pointer.
    Merge(Pointer),
}

/// The first key of `text` that a mapping gives twice, or that is a merge key. Syntax errors are
/// left to the parser that follows (it names them better): the pass stops at one.
pub fn first_refusal(text: &str) -> Option<KeyRefusal> {
    let mut parser = Parser::new_from_str(text);
    let mut open: Vec<Open> = Vec::new();
    loop {
        let (event, mark) = parser.next_token().ok()?;
        let scalar = match &event {
            Event::Scalar(value, ..) => Some(value.as_str()),
            Event::Alias(_) | Event::MappingStart(..) | Event::SequenceStart(..) => None,
            Event::MappingEnd | Event::SequenceEnd => {
                open.pop();
                continue;
            }
            Event::StreamEnd => return None,
            _ => continue,
        };
        let plain = matches!(&event, Event::Scalar(_, TScalarStyle::Plain, ..));
        let pointer = match open
            .last_mut()
            .map(|parent| node_in(parent, scalar, plain, mark.line()))
        {
            None => Pointer::root(),
            Some(Node::At(pointer)) => pointer,
            Some(Node::Repeated(pointer, first)) => {
                // Placed at its object and line, not shown: a pasted secret can stand where a
                // key should (as with an unknown key).
                let message = format!(
                    "a key is given twice in this object (not shown, it may be a secret; first \
                     at line {first}); YAML would keep the last and lose the first: give it once"
                );
                return Some(KeyRefusal::at(&mark, &pointer, message));
            }
            Some(Node::Merge(pointer)) => {
                let message = "YAML merge keys (`<<: *anchor`) are not supported: their fields \
                               would be missing; write the fields out (an alias as a whole value, \
                               `key: *anchor`, works)";
                return Some(KeyRefusal::at(&mark, &pointer, message.to_owned()));
            }
        };
        match event {
            Event::MappingStart(..) => open.push(Open::Mapping {
                pointer,
                keys: HashMap::new(),
                value: None,
            }),
            Event::SequenceStart(..) => open.push(Open::Sequence { pointer, next: 0 }),
            _ => {}
        }
    }
}

impl KeyRefusal {
    fn at(mark: &yaml_rust2::scanner::Marker, pointer: &Pointer, message: String) -> Self {
        Self {
            line: mark.line(),
            column: mark.col() + 1,
            path: pointer_to_path(pointer.as_str()),
            message,
        }
    }
}

/// A node begins inside `parent`; `scalar` is its text when it is a scalar (`plain`: unquoted),
/// `line` its line.
fn node_in(parent: &mut Open, scalar: Option<&str>, plain: bool, line: usize) -> Node {
    match parent {
        Open::Sequence { pointer, next } => {
            *next += 1;
            Node::At(pointer.index(*next - 1))
        }
        Open::Mapping {
            pointer,
            keys,
            value,
        } => match (value.take(), scalar) {
            // The node is a value: its pointer is its key's.
            (Some(at), _) => Node::At(at),
            // The node is a key.
            (None, Some("<<")) if plain => Node::Merge(pointer.key("<<")),
            (None, Some(key)) => {
                if let Some(first) = keys.get(key) {
                    return Node::Repeated(pointer.clone(), *first);
                }
                let at = pointer.key(key);
                keys.insert(key.to_owned(), line);
                *value = Some(at);
                Node::At(pointer.clone())
            }
            // A complex key (a mapping or sequence as key) counts as none that can repeat.
            (None, None) => {
                *value = Some(pointer.clone());
                Node::At(pointer.clone())
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_key_is_found_at_the_repeat_with_the_first_line_and_its_path() {
        let text = "rows:\n  - source: A\n    target: Search\n    target: Lead\nrows: []\n";
        let repeat = first_refusal(text).expect("repeat");
        assert_eq!((repeat.line, repeat.column), (4, 5));
        // The key is placed (its line and its object), never shown: it may be a pasted secret.
        assert_eq!(repeat.path, "$.rows[0]");
        assert!(
            repeat
                .message
                .contains("a key is given twice in this object (not shown"),
            "{repeat:?}"
        );
        assert!(!repeat.message.contains("target"), "{repeat:?}");
        assert!(repeat.message.contains("first at line 3"), "{repeat:?}");
        let top = first_refusal("rows: []\ndescription: x\nrows: [1]\n").expect("repeat");
        assert_eq!((top.line, top.path.as_str()), (3, "$"));
    }

    #[test]
    fn equal_keys_in_different_mappings_flow_style_and_quoting_count_as_they_should() {
        let fine =
            "a: {k: 1}\nb: {k: 2}\nlist:\n  - k: 1\n  - k: 2\nanchor: &x {k: 1}\nalias: *x\n";
        assert_eq!(first_refusal(fine), None);
        let quoted = first_refusal("k: 1\n\"k\": 2\n").expect("repeat");
        assert_eq!(quoted.line, 2);
        let flow = first_refusal("m: {a: 1, b: 2, a: 3}\n").expect("repeat");
        assert_eq!(flow.path, "$.m");
        // Values equal to keys are no repeat; nor is text that does not parse (left to the parser).
        assert_eq!(first_refusal("a: a\nb: a\n"), None);
        assert_eq!(first_refusal("a: [\n"), None);
    }

    #[test]
    fn a_merge_key_is_refused_at_the_key_and_a_quoted_one_is_a_key() {
        let text = "base: &b {type: tiktok}\ndestinations:\n  - name: t\n    <<: *b\n";
        let merge = first_refusal(text).expect("merge key");
        assert_eq!((merge.line, merge.column), (4, 5));
        assert_eq!(merge.path, "$.destinations[0]['<<']");
        assert!(merge.message.contains("merge keys"), "{merge:?}");
        assert_eq!(first_refusal("\"<<\": 1\nop: <<\nlist: [<<]\n"), None);
    }
}
