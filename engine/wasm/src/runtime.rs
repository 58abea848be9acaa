//! The plugin runtime: one wasmtime [`Engine`] for every plugin, a thread that advances the epoch
//! every millisecond (the clock of the time budgets), and a disk cache of compiled components keyed
//! by the wasm's SHA-256 and the engine's compatibility hash.

use crate::Limits;
use crate::bindings::{Transform, TransformPre};
use crate::cache::CompileCache;
use crate::epoch::Ticker;
use crate::error::LoadError;
use crate::plugin::Plugin;
use crate::sandbox::Sandbox;
use std::path::Path;
use std::sync::Arc;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// Instance slots reserved up front (the pooling allocator: fast instantiation, memory reused).
const POOL_INSTANCES: u32 = 128;

/// The largest linear memory any plugin may have (its `limits.memory_mib` is checked below this).
pub const MAX_MEMORY: usize = 1 << 30;

/// The shared engine and everything compiled plugins need.
pub struct Runtime {
    engine: Engine,
    linker: Linker<Sandbox>,
    cache: Option<CompileCache>,
    ticker: Arc<Ticker>,
}

impl Runtime {
    /// A runtime; compiled components are cached in `cache` when given.
    pub fn new(cache: Option<CompileCache>) -> Result<Self, LoadError> {
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
            .allocation_strategy(allocation(pool));
        let engine = Engine::new(&config).map_err(|e| LoadError::Start(e.into()))?;
        let mut linker = Linker::<Sandbox>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|e| LoadError::Start(e.into()))?;
        Transform::add_to_linker::<Sandbox, HasSelf<Sandbox>>(&mut linker, |s| s)
            .map_err(|e| LoadError::Start(e.into()))?;
        let ticker = Arc::new(Ticker::start(&engine)?);
        Ok(Self {
            engine,
            linker,
            cache,
            ticker,
        })
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
            .map_err(|e| LoadError::World(e.into()))?;
        let pre = TransformPre::new(pre).map_err(|e| LoadError::World(e.into()))?;
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
        if let Some(component) = self.cache.as_ref().and_then(|c| c.get(&self.engine, wasm)) {
            return Ok(component);
        }
        let component =
            Component::new(&self.engine, wasm).map_err(|e| LoadError::Compile(e.into()))?;
        if let Some(cache) = &self.cache {
            cache.put(&self.engine, wasm, &component);
        }
        Ok(component)
    }
}

/// The pooling allocator; on demand with the `on-demand-instances` feature (see Cargo.toml: the
/// same compiled code and the same calls, instances allocated one by one).
fn allocation(pool: PoolingAllocationConfig) -> InstanceAllocationStrategy {
    if cfg!(feature = "on-demand-instances") {
        InstanceAllocationStrategy::OnDemand
    } else {
        InstanceAllocationStrategy::Pooling(pool)
    }
}
