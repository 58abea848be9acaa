//! The `switchyard` command and the config that ties the engine and the built-in destinations
//! together.
//!
//! - [`config`]: the config file type (every built-in destination type) and its loading.
//! - [`pipeline`]: plugins and mapping over a chunk of events, where each plugin plugs in.
//! - [`serve`]: the service: HTTP ingestion into the durable queue; [`delivery`]: from the queue to
//!   the destinations, with retries and dead letters; [`metrics`]: what both count.
//! - [`commands`]: `validate`, `map`, `replay`, `dead-letters`, `schema`, `plugin`.
//! - [`cli`]: argument parsing and dispatch.

pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod delivery;
pub mod metrics;
pub mod pipeline;
pub mod serve;
