//! The command line: argument parsing (clap) and dispatch. Everything writes to the given writers, so
//! tests run the CLI in process.

use crate::commands;
use crate::logging::{self, LogFormat};
use clap::{Parser, Subcommand, ValueEnum};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use switchyard_service::config::{self, Loaded};

/// The version and the commit built from, as `--version` prints them.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("SWITCHYARD_COMMIT"),
    ")"
);

/// Switchyard: forward e-commerce events to ad platforms with declarative YAML rules.
#[derive(Debug, Parser)]
#[command(name = "switchyard", version = VERSION)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// How `serve`, `replay` and `dead-letters` log: `text` or `json` (one object per line).
    /// Filter with `RUST_LOG` (default `info`; e.g. `RUST_LOG=switchyard_service=debug`).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check config files and the mapping files they use; report every error with file:line:column.
    Validate {
        /// Config files to check.
        #[arg(required = true)]
        configs: Vec<PathBuf>,
    },
    /// Dry run: map NDJSON source events and print what each destination would send.
    Map(MapArgs),
    /// Run mapping unit tests (YAML: input events and the expected outcome per destination);
    /// exit 1 with the differences when one fails.
    Test {
        /// Test files (see docs/rules.md, "Testing a mapping").
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Run the service: HTTP ingestion into a durable queue, delivery to the destinations.
    Serve {
        /// The config file.
        #[arg(long, short)]
        config: PathBuf,
        /// Listen here instead of `server.listen` (e.g. `127.0.0.1:0` for any free port).
        #[arg(long)]
        listen: Option<String>,
    },
    /// Send a file of events through the real delivery path (queue, batching, retries, dead
    /// letters), with a progress bar and a summary.
    Replay {
        /// The config file.
        #[arg(long, short)]
        config: PathBuf,
        /// NDJSON events (`-` for standard input).
        input: PathBuf,
        /// The source the events come from (default: the config's first source).
        #[arg(long)]
        source: Option<String>,
    },
    /// Print the live stream of a running service's events (one JSON line per journey update:
    /// the event, and what became of it at each destination), through its admin API.
    Tap(TapArgs),
    /// Inspect and re-drive the events destinations gave up on.
    #[command(subcommand)]
    DeadLetters(DeadLetterCommand),
    /// Work on WebAssembly transform plugins.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Print a shell completion script (e.g. `switchyard completions bash > /etc/bash_completion.d/switchyard`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Write the JSON Schemas of config and mapping files.
    Schema {
        /// Write `config.schema.json`, `mapping.schema.json` and `mapping-tests.schema.json` (or
        /// only the `--kind` given) into this folder.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Which schema: to print (default `config`), or with `--out` the only one to write.
        #[arg(long, value_enum)]
        kind: Option<SchemaKind>,
    },
}

#[derive(Debug, Subcommand)]
pub enum DeadLetterCommand {
    /// Print the dead letters (all, or those chosen) as JSON lines (id, destination, reason, at,
    /// source, event).
    List {
        #[arg(long, short)]
        config: PathBuf,
        #[command(flatten)]
        which: WhichDeadLetters,
        /// The running service's URL, when it holds the embedded queue (default: from
        /// `server.listen`); its admin API (`server.admin`) does the work then.
        #[arg(long)]
        url: Option<String>,
    },
    /// Queue the dead letters (all, or those chosen) again, each to its destination only, and
    /// deliver them.
    Retry {
        #[arg(long, short)]
        config: PathBuf,
        #[command(flatten)]
        which: WhichDeadLetters,
        /// The running service's URL, when it holds the embedded queue (default: from
        /// `server.listen`); its admin API (`server.admin`) does the work then.
        #[arg(long)]
        url: Option<String>,
    },
    /// Drop dead letters for good: those with the given ids, of a destination, or older than an
    /// age (all that are given must hold; at least one). Asks before dropping unless `--yes`.
    #[command(group(clap::ArgGroup::new("which").required(true).multiple(true).args(["id", "destination", "older_than"])))]
    Drop {
        #[arg(long, short)]
        config: PathBuf,
        #[command(flatten)]
        which: WhichDeadLetters,
        /// Drop without asking.
        #[arg(long)]
        yes: bool,
        /// The running service's URL, when it holds the embedded queue (default: from
        /// `server.listen`); its admin API (`server.admin`) does the work then.
        #[arg(long)]
        url: Option<String>,
    },
}

/// Which dead letters a `dead-letters` command takes: all that are given must hold (none given:
/// every one, but for `drop`).
#[derive(Debug, clap::Args)]
pub struct WhichDeadLetters {
    /// A dead letter's id, as `list` prints it (repeatable).
    #[arg(long)]
    pub id: Vec<u64>,
    /// Only this destination's dead letters.
    #[arg(long)]
    pub destination: Option<String>,
    /// Only dead letters given up on at least this long ago (e.g. `7d`, `12h`, `30m`).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub older_than: Option<std::time::Duration>,
}

