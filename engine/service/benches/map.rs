//! Map throughput of the default TikTok mapping on a realistic event mix, beside a baseline measured
//! in the same run: serde_json parse + serialize of the same events.
//!
//! Run: `cargo bench -p switchyard --bench map`. Figures go to BENCHMARKS.md.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::Value;
use std::hint::black_box;
use switchyard_core::event::SourceEvent;

/// The allocator of the `switchyard` binary (engine/cli/src/main.rs), so that these figures are
/// what the command does.
#[global_allocator]
static GLOBAL: switchyard_alloc::Allocator = switchyard_alloc::Allocator;

mod common;

fn bench(c: &mut Criterion) {
    let loaded = switchyard_service::config::load(&common::root().join("examples/switchyard.yaml"))
        .expect("example config loads");
    let lines = common::events();
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
                let outcomes = loaded.pipeline.outcomes_of(&event, "shop-web");
                serde_json::to_writer(&mut out, &outcomes).expect("serialize");
            }
            black_box(out.len())
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
