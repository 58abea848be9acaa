//! Keys given twice: a YAML mapping that repeats a key keeps the last value and loses the first
//! without a word (a second `rows:` drops every row of the first, a second `pixel_id:` replaces
//! the first), so a file that repeats one is refused at the repeat, naming the first's line. One
//! pass over the parser's events; nothing is built.

use super::diagnostic::pointer_to_path;
use super::pointer::Pointer;
use std::collections::HashMap;
use yaml_rust2::parser::{Event, Parser};

/// A key given twice: where the repeat is (line, column), its JSON path, and the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repeat {
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
    /// A key the mapping already has: its pointer, its text, and the line of the first.
    Repeated(Pointer, String, usize),
}

/// The first key of `text` that a mapping gives twice. Syntax errors are left to the parser that
/// follows (it names them better): the pass stops at one.
pub fn first_repeat(text: &str) -> Option<Repeat> {
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
        let pointer = match open
            .last_mut()
            .map(|parent| node_in(parent, scalar, mark.line()))
        {
            None => Pointer::root(),
            Some(Node::At(pointer)) => pointer,
            Some(Node::Repeated(pointer, key, first)) => {
                return Some(Repeat {
                    line: mark.line(),
                    column: mark.col() + 1,
                    path: pointer_to_path(pointer.as_str()),
                    message: format!(
                        "`{key}` is given twice in the same object (first at line {first}); YAML \
                         would keep the last and lose the first: give it once"
                    ),
                });
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

/// A node begins inside `parent`; `scalar` is its text when it is a scalar, `line` its line.
fn node_in(parent: &mut Open, scalar: Option<&str>, line: usize) -> Node {
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
            (None, Some(key)) => {
                let at = pointer.key(key);
                if let Some(first) = keys.get(key) {
                    return Node::Repeated(at, key.to_owned(), *first);
                }
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
        let repeat = first_repeat(text).expect("repeat");
        assert_eq!((repeat.line, repeat.column), (4, 5));
        assert_eq!(repeat.path, "$.rows[0].target");
        assert!(
            repeat.message.contains("`target` is given twice"),
            "{repeat:?}"
        );
        assert!(repeat.message.contains("first at line 3"), "{repeat:?}");
        let top = first_repeat("rows: []\ndescription: x\nrows: [1]\n").expect("repeat");
        assert_eq!((top.line, top.path.as_str()), (3, "$.rows"));
    }

    #[test]
    fn equal_keys_in_different_mappings_flow_style_and_quoting_count_as_they_should() {
        let fine =
            "a: {k: 1}\nb: {k: 2}\nlist:\n  - k: 1\n  - k: 2\nanchor: &x {k: 1}\nalias: *x\n";
        assert_eq!(first_repeat(fine), None);
        let quoted = first_repeat("k: 1\n\"k\": 2\n").expect("repeat");
        assert_eq!(quoted.line, 2);
        let flow = first_repeat("m: {a: 1, b: 2, a: 3}\n").expect("repeat");
        assert_eq!(flow.path, "$.m.a");
        // Values equal to keys are no repeat; nor is text that does not parse (left to the parser).
        assert_eq!(first_repeat("a: a\nb: a\n"), None);
        assert_eq!(first_repeat("a: [\n"), None);
    }
}
