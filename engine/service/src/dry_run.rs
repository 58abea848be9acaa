//! The dry run (`switchyard map`). Reads NDJSON source events, routes each through every
//! destination, and writes one JSON line per input line saying what each destination would do
//! with it. With `requests`, writes the API requests (batched) that would be sent instead. Events
//! go through the plugins of the config (see [`crate::pipeline`]), a chunk of lines per plugin call.
//! Nothing is sent, no secret is needed, and none is printed.

use crate::config::Loaded;
use crate::pipeline::{Copies, InputFate, Pipeline, RoutedEvent, halt_outcome};
use rustc_hash::FxHashMap;
use serde_json::Value;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, Write};
use std::ops::Range;
use std::sync::Arc;
use switchyard_core::event::SourceEvent;
use switchyard_core::json_text;
use switchyard_core::router::{Extras, Outcome, RowBuilt, Status};
use switchyard_core::rules::fields::FieldBits;
use switchyard_wasm::sandbox::level_name;

/// What `map` is asked to do.
pub struct MapOptions {
    /// The source the events come from.
    pub source: String,
    /// Print API requests instead of per-event results.
    pub requests: bool,
    /// Unix seconds used as the time received (events without a `timestamp` get it).
    pub received_at: i64,
}

/// One output line: `{"line": N, "event_id": ..., "event_name": ..., "destinations": {name:
/// outcome, ...}}`, the ids left out when there is no event.
struct Line<'a, 'o> {
    line: usize,
    event_id: Option<&'a str>,
    event_name: Option<&'a str>,
    destinations: &'a [Outcome<'o>],
}

impl Line<'_, '_> {
    /// Writes the line's JSON text, with [`json_text`] (faster than serde_json's own writer).
    fn write(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        out.extend_from_slice(b"{\"line\":");
        json_text::serialize(out, &self.line)?;
        for (key, text) in [
            (",\"event_id\":", self.event_id),
            (",\"event_name\":", self.event_name),
        ] {
            if let Some(text) = text {
                out.extend_from_slice(key.as_bytes());
                json_text::write_str(out, text)?;
            }
        }
        out.extend_from_slice(b",\"destinations\":");
        let by_name = self.destinations.iter().map(|o| (o.destination, o));
        json_text::write_object(out, by_name, |out, o| o.write_json(out))?;
        out.push(b'}');
        Ok(())
    }
}

/// Counts of outcomes per destination and status, for the summary, and the fields of each row
/// that never got a value ([`MapSummary::never_matched`]).
#[derive(Default)]
pub struct MapSummary {
    pub lines: usize,
    pub counts: BTreeMap<String, BTreeMap<&'static str, usize>>,
    /// Per row that built a payload: its destination, its label and field names (taken once per
    /// row), how many events it built and which fields ever got a value.
    rows: Vec<RowUse>,
    /// Where each row (by the address of its compiled form, which lives as long as the config)
    /// is in `rows`; hashed with Fx, as the keys are addresses, not input.
    row_index: FxHashMap<usize, usize>,
}

/// How one row fared over the whole input.
struct RowUse {
    destination: String,
    row: String,
    fields: Vec<Arc<str>>,
    events: usize,
    present: FieldBits,
}

/// A field rule that never got a value over the whole input: a field of one row, or of a
/// template that several rows use (one rule, reported once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeverMatched {
    pub destination: String,
    /// The rows that have the field (`Source → Target`), in the order they were first met.
    pub rows: Vec<String>,
    /// The payload field (`properties.rating`).
    pub field: Arc<str>,
    /// How many payloads these rows built, over the whole input.
    pub events: usize,
}

impl std::fmt::Display for NeverMatched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (field, dest, n) = (&self.field, &self.destination, self.events);
        match self.rows.as_slice() {
            [row] => write!(
                f,
                "warning: field {field} of row {row} ({dest}) never matched in {n} events"
            ),
            rows => write!(
                f,
                "warning: field {field} of {} rows ({dest}) never matched in {n} events",
                rows.len()
            ),
        }
    }
}

impl MapSummary {
    fn record(&mut self, outcomes: &[Outcome]) {
        self.lines += 1;
        for o in outcomes {
            let status = o.status.as_str();
            match self.counts.get_mut(o.destination) {
                Some(per) => *per.entry(status).or_default() += 1,
                // The name is copied once per destination, not once per event.
                None => {
                    let per = BTreeMap::from([(status, 1)]);
                    self.counts.insert(o.destination.to_owned(), per);
                }
            }
            for built in &o.rows_built {
                self.record_row(o.destination, built);
            }
        }
    }

