//! `wasi:nn` for plugins, one file per WIT interface (tensor, graph,
//! inference, errors). The engine and the types are in `crate::nn`; the
//! files here move values between the guest's handles and it, and count
//! what the host holds against the job's memory limit.

mod errors;
mod graph;
mod inference;
mod tensor;

use wasmtime::component::Resource;

use crate::nn::NnError;
use crate::state::HostState;

/// The guest's view of a fallible call: the value or an `error` handle.
type NnResult<T> = wasmtime::Result<Result<Resource<T>, Resource<NnError>>>;

impl HostState {
    /// Hand `r` to the guest as a handle, or its error as an `error` handle.
    fn nn_handle<T: Send + 'static>(&mut self, r: Result<T, NnError>) -> NnResult<T> {
        Ok(match r {
            Ok(v) => Ok(self.table.push(v)?),
            Err(e) => Err(self.table.push(e)?),
        })
    }

    /// Note a call in the job's log (nothing outside a job).
    fn nn_log(&mut self, line: &str) {
        if let Some(job) = self.job.as_mut() {
            job.host_log(&format!("wasi:nn: {line}"));
        }
    }
}
