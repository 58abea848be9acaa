//! The config file (`switchyard.yaml`): sources, destinations (their types are registered in
//! [`crate::destinations`]), transform plugins and the service's settings. Loading checks the JSON
//! Schema, then what a schema cannot (unique names, known sources, mapping files and rules, plugins,
//! whether secrets are set) and builds every destination.

use crate::destination::Destination;
use crate::destinations::BuildContext;
pub use crate::destinations::DestinationConfig;
use crate::pipeline::Pipeline;
use crate::plugins::ChainLoader;
use ipnet::IpNet;
use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use switchyard_core::event::TimeWindow;
use switchyard_core::load::{
    Diagnostic, FileScope, Placer, Pointer, Schema, check_file, interpolate,
};
use switchyard_core::rules::lint::{dead_paths, misspelled_events};
use switchyard_core::secret::Secret;
use switchyard_wasm::{Chain, PluginConfig};

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
    /// Folders besides the config's own from which mapping and plugin files may be loaded
    /// (relative to the config, or absolute). Paths that leave the config's folder and these are
    /// refused.
    #[serde(default)]
    pub allowed_dirs: Vec<String>,
}

/// Settings of `switchyard serve` (and of `replay`, which uses the same queue and delivery).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address and port to listen on.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// The durable queue and dead letters live here (relative to the config file), when the
    /// queue is the embedded one.
    #[serde(default = "default_data_dir")]
    pub data_dir: String,
    /// Which queue holds accepted events and dead letters: the embedded one (`kind: redb`, the
    /// default: one node) or NATS JetStream (`kind: nats`: several nodes share it).
    #[serde(default)]
    pub queue: QueueConfig,
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
    /// queued again (0: no de-duplication, except of repeats within one request).
    #[serde(default = "default_dedup")]
    pub dedup_window_secs: u64,
    /// At most this many ids are kept for de-duplication; past it, the oldest are forgotten
    /// first (a repeat of a forgotten id is queued again).
    #[serde(default = "default_dedup_ids")]
    #[schemars(range(min = 1))]
    pub dedup_max_ids: usize,
    /// At most this much memory, in MiB, holds the ids kept for de-duplication (each counts its
    /// source's name, its `event_id` and 160 bytes of bookkeeping); past it, the oldest are
    /// forgotten first.
    #[serde(default = "default_dedup_mib")]
    #[schemars(range(min = 1))]
    pub dedup_max_mib: usize,
    /// How long delivery waits for a batch to fill before it sends what it has, in milliseconds.
    #[serde(default = "default_linger")]
    #[schemars(range(max = 60000))]
    pub linger_ms: u64,
    /// Events taken from the queue per delivery round.
    #[serde(default = "default_round")]
    #[schemars(range(min = 1, max = 100000))]
    pub round_events: usize,
    /// On shutdown, how long to wait for the requests in flight (then they are closed), and
    /// then how long to keep delivering what is queued before exiting (the rest stays queued for
    /// the next start), in milliseconds each.
    #[serde(default = "default_drain")]
    pub shutdown_timeout_ms: u64,
    /// How long a client may take to send a request's headers, and to pause inside its body, in
    /// milliseconds; past it the connection is closed (headers) or the request refused (body), so
    /// that a stalled or hostile client holds neither a connection nor the shutdown. It is also
    /// how long a keep-alive connection may stay idle: the default is above the 90 s for which
    /// common clients' pools (Go's, reqwest's) keep one, so that they close it first.
    #[serde(default = "default_read_timeout")]
    #[schemars(range(min = 100, max = 600000))]
    pub read_timeout_ms: u64,
    /// How long a client may take to send a request's whole body, in milliseconds, however
    /// steadily it sends: past it the request is refused (`408`), so that a client trickling
    /// its body within `read_timeout_ms` holds its connection no longer than this.
    #[serde(default = "default_body_timeout")]
    #[schemars(range(min = 100, max = 3600000))]
    pub body_timeout_ms: u64,
    /// At most this many client connections are served at once; further clients wait (in the
    /// system's queue of pending connections) until one closes, so that many idle or slow
    /// clients cannot take every file descriptor.
    #[serde(default = "default_max_connections")]
    #[schemars(range(min = 1, max = 1000000))]
    pub max_connections: usize,
    /// Events whose `timestamp` is more than this many hours before they are received are refused
    /// (400). TikTok attributes conversions up to 28 days after the click, so older events are of
    /// no use to it.
    #[serde(default = "default_max_age")]
    #[schemars(range(min = 1, max = 8760))]
    pub max_event_age_hours: u64,
    /// Events whose `timestamp` is more than this many seconds after they are received (a clock
    /// running ahead) are refused (400).
    #[serde(default = "default_max_ahead")]
    #[schemars(range(max = 86400))]
    pub max_event_ahead_secs: u64,
    /// Proxies (addresses or CIDR ranges, e.g. `10.0.0.0/8`) whose `X-Forwarded-For` header is
    /// believed for the visitor's address on `/v1/collect`. Empty (the default): the header is
    /// ignored and the connection's address is the visitor's.
    #[serde(default)]
    pub trusted_proxies: Vec<TrustedProxy>,
    /// The admin API (`/admin/*`: dead letters, destinations on and off, the journal of recent
    /// events, the live tap, reload) and the web console (`/console`). Off unless set; every
    /// request needs its token (docs/operations.md).
    #[serde(default)]
    pub admin: Option<AdminConfig>,
}

