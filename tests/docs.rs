//! The examples in `docs/*.md` are run: a ```` ```yaml mapping ```` block (a mapping file) or a
//! ```` ```yaml destination ```` block (lines added to a TikTok destination on the default mapping)
//! sets up a destination; each following ```` ```json input ```` event must produce the
//! ```` ```json output ```` outcome after it.

use serde_json::Value;
use switchyard_core::event::SourceEvent;
use switchyard_core::router::Outcome;
use switchyard_service::pipeline::{Copies, InputFate, halt_outcome};
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
    let mut checked = 0;
    for b in blocks(&text) {
        let here = format!("{}:{}", path.display(), b.line);
        match b.info.as_str() {
            "yaml mapping" => {
                let cfg = write_config(&tiktok_config("mapping: m.yaml"), &[("m.yaml", &b.body)]);
                let l = switchyard_service::config::load(&cfg.path)
                    .unwrap_or_else(|d| panic!("{here}:\n{}", lines(&d)));
                setup = Some((l, cfg.dir));
            }
            "yaml destination" => {
                let cfg = write_config(&tiktok_config(&b.body), &[]);
                let l = switchyard_service::config::load(&cfg.path)
                    .unwrap_or_else(|d| panic!("{here}:\n{}", lines(&d)));
                setup = Some((l, cfg.dir));
            }
            "yaml config" => {
                // A whole config; plugin paths are relative to the repository root.
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
                let cfg = write_config(&text, &[]);
                let l = switchyard_service::config::load(&cfg.path)
                    .unwrap_or_else(|d| panic!("{here}:\n{}", lines(&d)));
                setup = Some((l, cfg.dir));
            }
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
            _ => {}
        }
    }
    checked
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
