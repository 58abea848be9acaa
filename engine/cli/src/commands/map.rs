//! `switchyard map`: the dry run. Reads NDJSON source events, routes each through every destination,
//! and writes one JSON line per input line saying what each destination would do with it.
//! With `--request`, writes the API requests (batched) that would be sent instead. Events go
//! through the plugins of the config (see [`crate::pipeline`]), a chunk of lines per plugin call.

use crate::commands::plugin::level_name;
use crate::config::Loaded;
use crate::pipeline::{InputResult, RoutedEvent, stop_outcome};
use serde::Serialize;
use serde::ser::SerializeMap;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use switchyard_engine::event::SourceEvent;
use switchyard_engine::router::{Outcome, Status};

/// What `map` is asked to do.
pub struct MapOptions {
    /// The source the events come from.
    pub source: String,
    /// Print API requests instead of per-event results.
    pub requests: bool,
    /// Unix seconds used as the time received (events without a `timestamp` get it).
    pub received_at: i64,
}

/// One output line.
#[derive(Serialize)]
struct Line<'a> {
    line: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    event_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    event_name: Option<&'a str>,
    destinations: ByName<'a>,
}

/// Outcomes serialized as a map from destination name to outcome.
struct ByName<'a>(&'a [Outcome<'a>]);

impl Serialize for ByName<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for o in self.0 {
            map.serialize_entry(o.destination, o)?;
        }
        map.end()
    }
}

/// Counts of outcomes per destination and status, for the summary.
#[derive(Default)]
pub struct Summary {
    pub lines: usize,
    pub counts: BTreeMap<String, BTreeMap<&'static str, usize>>,
}

impl Summary {
    fn record(&mut self, outcomes: &[Outcome]) {
        self.lines += 1;
        for o in outcomes {
            let per = self.counts.entry(o.destination.to_owned()).or_default();
            *per.entry(status_name(o.status)).or_default() += 1;
        }
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} events", self.lines)?;
        for (dest, per) in &self.counts {
            let parts: Vec<String> = per.iter().map(|(s, n)| format!("{n} {s}")).collect();
            write!(f, "; {dest}: {}", parts.join(", "))?;
        }
        Ok(())
    }
}

pub fn status_name(s: Status) -> &'static str {
    match s {
        Status::Sent => "sent",
        Status::Filtered => "filtered",
        Status::Skipped => "skipped",
        Status::Invalid => "invalid",
        Status::Failed => "failed",
        Status::Deactivated => "deactivated",
    }
}

/// Lines read and handed to the plugins at once (one plugin call per chunk).
const CHUNK: usize = 256;

/// Where `map` writes.
pub struct Sinks<'w> {
    /// Results (or requests), one JSON line each.
    pub out: &'w mut dyn Write,
    /// Plugin log lines.
    pub log: &'w mut dyn Write,
    /// Input that failed or was invalid, to inspect and replay (`--dead-letters`).
    pub dead_letters: Option<&'w mut dyn Write>,
}

/// Maps every line of `input`. Returns the summary.
pub fn run(
    loaded: &Loaded,
    opts: &MapOptions,
    input: &mut dyn BufRead,
    sinks: &mut Sinks<'_>,
) -> std::io::Result<Summary> {
    let mut state = State {
        summary: Summary::default(),
        to_send: vec![Vec::new(); loaded.router.destinations().len()],
    };
    let mut line_no = 0;
    loop {
        let mut chunk: Vec<(usize, String)> = Vec::with_capacity(CHUNK);
        let mut buf = Vec::new();
        while chunk.len() < CHUNK {
            buf.clear();
            if input.read_until(b'\n', &mut buf)? == 0 {
                break;
            }
            line_no += 1;
            let text = String::from_utf8_lossy(&buf);
            if std::str::from_utf8(&buf).is_err() {
                chunk.push((line_no, "\u{0}not valid UTF-8".to_owned()));
            } else if !text.trim().is_empty() {
                chunk.push((line_no, text.trim().to_owned()));
            }
        }
        if chunk.is_empty() {
            break;
        }
        process_chunk(loaded, opts, &chunk, sinks, &mut state)?;
    }
    if opts.requests {
        for (dest, events) in loaded.router.destinations().iter().zip(&state.to_send) {
            for request in dest.dry_run_requests(events) {
                let line =
                    serde_json::json!({"destination": &*dest.routing().name, "request": request});
                serde_json::to_writer(&mut *sinks.out, &line)?;
                sinks.out.write_all(b"\n")?;
            }
        }
    }
    sinks.out.flush()?;
    Ok(state.summary)
}

