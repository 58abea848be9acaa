//! The rule language: YAML mapping files ([`spec`]) compiled once at load ([`compile`]) into plans
//! that turn a source event into destination payloads with no parsing per event.
//!
//! - [`spec`]: the language as written (serde + JSON Schema types).
//! - [`path`]: JSONPath, compiled.
//! - [`condition`]: `when` conditions and filters, compiled.
//! - [`transform`]: the built-in transforms.
//! - [`fields`]: payload field plans.
//! - [`payload`]: the payload built per event, borrowing from the event and the plan.
//! - [`compile`]: mapping files and rows into a [`compile::CompiledMapping`].

pub mod compile;
pub mod condition;
pub mod fields;
pub mod path;
pub mod payload;
pub mod spec;
pub mod transform;

/// A problem in a rule, placed by JSON pointer within the file it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileError {
    pub pointer: String,
    pub message: String,
}

/// A JSON pointer under construction, for placing compile errors.
#[derive(Debug, Clone, Default)]
pub struct Pointer(String);

impl Pointer {
    pub fn root() -> Self {
        Self(String::new())
    }

    pub fn new(pointer: &str) -> Self {
        Self(pointer.to_owned())
    }

    pub fn key(&self, key: &str) -> Self {
        Self(format!(
            "{}/{}",
            self.0,
            key.replace('~', "~0").replace('/', "~1")
        ))
    }

    pub fn index(&self, i: usize) -> Self {
        Self(format!("{}/{i}", self.0))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn error(&self, message: impl Into<String>) -> CompileError {
        CompileError {
            pointer: self.0.clone(),
            message: message.into(),
        }
    }
}

/// The JSON Schema of mapping files (generated from [`spec::MappingFile`]), compiled once.
pub fn mapping_schema() -> &'static crate::load::Schema {
    static SCHEMA: std::sync::OnceLock<crate::load::Schema> = std::sync::OnceLock::new();
    SCHEMA.get_or_init(crate::load::Schema::of::<spec::MappingFile>)
}
