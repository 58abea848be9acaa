//! The examples in `docs/*.md` are run: a ```` ```yaml mapping ```` block (a mapping file) or a
//! ```` ```yaml destination ```` block (lines added to a TikTok destination on the default mapping)
//! sets up a destination; each following ```` ```json input ```` event must produce the
//! ```` ```json output ```` outcome after it.
//!
//! The upgrade note's refusals are run too: a ```` ```yaml refused KIND ```` block (`mapping`,
//! `destination` or `config`: a whole config) must not load, and each line of the
//! ```` ```text error ```` block after it must be part of its errors; a ```` ```yaml fixed KIND ````
//! block must load. A ```` ```json refused ```` block is input to `switchyard map` (on a TikTok
//! destination with the default mapping), and the ```` ```json map ```` block after it is what
//! `map` must print, line for line.

use serde_json::Value;
use switchyard_core::event::SourceEvent;
use switchyard_core::router::Outcome;
use switchyard_service::pipeline::{Copies, InputFate, halt_outcome};
use switchyard_tests::service::cli_with_input;
use switchyard_tests::*;

#[derive(Debug)]
struct Block {
    info: String,
    body: String,
    line: usize,
}

fn blocks(markdown: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut current: Option<Block> = None;
    for (i, line) in markdown.lines().enumerate() {
        match (&mut current, line.strip_prefix("```")) {
            (None, Some(info)) => {
                current = Some(Block {
                    info: info.trim().to_owned(),
                    body: String::new(),
                    line: i + 1,
                })
            }
            (Some(_), Some(_)) => out.extend(current.take()),
            (Some(b), None) => {
                b.body.push_str(line);
                b.body.push('\n');
            }
            (None, None) => {}
        }
    }
    out
}

fn run_doc(name: &str) -> usize {
    let path = root().join("docs").join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    let mut setup: Option<(switchyard_service::config::Loaded, tempfile::TempDir)> = None;
    let mut input: Option<(Value, usize)> = None;
    let mut refused: Option<String> = None;
    let mut checked = 0;
    for b in blocks(&text) {
        let here = format!("{}:{}", path.display(), b.line);
        if let Some(loaded) = setup_block(&b, &here) {
            setup = Some(loaded);
            continue;
        }
        match b.info.as_str() {
            "wit" => {
                let wit =
                    std::fs::read_to_string(root().join("engine/wasm/wit/plugin.wit")).unwrap();
                assert_eq!(
                    b.body, wit,
                    "{here}: the documented WIT differs from engine/wasm/wit/plugin.wit"
                );
                checked += 1;
            }
            "json input" => {
                let v: Value =
                    serde_json::from_str(&b.body).unwrap_or_else(|e| panic!("{here}: {e}"));
                input = Some((v, b.line));
            }
            "json output" => {
                let (loaded, _) = setup
                    .as_ref()
                    .unwrap_or_else(|| panic!("{here}: output before any setup"));
                let (event, _) = input
                    .take()
                    .unwrap_or_else(|| panic!("{here}: output without input"));
                let expected: Value =
                    serde_json::from_str(&b.body).unwrap_or_else(|e| panic!("{here}: {e}"));
                let ev = SourceEvent::from_value(event, RECEIVED_AT)
                    .unwrap_or_else(|e| panic!("{here}: {e}"));
                let actual = first_outcome(loaded, ev);
                assert_eq!(actual, expected, "{here}: the documented output differs");
                checked += 1;
            }
            _ => checked += refusal_block(&b, &here, &mut refused),
        }
    }
    assert!(
        refused.is_none(),
        "{}: the last refused block has no block checking it",
        path.display()
    );
    checked
}

/// The config a setup block (`yaml mapping`, `yaml destination`, `yaml config`) stands for,
/// loaded, with the folder that holds it; `None` for any other block. A whole config's plugin
/// paths are relative to the repository root.
fn setup_block(
    b: &Block,
    here: &str,
) -> Option<(switchyard_service::config::Loaded, tempfile::TempDir)> {
    let cfg = match b.info.as_str() {
        "yaml mapping" => write_config(&tiktok_config("mapping: m.yaml"), &[("m.yaml", &b.body)]),
        "yaml destination" => write_config(&tiktok_config(&b.body), &[]),
        "yaml config" => {
            plugin_wasm("noop");
            let text: String = b
                .body
                .lines()
                .map(|l| match l.split_once("path: ") {
                    Some((indent, p)) if !p.starts_with('/') => {
                        format!("{indent}path: {}\n", root().join(p).display())
                    }
                    _ => format!("{l}\n"),
                })
                .collect();
            write_config(&text, &[])
        }
        _ => return None,
    };
    let loaded = switchyard_service::config::load(&cfg.path)
        .unwrap_or_else(|d| panic!("{here}:\n{}", lines(&d)));
    Some((loaded, cfg.dir))
}

