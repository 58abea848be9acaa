//! `switchyard validate`: loads configs (and the mapping files they use) and reports every problem.

use std::io::Write;
use std::path::PathBuf;
use switchyard_service::config;

/// Checks every config; writes findings to `err` and a line per good config to `out`.
/// Returns whether all configs are free of errors.
pub fn run(configs: &[PathBuf], out: &mut dyn Write, err: &mut dyn Write) -> std::io::Result<bool> {
    let mut ok = true;
    for path in configs {
        match config::load(path) {
            Ok(loaded) => {
                for w in &loaded.warnings {
                    writeln!(err, "{w}")?;
                }
                let rows: usize = loaded
                    .pipeline
                    .destinations()
                    .iter()
                    .map(|d| d.plugin().routing().mapping.len())
                    .sum();
                writeln!(
                    out,
                    "{}: ok ({} sources, {} destinations, {} mapping rows)",
                    path.display(),
                    loaded.config.sources.len(),
                    loaded.config.destinations.len(),
                    rows
                )?;
            }
            Err(diagnostics) => {
                ok = false;
                for d in &diagnostics {
                    writeln!(err, "{d}")?;
                }
                let errors = diagnostics.iter().filter(|d| d.is_error()).count();
                writeln!(err, "{}: {errors} error(s)", path.display())?;
            }
        }
    }
    Ok(ok)
}
