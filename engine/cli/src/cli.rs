//! The command line: argument parsing (clap) and dispatch. Everything writes to the given writers, so
//! tests run the CLI in process.

use crate::clock::unix_now;
use crate::commands;
use crate::config;
use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use std::io::{BufRead, Write};
use std::path::PathBuf;

/// Switchyard: forward e-commerce events to ad platforms with declarative YAML rules.
#[derive(Debug, Parser)]
#[command(name = "switchyard", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
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
    Map {
        /// The config file.
        #[arg(long, short)]
        config: PathBuf,
        /// NDJSON events, one per line (`-` or nothing for standard input).
        input: Option<PathBuf>,
        /// The source the events come from (default: the config's first source).
        #[arg(long)]
        source: Option<String>,
        /// Print the API requests (batched bodies) instead of one result per event.
        #[arg(long)]
        request: bool,
        /// Unix seconds to use as the time received (for reproducible output).
        #[arg(long)]
        now: Option<i64>,
        /// Append input that is invalid or that a plugin failed on to this NDJSON file.
        #[arg(long, value_name = "FILE")]
        dead_letters: Option<PathBuf>,
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
    /// Inspect and re-drive the events destinations gave up on.
    #[command(subcommand)]
    DeadLetters(DeadLetterCommand),
    /// Work on WebAssembly transform plugins.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Write the JSON Schemas of config and mapping files.
    Schema {
        /// Write `config.schema.json` and `mapping.schema.json` into this folder.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Without `--out`: which schema to print.
        #[arg(long, value_enum, default_value_t = SchemaKind::Config)]
        kind: SchemaKind,
    },
}

