//! `switchyard dead-letters list|retry`: the events destinations gave up on, listed or queued
//! again and delivered (see `switchyard_service::replay`).

use crate::cli::{DeadLetterCommand, load, runtime};
use crate::commands::replay::progress_bar;
use std::io::Write;
use switchyard_service::replay;

pub fn run(
    command: DeadLetterCommand,
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
        }
    }
    Ok(0)
}
