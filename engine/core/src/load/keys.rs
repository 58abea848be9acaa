//! Keys given twice: a YAML mapping that repeats a key keeps the last value and loses the first
//! without a word (a second `rows:` drops every row of the first, a second `pixel_id:` replaces
//! the first), so a file that repeats one is refused at the repeat, naming the first's line. One
//! pass over the parser's events; nothing is built.

use super::diagnostic::pointer_to_path;
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
        pointer: String,
        next: usize,
    },
    Mapping {
        pointer: String,
        /// Each scalar key met so far, with its line.
        keys: HashMap<String, usize>,
        /// The key whose value comes next; `None` while a key is awaited.
        key: Option<String>,
    },
}

/// The first key of `text` that a mapping gives twice. Syntax errors are left to the parser that
/// follows (it names them better): the pass stops at one.
pub fn first_repeat(text: &str) -> Option<Repeat> {
    let mut parser = Parser::new_from_str(text);
    let mut open: Vec<Open> = Vec::new();
    loop {
        let (event, mark) = parser.next_token().ok()?;
        let pointer = match &event {
            Event::Scalar(..)
            | Event::Alias(_)
            | Event::MappingStart(..)
            | Event::SequenceStart(..) => {
                let key_text = match &event {
                    Event::Scalar(value, ..) => Some(value.as_str()),
                    _ => None,
                };
                match open.last_mut() {
                    None => String::new(),
                    Some(parent) => match node_in(parent, key_text, mark.line()) {
                        Ok(pointer) => pointer,
                        Err(repeat) => {
                            return Some(Repeat {
                                line: mark.line(),
                                column: mark.col() + 1,
                                ..repeat
                            });
                        }
                    },
                }
            }
            Event::MappingEnd | Event::SequenceEnd => {
                open.pop();
                continue;
            }
            Event::StreamEnd => return None,
            _ => continue,
        };
        match event {
            Event::MappingStart(..) => open.push(Open::Mapping {
                pointer,
                keys: HashMap::new(),
                key: None,
            }),
            Event::SequenceStart(..) => open.push(Open::Sequence { pointer, next: 0 }),
            _ => {}
        }
    }
}

/// A node begins inside `parent`: its pointer (`Ok`), or the repeat it is (`Err`, its place left
/// to the caller). `key_text` is the node's text when it is a scalar.
fn node_in(parent: &mut Open, key_text: Option<&str>, line: usize) -> Result<String, Repeat> {
    match parent {
        Open::Sequence { pointer, next } => {
            *next += 1;
            Ok(format!("{pointer}/{}", *next - 1))
        }
        Open::Mapping { pointer, keys, key } => match key.take() {
            // The node is a value: its pointer is the key's.
            Some(k) => Ok(format!(
                "{pointer}/{}",
                k.replace('~', "~0").replace('/', "~1")
            )),
            // The node is a key (a complex key counts as none that can repeat).
            None => {
                let Some(text) = key_text else {
                    *key = Some(String::new());
                    return Ok(pointer.clone());
                };
                if let Some(first) = keys.get(text) {
                    let at = format!("{pointer}/{}", text.replace('~', "~0").replace('/', "~1"));
                    return Err(Repeat {
                        line: 0,
                        column: 0,
                        path: pointer_to_path(&at),
                        message: format!(
                            "`{text}` is given twice in this mapping (first at line {first}); \
                             YAML would keep only the last and lose the first"
                        ),
                    });
                }
                keys.insert(text.to_owned(), line);
                *key = Some(text.to_owned());
                Ok(pointer.clone())
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
