//! The config file (`switchyard.yaml`): sources and destinations, with every built-in destination
//! type. Loading checks the JSON Schema, then what a schema cannot: unique names, known sources,
//! mapping files and rules, and whether secrets are set.

use crate::pipeline::{DestinationStages, Pipeline};
use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::HashMap;
use std::path::Path;
use std::sync::OnceLock;
use switchyard_engine::destination::Destination;
use switchyard_engine::load::{Diagnostic, Placer, Schema, load_file};
use switchyard_engine::router::Router;
use switchyard_engine::rules::Pointer;
use switchyard_engine::secret::Secret;
use switchyard_tiktok::{Tiktok, TiktokConfig};
use switchyard_wasm::{LoadError, PluginConfig, Runtime, Stage};

/// A Switchyard config: where events come from and where they go.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where events come from.
    #[schemars(length(min = 1))]
    pub sources: Vec<SourceConfig>,
    /// Where events go.
    pub destinations: Vec<DestinationConfig>,
    /// WebAssembly plugins run in order on every event before the destinations see it.
    #[serde(default)]
    pub transforms: Vec<PluginConfig>,
    /// `switchyard serve`: where it listens, where it keeps its queue, its limits.
    #[serde(default)]
    pub server: ServerConfig,
}

/// Settings of `switchyard serve` (and of `replay`, which uses the same queue and delivery).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address and port to listen on.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// The durable queue and dead letters live here (relative to the config file).
    #[serde(default = "default_data_dir")]
    pub data_dir: String,
    /// Disk budget of the queue, in MiB of queued events; when it is used up, ingestion answers
    /// 503 with Retry-After and loses nothing.
    #[serde(default = "default_budget")]
    #[schemars(range(min = 1))]
    pub queue_budget_mib: u64,
    /// Largest request body accepted, in KiB.
    #[serde(default = "default_body")]
    #[schemars(range(min = 1, max = 102400))]
    pub max_body_kib: usize,
    /// A repeated `event_id` from the same source within this many seconds is accepted but not
    /// queued again (0: no de-duplication).
    #[serde(default = "default_dedup")]
    pub dedup_window_secs: u64,
    /// How long delivery waits for a batch to fill before it sends what it has, in milliseconds.
    #[serde(default = "default_linger")]
    #[schemars(range(max = 60000))]
    pub linger_ms: u64,
    /// Events taken from the queue per delivery round.
    #[serde(default = "default_round")]
    #[schemars(range(min = 1, max = 100000))]
    pub round_events: usize,
    /// On shutdown, how long to keep delivering what is queued before exiting (the rest stays
    /// queued for the next start), in milliseconds.
    #[serde(default = "default_drain")]
    pub shutdown_timeout_ms: u64,
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}
fn default_data_dir() -> String {
    "switchyard-data".into()
}
fn default_budget() -> u64 {
    1024
}
fn default_body() -> usize {
    1024
}
fn default_dedup() -> u64 {
    600
}
fn default_linger() -> u64 {
    200
}
fn default_round() -> usize {
    2000
}
fn default_drain() -> u64 {
    10_000
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            data_dir: default_data_dir(),
            queue_budget_mib: default_budget(),
            max_body_kib: default_body(),
            dedup_window_secs: default_dedup(),
            linger_ms: default_linger(),
            round_events: default_round(),
            shutdown_timeout_ms: default_drain(),
        }
    }
}

/// A source of events.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// A unique name, referred to by destinations' `sources`.
    #[schemars(length(min = 1))]
    pub name: String,
    /// How the source sends events.
    pub kind: SourceKind,
    /// The key that authenticates this source's requests (the `X-Webhook-Token` header), as
    /// `${ENV_VAR}`. A source without one cannot send to `serve`.
    #[serde(default)]
    pub write_key: Option<Secret>,
    /// The key the browser script is installed with (`/v1/collect?key=...`). It is public (it
    /// stands in every page), so it is written in the config, not taken from the environment.
    #[serde(default)]
    pub public_key: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// The browser script (camelCase fields accepted).
    Browser,
    /// A server webhook (raw JSON bodies).
    Webhook,
}

/// A destination, by `type`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DestinationConfig {
    /// TikTok Ads: Events API (server side) and pixel (browser side).
    Tiktok(Box<TiktokConfig>),
}

