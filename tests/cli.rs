//! The `switchyard` command, run in process: `map` on the shipped examples (one result line per
//! input line, invalid lines kept), `--request` batching with secrets redacted, `validate` exit codes,
//! and `schemas/` kept in step with the Rust types.

use base64::Engine as _;
use serde_json::{Value, json};
use switchyard_tests::*;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(args: &[&str], stdin: &str) -> Run {
    let mut out = Vec::new();
    let mut err = Vec::new();
    let mut input = stdin.as_bytes();
    let mut argv = vec!["switchyard"];
    argv.extend_from_slice(args);
    let code = switchyard::cli::run(argv, &mut input, &mut out, &mut err);
    Run {
        code,
        stdout: String::from_utf8(out).unwrap(),
        stderr: String::from_utf8(err).unwrap(),
    }
}

fn example(name: &str) -> String {
    root()
        .join("examples")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn map_on_the_examples_gives_one_line_per_input_line() {
    let r = run(
        &[
            "map",
            "--config",
            &example("switchyard.yaml"),
            "--now",
            "1725278400",
            &example("events.ndjson"),
        ],
        "",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let input_lines = std::fs::read_to_string(example("events.ndjson"))
        .unwrap()
        .lines()
        .count();
    let out = json_lines(&r.stdout);
    assert_eq!(out.len(), input_lines);
    let statuses: Vec<(u64, &str)> = out
        .iter()
        .map(|l| {
            (
                l["line"].as_u64().unwrap(),
                l["destinations"]["tiktok"]["status"].as_str().unwrap(),
            )
        })
        .collect();
    let expected: Vec<(u64, &str)> = (1..=20)
        .map(|n| {
            let status = match n {
                10 => "filtered",
                17 | 18 => "skipped",
                19 | 20 => "invalid",
                _ => "sent",
            };
            (n, status)
        })
        .collect();
    assert_eq!(statuses, expected);
    assert_eq!(
        out[18]["destinations"]["tiktok"]["reason"],
        "line 19: `event_id` is missing"
    );
    assert!(
        out[19]["destinations"]["tiktok"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("line 20: not valid JSON")
    );
    assert!(
        r.stderr
            .contains("20 events; tiktok: 1 filtered, 2 invalid, 15 sent, 2 skipped"),
        "{}",
        r.stderr
    );
}

#[test]
fn map_reads_standard_input_and_names_the_source() {
    let ev = event(
        "Viewed Product",
        json!({"product_id": "p1", "price": 5, "currency": "EUR"}),
    );
    let r = run(
        &[
            "map",
            "--config",
            &example("switchyard.yaml"),
            "--source",
            "shop-server",
            "-",
        ],
        &ev.to_string(),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let out = json_lines(&r.stdout);
    assert_eq!(
        out[0]["destinations"]["tiktok"]["data"][0]["event"],
        "ViewContent"
    );
    let r = run(
        &[
            "map",
            "--config",
            &example("switchyard.yaml"),
            "--source",
            "pos",
            "-",
        ],
        "",
    );
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("no source named `pos`"), "{}", r.stderr);
}

#[test]
fn map_warns_once_per_rule_field_that_never_matched_over_the_whole_input() {
    // `$.properties.ratng` is inside the envelope (no load warning) but matches nothing.
    let config = std::fs::read_to_string(example("switchyard.yaml"))
        .unwrap()
        .replace(
            "          properties.description: \"$.properties.result\"",
            "          properties.description: \"$.properties.result\"\n          properties.rating: \"$.properties.ratng\"",
        );
    assert!(config.contains("ratng"), "the example config changed");
    let cfg = write_config(&config, &[]);
    let quiz = event(
        "Quiz Completed",
        json!({"result": "oily skin", "rating": 4}),
    );
    let view = event(
        "Viewed Product",
        json!({"product_id": "p1", "price": 5, "referrer": "https://a.example/"}),
    );
    let input = [&quiz, &quiz, &quiz, &view]
        .map(|e| e.to_string())
        .join("\n");
    let r = run(
        &["map", "--config", cfg.path.to_str().unwrap(), "-"],
        &input,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let warnings: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.starts_with("warning: "))
        .collect();
    assert!(
        warnings.contains(
            &"warning: field properties.rating of row Quiz Completed → Lead (tiktok) never matched in 3 events"
        ),
        "{}",
        r.stderr
    );
    // A field that matched is not reported; nor is a row that built nothing (Placed Order).
    assert!(
        !r.stderr.contains("field properties.description"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("Placed Order"), "{}", r.stderr);
    // A template's field is one rule over every row that uses it: matched in one row (the
    // product view's referrer), it is not reported for the other.
    assert!(!r.stderr.contains("field page.referrer"), "{}", r.stderr);
    // One that matched in no row is reported once, over both rows' payloads.
    assert!(
        warnings
            .contains(&"warning: field user.email of 2 rows (tiktok) never matched in 4 events"),
        "{}",
        r.stderr
    );
    assert_eq!(
        warnings
            .iter()
            .filter(|w| w.contains("field user.email "))
            .count(),
        1,
        "{}",
        r.stderr
    );
}

#[test]
fn map_converts_or_leaves_out_fields_of_the_wrong_type_and_warns() {
    // The probe's findings: `page.url: ["x"]` and `user.ip: 12345` were sent as they were (TikTok
    // refuses the request: 40002), a contents entry without `content_id` and a Placed Order
    // without `$is_new_customer` were sent without a word.
    let mut search = event(
        "Searched",
        json!({"query": "tee", "$url": ["https://shop.example/?q=tee"]}),
    );
    search["profile_properties"] = json!({"$ip": 12345});
    let collection = event(
        "Viewed Collection",
        json!({"items": [{"product_id": "p1", "price": "x"}, {"name": "Cap", "price": 5}]}),
    );
    let order = event(
        "Placed Order",
        json!({"id": 7, "total_price": 10, "currency": "EUR",
               "items": [{"product_id": "p1", "price": 10, "quantity": 1}]}),
    );
    let input = [&search, &collection, &order]
        .map(|e| e.to_string())
        .join("\n");
    let r = run(
        &["map", "--config", &example("switchyard.yaml"), "-"],
        &input,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let out = json_lines(&r.stdout);
    let tiktok: Vec<&Value> = out.iter().map(|l| &l["destinations"]["tiktok"]).collect();
    assert!(tiktok.iter().all(|t| t["status"] == "sent"), "{tiktok:?}");
    let search = &tiktok[0]["data"][0];
    assert_eq!(search["user"], json!({"ip": "12345"}));
    assert_eq!(search.get("page"), None, "{search}");
    assert_eq!(
        tiktok[0]["warnings"],
        json!([{"field": "user.ttclid", "message": "not a URL"},
               {"field": "page.url", "message": "an array where the platform takes text: left out"}])
    );
    assert_eq!(
        tiktok[1]["data"][0]["properties"]["contents"],
        json!([{"content_id": "p1", "content_type": "product"}, {"content_name": "Cap", "price": 5}])
    );
    assert_eq!(
        tiktok[1]["warnings"],
        json!([
            {"field": "properties.contents[].price", "message": "not a number"},
            {"field": "properties.contents[1].content_id",
             "message": "missing: sent without it, the entry matches no catalog item"}
        ])
    );
    assert_eq!(tiktok[2]["data"][0]["event"], "Purchase");
    assert_eq!(
        tiktok[2]["warnings"][0]["field"], "properties.$is_new_customer",
        "{}",
        tiktok[2]
    );
    assert_eq!(tiktok[2]["warnings"].as_array().map(Vec::len), Some(1));
}

#[test]
fn a_line_that_is_not_utf8_is_refused_alone_and_kept_as_a_dead_letter() {
    let dir = tempfile::tempdir().unwrap();
    let good = event("Viewed Product", json!({"product_id": "p1", "price": 5}));
    // 300 lines, so that the bad one is in a later chunk than the first the dry run reads (it
    // reads 32 lines at a time); one blank line.
    let mut input = Vec::new();
    for i in 0..300 {
        match i {
            260 => input.extend_from_slice(b"{\"event_name\":\"X\xff\xfe\"}"),
            270 => {}
            _ => input.extend_from_slice(good.to_string().as_bytes()),
        }
        input.push(b'\n');
    }
    let path = dir.path().join("events.ndjson");
    std::fs::write(&path, &input).unwrap();
    let letters = dir.path().join("letters.ndjson");
    let r = run(
        &[
            "map",
            "--config",
            &example("switchyard.yaml"),
            "--dead-letters",
            letters.to_str().unwrap(),
            path.to_str().unwrap(),
        ],
        "",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let out = json_lines(&r.stdout);
    assert_eq!(out.len(), 299, "one line per non-blank input line");
    let refused: Vec<&Value> = out
        .iter()
        .filter(|l| l["destinations"]["tiktok"]["status"] != "sent")
        .collect();
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0]["line"], 261);
    assert_eq!(
        refused[0]["destinations"]["tiktok"]["reason"],
        "line 261: not valid UTF-8 (byte 17 is not part of a UTF-8 character)"
    );
    assert_eq!(
        out[270]["line"], 272,
        "the blank line 271 is skipped, not renumbered"
    );
    let letters = json_lines(&std::fs::read_to_string(letters).unwrap());
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0]["line"], 261);
    assert_eq!(
        letters[0]["input"],
        "{\"event_name\":\"X\u{fffd}\u{fffd}\"}"
    );
    // The line's bytes as read, so that nothing of the input is lost.
    let bytes = letters[0]["input_base64"].as_str().expect("input_base64");
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(bytes)
            .unwrap(),
        b"{\"event_name\":\"X\xff\xfe\"}"
    );
    assert!(
        r.stderr.contains("299 events; tiktok: 1 invalid, 298 sent"),
        "{}",
        r.stderr
    );
}

#[test]
fn requests_are_batched_and_never_show_the_token() {
    const VAR: &str = "SWITCHYARD_CLI_TEST_TOKEN";
    const TOKEN: &str = "tt-secret-value-0123456789";
    // SAFETY: this variable is read by this test only.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var(VAR, TOKEN)
    };
    let config = std::fs::read_to_string(example("switchyard.yaml"))
        .unwrap()
        .replace("TIKTOK_ACCESS_TOKEN", VAR)
        .replace("SHOP_SERVER_WRITE_KEY", VAR)
        .replace(
            "    sources: [shop-web, shop-server]",
            "    sources: [shop-web, shop-server]\n    batch_size: 4\n    test_event_code: TEST123",
        );
    let cfg = write_config(&config, &[]);
    let r = run(
        &[
            "map",
            "--config",
            cfg.path.to_str().unwrap(),
            "--request",
            &example("events.ndjson"),
        ],
        "",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        !r.stdout.contains(TOKEN) && !r.stderr.contains(TOKEN),
        "the token leaked"
    );
    let requests = json_lines(&r.stdout);
    let sizes: Vec<usize> = requests
        .iter()
        .map(|q| q["request"]["body"]["data"].as_array().unwrap().len())
        .collect();
    // 15 sent events yield 16 server events (one order is also a NewCustomerPurchase).
    assert_eq!(sizes, [4, 4, 4, 4]);
    let q = &requests[0]["request"];
    assert_eq!(q["method"], "POST");
    assert_eq!(
        q["url"],
        "https://business-api.tiktok.com/open_api/v1.3/event/track/"
    );
    assert_eq!(
        q["headers"]["Access-Token"],
        format!("${{{VAR}}} (redacted)")
    );
    assert_eq!(q["body"]["event_source"], "web");
    assert_eq!(q["body"]["event_source_id"], "CJQBODJC77UB4MRTGFRF");
    assert_eq!(q["body"]["test_event_code"], "TEST123");
    let validate = run(&["validate", cfg.path.to_str().unwrap()], "");
    assert_eq!(validate.code, 0);
    assert!(
        validate.stderr.is_empty(),
        "the variable is set, so no warning: {}",
        validate.stderr
    );
}

