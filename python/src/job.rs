//! `Job`: one job, started here (`Host.run`) or looked up by id
//! (`Workspace.job`) — then it may run in another process. Its state is
//! read from the workspace's files (the read API every front end shares),
//! so both kinds behave alike; a job started here also ends through its
//! in-process handle.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use labhost::read::{Cursor, Follower, MetricQuery, Update};
use labhost::{JobControl, JobHandle, JobRecord};
use pyo3::prelude::*;
use tokio::sync::watch;

use crate::errors::{err, raise, Kind};
use crate::host::to_py;
use crate::runtime;

/// How often a job started elsewhere is looked at while waiting.
const POLL: Duration = Duration::from_millis(50);

type Ended = runtime::Ended<JobRecord>;

#[pyclass(module = "labhost._labhost", frozen)]
pub struct Job {
    ws: labhost::Workspace,
    /// The job's id.
    #[pyo3(get)]
    id: String,
    /// Its experiment.
    #[pyo3(get)]
    experiment: String,
    /// Started by this process: its control and its end.
    local: Option<(Arc<JobControl>, watch::Receiver<Ended>)>,
}

impl Job {
    /// A job this process started: its end is awaited on the runtime.
    pub fn started(ws: labhost::Workspace, handle: JobHandle) -> Job {
        let (tx, rx) = watch::channel(None);
        let control = handle.control();
        let (id, experiment) = (handle.id.clone(), handle.experiment.clone());
        runtime::get().spawn(async move {
            let end = handle
                .wait()
                .await
                .map_err(|e| labhost::text::error_line(&e));
            let _ = tx.send(Some(end));
        });
        Job {
            ws,
            id,
            experiment,
            local: Some((control, rx)),
        }
    }

    /// A job known by its record (it may run in another process).
    pub fn view(ws: labhost::Workspace, id: String, experiment: String) -> Job {
        Job {
            ws,
            id,
            experiment,
            local: None,
        }
    }

    fn read(&self) -> PyResult<(JobRecord, labhost::store::JobPaths)> {
        self.ws
            .job(&self.experiment, &self.id)
            .map_err(err(Kind::NotFound))
    }
}

#[pymethods]
impl Job {
    /// `QUEUED`, `RUNNING`, `COMPLETE`, `FAILED`, `CANCELLED` or `INTERRUPTED`, now.
    #[getter]
    fn status(&self) -> PyResult<String> {
        Ok(self.read()?.0.status.as_str().to_owned())
    }