impl DestinationConfig {
    fn common(&self) -> &switchyard_engine::destination::DestinationCommon {
        match self {
            Self::Tiktok(t) => &t.common,
        }
    }
}

/// The JSON Schema of config files (generated from [`Config`]), compiled once.
pub fn config_schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(Schema::of::<Config>)
}

/// A loaded, checked config, compiled and ready to route events.
pub struct Loaded {
    /// The folder of the config file (relative paths in it are relative to this).
    pub dir: std::path::PathBuf,
    pub config: Config,
    /// Every plugin, loaded, where it plugs in.
    pub pipeline: Pipeline,
    pub router: Router,
    /// Findings that do not stop loading (e.g. an access token whose variable is not set).
    pub warnings: Vec<Diagnostic>,
}

impl Loaded {
    /// The data directory of `serve` and `replay`.
    pub fn data_dir(&self) -> std::path::PathBuf {
        self.dir.join(&self.config.server.data_dir)
    }

    /// The source events are taken to come from when none is named: the first one.
    pub fn default_source(&self) -> &str {
        self.config
            .sources
            .first()
            .map(|s| s.name.as_str())
            .unwrap_or_default()
    }
}

/// Loads and checks a config file, and compiles every destination. On failure, every error found.
pub fn load(path: &Path) -> Result<Loaded, Vec<Diagnostic>> {
    let doc = load_file::<Config>(path, config_schema())?;
    let config = doc.value;
    let placer = doc.placer;
    let mut errors = check_names(&config, &placer);
    let mut warnings = Vec::new();
    let dir = path.parent().unwrap_or(Path::new("."));
    for (i, source) in config.sources.iter().enumerate() {
        if let Some(key) = source.write_key.as_ref().filter(|k| !k.is_set()) {
            warnings.push(
                placer
                    .place(
                        &format!("/sources/{i}/write_key"),
                        format!(
                            "the environment variable {} is not set: `serve` refuses this source's requests",
                            key.var()
                        ),
                    )
                    .warning(),
            );
        }
    }
    let mut destinations: Vec<Box<dyn Destination>> = Vec::new();
    for (i, dest) in config.destinations.iter().enumerate() {
        let at = Pointer::root().key("destinations").index(i);
        match dest {
            DestinationConfig::Tiktok(cfg) => {
                if !cfg.access_token.is_set() {
                    warnings.push(
                        placer
                            .place(
                                at.key("access_token").as_str(),
                                format!(
                                    "the environment variable {} is not set: needed to send, not for a dry run",
                                    cfg.access_token.var()
                                ),
                            )
                            .warning(),
                    );
                }
                match Tiktok::new((**cfg).clone(), dir, &placer, &at) {
                    Ok(t) => destinations.push(Box::new(t)),
                    Err(e) => errors.extend(e),
                }
            }
        }
    }
    let pipeline = load_pipeline(&config, dir, &placer).unwrap_or_else(|e| {
        errors.extend(e);
        Pipeline::empty(0)
    });
    if !errors.is_empty() {
        errors.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
        return Err(errors);
    }
    Ok(Loaded {
        dir: dir.to_path_buf(),
        router: Router::new(destinations),
        pipeline,
        config,
        warnings,
    })
}

/// Loads every plugin of the config (the config's `transforms`, each destination's `transforms`
/// and `payload_transforms`) on one runtime.
fn load_pipeline(
    config: &Config,
    dir: &Path,
    placer: &Placer,
) -> Result<Pipeline, Vec<Diagnostic>> {
    let commons: Vec<_> = config.destinations.iter().map(|d| d.common()).collect();
    let any = !config.transforms.is_empty()
        || commons
            .iter()
            .any(|c| !c.transforms.is_empty() || !c.payload_transforms.is_empty());
    if !any {
        return Ok(Pipeline::empty(commons.len()));
    }
    let runtime = Runtime::new(Some(Runtime::default_cache_dir()))
        .map_err(|e| vec![placer.place("", format!("cannot start the plugin runtime: {e}"))])?;
    let mut errors = Vec::new();
    let mut stage = |plugins: &[PluginConfig], at: String| {
        load_plugins(&runtime, plugins, dir, placer, &at).unwrap_or_else(|e| {
            errors.extend(e);
            Stage::new(Vec::new())
        })
    };
    let global = stage(&config.transforms, "/transforms".into());
    let destinations = commons
        .iter()
        .enumerate()
        .map(|(i, c)| DestinationStages {
            before: stage(&c.transforms, format!("/destinations/{i}/transforms")),
            after: stage(
                &c.payload_transforms,
                format!("/destinations/{i}/payload_transforms"),
            ),
        })
        .collect();
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Pipeline {
        stage: global,
        destinations,
    })
}

