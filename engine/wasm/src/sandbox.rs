//! The data of a plugin's store: WASI with nothing granted (no files, network, environment,
//! arguments or stdio; clocks frozen at the epoch), the memory limiter, and the log lines the
//! plugin wrote through the host.

use crate::bindings::{Level, TransformImports};
use wasmtime::StoreLimits;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// At most this many log lines are kept per call; the rest are counted.
pub const MAX_LOG_LINES: usize = 100;
/// A log line is cut to this many bytes.
pub const MAX_LOG_LINE: usize = 2048;

/// A log line a plugin wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub level: Level,
    pub message: String,
}

pub struct Sandbox {
    wasi: WasiCtx,
    table: ResourceTable,
    pub limits: StoreLimits,
    pub logs: Vec<LogLine>,
    pub logs_dropped: usize,
}

impl Sandbox {
    pub fn new(limits: StoreLimits) -> Self {
        let mut wasi = WasiCtx::builder();
        wasi.wall_clock(FrozenClock).monotonic_clock(FrozenClock);
        Self {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            limits,
            logs: Vec::new(),
            logs_dropped: 0,
        }
    }
}

impl WasiView for Sandbox {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl TransformImports for Sandbox {
    fn log(&mut self, level: Level, mut message: String) {
        if self.logs.len() >= MAX_LOG_LINES {
            self.logs_dropped += 1;
            return;
        }
        // One line, as written: a line break or a terminal escape from a plugin would forge
        // log lines of the engine's own, or reach the terminal as code (`\n`, `\u{1b}` instead).
        if message.chars().any(char::is_control) {
            message = message
                .chars()
                .map(|c| match c.is_control() {
                    true => c.escape_default().to_string(),
                    false => c.to_string(),
                })
                .collect();
        }
        if message.len() > MAX_LOG_LINE {
            let mut cut = MAX_LOG_LINE;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
        }
        self.logs.push(LogLine { level, message });
    }
}

/// A clock that always reads zero: plugins get no real time unless their config carries it.
struct FrozenClock;

impl wasmtime_wasi::HostWallClock for FrozenClock {
    fn resolution(&self) -> std::time::Duration {
        std::time::Duration::from_secs(1)
    }
    fn now(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }
}

impl wasmtime_wasi::HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

/// A log level as written in logs.
pub fn level_name(level: Level) -> &'static str {
    match level {
        Level::Debug => "debug",
        Level::Info => "info",
        Level::Warn => "warn",
        Level::Error => "error",
    }
}
