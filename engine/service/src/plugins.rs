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
            let field = if matches!(e, LoadError::Config(_)) {
                "config"
            } else {
                "path"
            };
            vec![placer.place(
                &format!("{at}/{field}"),
                format!("plugin `{}` {}", p.name, describe(&e)),
            )]
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
    let schema = match serde_json::from_str::<serde_json::Value>(&text)
        .map(|s| jsonschema::validator_for(&s))
    {
        Ok(Ok(v)) => v,
        _ => {
            return vec![placer.place(
                at,
                format!(
                    "the plugin's schema `{}` is not a valid JSON Schema",
                    schema_path.display()
                ),
            )];
        }
    };
    schema
        .iter_errors(config)
        .map(|e| {
            placer.place(
                &format!("{at}{}", e.instance_path().as_str()),
                format!("{} (the plugin's schema)", e.masked()),
            )
        })
        .collect()
}
