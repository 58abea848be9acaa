//! `switchyard test`: the default mapping's unit tests pass; a failing test exits 1 with the
//! differences (path, expected, actual) and its file:line; a broken test file is placed like any
//! other YAML file.

use switchyard_tests::service::cli;
use switchyard_tests::*;

fn test_dir(test_file: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let config = std::fs::read_to_string(root().join("mappings/tests/switchyard.yaml")).unwrap();
    std::fs::write(dir.path().join("switchyard.yaml"), config).unwrap();
    std::fs::write(dir.path().join("t.test.yaml"), test_file).unwrap();
    dir
}

const ORDER: &str = "    event:\n      event_name: Placed Order\n      event_id: o-1\n      timestamp: 1725280000\n      properties: { id: 1, total_price: 30, currency: EUR, $is_new_customer: false }\n      profile_properties: {}\n      aliases: [\"urn:user_id:u1\"]\n";

#[test]
fn the_default_mappings_tests_pass() {
    let file = root().join("mappings/tests/tiktok.test.yaml");
    let (code, out, err) = cli(&["test", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("6 passed, 0 failed"), "{out}");
}

#[test]
fn a_failing_test_exits_1_with_a_readable_diff() {
    let text = format!(
        "config: switchyard.yaml\nnow: 1725300000\nsource: shop-server\ntests:\n  - name: right\n{ORDER}    expect:\n      tiktok: {{ status: sent, data: [{{ event: Purchase }}] }}\n  - name: wrong value and event\n{ORDER}    expect:\n      tiktok:\n        status: sent\n        data: [{{ event: CompletePayment, properties: {{ value: 31, currency: EUR }} }}]\n"
    );
    let dir = test_dir(&text);
    let file = dir.path().join("t.test.yaml");
    let (code, out, err) = cli(&["test", file.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("1 passed, 1 failed"), "{out}");
    let expected_diff = "  at tiktok.data[0].event\n    - expected: \"CompletePayment\"\n    + actual:   \"Purchase\"\n  at tiktok.data[0].properties.value\n    - expected: 31\n    + actual:   30.0\n";
    assert!(err.contains(expected_diff), "{err}");
    assert!(
        err.contains("t.test.yaml:15: FAILED: wrong value and event"),
        "{err}"
    );
    assert!(!err.contains("FAILED: right"), "{err}");
}

#[test]
fn an_expected_status_that_differs_fails() {
    let text = format!(
        "config: switchyard.yaml\nnow: 1725300000\ntests:\n  - name: not filtered\n{ORDER}    expect:\n      tiktok: {{ status: filtered }}\n"
    );
    let dir = test_dir(&text);
    let file = dir.path().join("t.test.yaml");
    let (code, _, err) = cli(&["test", file.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("at tiktok.status\n    - expected: \"filtered\"\n    + actual:   \"sent\""),
        "{err}"
    );
}

#[test]
fn a_broken_test_file_is_reported_with_file_and_line() {
    let text = format!(
        "config: switchyard.yaml\nnow: 1725300000\ntests:\n  - name: typo\n{ORDER}    expct:\n      tiktok: {{ status: sent }}\n"
    );
    let dir = test_dir(&text);
    let file = dir.path().join("t.test.yaml");
    let (code, _, err) = cli(&["test", file.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("t.test.yaml:12:5: error: $.tests[0]: unknown key (not shown, it may be a secret); did you mean `expect`?"),
        "{err}"
    );
    assert!(!err.contains("missing required"), "a knock-on error: {err}");
}

#[test]
fn a_source_the_config_lacks_and_a_time_not_in_seconds_are_refused() {
    // Every event would be skipped, and a test expecting `skipped` would pass for that reason.
    let text = format!(
        "config: switchyard.yaml\nnow: 1725300000000\nsource: shop-srever\ntests:\n  - name: skipped\n    source: nope\n{ORDER}    expect:\n      tiktok: {{ status: skipped }}\n"
    );
    let dir = test_dir(&text);
    let file = dir.path().join("t.test.yaml");
    let (code, out, err) = cli(&["test", file.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("0 passed, 0 failed, 1 file(s) not run"),
        "{out}"
    );
    for expected in [
        "t.test.yaml:2:1: error: $.now: `now` 1725300000000 is not unix seconds from 0 to 100000000000 (milliseconds? divide by 1000)",
        "t.test.yaml:3:1: error: $.source: no source named `shop-srever` in the config; did you mean `shop-server`? sources: ",
        "t.test.yaml:6:5: error: $.tests[0].source: no source named `nope` in the config; sources: ",
    ] {
        assert!(err.contains(expected), "{expected}\n{err}");
    }
}

#[test]
fn the_example_in_rules_md_passes() {
    let doc = std::fs::read_to_string(root().join("docs/rules.md")).unwrap();
    let example = doc
        .split("```yaml\n")
        .map(|b| b.split("```").next().unwrap_or_default())
        .find(|b| b.contains("mapping-tests.schema.json"))
        .expect("docs/rules.md shows a test file");
    let dir = test_dir(example);
    let file = dir.path().join("t.test.yaml");
    let (code, out, err) = cli(&["test", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("2 passed, 0 failed"), "{out}");
}
