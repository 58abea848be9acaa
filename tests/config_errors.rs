//! Bad configs and mapping files: each fixture in `fixtures/bad/` states in its first lines the
//! errors it must give (`# expect: [FILE] LINE:COL PATH: MESSAGE`), and loading it must give exactly
//! those places and messages containing that text, and nothing else (no knock-on errors). A fixture
//! with several errors must give them all in one run.

use std::path::Path;
use switchyard_tests::*;

struct Expectation {
    file: String,
    line: usize,
    column: usize,
    path: String,
    message: String,
}

fn expectations(fixture: &Path, text: &str) -> Vec<Expectation> {
    text.lines()
        .map_while(|line| line.strip_prefix("# expect: "))
        .map(|spec| {
            expectation(fixture, spec)
                .unwrap_or_else(|| panic!("{}: unreadable `# expect:` {spec}", fixture.display()))
        })
        .collect()
}

fn expectation(fixture: &Path, spec: &str) -> Option<Expectation> {
    let (file, rest) = match spec.split_once(' ') {
        Some((f, rest)) if f.ends_with(".yaml") => (f.to_owned(), rest),
        _ => (fixture.file_name()?.to_str()?.to_owned(), spec),
    };
    let (place, rest) = rest.split_once(' ')?;
    let (line, column) = place.split_once(':')?;
    let (path, message) = rest.split_once(": ")?;
    Some(Expectation {
        file,
        line: line.parse().ok()?,
        column: column.parse().ok()?,
        path: path.to_owned(),
        message: message.to_owned(),
    })
}

#[test]
fn every_bad_fixture_gives_its_error_at_its_place() {
    let dir = root().join("tests/fixtures/bad");
    let (mut checked, mut several) = (0, 0);
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for fixture in entries {
        let text = std::fs::read_to_string(&fixture).unwrap();
        let expected = expectations(&fixture, &text);
        if expected.is_empty() {
            continue;
        }
        let diagnostics = match switchyard_service::config::load(&fixture) {
            Ok(_) => panic!("{} loaded but should fail", fixture.display()),
            Err(d) => d,
        };
        for expect in &expected {
            let found = diagnostics.iter().any(|d| {
                d.file.file_name().and_then(|f| f.to_str()) == Some(expect.file.as_str())
                    && d.line == expect.line
                    && d.column == expect.column
                    && d.path == expect.path
                    && d.message.contains(&expect.message)
            });
            assert!(
                found,
                "{}: expected {}:{}:{} {}: …{}…\ngot:\n{}",
                fixture.display(),
                expect.file,
                expect.line,
                expect.column,
                expect.path,
                expect.message,
                lines(&diagnostics)
            );
        }
        // Warnings come with the errors, but only the errors are expected here.
        let errors = diagnostics.iter().filter(|d| d.is_error()).count();
        assert_eq!(
            errors,
            expected.len(),
            "{}: every error in one run, and no knock-on errors; got:\n{}",
            fixture.display(),
            lines(&diagnostics)
        );
        several += usize::from(expected.len() > 1);
        checked += 1;
    }
    assert!(several >= 2, "only {several} fixtures with several errors");
    assert!(checked >= 15, "only {checked} fixtures checked");
}

#[test]
fn a_token_pasted_into_the_config_is_never_echoed() {
    let fixture = root().join("tests/fixtures/bad/literal-token.yaml");
    let diagnostics = switchyard_service::config::load(&fixture).err().unwrap();
    let text = lines(&diagnostics);
    assert!(!text.contains("SUPERSECRET"), "{text}");
    assert!(text.contains("access_token"), "{text}");
}

#[test]
fn a_byte_order_mark_opening_a_config_or_mapping_is_no_error() {
    let mapping = "\u{feff}rows:\n  - source: Searched\n    target: Search\n";
    let config = format!("\u{feff}{}", tiktok_config("mapping: my-mapping.yaml"));
    let dir = write_config(&config, &[("my-mapping.yaml", mapping)]);
    if let Err(d) = switchyard_service::config::load(&dir.path) {
        panic!("{}", lines(&d));
    }
}

