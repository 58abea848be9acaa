//! Plugins declared in a config's `transforms`, through `switchyard map` and `validate`: they change,
//! split and drop events before the destinations; a failing plugin fails only the events it fails on
//! (a batch call that traps is run again one event at a time), which keep their line in the output
//! and go to the dead letters; bad plugin declarations are refused at load with file:line.

use serde_json::{Value, json};
use switchyard_core::load::Diagnostic;
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

/// The bundle splitter, splitting `KIT-1` into `a` and `b`.
fn splitter() -> String {
    plugin_entry(
        "bundles",
        "bundle-splitter",
        json!({"bundles": {"KIT-1": [{"product_id": "a", "share": 0.5}, {"product_id": "b", "share": 0.5}]}}),
        "",
    )
}

/// A cart event for the bundle `KIT-1`, id `cart-1`.
fn kit_cart() -> Value {
    let mut cart = event(
        "Added To Cart",
        json!({"product_id": "KIT-1", "price": 10, "quantity": 1, "currency": "EUR"}),
    );
    cart["event_id"] = json!("cart-1");
    cart
}

#[test]
fn plugins_change_and_split_events_before_the_mapping() {
    let transforms = plugin_entry(
        "fx",
        "currency-converter",
        json!({"to": "EUR", "rates": {"USD": 0.5}}),
        "",
    ) + &splitter();
    let m = map(
        &config_with(&transforms),
        &[order("o-1", "USD"), kit_cart()],
    );
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
    // The batch call trapped on `boom`; run again one at a time, only `boom` failed, none was lost.
    let statuses: Vec<&str> = m
        .lines
        .iter()
        .map(|l| tiktok(l)["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["sent", "failed", "sent", "invalid"]);
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
    assert_eq!(lines, [2, 4]);
    let replay: Value = serde_json::from_str(m.dead_letters[0]["input"].as_str().unwrap()).unwrap();
    assert_eq!(
        replay["event_id"], "o-boom",
        "the dead letter keeps the input as it came"
    );
}

#[test]
fn three_poison_events_of_five_hundred_fail_alone_and_the_rest_pass() {
    let transforms = plugin_entry("picky", "hostile", json!({"mode": "picky"}), "");
    // Two neighbours in one chunk of lines (`map` reads 32 at a time), one in a later chunk.
    let booms = [7, 8, 400];
    let events: Vec<Value> = (0..500)
        .map(|i| {
            let mut ev = order(&format!("o-{i}"), "EUR");
            if booms.contains(&i) {
                ev["properties"]["note"] = json!("boom");
            }
            ev
        })
        .collect();
    let m = map(&config_with(&transforms), &events);
    assert_eq!(m.code, 0, "{}", m.stderr);
    assert_eq!(m.lines.len(), 501, "one line per input line");
    let trap = "plugin `picky` failed: trapped: wasm trap: wasm `unreachable` instruction executed";
    for (i, line) in m.lines[..500].iter().enumerate() {
        assert_eq!(line["line"], i + 1);
        let at = tiktok(line);
        if booms.contains(&i) {
            assert_eq!(at["status"], "failed", "line {}", i + 1);
            assert_eq!(at["reason"], trap);
        } else {
            assert_eq!(at["status"], "sent", "line {}: {at}", i + 1);
            let payload = &at["data"][0];
            assert_eq!(payload["event"], "Purchase");
            assert_eq!(payload["event_id"], format!("o-{i}"));
            assert_eq!(payload["properties"]["currency"], "EUR");
        }
    }
    let sent = m.lines.iter().filter(|l| tiktok(l)["status"] == "sent");
    assert_eq!(sent.count(), 497);
    // The dead letters: each poison event with the plugin and its trap, then the invalid line.
    let letters: Vec<(u64, &str)> = m
        .dead_letters
        .iter()
        .map(|d| (d["line"].as_u64().unwrap(), d["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(
        letters[..3],
        [(8, trap), (9, trap), (401, trap)],
        "{:?}",
        m.dead_letters
    );
    assert_eq!(letters.len(), 4);
    assert_eq!(letters[3].0, 501);
    for (letter, i) in m.dead_letters.iter().zip(booms) {
        let input: Value = serde_json::from_str(letter["input"].as_str().unwrap()).unwrap();
        assert_eq!(
            input, events[i],
            "the dead letter keeps the input as it came"
        );
    }
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
    assert!(
        d[0].message.contains("plugin `nope`: no file at"),
        "{}",
        lines(&d)
    );

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

/// The load errors of a config with the currency-converter plugin, shipped with `schema` beside
/// it, given `config` (YAML flow text).
fn schema_errors(schema: &str, config: &str) -> Vec<Diagnostic> {
    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join("fx.wasm");
    std::fs::copy(plugin_wasm("currency-converter"), &wasm).unwrap();
    std::fs::write(dir.path().join("fx.schema.json"), schema).unwrap();
    let text = config_with(&format!(
        "  - name: fx\n    path: {}\n    config: {config}\n",
        wasm.display()
    ));
    let text = format!("{text}allowed_dirs: [\"{}\"]\n", dir.path().display());
    load_errors(&text, &[])
}

#[test]
fn a_plugin_config_is_checked_against_the_schema_the_plugin_ships() {
    let d = schema_errors(
        r#"{"type": "object", "required": ["to", "rates"], "additionalProperties": false,
            "properties": {"rates": {"type": "object"}, "to": {"type": "string", "pattern": "^[A-Z]{3}$",
            "description": "The currency to convert to: an ISO 4217 code, such as `EUR`."}}}"#,
        "{to: euro, rates: {}, rate: 1}",
    );
    assert_eq!(d[0].path, "$.transforms[0].config.to", "{}", lines(&d));
    // Explained as the config's own errors are: the form the field's description states, not
    // the regular expression; a misspelt key with the key meant.
    assert_eq!(
        d[0].message,
        "wrong form: expected the currency to convert to: an ISO 4217 code, such as `EUR` (the \
         plugin's schema)",
        "{}",
        lines(&d)
    );
    assert!(
        d.iter()
            .any(|e| e.message.contains("did you mean `rates`?")),
        "{}",
        lines(&d)
    );
}

#[test]
fn a_plugin_schema_error_the_explanation_passes_over_is_still_said() {
    // A key only an `allOf` branch names, refused by the top level's `additionalProperties`:
    // shaped unlike Switchyard's own schemas, it must still be refused, as the validator says it.
    let d = schema_errors(
        r#"{"type": "object", "properties": {"to": {}, "rates": {}},
            "allOf": [{"properties": {"spread": {}}}], "additionalProperties": false}"#,
        "{to: EUR, rates: {}, spread: 1}",
    );
    assert_eq!(d.len(), 1, "{}", lines(&d));
    assert_eq!(d[0].path, "$.transforms[0].config", "{}", lines(&d));
    assert!(
        d[0].message.ends_with("(the plugin's schema)"),
        "{}",
        lines(&d)
    );
}

fn cli(args: &[&str], stdin: &str) -> (i32, String, String) {
    cli_bytes(args, stdin.as_bytes())
}

/// [`cli`] with input that need not be UTF-8.
fn cli_bytes(args: &[&str], mut stdin: &[u8]) -> (i32, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut argv = vec!["switchyard"];
    argv.extend_from_slice(args);
    let code = switchyard::cli::run(argv, &mut stdin, &mut out, &mut err);
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

/// `switchyard plugin test` of the hostile plugin in `mode` over `input`: exit code, stdout, stderr.
fn hostile_plugin_test(mode: &str, input: &str) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hostile.yaml");
    std::fs::write(&config, format!("mode: {mode}\n")).unwrap();
    let wasm = plugin_wasm("hostile");
    let args = [
        "plugin",
        "test",
        wasm.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ];
    cli(&args, input)
}

#[test]
fn plugin_test_refuses_a_line_that_is_not_utf8_alone_and_its_limits_as_a_config_does() {
    let fine = event("Viewed Product", json!({"product_id": "p1"})).to_string();
    let mut input = format!("{fine}\n").into_bytes();
    input.extend(b"\xff\xfe\n");
    input.extend(format!("{fine}\n").into_bytes());
    let wasm = plugin_wasm("noop");
    let (code, out, err) = cli_bytes(&["plugin", "test", wasm.to_str().unwrap()], &input);
    assert_eq!(code, 0, "{err}");
    let statuses: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["status"].clone())
        .collect();
    assert_eq!(
        statuses,
        [json!("unchanged"), json!("invalid"), json!("unchanged")],
        "{out}"
    );
    assert!(
        out.contains("not valid UTF-8 (byte 1 is not part of a UTF-8 character)"),
        "{out}"
    );
    for (flag, value) in [
        ("--memory-mib", "5000"),
        ("--memory-mib", "0"),
        ("--time-ms", "0"),
    ] {
        let (code, _, err) = cli(&["plugin", "test", wasm.to_str().unwrap(), flag, value], "");
        assert_eq!(code, 2, "{flag} {value}: {err}");
        assert!(err.contains("is not in 1..="), "{err}");
    }
}

#[test]
fn a_plugin_cannot_forge_log_lines_or_write_terminal_codes() {
    let input = format!("{}\n", event("Viewed Product", json!({"product_id": "p1"})));
    let (code, _, err) = hostile_plugin_test("forge-log", &input);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("one\\nFAKE: all events delivered\\u{1b}[31m"),
        "{err}"
    );
    assert!(!err.lines().any(|l| l.starts_with("FAKE")), "{err}");
    assert!(!err.contains('\u{1b}'), "{err}");
}

#[test]
fn plugin_test_fails_only_the_events_a_plugin_traps_on() {
    let boom = event("Viewed Product", json!({"product_id": "boom"}));
    let fine = event("Viewed Product", json!({"product_id": "p1"}));
    let (code, out, err) = hostile_plugin_test("picky", &format!("{fine}\n{boom}\n{fine}\n"));
    assert_eq!(code, 0, "{err}");
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines,
        [
            json!({"line": 1, "status": "unchanged"}),
            json!({"line": 2, "status": "failed",
                   "reason": "trapped: wasm trap: wasm `unreachable` instruction executed"}),
            json!({"line": 3, "status": "unchanged"}),
        ]
    );
    assert!(err.contains("hostile: 1 failed, 2 unchanged"), "{err}");
}