/// `server.admin`: the admin API and the web console.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// The token every admin request carries (`Authorization: Bearer TOKEN`, or the console's
    /// cookie), as `${ENV_VAR}`. Never logged or shown.
    pub token: Secret,
    /// Serve the web console at `/console` (behind the same token).
    #[serde(default = "default_true")]
    pub console: bool,
    /// How many recent events the journal keeps in memory for `GET /admin/events` (the oldest are
    /// forgotten first; 0: no journal, the live tap still works).
    #[serde(default = "default_journal")]
    #[schemars(range(max = 100000))]
    pub journal_events: usize,
}

fn default_true() -> bool {
    true
}
fn default_journal() -> usize {
    1000
}

/// An address range (CIDR, or one address) whose `X-Forwarded-For` header is believed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct TrustedProxy(pub IpNet);

impl JsonSchema for TrustedProxy {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "TrustedProxy".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "An IP address or CIDR range, e.g. `10.0.0.0/8` or `::1`.",
        })
    }
}

impl TryFrom<String> for TrustedProxy {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        text.parse::<IpNet>()
            .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
            .map(Self)
            .map_err(|_| {
                format!("`{text}` is not an IP address or CIDR range (e.g. 10.0.0.0/8, ::1)")
            })
    }
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
fn default_dedup_ids() -> usize {
    1_000_000
}
fn default_dedup_mib() -> usize {
    128
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
fn default_read_timeout() -> u64 {
    120_000
}
fn default_body_timeout() -> u64 {
    60_000
}
fn default_max_connections() -> usize {
    4096
}
fn default_max_age() -> u64 {
    28 * 24
}
fn default_max_ahead() -> u64 {
    600
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            data_dir: default_data_dir(),
            queue: QueueConfig::default(),
            queue_budget_mib: default_budget(),
            max_body_kib: default_body(),
            dedup_window_secs: default_dedup(),
            dedup_max_ids: default_dedup_ids(),
            dedup_max_mib: default_dedup_mib(),
            linger_ms: default_linger(),
            round_events: default_round(),
            shutdown_timeout_ms: default_drain(),
            read_timeout_ms: default_read_timeout(),
            body_timeout_ms: default_body_timeout(),
            max_connections: default_max_connections(),
            max_event_age_hours: default_max_age(),
            max_event_ahead_secs: default_max_ahead(),
            trusted_proxies: Vec::new(),
            admin: None,
        }
    }
}

impl ServerConfig {
    /// How far from the time it is received an event's time may be.
    pub fn time_window(&self) -> TimeWindow {
        let secs = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        TimeWindow {
            max_age_secs: secs(self.max_event_age_hours.saturating_mul(3600)),
            max_ahead_secs: secs(self.max_event_ahead_secs),
        }
    }
}

/// The queue backend of `server.queue`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum QueueConfig {
    /// The embedded queue: a redb file in `data_dir`, for one node.
    #[default]
    Redb,
    /// NATS JetStream, shared by every node that names the same server and stream
    /// (docs/scaling.md).
    Nats(NatsQueueConfig),
}

impl QueueConfig {
    /// How many delivery nodes share each destination's rate limit (1 for the embedded queue).
    pub fn nodes(&self) -> u32 {
        match self {
            QueueConfig::Redb => 1,
            QueueConfig::Nats(nats) => nats.nodes,
        }
    }
}

