//! Loading the transform plugins a config declares (its `transforms`, each destination's
//! `transforms` and `payload_transforms`) into chains on one runtime: the file exists, is a
//! component of the plugin world, its config matches the plugin's own schema (`<plugin>.schema.json`
//! beside the `.wasm`, when it ships one) and its `init` accepts it.

use std::path::Path;
use switchyard_core::load::{Diagnostic, FileScope, Placer};
use switchyard_core::report::with_causes as describe;
use switchyard_wasm::{Chain, CompileCache, LoadError, PluginConfig, Runtime};

/// Loads chains of plugins; starts the runtime only when a first plugin is declared.
pub struct ChainLoader<'a> {
    files: &'a FileScope,
    placer: &'a Placer,
    runtime: Option<Runtime>,
    /// Findings that do not stop loading (a compile cache that cannot be used).
    pub warnings: Vec<Diagnostic>,
}

impl<'a> ChainLoader<'a> {
    pub fn new(files: &'a FileScope, placer: &'a Placer) -> Self {
        Self {
            files,
            placer,
            runtime: None,
            warnings: Vec::new(),
        }
    }

    /// Loads the plugins declared at `list_at` (a JSON pointer in the config file), in order.
    pub fn load(
        &mut self,
        plugins: &[PluginConfig],
        list_at: &str,
    ) -> Result<Chain, Vec<Diagnostic>> {
        if plugins.is_empty() {
            return Ok(Chain::new(Vec::new()));
        }
        let (files, placer) = (self.files, self.placer);
        let runtime = self.runtime()?;
        let mut errors = Vec::new();
        let mut loaded = Vec::new();
        for (i, p) in plugins.iter().enumerate() {
            match load_one(runtime, p, files, placer, &format!("{list_at}/{i}")) {
                Ok(plugin) => loaded.push(plugin),
                Err(e) => errors.extend(e),
            }
        }
        if errors.is_empty() {
            Ok(Chain::new(loaded))
        } else {
            Err(errors)
        }
    }

    fn runtime(&mut self) -> Result<&Runtime, Vec<Diagnostic>> {
        if self.runtime.is_none() {
            let cache = CompileCache::open_default().unwrap_or_else(|e| {
                let message = format!("{}; plugins are compiled on every start", describe(&e));
                self.warnings.push(self.placer.place("", message).warning());
                None
            });
            let runtime = Runtime::new(cache).map_err(|e| {
                vec![self.placer.place(
                    "",
                    format!("cannot start the plugin runtime: {}", describe(&e)),
                )]
            })?;
            self.runtime = Some(runtime);
        }
        self.runtime
            .as_ref()
            .ok_or_else(|| vec![self.placer.place("", "the plugin runtime is not running")])
    }
}

fn load_one(
    runtime: &Runtime,
    p: &PluginConfig,
    files: &FileScope,
    placer: &Placer,
    at: &str,
) -> Result<switchyard_wasm::Plugin, Vec<Diagnostic>> {
    let path = files.resolve(&p.path).map_err(|message| {
        vec![placer.place(
            &format!("{at}/path"),
            format!("plugin `{}`: {message}", p.name),
        )]
    })?;
    let schema_errors = check_plugin_config(&path, &p.config, placer, &format!("{at}/config"));
    if !schema_errors.is_empty() {
        return Err(schema_errors);
    }
    runtime
        .load_file(&p.name, &path, &p.config, p.limits)
        .map_err(|e| {
            let (pointer, message) = match &e {
                LoadError::Config(m) => {
                    let (inner, message) = in_config(&p.config, m);
                    (format!("{at}/config{inner}"), message)
                }
                _ => (format!("{at}/path"), describe(&e)),
            };
            vec![placer.place(&pointer, format!("plugin `{}` {message}", p.name))]
        })
}