#[test]
fn validate_exit_codes_and_messages() {
    let ok = run(&["validate", &example("switchyard.yaml")], "");
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    assert!(
        ok.stdout
            .contains("ok (2 sources, 1 destinations, 15 mapping rows)"),
        "{}",
        ok.stdout
    );
    let bad = root().join("tests/fixtures/bad/pixel-id.yaml");
    let r = run(
        &[
            "validate",
            &example("switchyard.yaml"),
            bad.to_str().unwrap(),
        ],
        "",
    );
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .contains("pixel-id.yaml:8:5: error: $.destinations[0].pixel_id:"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("pixel-id.yaml: 1 error(s)"),
        "{}",
        r.stderr
    );
    let missing = run(&["validate", "/nonexistent/switchyard.yaml"], "");
    assert_eq!(missing.code, 1);
    assert!(
        missing.stderr.contains("cannot read the file"),
        "{}",
        missing.stderr
    );
    assert_eq!(run(&["map"], "").code, 2, "usage errors exit 2");
}

/// A config named by its bare file name, run in its own folder (`switchyard validate
/// switchyard.yaml`), loads the mapping file next to it, and still refuses one outside it.
#[test]
fn a_config_named_without_its_folder_finds_the_files_next_to_it() {
    let mapping = "rows:\n  - source: Placed Order\n    target: CompletePayment\n    mode: server\n    fields:\n      properties.value: { const: 2 }\n";
    let validate = |reference: &str| {
        let text = tiktok_config(&format!("mapping: {reference}"));
        let cfg = write_config(&text, &[("my-mapping.yaml", mapping)]);
        let name = cfg.path.file_name().expect("the config's file name");
        let out = std::process::Command::new(switchyard_tests::service::switchyard_bin())
            .arg("validate")
            .arg(name)
            .current_dir(cfg.dir.path())
            .output()
            .expect("switchyard runs");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned() + &stderr,
        )
    };
    let (code, out) = validate("my-mapping.yaml");
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("1 mapping rows"), "{out}");
    let (code, out) = validate("../my-mapping.yaml");
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("outside the config's folder"), "{out}");
}

