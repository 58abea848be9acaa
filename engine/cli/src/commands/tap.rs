//! `switchyard tap`: prints a running service's live tap (`GET /admin/tap`), one JSON line per
//! journey update, as `vector tap` does; filters by source, event name and destination.

use crate::admin_client::AdminClient;
use crate::cli::{TapArgs, runtime};
use anyhow::Context;
use std::io::Write;

pub fn run(args: TapArgs, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<i32> {
    let token = std::env::var(&args.token_env).with_context(|| {
        format!(
            "the admin token is read from the environment variable {}, which is not set (--token-env names another)",
            args.token_env
        )
    })?;
    let client = AdminClient::new(&args.url, token)?;
    let mut query = form_query(&args);
    if !query.is_empty() {
        query.insert(0, '?');
    }
    let path = format!("/admin/tap{query}");
    let base = args.url.trim_end_matches('/');
    // Said once the service answered: every update from then on is printed.
    let opened = || {
        let _ = writeln!(err, "tapping {base}{path} (Ctrl-C stops)");
    };
    let mut printed = 0u64;
    let mut failed = None;
    runtime()?.block_on(client.lines(&path, opened, |line| {
        if let Err(e) = writeln!(out, "{line}").and_then(|()| out.flush()) {
            failed = Some(e);
            return false;
        }
        printed += 1;
        args.limit.is_none_or(|limit| printed < limit)
    }))?;
    if let Some(e) = failed {
        return Err(e).context("cannot write the output");
    }
    Ok(0)
}

/// The tap's query string (without `?`).
fn form_query(args: &TapArgs) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (key, value) in [
        ("source", &args.source),
        ("event", &args.event),
        ("destination", &args.destination),
    ] {
        if let Some(v) = value {
            query.append_pair(key, v);
        }
    }
    query.finish()
}