#[test]
fn plugin_test_checks_what_the_plugin_returns_as_the_engine_does() {
    let input = format!("{}\n", event("Viewed Product", json!({"product_id": "p1"})));
    let (code, out, err) = hostile_plugin_test("malformed", &input);
    assert_eq!(code, 0, "{err}");
    let line: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(line["status"], "failed", "{line}");
    let reason = line["reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("returned an invalid event: not valid JSON"),
        "{reason}"
    );
    assert!(err.contains("hostile: 1 failed"), "{err}");
}

#[test]
fn plugin_new_scaffolds_a_crate_that_builds_and_runs() {
    // Inside the source tree (the examples' target folder, ignored by git), as a user of a
    // checkout would: the SDK path must then be relative, and the build offline and locked.
    let scratch = root().join("plugins/transforms/examples/target");
    std::fs::create_dir_all(&scratch).unwrap();
    let dir = tempfile::tempdir_in(&scratch).unwrap();
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
    assert!(
        out.contains("the plugin is then ")
            && out
                .trim_end()
                .ends_with("shop-tagger/target/wasm32-wasip2/release/shop_tagger.wasm"),
        "{out}"
    );
    let crate_dir = dir.path().join("shop-tagger");
    for file in ["Cargo.lock", "README.md", "config.yaml", "events.ndjson"] {
        assert!(crate_dir.join(file).is_file(), "no {file}: {err}");
    }
    let manifest = std::fs::read_to_string(crate_dir.join("Cargo.toml")).unwrap();
    assert!(
        manifest.contains("switchyard-plugin-sdk = { path = \"../../../../sdk\" }"),
        "{manifest}"
    );
    // Share the examples' target folder so the dependencies are not built again.
    let status = std::process::Command::new(env!("CARGO"))
        .args(["build", "--release", "--quiet", "--offline", "--locked"])
        .current_dir(&crate_dir)
        .env("CARGO_TARGET_DIR", &scratch)
        .status()
        .unwrap();
    assert!(status.success(), "the scaffolded crate does not build");
    let wasm = scratch.join("wasm32-wasip2/release/shop_tagger.wasm");
    let (code, out, err) = cli(
        &[
            "plugin",
            "test",
            wasm.to_str().unwrap(),
            "--config",
            crate_dir.join("config.yaml").to_str().unwrap(),
            "--input",
            crate_dir.join("events.ndjson").to_str().unwrap(),
        ],
        "",
    );
    assert_eq!(code, 0, "{err}");
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines[0]["events"][0]["properties"]["source_tag"], "my-shop",
        "{out}"
    );
    assert_eq!(lines[1]["status"], "dropped", "{out}");
    assert!(
        err.contains("plugin shop_tagger: debug: tagging evt-1"),
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

/// Two TikTok destinations: `tiktok` with the given plugin lists (YAML, indented under it) and
/// `plain` without plugins, to show that a destination's plugins touch that destination only.
fn two_destinations(tiktok_plugins: &str) -> String {
    let mut text = tiktok_config(tiktok_plugins);
    text.push_str(
        "  - name: plain\n    type: tiktok\n    pixel_id: CJQBODJC77UB4MRTGFRF\n\
         \x20   access_token: \"${TIKTOK_ACCESS_TOKEN}\"\n    domain: https://shop.example.com\n\
         \x20   sources: [web, server]\n",
    );
    text
}

/// A plugin list under a destination key (`transforms` or `payload_transforms`).
fn destination_plugins(key: &str, entries: &[String]) -> String {
    let mut text = format!("{key}:\n");
    for e in entries {
        text.push_str(e);
    }
    text
}

fn content_ids(outcome: &Value) -> Vec<&str> {
    outcome["data"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|d| d["properties"]["contents"].as_array().unwrap())
        .map(|c| c["content_id"].as_str().unwrap())
        .collect()
}

#[test]
fn a_destinations_transforms_change_its_events_only() {
    let config = two_destinations(&destination_plugins("transforms", &[splitter()]));
    let m = map(&config, &[kit_cart()]);
    assert_eq!(m.code, 0, "{}", m.stderr);
    // One output line per input event: the split happened inside the `tiktok` destination, whose
    // outcome carries both events; `plain` got the event as it came.
    assert_eq!(m.lines.len(), 2, "{:?}", m.lines);
    let split = tiktok(&m.lines[0]);
    assert_eq!(split["status"], "sent");
    assert_eq!(content_ids(split), ["a", "b"]);
    let event_ids: Vec<&str> = split["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(event_ids, ["cart-1:1", "cart-1:2"]);
    assert_eq!(content_ids(&m.lines[0]["destinations"]["plain"]), ["KIT-1"]);
}

#[test]
fn payload_transforms_work_on_the_platform_payload() {
    let prefix = plugin_entry(
        "catalogue",
        "content-id-prefix",
        json!({"prefix": "shopify_US_"}),
        "",
    );
    let config = two_destinations(&destination_plugins("payload_transforms", &[prefix]));
    let m = map(&config, &[order("o-1", "EUR"), order("o-2", "EUR")]);
    assert_eq!(m.code, 0, "{}", m.stderr);
    for line in &m.lines[..2] {
        assert_eq!(content_ids(tiktok(line)), ["shopify_US_KIT-1"]);
        assert_eq!(content_ids(&line["destinations"]["plain"]), ["KIT-1"]);
    }
    // The requests carry the changed payloads too.
    let cfg = write_config(&config, &[]);
    let input = format!("{}\n", order("o-1", "EUR"));
    let (code, out, err) = cli(
        &[
            "map",
            "--config",
            cfg.path.to_str().unwrap(),
            "--request",
            "-",
        ],
        &input,
    );
    assert_eq!(code, 0, "{err}");
    let request: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(request["destination"], "tiktok");
    assert_eq!(
        request["request"]["body"]["data"][0]["properties"]["contents"][0]["content_id"],
        "shopify_US_KIT-1",
        "{request}"
    );
}

#[test]
fn a_failing_payload_plugin_fails_that_destination_only_and_keeps_a_dead_letter() {
    for (mode, status, reason) in [
        (
            "fail",
            "failed",
            "plugin `h` failed: cannot handle an event of",
        ),
        (
            "drop",
            "filtered",
            "plugin `h` dropped it: not for this shop",
        ),
        (
            "malformed",
            "failed",
            "plugin `h` failed: returned an invalid event: not JSON",
        ),
    ] {
        let h = plugin_entry("h", "hostile", json!({"mode": mode}), "");
        let config = two_destinations(&destination_plugins("payload_transforms", &[h]));
        let m = map(&config, &[order("o-1", "EUR")]);
        assert_eq!(m.code, 0, "{mode}: {}", m.stderr);
        let at_tiktok = tiktok(&m.lines[0]);
        assert_eq!(at_tiktok["status"], status, "{mode}");
        let got = at_tiktok["reason"].as_str().unwrap();
        assert!(got.starts_with(reason), "{mode}: {got}");
        assert_eq!(m.lines[0]["destinations"]["plain"]["status"], "sent");
        // The dead letters: the invalid last line, and (for a failure) the event at `tiktok`.
        let at_destination: Vec<&Value> = m
            .dead_letters
            .iter()
            .filter(|d| d["destination"] == "tiktok")
            .collect();
        if status == "failed" {
            assert_eq!(at_destination.len(), 1, "{mode}");
            assert_eq!(at_destination[0]["line"], 1);
            assert!(at_destination[0]["input"].as_str().unwrap().contains("o-1"));
        } else {
            assert!(at_destination.is_empty(), "{mode}");
        }
    }
}

#[test]
fn payload_plugins_act_on_the_browser_copy_of_client_only_rows_too() {
    // `Purchase` fires in the browser only: its event object goes through the payload plugins
    // like a server copy, so a plugin that drops it keeps the pixel quiet too.
    let client_only = "rows: [{source: Placed Order, target: Purchase, mode: client}]\n";
    for (mode, status, client) in [
        ("drop", "filtered", json!(null)),
        ("", "sent", json!(["Purchase"])),
    ] {
        let h = plugin_entry("h", "hostile", json!({ "mode": mode }), "");
        let plugins = destination_plugins("payload_transforms", &[h]);
        let config = two_destinations(&format!("{client_only}{plugins}"));
        let m = map(&config, &[order("o-1", "EUR")]);
        assert_eq!(m.code, 0, "{mode}: {}", m.stderr);
        let at_tiktok = tiktok(&m.lines[0]);
        assert_eq!(at_tiktok["status"], status, "{mode}: {at_tiktok}");
        assert_eq!(at_tiktok["client"], client, "{mode}: {at_tiktok}");
        assert_eq!(
            at_tiktok.get("data"),
            None,
            "nothing server-side: {at_tiktok}"
        );
        if mode == "drop" {
            let reason = at_tiktok["reason"].as_str().unwrap();
            assert_eq!(reason, "plugin `h` dropped it: not for this shop");
        }
    }
}

/// `map`'s line for `event` on the two destinations, the hostile plugin in `mode` as TikTok's
/// payload plugin.
fn through_payload_plugin(mode: &str, event: Value) -> Value {
    let h = plugin_entry("h", "hostile", json!({"mode": mode}), "");
    let config = two_destinations(&destination_plugins("payload_transforms", &[h]));
    let m = map(&config, &[event]);
    assert_eq!(m.code, 0, "{}", m.stderr);
    m.lines[0].clone()
}

#[test]
fn what_a_payload_plugin_returns_is_held_to_what_tiktok_takes() {
    // The plugin returns fields TikTok would refuse (or take unhashed): they are converted where
    // they convert and left out with a warning where they do not, as a mapping's would be.
    let line = through_payload_plugin("mistyped", order("o-1", "EUR"));
    let at_tiktok = tiktok(&line);
    assert_eq!(at_tiktok["status"], "sent", "{at_tiktok}");
    let sent = &at_tiktok["data"][0];
    let digest = "8c87b489ce35cf2e2f39f80e282cb2e804932a56a213983eeeb428407d43b52d";
    assert_eq!(
        sent["user"],
        json!({"phone": digest, "user_agent": "Mozilla/5.0"}),
        "{sent}"
    );
    assert_eq!(sent["properties"]["value"], json!(19.9), "{sent}");
    assert_eq!(
        sent["properties"]["contents"],
        json!([{"content_id": "5", "quantity": 1}]),
        "{sent}"
    );
    assert_eq!(sent["event_time"], json!(1725278400), "{sent}");
    // Fields without a value are left out, as the mapping leaves them out.
    assert!(sent.get("page").is_none(), "{sent}");
    assert!(sent["properties"].get("description").is_none(), "{sent}");
    let warned: Vec<(&str, &str)> = at_tiktok["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| (w["field"].as_str().unwrap(), w["message"].as_str().unwrap()))
        .collect();
    let unhashed = "not a SHA-256 digest where TikTok takes only hashed values (a payload plugin \
                    returned it): left out";
    let unknown = "not a matching key TikTok takes (a payload plugin returned it): left out, as \
                   its value would reach TikTok unhashed";
    for expected in [
        (
            "user.ip",
            "an array where the platform takes text: left out",
        ),
        (
            "properties.contents[0].price",
            "text that is no number where the platform takes a number: left out",
        ),
        ("user.email", unhashed),
        ("user.external_id", unhashed),
        ("user.Email", unknown),
        ("user.phone_number", unknown),
    ] {
        assert!(warned.contains(&expected), "{expected:?} in {warned:?}");
    }
    for plain in ["someone@example.com", "+31612345678"] {
        assert!(
            !at_tiktok.to_string().contains(plain),
            "{plain} is nowhere in the outcome: {at_tiktok}"
        );
    }
}

#[test]
fn a_user_the_check_empties_is_not_sent_at_all() {
    let line = through_payload_plugin("unhashed-user", order("o-1", "EUR"));
    let at_tiktok = tiktok(&line);
    let sent = &at_tiktok["data"][0];
    assert_eq!(sent["event"], "CompletePayment", "{at_tiktok}");
    assert!(sent.get("user").is_none(), "no empty user: {sent}");
    let warned: Vec<&str> = at_tiktok["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|w| w["field"].as_str())
        .filter(|f| f.starts_with("user."))
        .collect();
    assert_eq!(warned, ["user.Email", "user.email"], "{at_tiktok}");
}

#[test]
fn a_time_a_payload_plugin_returns_is_sent_in_seconds_or_the_events_own_is() {
    // TikTok takes `event_time` in whole unix seconds, and refuses a whole request for one event
    // without a valid one: ISO-8601 text is read as an event's timestamp is; text that is no time
    // is replaced by the event's own time, with a warning.
    let line = through_payload_plugin("iso-time", order("o-1", "EUR"));
    let at_tiktok = tiktok(&line);
    let sent = at_tiktok["data"].as_array().unwrap();
    assert_eq!(sent.len(), 2, "{at_tiktok}");
    assert_eq!(sent[0]["event_time"], json!(1725278400), "{at_tiktok}");
    assert_eq!(sent[1]["event_time"], json!(1725280000), "{at_tiktok}");
    let warned: Vec<&Value> = at_tiktok["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["field"] == "event_time")
        .collect();
    let no_time = "not a time TikTok takes (a payload plugin returned it): unix seconds from \
                   1970, or ISO-8601 text with a timezone; the event's own time is sent";
    assert_eq!(warned.len(), 1, "{at_tiktok}");
    assert_eq!(warned[0]["message"], no_time, "{at_tiktok}");
}

#[test]
fn a_list_of_digests_passes_a_payload_plugin_unchanged() {
    // The mapping sends every identity an event carries as a list of digests: a payload plugin
    // that changes nothing must not lose them.
    let mut ev = order("o-1", "EUR");
    ev["profile_properties"]["$email"] = json!("a@example.com");
    ev["properties"]["$email"] = json!("b@example.com");
    let line = through_payload_plugin("", ev);
    let with_plugin = &tiktok(&line)["data"][0]["user"]["email"];
    let without = &line["destinations"]["plain"]["data"][0]["user"]["email"];
    assert_eq!(with_plugin.as_array().map(Vec::len), Some(2), "{}", line);
    assert_eq!(with_plugin, without);
    let warnings = tiktok(&line)["warnings"].to_string();
    assert!(!warnings.contains("user.email"), "{warnings}");
}

#[test]
fn destination_plugin_declarations_are_checked_at_load() {
    let text = tiktok_config(
        "transforms:\n  - {name: a, path: missing-a.wasm}\npayload_transforms:\n  - {name: b, path: missing-b.wasm}\n",
    );
    let d = load_errors(&text, &[]);
    let found: Vec<(usize, &str)> = d.iter().map(|d| (d.line, d.path.as_str())).collect();
    assert_eq!(
        found,
        [
            (12, "$.destinations[0].transforms[0].path"),
            (14, "$.destinations[0].payload_transforms[0].path")
        ],
        "{}",
        lines(&d)
    );
}

#[test]
fn plugin_test_feeds_payloads_to_payload_plugins() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prefix.yaml");
    std::fs::write(&config, "prefix: shopify_US_\n").unwrap();
    let wasm = plugin_wasm("content-id-prefix");
    let payload = json!({"event": "ViewContent", "event_id": "e1",
        "properties": {"contents": [{"content_id": "8001"}]}});
    let input = format!("{payload}\n[1, 2]\n");
    let args = |payloads: bool| {
        let mut a = vec![
            "plugin",
            "test",
            wasm.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
        ];
        if payloads {
            a.push("--payloads");
        }
        a
    };
    let (code, out, err) = cli(&args(true), &input);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["status"], "changed", "{out}");
    assert_eq!(
        lines[0]["events"][0]["properties"]["contents"][0]["content_id"],
        "shopify_US_8001"
    );
    assert_eq!(lines[1]["status"], "invalid");
    assert!(lines[1]["reason"].as_str().unwrap().contains("JSON object"));
    // Without --payloads the same line is not a valid source event.
    let (_, out, _) = cli(&args(false), &input);
    assert!(out.lines().next().unwrap().contains("\"invalid\""), "{out}");
}

#[test]
fn a_config_the_plugin_refuses_is_placed_in_the_yaml() {
    let text = format!(
        "{}transforms:\n  - name: fx\n    path: {}\n    config:\n      to: EUR\n      rates:\n        USD: one\n",
        tiktok_config(""),
        plugin_wasm("currency-converter").display()
    );
    let d = load_errors(&allow_plugin_dir(&text), &[]);
    assert_eq!(d.len(), 1, "{}", lines(&d));
    assert_eq!(
        (d[0].line, d[0].path.as_str()),
        (17, "$.transforms[0].config.rates.USD"),
        "{}",
        lines(&d)
    );
    assert!(
        d[0].message.contains("refused its config") && !d[0].message.contains("column"),
        "{}",
        lines(&d)
    );
}
