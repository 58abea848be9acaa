//! WebAssembly plugins through the host runtime: the examples do their job, and hostile plugins
//! (endless loop, memory bomb, trap, oversized or malformed output, wrong result count, refused
//! config, a component of another world) each get a clear error while the process goes on; a batch
//! whose call traps is run again one event at a time, so only the poison events fail, and a plugin
//! that traps on everything fails its batch after a bounded number of instantiations.

use serde_json::{Value, json};
use std::time::{Duration, Instant};
use switchyard_tests::*;
use switchyard_wasm::bindings::Action;
use switchyard_wasm::{
    BatchResults, CallError, CompileCache, EventFailure, Limits, LoadError,
    MAX_CONSECUTIVE_FAILURES, Plugin, Runtime,
};

/// A runtime with a compile cache shared by the tests (each component compiles once per run).
fn runtime() -> Runtime {
    Runtime::new(Some(
        CompileCache::open(&root().join("target/plugin-cache-tests"))
            .expect("private cache folder"),
    ))
    .expect("runtime starts")
}

fn load(rt: &Runtime, name: &str, config: Value) -> Result<Plugin, LoadError> {
    rt.load_file(name, &plugin_wasm(name), &config, Limits::default())
}

fn hostile(rt: &Runtime, mode: &str, limits: Limits) -> Plugin {
    rt.load_file(
        "hostile",
        &plugin_wasm("hostile"),
        &json!({ "mode": mode }),
        limits,
    )
    .expect("hostile plugin loads")
}

fn one(plugin: &Plugin, event: &Value) -> Result<Action, String> {
    let mut out = plugin.call_one(&event.to_string()).expect("call succeeds");
    out.results.remove(0)
}

fn changed(outcome: Result<Action, String>) -> Value {
    match outcome {
        Ok(Action::Changed(text)) => serde_json::from_str(&text).expect("plugin returns JSON"),
        other => panic!("expected a changed event, got {other:?}"),
    }
}

fn order() -> Value {
    json!({"event_name": "Placed Order", "event_id": "o-1", "timestamp": 1_725_280_000,
           "properties": {"currency": "USD", "total_price": 100, "total_tax": "8.50",
                          "items": [{"product_id": "p1", "price": 45.5, "quantity": 2}, {"product_id": "KIT-1", "price": 20}]},
           "profile_properties": {"$email": "a@example.com", "$first_name": "Ann", "$city": "Utrecht"},
           "aliases": ["urn:email:a@example.com"]})
}

#[test]
fn currency_converter_converts_every_amount() {
    let rt = runtime();
    let p = load(
        &rt,
        "currency-converter",
        json!({"to": "EUR", "rates": {"USD": 0.9}}),
    )
    .unwrap();
    let out = changed(one(&p, &order()));
    assert_eq!(out["properties"]["currency"], "EUR");
    assert_eq!(out["properties"]["total_price"], json!(90.0));
    assert_eq!(out["properties"]["total_tax"], json!(7.65));
    assert_eq!(out["properties"]["items"][0]["price"], json!(40.95));
    let mut gbp = order();
    gbp["properties"]["currency"] = json!("GBP");
    assert_eq!(one(&p, &gbp), Err("no rate from GBP to EUR".to_owned()));
    let mut eur = order();
    eur["properties"]["currency"] = json!("EUR");
    assert_eq!(one(&p, &eur), Ok(Action::Unchanged));
    let refused = load(
        &rt,
        "currency-converter",
        json!({"to": "EUR", "rates": {"USD": -1}}),
    )
    .unwrap_err();
    assert!(
        matches!(refused, LoadError::Config(ref m) if m.contains("rate of USD must be a positive number")),
        "{refused}"
    );
}

#[test]
fn pii_scrubber_removes_fields_and_url_parameters() {
    let rt = runtime();
    let p = load(&rt, "pii-scrubber", json!({})).unwrap();
    let mut ev = order();
    ev["properties"]["$url"] =
        json!("https://s.example/thanks?email=a%40example.com&utm_source=tt#top");
    let out = changed(one(&p, &ev));
    assert_eq!(
        out["profile_properties"],
        json!({"$email": "a@example.com"})
    );
    assert_eq!(
        out["properties"]["$url"],
        "https://s.example/thanks?utm_source=tt#top"
    );
    let clean = json!({"event_name": "X", "event_id": "1", "properties": {}, "profile_properties": {}, "aliases": ["urn:a:b"]});
    assert_eq!(one(&p, &clean), Ok(Action::Unchanged));
}

