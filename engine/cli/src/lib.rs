//! The `switchyard` command: argument parsing ([`cli`]) and one module per subcommand
//! ([`commands`]) that opens what the command reads and writes and calls the libraries that do the
//! work: `switchyard-service` (config, dry run, serve, delivery, replay), `switchyard-wasm`
//! (plugins); [`logging`] sets up `tracing`; [`admin_client`] talks to a running service's admin API. A library too, so that tests run the command in
//! process.

pub mod admin_client;
pub mod cli;
pub mod commands;
pub mod logging;
