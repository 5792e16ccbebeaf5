//! `Run`: a pipeline run, started here (`Host.run_pipeline`,
//! `Host.resume_pipeline`) or looked up by id (`Workspace.run`) — then
//! another process may run it. Its state is its run record, read from the
//! workspace, so both kinds behave alike.

use std::time::Duration;

use labhost::pipeline::{find_run, request_cancel, PipelineRun, RunRecord, RunStatus};
use pyo3::prelude::*;
use tokio::sync::watch;

use crate::errors::{err, Kind};
use crate::host::to_py;
use crate::runtime;

/// How often a run executed elsewhere is looked at while waiting.
const POLL: Duration = Duration::from_millis(100);

type Ended = runtime::Ended<RunRecord>;

#[pyclass(module = "labhost._labhost", frozen)]
pub struct Run {
    ws: labhost::Workspace,
    /// The run's id.
    #[pyo3(get)]
    id: String,
    /// Executed by this process: its end.
    local: Option<watch::Receiver<Ended>>,
}

impl Run {
    /// Execute `run` on the process's runtime; the `Run` follows it.
    pub fn started(ws: labhost::Workspace, run: PipelineRun) -> Run {
        let id = run.record().id.clone();
        let (tx, rx) = watch::channel(None);
        runtime::get().spawn(async move {
            let end = run
                .execute(None)
                .await
                .map_err(|e| labhost::text::error_line(&e));
            let _ = tx.send(Some(end));
        });
        Run {
            ws,
            id,
            local: Some(rx),
        }
    }

    pub fn view(ws: labhost::Workspace, id: String) -> Run {
        Run {
            ws,
            id,
            local: None,
        }
    }

    fn read(&self) -> PyResult<RunRecord> {
        find_run(&self.ws, &self.id)
            .map(|(rec, _)| rec)
            .map_err(err(Kind::NotFound))
    }
}

#[pymethods]
impl Run {
    /// `RUNNING`, `COMPLETE`, `FAILED`, `CANCELLED` or `INTERRUPTED`, now.
    #[getter]
    fn status(&self) -> PyResult<&'static str> {
        Ok(self.read()?.status.as_str())
    }

    /// The run record now: its instances, their attempts and jobs.
    fn record<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.read()?)
    }

    /// The record once the run has ended; `WaitTimeoutError` after
    /// `timeout` seconds (the run goes on).
    #[pyo3(signature = (timeout=None))]
    fn wait<'py>(&self, py: Python<'py>, timeout: Option<f64>) -> PyResult<Bound<'py, PyAny>> {
        let (ws, id) = (self.ws.clone(), self.id.clone());
        let elsewhere = async move {
            loop {
                match find_run(&ws, &id) {
                    Ok((rec, _)) if rec.status != RunStatus::Running => break Ok(rec),
                    Ok(_) => tokio::time::sleep(POLL).await,
                    Err(e) => break Err(labhost::text::error_line(&e)),
                }
            }
        };
        let what = format!("pipeline run {}", self.id);
        runtime::wait_end(py, &what, timeout, self.local.clone(), elsewhere)
    }

    /// Cancel it, whichever process runs it: running jobs get should-stop,
    /// nothing new starts; `Host.resume_pipeline` goes on later.
    /// `ConflictError` if it is not running.
    fn cancel(&self) -> PyResult<()> {
        self.read()?;
        request_cancel(&self.ws, &self.id)
            .map(|_| ())
            .map_err(err(Kind::Conflict))
    }

    fn __repr__(&self) -> String {
        format!("Run({})", crate::host::quote(&self.id))
    }
}