/// Loads a list of plugins declared at `at`: the file exists, is a component of the plugin world,
/// its config matches the plugin's own schema (`<plugin>.schema.json` beside the `.wasm`, when it
/// ships one) and its `init` accepts it.
fn load_plugins(
    runtime: &Runtime,
    plugins: &[PluginConfig],
    dir: &Path,
    placer: &Placer,
    list_at: &str,
) -> Result<Stage, Vec<Diagnostic>> {
    let mut errors = Vec::new();
    let mut loaded = Vec::new();
    for (i, p) in plugins.iter().enumerate() {
        let at = format!("{list_at}/{i}");
        let path = dir.join(&p.path);
        if !path.is_file() {
            errors.push(placer.place(
                &format!("{at}/path"),
                format!("no plugin file at `{}`", path.display()),
            ));
            continue;
        }
        let schema_errors = check_plugin_config(&path, &p.config, placer, &format!("{at}/config"));
        if !schema_errors.is_empty() {
            errors.extend(schema_errors);
            continue;
        }
        match runtime.load_file(&p.name, &path, &p.config, p.limits) {
            Ok(plugin) => loaded.push(plugin),
            Err(e) => {
                let field = if matches!(e, LoadError::Config(_)) {
                    "config"
                } else {
                    "path"
                };
                errors.push(
                    placer.place(&format!("{at}/{field}"), format!("plugin `{}` {e}", p.name)),
                );
            }
        }
    }
    if errors.is_empty() {
        Ok(Stage::new(loaded))
    } else {
        Err(errors)
    }
}

fn check_plugin_config(
    wasm: &Path,
    config: &serde_json::Value,
    placer: &Placer,
    at: &str,
) -> Vec<Diagnostic> {
    let schema_path = wasm.with_extension("schema.json");
    let Ok(text) = std::fs::read_to_string(&schema_path) else {
        return Vec::new();
    };
    let schema = match serde_json::from_str::<serde_json::Value>(&text)
        .map(|s| jsonschema::validator_for(&s))
    {
        Ok(Ok(v)) => v,
        _ => {
            return vec![placer.place(
                at,
                format!(
                    "the plugin's schema `{}` is not a valid JSON Schema",
                    schema_path.display()
                ),
            )];
        }
    };
    schema
        .iter_errors(config)
        .map(|e| {
            placer.place(
                &format!("{at}{}", e.instance_path().as_str()),
                format!("{} (the plugin's schema)", e.masked()),
            )
        })
        .collect()
}

fn check_names(config: &Config, placer: &Placer) -> Vec<Diagnostic> {
    let mut errors = Vec::new();
    let mut sources: HashMap<&str, usize> = HashMap::new();
    for (i, s) in config.sources.iter().enumerate() {
        if let Some(first) = sources.insert(&s.name, i) {
            errors.push(placer.place(
                &format!("/sources/{i}/name"),
                format!(
                    "source `{}` is defined twice (first at sources[{first}])",
                    s.name
                ),
            ));
        }
    }
    let mut names: HashMap<&str, usize> = HashMap::new();
    for (i, d) in config.destinations.iter().enumerate() {
        let common = d.common();
        if let Some(first) = names.insert(&common.name, i) {
            errors.push(placer.place(
                &format!("/destinations/{i}/name"),
                format!(
                    "destination `{}` is defined twice (first at destinations[{first}])",
                    common.name
                ),
            ));
        }
        for (j, s) in common.sources.iter().enumerate() {
            if !sources.contains_key(s.as_str()) {
                let known: Vec<&str> = config.sources.iter().map(|s| s.name.as_str()).collect();
                errors.push(placer.place(
                    &format!("/destinations/{i}/sources/{j}"),
                    format!("no source named `{s}` (sources: {})", known.join(", ")),
                ));
            }
        }
    }
    errors
}