#[test]
fn the_config_s_secret_variables_are_refused_in_the_mapping_file_it_loads() {
    let config = tiktok_config("mapping: my-mapping.yaml")
        .replace("${TIKTOK_ACCESS_TOKEN}", "${SWITCHYARD_TEST_GUARDED_TOKEN}");
    let mapping = "rows:\n  - source: Placed Order\n    target: Purchase\n    mode: server\n    fields:\n      properties.description: { const: \"${SWITCHYARD_TEST_GUARDED_TOKEN}\" }\n";
    let d = load_errors(&config, &[("my-mapping.yaml", mapping)]);
    assert_eq!(d.len(), 1, "{}", lines(&d));
    assert!(d[0].file.ends_with("my-mapping.yaml"), "{}", lines(&d));
    assert_eq!(
        d[0].path,
        "$.rows[0].fields['properties.description'].const"
    );
    assert!(d[0].message.contains("is a secret"), "{}", d[0].message);
    // Another config, whose secret is another variable, loads the same mapping file: the guard
    // is the config's, not the process's.
    let other = tiktok_config("mapping: my-mapping.yaml");
    let d = load_errors(&other, &[("my-mapping.yaml", mapping)]);
    assert!(
        d.iter().all(|d| !d.message.contains("is a secret")),
        "{}",
        lines(&d)
    );
}

#[test]
fn all_errors_are_reported_at_once_in_line_order() {
    let text = tiktok_config("content_id: upc\nconversion_amount: net\nstatus: paused")
        .replace("CJQBODJC77UB4MRTGFRF", "short");
    let d = load_errors(&text, &[]);
    let places: Vec<(usize, &str)> = d.iter().map(|d| (d.line, d.path.as_str())).collect();
    assert_eq!(
        places,
        [
            (7, "$.destinations[0].pixel_id"),
            (11, "$.destinations[0].content_id"),
            (12, "$.destinations[0].conversion_amount"),
            (13, "$.destinations[0].status"),
        ],
        "{}",
        lines(&d)
    );
}

#[test]
fn semantic_errors_from_rules_and_config_are_reported_together() {
    let text = tiktok_config(
        "filters:\n  - name: f\n    drop_when: {path: \"$.a\", op: gt, value: many}\ncustom_events:\n  - source: A\n    target: B\n    use: [nope]",
    )
    .replace("sources: [web, server]", "sources: [web, shop]");
    let d = load_errors(&text, &[]);
    let paths: Vec<&str> = d.iter().map(|d| d.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "$.destinations[0].sources[1]",
            "$.destinations[0].filters[0].drop_when.value",
            "$.destinations[0].custom_events[0].use[0]",
        ],
        "{}",
        lines(&d)
    );
}

#[test]
fn an_unset_token_is_a_warning_not_an_error() {
    let l =
        loaded(&tiktok_config("").replace("TIKTOK_ACCESS_TOKEN", "SWITCHYARD_TEST_SURELY_UNSET"));
    assert_eq!(l.warnings.len(), 1);
    assert!(
        l.warnings[0]
            .message
            .contains("SWITCHYARD_TEST_SURELY_UNSET is not set")
    );
    assert_eq!(l.warnings[0].line, 8);
}

#[test]
fn a_blank_token_is_unset() {
    let text = tiktok_config("").replace("TIKTOK_ACCESS_TOKEN", "SWITCHYARD_TEST_BLANK_TOKEN");
    let cfg = write_config(&text, &[]);
    let mut cmd = std::process::Command::new(switchyard_tests::service::switchyard_bin());
    cmd.args(["validate", cfg.path.to_str().unwrap()])
        .env("SWITCHYARD_TEST_BLANK_TOKEN", " \t ");
    let output = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{err}");
    assert!(
        err.contains("warning: $.destinations[0].access_token: the environment variable SWITCHYARD_TEST_BLANK_TOKEN is not set (or only blank)"),
        "{err}"
    );
}

