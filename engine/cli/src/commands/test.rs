//! `switchyard test`: runs mapping unit tests (see `switchyard_service::mapping_tests`).

use std::io::Write;
use std::path::PathBuf;
use switchyard_service::mapping_tests::{self, TestFileError};

/// Runs every test file; failures (with their differences) and file errors go to `err`, a line per
/// file to `out`. Exit code 1 when a test failed or a file could not be run.
pub fn run(files: &[PathBuf], out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<i32> {
    let (mut passed, mut failed, mut broken) = (0, 0, 0);
    for path in files {
        match mapping_tests::run_file(path) {
            Ok(report) => {
                for failure in &report.failures {
                    writeln!(err, "{failure}")?;
                }
                writeln!(
                    out,
                    "{}: {} passed, {} failed",
                    path.display(),
                    report.passed,
                    report.failures.len()
                )?;
                passed += report.passed;
                failed += report.failures.len();
            }
            Err(TestFileError::Invalid(diagnostics)) => {
                for d in &diagnostics {
                    writeln!(err, "{d}")?;
                }
                writeln!(err, "{}: cannot run its tests", path.display())?;
                broken += 1;
            }
            Err(e) => return Err(e.into()),
        }
    }
    writeln!(
        out,
        "{passed} passed, {failed} failed{}",
        if broken > 0 {
            format!(", {broken} file(s) not run")
        } else {
            String::new()
        }
    )?;
    Ok(if failed + broken == 0 { 0 } else { 1 })
}
