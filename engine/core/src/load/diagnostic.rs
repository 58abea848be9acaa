//! A diagnostic: one problem in one file, with its line, column and JSON path, ready to print.

use super::pointer::{Token, tokens};
use std::fmt;
use std::path::{Path, PathBuf};

/// One problem found while loading a config or rule file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    /// 1-based line; 0 when the problem has no place in the file (e.g. it cannot be read).
    pub line: usize,
    /// 1-based column; 0 when unknown.
    pub column: usize,
    /// Where in the document, as a JSON path (`$.destinations[0].pixel_id`).
    pub path: String,
    pub message: String,
    pub severity: Severity,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

impl Diagnostic {
    pub fn error(file: &Path, message: impl Into<String>) -> Self {
        Self {
            file: file.to_owned(),
            line: 0,
            column: 0,
            path: "$".to_owned(),
            message: message.into(),
            severity: Severity::Error,
        }
    }

    pub fn at(mut self, line: usize, column: usize) -> Self {
        self.line = line;
        self.column = column;
        self
    }

    pub fn with_path(mut self, path: String) -> Self {
        self.path = path;
        self
    }

    pub fn warning(mut self) -> Self {
        self.severity = Severity::Warning;
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        let kind = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, ": {kind}: {}: {}", self.path, self.message)
    }
}

/// Turns a JSON pointer (`/destinations/0/pixel_id`) into a JSON path (`$.destinations[0].pixel_id`).
pub fn pointer_to_path(pointer: &str) -> String {
    let mut out = String::from("$");
    for token in tokens(pointer) {
        match token {
            Token::Index(i) => {
                out.push('[');
                out.push_str(&i);
                out.push(']');
            }
            Token::Key(key)
                if !key.is_empty()
                    && key
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') =>
            {
                out.push('.');
                out.push_str(&key);
            }
            Token::Key(key) => {
                out.push_str("['");
                out.push_str(&key.replace('\'', "\\'"));
                out.push_str("']");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_become_readable_paths() {
        assert_eq!(
            pointer_to_path("/destinations/0/pixel_id"),
            "$.destinations[0].pixel_id"
        );
        assert_eq!(
            pointer_to_path("/rows/2/fields/user.email"),
            "$.rows[2].fields['user.email']"
        );
        assert_eq!(pointer_to_path(""), "$");
        assert_eq!(pointer_to_path("/a~1b"), "$['a/b']");
    }

    #[test]
    fn display_names_file_line_and_path() {
        let d = Diagnostic::error(Path::new("c.yaml"), "expected x")
            .at(3, 5)
            .with_path("$.a".into());
        assert_eq!(d.to_string(), "c.yaml:3:5: error: $.a: expected x");
    }
}