/// `server.queue` with `kind: nats`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NatsQueueConfig {
    /// The NATS server(s) to connect to, e.g. `nats://127.0.0.1:4222` (several separated by
    /// commas). JetStream must be enabled on them (nats-server 2.9 or later).
    #[serde(default = "default_nats_url")]
    #[schemars(length(min = 1))]
    pub url: String,
    /// The events stream's name: 1 to 32 letters, digits, `_` or `-` (the dead letters go to
    /// `<stream>_DEAD`). Nodes naming the same stream share the work.
    #[serde(default = "default_nats_stream")]
    #[schemars(regex(pattern = r"^[A-Za-z0-9_-]{1,32}$"))]
    pub stream: String,
    /// Copies of each stream kept in the NATS cluster (1, 3 or 5); ingestion answers 202 once
    /// they have stored the event.
    #[serde(default = "default_nats_replicas")]
    #[schemars(range(min = 1, max = 5))]
    pub replicas: usize,
    /// Seconds a node may hold an event without news before JetStream hands it to another node
    /// (a node that died). Nodes working on events extend this every third of it.
    #[serde(default = "default_nats_ack_wait")]
    #[schemars(range(min = 1, max = 3600))]
    pub ack_wait_secs: u64,
    /// Events handed out to delivery and not yet acknowledged, over all nodes, at most.
    #[serde(default = "default_nats_ack_pending")]
    #[schemars(range(min = 1))]
    pub max_ack_pending: i64,
    /// How many nodes deliver: each sends at most `max_requests_per_second / nodes` requests
    /// per second to each destination, so that together they stay under the platform's limit.
    #[serde(default = "default_nats_nodes")]
    #[schemars(range(min = 1, max = 1000))]
    pub nodes: u32,
    /// How long a write waits for the server's answer before ingestion answers 503, in
    /// milliseconds.
    #[serde(default = "default_nats_timeout")]
    #[schemars(range(min = 100, max = 60000))]
    pub timeout_ms: u64,
}

fn default_nats_url() -> String {
    "nats://127.0.0.1:4222".into()
}
fn default_nats_stream() -> String {
    "SWITCHYARD".into()
}
fn default_nats_replicas() -> usize {
    1
}
fn default_nats_ack_wait() -> u64 {
    30
}
fn default_nats_ack_pending() -> i64 {
    100_000
}
fn default_nats_nodes() -> u32 {
    1
}
fn default_nats_timeout() -> u64 {
    5000
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
    /// Only these events (`event_name`s) are taken from this source; any other is refused, with
    /// the reason. For a browser source, whose public key anyone can read, list what the pages
    /// track, so that no one can send orders with it. Default: every event.
    #[serde(default)]
    #[schemars(length(min = 1))]
    pub events: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// The browser script (camelCase fields accepted).
    Browser,
    /// A server webhook (raw JSON bodies).
    Webhook,
}

/// The JSON Schema of config files (generated from [`Config`]), compiled once.
pub fn config_schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| Schema::of::<Config>("config"))
}

/// A loaded, checked config, compiled and ready to route events.
pub struct Loaded {
    /// The config file (reloads read it again).
    pub path: std::path::PathBuf,
    /// The folder of the config file (relative paths in it are relative to this).
    pub dir: std::path::PathBuf,
    pub config: Config,
    /// Every destination, built, with every plugin where it plugs in.
    pub pipeline: Pipeline,
    /// Findings that do not stop loading (e.g. an access token whose variable is not set).
    pub warnings: Vec<Diagnostic>,
}

impl Loaded {
    /// The data directory of `serve` and `replay`.
    pub fn data_dir(&self) -> std::path::PathBuf {
        self.dir.join(&self.config.server.data_dir)
    }

    /// The source events are taken to come from when none is named: the first one (the schema
    /// requires at least one).
    pub fn default_source(&self) -> Option<&str> {
        self.config.sources.first().map(|s| s.name.as_str())
    }

    /// The names of the config's sources, in order.
    pub fn source_names(&self) -> Vec<&str> {
        self.config
            .sources
            .iter()
            .map(|s| s.name.as_str())
            .collect()
    }
}

