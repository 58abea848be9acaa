//! `switchyard plugin new`: scaffolds a transform plugin crate that builds as is, against the
//! plugin SDK found on this machine; `switchyard plugin test`: runs a plugin over NDJSON (see
//! `switchyard_wasm::tester`).

use crate::cli::{PluginTestArgs, open_input};
use anyhow::Context;
use serde_json::{Value, json};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use switchyard_service::clock::unix_now;
use switchyard_wasm::tester::{self, TestInput};
use switchyard_wasm::{CompileCache, Limits, Runtime};

/// Where the plugin SDK sits in a Switchyard source tree.
const SDK_IN_TREE: &str = "plugins/transforms/sdk";

/// The plugin SDK on this machine: `$SWITCHYARD_SDK`, else the SDK of a Switchyard source tree
/// that holds the current folder or this executable. Looked up when `plugin new` runs (never a
/// path from the machine that built the binary).
pub fn find_sdk() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("SWITCHYARD_SDK").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    let starts = [std::env::current_dir().ok(), std::env::current_exe().ok()];
    starts
        .iter()
        .flatten()
        .flat_map(|start| start.ancestors())
        .map(|dir| dir.join(SDK_IN_TREE))
        .find(|sdk| sdk.join("Cargo.toml").is_file())
        .ok_or_else(|| {
            format!(
                "cannot find the plugin SDK: give `--sdk PATH` or set SWITCHYARD_SDK (it is `{SDK_IN_TREE}` in a Switchyard source tree)"
            )
        })
}

/// A scaffolded plugin crate.
pub struct Scaffold {
    /// The crate's folder.
    pub root: PathBuf,
    /// Where `cargo build --release` puts the plugin, relative to `root`.
    pub wasm: PathBuf,
    /// Why no `Cargo.lock` could be written (cargo missing, or offline without the dependencies).
    pub lockfile_missing: Option<String>,
}

/// Writes a new plugin crate named `name` into `dir/name`, depending on the SDK at `sdk` (found
/// with [`find_sdk`] when not given): `Cargo.toml`, `.cargo/config.toml`, `src/lib.rs`, a sample
/// `config.yaml` and `events.ndjson`, a `README.md`, and a `Cargo.lock` when cargo can resolve
/// the dependencies offline.
pub fn new(name: &str, dir: &Path, sdk: Option<PathBuf>) -> anyhow::Result<Scaffold> {
    let sdk = match sdk {
        Some(sdk) => sdk,
        None => find_sdk().map_err(anyhow::Error::msg)?,
    };
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && name.starts_with(|c: char| c.is_ascii_lowercase());
    if !valid {
        anyhow::bail!(
            "`{name}` is not a crate name: lower-case letters, digits, - and _, starting with a letter"
        );
    }
    let root = dir.join(name);
    if root.exists() {
        anyhow::bail!("{} already exists", root.display());
    }
    let sdk = std::fs::canonicalize(&sdk)
        .with_context(|| format!("the plugin SDK is not at {}", sdk.display()))?;
    std::fs::create_dir_all(root.join("src"))?;
    std::fs::create_dir_all(root.join(".cargo"))?;
    let root = std::fs::canonicalize(&root)?;
    let wasm =
        Path::new("target/wasm32-wasip2/release").join(format!("{}.wasm", name.replace('-', "_")));
    let files = [
        ("Cargo.toml", cargo_toml(name, &sdk_dependency(&root, &sdk))),
        (
            ".cargo/config.toml",
            "[build]\ntarget = \"wasm32-wasip2\"\n".to_owned(),
        ),
        ("src/lib.rs", TEMPLATE.to_owned()),
        ("config.yaml", SAMPLE_CONFIG.to_owned()),
        ("events.ndjson", SAMPLE_EVENTS.to_owned()),
        (
            "README.md",
            README
                .replace("{name}", name)
                .replace("{wasm}", &wasm.display().to_string())
                .replace("{wasm_file}", &format!("{}.wasm", name.replace('-', "_"))),
        ),
    ];
    for (file, text) in files {
        std::fs::write(root.join(file), text)?;
    }
    let lockfile_missing = write_lockfile(&root).err();
    Ok(Scaffold {
        root,
        wasm,
        lockfile_missing,
    })
}