struct State {
    summary: Summary,
    to_send: Vec<Vec<Value>>,
}

fn process_chunk(
    loaded: &Loaded,
    opts: &MapOptions,
    chunk: &[(usize, String)],
    sinks: &mut Sinks<'_>,
    state: &mut State,
) -> std::io::Result<()> {
    let parsed: Vec<Result<SourceEvent, String>> = chunk
        .iter()
        .map(|(_, text)| match text.strip_prefix('\u{0}') {
            Some(reason) => Err(reason.to_owned()),
            None => loaded
                .pipeline
                .parse(text, opts.received_at)
                .map_err(|e| e.to_string()),
        })
        .collect();
    let valid: Vec<SourceEvent> = parsed
        .iter()
        .filter_map(|p| p.as_ref().ok().cloned())
        .collect();
    let pipeline = &loaded.pipeline;
    let mut logs = Vec::new();
    let staging = pipeline.stage(valid, opts.received_at, &mut logs);
    let routed = pipeline.route(
        &loaded.router,
        &staging,
        &opts.source,
        opts.received_at,
        &mut logs,
    );
    for (plugin, line) in logs {
        writeln!(
            sinks.log,
            "plugin {plugin}: {}: {}",
            level_name(line.level),
            line.message
        )?;
    }
    let mut routed = routed.into_iter();
    for ((line_no, text), parsed) in chunk.iter().zip(parsed) {
        if let Err(reason) = parsed {
            let reason = format!("line {line_no}: {reason}");
            stopped(
                loaded,
                opts,
                *line_no,
                Status::Invalid,
                &reason,
                sinks,
                state,
            )?;
            dead_letter(sinks, *line_no, None, &reason, text)?;
            continue;
        }
        match routed.next() {
            None => {}
            Some(InputResult::Stopped(stop)) => {
                let (status, reason) = stop_outcome(stop);
                stopped(loaded, opts, *line_no, status, &reason, sinks, state)?;
                if status == Status::Failed {
                    dead_letter(sinks, *line_no, None, &reason, text)?;
                }
            }
            Some(InputResult::Routed(events)) => {
                for RoutedEvent { event, outcomes } in &events {
                    state.summary.record(outcomes);
                    for o in outcomes.iter().filter(|o| o.status == Status::Failed) {
                        let reason = o.reason.as_deref().unwrap_or("failed");
                        dead_letter(sinks, *line_no, Some(o.destination), reason, text)?;
                    }
                    if opts.requests {
                        for (i, o) in outcomes.iter().enumerate() {
                            state.to_send[i].extend(o.data.iter().map(|d| d.to_value()));
                        }
                    } else {
                        let line = Line {
                            line: *line_no,
                            event_id: Some(event.id()),
                            event_name: Some(event.name()),
                            destinations: ByName(outcomes),
                        };
                        serde_json::to_writer(&mut *sinks.out, &line)?;
                        sinks.out.write_all(b"\n")?;
                    }
                }
            }
        }
    }
    Ok(())
}

/// The same outcome at every destination for an event stopped before routing.
fn stopped(
    loaded: &Loaded,
    opts: &MapOptions,
    line_no: usize,
    status: Status,
    reason: &str,
    sinks: &mut Sinks<'_>,
    state: &mut State,
) -> std::io::Result<()> {
    let outcomes = loaded.router.stopped(status, reason);
    state.summary.record(&outcomes);
    if opts.requests {
        // Requests mode prints requests only; the summary still counts these lines.
        return Ok(());
    }
    let line = Line {
        line: line_no,
        event_id: None,
        event_name: None,
        destinations: ByName(&outcomes),
    };
    serde_json::to_writer(&mut *sinks.out, &line)?;
    sinks.out.write_all(b"\n")
}

/// Keeps input that failed (at every destination, or at `destination` only) with the reason.
fn dead_letter(
    sinks: &mut Sinks<'_>,
    line_no: usize,
    destination: Option<&str>,
    reason: &str,
    input: &str,
) -> std::io::Result<()> {
    let Some(w) = sinks.dead_letters.as_mut() else {
        return Ok(());
    };
    let mut letter = serde_json::json!({"line": line_no, "reason": reason, "input": input});
    if let Some(d) = destination {
        letter["destination"] = d.into();
    }
    serde_json::to_writer(&mut **w, &letter)?;
    w.write_all(b"\n")
}
