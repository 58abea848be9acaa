//! Switchyard's service: everything between a config file and the destinations, for every
//! command that runs events (the dry run, `serve`, `replay`, dead letters). The `switchyard`
//! binary is a thin shell over it.
//!
//! - [`config`]: the config file, checked and built into a [`config::Loaded`];
//!   [`destinations`]: the built-in destination types (the one place that names them);
//!   [`destination`]: one destination as one built object; [`plugins`]: loading transform plugins.
//! - [`pipeline`]: plugins and mappings over a chunk of events, where each plugin plugs in.
//! - [`dry_run`]: `map`: NDJSON in, one line per event out, nothing sent; [`mapping_tests`]:
//!   `switchyard test`, unit tests of mappings run through the dry run.
//! - [`backend`]: the queue the config names (embedded redb, or NATS JetStream for several nodes).
//! - [`admin`]: the admin API of a running service (destinations, dead letters);
//!   [`dead_letters`]: the dead letters of a queue, for the commands and the admin API;
//!   [`observe`]: each event's journey, for the admin API's journal and live tap.
//! - [`serve`]: HTTP ingestion into the durable queue; [`delivery`]: from the queue to the
//!   destinations, with retries and dead letters; [`handoff`]: the events ingestion parsed, handed
//!   to delivery's planner so that it does not parse them again; [`replay`]: a file or the dead
//!   letters through delivery; [`metrics`]: what they count; [`clock`]: the wall clock they record.
//! - [`console`]: the web console at `/console` and the mapping preview (`POST /admin/preview`),
//!   behind the admin token.

pub mod admin;
pub mod backend;
pub mod clock;
pub mod config;
pub mod console;
pub mod dead_letters;
pub mod delivery;
pub mod destination;
pub mod destinations;
pub mod dry_run;
pub mod handoff;
pub mod mapping_tests;
pub mod metrics;
pub mod observe;
pub mod pipeline;
pub mod plugins;
pub mod replay;
pub mod serve;