/// The SDK dependency as a path that holds on the user's machine: relative to the crate when both
/// sit in one Switchyard source tree (the tree can move, be cloned elsewhere), else the absolute
/// path of the SDK found on this machine, with how to change it.
fn sdk_dependency(root: &Path, sdk: &Path) -> String {
    let tree = sdk.ancestors().nth(3);
    match tree.filter(|tree| root.starts_with(tree)) {
        Some(_) => {
            let common = root
                .ancestors()
                .find(|a| sdk.starts_with(a))
                .unwrap_or(Path::new("/"));
            let up = root
                .strip_prefix(common)
                .map_or(0, |p| p.components().count());
            let down = sdk.strip_prefix(common).unwrap_or(sdk);
            let mut path = PathBuf::new();
            for _ in 0..up {
                path.push("..");
            }
            format!(
                "# The SDK of the Switchyard source tree this crate sits in.\nswitchyard-plugin-sdk = {{ path = \"{}\" }}",
                path.join(down).display()
            )
        }
        None => format!(
            "# The SDK found when this crate was made; elsewhere, point this at\n# `plugins/transforms/sdk` of your Switchyard checkout.\nswitchyard-plugin-sdk = {{ path = \"{}\" }}",
            sdk.display()
        ),
    }
}

fn cargo_toml(name: &str, sdk: &str) -> String {
    format!(
        "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\npublish = false\n\n\
         [lib]\ncrate-type = [\"cdylib\"]\n\n\
         [dependencies]\n{sdk}\nserde = {{ version = \"1\", features = [\"derive\"] }}\n\n\
         # Speed: the plugin runs on every event; its file is compiled once.\n\
         [profile.release]\nopt-level = 3\nlto = true\ncodegen-units = 1\nstrip = true\n\n\
         # A crate of its own, even when created inside another workspace.\n[workspace]\n"
    )
}

/// `cargo generate-lockfile --offline` in the new crate (the versions already on this machine).
fn write_lockfile(root: &Path) -> Result<(), String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = std::process::Command::new(cargo)
        .args(["generate-lockfile", "--offline", "--quiet"])
        .current_dir(root)
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    let why = String::from_utf8_lossy(&output.stderr);
    Err(why.lines().next().unwrap_or("cargo failed").to_owned())
}

/// The new crate's sample plugin config, events and README.
const SAMPLE_CONFIG: &str = include_str!("../../templates/plugin/config.yaml");
const SAMPLE_EVENTS: &str = include_str!("../../templates/plugin/events.ndjson");
const README: &str = include_str!("../../templates/plugin/README.md");

/// The new crate's `src/lib.rs`: a plugin that builds and runs as is.
const TEMPLATE: &str = include_str!("../../templates/plugin/lib.rs");

/// Reads a plugin config file (YAML or JSON); none means `{}`.
pub fn read_config(path: Option<&Path>) -> anyhow::Result<Value> {
    let Some(path) = path else {
        return Ok(json!({}));
    };
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_yaml::from_str(&text)
        .with_context(|| format!("{}: not valid YAML or JSON", path.display()))
}

/// Limits for `plugin test`, from the defaults.
pub fn limits(time_ms: Option<u64>, memory_mib: Option<u64>) -> Limits {
    let d = Limits::default();
    Limits {
        time_ms: time_ms.unwrap_or(d.time_ms),
        memory_mib: memory_mib.unwrap_or(d.memory_mib),
        ..d
    }
}

/// Runs `plugin test`: the plugin over NDJSON, one line per input line; counts go to `err`.
pub fn test(
    args: PluginTestArgs,
    stdin: &mut dyn BufRead,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<i32> {
    let kind = if args.payloads {
        TestInput::Payloads
    } else {
        TestInput::Events {
            received_at: unix_now(),
        }
    };
    let plugin_config = read_config(args.config.as_deref())?;
    let cache = CompileCache::open_default().unwrap_or_else(|e| {
        let _ = writeln!(err, "warning: {e}; the plugin is compiled without a cache");
        None
    });
    let runtime = Runtime::new(cache)?;
    let name = args
        .plugin
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .with_context(|| format!("{} names no file", args.plugin.display()))?;
    let limits = limits(args.time_ms, args.memory_mib);
    let plugin = runtime
        .load_file(&name, &args.plugin, &plugin_config, limits)
        .with_context(|| format!("plugin {}", args.plugin.display()))?;
    let counts = match open_input(args.input.as_deref())? {
        Some(mut file) => tester::test(&plugin, &mut file, out, err, kind)?,
        None => tester::test(&plugin, stdin, out, err, kind)?,
    };
    let parts: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
    writeln!(err, "{name}: {}", parts.join(", "))?;
    Ok(0)
}