fn check_plugin_config(
    wasm: &Path,
    config: &serde_json::Value,
    placer: &Placer,
    at: &str,
) -> Vec<Diagnostic> {
    let schema_path = wasm.with_extension("schema.json");
    let Ok(text) = std::fs::read_to_string(&schema_path) else {
        return Vec::new();
    };
    let Some((schema, validator)) = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|s| jsonschema::validator_for(&s).ok().map(|v| (s, v)))
    else {
        return vec![placer.place(
            at,
            format!(
                "the plugin's schema `{}` is not a valid JSON Schema",
                schema_path.display()
            ),
        )];
    };
    // Explained as the config's own schema errors are: a field's description says what a
    // pattern or a bound expects, and a misspelt key gets the key meant. An error the
    // explanation passes over (it knows the shapes of Switchyard's own schemas) is said as the
    // validator says it: a plugin's schema may be shaped otherwise.
    let mut found = Vec::new();
    for e in validator.iter_errors(config) {
        let explained = switchyard_core::load::explain(&e, &schema);
        if explained.is_empty() {
            found.push((
                e.instance_path().as_str().to_owned(),
                e.masked().to_string(),
            ));
        }
        for x in explained {
            found.push((x.at.unwrap_or(x.pointer), x.message));
        }
    }
    found
        .into_iter()
        .map(|(place, message)| {
            placer.place(
                &format!("{at}{place}"),
                format!("{message} (the plugin's schema)"),
            )
        })
        .collect()
}

/// A plugin's refusal of its config, placed in the YAML: the plugin read the config as one line
/// of JSON, and its message (serde's) ends `at line 1 column N` of that line. Returns the JSON
/// pointer (within `config`) of the node at that column, and the message without the column.
fn in_config(config: &serde_json::Value, message: &str) -> (String, String) {
    let Some((text, column)) = message.rsplit_once(" at line 1 column ") else {
        return (String::new(), format!("refused its config: {message}"));
    };
    let Ok(column) = column.trim().parse::<usize>() else {
        return (String::new(), format!("refused its config: {message}"));
    };
    let mut spans = Vec::new();
    let mut offset = 0;
    spans_of(config, String::new(), &mut offset, &mut spans);
    // The innermost node around the column (serde reports the last character it read).
    let at = column.saturating_sub(1);
    let pointer = spans
        .iter()
        .filter(|(start, end, _)| *start <= at && at < *end)
        .max_by_key(|(start, _, _)| *start)
        .map(|(_, _, p)| p.clone())
        .unwrap_or_default();
    (pointer, format!("refused its config: {text}"))
}

/// The byte span of every node of `value` as `Value::to_string` writes it (a member's span holds
/// its key), with its JSON pointer.
fn spans_of(
    value: &serde_json::Value,
    pointer: String,
    offset: &mut usize,
    out: &mut Vec<(usize, usize, String)>,
) {
    use serde_json::Value;
    let start = *offset;
    match value {
        Value::Object(map) => {
            *offset += 1;
            for (i, (key, item)) in map.iter().enumerate() {
                *offset += usize::from(i > 0);
                let member = *offset;
                *offset += Value::String(key.clone()).to_string().len() + 1;
                let here = format!("{pointer}/{}", switchyard_core::load::escape(key));
                spans_of(item, here.clone(), offset, out);
                out.push((member, *offset, here));
            }
            *offset += 1;
        }
        Value::Array(items) => {
            *offset += 1;
            for (i, item) in items.iter().enumerate() {
                *offset += usize::from(i > 0);
                spans_of(item, format!("{pointer}/{i}"), offset, out);
            }
            *offset += 1;
        }
        scalar => *offset += scalar.to_string().len(),
    }
    out.push((start, *offset, pointer));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_column_of_the_json_copy_becomes_a_pointer_into_the_config() {
        let config = json!({"tga": "x", "rates": {"USD": "one"}});
        let text = config.to_string();
        // serde names the column of the last character it read: the end of `"one"`.
        let column = text.find("\"one\"").unwrap() + 5;
        let (pointer, message) = in_config(
            &config,
            &format!("invalid type: string \"one\", expected f64 at line 1 column {column}"),
        );
        assert_eq!(pointer, "/rates/USD");
        assert_eq!(
            message,
            "refused its config: invalid type: string \"one\", expected f64"
        );
        let column = text.find("\"tga\"").unwrap() + 5;
        let (pointer, _) = in_config(
            &config,
            &format!("unknown field `tga` at line 1 column {column}"),
        );
        assert_eq!(pointer, "/tga");
        let (pointer, message) = in_config(&config, "tag must not be empty");
        assert_eq!(
            (pointer.as_str(), message.as_str()),
            ("", "refused its config: tag must not be empty")
        );
    }
}
