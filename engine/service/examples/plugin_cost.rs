//! A deterministic driver for counting what a plugin costs in instructions (the VM's timings are
//! noisy; instruction counts are not): runs `CHUNKS` chunks of the benchmarks' 100-event mix
//! through the real pipeline, with the example config (`without`) or the same config plus the
//! no-op plugin in its `transforms` (`with`), and prints how long the loop took. The events are the
//! texts the queue holds (normalised at ingestion), as delivery parses them; `raw` as a third
//! argument feeds the lines as they are in the file instead, as the dry run (`map`) reads them.
//!
//! ```text
//! cargo build --release -p switchyard-service --example plugin_cost \
//!     --features switchyard-wasm/on-demand-instances
//! valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null \
//!     target/release/examples/plugin_cost with 150
//! ```
//!
//! (`on-demand-instances`: valgrind cannot reserve the pooling allocator's address space.) Setup
//! (loading the config, the plugin from the compile cache) is the same at any `CHUNKS`:
//! instructions per event are the difference between two counts (say 50 and 150 chunks) over the
//! events between them. BENCHMARKS.md ("Round six") has the commands and figures.

/// The allocator of the `switchyard` binary (engine/cli/src/main.rs).
#[global_allocator]
static GLOBAL: switchyard_alloc::Allocator = switchyard_alloc::Allocator;

#[path = "../benches/chunk/mod.rs"]
mod chunk;
#[path = "../benches/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let usage = "usage: plugin_cost with|without CHUNKS [raw]";
    let loaded = match args.next().as_deref() {
        Some("with") => chunk::with_noop(),
        Some("without") => chunk::without_plugin(),
        _ => panic!("{usage}"),
    };
    let chunks: usize = args
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{usage}"));
    let lines = match args.next().as_deref() {
        None => chunk::queued(&common::events()),
        Some("raw") => common::events(),
        _ => panic!("{usage}"),
    };
    let mut out = Vec::with_capacity(1 << 20);
    let mut routed = 0;
    let start = Instant::now();
    for _ in 0..chunks {
        out.clear();
        routed += chunk::run(&loaded, black_box(&lines), &mut out);
        black_box(out.len());
    }
    let elapsed = start.elapsed();
    let events = chunks * lines.len();
    println!(
        "{chunks} chunks, {events} events ({routed} routed), loop {:.1} ms, {:.3} µs/event",
        elapsed.as_secs_f64() * 1e3,
        elapsed.as_secs_f64() * 1e6 / events.max(1) as f64
    );
}