    fn record_row(&mut self, destination: &str, built: &RowBuilt<'_>) {
        let key = std::ptr::from_ref(built.row) as usize;
        let i = *self.row_index.entry(key).or_insert_with(|| {
            self.rows.push(RowUse {
                destination: destination.to_owned(),
                row: built.row.label(),
                fields: built.row.field_labels(),
                events: 0,
                present: FieldBits::default(),
            });
            self.rows.len() - 1
        });
        if let Some(row) = self.rows.get_mut(i) {
            row.events += 1;
            // `map` routes with `Extras::field_use`: every row built carries its fields.
            if let Some(present) = &built.present {
                row.present.union(present);
            }
        }
    }

    /// Every field rule that never got a value in any payload its rows built (a path that
    /// matched nothing in the whole input, such as a misspelt `$.propertys.rating`), in the order
    /// the rows were first met. A template's field is one rule for every row that uses it: it is
    /// reported once, when it never matched in any of them.
    pub fn never_matched(&self) -> Vec<NeverMatched> {
        let mut rules: Vec<(NeverMatched, bool)> = Vec::new();
        let mut index: HashMap<(&str, *const u8), usize> = HashMap::new();
        for row in &self.rows {
            for (i, field) in row.fields.iter().enumerate() {
                // Rows that use a template share its fields' labels: the same rule.
                let key = (row.destination.as_str(), Arc::as_ptr(field).cast::<u8>());
                let at = *index.entry(key).or_insert_with(|| {
                    let rule = NeverMatched {
                        destination: row.destination.clone(),
                        rows: Vec::new(),
                        field: field.clone(),
                        events: 0,
                    };
                    rules.push((rule, false));
                    rules.len() - 1
                });
                if let Some((rule, matched)) = rules.get_mut(at) {
                    rule.rows.push(row.row.clone());
                    rule.events += row.events;
                    *matched |= row.present.has(i);
                }
            }
        }
        rules
            .into_iter()
            .filter(|(_, matched)| !matched)
            .map(|(rule, _)| rule)
            .collect()
    }
}

impl std::fmt::Display for MapSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} events", self.lines)?;
        for (dest, per) in &self.counts {
            let parts: Vec<String> = per.iter().map(|(s, n)| format!("{n} {s}")).collect();
            write!(f, "; {dest}: {}", parts.join(", "))?;
        }
        Ok(())
    }
}

/// Lines read and handed to the plugins at once (one plugin call per chunk). Small enough that a
/// chunk's events, payloads and result lines stay in a core's L2 cache from parsing to writing:
/// over 100,000 events, 256 lines ran 4-7% more CPU time than 32 (median of paired runs,
/// BENCHMARKS.md round twenty), and 1,024 lines 80% more; in instructions they are alike.
const CHUNK: usize = 32;

/// Where `map` writes.
pub struct MapOutput<'w> {
    /// Results (or requests), one JSON line each.
    pub results: &'w mut dyn Write,
    /// Plugin log lines.
    pub log: &'w mut dyn Write,
    /// Input that failed or was invalid, to inspect and replay (`--dead-letters`).
    pub dead_letters: Option<&'w mut dyn Write>,
}

/// One input line: its number, where its text (trimmed) is in [`Chunk::text`], and what is wrong
/// with its bytes when they are not valid UTF-8 (its text is then what could be read).
struct InputLine {
    no: usize,
    text: Range<usize>,
    invalid_utf8: Option<InvalidUtf8>,
}

/// A line that is not valid UTF-8: how many of its bytes are, and its bytes as read (without the
/// line's end), which its dead letter keeps so that nothing of the input is lost.
struct InvalidUtf8 {
    valid_up_to: usize,
    bytes: Box<[u8]>,
}

/// Up to [`CHUNK`] non-blank input lines, their text in one buffer (reused from chunk to chunk).
#[derive(Default)]
struct Chunk {
    text: String,
    lines: Vec<InputLine>,
}

impl Chunk {
    fn text(&self, line: &InputLine) -> &str {
        &self.text[line.text.clone()]
    }

