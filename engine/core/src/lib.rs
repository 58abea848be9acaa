//! Switchyard's engine core: what a dry run needs, with no I/O beyond reading files: the event
//! spec, loading and checking YAML files, the rule language and its compiler, the destination plugin
//! trait and the router. Everything else (the plugin host, the queue, the service) builds on it.
//!
//! - [`event`]: the source event spec: parsing, validation, normalisation.
//! - [`load`]: loading YAML files against their JSON Schema, with file:line diagnostics.
//! - [`rules`]: the rule language (mappings, fields, transforms, conditions) and its compiler.
//! - [`destination`]: what every destination shares (status, sources, filters, consent) and the
//!   [`destination::DestinationPlugin`] trait that built-in plugins implement.
//! - [`plugin_config`]: how WebAssembly plugins are declared in YAML (file, config, limits).
//! - [`router`]: runs one event through one destination plugin and reports the outcome.
//! - [`json_text`]: payloads and outcomes written as JSON text, faster than serde_json's writer;
//!   [`json_unique`]: JSON read with every object's keys checked for repeats; [`json_field`]: one
//!   top-level field rewritten in an object's text.
//! - [`secret`]: secrets written as `${ENV_VAR}`, never printed; [`report`]: errors in words.

pub mod destination;
pub mod event;
pub mod json_field;
pub mod json_text;
pub mod json_unique;
pub mod load;
pub mod plugin_config;
pub mod report;
pub mod router;
pub mod rules;
pub mod secret;
pub mod text;