/// Loads and checks a config file, and builds every destination. On failure, every error found.
///
/// One pass: after errors in the file itself (schema), the later checks (names, mapping files,
/// rules, plugins) still run on what could be read, their knock-ons dropped.
pub fn load(path: &Path) -> Result<Loaded, Vec<Diagnostic>> {
    let checked = check_file::<Config>(path, config_schema());
    let Some(doc) = checked.document else {
        return Err(checked.errors);
    };
    let (config, placer) = (doc.value, doc.placer);
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut errors = check_names(&config, &placer);
    errors.extend(check_server(&config.server, &placer));
    errors.extend(unsendable_secrets(&config, &placer));
    let mut warnings = unset_secrets(&config, &placer);
    // A plugin's `config` is the plugin's to read, not rules.
    warnings.extend(
        dead_paths(&doc.raw, &["config"])
            .into_iter()
            .map(|d| placer.place(&d.pointer, d.message).warning()),
    );
    warnings.extend(
        misspelled_events(&doc.raw, &["config"])
            .into_iter()
            .map(|d| placer.place(&d.pointer, d.message).warning()),
    );
    let secret_variables = interpolate::secret_variables(&doc.raw, &config_schema().secret_keys);
    let files = FileScope::new(dir, &config.allowed_dirs).with_secret_variables(secret_variables);
    let mut chains = ChainLoader::new(&files, &placer);
    let transforms = chains.load(&config.transforms, "/transforms");
    let mut destinations = Vec::with_capacity(config.destinations.len());
    for (i, dest) in config.destinations.iter().enumerate() {
        match build_destination(dest, i, &files, &placer, &mut chains) {
            Ok((d, found)) => {
                destinations.push(Arc::new(d));
                warnings.extend(found);
            }
            Err(e) => errors.extend(e),
        }
    }
    warnings.append(&mut chains.warnings);
    let transforms = transforms.unwrap_or_else(|e| {
        errors.extend(e);
        Chain::new(Vec::new())
    });
    let mut errors = placer.drop_knock_ons(errors);
    errors.extend(checked.errors);
    if errors.iter().any(Diagnostic::is_error) {
        // Said with the errors (a misspelled name may be why something is wrong), but for a
        // warning at an error's own place, which would only say it again.
        let at = |d: &Diagnostic| (d.file.clone(), d.line, d.column);
        let placed: Vec<_> = errors.iter().map(at).collect();
        errors.extend(warnings.into_iter().filter(|w| !placed.contains(&at(w))));
        errors.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
        return Err(errors);
    }
    Ok(Loaded {
        path: path.to_path_buf(),
        dir: dir.to_path_buf(),
        pipeline: Pipeline::new(transforms, destinations),
        config,
        warnings,
    })
}

/// Builds destination `i`: its plugin, then its plugin chains (every error of both); with the
/// destination, its warnings.
fn build_destination(
    config: &DestinationConfig,
    i: usize,
    files: &FileScope,
    placer: &Placer,
    chains: &mut ChainLoader<'_>,
) -> Result<(Destination, Vec<Diagnostic>), Vec<Diagnostic>> {
    let at = Pointer::root().key("destinations").index(i);
    let common = config.common();
    let plugin = config.build(&BuildContext {
        files,
        placer,
        at: &at,
    });
    let transforms = chains.load(&common.transforms, at.key("transforms").as_str());
    let payload_transforms = chains.load(
        &common.payload_transforms,
        at.key("payload_transforms").as_str(),
    );
    match (plugin, transforms, payload_transforms) {
        (Ok(built), Ok(transforms), Ok(payload_transforms)) => Ok((
            Destination::new(
                built.plugin,
                transforms,
                payload_transforms,
                common.delivery,
            ),
            built.warnings,
        )),
        (plugin, transforms, payload_transforms) => Err(plugin
            .err()
            .into_iter()
            .chain(transforms.err())
            .chain(payload_transforms.err())
            .flatten()
            .collect()),
    }
}

/// Warnings for secrets whose variable is not set: sources' write keys, destinations' secrets.
fn unset_secrets(config: &Config, placer: &Placer) -> Vec<Diagnostic> {
    let mut warnings = Vec::new();
    for (i, source) in config.sources.iter().enumerate() {
        if let Some(key) = source.write_key.as_ref().filter(|k| !k.is_set()) {
            let message = format!(
                "the environment variable {} is not set (or only blank): `serve` refuses this source's requests",
                key.var()
            );
            let at = format!("/sources/{i}/write_key");
            warnings.push(placer.place(&at, message).warning());
        }
    }
    if let Some(token) = config.server.admin.as_ref().map(|a| &a.token)
        && !token.is_set()
    {
        let message = format!(
            "the environment variable {} is not set (or only blank): `serve` cannot start with the admin API on",
            token.var()
        );
        warnings.push(placer.place("/server/admin/token", message).warning());
    }
    for (i, dest) in config.destinations.iter().enumerate() {
        for (field, secret) in dest.secrets().into_iter().filter(|(_, s)| !s.is_set()) {
            let message = format!(
                "the environment variable {} is not set (or only blank): needed to send, not for a dry run",
                secret.var()
            );
            let at = format!("/destinations/{i}/{field}");
            warnings.push(placer.place(&at, message).warning());
        }
    }
    warnings
}

