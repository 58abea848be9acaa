//! One loaded plugin: a pool of warm instances and calls under limits.
//!
//! Each call takes a warm instance (or makes one: instantiate from the `InstancePre`, then `init`
//! with the config), sets the time budget, calls, and checks the output. An instance that trapped,
//! ran out of time or memory, or returned a malformed answer is dropped, never reused.
//!
//! A plugin counts the instances it started and the calls that trapped ([`Plugin::instances_started`],
//! [`Plugin::traps`]): the service exposes the traps as a metric, tests count instantiations.

use crate::Limits;
use crate::bindings::{Action, Transform, TransformPre};
use crate::epoch::Ticker;
use crate::error::{CallError, LoadError};
use crate::sandbox::{LogLine, Sandbox};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use wasmtime::{Engine, Store, StoreLimitsBuilder, Trap};

/// Warm instances kept per plugin.
const POOL_SIZE: usize = 8;

/// What a call returned: one result per event, and the log lines written meanwhile.
#[derive(Debug)]
pub struct PluginOutput {
    pub results: Vec<Result<Action, String>>,
    pub logs: Vec<LogLine>,
}

struct Warm {
    store: Store<Sandbox>,
    bindings: Transform,
}

/// A loaded plugin.
pub struct Plugin {
    name: Arc<str>,
    engine: Engine,
    _ticker: Arc<Ticker>,
    pre: TransformPre<Sandbox>,
    config: String,
    limits: Limits,
    pool: Mutex<Vec<Warm>>,
    /// Instances started (at load, by warm-ups, and to replace one that failed).
    started: AtomicU64,
    /// Calls (or instantiations) that trapped: see [`CallError::is_trap`].
    traps: AtomicU64,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.name)
            .field("limits", &self.limits)
            .finish()
    }
}

