//! How a WebAssembly plugin is declared in YAML: its file, its own config and the limits of one
//! call. The host that runs plugins (`switchyard-wasm`) reads these; the engine only carries them.

use schemars::JsonSchema;
use serde::Deserialize;

/// A plugin as declared in YAML.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    /// A name for messages and logs.
    #[schemars(length(min = 1))]
    pub name: String,
    /// The plugin's `.wasm` file (a component of `engine/wasm/wit/plugin.wit`), relative to the config.
    pub path: String,
    /// The plugin's own config, handed to its `init` as JSON.
    #[serde(default = "empty_object")]
    pub config: serde_json::Value,
    /// What one call may use.
    #[serde(default)]
    pub limits: Limits,
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(Default::default())
}

/// What one call of a plugin may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Wall-clock budget of one call (a batch counts as one call), in milliseconds.
    #[serde(default = "default_time_ms")]
    #[schemars(range(min = 1, max = 60000))]
    pub time_ms: u64,
    /// Linear memory the plugin may grow to, in MiB.
    #[serde(default = "default_memory_mib")]
    #[schemars(range(min = 1, max = 1024))]
    pub memory_mib: u64,
    /// Total size of the events one call may return, in KiB.
    #[serde(default = "default_output_kib")]
    #[schemars(range(min = 1, max = 1048576))]
    pub output_kib: u64,
}

fn default_time_ms() -> u64 {
    100
}
fn default_memory_mib() -> u64 {
    64
}
fn default_output_kib() -> u64 {
    4096
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            time_ms: default_time_ms(),
            memory_mib: default_memory_mib(),
            output_kib: default_output_kib(),
        }
    }
}
