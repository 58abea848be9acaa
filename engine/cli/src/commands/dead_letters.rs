//! `switchyard dead-letters list|retry|drop`: the events destinations gave up on, listed, queued
//! again and delivered, or dropped for good after a confirmation (see `switchyard_service::replay`).

use crate::cli::{DeadLetterCommand, load, runtime};
use crate::commands::replay::progress_bar;
use std::io::{BufRead, Write};
use switchyard_queue::DeadLetter;
use switchyard_service::replay::{self, DeadLetterFilter};

pub fn run(
    command: DeadLetterCommand,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<i32> {
    match command {
        DeadLetterCommand::List { config } => {
            let Some(loaded) = load(&config, err)? else {
                return Ok(1);
            };
            let n = runtime()?.block_on(replay::list_dead_letters(&loaded, out))?;
            writeln!(err, "{n} dead letters")?;
        }
        DeadLetterCommand::Retry {
            config,
            destination,
        } => {
            let Some(loaded) = load(&config, err)? else {
                return Ok(1);
            };
            let (bar, progress) = progress_bar();
            let retry = replay::retry_dead_letters(loaded, destination.as_deref(), progress);
            let (n, summary) = runtime()?.block_on(retry)?;
            bar.finish_and_clear();
            writeln!(err, "retried {n} dead letters: {summary}")?;
            return crate::commands::replay::exit_code(&summary, err);
        }
        DeadLetterCommand::Drop {
            config,
            id,
            destination,
            older_than,
            yes,
        } => {
            let Some(loaded) = load(&config, err)? else {
                return Ok(1);
            };
            let filter = DeadLetterFilter {
                ids: id,
                destination,
                older_than_secs: older_than.map(|d| d.as_secs()),
            };
            let confirm = |letters: &[(u64, DeadLetter)]| yes || ask(letters, input, err);
            let n = runtime()?.block_on(replay::drop_dead_letters(&loaded, &filter, confirm))?;
            writeln!(err, "dropped {n} dead letters")?;
        }
    }
    Ok(0)
}

/// Shows what a drop would take and asks; true only on `y` or `yes`.
fn ask(letters: &[(u64, DeadLetter)], input: &mut dyn BufRead, err: &mut dyn Write) -> bool {
    let ids: Vec<String> = letters.iter().map(|(id, _)| id.to_string()).collect();
    let shown = ids.iter().take(20).cloned().collect::<Vec<_>>().join(", ");
    let more = if ids.len() > 20 { ", ..." } else { "" };
    let _ = write!(
        err,
        "drop {} dead letters for good (ids {shown}{more})? [y/N] ",
        letters.len()
    );
    let _ = err.flush();
    let mut answer = String::new();
    if input.read_line(&mut answer).is_err() {
        return false;
    }
    matches!(answer.trim().to_lowercase().as_str(), "y" | "yes")
}
