//! The plugin runtime: one wasmtime [`Engine`] for every plugin, a thread that advances the epoch
//! every millisecond (the clock of the time budgets), and a disk cache of compiled components keyed
//! by the wasm's SHA-256 and the engine's compatibility hash.

use crate::Limits;
use crate::bindings::{Transform, TransformPre};
use crate::plugin::Plugin;
use crate::sandbox::Sandbox;
use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// Instance slots reserved up front (the pooling allocator: fast instantiation, memory reused).
const POOL_INSTANCES: u32 = 128;

/// The largest linear memory any plugin may have (its `limits.memory_mib` is checked below this).
pub const MAX_MEMORY: usize = 1 << 30;

/// How often the epoch advances: the unit of the time budget.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

/// Why a plugin could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read `{path}`: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("not a WebAssembly component: {0}")]
    Compile(String),
    #[error("does not match the plugin world (plugins/wit/plugin.wit): {0}")]
    World(String),
    #[error("refused its config: {0}")]
    Config(String),
    #[error("could not start: {0}")]
    Start(String),
}

/// The shared engine and everything compiled plugins need.
pub struct Runtime {
    engine: Engine,
    linker: Linker<Sandbox>,
    cache_dir: Option<PathBuf>,
    ticker: Arc<Ticker>,
}

/// Keeps the epoch thread running while the runtime or any plugin it loaded is alive.
pub(crate) struct Ticker(Arc<AtomicBool>);

impl Drop for Ticker {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Relaxed);
    }
}

impl Runtime {
    /// A runtime; compiled components are cached in `cache_dir` when given.
    pub fn new(cache_dir: Option<PathBuf>) -> Result<Self, LoadError> {
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(POOL_INSTANCES)
            .total_core_instances(POOL_INSTANCES * 4)
            .total_memories(POOL_INSTANCES * 2)
            .total_tables(POOL_INSTANCES * 4)
            .max_memory_size(MAX_MEMORY);
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).map_err(|e| LoadError::Start(format!("{e:#}")))?;
        let mut linker = Linker::<Sandbox>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|e| LoadError::Start(format!("{e:#}")))?;
        Transform::add_to_linker::<Sandbox, HasSelf<Sandbox>>(&mut linker, |s| s)
            .map_err(|e| LoadError::Start(format!("{e:#}")))?;
        let ticking = Arc::new(AtomicBool::new(true));
        let (ticker_engine, flag) = (engine.clone(), ticking.clone());
        std::thread::Builder::new()
            .name("switchyard-epoch".into())
            .spawn(move || {
                while flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    ticker_engine.increment_epoch();
                }
            })
            .map_err(|e| LoadError::Start(format!("cannot start the epoch thread: {e}")))?;
        Ok(Self {
            engine,
            linker,
            cache_dir,
            ticker: Arc::new(Ticker(ticking)),
        })
    }

    /// The default cache folder: `$XDG_CACHE_HOME/switchyard/plugins`, else the temp folder's.
    pub fn default_cache_dir() -> PathBuf {
        std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir)
            .join("switchyard")
            .join("plugins")
    }

    /// Loads a plugin file: compiles it (or reads it from the cache), checks it against the world,
    /// and starts one instance with `config` to check that the plugin accepts it.
    pub fn load_file(
        &self,
        name: &str,
        path: &Path,
        config: &serde_json::Value,
        limits: Limits,
    ) -> Result<Plugin, LoadError> {
        let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
            path: path.to_owned(),
            source,
        })?;
        self.load(name, &bytes, config, limits)
    }

    /// Loads a plugin from wasm bytes. See [`Runtime::load_file`].
    pub fn load(
        &self,
        name: &str,
        wasm: &[u8],
        config: &serde_json::Value,
        limits: Limits,
    ) -> Result<Plugin, LoadError> {
        let component = self.compile(wasm)?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::World(format!("{e:#}")))?;
        let pre = TransformPre::new(pre).map_err(|e| LoadError::World(format!("{e:#}")))?;
        Plugin::start(
            name,
            self.engine.clone(),
            self.ticker.clone(),
            pre,
            config,
            limits,
        )
    }

    /// Compiles a component, through the disk cache when there is one.
    fn compile(&self, wasm: &[u8]) -> Result<Component, LoadError> {
        let Some(dir) = &self.cache_dir else {
            return Component::new(&self.engine, wasm)
                .map_err(|e| LoadError::Compile(format!("{e:#}")));
        };
        let path = dir.join(format!("{}.cwasm", self.cache_key(wasm)));
        if path.is_file() {
            // SAFETY: the file was written by `Component::serialize` of an engine with the same
            // compatibility hash (it is part of the file name), into a folder only this cache
            // writes; a file that does not deserialize is recompiled below.
            if let Ok(c) = unsafe { Component::deserialize_file(&self.engine, &path) } {
                return Ok(c);
            }
        }
        let component =
            Component::new(&self.engine, wasm).map_err(|e| LoadError::Compile(format!("{e:#}")))?;
        // The cache is an optimisation: failing to write it is not an error.
        if let Ok(bytes) = component.serialize()
            && std::fs::create_dir_all(dir).is_ok()
        {
            let tmp = path.with_extension(format!("tmp{}", std::process::id()));
            if std::fs::write(&tmp, bytes).is_ok() {
                let _ = std::fs::rename(&tmp, &path);
            }
        }
        Ok(component)
    }

    fn cache_key(&self, wasm: &[u8]) -> String {
        let mut engine_hash = std::collections::hash_map::DefaultHasher::new();
        self.engine
            .precompile_compatibility_hash()
            .hash(&mut engine_hash);
        let digest = Sha256::digest(wasm);
        format!("{}-{:016x}", hex::encode(digest), engine_hash.finish())
    }
}