    /// Reads the next up to [`CHUNK`] non-blank lines, in place of the last ones. `buf` is scratch
    /// space for one line. A line that is not valid UTF-8 is kept (as far as it can be read) and
    /// marked; valid lines are validated once and copied once, nothing else.
    fn read(
        &mut self,
        input: &mut dyn BufRead,
        line_no: &mut usize,
        buf: &mut Vec<u8>,
    ) -> std::io::Result<()> {
        self.text.clear();
        self.lines.clear();
        while self.lines.len() < CHUNK {
            buf.clear();
            if read_line(input, buf)? == 0 {
                break;
            }
            *line_no += 1;
            let (text, invalid_utf8) = match std::str::from_utf8(buf) {
                Ok(text) => (Cow::Borrowed(text), None),
                Err(e) => {
                    let line = buf.strip_suffix(b"\n").unwrap_or(buf);
                    let line = line.strip_suffix(b"\r").unwrap_or(line);
                    let invalid = InvalidUtf8 {
                        valid_up_to: e.valid_up_to(),
                        bytes: line.into(),
                    };
                    (String::from_utf8_lossy(buf), Some(invalid))
                }
            };
            // A byte-order mark (some Windows editors write one) opens the file, not its event.
            let text = match *line_no {
                1 => text.strip_prefix('\u{feff}').unwrap_or(&text),
                _ => &text,
            };
            // Only the end is trimmed: serde_json skips white space before the event itself, and
            // the column a refusal names then counts from the line's start, as an editor's does.
            let text = text.trim_end_matches(switchyard_core::text::JSON_SPACE);
            if invalid_utf8.is_none() && switchyard_core::text::trim_json_space(text).is_empty() {
                continue;
            }
            let start = self.text.len();
            self.text.push_str(text);
            self.lines.push(InputLine {
                no: *line_no,
                text: start..self.text.len(),
                invalid_utf8,
            });
        }
        Ok(())
    }
}