/// What the schema cannot check of `server`: an address to listen on, a body limit within the
/// queue budget (else a largest request could never be stored).
fn check_server(server: &ServerConfig, placer: &Placer) -> Vec<Diagnostic> {
    let mut errors = Vec::new();
    if !is_listen_address(&server.listen) {
        errors.push(placer.place(
            "/server/listen",
            format!(
                "`{}` is not an address to listen on: give host:port (e.g. 127.0.0.1:8080, [::]:8080, localhost:8080)",
                server.listen
            ),
        ));
    }
    let body = (server.max_body_kib as u64).saturating_mul(1 << 10);
    let budget = server.queue_budget_mib.saturating_mul(1 << 20);
    if body > budget {
        errors.push(placer.place(
            "/server/max_body_kib",
            format!(
                "a request body of up to {} KiB could never fit in the queue budget of {} MiB \
                 (server.queue_budget_mib): lower this or raise the budget",
                server.max_body_kib, server.queue_budget_mib
            ),
        ));
    }
    errors
}

/// `host:port` with a port number, or a socket address.
fn is_listen_address(listen: &str) -> bool {
    if listen.parse::<std::net::SocketAddr>().is_ok() {
        return true;
    }
    matches!(listen.rsplit_once(':'), Some((host, port))
        if !host.is_empty() && !host.contains(char::is_whitespace) && port.parse::<u16>().is_ok())
}

/// Errors for secrets whose value no HTTP header can carry (a line break pasted with a token):
/// every request would fail, so the config is refused. The value is never shown.
fn unsendable_secrets(config: &Config, placer: &Placer) -> Vec<Diagnostic> {
    let sources = config
        .sources
        .iter()
        .enumerate()
        .filter_map(|(i, s)| Some((format!("/sources/{i}/write_key"), s.write_key.as_ref()?)));
    let destinations = config.destinations.iter().enumerate().flat_map(|(i, d)| {
        d.secrets()
            .into_iter()
            .map(move |(field, secret)| (format!("/destinations/{i}/{field}"), secret))
    });
    let admin = config
        .server
        .admin
        .iter()
        .map(|a| ("/server/admin/token".to_owned(), &a.token));
    sources
        .chain(destinations)
        .chain(admin)
        .filter_map(|(at, secret)| {
            let byte = secret.control_character_at()?;
            let message = format!(
                "the environment variable {} holds a control character (a line break?) at byte \
                 {byte}; an HTTP header cannot carry it: set it without one",
                secret.var()
            );
            Some(placer.place(&at, message))
        })
        .collect()
}

/// The longest name a source or destination may have, in bytes.
pub const MAX_NAME_BYTES: usize = 64;

/// Why `name` cannot name a source or destination (it stands in URLs, metric labels, logs and
/// one-line messages), if it cannot.
fn name_problem(name: &str) -> Option<String> {
    if name.trim().is_empty() {
        return Some("a name must not be empty".to_owned());
    }
    if name.len() > MAX_NAME_BYTES {
        return Some(format!(
            "a name is at most {MAX_NAME_BYTES} bytes long, found {}",
            name.len()
        ));
    }
    if name.chars().any(|c| c.is_control() || c == '/') {
        return Some("a name must not hold `/` or control characters (such as a tab)".to_owned());
    }
    None
}

fn check_names(config: &Config, placer: &Placer) -> Vec<Diagnostic> {
    let mut errors = Vec::new();
    let named = config
        .sources
        .iter()
        .enumerate()
        .map(|(i, s)| (format!("/sources/{i}/name"), &s.name));
    let destinations = config.destinations.iter().enumerate();
    let named = named
        .chain(destinations.map(|(i, d)| (format!("/destinations/{i}/name"), &d.common().name)));
    for (at, name) in named {
        if let Some(problem) = name_problem(name) {
            errors.push(placer.place(&at, problem));
        }
    }
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
                let hint = switchyard_core::load::did_you_mean(s, &known);
                errors.push(placer.place(
                    &format!("/destinations/{i}/sources/{j}"),
                    format!("no source named `{s}`; {hint}sources: {}", known.join(", ")),
                ));
            }
        }
    }
    errors
}
