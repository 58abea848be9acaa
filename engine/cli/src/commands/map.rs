//! `switchyard map`: the dry run. Reads NDJSON source events, routes each through every destination,
//! and writes one JSON line per input line saying what each destination would do with it.
//! With `--request`, writes the API requests (batched) that would be sent instead.

use crate::config::Loaded;
use serde::Serialize;
use serde::ser::SerializeMap;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use switchyard_engine::event::SourceEvent;
use switchyard_engine::router::{Outcome, Router, Status};

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
        Status::Deactivated => "deactivated",
    }
}

/// Maps every line of `input`, writing results to `out`. Returns the summary.
pub fn run(
    loaded: &Loaded,
    opts: &MapOptions,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
) -> std::io::Result<Summary> {
    let router = &loaded.router;
    let mut summary = Summary::default();
    let mut to_send: Vec<Vec<Value>> = vec![Vec::new(); router.destinations().len()];
    let mut buf = Vec::new();
    let mut line_no = 0;
    loop {
        buf.clear();
        if input.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        line_no += 1;
        let text = match std::str::from_utf8(&buf) {
            Ok(t) => t.trim(),
            Err(_) => {
                emit_invalid(router, line_no, "not valid UTF-8", opts, out, &mut summary)?;
                continue;
            }
        };
        if text.is_empty() {
            continue;
        }
        match SourceEvent::from_json(text, opts.received_at) {
            Err(e) => emit_invalid(router, line_no, &e.to_string(), opts, out, &mut summary)?,
            Ok(event) => {
                let outcomes = router.route(&event, &opts.source);
                summary.record(&outcomes);
                if opts.requests {
                    for (i, o) in outcomes.iter().enumerate() {
                        to_send[i].extend(o.data.iter().map(|d| d.to_value()));
                    }
                } else {
                    let line = Line {
                        line: line_no,
                        event_id: Some(event.id()),
                        event_name: Some(event.name()),
                        destinations: ByName(&outcomes),
                    };
                    serde_json::to_writer(&mut *out, &line)?;
                    out.write_all(b"\n")?;
                }
            }
        }
    }
    if opts.requests {
        for (dest, events) in router.destinations().iter().zip(&to_send) {
            for request in dest.dry_run_requests(events) {
                let line =
                    serde_json::json!({"destination": &*dest.routing().name, "request": request});
                serde_json::to_writer(&mut *out, &line)?;
                out.write_all(b"\n")?;
            }
        }
    }
    out.flush()?;
    Ok(summary)
}

fn emit_invalid(
    router: &Router,
    line_no: usize,
    reason: &str,
    opts: &MapOptions,
    out: &mut dyn Write,
    summary: &mut Summary,
) -> std::io::Result<()> {
    let outcomes = router.invalid(&format!("line {line_no}: {reason}"));
    summary.record(&outcomes);
    if opts.requests {
        // Requests mode prints requests only; the summary still counts invalid lines.
        return Ok(());
    }
    let line = Line {
        line: line_no,
        event_id: None,
        event_name: None,
        destinations: ByName(&outcomes),
    };
    serde_json::to_writer(&mut *out, &line)?;
    out.write_all(b"\n")
}
