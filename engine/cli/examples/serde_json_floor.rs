//! The floor of any JSON-in/JSON-out tool, for the peers benchmark (`benchmarks/peers/run`): reads
//! NDJSON (a file, or stdin), parses each line into a `serde_json::Value` and writes it back, one
//! line each. Nothing else: no validation, no mapping. Built with the default allocator, as a
//! plain serde_json program would be.
//!
//! Run: `cargo run --release -p switchyard --example serde_json_floor -- events.ndjson > out.ndjson`

use std::io::{BufRead, BufReader, BufWriter, Write};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let input: Box<dyn BufRead> = match std::env::args_os().nth(1) {
        Some(path) => Box::new(BufReader::new(std::fs::File::open(path)?)),
        None => Box::new(BufReader::new(std::io::stdin())),
    };
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    for line in input.lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value = serde_json::from_str(&line)?;
        serde_json::to_writer(&mut out, &value)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}
