//! The tokio runtime every `Host` of the process shares (jobs run on its
//! blocking threads; their watchers are its tasks), and blocking on it with
//! the GIL released.

use std::future::Future;
use std::sync::OnceLock;

use pyo3::prelude::*;
use tokio::runtime::Runtime;
use tokio::sync::watch;

use crate::errors::{raise, Kind};
use crate::host::to_py;

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

pub fn get() -> &'static Runtime {
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .thread_name("labhost")
            .enable_all()
            .build()
            .expect("cannot start the tokio runtime")
    })
}

/// Run `f` to completion on the runtime with the GIL released (other
/// Python threads run meanwhile). Ctrl-C is checked every 100 ms: the wait
/// ends with `KeyboardInterrupt` (the job itself goes on).
pub fn block_on<F>(py: Python<'_>, f: F) -> PyResult<F::Output>
where
    F: Future + Send,
    F::Output: Send,
{
    let rt = get();
    let mut f = Box::pin(f);
    loop {
        let step = py.detach(|| {
            rt.block_on(async {
                tokio::select! {
                    out = &mut f => Some(out),
                    _ = tokio::time::sleep(std::time::Duration::from_millis(100)) => None,
                }
            })
        });
        if let Some(out) = step {
            return Ok(out);
        }
        py.check_signals()?;
    }
}

/// The end of something this process may be running (a job, a pipeline
/// run): set once, by the task that runs it.
pub type Ended<T> = Option<Result<T, String>>;

/// Wait for an end — from `local` when this process runs it, else from
/// `elsewhere` (reading the workspace) — for at most `timeout` seconds,
/// then `WaitTimeoutError` saying `what` did not end; the final record.
pub fn wait_end<'py, T>(
    py: Python<'py>,
    what: &str,
    timeout: Option<f64>,
    local: Option<watch::Receiver<Ended<T>>>,
    elsewhere: impl Future<Output = Result<T, String>> + Send,
) -> PyResult<Bound<'py, PyAny>>
where
    T: serde::Serialize + Clone + Send + Sync,
{
    let limit = wait_limit(timeout)?;
    let end = async move {
        match local {
            Some(mut rx) => match rx.wait_for(Option::is_some).await {
                Ok(v) => v.clone().expect("some"),
                Err(_) => Err(format!("the task running {what} ended without a result")),
            },
            None => elsewhere.await,
        }
    };
    let out = block_on(py, async move {
        match limit {
            Some(t) => tokio::time::timeout(t, end).await.ok(),
            None => Some(end.await),
        }
    })?;
    match out {
        None => Err(raise(
            Kind::Timeout,
            format!(
                "{what} did not end within {} s",
                timeout.unwrap_or_default()
            ),
        )),
        Some(Ok(rec)) => to_py(py, &rec),
        Some(Err(e)) => Err(raise(Kind::Io, e)),
    }
}

/// A `timeout=` argument: seconds >= 0, or none.
pub fn wait_limit(timeout: Option<f64>) -> PyResult<Option<std::time::Duration>> {
    match timeout {
        Some(t) if !(t.is_finite() && t >= 0.0) => Err(raise(
            Kind::Invalid,
            format!("timeout must be a number of seconds >= 0, not {t}"),
        )),
        Some(t) => Ok(Some(std::time::Duration::from_secs_f64(t))),
        None => Ok(None),
    }
}
