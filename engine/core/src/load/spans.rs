//! Where each node of a YAML document stands: an index from JSON pointer to line and column.
//!
//! serde_yaml gives values without positions, and the JSON Schema validator reports JSON pointers;
//! this index joins the two so that every error can name `file:line:column`. A value inside a mapping
//! is placed at its key (the line a person looks for); an item of a sequence at the item itself.

use super::pointer::escape;
use std::collections::HashMap;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// JSON pointer → (line, column), both 1-based.
#[derive(Debug, Default, Clone)]
pub struct SpanIndex {
    spans: HashMap<String, (usize, usize)>,
}

impl SpanIndex {
    /// Indexes the first document of `text`. A document that does not parse yields an empty index
    /// (the caller reports the syntax error itself).
    pub fn build(text: &str) -> Self {
        let mut builder = Builder::default();
        let mut parser = Parser::new_from_str(text);
        let _ = parser.load(&mut builder, false);
        SpanIndex {
            spans: builder.spans,
        }
    }

    /// The JSON pointers of every node placed.
    pub fn pointers(&self) -> impl Iterator<Item = &str> {
        self.spans.keys().map(String::as_str)
    }

    /// The place of the node at `pointer`, or of its nearest ancestor that has one.
    pub fn locate(&self, pointer: &str) -> (usize, usize) {
        let mut p = pointer;
        loop {
            if let Some(&pos) = self.spans.get(p) {
                return pos;
            }
            match p.rfind('/') {
                Some(i) => p = &p[..i],
                None => return (1, 1),
            }
        }
    }
}

enum Frame {
    Map {
        pointer: String,
        /// The key just read, waiting for its value, and where it stood.
        pending_key: Option<(String, (usize, usize))>,
        /// A block mapping that is a sequence item (or the root) is reported by the parser at its first `:`;
        /// it is placed at its first key instead, once that key is read.
        place_at_first_key: bool,
    },
    Seq {
        pointer: String,
        next: usize,
    },
}

#[derive(Default)]
struct Builder {
    spans: HashMap<String, (usize, usize)>,
    stack: Vec<Frame>,
    done: bool,
}

fn position(mark: Marker) -> (usize, usize) {
    // yaml-rust2 counts lines from 1 and columns from 0.
    (mark.line(), mark.col() + 1)
}

impl Builder {
    /// Called for each node (scalar or collection start): returns its pointer and records its place,
    /// or returns None when the node is a mapping key.
    fn place_node(&mut self, mark: Marker, scalar: Option<&str>) -> Option<String> {
        let here = position(mark);
        match self.stack.last_mut() {
            None => {
                self.spans.insert(String::new(), here);
                Some(String::new())
            }
            Some(Frame::Seq { pointer, next }) => {
                let p = format!("{pointer}/{next}");
                *next += 1;
                self.spans.insert(p.clone(), here);
                Some(p)
            }
            Some(Frame::Map {
                pointer,
                pending_key,
                place_at_first_key,
            }) => match pending_key.take() {
                None => {
                    // A key. Complex (collection) keys are not addressable by JSON pointers.
                    if std::mem::take(place_at_first_key) {
                        self.spans.insert(pointer.clone(), here);
                    }
                    *pending_key = Some((scalar.unwrap_or_default().to_owned(), here));
                    None
                }
                Some((key, key_pos)) => {
                    let p = format!("{pointer}/{}", escape(&key));
                    self.spans.insert(p.clone(), key_pos);
                    Some(p)
                }
            },
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.done {
            return;
        }
        match ev {
            Event::Scalar(value, ..) => {
                self.place_node(mark, Some(&value));
            }
            Event::Alias(_) => {
                self.place_node(mark, None);
            }
            Event::MappingStart(..) => {
                let in_seq = matches!(self.stack.last(), None | Some(Frame::Seq { .. }));
                let pointer = self.place_node(mark, None).unwrap_or_default();
                self.stack.push(Frame::Map {
                    pointer,
                    pending_key: None,
                    place_at_first_key: in_seq,
                });
            }
            Event::SequenceStart(..) => {
                let pointer = self.place_node(mark, None).unwrap_or_default();
                self.stack.push(Frame::Seq { pointer, next: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            Event::DocumentEnd => self.done = true,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "\
sources:
  - name: web
destinations:
  - name: tiktok
    pixel_id: abc
    filters:
      - name: f
        drop_when: {path: \"$.a\", op: equals, value: 1}
";

    #[test]
    fn values_are_placed_at_their_keys() {
        let idx = SpanIndex::build(DOC);
        assert_eq!(idx.locate("/destinations/0/pixel_id"), (5, 5));
        assert_eq!(idx.locate("/destinations/0"), (4, 5));
        assert_eq!(idx.locate("/sources/0/name"), (2, 5));
        assert_eq!(
            idx.locate("/destinations/0/filters/0/drop_when/op"),
            (8, 34)
        );
    }

    #[test]
    fn unknown_pointers_fall_back_to_the_nearest_ancestor() {
        let idx = SpanIndex::build(DOC);
        assert_eq!(idx.locate("/destinations/0/missing_field"), (4, 5));
        assert_eq!(idx.locate("/nothing"), (1, 1));
    }
}
