//! What the de-duplication window costs per event id: batches of 100 new ids claimed and settled
//! (stored) in a window that already holds its default cap of ids (1,000,000), so that each new id
//! also forgets the oldest one, as under a steady load of unique events.
//!
//! Run: `cargo bench -p switchyard-queue --bench dedup`. Figures go to BENCHMARKS.md.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::{Duration, Instant};
use switchyard_queue::dedup::window::{Limits, Sorting, Window};
use tokio::sync::watch;

const FULL: usize = 1_000_000;
const BATCH: usize = 100;

/// The next batch of ids, each new (`next` counts them).
fn batch(next: &mut usize) -> Vec<String> {
    let ids = (*next..*next + BATCH)
        .map(|i| format!("evt-{i:010}"))
        .collect();
    *next += BATCH;
    ids
}

fn bench(c: &mut Criterion) {
    let limits = Limits {
        window: Duration::from_secs(600),
        max_ids: FULL,
        max_bytes: 1 << 30,
    };
    let mut window = Window::new(limits);
    let (_settled, watched) = watch::channel(false);
    let now = Instant::now();
    let mut next = 0;
    let claim_and_store =
        |window: &mut Window, ids: &[String]| match window.claim("web", ids, &watched, now) {
            Sorting::Claimed { claim, keys, fresh } => {
                window.settle(claim, &keys, true);
                fresh.len()
            }
            Sorting::Busy(_) => unreachable!("nothing is pending between batches"),
        };
    while window.usage().0 < FULL {
        let ids = batch(&mut next);
        claim_and_store(&mut window, &ids);
    }
    let mut group = c.benchmark_group("dedup");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("claim_and_store_100_new_ids_in_a_full_window", |b| {
        b.iter_batched(
            || batch(&mut next),
            |ids| black_box(claim_and_store(&mut window, &ids)),
            criterion::BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