/// Reads one line, through its `\n` if it has one, onto the end of `buf`, and says how many bytes
/// it read (0 at the end of `input`): what `BufRead::read_until` does, with the line's end found
/// by the `memchr` crate (vectorised; std's portable search cost ~580 instructions per 400-byte
/// line in callgrind).
fn read_line(input: &mut dyn BufRead, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    let mut read = 0;
    loop {
        let available = match input.fill_buf() {
            Ok(available) => available,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let (end, used) = match memchr::memchr(b'\n', available) {
            Some(at) => (true, at + 1),
            None => (available.is_empty(), available.len()),
        };
        buf.extend_from_slice(&available[..used]);
        input.consume(used);
        read += used;
        if end {
            return Ok(read);
        }
    }
}

/// Maps every line of `input`. Returns the summary.
pub fn run(
    loaded: &Loaded,
    opts: &MapOptions,
    input: &mut dyn BufRead,
    out: &mut MapOutput<'_>,
) -> std::io::Result<MapSummary> {
    let mut state = State::default();
    let mut chunk = Chunk::default();
    let mut buf = Vec::new();
    let mut line_no = 0;
    loop {
        chunk.read(input, &mut line_no, &mut buf)?;
        if chunk.lines.is_empty() {
            break;
        }
        map_chunk(loaded, opts, &chunk, out, &mut state)?;
        out.results.write_all(&state.results)?;
        state.results.clear();
    }
    if opts.requests {
        write_requests(loaded, state.to_send, out)?;
    }
    out.results.flush()?;
    Ok(state.summary)
}

/// Writes the requests that would carry every payload, per destination in config order.
fn write_requests(
    loaded: &Loaded,
    mut to_send: BTreeMap<String, Vec<Value>>,
    out: &mut MapOutput<'_>,
) -> std::io::Result<()> {
    for dest in loaded.pipeline.destinations() {
        let payloads = to_send.remove(dest.name()).unwrap_or_default();
        for body in dest.request_bodies(payloads) {
            let request = dest.plugin().dry_run_request(body);
            let line = serde_json::json!({"destination": dest.name(), "request": request});
            serde_json::to_writer(&mut *out.results, &line)?;
            out.results.write_all(b"\n")?;
        }
    }
    Ok(())
}

#[derive(Default)]
struct State {
    summary: MapSummary,
    /// The result lines of the chunk being mapped, written out once per chunk.
    results: Vec<u8>,
    /// Payloads per destination name, for `requests`.
    to_send: BTreeMap<String, Vec<Value>>,
}

fn map_chunk(
    loaded: &Loaded,
    opts: &MapOptions,
    chunk: &Chunk,
    out: &mut MapOutput<'_>,
    state: &mut State,
) -> std::io::Result<()> {
    let pipeline = &loaded.pipeline;
    let (valid, refused) = parse_lines(pipeline, opts, chunk);
    let mut logs = Vec::new();
    let transformed = pipeline.transform(valid, opts.received_at, &mut logs);
    // With plugins, the browser copies too: `client` shows what the pixel fires after them
    // (without, it is what the mapping routed, and building the copies would only cost time).
    let copies = match pipeline.has_plugins() {
        true => Copies::ServerAndBrowser,
        false => Copies::Server,
    };
    // Which fields got a value, too: the summary reports fields that never matched.
    let extras = Extras {
        field_use: true,
        ..copies.into()
    };
    let fates = pipeline.route(
        &transformed,
        &opts.source,
        extras,
        opts.received_at,
        &mut logs,
    );
    for (plugin, line) in logs {
        let level = level_name(line.level);
        writeln!(out.log, "plugin {plugin}: {level}: {}", line.message)?;
    }
    write_fates(loaded, opts, chunk, refused, fates, out, state)
}

/// Parses the chunk's lines: the valid events, which move on to the plugins, and for each line
/// the reason it was refused (`None` for a valid line).
fn parse_lines(
    pipeline: &Pipeline,
    opts: &MapOptions,
    chunk: &Chunk,
) -> (Vec<SourceEvent>, Vec<Option<String>>) {
    let mut valid = Vec::with_capacity(chunk.lines.len());
    let refused = chunk
        .lines
        .iter()
        .map(|line| match &line.invalid_utf8 {
            Some(invalid) => Some(format!(
                "not valid UTF-8 (byte {} is not part of a UTF-8 character)",
                invalid.valid_up_to + 1
            )),
            None => match pipeline.parse(chunk.text(line), opts.received_at) {
                Ok(event) => {
                    valid.push(event);
                    None
                }
                Err(e) => Some(e.to_string()),
            },
        })
        .collect();
    (valid, refused)
}

/// Writes what became of each line of the chunk, in input order: its refusal (and dead letter),
/// the plugin's halt, or each event it became with its outcomes. `fates` has one entry per line
/// that was not `refused`.
fn write_fates(
    loaded: &Loaded,
    opts: &MapOptions,
    chunk: &Chunk,
    refused: Vec<Option<String>>,
    fates: Vec<InputFate<'_>>,
    out: &mut MapOutput<'_>,
    state: &mut State,
) -> std::io::Result<()> {
    let mut fates = fates.into_iter();
    for (line, refused) in chunk.lines.iter().zip(refused) {
        let text = chunk.text(line);
        if let Some(reason) = refused {
            let reason = format!("line {}: {reason}", line.no);
            not_routed(loaded, opts, line.no, Status::Invalid, &reason, state)?;
            let bytes = line.invalid_utf8.as_ref().map(|invalid| &*invalid.bytes);
            dead_letter(out, (line.no, text, bytes), None, &reason)?;
            continue;
        }
        match fates.next() {
            None => {}
            Some(InputFate::Halted(halt)) => {
                let (status, reason) = halt_outcome(halt);
                not_routed(loaded, opts, line.no, status, &reason, state)?;
                if status == Status::Failed {
                    dead_letter(out, (line.no, text, None), None, &reason)?;
                }
            }
            Some(InputFate::Routed(events)) => {
                for routed in &events {
                    write_routed(opts, (line.no, text), routed, out, state)?;
                }
            }
        }
    }
    Ok(())
}

/// Writes (or, for `requests`, keeps the payloads of) one routed event of `line`.
fn write_routed(
    opts: &MapOptions,
    (line_no, text): (usize, &str),
    routed: &RoutedEvent<'_>,
    out: &mut MapOutput<'_>,
    state: &mut State,
) -> std::io::Result<()> {
    let RoutedEvent { event, outcomes } = routed;
    state.summary.record(outcomes);
    for o in outcomes.iter().filter(|o| o.status == Status::Failed) {
        let reason = o.reason.as_deref().unwrap_or("failed");
        dead_letter(out, (line_no, text, None), Some(o.destination), reason)?;
    }
    if opts.requests {
        for o in outcomes.iter().filter(|o| !o.data.is_empty()) {
            let payloads = state.to_send.entry(o.destination.to_owned()).or_default();
            payloads.extend(o.data.iter().map(|d| d.to_value()));
        }
        return Ok(());
    }
    let line = Line {
        line: line_no,
        event_id: Some(event.id()),
        event_name: Some(event.name()),
        destinations: outcomes,
    };
    line.write(&mut state.results)?;
    state.results.push(b'\n');
    Ok(())
}

/// The same outcome at every destination for input that never reached routing.
fn not_routed(
    loaded: &Loaded,
    opts: &MapOptions,
    line_no: usize,
    status: Status,
    reason: &str,
    state: &mut State,
) -> std::io::Result<()> {
    let outcomes = loaded.pipeline.not_sent(status, reason);
    state.summary.record(&outcomes);
    if opts.requests {
        // Requests mode prints requests only; the summary still counts these lines.
        return Ok(());
    }
    let line = Line {
        line: line_no,
        event_id: None,
        event_name: None,
        destinations: &outcomes,
    };
    line.write(&mut state.results)?;
    state.results.push(b'\n');
    Ok(())
}

/// Keeps input that failed (at every destination, or at `destination` only) with the reason: the
/// line's number and text, and its bytes when they are not valid UTF-8 (`input_base64`: the text
/// then holds U+FFFD where a byte could not be read).
fn dead_letter(
    out: &mut MapOutput<'_>,
    (line_no, input, bytes): (usize, &str, Option<&[u8]>),
    destination: Option<&str>,
    reason: &str,
) -> std::io::Result<()> {
    use base64::Engine as _;
    let Some(w) = out.dead_letters.as_mut() else {
        return Ok(());
    };
    let mut letter = serde_json::json!({"line": line_no, "reason": reason, "input": input});
    if let Some(d) = destination {
        letter["destination"] = d.into();
    }
    if let Some(bytes) = bytes {
        letter["input_base64"] = base64::engine::general_purpose::STANDARD
            .encode(bytes)
            .into();
    }
    serde_json::to_writer(&mut **w, &letter)?;
    w.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;
    use serde::ser::SerializeMap;
    use switchyard_core::rules::payload::Payload;
    use switchyard_core::rules::warning::Warning;

    /// Hands out its bytes a few at a time, and fails once with `Interrupted` before each read,
    /// as a signal may make a read fail.
    struct Interrupting<'a> {
        bytes: &'a [u8],
        interrupt: bool,
    }

    impl std::io::Read for Interrupting<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            self.interrupt = !self.interrupt;
            if self.interrupt {
                return Err(std::io::ErrorKind::Interrupted.into());
            }
            let n = out.len().min(self.bytes.len()).min(5);
            out[..n].copy_from_slice(&self.bytes[..n]);
            self.bytes = &self.bytes[n..];
            Ok(n)
        }
    }

    /// Hands out `bytes`, then fails for good.
    struct Failing<'a> {
        bytes: &'a [u8],
    }

    impl std::io::Read for Failing<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            if self.bytes.is_empty() {
                return Err(std::io::Error::other("the disk went away"));
            }
            let n = out.len().min(self.bytes.len());
            out[..n].copy_from_slice(&self.bytes[..n]);
            self.bytes = &self.bytes[n..];
            Ok(n)
        }
    }

    #[test]
    fn read_line_fails_as_read_until_fails_and_keeps_the_same_bytes() {
        let input = b"whole line\nhalf a li";
        let mut expected = std::io::BufReader::with_capacity(4, Failing { bytes: input });
        let mut got = std::io::BufReader::with_capacity(4, Failing { bytes: input });
        let (mut want, mut have) = (Vec::new(), Vec::new());
        assert_eq!(
            read_line(&mut got, &mut have).unwrap(),
            expected.read_until(b'\n', &mut want).unwrap()
        );
        let want_error = expected.read_until(b'\n', &mut want).unwrap_err();
        let have_error = read_line(&mut got, &mut have).unwrap_err();
        assert_eq!(have_error.kind(), want_error.kind());
        assert_eq!(have, want);
        assert_eq!(have, input);
    }

    #[test]
    fn a_byte_order_mark_opening_the_input_is_no_part_of_its_first_event() {
        let input = "\u{feff}{\"a\":1}\n\u{feff}{\"b\":2}\n";
        let mut reader = std::io::BufReader::new(input.as_bytes());
        let (mut chunk, mut line_no, mut buf) = (Chunk::default(), 0, Vec::new());
        chunk.read(&mut reader, &mut line_no, &mut buf).unwrap();
        let texts: Vec<&str> = chunk.lines.iter().map(|l| chunk.text(l)).collect();
        // Only the file's first line may open with one; elsewhere it is the line's own text,
        // which the event's parse refuses with the mark named.
        assert_eq!(texts, ["{\"a\":1}", "\u{feff}{\"b\":2}"]);
    }

    #[test]
    fn only_lines_of_json_whitespace_are_blank() {
        let input = "{\"a\":1}\n \t\r\n\u{a0}\n\u{c}\n\u{2028}\n\u{a0}{\"b\":2}\n  {\"c\":3} \r\n";
        let mut reader = std::io::BufReader::new(input.as_bytes());
        let (mut chunk, mut line_no, mut buf) = (Chunk::default(), 0, Vec::new());
        chunk.read(&mut reader, &mut line_no, &mut buf).unwrap();
        let lines: Vec<(usize, &str)> = chunk.lines.iter().map(|l| (l.no, chunk.text(l))).collect();
        // Other Unicode spaces are kept, so the line is refused as not JSON, not skipped.
        let want = [
            (1, "{\"a\":1}"),
            (3, "\u{a0}"),
            (4, "\u{c}"),
            (5, "\u{2028}"),
            (6, "\u{a0}{\"b\":2}"),
            // Its start is kept, so that a column counts from the line's start.
            (7, "  {\"c\":3}"),
        ];
        assert_eq!(lines, want);
    }

    #[test]
    fn read_line_reads_what_read_until_reads() {
        let inputs: [&[u8]; 6] = [
            b"",
            b"one line, no end",
            b"{\"a\":1}\n\n  \r\n{\"b\":2}\r\nlast",
            b"\n\n\n",
            b"bad \xff\xfe utf-8\nok\n",
            b"a line longer than any buffer of this test, split over many reads\nx\n",
        ];
        for input in inputs {
            for capacity in [1, 2, 3, 7, 64] {
                let mut expected = std::io::BufReader::with_capacity(capacity, input);
                let mut got = std::io::BufReader::with_capacity(
                    capacity,
                    Interrupting {
                        bytes: input,
                        interrupt: false,
                    },
                );
                loop {
                    let (mut want, mut have) = (b"kept".to_vec(), b"kept".to_vec());
                    let n = expected.read_until(b'\n', &mut want).unwrap();
                    assert_eq!(read_line(&mut got, &mut have).unwrap(), n);
                    assert_eq!(have, want, "{input:?} at capacity {capacity}");
                    if n == 0 {
                        break;
                    }
                }
            }
        }
    }

    /// The line as serde wrote it before [`Line::write`]: what the bytes must stay.
    #[derive(Serialize)]
    struct SerdeLine<'a, 'o> {
        line: usize,
        #[serde(skip_serializing_if = "Option::is_none")]
        event_id: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        event_name: Option<&'a str>,
        destinations: ByName<'a, 'o>,
    }

    struct ByName<'a, 'o>(&'a [Outcome<'o>]);

    impl Serialize for ByName<'_, '_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut map = s.serialize_map(Some(self.0.len()))?;
            for o in self.0 {
                map.serialize_entry(o.destination, o)?;
            }
            map.end()
        }
    }

    #[test]
    fn a_line_is_written_as_serde_wrote_it() {
        let mut sent = Outcome::not_sent("tiktok", Status::Sent, String::new());
        sent.reason = None;
        sent.data = [Payload::Object(vec![(
            "event",
            Payload::Str("ViewContent"),
        )])]
        .into();
        sent.client = ["ViewContent"].into();
        sent.warnings = vec![Warning {
            field: "user.phone".into(),
            message: "not a phone number",
        }];
        let failed = Outcome::not_sent("other \"one\"", Status::Failed, "a\ttrap".into());
        let outcomes = [sent, failed];
        for (event_id, event_name) in [(Some("e-1"), Some("Viewed Product")), (None, None)] {
            let line = Line {
                line: 7,
                event_id,
                event_name,
                destinations: &outcomes,
            };
            let mut out = Vec::new();
            line.write(&mut out).expect("writes");
            let expected = SerdeLine {
                line: 7,
                event_id,
                event_name,
                destinations: ByName(&outcomes),
            };
            let expected = serde_json::to_string(&expected).expect("serializes");
            assert_eq!(String::from_utf8_lossy(&out), expected);
        }
    }
}
