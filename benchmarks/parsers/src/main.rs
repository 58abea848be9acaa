//! Parses every line of an NDJSON file into one in-memory form and drops it; prints how many
//! top-level keys the events had (the same for every form but `lines`, or a parser went wrong).
//!
//! Forms: `lines` (read only: the baseline), `serde_json` (`serde_json::Value`: the engine's
//! event form today), `sonic` (`sonic_rs::Value`: one arena per document), `sonic-serde`
//! (sonic-rs's parser building a `serde_json::Value`), `simd-json` (`simd_json::BorrowedValue`;
//! the line is copied first, as simd-json parses in place); `serde_json+get` and `sonic+get` also
//! look every key of the event's first two levels up by name, as the rules' paths do. A tree borrowing its strings from the
//! line through serde_json's parser is `engine/cli/examples/parse_forms.rs` (round three).
//!
//!     switchyard-bench-parsers FORM EVENTS.ndjson

use std::io::BufRead;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

type Error = Box<dyn std::error::Error>;

/// Parses one line, drops the result and answers its top-level keys.
type Parse = fn(&str) -> Result<usize, Error>;

fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let (Some(form), Some(path)) = (args.next(), args.next()) else {
        return Err("usage: switchyard-bench-parsers FORM EVENTS.ndjson".into());
    };
    let parse = parser(&form)?;
    let input = std::io::BufReader::new(std::fs::File::open(&path)?);
    let mut keys = 0;
    for line in input.lines() {
        keys += parse(&line?)?;
    }
    println!("{form}: {keys} top-level keys");
    Ok(())
}

/// The parser of `form`: it parses one line, drops the result and answers its top-level keys
/// (0 for `lines`).
fn parser(form: &str) -> Result<Parse, Error> {
    Ok(match form {
        "lines" => |_| Ok(0),
        "serde_json" => |line| {
            let v: serde_json::Value = serde_json::from_str(line)?;
            Ok(v.as_object().map_or(0, |o| o.len()))
        },
        "sonic" => |line| {
            use sonic_rs::JsonContainerTrait as _;
            let v: sonic_rs::Value = sonic_rs::from_str(line)?;
            Ok(v.as_object().map_or(0, |o| o.len()))
        },
        "sonic-serde" => |line| {
            let v: serde_json::Value = sonic_rs::from_str(line)?;
            Ok(v.as_object().map_or(0, |o| o.len()))
        },
        "simd-json" => |line| {
            use simd_json::prelude::*;
            let mut bytes = line.as_bytes().to_vec();
            let v = simd_json::to_borrowed_value(&mut bytes)?;
            Ok(v.as_object().map_or(0, |o| o.len()))
        },
        "serde_json+get" => |line| {
            let v: serde_json::Value = serde_json::from_str(line)?;
            std::hint::black_box(serde_json_gets(&v));
            Ok(v.as_object().map_or(0, |o| o.len()))
        },
        "sonic+get" => |line| {
            use sonic_rs::JsonContainerTrait as _;
            let v: sonic_rs::Value = sonic_rs::from_str(line)?;
            std::hint::black_box(sonic_gets(&v));
            Ok(v.as_object().map_or(0, |o| o.len()))
        },
        other => return Err(format!("no form `{other}`").into()),
    })
}

/// Looks every key of the event's first two levels up by name, as the rules' paths do (the default
/// TikTok mapping reads 25 such paths): answers how many were found, which is every key.
fn serde_json_gets(event: &serde_json::Value) -> usize {
    let Some(top) = event.as_object() else {
        return 0;
    };
    let mut found = 0;
    for (key, value) in top {
        found += usize::from(std::hint::black_box(event.get(key)).is_some());
        for inner in value.as_object().into_iter().flat_map(|o| o.keys()) {
            found += usize::from(std::hint::black_box(value.get(inner)).is_some());
        }
    }
    found
}

/// [`serde_json_gets`] on a `sonic_rs::Value` (whose objects are searched in order).
fn sonic_gets(event: &sonic_rs::Value) -> usize {
    use sonic_rs::{JsonContainerTrait as _, JsonValueTrait as _};
    let Some(top) = event.as_object() else {
        return 0;
    };
    let mut found = 0;
    for (key, value) in top.iter() {
        found += usize::from(std::hint::black_box(event.get(key)).is_some());
        for (inner, _) in value.as_object().into_iter().flat_map(|o| o.iter()) {
            found += usize::from(std::hint::black_box(value.get(inner)).is_some());
        }
    }
    found
}