#[test]
fn now_and_the_input_are_refused_with_their_reason_when_they_cannot_be_right() {
    let config = example("switchyard.yaml");
    for (now, ok) in [
        ("-1", false),
        ("1725300000000", false),
        ("0", true),
        ("1725300000", true),
    ] {
        let r = run(&["map", "--config", &config, &format!("--now={now}")], "");
        assert_eq!(r.code == 0, ok, "--now {now}: {}", r.stderr);
        if !ok {
            assert!(r.stderr.contains("is not unix seconds"), "{}", r.stderr);
        }
    }
    let folder = root().join("examples");
    let r = run(&["map", "--config", &config, &folder.to_string_lossy()], "");
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("is a folder, not a file of events"),
        "{}",
        r.stderr
    );
}

#[test]
fn checked_in_schemas_match_the_rust_types() {
    for (name, schema) in switchyard::commands::schema::all() {
        let path = root().join("schemas").join(name);
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            on_disk == switchyard::commands::schema::render(&schema),
            "{} is stale: run `cargo run -p switchyard -- schema --out schemas`",
            path.display()
        );
    }
}

#[test]
fn schema_writes_or_prints_the_kind_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let (code, said, err) =
        switchyard_tests::service::cli(&["schema", "--kind", "mapping", "--out", out]);
    assert_eq!(code, 0, "{err}");
    assert!(
        said.ends_with("mapping.schema.json\n") && said.lines().count() == 1,
        "{said}"
    );
    let written: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(written.len(), 1);
    let (code, printed, err) =
        switchyard_tests::service::cli(&["schema", "--kind", "mapping-tests"]);
    assert_eq!(code, 0, "{err}");
    let on_disk =
        std::fs::read_to_string(root().join("schemas/mapping-tests.schema.json")).unwrap();
    assert_eq!(printed, on_disk);
}

