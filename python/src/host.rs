//! `Workspace`, `Host` and `Plugin`: what the CLI's `jobs`, `show`,
//! `models`, `datasets` and `run` do, as Python calls on the library.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};
use pythonize::{depythonize, pythonize};
use serde_json::{Map, Value};

use crate::errors::{err, raise, Kind};
use crate::job::Job;
use crate::pipeline::Run;
use crate::runtime;
use labhost::pipeline::{find_run, list_runs, PipelineRun};

/// Any serialisable value as a Python object (dicts, lists, str, numbers).
pub fn to_py<'py, T: serde::Serialize>(py: Python<'py>, v: &T) -> PyResult<Bound<'py, PyAny>> {
    pythonize(py, v).map_err(|e| raise(Kind::Invalid, format!("cannot convert to Python: {e}")))
}

/// A Python object (a dict of plain values) as JSON, for `what`.
fn from_py(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Value> {
    depythonize::<Value>(obj).map_err(|e| raise(Kind::Invalid, format!("{what}: {e}")))
}

/// `None`, one string, or a list of strings.
fn strings(obj: Option<&Bound<'_, PyAny>>, what: &str) -> PyResult<Vec<String>> {
    match obj {
        None => Ok(Vec::new()),
        Some(o) if o.is_none() => Ok(Vec::new()),
        Some(o) if o.is_instance_of::<PyString>() => Ok(vec![o.extract()?]),
        Some(o) => o
            .extract::<Vec<String>>()
            .map_err(|_| PyTypeError::new_err(format!("{what} must be a str or a list of str"))),
    }
}

/// A workspace: where jobs, registries and settings are kept.
#[pyclass(module = "labhost._labhost", frozen)]
pub struct Workspace {
    pub(crate) inner: labhost::Workspace,
}

#[pymethods]
impl Workspace {
    /// Open (creating it if needed) the workspace at `path`
    /// (default: `$LABHOST_WORKSPACE`, else `~/.labhost`).
    #[new]
    #[pyo3(signature = (path=None))]
    fn new(path: Option<PathBuf>) -> PyResult<Self> {
        let root = path.unwrap_or_else(labhost::Workspace::default_root);
        labhost::Workspace::open(root)
            .map(|inner| Workspace { inner })
            .map_err(err(Kind::Io))
    }

    #[getter]
    fn root(&self) -> PathBuf {
        self.inner.root().to_owned()
    }

    /// Job records matching the CLI's filters (`labhost jobs`), newest
    /// first unless `sort` says otherwise (`created`, `-duration`...).
    #[pyo3(signature = (*, status=None, experiment=None, plugin=None, pipeline=None, since=None, until=None, sort=None, limit=None, offset=0))]
    #[allow(clippy::too_many_arguments)]
    fn jobs<'py>(
        &self,
        py: Python<'py>,
        status: Option<Bound<'py, PyAny>>,
        experiment: Option<String>,
        plugin: Option<String>,
        pipeline: Option<String>,
        since: Option<String>,
        until: Option<String>,
        sort: Option<String>,
        limit: Option<usize>,
        offset: usize,
    ) -> PyResult<Bound<'py, PyList>> {
        let q = labhost::query::JobQueryText {
            statuses: strings(status.as_ref(), "status")?,
            experiment,
            plugin,
            pipeline,
            since,
            until,
            sort,
            offset,
            limit,
        }
        .parse()
        .map_err(err(Kind::Invalid))?;
        let ws = self.inner.clone();
        let page = py.detach(move || q.run(&ws)).map_err(err(Kind::Io))?;
        let out = PyList::empty(py);
        for rec in &page.jobs {
            out.append(to_py(py, rec)?)?;
        }
        Ok(out)
    }

    /// The job `id` (or a unique prefix of it), whichever process runs or ran it.
    fn job(&self, id: &str) -> PyResult<Job> {
        let (rec, _) = self.inner.find_job(id).map_err(err(Kind::NotFound))?;
        Ok(Job::view(self.inner.clone(), rec.id, rec.experiment))
    }

    /// Model records, oldest first.
    fn models<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.inner.models().map_err(err(Kind::Io))?)
    }

    /// Dataset records, oldest first.
    fn datasets<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.inner.datasets().map_err(err(Kind::Io))?)
    }

    /// Pipeline run records, newest first.
    fn runs<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let mut runs = list_runs(&self.inner).map_err(err(Kind::Io))?;
        runs.sort_by_key(|r| std::cmp::Reverse(r.created_at));
        to_py(py, &runs)
    }

    /// The pipeline run `id` (or a unique prefix), whichever process runs it.
    fn run(&self, id: &str) -> PyResult<Run> {
        let (rec, _) = find_run(&self.inner, id).map_err(err(Kind::NotFound))?;
        Ok(Run::view(self.inner.clone(), rec.id))
    }

    fn __repr__(&self) -> String {
        format!(
            "Workspace({})",
            quote(&self.inner.root().display().to_string())
        )
    }
}

