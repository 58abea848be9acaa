//! Logs of the service and the delivery commands: `tracing` events to standard error, as text (for
//! people) or JSON lines (for log collectors), filtered by `RUST_LOG` (default: `info`).
//!
//! `RUST_LOG` is read as a list of `target=level` pairs and bare levels (`info,tower_http=debug`),
//! the filter `tracing_subscriber`'s `Targets` applies: by the target's prefix and the level. Not
//! `EnvFilter`, whose span and field filters this program does not need: it pulls in a regex
//! engine with full DFAs that every other regex in the process (the phone-number library's, the
//! schemas') would then build too: 5.3 M instructions more on the first phone number
//! (BENCHMARKS.md, round twenty-seven).

use anyhow::Context;
use clap::ValueEnum;
use std::io::IsTerminal;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One readable line per event: time, level, target, message and fields.
    #[default]
    Text,
    /// One JSON object per line (`timestamp`, `level`, `fields.message`, `target`, spans).
    Json,
}

/// The filter `rust_log` (the variable's value, if set) asks for: `info` when it is unset or blank.
/// Spaces around a directive and empty ones (`info, tower_http=debug,`) are left out: `Targets`
/// would read ` tower_http` as a target no event has, and filter its lines out without a word.
pub fn filter(rust_log: Option<&str>) -> anyhow::Result<Targets> {
    let directives: Vec<&str> = rust_log
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .collect();
    match directives.as_slice() {
        [] => Ok(Targets::new().with_default(LevelFilter::INFO)),
        _ => directives.join(",").parse().context(
            "RUST_LOG is not a log filter (expected levels and `target=level` pairs, as in \
             `info,tower_http=debug`)",
        ),
    }
}

/// Installs the subscriber once per process (later calls, as in-process tests make, keep the
/// first). Refuses a `RUST_LOG` that is not a filter, rather than logging at a level not asked for.
pub fn init(format: LogFormat) -> anyhow::Result<()> {
    let rust_log = std::env::var("RUST_LOG").ok();
    let filter = filter(rust_log.as_deref())?;
    let builder = tracing_subscriber::fmt().with_writer(std::io::stderr);
    let _already_set = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .finish()
            .with(filter)
            .try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .finish()
            .with(filter)
            .try_init(),
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    fn enabled(filter: &Targets, target: &str, level: Level) -> bool {
        filter.would_enable(target, &level)
    }

    #[test]
    fn unset_or_blank_is_info() {
        for unset in [None, Some(""), Some("  "), Some(" , ")] {
            let default = filter(unset).unwrap();
            assert!(enabled(&default, "switchyard_service", Level::INFO));
            assert!(!enabled(&default, "switchyard_service", Level::DEBUG));
        }
    }

    #[test]
    fn targets_take_their_own_levels() {
        let requests = filter(Some("info,tower_http=debug")).unwrap();
        assert!(enabled(&requests, "tower_http::trace", Level::DEBUG));
        assert!(!enabled(&requests, "switchyard_service", Level::DEBUG));
        assert!(enabled(&requests, "switchyard_service", Level::INFO));
        let spaced = filter(Some(" info, tower_http=debug ,")).unwrap();
        assert_eq!(spaced, requests);
        let only_errors = filter(Some("error")).unwrap();
        assert!(!enabled(&only_errors, "switchyard_service", Level::INFO));
        assert!(enabled(&only_errors, "switchyard_service", Level::ERROR));
    }

    #[test]
    fn a_filter_that_does_not_read_is_refused_with_an_example() {
        let error = format!("{:#}", filter(Some("switchyard=loud")).unwrap_err());
        assert!(error.contains("RUST_LOG"), "{error}");
        assert!(error.contains("info,tower_http=debug"), "{error}");
    }
}
