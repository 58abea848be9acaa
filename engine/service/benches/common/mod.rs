//! What the benchmarks share: the example config and a realistic mix of its sample events.

use serde_json::Value;
use std::path::{Path, PathBuf};
use switchyard_core::event::SourceEvent;

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

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// 100 event lines in the proportions of [`MIX`], from `examples/events.ndjson`.
pub fn events() -> Vec<String> {
    let text = std::fs::read_to_string(root().join("examples/events.ndjson"))
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