#[derive(Debug, Subcommand)]
pub enum DeadLetterCommand {
    /// Print every dead letter as a JSON line (id, destination, reason, at, source, event).
    List {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Queue the dead letters again (each to its destination only) and deliver them.
    Retry {
        #[arg(long, short)]
        config: PathBuf,
        /// Only this destination's dead letters.
        #[arg(long)]
        destination: Option<String>,
    },
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
        /// The plugin SDK to depend on (default: this source tree's `plugins/sdk`).
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
    /// Run a plugin over NDJSON events and print what it did with each, as `map` does.
    Test {
        /// The plugin's `.wasm` file.
        plugin: PathBuf,
        /// The plugin's config, YAML or JSON (default `{}`).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// NDJSON events (`-` or nothing for standard input).
        #[arg(long, short)]
        input: Option<PathBuf>,
        /// Time budget per call, in milliseconds.
        #[arg(long)]
        time_ms: Option<u64>,
        /// Memory cap, in MiB.
        #[arg(long)]
        memory_mib: Option<u64>,
        /// The input lines are platform payloads (for `payload_transforms` plugins), not events.
        #[arg(long)]
        payloads: bool,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SchemaKind {
    Config,
    Mapping,
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
    match dispatch(cli.command, input, out, err) {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(err, "error: {e:#}");
            1
        }
    }
}

fn dispatch(
    command: Command,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<i32> {
    match command {
        Command::Validate { configs } => Ok(if commands::validate::run(&configs, out, err)? {
            0
        } else {
            1
        }),
        Command::Map {
            config,
            input: path,
            source,
            request,
            now,
            dead_letters,
        } => map(
            MapArgs {
                config,
                path,
                source,
                request,
                now,
                dead_letters,
            },
            input,
            out,
            err,
        ),
        Command::Serve { config, listen } => {
            let Some(loaded) = load(&config, err)? else {
                return Ok(1);
            };
            runtime()?.block_on(crate::serve::run(loaded, listen))?;
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
            let source = source.unwrap_or_else(|| loaded.default_source().to_owned());
            let summary = if path.as_os_str() == "-" {
                runtime()?.block_on(commands::replay::replay(loaded, &source, input, err))?
            } else {
                let file = std::fs::File::open(&path)
                    .with_context(|| format!("cannot open {}", path.display()))?;
                let mut reader = std::io::BufReader::new(file);
                runtime()?.block_on(commands::replay::replay(loaded, &source, &mut reader, err))?
            };
            writeln!(err, "{summary}")?;
            Ok(0)
        }
        Command::DeadLetters(DeadLetterCommand::List { config }) => {
            let Some(loaded) = load(&config, err)? else {
                return Ok(1);
            };
            let n = commands::replay::list_dead_letters(&loaded, out)?;
            writeln!(err, "{n} dead letters")?;
            Ok(0)
        }
        Command::DeadLetters(DeadLetterCommand::Retry {
            config,
            destination,
        }) => {
            let Some(loaded) = load(&config, err)? else {
                return Ok(1);
            };
            let (n, summary) = runtime()?.block_on(commands::replay::retry_dead_letters(
                loaded,
                destination.as_deref(),
            ))?;
            writeln!(err, "retried {n} dead letters: {summary}")?;
            Ok(0)
        }
        Command::Plugin(PluginCommand::New { name, dir, sdk }) => {
            let sdk = sdk.unwrap_or_else(commands::plugin::default_sdk);
            let root = commands::plugin::new(&name, &dir, &sdk)?;
            writeln!(
                out,
                "created {}: build it with `cargo build --release` there",
                root.display()
            )?;
            Ok(0)
        }
        Command::Plugin(PluginCommand::Test {
            plugin,
            config,
            input: path,
            time_ms,
            memory_mib,
            payloads,
        }) => {
            let kind = if payloads {
                commands::plugin::TestInput::Payloads
            } else {
                commands::plugin::TestInput::Events {
                    received_at: unix_now(),
                }
            };
            let plugin_config =
                commands::plugin::read_config(config.as_deref()).map_err(anyhow::Error::msg)?;
            let runtime =
                switchyard_wasm::Runtime::new(Some(switchyard_wasm::Runtime::default_cache_dir()))?;
            let name = plugin
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let limits = commands::plugin::limits(time_ms, memory_mib);
            let loaded = runtime
                .load_file(&name, &plugin, &plugin_config, limits)
                .with_context(|| format!("plugin {}", plugin.display()))?;
            let counts = match path.filter(|p| p.as_os_str() != "-") {
                Some(p) => {
                    let file = std::fs::File::open(&p)
                        .with_context(|| format!("cannot open {}", p.display()))?;
                    commands::plugin::test(
                        &loaded,
                        &mut std::io::BufReader::new(file),
                        out,
                        err,
                        kind,
                    )?
                }
                None => commands::plugin::test(&loaded, input, out, err, kind)?,
            };
            let parts: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
            writeln!(err, "{name}: {}", parts.join(", "))?;
            Ok(0)
        }
        Command::Schema { out: Some(dir), .. } => {
            for path in commands::schema::write_all(&dir)? {
                writeln!(out, "wrote {}", path.display())?;
            }
            Ok(0)
        }
        Command::Schema { out: None, kind } => {
            let schema = match kind {
                SchemaKind::Config => config::config_schema(),
                SchemaKind::Mapping => switchyard_engine::rules::mapping_schema(),
            };
            out.write_all(commands::schema::render(&schema.schema).as_bytes())?;
            Ok(0)
        }
    }
}

struct MapArgs {
    config: PathBuf,
    path: Option<PathBuf>,
    source: Option<String>,
    request: bool,
    now: Option<i64>,
    dead_letters: Option<PathBuf>,
}

fn map(
    args: MapArgs,
    input: &mut dyn BufRead,
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
    let source = args
        .source
        .unwrap_or_else(|| loaded.default_source().to_owned());
    if !loaded.config.sources.iter().any(|s| s.name == source) {
        let known: Vec<&str> = loaded
            .config
            .sources
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        anyhow::bail!(
            "no source named `{source}` in {} (sources: {})",
            args.config.display(),
            known.join(", ")
        );
    }
    let opts = commands::map::MapOptions {
        source,
        requests: args.request,
        received_at: args.now.unwrap_or_else(unix_now),
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
    let summary = {
        let mut sinks = commands::map::Sinks {
            out,
            log: &mut *err,
            dead_letters: letters.as_mut().map(|w| w as &mut dyn Write),
        };
        match args.path.filter(|p| p.as_os_str() != "-") {
            Some(p) => {
                let file = std::fs::File::open(&p)
                    .with_context(|| format!("cannot open {}", p.display()))?;
                commands::map::run(
                    &loaded,
                    &opts,
                    &mut std::io::BufReader::new(file),
                    &mut sinks,
                )?
            }
            None => commands::map::run(&loaded, &opts, input, &mut sinks)?,
        }
    };
    if let Some(w) = letters.as_mut() {
        w.flush()?;
    }
    writeln!(err, "{summary}")?;
    Ok(0)
}

/// Loads a config, writing its errors (or warnings) to `err`; `None` when it does not load.
fn load(path: &std::path::Path, err: &mut dyn Write) -> anyhow::Result<Option<config::Loaded>> {
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

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}
