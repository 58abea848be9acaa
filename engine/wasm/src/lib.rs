//! Sandboxed WebAssembly transform plugins: the host side.
//!
//! A plugin is a WebAssembly component of the world in `wit/plugin.wit` (this crate's; the guest
//! SDK ships a copy). The host compiles it once ([`Runtime::load`]: a shared [`wasmtime::Engine`],
//! compiled artifacts cached in a private folder, an `InstancePre` for fast instantiation), keeps a
//! pool of warm instances, and runs each call under limits: a time budget (epoch interruption), a
//! memory cap (`StoreLimits`) and an output cap. A trapped instance is thrown away and a fresh one
//! serves the next call; a batch whose call trapped is run again one event at a time, so only the
//! events the plugin fails on fail ([`batch`]).
//!
//! - [`runtime`]: the shared engine and loading; [`epoch`]: the clock of the time budgets;
//!   [`cache`]: the private disk cache of compiled plugins.
//! - [`plugin`]: one loaded plugin: its pool and its calls; [`error`]: what can go wrong.
//! - [`batch`]: a batch through one plugin, with the second pass after a failed call.
//! - [`sandbox`]: the store's data: WASI with nothing granted, the log import.
//! - [`tester`]: one plugin over NDJSON, for `switchyard plugin test`.
//! - [`chain`]: plugins declared in YAML (see `switchyard_core::plugin_config`), run in order
//!   over batches of source events or of destination payloads.

pub mod batch;
pub mod cache;
pub mod chain;
pub mod epoch;
pub mod error;
pub mod plugin;
pub mod runtime;
pub mod sandbox;
pub mod tester;

pub use batch::{BatchOutput, BatchResults, EventFailure, MAX_CONSECUTIVE_FAILURES};
pub use cache::{CacheError, CompileCache};
pub use chain::{Chain, Halt, Transformed};
pub use error::{CallError, LoadError};
pub use plugin::{Plugin, PluginOutput};
pub use runtime::Runtime;
pub use switchyard_core::plugin_config::{Limits, PluginConfig};

/// The plugin contract (`wit/plugin.wit`), as text: what the guest SDK's copy must equal.
pub const WIT: &str = include_str!("../wit/plugin.wit");

/// Bindings generated from `wit/plugin.wit`.
pub mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "transform",
        additional_derives: [PartialEq, Eq],
    });
}
