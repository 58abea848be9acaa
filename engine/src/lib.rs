//! Switchyard's host engine.
//!
//! - [`event`]: the source event spec: parsing, validation, normalisation.
//! - [`load`]: loading YAML files against their JSON Schema, with file:line diagnostics.
//! - [`rules`]: the rule language (mappings, fields, transforms, conditions) and its compiler.
//! - [`destination`]: what every destination shares (status, sources, filters, consent) and the
//!   [`destination::Destination`] trait that built-in plugins implement.
//! - [`plugin_config`]: how WebAssembly plugins are declared in YAML (file, config, limits).
//! - [`router`]: runs one event through every destination and reports each outcome.

pub mod destination;
pub mod event;
pub mod load;
pub mod plugin_config;
pub mod router;
pub mod rules;
pub mod secret;
