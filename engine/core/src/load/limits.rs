//! The limits every config and rule file is held to before it is parsed, so that a file cannot
//! cost more than it is worth: its size ([`MAX_FILE_BYTES`], checked before reading it whole) and
//! its nesting depth ([`MAX_DEPTH`], checked in one linear pass over the YAML events before the
//! parser that builds values runs; deep nesting costs that parser quadratic time), and what its
//! aliases expand to ([`MAX_EXPANSION`], in the same pass: an alias bomb is refused at its line).

use std::io::Read;
use std::path::Path;
use yaml_rust2::parser::{Event, Parser};

/// The largest config or mapping file, in bytes (1 MiB): a mapping table of thousands of rows
/// fits many times over; parsing costs about a hundred times a file's size in memory.
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// The deepest nesting of mappings and sequences in a config or mapping file. Real files nest
/// less than ten levels.
pub const MAX_DEPTH: usize = 64;

/// Why a file was refused before parsing: the message, and the place (line, column) if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub message: String,
    pub at: Option<(usize, usize)>,
}

/// Reads a file of at most [`MAX_FILE_BYTES`] as UTF-8 text.
pub fn read_text(file: &Path) -> Result<String, Refusal> {
    let refuse = |message: String| Refusal { message, at: None };
    let f = std::fs::File::open(file).map_err(|e| refuse(format!("cannot read the file: {e}")))?;
    let mut bytes = Vec::new();
    // One byte more than the limit tells a file over it from one at it.
    f.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| refuse(format!("cannot read the file: {e}")))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(refuse(format!(
            "the file is larger than {} KiB, the most a config or mapping file may be",
            MAX_FILE_BYTES >> 10
        )));
    }
    String::from_utf8(bytes).map_err(|e| {
        refuse(format!(
            "the file is not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ))
    })
}

fn too_deep(line: usize, column: usize) -> Refusal {
    Refusal {
        message: format!(
            "nested more than {MAX_DEPTH} levels deep; a config or mapping file may not nest deeper"
        ),
        at: Some((line, column)),
    }
}

/// Checks that no mapping or sequence of `text` nests deeper than [`MAX_DEPTH`], in time linear
/// in the text: flow brackets first, by a lexical pass (a YAML parser tracks each open bracket as
/// a possible key, which costs it quadratic time), then block nesting by the parser's events.
/// Syntax errors are left to the parser that follows (it names them better).
pub fn check_depth(text: &str) -> Result<(), Refusal> {
    check_flow_depth(text)?;
    check_block_depth(text)
}

/// The lexical pass: counts `[`/`{` against `]`/`}` outside quoted scalars and comments. Brackets
/// in plain or block scalars count too, which can only over-count unbalanced text, never miss
/// nesting.
fn check_flow_depth(text: &str) -> Result<(), Refusal> {
    let (mut depth, mut line, mut column) = (0usize, 1usize, 0usize);
    let mut quote: Option<char> = None;
    let mut comment = false;
    let mut previous = '\n';
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        column += 1;
        if c == '\n' {
            (line, column, comment) = (line + 1, 0, false);
        }
        match (quote, c) {
            _ if comment => {}
            (Some('"'), '\\') => {
                chars.next();
                column += 1;
            }
            (Some('\''), '\'') if chars.peek() == Some(&'\'') => {
                chars.next();
                column += 1;
            }
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '#') if previous.is_whitespace() => comment = true,
            (None, '"' | '\'') if " \t\n[{,:-?".contains(previous) => quote = Some(c),
            (None, '[' | '{') => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(too_deep(line, column));
                }
            }
            (None, ']' | '}') => depth = depth.saturating_sub(1),
            _ => {}
        }
        previous = c;
    }
    Ok(())
}

/// Block nesting, by the parser's events (cheap once flow nesting is bounded), and what aliases
/// expand to (see [`MAX_EXPANSION`]).
fn check_block_depth(text: &str) -> Result<(), Refusal> {
    let mut parser = Parser::new_from_str(text);
    let mut depth = 0usize;
    let mut expansion = Expansion::default();
    loop {
        let Ok((event, mark)) = parser.next_token() else {
            return Ok(());
        };
        if !expansion.add(&event) {
            return Err(Refusal {
                message: format!(
                    "the aliases up to here expand the file more than {MAX_EXPANSION} times over \
                     (an alias bomb?); use fewer or smaller aliases"
                ),
                at: Some((mark.line(), mark.col() + 1)),
            });
        }
        match event {
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(too_deep(mark.line(), mark.col() + 1));
                }
            }
            Event::MappingEnd | Event::SequenceEnd => depth = depth.saturating_sub(1),
            Event::StreamEnd => return Ok(()),
            _ => {}
        }
    }
}

