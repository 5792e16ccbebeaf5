//! The per-store host state: WASI context, resource table, memory limiter,
//! and (for a job, not for `describe`) the job context.

use wasmtime::component::ResourceTable;
use wasmtime::ResourceLimiter;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::error::{CallError, CallResult};
use crate::job::JobCtx;

pub struct HostState {
    pub wasi: WasiCtx,
    pub table: ResourceTable,
    pub limiter: MemoryLimiter,
    pub job: Option<JobCtx>,
}

impl HostState {
    /// The job context; lab calls made outside a job (in `describe`) are refused.
    pub fn job(&mut self) -> CallResult<&mut JobCtx> {
        self.job.as_mut().ok_or_else(|| {
            CallError::Denied("lab calls are not available during describe()".into())
        })
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Caps linear memory, tables and instances; remembers a refused growth so
/// the job's error can name the limit.
#[derive(Debug)]
pub struct MemoryLimiter {
    pub memory_bytes: u64,
    pub refused: Option<usize>,
}

/// Table elements and instances a plugin may create.
const MAX_TABLE_ELEMENTS: usize = 1 << 20;
const MAX_INSTANCES: usize = 1000;
const MAX_TABLES: usize = 1000;
const MAX_MEMORIES: usize = 100;

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired as u64 > self.memory_bytes {
            self.refused = Some(desired);
            return Ok(false);
        }
        Ok(true)
    }
    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
    fn instances(&self) -> usize {
        MAX_INSTANCES
    }
    fn tables(&self) -> usize {
        MAX_TABLES
    }
    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}
