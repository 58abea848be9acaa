//! Does nothing, as cheaply as the contract allows: keeps every event without reading it. The
//! benchmarks use it to measure what a plugin call costs by itself.

use switchyard_plugin_sdk::bindings::{Guest, Outcome, export};

struct Noop;

impl Guest for Noop {
    fn init(_config: String) -> Result<(), String> {
        Ok(())
    }
    fn transform(_event: String) -> Result<Outcome, String> {
        Ok(Outcome::Unchanged)
    }
    fn transform_batch(events: Vec<String>) -> Vec<Result<Outcome, String>> {
        events.iter().map(|_| Ok(Outcome::Unchanged)).collect()
    }
}

export!(Noop);
