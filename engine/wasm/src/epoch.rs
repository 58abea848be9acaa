//! The clock of the time budgets: a thread that advances the shared engine's epoch every
//! [`EPOCH_TICK`], for as long as the runtime or any plugin it loaded is alive.

use crate::error::LoadError;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use wasmtime::Engine;

/// How often the epoch advances: the unit of the time budget.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

/// Keeps the epoch thread running while it is alive (the runtime and every plugin hold one).
pub(crate) struct Ticker(Arc<AtomicBool>);

impl Ticker {
    /// Starts the thread that ticks `engine`'s epoch.
    pub(crate) fn start(engine: &Engine) -> Result<Self, LoadError> {
        let ticking = Arc::new(AtomicBool::new(true));
        let (engine, flag) = (engine.clone(), ticking.clone());
        std::thread::Builder::new()
            .name("switchyard-epoch".into())
            .spawn(move || {
                while flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
            .map_err(|e| LoadError::Start(e.into()))?;
        Ok(Self(ticking))
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Relaxed);
    }
}
