//! `labhost._labhost`: the library embedded in Python. The Python half
//! (`pysrc/labhost/__init__.py`) re-exports these classes, defines the
//! exceptions and adds the asyncio forms.
//!
//! - [`host`] — `Workspace` (reads: jobs, records, logs, metrics, registries)
//!   and `Host` (loads plugins, starts jobs);
//! - [`job`] — `Job` (wait, cancel, events, logs, metrics) and its event
//!   iterator;
//! - [`pipeline`] — `Run` (status, record, wait, cancel) of pipelines
//!   started or resumed by `Host`;
//! - [`errors`] — library errors as the package's exception classes;
//! - [`runtime`] — the process's tokio runtime and GIL-free blocking.
//!
//! Every call that waits (a compile, a job, a poll) releases the GIL.

use pyo3::prelude::*;

mod errors;
mod host;
mod job;
mod pipeline;
mod runtime;

#[pymodule]
fn _labhost(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<host::Workspace>()?;
    m.add_class::<host::Host>()?;
    m.add_class::<host::Plugin>()?;
    m.add_class::<job::Job>()?;
    m.add_class::<job::Events>()?;
    m.add_class::<pipeline::Run>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
