//! Sandboxed WebAssembly transform plugins: the host side.
//!
//! A plugin is a WebAssembly component of the world in `plugins/wit/plugin.wit`. The host compiles
//! it once ([`Runtime::load`]: a shared [`wasmtime::Engine`], compiled artifacts cached on disk by
//! hash, an `InstancePre` for fast instantiation), keeps a pool of warm instances, and runs each
//! call under limits: a time budget (epoch interruption), a memory cap (`StoreLimits`) and an
//! output cap. A trap or an error fails the events of that call only; the instance is thrown away
//! and a fresh one serves the next call.
//!
//! - [`runtime`]: the shared engine, the epoch ticker, the compile cache.
//! - [`plugin`]: one loaded plugin: its pool and its calls.
//! - [`sandbox`]: the store's data: WASI with nothing granted, the log import.
//! - [`stage`]: plugins declared in YAML (see `switchyard_engine::plugin_config`), run in order
//!   over batches of source events or of destination payloads.

pub mod plugin;
pub mod runtime;
pub mod sandbox;
pub mod stage;

pub use plugin::{CallError, Plugin, PluginOutput};
pub use runtime::{LoadError, Runtime};
pub use stage::{Stage, Staged, Stop};
pub use switchyard_engine::plugin_config::{Limits, PluginConfig};

/// Bindings generated from `plugins/wit/plugin.wit`.
pub mod bindings {
    wasmtime::component::bindgen!({
        path: "../../plugins/wit",
        world: "transform",
        additional_derives: [PartialEq, Eq],
    });
}
