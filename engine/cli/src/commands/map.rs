//! `switchyard map`: the dry run over NDJSON (see `switchyard_service::dry_run`).

use crate::cli::{MapArgs, open_input};
use anyhow::Context;
use std::io::{BufRead, Write};
use switchyard_core::event::received_at_refusal;
use switchyard_service::clock::unix_now;
use switchyard_service::config;
use switchyard_service::dry_run::{self, MapOptions, MapOutput};

/// Runs `map`; the summary goes to `err`. A config that does not load exits 1 with its errors.
pub fn run(
    args: MapArgs,
    stdin: &mut dyn BufRead,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<i32> {
    let loaded = match config::load(&args.config) {
        Ok(l) => l,
        Err(diagnostics) => {
            for d in &diagnostics {
                writeln!(err, "{d}")?;
            }
            return Ok(1);
        }
    };
    let known = loaded.source_names();
    let source = match args.source {
        Some(s) => s,
        None => loaded
            .default_source()
            .context("the config has no source")?
            .to_owned(),
    };
    if !known.contains(&source.as_str()) {
        anyhow::bail!(
            "no source named `{source}` in {} (sources: {})",
            args.config.display(),
            known.join(", ")
        );
    }
    let opts = MapOptions {
        source,
        requests: args.request,
        received_at: received_at(args.now)?,
    };
    let mut letters = match &args.dead_letters {
        Some(p) => Some(std::io::BufWriter::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .with_context(|| format!("cannot open {}", p.display()))?,
        )),
        None => None,
    };
    let mut output = MapOutput {
        results: out,
        log: &mut *err,
        dead_letters: letters.as_mut().map(|w| w as &mut dyn Write),
    };
    let summary = match open_input(args.input.as_deref())? {
        Some(mut file) => dry_run::run(&loaded, &opts, &mut file, &mut output)?,
        None => dry_run::run(&loaded, &opts, stdin, &mut output)?,
    };
    if let Some(w) = letters.as_mut() {
        w.flush()?;
    }
    writeln!(err, "{summary}")?;
    for field in summary.never_matched() {
        writeln!(err, "{field}")?;
    }
    Ok(0)
}

/// The time received that `--now` gives (unix seconds, held to the bounds of an event's own
/// timestamp), else the clock's.
fn received_at(now: Option<i64>) -> anyhow::Result<i64> {
    match now {
        Some(s) => match received_at_refusal(s) {
            Some(why) => anyhow::bail!("--now {why}"),
            None => Ok(s),
        },
        None => Ok(unix_now()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn now_out_of_range_is_refused_and_only_a_large_one_is_taken_for_milliseconds() {
        let message = |now| received_at(Some(now)).unwrap_err().to_string();
        assert!(message(1_725_280_000_000).ends_with("(milliseconds? divide by 1000)"));
        let negative = message(-5);
        assert!(
            negative.starts_with("--now -5 is not unix seconds"),
            "{negative}"
        );
        assert!(!negative.contains("milliseconds"), "{negative}");
        assert_eq!(received_at(Some(1_725_280_000)).ok(), Some(1_725_280_000));
    }
}