/// A loaded plugin: compiled, linked against the lab API, described.
#[pyclass(module = "labhost._labhost", frozen)]
pub struct Plugin {
    pub(crate) inner: Arc<labhost::Plugin>,
}

#[pymethods]
impl Plugin {
    #[getter]
    fn name(&self) -> &str {
        &self.inner.info.name
    }
    #[getter]
    fn version(&self) -> &str {
        &self.inner.info.version
    }
    /// `generator`, `trainer`, `evaluator` or `other`.
    #[getter]
    fn kind(&self) -> &str {
        self.inner.info.kind.as_str()
    }
    #[getter]
    fn description(&self) -> &str {
        &self.inner.info.description
    }
    /// Typed parameters: `[{name, type, default, description}]` (a
    /// missing `default` means required).
    #[getter]
    fn params<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.inner.info.params)
    }
    /// The interfaces it imports (`lab:api/log@0.2.0`...).
    #[getter]
    fn imports(&self) -> Vec<String> {
        self.inner.imports.clone()
    }
    #[getter]
    fn path(&self) -> PathBuf {
        self.inner.path.clone()
    }
    /// blake3 of the component's bytes.
    #[getter]
    fn blake3(&self) -> &str {
        &self.inner.digest
    }
    fn __repr__(&self) -> String {
        format!(
            "Plugin(name={}, version={}, kind={})",
            quote(&self.inner.info.name),
            quote(&self.inner.info.version),
            quote(self.inner.info.kind.as_str())
        )
    }
}

/// The runtime: loads plugins and runs jobs in a workspace. One per
/// workspace is enough; it is safe to share between threads.
#[pyclass(module = "labhost._labhost", frozen)]
pub struct Host {
    inner: labhost::Host,
    profile: Option<String>,
}

#[pymethods]
impl Host {
    /// `workspace`: a `Workspace` or a path (default: the default
    /// workspace). `profile`: a `[profiles.NAME]` of its `labhost.toml`.
    /// `compile_cache=False` compiles every plugin afresh.
    #[new]
    #[pyo3(signature = (workspace=None, *, profile=None, compile_cache=true))]
    fn new(
        py: Python<'_>,
        workspace: Option<Bound<'_, PyAny>>,
        profile: Option<String>,
        compile_cache: bool,
    ) -> PyResult<Self> {
        let ws = match workspace {
            Some(w) => match w.cast::<Workspace>() {
                Ok(w) => w.get().inner.clone(),
                Err(_) => Workspace::new(Some(w.extract::<PathBuf>()?))?.inner,
            },
            None => Workspace::new(None)?.inner,
        };
        // A bad labhost.toml or an unknown profile is an error now, not at
        // the first job.
        effective(&ws, profile.as_deref())?;
        let host = py
            .detach(move || {
                let cache = compile_cache.then(|| labhost::CompileCache::for_workspace(ws.root()));
                labhost::Host::with_cache(ws, cache)
            })
            .map_err(err(Kind::Io))?;
        Ok(Host {
            inner: host,
            profile,
        })
    }

