//! `switchyard dead-letters list|retry|drop`: the events destinations gave up on, listed, queued
//! again and delivered, or dropped for good after a confirmation (see `switchyard_service::replay`).
//! When a running `serve` holds the embedded queue, they go through its admin API (`server.admin`;
//! `--url` says where it listens when `server.listen` does not).

use crate::admin_client::{AdminClient, url_of_listen};
use crate::cli::{DeadLetterCommand, WhichDeadLetters, load, runtime};
use crate::commands::replay::progress_bar;
use anyhow::{Context, bail};
use serde_json::json;
use std::io::{BufRead, Write};
use switchyard_queue::{DeadLetter, QueueError};
use switchyard_service::backend::QueueFailure;
use switchyard_service::config::{Loaded, ServerConfig};
use switchyard_service::replay::{self, DeadLetterFilter};
use switchyard_service::serve::ServeError;

pub fn run(
    command: DeadLetterCommand,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<i32> {
    match command {
        DeadLetterCommand::List { config, which, url } => {
            let Some(loaded) = load(&config, err)? else {
                return Ok(1);
            };
            let n = list(&loaded, &filter_of(which), url.as_deref(), out)?;
            writeln!(err, "{n} dead letters")?;
            Ok(0)
        }
        DeadLetterCommand::Retry { config, which, url } => {
            let Some(loaded) = load(&config, err)? else {
                return Ok(1);
            };
            retry(loaded, filter_of(which), url.as_deref(), err)
        }
        DeadLetterCommand::Drop {
            config,
            which,
            yes,
            url,
        } => {
            let Some(loaded) = load(&config, err)? else {
                return Ok(1);
            };
            let n = drop(&loaded, &filter_of(which), yes, url.as_deref(), input, err)?;
            writeln!(err, "dropped {n} dead letters")?;
            Ok(0)
        }
    }
}

/// The dead letters the command line chose.
fn filter_of(which: WhichDeadLetters) -> DeadLetterFilter {
    DeadLetterFilter {
        ids: which.id,
        destination: which.destination,
        older_than_secs: which.older_than.map(|d| d.as_secs()),
    }
}

/// Lists the dead letters `filter` matches (through the admin API when a service holds the
/// queue).
fn list(
    loaded: &Loaded,
    filter: &DeadLetterFilter,
    url: Option<&str>,
    out: &mut dyn Write,
) -> anyhow::Result<usize> {
    let rt = runtime()?;
    match rt.block_on(replay::list_dead_letters(loaded, filter, out)) {
        Err(e) if held(&e) => {
            let client = admin(&loaded.config.server, url, &e)?;
            let letters = rt.block_on(client.json("GET", "/admin/dead-letters", None))?;
            let Some(letters) = letters.as_array() else {
                bail!(
                    "the admin API answered GET /admin/dead-letters with something other than a list: {letters}"
                );
            };
            let now = switchyard_service::clock::unix_now();
            let all = filter.is_empty();
            let chosen: Vec<_> = letters
                .iter()
                .filter(|l| all || chosen(filter, l, now))
                .collect();
            for l in &chosen {
                writeln!(out, "{l}")?;
            }
            Ok(chosen.len())
        }
        other => Ok(other?),
    }
}

/// Whether `filter` takes `letter`, a dead letter as the admin API lists it.
fn chosen(filter: &DeadLetterFilter, letter: &serde_json::Value, now: i64) -> bool {
    let parts = (
        letter["id"].as_u64(),
        letter["destination"].as_str(),
        letter["at"].as_i64(),
    );
    match parts {
        (Some(id), Some(destination), Some(at)) => filter.matches_parts(id, destination, at, now),
        _ => false,
    }
}

/// Queues the dead letters again and delivers them; through the admin API when a service holds
/// the queue (it delivers them then).
fn retry(
    loaded: Loaded,
    filter: DeadLetterFilter,
    url: Option<&str>,
    err: &mut dyn Write,
) -> anyhow::Result<i32> {
    let server = loaded.config.server.clone();
    let (bar, progress) = progress_bar();
    let retry = replay::retry_dead_letters(loaded, &filter, progress);
    let rt = runtime()?;
    let result = rt.block_on(retry);
    bar.finish_and_clear();
    match result {
        Ok((n, summary)) => {
            writeln!(err, "retried {n} dead letters: {summary}")?;
            crate::commands::replay::exit_code(&summary, err)
        }
        Err(e) if held(&e) => {
            let client = admin(&server, url, &e)?;
            let mut body = json!({});
            if !filter.ids.is_empty() {
                body["ids"] = json!(filter.ids);
            }
            if let Some(d) = &filter.destination {
                body["destination"] = json!(d);
            }
            if let Some(secs) = filter.older_than_secs {
                body["older_than_secs"] = json!(secs);
            }
            let answer =
                rt.block_on(client.json("POST", "/admin/dead-letters/retry", Some(&body)))?;
            writeln!(
                err,
                "queued {} dead letters again; the running service delivers them (see `dead-letters list` and its metrics)",
                answer["retried"]
            )?;
            Ok(0)
        }
        Err(e) => Err(e.into()),
    }
}

/// Drops the dead letters `filter` matches, once confirmed; through the admin API when a service
/// holds the queue.
fn drop(
    loaded: &Loaded,
    filter: &DeadLetterFilter,
    yes: bool,
    url: Option<&str>,
    input: &mut dyn BufRead,
    err: &mut dyn Write,
) -> anyhow::Result<usize> {
    let mut asked = false;
    let mut confirm = |letters: &[(u64, DeadLetter)]| {
        asked = true;
        yes || ask(letters.iter().map(|(id, _)| *id), input, err)
    };
    let rt = runtime()?;
    match rt.block_on(replay::drop_dead_letters(loaded, filter, &mut confirm)) {
        Err(e) if held(&e) && !asked => {
            let client = admin(&loaded.config.server, url, &e)?;
            rt.block_on(drop_through(&client, filter, yes, input, err))
        }
        other => Ok(other?),
    }
}

/// Whether `e` says a running service holds the embedded queue.
fn held(e: &ServeError) -> bool {
    matches!(
        e,
        ServeError::Queue(QueueFailure {
            source: QueueError::InUse,
            ..
        })
    )
}

/// A client of the running service's admin API, or an error saying how to get one.
fn admin(server: &ServerConfig, url: Option<&str>, e: &ServeError) -> anyhow::Result<AdminClient> {
    let Some(settings) = &server.admin else {
        bail!(
            "{e:#}: {}: stop that service first, or set `server.admin` (with its token) in the \
             config so that this command goes through the running service's admin API",
            QueueError::InUse
        );
    };
    let token = settings.token.expose().with_context(|| {
        format!(
            "{}: the admin API's token is in {}, which is not set here",
            QueueError::InUse,
            settings.token.var()
        )
    })?;
    let url = url.map_or_else(|| url_of_listen(&server.listen), str::to_owned);
    AdminClient::new(&url, token.to_owned())
}

/// Drops through the admin API: lists, filters here, asks, then drops by id.
async fn drop_through(
    client: &AdminClient,
    filter: &DeadLetterFilter,
    yes: bool,
    input: &mut dyn BufRead,
    err: &mut dyn Write,
) -> anyhow::Result<usize> {
    let letters = client.json("GET", "/admin/dead-letters", None).await?;
    let now = switchyard_service::clock::unix_now();
    let ids: Vec<u64> = letters
        .as_array()
        .into_iter()
        .flatten()
        .filter(|l| chosen(filter, l, now))
        .filter_map(|l| l["id"].as_u64())
        .collect();
    if ids.is_empty() || !(yes || ask(ids.iter().copied(), input, err)) {
        return Ok(0);
    }
    let answer = client
        .json(
            "POST",
            "/admin/dead-letters/drop",
            Some(&json!({"ids": ids})),
        )
        .await?;
    Ok(answer["dropped"].as_u64().map_or(0, |n| n as usize))
}

/// Shows what a drop would take and asks; true only on `y` or `yes`.
fn ask(ids: impl Iterator<Item = u64>, input: &mut dyn BufRead, err: &mut dyn Write) -> bool {
    let ids: Vec<String> = ids.map(|id| id.to_string()).collect();
    let shown = ids.iter().take(20).cloned().collect::<Vec<_>>().join(", ");
    let more = if ids.len() > 20 { ", ..." } else { "" };
    let _ = write!(
        err,
        "drop {} dead letters for good (ids {shown}{more})? [y/N] ",
        ids.len()
    );
    let _ = err.flush();
    let mut answer = String::new();
    if input.read_line(&mut answer).is_err() {
        return false;
    }
    matches!(answer.trim().to_lowercase().as_str(), "y" | "yes")
}