impl Plugin {
    pub(crate) fn start(
        name: &str,
        engine: Engine,
        ticker: Arc<Ticker>,
        pre: TransformPre<Sandbox>,
        config: &serde_json::Value,
        limits: Limits,
    ) -> Result<Self, LoadError> {
        let plugin = Self {
            name: name.into(),
            engine,
            _ticker: ticker,
            pre,
            config: config.to_string(),
            limits,
            pool: Mutex::new(Vec::new()),
            started: AtomicU64::new(0),
            traps: AtomicU64::new(0),
        };
        let warm = plugin.instantiate().map_err(|e| match e {
            CallError::Config(m) => LoadError::Config(m),
            other => LoadError::Start(other.into()),
        })?;
        plugin.give_back(warm);
        Ok(plugin)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// How many instances this plugin started so far (instantiate, then `init`), the one at load
    /// included.
    pub fn instances_started(&self) -> u64 {
        self.started.load(Ordering::Relaxed)
    }

    /// How many of its calls trapped so far (a panic or other wasm trap, the time budget, the
    /// memory cap).
    pub fn traps(&self) -> u64 {
        self.traps.load(Ordering::Relaxed)
    }

    /// Starts one more instance (instantiate from the `InstancePre`, then `init`) and pools it:
    /// warms a plugin before traffic.
    pub fn warm_up(&self) -> Result<(), CallError> {
        let warm = self.instantiate()?;
        self.give_back(warm);
        Ok(())
    }

    /// A fresh instance, initialised with the config.
    fn instantiate(&self) -> Result<Warm, CallError> {
        self.started.fetch_add(1, Ordering::Relaxed);
        let memory =
            usize::try_from(self.limits.memory_mib.saturating_mul(1 << 20)).unwrap_or(usize::MAX);
        let limits = StoreLimitsBuilder::new()
            .memory_size(memory)
            .trap_on_grow_failure(true)
            .build();
        let mut store = Store::new(&self.engine, Sandbox::new(limits));
        store.limiter(|s| &mut s.limits);
        store.set_epoch_deadline(self.limits.time_ms);
        let bindings = self
            .pre
            .instantiate(&mut store)
            .map_err(|e| self.classify(&e))?;
        bindings
            .call_init(&mut store, &self.config)
            .map_err(|e| self.classify(&e))?
            .map_err(CallError::Config)?;
        Ok(Warm { store, bindings })
    }

    fn take(&self) -> Result<Warm, CallError> {
        let pooled = self.pool.lock().ok().and_then(|mut p| p.pop());
        match pooled {
            Some(w) => Ok(w),
            None => self.instantiate(),
        }
    }

    fn give_back(&self, warm: Warm) {
        if let Ok(mut pool) = self.pool.lock()
            && pool.len() < POOL_SIZE
        {
            pool.push(warm);
        }
    }

    /// Transforms a batch of events (JSON texts) in one call: a failed call fails the batch.
    /// [`Plugin::transform_batch`] adds the second pass the chains use.
    pub fn call_batch(&self, events: &[String]) -> Result<PluginOutput, CallError> {
        self.call(events.len(), |w| {
            w.bindings.call_transform_batch(&mut w.store, events)
        })
    }

    /// Transforms one event (JSON text).
    pub fn call_one(&self, event: &str) -> Result<PluginOutput, CallError> {
        self.call(1, |w| {
            w.bindings
                .call_transform(&mut w.store, event)
                .map(|r| vec![r])
        })
    }

    fn call(
        &self,
        sent: usize,
        f: impl FnOnce(&mut Warm) -> wasmtime::Result<Vec<Result<Action, String>>>,
    ) -> Result<PluginOutput, CallError> {
        let mut warm = self.take()?;
        warm.store.set_epoch_deadline(self.limits.time_ms);
        warm.store.data_mut().logs.clear();
        let results = f(&mut warm).map_err(|e| self.classify(&e))?;
        if results.len() != sent {
            return Err(CallError::WrongCount {
                got: results.len(),
                sent,
            });
        }
        let size: usize = results.iter().map(output_size).sum();
        let limit = self.limits.output_kib.saturating_mul(1024);
        if size as u64 > limit {
            return Err(CallError::OutputTooLarge {
                size,
                limit_kib: self.limits.output_kib,
            });
        }
        let logs = std::mem::take(&mut warm.store.data_mut().logs);
        self.give_back(warm);
        Ok(PluginOutput { results, logs })
    }

    /// Names what went wrong in a call that returned a wasmtime error, and counts it when it is a
    /// trap.
    fn classify(&self, e: &wasmtime::Error) -> CallError {
        let error = self.name_error(e);
        if error.is_trap() {
            self.traps.fetch_add(1, Ordering::Relaxed);
        }
        error
    }

    fn name_error(&self, e: &wasmtime::Error) -> CallError {
        if let Some(Trap::Interrupt) = e.downcast_ref::<Trap>() {
            return CallError::Timeout(self.limits.time_ms);
        }
        let text = format!("{e:#}");
        if text.contains("growing memory") {
            return CallError::Memory(self.limits.memory_mib);
        }
        // The first line names the trap; the rest is a wasm backtrace. When the first line only
        // says that a backtrace follows, the cause is the error's root.
        let first_line = |text: &str| {
            let line = text.lines().find(|l| !l.trim().is_empty());
            line.unwrap_or("unknown error").to_owned()
        };
        let mut first = first_line(&text);
        if first.starts_with("error while executing at wasm backtrace") {
            first = first_line(&e.root_cause().to_string());
        }
        let trap = e.downcast_ref::<Trap>().map(|t| t.to_string());
        CallError::Trap(trap.unwrap_or(first))
    }
}

fn output_size(r: &Result<Action, String>) -> usize {
    match r {
        Ok(Action::Unchanged) => 0,
        Ok(Action::Changed(s)) | Ok(Action::Drop(s)) | Err(s) => s.len(),
        Ok(Action::Split(list)) => list.iter().map(String::len).sum(),
    }
}