#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Create a plugin crate that builds as is (`cargo build --release` inside it).
    New {
        /// The crate's name (lower-case letters, digits, - and _).
        name: String,
        /// The folder to create it in.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// The plugin SDK to depend on (default: `$SWITCHYARD_SDK`, else `plugins/transforms/sdk`
        /// of the Switchyard source tree that holds the current folder or this executable).
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
    /// Run a plugin over NDJSON events and print what it did with each, as `map` does.
    Test(PluginTestArgs),
}

/// Options of `tap`.
#[derive(Debug, clap::Args)]
pub struct TapArgs {
    /// The running service's URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// The environment variable that holds the admin token (`server.admin.token`).
    #[arg(long, default_value = "SWITCHYARD_ADMIN_TOKEN")]
    pub token_env: String,
    /// Only events from this source.
    #[arg(long)]
    pub source: Option<String>,
    /// Only events of this name (e.g. `Placed Order`).
    #[arg(long)]
    pub event: Option<String>,
    /// Only this destination's outcomes.
    #[arg(long)]
    pub destination: Option<String>,
    /// Stop after this many lines.
    #[arg(long)]
    pub limit: Option<u64>,
}

/// Options of `map`.
#[derive(Debug, clap::Args)]
pub struct MapArgs {
    /// The config file.
    #[arg(long, short)]
    pub config: PathBuf,
    /// NDJSON events, one per line (`-` or nothing for standard input).
    pub input: Option<PathBuf>,
    /// The source the events come from (default: the config's first source).
    #[arg(long)]
    pub source: Option<String>,
    /// Print the API requests (batched bodies) instead of one result per event.
    #[arg(long)]
    pub request: bool,
    /// Unix seconds to use as the time received (for reproducible output).
    #[arg(long)]
    pub now: Option<i64>,
    /// Append input that is invalid or that a plugin failed on to this NDJSON file.
    #[arg(long, value_name = "FILE")]
    pub dead_letters: Option<PathBuf>,
}

/// Options of `plugin test`.
#[derive(Debug, clap::Args)]
pub struct PluginTestArgs {
    /// The plugin's `.wasm` file.
    pub plugin: PathBuf,
    /// The plugin's config, YAML or JSON (default `{}`).
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// NDJSON events (`-` or nothing for standard input).
    #[arg(long, short)]
    pub input: Option<PathBuf>,
    /// Time budget per call, in milliseconds (1 to 60000, as in a config).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub time_ms: Option<u64>,
    /// Memory cap, in MiB (1 to 1024, as in a config).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub memory_mib: Option<u64>,
    /// The input lines are platform payloads (for `payload_transforms` plugins), not events.
    #[arg(long)]
    pub payloads: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchemaKind {
    Config,
    Mapping,
    MappingTests,
}

/// Whether `args` (program name first) is a command line this CLI accepts, without running it; else
/// clap's message. With `partial`, missing required arguments are accepted (a command named in
/// prose). For checking the commands the docs show.
pub fn check_args<I, T>(args: I, partial: bool) -> Result<(), String>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    use clap::error::ErrorKind;
    match Cli::try_parse_from(args) {
        Ok(_) => Ok(()),
        Err(e) if !e.use_stderr() => Ok(()),
        Err(e)
            if partial
                && matches!(
                    e.kind(),
                    ErrorKind::MissingRequiredArgument
                        | ErrorKind::MissingSubcommand
                        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
                ) =>
        {
            Ok(())
        }
        Err(e) => Err(e.render().to_string()),
    }
}

/// Runs the CLI with `args`; returns the process exit code.
pub fn run<I, T>(args: I, input: &mut dyn BufRead, out: &mut dyn Write, err: &mut dyn Write) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = write!(err, "{}", e.render());
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    if let Err(e) = logging::init(cli.log_format) {
        let _ = writeln!(err, "error: {}", error_line(&e));
        return 2;
    }
    match dispatch(cli.command, input, out, err) {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(err, "error: {}", error_line(&e));
            1
        }
    }
}

