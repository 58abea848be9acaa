//! The `switchyard` command and the config that ties the engine and the built-in destinations
//! together.
//!
//! - [`config`]: the config file type (every built-in destination type) and its loading.
//! - [`pipeline`]: plugins and mapping over a chunk of events, where each plugin plugs in.
//! - [`commands`]: `validate`, `map`, `schema`, `plugin`.
//! - [`cli`]: argument parsing and dispatch.

pub mod cli;
pub mod commands;
pub mod config;
pub mod pipeline;
