//! `switchyard schema`: the JSON Schemas of config and mapping files, generated from the Rust types.

use crate::cli::SchemaKind;
use serde_json::Value;
use std::io::Write;
use std::path::Path;

/// File name → schema, for every file kind Switchyard reads.
pub fn all() -> Vec<(&'static str, Value)> {
    vec![
        (
            "config.schema.json",
            switchyard_service::config::config_schema().schema.clone(),
        ),
        (
            "mapping.schema.json",
            switchyard_core::rules::mapping_schema().schema.clone(),
        ),
        (
            "mapping-tests.schema.json",
            switchyard_service::mapping_tests::test_file_schema()
                .schema
                .clone(),
        ),
    ]
}

/// A schema as written to disk: pretty JSON with a final newline.
pub fn render(schema: &Value) -> String {
    // `{:#}`: serde_json's pretty form (two-space indents), which cannot fail for a `Value`.
    let mut text = format!("{schema:#}");
    text.push('\n');
    text
}

/// Writes every schema into `dir`.
pub fn write_all(dir: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    std::fs::create_dir_all(dir)?;
    all()
        .into_iter()
        .map(|(name, schema)| {
            let path = dir.join(name);
            std::fs::write(&path, render(&schema))?;
            Ok(path)
        })
        .collect()
}

/// Writes every schema into `dir`, or prints the one of `kind`.
pub fn run(dir: Option<&Path>, kind: SchemaKind, out: &mut dyn Write) -> anyhow::Result<i32> {
    if let Some(dir) = dir {
        for path in write_all(dir)? {
            writeln!(out, "wrote {}", path.display())?;
        }
        return Ok(0);
    }
    let schema = match kind {
        SchemaKind::Config => switchyard_service::config::config_schema(),
        SchemaKind::Mapping => switchyard_core::rules::mapping_schema(),
    };
    out.write_all(render(&schema.schema).as_bytes())?;
    Ok(0)
}
