//! What a plugin costs. The measure the service pays is `pipeline_with_noop_plugin` minus
//! `pipeline_without_plugin`: one chunk of the realistic mix through the real pipeline
//! (`Pipeline::parse`, `transform`, `route`, outcomes serialized; see `chunk/mod.rs`) with the
//! example config, and with the same config plus the no-op plugin in its `transforms`; the events
//! as the queue holds them (normalised at ingestion), as delivery parses them.
//!
//! The older arms stay, for their figures in BENCHMARKS.md: the default TikTok mapping with no
//! plugin (`mapping_without_plugin`, events parsed by `from_json` one at a time), with a no-op
//! plugin called once per event, and with the same plugin called once per batch of 100 (parsed
//! with `from_json_keeping_text`, as the pipeline parses them with plugins); where the time of a
//! plugin call goes (`breakdown_*`); and how long a fresh instance takes (instantiate from the
//! `InstancePre`, then `init`). These read the sample lines as the file has them: those not yet
//! normalised (an ISO timestamp, camelCase names) are serialized for the plugin, which `serve`
//! does at ingestion, plugins or not (BENCHMARKS.md, "Round six").
//!
//! Run: `cargo bench -p switchyard-service --bench plugins` (builds the example plugins first if
//! needed). Figures go to BENCHMARKS.md.

/// The allocator of the `switchyard` binary (engine/cli/src/main.rs), so that these figures are
/// what the command does.
#[global_allocator]
static GLOBAL: switchyard_alloc::Allocator = switchyard_alloc::Allocator;

mod chunk;
mod common;

use chunk::{RECEIVED_AT, noop_wasm};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use switchyard_core::event::SourceEvent;
use switchyard_wasm::{Chain, Limits, Runtime};

/// The no-op plugin, loaded.
fn noop(runtime: &Runtime) -> switchyard_wasm::Plugin {
    let config = serde_json::json!({});
    runtime
        .load_file("noop", &noop_wasm(), &config, Limits::default())
        .expect("noop loads")
}

fn bench(c: &mut Criterion) {
    let loaded = chunk::without_plugin();
    let lines = common::events();
    let runtime = Runtime::new(None).expect("runtime");
    let load = || noop(&runtime);
    let single = load();
    let chain = Chain::new(vec![load()]);
    let mut out = Vec::with_capacity(1 << 20);

    let mut group = c.benchmark_group("plugins");
    group.throughput(Throughput::Elements(lines.len() as u64));
    pipeline(&mut group, &lines, &loaded);
    group.bench_function("mapping_without_plugin", |b| {
        b.iter(|| {
            out.clear();
            for line in &lines {
                let event = SourceEvent::from_json(black_box(line), RECEIVED_AT).expect("valid");
                serde_json::to_writer(&mut out, &loaded.pipeline.outcomes_of(&event, "shop-web"))
                    .expect("serialize");
            }
            black_box(out.len())
        })
    });
    breakdown(&mut group, &lines, &chain);
    group.bench_function("mapping_with_noop_plugin_single_calls", |b| {
        b.iter(|| {
            out.clear();
            for line in &lines {
                let event = SourceEvent::from_json_keeping_text(black_box(line), RECEIVED_AT)
                    .expect("valid");
                let result = single
                    .call_one(&switchyard_wasm::chain::to_json(&event))
                    .expect("noop call");
                black_box(&result.results);
                serde_json::to_writer(&mut out, &loaded.pipeline.outcomes_of(&event, "shop-web"))
                    .expect("serialize");
            }
            black_box(out.len())
        })
    });
    group.bench_function("mapping_with_noop_plugin_batch_call", |b| {
        let mut logs = Vec::new();
        b.iter(|| {
            out.clear();
            let batch: Vec<SourceEvent> = lines
                .iter()
                .map(|l| {
                    SourceEvent::from_json_keeping_text(black_box(l), RECEIVED_AT).expect("valid")
                })
                .collect();
            for transformed in chain.run(batch, RECEIVED_AT, &mut logs) {
                for event in &transformed.events {
                    serde_json::to_writer(
                        &mut out,
                        &loaded.pipeline.outcomes_of(event, "shop-web"),
                    )
                    .expect("serialize");
                }
            }
            black_box(out.len())
        })
    });
    group.finish();
    instance(c, &single);
}

/// What the service pays: one chunk through the real pipeline, without and with the no-op plugin.
fn pipeline(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    lines: &[String],
    without: &switchyard_service::config::Loaded,
) {
    let with = chunk::with_noop();
    let queued = chunk::queued(lines);
    let mut out = Vec::with_capacity(1 << 20);
    for (name, loaded) in [
        ("pipeline_without_plugin", without),
        ("pipeline_with_noop_plugin", &with),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                black_box(chunk::run(loaded, black_box(&queued), &mut out));
                black_box(out.len())
            })
        });
    }
}

/// What a fresh instance costs (a trapped instance is replaced by one).
fn instance(c: &mut Criterion, plugin: &switchyard_wasm::Plugin) {
    let mut group = c.benchmark_group("plugin_instance");
    group.bench_function("instantiate_and_init_from_instance_pre", |b| {
        b.iter(|| plugin.warm_up().expect("instantiates"))
    });
    group.finish();
}

/// Where the time of a plugin call goes: serializing events, the call alone (and with the second
/// pass that only a failed call runs), the chain around it.
fn breakdown(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    lines: &[String],
    chain: &Chain,
) {
    group.bench_function("breakdown_events_serialized", |b| {
        let evs: Vec<SourceEvent> = lines
            .iter()
            .map(|l| SourceEvent::from_json(l, RECEIVED_AT).expect("valid"))
            .collect();
        b.iter(|| {
            let t: Vec<String> = evs.iter().map(switchyard_wasm::chain::to_json).collect();
            black_box(t)
        })
    });
    group.bench_function("breakdown_noop_batch_call_alone", |b| {
        let evs: Vec<SourceEvent> = lines
            .iter()
            .map(|l| SourceEvent::from_json_keeping_text(l, RECEIVED_AT).expect("valid"))
            .collect();
        let t: Vec<String> = evs.iter().map(switchyard_wasm::chain::to_json).collect();
        b.iter(|| black_box(chain.plugins()[0].call_batch(&t).expect("ok")))
    });
    // What the chains call: the same batch call, plus the second pass that a successful call
    // never runs (this should match the line above).
    group.bench_function("breakdown_noop_transform_batch_alone", |b| {
        let t: Vec<String> = lines
            .iter()
            .map(|l| SourceEvent::from_json_keeping_text(l, RECEIVED_AT).expect("valid"))
            .map(|e| switchyard_wasm::chain::to_json(&e))
            .collect();
        b.iter(|| black_box(chain.plugins()[0].transform_batch(&t).expect("ok")))
    });
    group.bench_function("breakdown_chain_run_with_noop", |b| {
        let evs: Vec<SourceEvent> = lines
            .iter()
            .map(|l| SourceEvent::from_json_keeping_text(l, RECEIVED_AT).expect("valid"))
            .collect();
        let mut logs = Vec::new();
        b.iter_batched(
            || evs.clone(),
            |batch| black_box(chain.run(batch, RECEIVED_AT, &mut logs)),
            criterion::BatchSize::SmallInput,
        )
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
