//! The tokio runtime every `Host` of the process shares (jobs run on its
//! blocking threads; their watchers are its tasks), and blocking on it with
//! the GIL released.

use std::future::Future;
use std::sync::OnceLock;

use pyo3::prelude::*;
use tokio::runtime::Runtime;

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
