//! What can go wrong with a plugin: loading it ([`LoadError`]) and calling it ([`CallError`]).

/// A cause from wasmtime (or another library), kept as the error's source.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a plugin could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read `{path}`")]
    Read {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("not a WebAssembly component")]
    Compile(#[source] Cause),
    #[error("does not match the plugin world (engine/wasm/wit/plugin.wit)")]
    World(#[source] Cause),
    /// The plugin's `init` refused its config, with the plugin's own message.
    #[error("refused its config: {0}")]
    Config(String),
    #[error("could not start")]
    Start(#[source] Cause),
}

/// Why a call failed. The events of the call fail with this message; the process goes on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    #[error("ran out of its time budget ({0} ms)")]
    Timeout(u64),
    #[error("tried to grow its memory beyond the limit ({0} MiB)")]
    Memory(u64),
    /// The trap's own description (wasm backtraces left out).
    #[error("trapped: {0}")]
    Trap(String),
    #[error("returned {size} bytes of events, more than the limit ({limit_kib} KiB)")]
    OutputTooLarge { size: usize, limit_kib: u64 },
    #[error("returned {got} results for {sent} events")]
    WrongCount { got: usize, sent: usize },
    /// The plugin's `init` refused its config, with the plugin's own message.
    #[error("refused its config: {0}")]
    Config(String),
}

impl CallError {
    /// Whether the instance trapped: a wasm trap (a panic, `unreachable`, ...), the time budget
    /// (an epoch interruption) or the memory cap (a refused growth traps). What
    /// [`crate::Plugin::traps`] counts.
    pub fn is_trap(&self) -> bool {
        matches!(self, Self::Trap(_) | Self::Timeout(_) | Self::Memory(_))
    }

    /// Whether one event of the call can be the cause: a trap, or output over the limit. Such a
    /// failed batch is run again one event at a time ([`crate::batch`]). A wrong result count or a
    /// refused config is the plugin's fault whatever the events: the batch fails.
    pub fn may_come_from_one_event(&self) -> bool {
        self.is_trap() || matches!(self, Self::OutputTooLarge { .. })
    }
}
