//! `switchyard plugin test`: runs one plugin over NDJSON events (or platform payloads) and
//! writes what it did with each, one JSON line per input line, as `map` does for a config. The
//! plugin gets chunks of events as the chains give them, second pass included
//! ([`Plugin::transform_batch`]): an event it traps on fails alone.

use crate::batch::EventFailure;
use crate::bindings::Action;
use crate::chain::ChainItem;
use crate::plugin::Plugin;
use crate::sandbox::LogLine;
use serde_json::Value;
use std::io::{BufRead, Write};
use switchyard_core::event::SourceEvent;

/// Events per plugin call in `plugin test`: as many as `map` hands a plugin at once (its chunks
/// of 32 lines, `switchyard_service::dry_run`), so that a plugin is tested as `map` runs it.
const CHUNK: usize = 32;

/// What `plugin test` feeds the plugin.
#[derive(Debug, Clone, Copy)]
pub enum TestInput {
    /// Source events (pipeline and destination plugins); `received_at` fills missing timestamps.
    Events { received_at: i64 },
    /// Platform payloads: JSON objects (payload plugins).
    Payloads,
}

impl TestInput {
    /// `text` read as the engine reads an event (or payload) going into a plugin or coming out of
    /// one, as JSON text; else why it is none.
    fn parse(self, text: &str) -> Result<String, String> {
        match self {
            TestInput::Events { received_at } => {
                SourceEvent::parse(text, received_at).map(|e| e.to_json())
            }
            TestInput::Payloads => Value::parse(text, 0).map(|p| p.to_json()),
        }
    }
}

/// Runs `plugin` over NDJSON events (or payloads): one JSON line per input line with what the
/// plugin did (`unchanged`, `changed`, `split`, `dropped`, `failed`, or `invalid` input), the events
/// it returned, and the reason. Log lines go to `log`. Returns counts per status.
pub fn test(
    plugin: &Plugin,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
    log: &mut dyn Write,
    kind: TestInput,
) -> std::io::Result<std::collections::BTreeMap<&'static str, usize>> {
    let mut counts = std::collections::BTreeMap::new();
    // Bytes, not text: a line that is not UTF-8 is refused alone, as `map` refuses it.
    let mut lines = input.split(b'\n').enumerate();
    loop {
        let chunk: Vec<(usize, std::io::Result<Vec<u8>>)> = lines
            .by_ref()
            .take(CHUNK)
            .map(|(i, l)| (i + 1, l))
            .collect();
        if chunk.is_empty() {
            break;
        }
        let mut texts = Vec::new();
        let mut verdicts: Vec<(usize, Result<usize, String>)> = Vec::new();
        for (line, bytes) in chunk {
            let text = match String::from_utf8(bytes?) {
                Ok(text) => text,
                Err(e) => {
                    let at = e.utf8_error().valid_up_to() + 1;
                    let reason =
                        format!("not valid UTF-8 (byte {at} is not part of a UTF-8 character)");
                    verdicts.push((line, Err(reason)));
                    continue;
                }
            };
            if text.trim().is_empty() {
                continue;
            }
            match kind.parse(&text) {
                Ok(json) => {
                    verdicts.push((line, Ok(texts.len())));
                    texts.push(json);
                }
                Err(e) => verdicts.push((line, Err(e))),
            }
        }
        let results = match plugin.transform_batch(&texts) {
            Ok(output) => {
                write_logs(plugin, &output.logs, log)?;
                Ok(output.results.into_iter().collect::<Vec<_>>())
            }
            Err(e) => Err(e),
        };
        for (line, verdict) in verdicts {
            let result = match (verdict, &results) {
                (Err(reason), _) => TestLine::halted(line, "invalid", reason),
                (Ok(_), Err(e)) => TestLine::halted(line, "failed", e.to_string()),
                (Ok(i), Ok(results)) => TestLine::of(line, &results[i], kind),
            };
            *counts.entry(result.status).or_insert(0) += 1;
            serde_json::to_writer(&mut *out, &result)?;
            out.write_all(b"\n")?;
        }
    }
    Ok(counts)
}

/// Writes a call's log lines as `plugin NAME: LEVEL: message`.
fn write_logs(plugin: &Plugin, logs: &[LogLine], out: &mut dyn Write) -> std::io::Result<()> {
    for l in logs {
        let level = crate::sandbox::level_name(l.level);
        writeln!(out, "plugin {}: {level}: {}", plugin.name(), l.message)?;
    }
    Ok(())
}

/// One line of `plugin test` output.
#[derive(serde::Serialize)]
struct TestLine {
    line: usize,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    events: Vec<Value>,
}

impl TestLine {
    fn halted(line: usize, status: &'static str, reason: String) -> Self {
        Self {
            line,
            status,
            reason: Some(reason),
            events: Vec::new(),
        }
    }

    /// What the plugin did with one event. What it returns is checked as the engine checks it: an
    /// event that is not one fails the line, as it fails the event in `map` and `serve`.
    fn of(line: usize, result: &Result<Action, EventFailure>, kind: TestInput) -> Self {
        let (status, texts) = match result {
            Err(failure) => return Self::halted(line, "failed", failure.to_string()),
            Ok(Action::Drop(reason)) => return Self::halted(line, "dropped", reason.clone()),
            Ok(Action::Unchanged) => ("unchanged", &[][..]),
            Ok(Action::Changed(text)) => ("changed", std::slice::from_ref(text)),
            Ok(Action::Split(texts)) => ("split", &texts[..]),
        };
        let parsed: Result<Vec<Value>, String> = texts
            .iter()
            .map(|text| {
                let json = kind.parse(text)?;
                serde_json::from_str(&json).map_err(|e| e.to_string())
            })
            .collect();
        match parsed {
            Ok(events) => Self {
                line,
                status,
                reason: None,
                events,
            },
            Err(e) => Self::halted(line, "failed", format!("returned an invalid event: {e}")),
        }
    }
}