/// A block of the upgrade note (see the top comment); `refused` carries what the last
/// `refused` block gave (its load errors, or `map`'s output) to the block that checks it.
/// Returns how many checks it made.
fn refusal_block(b: &Block, here: &str, refused: &mut Option<String>) -> usize {
    let words: Vec<&str> = b.info.split_whitespace().collect();
    if words.get(1) == Some(&"refused") {
        assert!(
            refused.is_none(),
            "{here}: the refused block before has no block checking it"
        );
    }
    match words.as_slice() {
        ["yaml", "refused", kind] => {
            let cfg = doc_config(kind, &b.body, here);
            match switchyard_service::config::load(&cfg.path) {
                Ok(_) => panic!("{here}: loads, but the page says it is refused"),
                Err(d) => *refused = Some(lines(&d)),
            }
            0
        }
        ["yaml", "fixed", kind] => {
            let cfg = doc_config(kind, &b.body, here);
            switchyard_service::config::load(&cfg.path)
                .unwrap_or_else(|d| panic!("{here}: the fix does not load:\n{}", lines(&d)));
            1
        }
        ["text", "error"] => {
            let errors = refused
                .take()
                .unwrap_or_else(|| panic!("{here}: an error block after no refused config"));
            for line in b.body.lines().map(str::trim).filter(|l| !l.is_empty()) {
                assert!(
                    errors.contains(line),
                    "{here}: not among the errors:\n{line}\ngot:\n{errors}"
                );
            }
            1
        }
        ["json", "refused"] => {
            *refused = Some(map_output(&b.body));
            0
        }
        ["json", "map"] => {
            let printed = refused
                .take()
                .unwrap_or_else(|| panic!("{here}: a map block after no refused input"));
            assert_eq!(
                json_lines(&printed, here),
                json_lines(&b.body, here),
                "{here}: `map` prints otherwise"
            );
            1
        }
        _ => 0,
    }
}

/// The config a `refused` or `fixed` block of `kind` stands for, written to a temporary folder.
fn doc_config(kind: &str, body: &str, here: &str) -> TempConfig {
    match kind {
        "mapping" => write_config(&tiktok_config("mapping: m.yaml"), &[("m.yaml", body)]),
        "destination" => write_config(&tiktok_config(body), &[]),
        "config" => write_config(body, &[]),
        _ => panic!("{here}: unknown kind `{kind}` (mapping, destination or config)"),
    }
}

/// What `switchyard map` prints for `input` on a TikTok destination with the default mapping.
fn map_output(input: &str) -> String {
    let cfg = write_config(&tiktok_config(""), &[]);
    let config = cfg.path.to_string_lossy();
    let (_, out, err) = cli_with_input(&["map", "--config", &config], input);
    assert!(!out.is_empty(), "map printed nothing:\n{err}");
    out
}

/// The JSON value of each line of `text` that is not blank.
fn json_lines(text: &str, here: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{here}: {e}: {l}")))
        .collect()
}

/// The outcome at the first destination of an event through the whole pipeline (plugins included).
fn first_outcome(loaded: &switchyard_service::config::Loaded, ev: SourceEvent) -> Value {
    let mut logs = Vec::new();
    let pipeline = &loaded.pipeline;
    let transformed = pipeline.transform(vec![ev], RECEIVED_AT, &mut logs);
    let copies = Copies::ServerAndBrowser;
    let routed = pipeline.route(&transformed, "web", copies, RECEIVED_AT, &mut logs);
    match &routed[0] {
        InputFate::Halted(halt) => {
            let (status, reason) = halt_outcome(halt);
            serde_json::to_value(Outcome::not_sent("", status, reason)).unwrap()
        }
        InputFate::Routed(events) => serde_json::to_value(&events[0].outcomes[0]).unwrap(),
    }
}

#[test]
fn plugins_md_examples_hold() {
    assert!(run_doc("plugins.md") >= 2);
}

#[test]
fn rules_md_examples_hold() {
    assert!(run_doc("rules.md") >= 7);
}

#[test]
fn tiktok_md_examples_hold() {
    assert!(run_doc("tiktok.md") >= 2);
}

#[test]
fn upgrading_md_examples_hold() {
    assert!(run_doc("upgrading.md") >= 27);
}

/// Every `switchyard ...` command the docs show (in `sh` blocks and inline code), as arguments,
/// and whether it may be partial (inline code names commands in prose).
fn documented_commands(text: &str) -> Vec<(Vec<String>, bool)> {
    let mut found = Vec::new();
    let mut in_sh = false;
    let mut pending = String::new();
    for line in text.lines() {
        if line.starts_with("```") {
            in_sh = !in_sh && (line == "```sh" || line == "```bash");
            continue;
        }
        if in_sh {
            pending.push_str(line.trim_end_matches('\\'));
            pending.push(' ');
            if line.ends_with('\\') {
                continue;
            }
            let command = pending
                .split(" #")
                .next()
                .unwrap_or_default()
                .trim()
                .to_owned();
            pending.clear();
            found.extend(switchyard_args(&command).map(|a| (a, false)));
        } else {
            for (i, span) in line.split('`').enumerate() {
                if i % 2 == 1 {
                    found.extend(switchyard_args(span).map(|a| (a, true)));
                }
            }
        }
    }
    found
}

fn switchyard_args(command: &str) -> Option<Vec<String>> {
    let rest = command
        .strip_prefix("cargo run -q -p switchyard -- ")
        .or_else(|| command.strip_prefix("cargo run --release -p switchyard -- "))
        .or_else(|| command.strip_prefix("switchyard "))?;
    // A synopsis (`list|retry|drop`, `[INPUT]`, `...`) is no command line.
    if rest.contains(['|', '[', '<']) || rest.contains("...") {
        return None;
    }
    // Words as a shell splits them (`--event 'Placed Order'` is two).
    let mut args = vec!["switchyard".to_owned()];
    args.extend(shlex::split(rest)?);
    Some(args)
}

#[test]
fn every_command_the_docs_show_is_one_the_cli_accepts() {
    let mut checked = 0;
    let mut files: Vec<_> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    files.push(root().join("README.md"));
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (args, partial) in documented_commands(&text) {
            let args: Vec<&str> = args
                .iter()
                .map(String::as_str)
                .take_while(|a| !matches!(*a, "|" | ">" | "<" | "&&" | ";" | "&"))
                .collect();
            if let Err(e) = switchyard::cli::check_args(&args, partial) {
                panic!("{}: `{}` is refused:\n{e}", file.display(), args.join(" "));
            }
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} documented commands checked");
}
