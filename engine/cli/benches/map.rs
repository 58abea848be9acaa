//! Map throughput of the default TikTok mapping on a realistic event mix, beside a baseline measured
//! in the same run: serde_json parse + serialize of the same events.
//!
//! Run: `cargo bench -p switchyard --bench map`. Figures go to BENCHMARKS.md.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::Value;
use std::hint::black_box;
use std::path::Path;
use switchyard_engine::event::SourceEvent;

/// Shares of a shop's event traffic, by event name (page views dominate, orders are rare).
const MIX: &[(&str, usize)] = &[
    ("$page_load", 40),
    ("Viewed Product", 25),
    ("Viewed Collection", 10),
    ("Added To Cart", 8),
    ("Searched", 4),
    ("Started Checkout", 4),
    ("Added Payment Info", 3),
    ("Placed Order", 3),
    ("Subscribed To Newsletter", 1),
    ("Started Subscription", 1),
    ("Placed Recurring Subscription Order", 1),
];

fn events(root: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(root.join("examples/events.ndjson"))
        .expect("examples/events.ndjson");
    let samples: Vec<(String, String)> = text
        .lines()
        .filter(|l| SourceEvent::from_json(l, 0).is_ok())
        .filter_map(|l| {
            let v: Value = serde_json::from_str(l).ok()?;
            Some((v.get("event_name")?.as_str()?.to_owned(), l.to_owned()))
        })
        .collect();
    let mut out = Vec::new();
    for (name, share) in MIX {
        let matching: Vec<&String> = samples
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, l)| l)
            .collect();
        assert!(!matching.is_empty(), "no sample of {name}");
        for i in 0..*share {
            out.push(matching[i % matching.len()].clone());
        }
    }
    out
}

fn bench(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let loaded = switchyard::config::load(&root.join("examples/switchyard.yaml"))
        .expect("example config loads");
    let lines = events(&root);
    let bytes: usize = lines.iter().map(String::len).sum();
    let mut group = c.benchmark_group("map");
    group.throughput(Throughput::Elements(lines.len() as u64));
    let mut out = Vec::with_capacity(bytes * 2);

    group.bench_function("baseline_serde_json_parse_serialize", |b| {
        b.iter(|| {
            out.clear();
            for line in &lines {
                let v: Value = serde_json::from_str(black_box(line)).expect("valid JSON");
                serde_json::to_writer(&mut out, &v).expect("serialize");
            }
            black_box(out.len())
        })
    });

    group.bench_function("tiktok_default_mapping", |b| {
        b.iter(|| {
            out.clear();
            for line in &lines {
                let event =
                    SourceEvent::from_json(black_box(line), 1_725_278_400).expect("valid event");
                let outcomes = loaded.router.route(&event, "shop-web");
                serde_json::to_writer(&mut out, &outcomes).expect("serialize");
            }
            black_box(out.len())
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