    /// The job record as it is now (a dict: status, progress, config,
    /// artifacts, checkpoints, evals, models, datasets, scores...).
    fn record<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.read()?.0)
    }

    /// Wait for the job's end (at most `timeout` seconds: then
    /// `WaitTimeoutError`, the job goes on); its final record. A job that
    /// failed is not an exception here: look at `record["status"]`, or
    /// call `raise_for_status()` on the returned record's job.
    #[pyo3(signature = (timeout=None))]
    fn wait<'py>(&self, py: Python<'py>, timeout: Option<f64>) -> PyResult<Bound<'py, PyAny>> {
        let (ws, id) = (self.ws.clone(), self.id.clone());
        let local = self.local.as_ref().map(|(_, rx)| rx.clone());
        let elsewhere = async move {
            labhost::read::wait_for_end(&ws, &id, POLL)
                .await
                .map_err(|e| labhost::text::error_line(&e))
        };
        runtime::wait_end(py, &format!("job {}", self.id), timeout, local, elsewhere)
    }

    /// Ask the job to stop: it sees `should-stop`, then is ended after its
    /// grace period. `ConflictError` if it already ended.
    fn cancel(&self) -> PyResult<()> {
        if let Some((control, rx)) = &self.local {
            if let Some(Ok(rec)) = &*rx.borrow() {
                return Err(raise(
                    Kind::Conflict,
                    format!("job {} already ended ({})", rec.id, rec.status),
                ));
            }
            control.cancel();
            return Ok(());
        }
        self.ws
            .request_cancel(&self.id)
            .map(|_| ())
            .map_err(err(Kind::Conflict))
    }

    /// Everything the job does, from its start (or from now: `from_start=False`
    /// skips what is already written), until its end: an iterator of dicts
    /// `{"event": "log"|"metric"|"progress"|"status"|"stored"|"ended", ...}`.
    /// Works in `for` and in `async for`.
    #[pyo3(signature = (from_start=true))]
    fn events(&self, py: Python<'_>, from_start: bool) -> PyResult<Events> {
        let (_, paths) = self.read()?;
        let mut follower = Follower::new(&self.ws, paths, Cursor::default());
        if !from_start {
            py.detach(|| follower.poll())
                .map_err(|e| raise(Kind::Io, e.to_string()))?;
        }
        Ok(Events {
            inner: Mutex::new((follower, VecDeque::new())),
        })
    }

    /// Log lines so far: `[{"source", "message", "ts"}]`.
    fn logs<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let (_, paths) = self.read()?;
        let mut follower = Follower::new(&self.ws, paths, Cursor::default());
        let updates = py
            .detach(|| follower.poll())
            .map_err(|e| raise(Kind::Io, e.to_string()))?;
        let logs: Vec<&Update> = updates
            .iter()
            .filter(|u| matches!(u.event, labhost::JobEvent::Log { .. }))
            .collect();
        to_py(py, &logs)
    }

    /// Metric points so far, in the order recorded: `[{"name", "value",
    /// "step", "ts"}]`, only `names` if given, at most `max_points` per
    /// name (downsampled, extremes kept).
    #[pyo3(signature = (names=None, max_points=None))]
    fn metrics<'py>(
        &self,
        py: Python<'py>,
        names: Option<Vec<String>>,
        max_points: Option<usize>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (_, paths) = self.read()?;
        let q = MetricQuery {
            names: names.unwrap_or_default(),
            steps: None,
            max_points,
        };
        let points = py
            .detach(|| labhost::read::metrics(&paths, &q))
            .map_err(|e| raise(Kind::Io, e.to_string()))?;
        to_py(py, &points)
    }

    /// The same points as a pandas DataFrame (columns name, value, step,
    /// ts); needs pandas (`pip install labhost[pandas]`).
    #[pyo3(signature = (names=None, max_points=None))]
    fn metrics_frame<'py>(
        &self,
        py: Python<'py>,
        names: Option<Vec<String>>,
        max_points: Option<usize>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let pandas = py.import("pandas").map_err(|_| {
            pyo3::exceptions::PyImportError::new_err(
                "metrics_frame() needs pandas: pip install labhost[pandas] (metrics() returns plain lists)",
            )
        })?;
        let points = self.metrics(py, names, max_points)?;
        let columns = vec!["name", "value", "step", "ts"];
        let kwargs = pyo3::types::PyDict::new(py);
        kwargs.set_item("columns", columns)?;
        pandas.call_method("DataFrame", (points,), Some(&kwargs))
    }

    /// `await job.wait_async(timeout)`: `wait` in a worker thread, for
    /// asyncio code (a FastAPI handler...).
    #[pyo3(signature = (timeout=None))]
    fn wait_async<'py>(slf: Bound<'py, Self>, timeout: Option<f64>) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        py.import("asyncio")?
            .call_method1("to_thread", (slf.getattr("wait")?, timeout))
    }

    /// What the job saved so far, from its record: lists of dicts.
    #[getter]
    fn artifacts<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.field(py, "artifacts")
    }
    #[getter]
    fn checkpoints<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.field(py, "checkpoints")
    }
    #[getter]
    fn evals<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.field(py, "evals")
    }
    /// Ids of the models and datasets it saved.
    #[getter]
    fn models<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.field(py, "models")
    }
    #[getter]
    fn datasets<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.field(py, "datasets")
    }

    /// Raise `JobFailedError` unless the job ended COMPLETE (waits for its end).
    fn raise_for_status(&self, py: Python<'_>) -> PyResult<()> {
        let rec = self.wait(py, None)?;
        let status: String = rec.get_item("status")?.extract()?;
        if status == "COMPLETE" {
            return Ok(());
        }
        let message: Option<String> = rec.get_item("message")?.extract()?;
        Err(raise(
            Kind::JobFailed,
            format!(
                "job {} ended {status}: {}",
                self.id,
                message.unwrap_or_default()
            ),
        ))
    }

    fn __repr__(&self) -> String {
        format!(
            "Job(id={}, experiment={})",
            crate::host::quote(&self.id),
            crate::host::quote(&self.experiment)
        )
    }
}

impl Job {
    fn field<'py>(&self, py: Python<'py>, key: &str) -> PyResult<Bound<'py, PyAny>> {
        self.record(py)?.get_item(key)
    }
}

/// The iterator `Job.events()` returns.
#[pyclass(module = "labhost._labhost")]
pub struct Events {
    inner: Mutex<(Follower, VecDeque<Update>)>,
}

impl Events {
    /// The next event, or `None` at the end (blocking, GIL released).
    fn next_event(&self, py: Python<'_>) -> PyResult<Option<Update>> {
        loop {
            {
                let mut guard = self.inner.lock().unwrap();
                if let Some(u) = guard.1.pop_front() {
                    return Ok(Some(u));
                }
                if guard.0.done() {
                    return Ok(None);
                }
            }
            let batch = py.detach(|| {
                let mut guard = self.inner.lock().unwrap();
                let batch = guard.0.poll();
                if matches!(&batch, Ok(b) if b.is_empty()) {
                    drop(guard);
                    std::thread::sleep(POLL);
                }
                batch
            });
            let batch = batch.map_err(|e| raise(Kind::Io, e.to_string()))?;
            self.inner.lock().unwrap().1.extend(batch);
            py.check_signals()?;
        }
    }
}

#[pymethods]
impl Events {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        match self.next_event(py)? {
            Some(u) => Ok(Some(to_py(py, &u)?)),
            None => Ok(None),
        }
    }

    fn __aiter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    /// `async for`: the next event from a worker thread (the event loop
    /// goes on); `StopAsyncIteration` at the end.
    fn __anext__<'py>(slf: Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let blocking = slf.getattr("_next_or_stop_async")?;
        py.import("asyncio")?.call_method1("to_thread", (blocking,))
    }

    /// The next event, or `StopAsyncIteration` (what `__anext__` runs in a thread).
    fn _next_or_stop_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match self.next_event(py)? {
            Some(u) => to_py(py, &u),
            None => Err(pyo3::exceptions::PyStopAsyncIteration::new_err(())),
        }
    }
}