#[test]
fn paths_that_can_never_match_are_warned_about_at_their_place() {
    let text = tiktok_config(
        "custom_events:\n  - source: Reviewed\n    target: Contact\n    fields:\n      properties.value: \"$.propertys.rating\"\n      properties.description: \"$.properties.title\"\n",
    );
    let cfg = write_config(&text, &[]);
    let loaded =
        switchyard_service::config::load(&cfg.path).unwrap_or_else(|d| panic!("{}", lines(&d)));
    let dead: Vec<String> = loaded
        .warnings
        .iter()
        .filter(|w| w.message.contains("can never match"))
        .map(|w| format!("{w}"))
        .collect();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert!(
        dead[0].contains("fields['properties.value']"),
        "{}",
        dead[0]
    );
    assert!(
        dead[0].contains("did you mean `properties`?"),
        "{}",
        dead[0]
    );
    // The default mapping's own paths all can match.
    let default = loaded_default_warnings();
    assert!(default.is_empty(), "{default:?}");
}

fn loaded_default_warnings() -> Vec<String> {
    let cfg = write_config(&tiktok_config(""), &[]);
    let loaded =
        switchyard_service::config::load(&cfg.path).unwrap_or_else(|d| panic!("{}", lines(&d)));
    loaded
        .warnings
        .iter()
        .filter(|w| w.message.contains("can never match"))
        .map(|w| format!("{w}"))
        .collect()
}

#[test]
fn a_misspelled_key_gives_one_error_not_its_knock_ons() {
    let text = tiktok_config(
        "filters:\n  - name: f\n    drop_wen: {path: \"$.properties.x\", op: lt, value: 3}",
    );
    let d = load_errors(&text, &[]);
    assert_eq!(d.len(), 1, "{}", lines(&d));
    assert_eq!(d[0].path, "$.destinations[0].filters[0]");
    assert_eq!(d[0].line, 13, "{}", lines(&d));
    assert!(
        d[0].message.contains("did you mean `drop_when`?"),
        "{}",
        lines(&d)
    );
}

#[test]
fn a_semantic_error_under_a_misspelled_key_is_still_found() {
    // `drop_wen` is read as `drop_when`: the bad regex below it is reported in the same run.
    let text = tiktok_config(
        "filters:\n  - name: f\n    drop_wen: {path: \"$.properties.x\", op: matches, value: \"(\"}",
    );
    let d = load_errors(&text, &[]);
    let paths: Vec<&str> = d.iter().map(|d| d.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "$.destinations[0].filters[0]",
            "$.destinations[0].filters[0].drop_wen.value"
        ],
        "{}",
        lines(&d)
    );
}

#[test]
fn event_names_one_letter_off_the_spec_are_warned_about() {
    let text = tiktok_config(
        "filters:\n  - name: f\n    events: [Placed Ordr, Quiz Completed]\n    drop_when: {path: \"$.properties.x\", op: exists}\ncustom_events:\n  - {source: Viewed Prodct, target: ViewContent}",
    );
    let l = loaded(&text);
    let mut found: Vec<_> = l
        .warnings
        .iter()
        .filter(|w| w.message.contains("no event of the event spec"))
        .collect();
    found.sort_by_key(|w| w.line);
    let hints: Vec<String> = found.iter().map(|w| format!("{w}")).collect();
    assert_eq!(hints.len(), 2, "{hints:?}");
    assert!(
        hints[0].contains(":13:") && hints[0].contains("did you mean `Placed Order`?"),
        "{hints:?}"
    );
    assert!(
        hints[1].contains("custom_events[0].source") && hints[1].contains("`Viewed Product`"),
        "{hints:?}"
    );
}
