//! `switchyard replay`: a file of events through the real delivery path, with a progress bar
//! (see `switchyard_service::replay`).

use crate::cli::{open_input, runtime};
use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::{BufRead, Write};
use std::path::Path;
use std::sync::Arc;
use switchyard_service::config::Loaded;
use switchyard_service::replay::{self, Progress};

/// Queues the events of `path` (`-`: standard input) as coming from `source` (default: the
/// config's first), delivers everything queued, and writes the summary to `err`.
pub fn run(
    loaded: Loaded,
    path: &Path,
    source: Option<String>,
    stdin: &mut dyn BufRead,
    err: &mut dyn Write,
) -> anyhow::Result<i32> {
    let source = match source {
        Some(s) => s,
        None => loaded
            .default_source()
            .context("the config has no source")?
            .to_owned(),
    };
    let (bar, progress) = progress_bar();
    let rt = runtime()?;
    let summary = match open_input(Some(path))? {
        Some(mut file) => rt.block_on(replay::replay(loaded, &source, &mut file, err, progress))?,
        None => rt.block_on(replay::replay(loaded, &source, stdin, err, progress))?,
    };
    bar.finish_and_clear();
    writeln!(err, "{summary}")?;
    exit_code(&summary, err)
}

/// 0 when every line was an event and every event settled without failing; else 1, saying why:
/// invalid lines were never queued (so they are no dead letters), failed events are.
pub fn exit_code(summary: &replay::DeliverySummary, err: &mut dyn Write) -> anyhow::Result<i32> {
    let invalid = summary.invalid as u64;
    let failed = summary.problems() - invalid;
    if invalid > 0 {
        writeln!(
            err,
            "error: {invalid} invalid lines, not queued (each is named above with its line number)"
        )?;
    }
    if failed > 0 {
        writeln!(
            err,
            "error: {failed} events failed (see `switchyard dead-letters list`)"
        )?;
    }
    Ok(i32::from(invalid + failed > 0))
}

/// A progress bar (drawn on a terminal only) and the callback that moves it.
pub fn progress_bar() -> (ProgressBar, Progress) {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:40} {pos}/{len} events delivered or settled, {elapsed} elapsed, about {eta} left",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let moved = bar.clone();
    let progress: Progress = Arc::new(move |done, total| {
        moved.set_length(total);
        moved.set_position(done);
    });
    (bar, progress)
}
