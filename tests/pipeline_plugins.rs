//! Plugins declared in a config's `transforms`, through `switchyard map` and `validate`: they change,
//! split and drop events before the destinations; a failing plugin fails only the events of its call,
//! which keep their line in the output and go to the dead letters; bad plugin declarations are
//! refused at load with file:line.

use serde_json::{Value, json};
use switchyard_tests::*;

fn config_with(transforms: &str) -> String {
    let mut text = tiktok_config("");
    text.push_str("transforms:\n");
    text.push_str(transforms);
    text
}

fn plugin_entry(name: &str, wasm: &str, config: Value, extra: &str) -> String {
    format!(
        "  - name: {name}\n    path: {}\n    config: {config}\n{extra}",
        plugin_wasm(wasm).display()
    )
}

struct Mapped {
    code: i32,
    lines: Vec<Value>,
    stderr: String,
    dead_letters: Vec<Value>,
}

fn map(config: &str, events: &[Value]) -> Mapped {
    let cfg = write_config(config, &[]);
    let letters = cfg.dir.path().join("dead.ndjson");
    let input: String = events.iter().map(|e| format!("{e}\n")).collect::<String>() + "not json\n";
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let args = [
        "switchyard",
        "map",
        "--config",
        cfg.path.to_str().unwrap(),
        "--now",
        "1725278400",
        "--dead-letters",
        letters.to_str().unwrap(),
        "-",
    ];
    let code = switchyard::cli::run(args, &mut input.as_bytes(), &mut out, &mut err);
    let parse = |text: &str| {
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect::<Vec<Value>>()
    };
    Mapped {
        code,
        lines: parse(&String::from_utf8(out).unwrap()),
        stderr: String::from_utf8(err).unwrap(),
        dead_letters: parse(&std::fs::read_to_string(&letters).unwrap_or_default()),
    }
}

fn tiktok(line: &Value) -> &Value {
    &line["destinations"]["tiktok"]
}

fn order(id: &str, currency: &str) -> Value {
    let mut ev = event(
        "Placed Order",
        json!({"id": 7, "currency": currency, "total_price": 100,
        "items": [{"product_id": "KIT-1", "price": 100, "quantity": 1}]}),
    );
    ev["event_id"] = json!(id);
    ev
}