/// The most the nodes of a file, its aliases expanded, may outnumber the nodes written (at least
/// [`MIN_EXPANDED_NODES`] are always allowed). A few aliases (`sources: *shops`) stay far below it;
/// nested aliases that double at each level ("billion laughs") pass it within a few lines, and
/// are refused at the alias that does, before a parser builds them (serde_yaml would refuse them
/// too, without a place).
pub const MAX_EXPANSION: u64 = 100;

/// Nodes that any file may expand to, however few it writes.
const MIN_EXPANDED_NODES: u64 = 10_000;

/// Counts a file's nodes as written and as its aliases expand them.
#[derive(Default)]
struct Expansion {
    written: u64,
    expanded: u64,
    /// The anchored collections open: their anchor and `expanded` where they began.
    open: Vec<(usize, u64)>,
    /// Each anchor's size in expanded nodes.
    sizes: std::collections::HashMap<usize, u64>,
}

impl Expansion {
    /// Counts `event`; false once the expansion passes the limit.
    fn add(&mut self, event: &Event) -> bool {
        let node = match event {
            Event::Alias(id) => self.sizes.get(id).copied().unwrap_or(1),
            Event::MappingEnd | Event::SequenceEnd => {
                if let Some((id, start)) = self.open.pop().filter(|(id, _)| *id > 0) {
                    self.sizes.insert(id, self.expanded - start);
                }
                return true;
            }
            Event::Scalar(_, _, id, _) => {
                if *id > 0 {
                    self.sizes.insert(*id, 1);
                }
                1
            }
            Event::MappingStart(id, _) | Event::SequenceStart(id, _) => {
                self.open.push((*id, self.expanded));
                1
            }
            _ => return true,
        };
        self.written += 1;
        self.expanded = self.expanded.saturating_add(node);
        self.expanded <= (self.written * MAX_EXPANSION).max(MIN_EXPANDED_NODES)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_at_the_limit_passes_and_past_it_is_refused_at_its_line() {
        let at_limit = format!("{}1{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert_eq!(check_depth(&at_limit), Ok(()));
        let mut block = String::new();
        for level in 0..=MAX_DEPTH {
            block.push_str(&format!("{}k{level}:\n", "  ".repeat(level)));
        }
        let refused = check_depth(&block).unwrap_err();
        assert!(refused.message.contains("64 levels"), "{refused:?}");
        assert_eq!(refused.at.map(|(line, _)| line), Some(MAX_DEPTH + 1));
    }

    #[test]
    fn an_alias_bomb_is_refused_at_its_line_and_a_few_aliases_pass() {
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x]\n");
        for level in 1..9u8 {
            let (name, prev) = ((b'a' + level) as char, (b'a' + level - 1) as char);
            let items = vec![format!("*{prev}"); 9].join(", ");
            bomb.push_str(&format!("{name}: &{name} [{items}]\n"));
        }
        let refused = check_depth(&bomb).unwrap_err();
        assert!(refused.message.contains("alias bomb"), "{refused:?}");
        // 9^5 nodes by line 5 pass the limit (100 times the ~50 written, at least 10,000).
        assert_eq!(refused.at.map(|(line, _)| line), Some(5));
        let fine = "shops: &shops [web, server]\na: {sources: *shops}\nb: {sources: *shops}\n";
        assert_eq!(check_depth(fine), Ok(()));
        let many = (0..500)
            .map(|i| format!("k{i}: *shops\n"))
            .collect::<String>();
        assert_eq!(check_depth(&format!("s: &shops [a, b, c]\n{many}")), Ok(()));
    }

    #[test]
    fn flow_nesting_is_refused_at_the_bracket_and_quoted_or_commented_brackets_do_not_count() {
        let deep = format!(
            "a: {}1{}",
            "[".repeat(MAX_DEPTH + 1),
            "]".repeat(MAX_DEPTH + 1)
        );
        let refused = check_depth(&deep).unwrap_err();
        assert_eq!(refused.at, Some((1, 4 + MAX_DEPTH)));
        let brackets = "[".repeat(100);
        let harmless = format!(
            "a: '{brackets}'\nb: \"{brackets}\\\" {brackets}\"\nc: x # {brackets}\nd: 'it''s {brackets}'\n"
        );
        assert_eq!(check_depth(&harmless), Ok(()));
    }

    #[test]
    fn a_file_over_the_size_limit_is_refused_one_at_it_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let at_limit = dir.path().join("at.yaml");
        std::fs::write(&at_limit, "#".repeat(MAX_FILE_BYTES as usize)).unwrap();
        assert_eq!(read_text(&at_limit).unwrap().len() as u64, MAX_FILE_BYTES);
        let over = dir.path().join("over.yaml");
        std::fs::write(&over, "#".repeat(MAX_FILE_BYTES as usize + 1)).unwrap();
        let refused = read_text(&over).unwrap_err();
        assert!(
            refused.message.contains("larger than 1024 KiB"),
            "{refused:?}"
        );
    }
}
