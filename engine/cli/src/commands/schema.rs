//! `switchyard schema`: the JSON Schemas of config and mapping files, generated from the Rust types.

use crate::cli::SchemaKind;
use serde_json::Value;
use std::io::Write;
use std::path::Path;

/// Every file kind Switchyard reads, with its schema's file name.
const KINDS: [(SchemaKind, &str); 3] = [
    (SchemaKind::Config, "config.schema.json"),
    (SchemaKind::Mapping, "mapping.schema.json"),
    (SchemaKind::MappingTests, "mapping-tests.schema.json"),
];

/// The schema of files of `kind`.
fn schema_of(kind: SchemaKind) -> Value {
    match kind {
        SchemaKind::Config => switchyard_service::config::config_schema().schema.clone(),
        SchemaKind::Mapping => switchyard_core::rules::mapping_schema().schema.clone(),
        SchemaKind::MappingTests => switchyard_service::mapping_tests::test_file_schema()
            .schema
            .clone(),
    }
}

/// File name → schema, for every file kind Switchyard reads.
pub fn all() -> Vec<(&'static str, Value)> {
    KINDS
        .iter()
        .map(|(kind, name)| (*name, schema_of(*kind)))
        .collect()
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
    write(dir, None)
}

/// Writes the schema of `kind` (every one, with `None`) into `dir`.
fn write(dir: &Path, kind: Option<SchemaKind>) -> std::io::Result<Vec<std::path::PathBuf>> {
    std::fs::create_dir_all(dir)?;
    KINDS
        .iter()
        .filter(|(k, _)| kind.is_none_or(|kind| kind == *k))
        .map(|(k, name)| {
            let path = dir.join(name);
            std::fs::write(&path, render(&schema_of(*k)))?;
            Ok(path)
        })
        .collect()
}

/// Writes the schemas into `dir` (only that of `kind`, when given), or prints the one of `kind`
/// (the config's by default).
pub fn run(
    dir: Option<&Path>,
    kind: Option<SchemaKind>,
    out: &mut dyn Write,
) -> anyhow::Result<i32> {
    if let Some(dir) = dir {
        for path in write(dir, kind)? {
            writeln!(out, "wrote {}", path.display())?;
        }
        return Ok(0);
    }
    let schema = schema_of(kind.unwrap_or(SchemaKind::Config));
    out.write_all(render(&schema).as_bytes())?;
    Ok(0)
}