    #[getter]
    fn workspace(&self) -> Workspace {
        Workspace {
            inner: self.inner.workspace().clone(),
        }
    }

    /// Load (compile or take from the cache, link, describe) the plugin at
    /// `path`, or a bare name in the settings' `paths.plugins` (`trainer`
    /// for `plugins/trainer.wasm`), as `labhost run NAME` finds it.
    fn load(&self, py: Python<'_>, path: PathBuf) -> PyResult<Plugin> {
        let path =
            effective(self.inner.workspace(), self.profile.as_deref())?.resolve_plugin(&path);
        if !path.is_file() {
            return Err(raise(
                Kind::NotFound,
                format!("no plugin file {}", path.display()),
            ));
        }
        let host = self.inner.clone();
        let inner = py
            .detach(move || host.load(&path))
            .map_err(err(Kind::Plugin))?;
        Ok(Plugin { inner })
    }

    /// Start a job of `plugin` (a `Plugin`, or a path to load) and return
    /// at once; nothing is started when an argument is refused.
    ///
    /// `datasets`/`models`: registry ids or names, mounted read-only;
    /// `dirs`: `HOST[::GUEST][:ro|:rw]`; `allow_http`: endpoint URLs;
    /// `secrets`: names of secrets the job may read; `env`: variables
    /// the guest sees; `limits`: `{"timeout": "10m", "memory": "512MiB"…}`
    /// over the workspace's; `resume`: `JOB[:CHECKPOINT]`.
    #[pyo3(signature = (plugin, config=None, *, experiment=None, datasets=None, models=None, dirs=None, allow_http=None, secrets=None, env=None, limits=None, resume=None, metadata=None, keep_work=false))]
    #[allow(clippy::too_many_arguments)]
    fn run(
        &self,
        py: Python<'_>,
        plugin: Bound<'_, PyAny>,
        config: Option<Bound<'_, PyDict>>,
        experiment: Option<String>,
        datasets: Option<Bound<'_, PyAny>>,
        models: Option<Bound<'_, PyAny>>,
        dirs: Option<Bound<'_, PyAny>>,
        allow_http: Option<Bound<'_, PyAny>>,
        secrets: Option<Bound<'_, PyAny>>,
        env: Option<Bound<'_, PyDict>>,
        limits: Option<Bound<'_, PyDict>>,
        resume: Option<String>,
        metadata: Option<Bound<'_, PyDict>>,
        keep_work: bool,
    ) -> PyResult<Job> {
        let plugin = match plugin.cast::<Plugin>() {
            Ok(p) => p.get().inner.clone(),
            Err(_) => self.load(py, plugin.extract::<PathBuf>()?)?.inner,
        };
        let bad = err(Kind::Invalid);
        let settings = effective(self.inner.workspace(), self.profile.as_deref())?;
        let mut spec = labhost::JobSpec::new(plugin);
        if let Some(e) = experiment {
            spec.experiment = e;
        }
        if let Some(c) = config {
            spec.config = object(&c, "config")?;
        }
        if let Some(m) = metadata {
            spec.metadata = object(&m, "metadata")?;
        }
        let g = &mut spec.sandbox.grants;
        g.datasets = strings(datasets.as_ref(), "datasets")?;
        g.models = strings(models.as_ref(), "models")?;
        for d in strings(dirs.as_ref(), "dirs")? {
            g.dirs.push(labhost::DirGrant::from_str(&d).map_err(&bad)?);
        }
        g.http = settings.http.clone();
        for url in strings(allow_http.as_ref(), "allow_http")? {
            g.http
                .push(labhost::HttpGrant::from_str(&url).map_err(&bad)?);
        }
        g.secrets = settings.secrets.clone();
        g.secrets.extend(strings(secrets.as_ref(), "secrets")?);
        if let Some(env) = env {
            for (k, v) in env.iter() {
                g.env.push((k.extract()?, v.str()?.to_string()));
            }
        }
        spec.sandbox.limits = settings.limits.clone();
        if let Some(l) = limits {
            // Python names (`max_stored`) or the file's (`max-stored`).
            let mut m = Map::new();
            for (k, v) in object(&l, "limits")? {
                m.insert(k.replace('_', "-"), v);
            }
            let over: labhost::LimitOverrides = serde_json::from_value(Value::Object(m))
                .map_err(|e| raise(Kind::Invalid, format!("limits: {e}")))?;
            over.apply(&mut spec.sandbox.limits);
        }
        spec.resume = resume.map(|r| match r.split_once(':') {
            Some((job, ckpt)) => labhost::ResumePoint::at(job, ckpt),
            None => labhost::ResumePoint::latest(r),
        });
        spec.keep_work = keep_work;
        let host = self.inner.clone();
        let handle = py
            .detach(move || {
                let _in_runtime = runtime::get().enter();
                host.start(spec)
            })
            .map_err(&bad)?;
        Ok(Job::started(self.inner.workspace().clone(), handle))
    }

