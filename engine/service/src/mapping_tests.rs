//! Mapping unit tests (`switchyard test`): YAML files of source events and what each destination
//! must make of them, run through the dry run (`map`) of a config, as `vector test` runs its unit
//! tests. An expectation is a subset of the `map` output's `destinations` object (every key given
//! must match; arrays item by item, of the same length) unless the test says `exact: true`.
//!
//! ```yaml
//! config: ../examples/switchyard.yaml     # relative to this file
//! now: 1725300000                         # time received (unix seconds)
//! tests:
//!   - name: a new customer's order is a Purchase and a NewCustomerPurchase
//!     event: { event_name: Placed Order, event_id: o-1, ... }
//!     expect:
//!       tiktok: { status: sent, data: [{ event: Purchase }, { event: NewCustomerPurchase }] }
//! ```

use crate::config::{self, Loaded};
use crate::dry_run::{self, MapOptions, MapOutput};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use switchyard_core::event::received_at_refusal;
use switchyard_core::load::{Diagnostic, Placer, Schema, check_file};

/// A file of mapping unit tests.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TestFile {
    /// The config whose destinations (and their mappings) are tested, relative to this file.
    pub config: String,
    /// The source the events come from (default: the config's first source). A test may name
    /// its own.
    #[serde(default)]
    pub source: Option<String>,
    /// The time the events are received, in Unix seconds (events without a `timestamp` get it;
    /// events more than 28 days older are refused as they would be by `serve`).
    pub now: i64,
    /// The tests, run in order.
    #[schemars(length(min = 1))]
    pub tests: Vec<MappingTest>,
}

/// One test: an input event and what each destination named must make of it.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MappingTest {
    /// What the test checks, shown when it fails.
    pub name: String,
    /// The source this event comes from (default: the file's `source`).
    #[serde(default)]
    pub source: Option<String>,
    /// The source event, as a shop would send it (the event spec's envelope).
    pub event: Value,
    /// Per destination name, the expected outcome as `map` prints it: `status` (`sent`,
    /// `filtered`, `skipped`, `invalid`, ...), `data` (the payloads), `client`, `reason`. A subset
    /// is enough unless `exact`.
    pub expect: BTreeMap<String, Value>,
    /// Whether the outcome must have no keys beyond those expected.
    #[serde(default)]
    pub exact: bool,
}

/// The JSON Schema of mapping test files, compiled once.
pub fn test_file_schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| Schema::of::<TestFile>("mapping-tests"))
}

/// The outcome of one test file.
#[derive(Debug, Default)]
pub struct Report {
    pub passed: usize,
    /// Per failed test, its readable account (file:line, name, and the differences).
    pub failures: Vec<String>,
}