#[test]
fn bundle_splitter_splits_items_and_single_products() {
    let rt = runtime();
    let config = json!({"bundles": {"KIT-1": [
        {"product_id": "p2", "sku": "S2", "name": "Shirt", "share": 0.75},
        {"product_id": "p3", "name": "Cap", "share": 0.25, "quantity": 2}]}});
    let p = load(&rt, "bundle-splitter", config).unwrap();
    let out = changed(one(&p, &order()));
    let items = out["properties"]["items"].as_array().unwrap();
    let ids: Vec<&str> = items
        .iter()
        .map(|i| i["product_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["p1", "p2", "p3"]);
    assert_eq!(items[1]["price"], json!(15.0));
    assert_eq!(items[2]["price"], json!(2.5));
    assert_eq!(items[2]["quantity"], json!(2.0));
    let cart = json!({"event_name": "Added To Cart", "event_id": "c-9", "properties": {"product_id": "KIT-1", "price": 20, "quantity": 1},
                      "profile_properties": {}, "aliases": ["urn:a:b"]});
    match one(&p, &cart) {
        Ok(Action::Split(events)) => {
            let events: Vec<Value> = events
                .iter()
                .map(|e| serde_json::from_str(e).unwrap())
                .collect();
            let ids: Vec<&str> = events
                .iter()
                .map(|e| e["event_id"].as_str().unwrap())
                .collect();
            assert_eq!(ids, ["c-9:1", "c-9:2"]);
            assert_eq!(events[1]["properties"]["product_id"], "p3");
        }
        other => panic!("expected a split, got {other:?}"),
    }
    let bad = load(
        &rt,
        "bundle-splitter",
        json!({"bundles": {"K": [{"product_id": "a", "share": 0.5}]}}),
    )
    .unwrap_err();
    assert!(bad.to_string().contains("shares must add up to 1"), "{bad}");
}

#[test]
fn batch_calls_return_one_result_per_event_in_order() {
    let rt = runtime();
    let p = load(
        &rt,
        "currency-converter",
        json!({"to": "EUR", "rates": {"USD": 2}}),
    )
    .unwrap();
    let mut events = Vec::new();
    for i in 0..50 {
        let mut ev = order();
        ev["properties"]["total_price"] = json!(i);
        events.push(ev.to_string());
    }
    let out = p.call_batch(&events).unwrap();
    assert_eq!(out.results.len(), 50);
    for (i, r) in out.results.into_iter().enumerate() {
        assert_eq!(
            changed(r)["properties"]["total_price"],
            json!((2 * i) as f64)
        );
    }
}

#[test]
fn an_endless_loop_is_stopped_within_its_budget() {
    let rt = runtime();
    let p = hostile(
        &rt,
        "loop",
        Limits {
            time_ms: 50,
            ..Limits::default()
        },
    );
    let started = Instant::now();
    let err = p.call_one("{}").unwrap_err();
    let took = started.elapsed();
    assert_eq!(err, CallError::Timeout(50));
    assert!(took < Duration::from_millis(1000), "stopped after {took:?}");
    assert_eq!(err.to_string(), "ran out of its time budget (50 ms)");
    // The process and the plugin go on: the next call gets a fresh instance (and loops again).
    assert_eq!(p.call_one("{}").unwrap_err(), CallError::Timeout(50));
}

#[test]
fn a_memory_bomb_hits_its_cap() {
    let rt = runtime();
    let p = hostile(
        &rt,
        "grow",
        Limits {
            memory_mib: 16,
            ..Limits::default()
        },
    );
    assert_eq!(p.call_one("{}").unwrap_err(), CallError::Memory(16));
}

#[test]
fn a_trap_fails_that_call_only_and_a_fresh_instance_serves_the_next() {
    let rt = runtime();
    let p = hostile(&rt, "picky", Limits::default());
    assert!(matches!(
        p.call_one(r#"{"x":"boom"}"#),
        Err(CallError::Trap(_))
    ));
    let ok = p.call_one(r#"{"x":"fine"}"#).unwrap();
    assert_eq!(ok.results, vec![Ok(Action::Unchanged)]);
    let trap = hostile(&rt, "trap", Limits::default());
    let err = trap
        .call_batch(&["{}".to_owned(), "{}".to_owned()])
        .unwrap_err();
    assert!(
        matches!(err, CallError::Trap(ref m) if m.contains("unreachable")),
        "{err}"
    );
}

#[test]
fn oversized_output_and_wrong_counts_are_refused() {
    let rt = runtime();
    let p = hostile(
        &rt,
        "huge",
        Limits {
            output_kib: 1024,
            // Writing 8 MiB takes time in a debug build on a loaded machine: this test is about
            // the size, so the time limit must not be what stops it.
            time_ms: 10_000,
            ..Limits::default()
        },
    );
    assert_eq!(
        p.call_one("{}").unwrap_err(),
        CallError::OutputTooLarge {
            size: 8 << 20,
            limit_kib: 1024
        }
    );
    let p = hostile(&rt, "wrong-count", Limits::default());
    assert_eq!(
        p.call_batch(&["{}".to_owned(), "{}".to_owned()])
            .unwrap_err(),
        CallError::WrongCount { got: 0, sent: 2 }
    );
}

#[test]
fn bad_plugins_are_refused_at_load_with_the_reason() {
    let rt = runtime();
    let refused = rt
        .load_file(
            "hostile",
            &plugin_wasm("hostile"),
            &json!({"mode": "refuse"}),
            Limits::default(),
        )
        .unwrap_err();
    assert!(
        matches!(refused, LoadError::Config(ref m) if m == "this config is refused on purpose"),
        "{refused}"
    );
    let other_world = wat::parse_str("(component)").unwrap();
    let err = rt
        .load("empty", &other_world, &json!({}), Limits::default())
        .unwrap_err();
    assert!(matches!(err, LoadError::World(_)), "{err}");
    let core_module = wat::parse_str("(module)").unwrap();
    let err = rt
        .load("core", &core_module, &json!({}), Limits::default())
        .unwrap_err();
    assert!(matches!(err, LoadError::Compile(_)), "{err}");
    let err = rt
        .load_file(
            "missing",
            std::path::Path::new("/nonexistent.wasm"),
            &json!({}),
            Limits::default(),
        )
        .unwrap_err();
    assert!(matches!(err, LoadError::Read { .. }), "{err}");
}

#[test]
fn compiled_plugins_are_cached_on_disk_by_hash() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    let rt = Runtime::new(Some(CompileCache::open(&dir).unwrap())).unwrap();
    load_cached(&rt, "noop");
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1);
    assert!(files[0].extension().is_some_and(|e| e == "cwasm"));
    let started = Instant::now();
    let p = load_cached(&rt, "noop");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(
        p.call_one("{}").unwrap().results,
        vec![Ok(Action::Unchanged)]
    );
}

fn load_cached(rt: &Runtime, name: &str) -> Plugin {
    rt.load_file(name, &plugin_wasm(name), &json!({}), Limits::default())
        .unwrap()
}

#[test]
fn the_sdk_ships_the_same_plugin_world_as_the_host() {
    let sdk =
        std::fs::read_to_string(root().join("plugins/transforms/sdk/wit/plugin.wit")).unwrap();
    assert_eq!(
        sdk,
        switchyard_wasm::WIT,
        "plugins/transforms/sdk/wit/plugin.wit must be a copy of engine/wasm/wit/plugin.wit"
    );
}

/// `n` small events; those at `booms` contain `boom` (the `picky` hostile plugin panics on them).
fn events_with_booms(n: usize, booms: &[usize]) -> Vec<String> {
    (0..n)
        .map(|i| {
            let note = if booms.contains(&i) { "boom" } else { "fine" };
            json!({"event_id": format!("e-{i}"), "note": note}).to_string()
        })
        .collect()
}

/// The trap of a Rust panic in a wasm32 guest, as the host names it.
const PANIC_TRAP: &str = "wasm trap: wasm `unreachable` instruction executed";

#[test]
fn a_batch_that_traps_is_run_again_one_event_at_a_time_and_only_the_poison_fails() {
    let rt = runtime();
    let p = hostile(&rt, "picky", Limits::default());
    assert_eq!(p.instances_started(), 1, "one instance at load");
    let booms = [0, 250, 499];
    let out = p.transform_batch(&events_with_booms(500, &booms)).unwrap();
    let results: Vec<_> = out.results.into_iter().collect();
    assert_eq!(results.len(), 500);
    for (i, r) in results.iter().enumerate() {
        if booms.contains(&i) {
            assert_eq!(
                r,
                &Err(EventFailure::Call(CallError::Trap(PANIC_TRAP.into()))),
                "event {i}"
            );
        } else {
            assert_eq!(r, &Ok(Action::Unchanged), "event {i}");
        }
    }
    // The batch call trapped once, then each poison event alone.
    assert_eq!(p.traps(), 4);
    // A fresh instance after each trap that another call followed: the batch's, and the booms
    // at 0 and 250 (nothing followed the one at 499).
    assert_eq!(p.instances_started(), 4);
    assert_eq!(
        EventFailure::Call(CallError::Trap(PANIC_TRAP.into())).to_string(),
        "trapped: wasm trap: wasm `unreachable` instruction executed"
    );
}

#[test]
fn a_plugin_that_traps_on_everything_fails_its_batch_after_a_bounded_number_of_instances() {
    let rt = runtime();
    let p = hostile(&rt, "trap", Limits::default());
    let before = p.instances_started();
    let out = p.transform_batch(&events_with_booms(300, &[])).unwrap();
    let results: Vec<_> = out.results.into_iter().collect();
    let trap = CallError::Trap(PANIC_TRAP.into());
    for (i, r) in results.iter().enumerate() {
        let want = if i < MAX_CONSECUTIVE_FAILURES {
            EventFailure::Call(trap.clone())
        } else {
            EventFailure::NotRetried {
                batch: trap.clone(),
            }
        };
        assert_eq!(r, &Err(want), "event {i}");
    }
    assert_eq!(MAX_CONSECUTIVE_FAILURES, 8);
    assert_eq!(
        p.instances_started() - before,
        MAX_CONSECUTIVE_FAILURES as u64,
        "one fresh instance per call of the second pass, not one per event"
    );
    assert_eq!(p.traps(), 1 + MAX_CONSECUTIVE_FAILURES as u64);
    assert_eq!(
        results[299].as_ref().unwrap_err().to_string(),
        "not retried alone: the plugin failed on 8 events in a row when run one at a time, \
         after its batch call trapped: wasm trap: wasm `unreachable` instruction executed"
    );

    // An endless loop: the batch and each event of the second pass get the time budget; the
    // bound keeps the batch at 1 + 8 budgets, not one per event (300 × 20 ms = 6 s).
    let slow = hostile(
        &rt,
        "loop",
        Limits {
            time_ms: 20,
            ..Limits::default()
        },
    );
    let started = Instant::now();
    let out = slow.transform_batch(&events_with_booms(300, &[])).unwrap();
    let took = started.elapsed();
    let results: Vec<_> = out.results.into_iter().collect();
    assert_eq!(results[0], Err(EventFailure::Call(CallError::Timeout(20))));
    assert_eq!(
        results[299],
        Err(EventFailure::NotRetried {
            batch: CallError::Timeout(20)
        })
    );
    assert_eq!(slow.traps(), 1 + MAX_CONSECUTIVE_FAILURES as u64);
    assert!(took < Duration::from_secs(3), "took {took:?}");
}

#[test]
fn a_batch_that_succeeds_makes_one_call_and_no_second_pass() {
    let rt = runtime();
    let p = hostile(&rt, "picky", Limits::default());
    let out = p.transform_batch(&events_with_booms(500, &[])).unwrap();
    assert!(
        matches!(out.results, BatchResults::OneCall(_)),
        "no second pass"
    );
    assert_eq!(out.results.len(), 500);
    assert!(out.results.into_iter().all(|r| r == Ok(Action::Unchanged)));
    assert_eq!((p.instances_started(), p.traps()), (1, 0));
    // An error the plugin returns fails that event only, without a second pass.
    let fail = hostile(&rt, "fail", Limits::default());
    let out = fail.transform_batch(&events_with_booms(3, &[])).unwrap();
    assert_eq!(
        out.results.into_iter().nth(2).unwrap(),
        Err(EventFailure::Returned(
            "cannot handle an event of 32 bytes".into()
        ))
    );
    assert_eq!((fail.instances_started(), fail.traps()), (1, 0));
    // A wrong result count is no event's fault: the batch fails, nothing is run again.
    let wrong = hostile(&rt, "wrong-count", Limits::default());
    let err = wrong
        .transform_batch(&events_with_booms(3, &[]))
        .unwrap_err();
    assert_eq!(err, CallError::WrongCount { got: 0, sent: 3 });
    assert_eq!((wrong.instances_started(), wrong.traps()), (1, 0));
}

#[test]
fn output_over_the_limit_as_a_batch_is_checked_per_event_in_the_second_pass() {
    let rt = runtime();
    // `malformed` answers 17 bytes per event: 100 events (1700 bytes) are over 1 KiB together,
    // each alone is under it.
    let p = hostile(
        &rt,
        "malformed",
        Limits {
            output_kib: 1,
            ..Limits::default()
        },
    );
    let out = p.transform_batch(&events_with_booms(100, &[])).unwrap();
    assert!(matches!(out.results, BatchResults::OneAtATime(_)));
    let results: Vec<_> = out.results.into_iter().collect();
    assert_eq!(results.len(), 100);
    assert!(
        results
            .iter()
            .all(|r| r == &Ok(Action::Changed("this is {not json".into())))
    );
    // Not a trap; the refused answer's instance was replaced once, then reused.
    assert_eq!((p.instances_started(), p.traps()), (2, 0));
}