    /// Start the pipeline file at `path` (its stages, fan-out, retries),
    /// executed by this process; `workers`: jobs at once (default: the
    /// file's, else the settings'). Nothing starts when the file is refused.
    #[pyo3(signature = (path, *, workers=None))]
    fn run_pipeline(&self, py: Python<'_>, path: PathBuf, workers: Option<usize>) -> PyResult<Run> {
        if !path.is_file() {
            return Err(raise(
                Kind::NotFound,
                format!("no pipeline file {}", path.display()),
            ));
        }
        let settings = effective(self.inner.workspace(), self.profile.as_deref())?;
        let host = self.inner.clone();
        let run = py
            .detach(move || {
                let _rt = runtime::get().enter();
                PipelineRun::create(&host, &path, &settings, workers)
            })
            .map_err(err(Kind::Invalid))?;
        Ok(Run::started(self.inner.workspace().clone(), run))
    }

    /// Go on with the run `id` (not running): what completed is kept, the
    /// rest runs again in this process.
    #[pyo3(signature = (id, *, workers=None))]
    fn resume_pipeline(&self, py: Python<'_>, id: String, workers: Option<usize>) -> PyResult<Run> {
        let ws = self.inner.workspace().clone();
        find_run(&ws, &id).map_err(err(Kind::NotFound))?;
        let host = self.inner.clone();
        let run = py
            .detach(move || {
                let _rt = runtime::get().enter();
                PipelineRun::resume(&host, &id, workers)
            })
            .map_err(err(Kind::Conflict))?;
        Ok(Run::started(ws, run))
    }

    fn __repr__(&self) -> String {
        format!(
            "Host(workspace={})",
            quote(&self.inner.workspace().root().display().to_string())
        )
    }
}

/// `s` as Python's `repr()` of a str shows it (`'name'`), for `__repr__`s.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// A dict argument as a JSON object.
fn object(d: &Bound<'_, PyDict>, what: &str) -> PyResult<Map<String, Value>> {
    match from_py(d.as_any(), what)? {
        Value::Object(m) => Ok(m),
        _ => Err(raise(Kind::Invalid, format!("{what} must be a dict"))),
    }
}

/// The workspace's settings (its `labhost.toml`, with `profile`).
fn effective(
    ws: &labhost::Workspace,
    profile: Option<&str>,
) -> PyResult<labhost::settings::Effective> {
    labhost::Settings::load(ws.root())
        .and_then(|s| s.effective(ws.root(), profile))
        .map_err(err(Kind::Invalid))
}