/// Why a test file could not be run.
#[derive(Debug, thiserror::Error)]
pub enum TestFileError {
    /// The test file, or the config it names, has errors.
    #[error("{}", lines(.0))]
    Invalid(Vec<Diagnostic>),
    /// The dry run could not write its output (it writes to memory: this does not happen).
    #[error("the dry run failed")]
    DryRun(#[source] std::io::Error),
}

fn lines(diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Loads and runs the tests of `path`.
pub fn run_file(path: &Path) -> Result<Report, TestFileError> {
    let doc = check_file::<TestFile>(path, test_file_schema())
        .into_result()
        .map_err(TestFileError::Invalid)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let config_path: PathBuf = dir.join(&doc.value.config);
    let loaded = config::load(&config_path).map_err(TestFileError::Invalid)?;
    let file = &doc.value;
    let errors = file_errors(file, &loaded, &doc.placer);
    if !errors.is_empty() {
        return Err(TestFileError::Invalid(errors));
    }
    let mut report = Report::default();
    for (i, test) in file.tests.iter().enumerate() {
        let source = test
            .source
            .as_deref()
            .or(file.source.as_deref())
            .or(loaded.default_source())
            .unwrap_or_default()
            .to_owned();
        let outcome = map_one(&loaded, &source, file.now, &test.event)?;
        let mut found = Vec::new();
        for (destination, expected) in &test.expect {
            let actual = outcome.get(destination).unwrap_or(&Value::Null);
            compare(expected, actual, destination, test.exact, &mut found);
        }
        if found.is_empty() {
            report.passed += 1;
        } else {
            report
                .failures
                .push(account(&doc.placer, i, test, &found, &outcome));
        }
    }
    Ok(report)
}

/// What the test file says that its config or the clock refuses: a source the config does not
/// have (every event would be skipped, and a test expecting `skipped` pass for the wrong reason),
/// or a time received that is not unix seconds (as `map --now` refuses it).
fn file_errors(file: &TestFile, loaded: &Loaded, placer: &Placer) -> Vec<Diagnostic> {
    let known = loaded.source_names();
    let mut errors = Vec::new();
    if let Some(why) = received_at_refusal(file.now) {
        errors.push(placer.place("/now", format!("`now` {why}")));
    }
    let named = std::iter::once(("/source".to_owned(), &file.source)).chain(
        file.tests
            .iter()
            .enumerate()
            .map(|(i, t)| (format!("/tests/{i}/source"), &t.source)),
    );
    for (pointer, source) in named {
        if let Some(source) = source.as_deref().filter(|s| !known.contains(s)) {
            let hint = switchyard_core::load::did_you_mean(source, &known);
            let message = format!(
                "no source named `{source}` in the config; {hint}sources: {}",
                known.join(", ")
            );
            errors.push(placer.place(&pointer, message));
        }
    }
    errors
}

/// The `destinations` object `map` prints for `event`.
fn map_one(
    loaded: &Loaded,
    source: &str,
    now: i64,
    event: &Value,
) -> Result<Map<String, Value>, TestFileError> {
    let opts = MapOptions {
        source: source.to_owned(),
        requests: false,
        received_at: now,
    };
    let line = format!("{event}\n");
    let (mut results, mut log) = (Vec::new(), Vec::new());
    let mut output = MapOutput {
        results: &mut results,
        log: &mut log,
        dead_letters: None,
    };
    dry_run::run(loaded, &opts, &mut line.as_bytes(), &mut output)
        .map_err(TestFileError::DryRun)?;
    let printed: Value = serde_json::from_slice(&results).unwrap_or(Value::Null);
    Ok(match printed.get("destinations") {
        Some(Value::Object(map)) => map.clone(),
        _ => Map::new(),
    })
}

/// One difference between what a test expects and what the dry run made.
#[derive(Debug, PartialEq)]
pub struct Difference {
    /// Where, as a path from the destination name (`tiktok.data[0].event`).
    pub at: String,
    pub expected: Option<Value>,
    pub actual: Option<Value>,
}

/// Every difference between `expected` and `actual` (a subset match unless `exact`).
pub fn compare(expected: &Value, actual: &Value, at: &str, exact: bool, out: &mut Vec<Difference>) {
    match (expected, actual) {
        (Value::Object(want), Value::Object(got)) => {
            for (key, value) in want {
                let here = format!("{at}.{key}");
                match got.get(key) {
                    Some(actual) => compare(value, actual, &here, exact, out),
                    None => out.push(Difference {
                        at: here,
                        expected: Some(value.clone()),
                        actual: None,
                    }),
                }
            }
            if exact {
                for (key, value) in got.iter().filter(|(k, _)| !want.contains_key(*k)) {
                    out.push(Difference {
                        at: format!("{at}.{key}"),
                        expected: None,
                        actual: Some(value.clone()),
                    });
                }
            }
        }
        (Value::Array(want), Value::Array(got)) if want.len() == got.len() => {
            for (i, (w, g)) in want.iter().zip(got).enumerate() {
                compare(w, g, &format!("{at}[{i}]"), exact, out);
            }
        }
        (Value::Number(w), Value::Number(g)) if w.as_f64() == g.as_f64() => {}
        _ if expected == actual => {}
        _ => out.push(Difference {
            at: at.to_owned(),
            expected: Some(expected.clone()),
            actual: (!actual.is_null()).then(|| actual.clone()),
        }),
    }
}

/// A failed test as a person reads it: where, what, each difference as `-` expected / `+` actual,
/// then what the dry run made in full.
fn account(
    placer: &Placer,
    i: usize,
    test: &MappingTest,
    found: &[Difference],
    outcome: &Map<String, Value>,
) -> String {
    let place = placer.place(&format!("/tests/{i}"), "");
    let mut text = format!(
        "{}:{}: FAILED: {}\n",
        place.file.display(),
        place.line,
        test.name
    );
    for d in found {
        let show = |v: &Option<Value>| v.as_ref().map_or("(nothing)".to_owned(), Value::to_string);
        let _ = write!(
            text,
            "  at {}\n    - expected: {}\n    + actual:   {}\n",
            d.at,
            show(&d.expected),
            show(&d.actual)
        );
    }
    let made = serde_json::to_string_pretty(outcome)
        .unwrap_or_else(|e| format!("(the outcome cannot be shown: {e})"));
    let _ = writeln!(text, "  the dry run made:\n{}", indent(&made, "    "));
    text
}

fn indent(text: &str, by: &str) -> String {
    text.lines()
        .map(|l| format!("{by}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_subset_matches_and_a_difference_is_named_by_its_path() {
        let actual = json!({"status": "sent", "data": [{"event": "Purchase", "value": 30.0}]});
        let mut found = Vec::new();
        compare(
            &json!({"data": [{"value": 30}]}),
            &actual,
            "t",
            false,
            &mut found,
        );
        assert_eq!(found, []);
        compare(
            &json!({"data": [{"event": "Lead"}]}),
            &actual,
            "t",
            false,
            &mut found,
        );
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].at, "t.data[0].event");
        assert_eq!(found[0].actual, Some(json!("Purchase")));
    }

    #[test]
    fn exact_reports_keys_beyond_the_expected() {
        let mut found = Vec::new();
        let actual = json!({"status": "filtered", "reason": "filter `f` stopped it"});
        compare(
            &json!({"status": "filtered"}),
            &actual,
            "t",
            true,
            &mut found,
        );
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].at, "t.reason");
    }
}
