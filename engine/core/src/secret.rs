//! Secrets in config files: written as `${ENV_VAR}` references, resolved from the environment, and
//! never printed. The only way to the value is [`Secret::expose`].

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer};
use std::fmt;

/// A secret given in config as `${ENV_VAR}`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    var: String,
    value: Option<String>,
}

const PATTERN: &str = r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$";

impl Secret {
    /// Parses `${VAR}` and reads VAR from the environment (empty or blank counts as unset: no
    /// platform takes a token of spaces).
    pub fn from_reference(reference: &str) -> Option<Self> {
        let var = reference.strip_prefix("${")?.strip_suffix('}')?;
        let valid = var.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return None;
        }
        let value = std::env::var(var).ok().filter(|v| !v.trim().is_empty());
        Some(Self {
            var: var.to_owned(),
            value,
        })
    }

    /// The name of the environment variable.
    pub fn var(&self) -> &str {
        &self.var
    }

    /// Whether the variable was set.
    pub fn is_set(&self) -> bool {
        self.value.is_some()
    }

    /// Where the value holds a control character (a line break, say), which no HTTP header can
    /// carry: the byte offset, never the value.
    pub fn control_character_at(&self) -> Option<usize> {
        self.value
            .as_deref()?
            .char_indices()
            .find(|(_, c)| c.is_control() && *c != '\t')
            .map(|(i, _)| i)
    }

    /// The secret itself, for the one place that sends it (an HTTP header).
    pub fn expose(&self) -> Option<&str> {
        self.value.as_deref()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(${{{}}}: redacted)", self.var)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Secret::from_reference(&s).ok_or_else(|| {
            serde::de::Error::custom(
                "a secret must be written as ${ENV_VAR} and set in the environment",
            )
        })
    }
}

impl JsonSchema for Secret {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Secret".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": PATTERN,
            "description": "A reference to an environment variable, `${NAME}`. Secrets never live in config files.",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        // SAFETY: tests in this module are the only users of this variable.
        #[allow(unsafe_code)]
        unsafe {
            std::env::set_var("SWITCHYARD_TEST_SECRET", "hunter2")
        };
        let s = Secret::from_reference("${SWITCHYARD_TEST_SECRET}").unwrap();
        assert_eq!(s.expose(), Some("hunter2"));
        assert!(!format!("{s:?}").contains("hunter2"));
        assert!(Secret::from_reference("hunter2").is_none());
        assert!(Secret::from_reference("${1BAD}").is_none());
        assert!(
            !Secret::from_reference("${SWITCHYARD_SURELY_UNSET_VAR}")
                .unwrap()
                .is_set()
        );
    }
}
