//! The `switchyard` command and the config that ties the engine and the built-in destinations
//! together.
//!
//! - [`config`]: the config file type (every built-in destination type) and its loading.
//! - [`commands`]: `validate`, `map`, `schema`.
//! - [`cli`]: argument parsing and dispatch.

pub mod cli;
pub mod commands;
pub mod config;