#[test]
fn plugins_change_and_split_events_before_the_mapping() {
    let transforms = plugin_entry(
        "fx",
        "currency-converter",
        json!({"to": "EUR", "rates": {"USD": 0.5}}),
        "",
    ) + &plugin_entry(
        "bundles",
        "bundle-splitter",
        json!({"bundles": {"KIT-1": [{"product_id": "a", "share": 0.5}, {"product_id": "b", "share": 0.5}]}}),
        "",
    );
    let mut cart = event(
        "Added To Cart",
        json!({"product_id": "KIT-1", "price": 10, "quantity": 1, "currency": "EUR"}),
    );
    cart["event_id"] = json!("cart-1");
    let m = map(&config_with(&transforms), &[order("o-1", "USD"), cart]);
    assert_eq!(m.code, 0, "{}", m.stderr);
    let purchase = &tiktok(&m.lines[0])["data"][0];
    assert_eq!(purchase["properties"]["currency"], "EUR");
    assert_eq!(purchase["properties"]["value"], json!(50.0));
    let ids: Vec<&str> = purchase["properties"]["contents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["content_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a", "b"]);
    // The cart event was split in two events, both from input line 2.
    assert_eq!(m.lines[1]["line"], 2);
    assert_eq!(m.lines[2]["line"], 2);
    assert_eq!(m.lines[1]["event_id"], "cart-1:1");
    assert_eq!(m.lines[2]["event_id"], "cart-1:2");
    assert_eq!(
        tiktok(&m.lines[2])["data"][0]["properties"]["contents"][0]["content_id"],
        "b"
    );
    // The invalid last line is reported and kept.
    assert_eq!(tiktok(&m.lines[3])["status"], "invalid");
    assert_eq!(m.dead_letters.len(), 1);
    assert_eq!(m.dead_letters[0]["input"], "not json");
}

#[test]
fn a_failing_plugin_fails_its_events_only_and_keeps_them_as_dead_letters() {
    let transforms = plugin_entry("picky", "hostile", json!({"mode": "picky"}), "");
    let mut boom = order("o-boom", "EUR");
    boom["properties"]["note"] = json!("boom");
    let m = map(
        &config_with(&transforms),
        &[order("o-1", "EUR"), boom, order("o-3", "EUR")],
    );
    assert_eq!(m.code, 0);
    // The batch call trapped: every event of that call failed, none was lost.
    let statuses: Vec<&str> = m
        .lines
        .iter()
        .map(|l| tiktok(l)["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["failed", "failed", "failed", "invalid"]);
    assert!(
        tiktok(&m.lines[1])["reason"]
            .as_str()
            .unwrap()
            .starts_with("plugin `picky` failed: trapped")
    );
    let lines: Vec<u64> = m
        .dead_letters
        .iter()
        .map(|d| d["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [1, 2, 3, 4]);
    let replay: Value = serde_json::from_str(m.dead_letters[1]["input"].as_str().unwrap()).unwrap();
    assert_eq!(
        replay["event_id"], "o-boom",
        "the dead letter keeps the input as it came"
    );
}

#[test]
fn timeouts_malformed_output_and_drops_are_reported_with_the_plugin_name() {
    let cases = [
        (
            "loop",
            "{\"mode\": \"loop\"}",
            "    limits: { time_ms: 30 }\n",
            "failed",
            "plugin `h` failed: ran out of its time budget (30 ms)",
        ),
        (
            "malformed",
            "{\"mode\": \"malformed\"}",
            "",
            "failed",
            "plugin `h` failed: returned an invalid event: not valid JSON",
        ),
        (
            "drop",
            "{\"mode\": \"drop\"}",
            "",
            "filtered",
            "plugin `h` dropped it: not for this shop",
        ),
        (
            "fail",
            "{\"mode\": \"fail\"}",
            "",
            "failed",
            "plugin `h` failed: cannot handle an event of",
        ),
    ];
    for (mode, config, extra, status, reason) in cases {
        let transforms = plugin_entry("h", "hostile", serde_json::from_str(config).unwrap(), extra);
        let m = map(&config_with(&transforms), &[order("o-1", "EUR")]);
        assert_eq!(m.code, 0, "{mode}");
        assert_eq!(tiktok(&m.lines[0])["status"], status, "{mode}");
        let got = tiktok(&m.lines[0])["reason"].as_str().unwrap().to_owned();
        assert!(got.starts_with(reason), "{mode}: {got}");
    }
}

#[test]
fn bad_plugin_declarations_are_refused_at_load() {
    let missing = config_with("  - name: nope\n    path: does-not-exist.wasm\n");
    let d = load_errors(&missing, &[]);
    assert_eq!(
        (d[0].line, d[0].path.as_str()),
        (13, "$.transforms[0].path"),
        "{}",
        lines(&d)
    );
    assert!(d[0].message.contains("no plugin file at"));

    let refused = config_with(&plugin_entry("h", "hostile", json!({"mode": "refuse"}), ""));
    let d = load_errors(&refused, &[]);
    assert_eq!(d[0].path, "$.transforms[0].config", "{}", lines(&d));
    assert!(d[0].message.contains("this config is refused on purpose"));

    let not_wasm = config_with("  - name: text\n    path: plugin.wasm\n");
    let d = load_errors(&not_wasm, &[("plugin.wasm", "not a component")]);
    assert_eq!(d[0].path, "$.transforms[0].path");
    assert!(
        d[0].message.contains("not a WebAssembly component"),
        "{}",
        lines(&d)
    );

    let bad_limits = config_with(&plugin_entry(
        "h",
        "hostile",
        json!({}),
        "    limits: { time_ms: 0 }\n",
    ));
    let d = load_errors(&bad_limits, &[]);
    assert_eq!(d[0].path, "$.transforms[0].limits.time_ms", "{}", lines(&d));
}

#[test]
fn a_plugin_config_is_checked_against_the_schema_the_plugin_ships() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join("fx.wasm");
    std::fs::copy(plugin_wasm("currency-converter"), &wasm).unwrap();
    std::fs::write(
        dir.path().join("fx.schema.json"),
        r#"{"type": "object", "required": ["to", "rates"], "properties": {"to": {"type": "string", "pattern": "^[A-Z]{3}$"}}}"#,
    )
    .unwrap();
    let text = config_with(&format!(
        "  - name: fx\n    path: {}\n    config: {{to: euro, rates: {{}}}}\n",
        wasm.display()
    ));
    let d = load_errors(&text, &[]);
    assert_eq!(d[0].path, "$.transforms[0].config.to", "{}", lines(&d));
    assert!(d[0].message.contains("(the plugin's schema)"));
}

fn cli(args: &[&str], stdin: &str) -> (i32, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut argv = vec!["switchyard"];
    argv.extend_from_slice(args);
    let code = switchyard::cli::run(argv, &mut stdin.as_bytes(), &mut out, &mut err);
    (
        code,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

#[test]
fn plugin_test_prints_what_the_plugin_did_with_each_event() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bundles.yaml");
    std::fs::write(&config, "bundles:\n  KIT-1:\n    - {product_id: a, share: 0.5}\n    - {product_id: b, share: 0.5}\n").unwrap();
    let kit = event("Added To Cart", json!({"product_id": "KIT-1", "price": 10}));
    let plain = event("Added To Cart", json!({"product_id": "p9", "price": 10}));
    let input = format!("{kit}\n{plain}\n{{\"event_name\": 1}}\n");
    let wasm = plugin_wasm("bundle-splitter");
    let (code, out, err) = cli(
        &[
            "plugin",
            "test",
            wasm.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
        ],
        &input,
    );
    assert_eq!(code, 0, "{err}");
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["status"], "split");
    assert_eq!(lines[0]["events"].as_array().unwrap().len(), 2);
    assert_eq!(lines[1], json!({"line": 2, "status": "unchanged"}));
    assert_eq!(lines[2]["status"], "invalid");
    assert!(
        err.contains("bundle_splitter: 1 invalid, 1 split, 1 unchanged"),
        "{err}"
    );
    let (code, _, err) = cli(&["plugin", "test", wasm.to_str().unwrap()], "");
    assert_eq!(code, 1);
    assert!(
        err.contains("refused its config: config: missing field `bundles`"),
        "{err}"
    );
}

#[test]
fn plugin_new_scaffolds_a_crate_that_builds_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = cli(
        &[
            "plugin",
            "new",
            "shop-tagger",
            "--dir",
            dir.path().to_str().unwrap(),
        ],
        "",
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("created"), "{out}");
    let crate_dir = dir.path().join("shop-tagger");
    // Share the examples' target folder so the dependencies are not built again.
    let target = root().join("plugins/examples/target");
    let status = std::process::Command::new(env!("CARGO"))
        .args(["build", "--release", "--quiet"])
        .current_dir(&crate_dir)
        .env("CARGO_TARGET_DIR", &target)
        .status()
        .unwrap();
    assert!(status.success(), "the scaffolded crate does not build");
    let wasm = target.join("wasm32-wasip2/release/shop_tagger.wasm");
    let input = format!("{}\n", event("Viewed Product", json!({"product_id": "p1"})));
    let (code, out, err) = cli(&["plugin", "test", wasm.to_str().unwrap()], &input);
    assert_eq!(code, 0, "{err}");
    let line: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(line["events"][0]["properties"]["source_tag"], "switchyard");
    assert!(
        err.contains("plugin shop_tagger: debug: tagging id-viewed-product"),
        "{err}"
    );
    let (code, _, err) = cli(
        &[
            "plugin",
            "new",
            "shop-tagger",
            "--dir",
            dir.path().to_str().unwrap(),
        ],
        "",
    );
    assert_eq!(code, 1);
    assert!(err.contains("already exists"), "{err}");
    let (code, _, err) = cli(
        &[
            "plugin",
            "new",
            "Bad Name",
            "--dir",
            dir.path().to_str().unwrap(),
        ],
        "",
    );
    assert_eq!(code, 1);
    assert!(err.contains("is not a crate name"), "{err}");
}