#[test]
fn shipped_yaml_files_point_editors_at_their_schema() {
    for (file, schema) in [
        ("mappings/tiktok.yaml", "mapping.schema.json"),
        ("examples/switchyard.yaml", "config.schema.json"),
    ] {
        let text = std::fs::read_to_string(root().join(file)).unwrap();
        let first = text.lines().next().unwrap_or_default();
        assert_eq!(
            first,
            format!("# yaml-language-server: $schema=../schemas/{schema}"),
            "{file}"
        );
    }
}

#[test]
fn readme_sample_output_is_what_the_main_command_prints() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let sample = readme
        .split("```json\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("README has a json sample");
    let r = run(
        &[
            "map",
            "--config",
            &example("switchyard.yaml"),
            "--now",
            "1725278400",
            &example("events.ndjson"),
        ],
        "",
    );
    let printed: Vec<&str> = r.stdout.lines().collect();
    let mut checked = 0;
    for line in sample.lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            printed.contains(&line),
            "README line not printed by the main command:\n{line}"
        );
        checked += 1;
    }
    assert_eq!(checked, 3);
}

#[test]
fn version_names_the_commit_and_completions_cover_every_command() {
    let v = run(&["--version"], "");
    assert_eq!(v.code, 0);
    let printed = format!("{}{}", v.stdout, v.stderr);
    let commit = printed
        .split("(commit ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .unwrap_or_else(|| panic!("no commit in {printed}"));
    if root().join(".git").exists() {
        let hex = commit.trim_end_matches("-modified");
        assert!(
            hex.len() == 12 && hex.chars().all(|c| c.is_ascii_hexdigit()),
            "{printed}"
        );
    }
    for shell in ["bash", "zsh", "fish"] {
        let c = run(&["completions", shell], "");
        assert_eq!(c.code, 0, "{}", c.stderr);
        for command in ["validate", "map", "serve", "replay", "dead-letters", "drop"] {
            assert!(c.stdout.contains(command), "{shell}: no `{command}`");
        }
    }
}

/// Every property of every shipped schema, with where it is (for messages).
fn properties(node: &Value, at: String, out: &mut Vec<(String, Value)>) {
    match node {
        Value::Object(map) => {
            if let Some(Value::Object(props)) = map.get("properties") {
                for (name, prop) in props {
                    out.push((format!("{at}.{name}"), prop.clone()));
                }
            }
            for (key, value) in map {
                properties(value, format!("{at}/{key}"), out);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                properties(item, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn every_shipped_schema_is_valid_against_its_meta_schema() {
    // Editors and CI tools read these files: a schema its own draft refuses would be ignored or
    // refused by them, whatever the engine makes of it.
    for (name, schema) in switchyard::commands::schema::all() {
        assert!(schema.get("$schema").is_some(), "{name}: no $schema");
        if let Err(e) = jsonschema::meta::validate(&schema) {
            panic!(
                "{name}: not a valid schema of its draft at {}: {e}",
                e.instance_path()
            );
        }
        // The check can fail: the same schema with a type no draft has.
        let mut broken = schema.clone();
        broken["type"] = "record".into();
        assert!(jsonschema::meta::validate(&broken).is_err(), "{name}");
    }
}

#[test]
fn every_schema_property_is_described_with_standard_formats_and_an_id() {
    const STANDARD: [&str; 4] = ["date-time", "uri", "email", "regex"];
    for (name, schema) in switchyard::commands::schema::all() {
        let mut props = Vec::new();
        properties(&schema, String::new(), &mut props);
        assert!(props.len() >= 5, "{name}: only {} properties", props.len());
        let undescribed: Vec<&str> = props
            .iter()
            .filter(|(_, p)| {
                p.get("description")
                    .and_then(Value::as_str)
                    .is_none_or(|d| d.trim().is_empty())
            })
            .map(|(at, _)| at.as_str())
            .collect();
        assert!(
            undescribed.is_empty(),
            "{name}: no description: {undescribed:?}"
        );
        let text = schema.to_string();
        for format in text.split("\"format\":\"").skip(1) {
            let format = format.split('"').next().unwrap_or_default();
            assert!(STANDARD.contains(&format), "{name}: format `{format}`");
        }
        let id = schema["$id"].as_str().unwrap_or_default();
        assert!(
            id.starts_with("urn:switchyard:schema:"),
            "{name}: $id {id:?}"
        );
    }
}

/// The Dockerfile's build stage runs `scripts/build-release` (the PGO build laid out by BOLT
/// unless told otherwise) and copies what it wrote: the two agree, the stage installs BOLT, and
/// the script refuses a build kind it does not know before it builds anything.
#[test]
fn the_dockerfile_ships_what_scripts_build_release_writes() {
    let root = switchyard_tests::root();
    let dockerfile = std::fs::read_to_string(root.join("Dockerfile")).expect("Dockerfile");
    assert!(dockerfile.contains("ARG PGO=1"), "{dockerfile}");
    assert!(dockerfile.contains("ARG BOLT=1"), "{dockerfile}");
    assert!(dockerfile.contains(" bolt-19"), "{dockerfile}");
    assert!(
        dockerfile.contains("RUN scripts/build-release \"$PGO\" /switchyard"),
        "{dockerfile}"
    );
    assert!(
        dockerfile.contains("COPY --from=build /switchyard /usr/local/bin/switchyard"),
        "{dockerfile}"
    );
    let out = std::process::Command::new(root.join("scripts/build-release"))
        .args(["2", "/nonexistent/switchyard"])
        .output()
        .expect("the script runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("1: the PGO build, 0: the plain one; not '2'"),
        "{err}"
    );
    let out = std::process::Command::new(root.join("scripts/build-release"))
        .args(["1", "/nonexistent/switchyard"])
        .env("BOLT", "yes")
        .output()
        .expect("the script runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("BOLT must be 1"), "{err}");
}

/// `scripts/bolt` lays out only a binary linked with its relocations, and says how to get one
/// (before it looks for BOLT's tools, so this holds where BOLT is not installed): the test
/// suite's build keeps none.
#[test]
fn scripts_bolt_refuses_a_binary_without_relocations_and_says_how_to_build_one() {
    let root = switchyard_tests::root();
    let bin = switchyard_tests::service::switchyard_bin();
    let dir = tempfile::tempdir().expect("temp dir");
    let out = std::process::Command::new(root.join("scripts/bolt"))
        .arg(&bin)
        .arg(dir.path().join("switchyard"))
        .output()
        .expect("the script runs");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("was linked without its relocations"), "{err}");
    assert!(err.contains("-Wl,--emit-relocs"), "{err}");
    assert!(!dir.path().join("switchyard").exists());
    let usage = std::process::Command::new(root.join("scripts/bolt"))
        .output()
        .expect("the script runs");
    assert_eq!(usage.status.code(), Some(2));
}
