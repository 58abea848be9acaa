//! The rule language: YAML mapping files ([`spec`]) compiled once at load ([`compile`]) into plans
//! that turn a source event into destination payloads with no parsing per event.
//!
//! - [`spec`]: the language as written (serde + JSON Schema types).
//! - [`path`]: JSONPath, compiled.
//! - [`resolve`]: the plain paths of a group of rows, looked up in one pass per event.
//! - [`condition`]: `when` conditions and filters, compiled.
//! - [`transform`]: the built-in transforms.
//! - [`phone`]: phone numbers to E.164 (the `e164` transform).
//! - [`fields`]: payload field plans.
//! - [`field_types`]: the JSON types a platform takes at its fields, checked where they are built.
//! - [`warning`]: a warning about one payload field, reported beside the payload.
//! - [`payload`]: the payload built per event, borrowing from the event and the plan.
//! - [`compile`]: mapping files and rows into a [`compile::CompiledMapping`].
//! - [`lint`]: paths that can never match (warnings at load).

pub mod compile;
pub mod condition;
pub mod field_types;
pub mod fields;
pub mod lint;
pub mod path;
pub mod payload;
pub mod phone;
pub mod resolve;
pub mod spec;
pub mod transform;
pub mod warning;

pub use crate::load::{CompileError, Pointer};

/// The JSON Schema of mapping files (generated from [`spec::MappingFile`]), compiled once.
pub fn mapping_schema() -> &'static crate::load::Schema {
    static SCHEMA: std::sync::OnceLock<crate::load::Schema> = std::sync::OnceLock::new();
    SCHEMA.get_or_init(|| crate::load::Schema::of::<spec::MappingFile>("mapping"))
}
