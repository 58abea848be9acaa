//! The examples in `docs/*.md` are run: a ```` ```yaml mapping ```` block (a mapping file) or a
//! ```` ```yaml destination ```` block (lines added to a TikTok destination on the default mapping)
//! sets up a destination; each following ```` ```json input ```` event must produce the
//! ```` ```json output ```` outcome after it.

use serde_json::Value;
use switchyard_engine::event::SourceEvent;
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
    let mut setup: Option<(switchyard::config::Loaded, tempfile::TempDir)> = None;
    let mut input: Option<(Value, usize)> = None;
    let mut checked = 0;
    for b in blocks(&text) {
        let here = format!("{}:{}", path.display(), b.line);
        match b.info.as_str() {
            "yaml mapping" => {
                let cfg = write_config(&tiktok_config("mapping: m.yaml"), &[("m.yaml", &b.body)]);
                let l = switchyard::config::load(&cfg.path)
                    .unwrap_or_else(|d| panic!("{here}:\n{}", lines(&d)));
                setup = Some((l, cfg.dir));
            }
            "yaml destination" => {
                let cfg = write_config(&tiktok_config(&b.body), &[]);
                let l = switchyard::config::load(&cfg.path)
                    .unwrap_or_else(|d| panic!("{here}:\n{}", lines(&d)));
                setup = Some((l, cfg.dir));
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
                let outcome = loaded.router.route(&ev, "web").remove(0);
                let actual = serde_json::to_value(&outcome).unwrap();
                assert_eq!(actual, expected, "{here}: the documented output differs");
                checked += 1;
            }
            _ => {}
        }
    }
    checked
}

#[test]
fn rules_md_examples_hold() {
    assert!(run_doc("rules.md") >= 7);
}

#[test]
fn tiktok_md_examples_hold() {
    assert!(run_doc("tiktok.md") >= 2);
}
