//! The wasm engine: its [`Config`] (component model, epoch interruption,
//! optionally the pooling allocator sized by [`Pooling`]), the [`Linker`]
//! holding WASI and every lab API version, and the epoch ticker that drives
//! timeouts and cancellation.

use std::time::Duration;

use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::bindings::Plugin as PluginBindings;
use crate::state::HostState;

/// How often the epoch ticks; the granularity of timeouts and cancellation.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// How a [`Host`](crate::Host) is built. `HostOptions::default()` is what [`Host::new`](crate::Host::new)
/// uses: instances are allocated on demand.
#[derive(Debug, Clone, Default)]
pub struct HostOptions {
    /// Pre-allocate instance slots (wasmtime's pooling allocator): faster
    /// instantiation when many jobs run, at the cost of a fixed virtual
    /// memory reservation. `None`: allocate per instance.
    pub pooling: Option<Pooling>,
}

/// Sizing of the pooling allocator. Each linear-memory slot reserves
/// virtual memory (4 GiB + guard on 64-bit hosts, not resident memory), so
/// the pool is sized by the number of instances alive at once.
#[derive(Debug, Clone)]
pub struct Pooling {
    /// Plugin instances alive at once: concurrent jobs, plus one per
    /// `Host::load` in progress (describe). More fail to start with an error
    /// naming the limit.
    pub instances: u32,
    /// Largest linear memory a slot holds. A job whose memory limit is
    /// larger is refused at start (run it on a host without pooling).
    pub max_memory: u64,
}

impl Default for Pooling {
    fn default() -> Self {
        Pooling {
            instances: 300,
            max_memory: crate::sandbox::Limits::default().memory_bytes,
        }
    }
}

/// Per component (Python and JS components hold several core instances,
/// memories and tables).
const POOL_CORE_INSTANCES_PER_COMPONENT: u32 = 32;
const POOL_MEMORIES_PER_COMPONENT: u32 = 4;
const POOL_TABLES_PER_COMPONENT: u32 = 8;
const POOL_TABLE_ELEMENTS: usize = 1 << 17;

impl Pooling {
    fn config(&self) -> PoolingAllocationConfig {
        let n = self.instances.max(1);
        let mut p = PoolingAllocationConfig::default();
        p.total_component_instances(n)
            .total_stacks(n)
            .total_core_instances(n.saturating_mul(POOL_CORE_INSTANCES_PER_COMPONENT))
            .total_memories(n.saturating_mul(POOL_MEMORIES_PER_COMPONENT))
            .total_tables(n.saturating_mul(POOL_TABLES_PER_COMPONENT))
            .max_memories_per_component(POOL_MEMORIES_PER_COMPONENT)
            .max_tables_per_component(POOL_TABLES_PER_COMPONENT)
            .max_core_instances_per_component(POOL_CORE_INSTANCES_PER_COMPONENT)
            .max_memory_size(usize::try_from(self.max_memory).unwrap_or(usize::MAX))
            .table_elements(POOL_TABLE_ELEMENTS);
        p
    }
}

/// Build the engine and the linker for `options` and start the epoch
/// ticker (it stops when the engine is dropped).
pub(crate) fn build(options: &HostOptions) -> anyhow::Result<(Engine, Linker<HostState>)> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    if let Some(p) = &options.pooling {
        anyhow::ensure!(p.instances > 0, "pooling: instances must be at least 1");
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(p.config()));
    }
    let engine = Engine::new(&config)
        .map_err(|e| anyhow::anyhow!("cannot create the wasm engine: {}", root_cause(&e)))?;
    let mut linker = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    PluginBindings::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)?;
    crate::bindings::v0_1_0::Plugin::add_to_linker::<HostState, HasSelf<HostState>>(
        &mut linker,
        |s| s,
    )?;
    spawn_epoch_ticker(&engine);
    Ok((engine, linker))
}

fn spawn_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("labhost-epoch".into())
        .spawn(move || loop {
            std::thread::sleep(EPOCH_TICK);
            match weak.upgrade() {
                Some(engine) => engine.increment_epoch(),
                None => return,
            }
        })
        .expect("spawn epoch ticker");
}

/// The innermost cause of a wasmtime error, plus the trap code if any.
pub(crate) fn root_cause(e: &wasmtime::Error) -> String {
    let msg = e.chain().map(|c| c.to_string()).collect::<Vec<_>>();
    // wasmtime puts the trap message last and the wasm backtrace in between.
    let last = msg.last().cloned().unwrap_or_default();
    let first = msg.first().cloned().unwrap_or_default();
    let first_line = first.lines().next().unwrap_or_default().to_owned();
    if msg.len() > 1 && !first_line.starts_with("error while executing") {
        format!("{first_line}: {last}")
    } else {
        last.lines().next().unwrap_or_default().to_owned()
    }
}
