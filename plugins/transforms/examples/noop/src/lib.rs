//! Does nothing, as cheaply as the contract allows: keeps every event without reading it. The
//! benchmarks use it to measure what a plugin call costs by itself.

use switchyard_plugin_sdk::bindings::{Action, Guest, export};

struct Noop;

impl Guest for Noop {
    fn init(_config: String) -> Result<(), String> {
        Ok(())
    }
    fn transform(_event: String) -> Result<Action, String> {
        Ok(Action::Unchanged)
    }
    fn transform_batch(events: Vec<String>) -> Vec<Result<Action, String>> {
        events.iter().map(|_| Ok(Action::Unchanged)).collect()
    }
}

export!(Noop);