/// An error and its causes, joined by ": " (as `{:#}` joins them), leaving out a cause the line
/// already ends with as its last part (`...: <cause>`): some libraries (the NATS client) write
/// their source into their own message and return it as the source too, which would print it
/// twice.
fn error_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        let said = line
            .strip_suffix(text.as_str())
            .is_some_and(|before| before.is_empty() || before.ends_with(": "));
        if said && !text.is_empty() {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

fn dispatch(
    command: Command,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<i32> {
    match command {
        Command::Validate { configs } => {
            let ok = commands::validate::run(&configs, out, err)?;
            Ok(if ok { 0 } else { 1 })
        }
        Command::Map(args) => commands::map::run(args, input, out, err),
        Command::Test { files } => commands::test::run(&files, out, err),
        Command::Serve { config, listen } => {
            tune_allocator_for_serve();
            let Some(loaded) = load(&config, err)? else {
                return Ok(1);
            };
            runtime()?.block_on(switchyard_service::serve::run(loaded, listen))?;
            Ok(0)
        }
        Command::Replay {
            config,
            input: path,
            source,
        } => {
            let Some(loaded) = load(&config, err)? else {
                return Ok(1);
            };
            commands::replay::run(loaded, &path, source, input, err)
        }
        Command::Tap(args) => commands::tap::run(args, out, err),
        Command::DeadLetters(command) => commands::dead_letters::run(command, input, out, err),
        Command::Plugin(PluginCommand::New { name, dir, sdk }) => {
            let made = commands::plugin::new(&name, &dir, sdk)?;
            writeln!(
                out,
                "created {}: build it with `cargo build --release` there; the plugin is then {}",
                made.root.display(),
                made.root.join(&made.wasm).display()
            )?;
            if let Some(why) = made.lockfile_missing {
                writeln!(
                    err,
                    "no Cargo.lock written ({why}): run `cargo generate-lockfile` in the crate"
                )?;
            }
            Ok(0)
        }
        Command::Plugin(PluginCommand::Test(args)) => commands::plugin::test(args, input, out, err),
        Command::Schema { out: dir, kind } => commands::schema::run(dir.as_deref(), kind, out),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "switchyard", out);
            Ok(0)
        }
    }
}

/// Loads a config, writing its errors (or warnings) to `err`; `None` when it does not load.
pub fn load(path: &Path, err: &mut dyn Write) -> anyhow::Result<Option<Loaded>> {
    match config::load(path) {
        Ok(l) => {
            for w in &l.warnings {
                writeln!(err, "{w}")?;
            }
            Ok(Some(l))
        }
        Err(diagnostics) => {
            for d in &diagnostics {
                writeln!(err, "{d}")?;
            }
            Ok(None)
        }
    }
}

/// The allocator's switches for `serve`, a long-running process of many threads (each left to
/// mimalloc's own variable when that is set): no transparent huge pages, and pages reclaimed by the
/// thread that frees their blocks (`switchyard_alloc`).
fn tune_allocator_for_serve() {
    let allow_thp = std::env::var_os("MIMALLOC_ALLOW_THP");
    match switchyard_alloc::without_huge_pages(allow_thp.as_deref()) {
        Ok(off) => tracing::debug!(off, "transparent huge pages"),
        Err(e) => tracing::warn!("transparent huge pages stay on: {e}"),
    }
    let own = std::env::var_os("MIMALLOC_PAGE_RECLAIM_ON_FREE");
    let set = switchyard_alloc::reclaim_pages_on_free(own.as_deref());
    tracing::debug!(set, "pages reclaimed on free");
}

/// The async runtime of `serve`, `replay` and `dead-letters retry|drop`.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Opens `path` for reading, or `None` for standard input (no path, or `-`).
pub fn open_input(
    path: Option<&Path>,
) -> anyhow::Result<Option<std::io::BufReader<std::fs::File>>> {
    use anyhow::Context;
    match path.filter(|p| p.as_os_str() != "-") {
        None => Ok(None),
        Some(p) => {
            let file =
                std::fs::File::open(p).with_context(|| format!("cannot open {}", p.display()))?;
            let meta = file
                .metadata()
                .with_context(|| format!("cannot read {}", p.display()))?;
            anyhow::ensure!(
                !meta.is_dir(),
                "{} is a folder, not a file of events",
                p.display()
            );
            Ok(Some(std::io::BufReader::new(file)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::error_line;

    /// An error that writes its source into its own message, as the NATS client's do.
    #[derive(Debug)]
    struct Echoing(std::io::Error);

    impl std::fmt::Display for Echoing {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "jetstream error: {}", self.0)
        }
    }

    impl std::error::Error for Echoing {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn a_cause_is_written_once_even_when_its_parent_repeats_it() {
        let e = anyhow::Error::new(Echoing(std::io::Error::other("no storage")))
            .context("creating the stream");
        assert_eq!(
            error_line(&e),
            "creating the stream: jetstream error: no storage"
        );
        let plain = anyhow::Error::new(std::io::Error::other("refused")).context("connecting");
        assert_eq!(error_line(&plain), format!("{plain:#}"));
        // A cause that only ends the parent's last word is information: it is kept.
        let tail = anyhow::Error::new(std::io::Error::other("refused"))
            .context("the connection was refused");
        assert_eq!(error_line(&tail), "the connection was refused: refused");
    }
}
