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
/// the job's error can name the limit. The memory limit is shared with
/// what the host holds for the guest (`wasi:nn` models and tensors,
/// [`MemoryLimiter::reserve`]): linear memory plus host bytes stay within it.
#[derive(Debug)]
pub struct MemoryLimiter {
    pub memory_bytes: u64,
    pub refused: Option<usize>,
    /// The largest linear memory granted so far.
    linear_bytes: u64,
    /// Bytes the host holds for the guest.
    host_bytes: u64,
}

impl MemoryLimiter {
    pub fn new(memory_bytes: u64) -> Self {
        MemoryLimiter {
            memory_bytes,
            refused: None,
            linear_bytes: 0,
            host_bytes: 0,
        }
    }

    /// Count `bytes` the host holds for the guest against the memory limit;
    /// the error says how the limit is used.
    pub fn reserve(&mut self, bytes: u64, what: &str) -> Result<(), String> {
        let total = self
            .linear_bytes
            .saturating_add(self.host_bytes)
            .saturating_add(bytes);
        if total > self.memory_bytes {
            return Err(format!(
                "{what} ({}) would take the job past its memory limit of {} (plugin memory {}, models and tensors {})",
                crate::units::human_bytes(bytes),
                crate::units::human_bytes(self.memory_bytes),
                crate::units::human_bytes(self.linear_bytes),
                crate::units::human_bytes(self.host_bytes),
            ));
        }
        self.host_bytes += bytes;
        Ok(())
    }

    /// Give back bytes counted by [`MemoryLimiter::reserve`].
    pub fn release(&mut self, bytes: u64) {
        self.host_bytes = self.host_bytes.saturating_sub(bytes);
    }
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
        if (desired as u64).saturating_add(self.host_bytes) > self.memory_bytes {
            self.refused = Some(desired);
            return Ok(false);
        }
        self.linear_bytes = self.linear_bytes.max(desired as u64);
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
