//! `switchyard schema`: the JSON Schemas of config and mapping files, generated from the Rust types.

use serde_json::Value;
use std::path::Path;

/// File name → schema, for every file kind Switchyard reads.
pub fn all() -> Vec<(&'static str, Value)> {
    vec![
        (
            "config.schema.json",
            crate::config::config_schema().schema.clone(),
        ),
        (
            "mapping.schema.json",
            switchyard_engine::rules::mapping_schema().schema.clone(),
        ),
    ]
}

/// A schema as written to disk: pretty JSON with a final newline.
pub fn render(schema: &Value) -> String {
    let mut text = serde_json::to_string_pretty(schema).unwrap_or_default();
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
