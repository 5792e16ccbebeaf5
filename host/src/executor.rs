//! The executor seam: a job described by a serialisable [`JobRequest`]
//! (plugin path + blake3 pin, config, sandbox, resume point) and handed to
//! an [`Executor`], which runs it somewhere and reports how it ended. The
//! pipeline runner talks only to this trait; [`LocalExecutor`] runs jobs
//! on this process's [`Host`]. Another executor (a queue, a remote worker)
//! can run the same requests elsewhere: everything a job needs is in the
//! request, and what it produced is in the job record it returns.

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::plugin::Plugin;
use crate::sandbox::Sandbox;
use crate::store::{JobRecord, JobStatus, PipelineRef};
use crate::{Host, JobControl, JobHandle, JobSpec};

/// Where a job resumes: a job's checkpoint (`None`: its latest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResumePoint {
    /// The job id (or a unique prefix of it).
    pub job: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<String>,
}

impl ResumePoint {
    pub fn new(job: impl Into<String>, checkpoint: Option<String>) -> Self {
        ResumePoint {
            job: job.into(),
            checkpoint,
        }
    }
    /// The checkpoint named `checkpoint` of `job`.
    pub fn at(job: impl Into<String>, checkpoint: impl Into<String>) -> Self {
        Self::new(job, Some(checkpoint.into()))
    }
    /// The latest checkpoint of `job`.
    pub fn latest(job: impl Into<String>) -> Self {
        Self::new(job, None)
    }
}

/// Everything needed to run one job, by value: it can be written down and
/// sent to another process or machine. Build with [`JobRequest::new`] and
/// the `with_*` methods (fields may be added).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub struct JobRequest {
    /// The plugin's path (absolute, on the executor's machine).
    pub plugin: String,
    /// The blake3 the plugin file must have; an executor refuses another.
    pub blake3: String,
    pub experiment: String,
    /// Parameters (validated and completed with defaults when the job starts).
    #[serde(default)]
    pub config: Map<String, Value>,
    #[serde(default)]
    pub sandbox: Sandbox,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume: Option<ResumePoint>,
    /// Keep the job's `/work` directory after it ends.
    #[serde(default)]
    pub keep_work: bool,
    /// The pipeline run and stage instance it belongs to (recorded in the job).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<PipelineRef>,
    /// The job's metadata from the start (see [`JobSpec::metadata`]).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub metadata: Map<String, Value>,
}

impl JobRequest {
    /// A job of the plugin at `plugin` whose file has digest `blake3`, in
    /// experiment `default`, with no config, the default sandbox.
    pub fn new(plugin: impl Into<String>, blake3: impl Into<String>) -> Self {
        JobRequest {
            plugin: plugin.into(),
            blake3: blake3.into(),
            experiment: "default".into(),
            config: Map::new(),
            sandbox: Sandbox::default(),
            resume: None,
            keep_work: false,
            pipeline: None,
            metadata: Map::new(),
        }
    }
    /// The request of a job spec (its embedder-supplied secret values are
    /// not part of it: a job elsewhere takes them from its environment or
    /// the workspace's secrets file).
    pub fn from_spec(spec: &JobSpec) -> Self {
        Self::for_plugin(&spec.plugin)
            .with_experiment(spec.experiment.clone())
            .with_config(spec.config.clone())
            .with_sandbox(spec.sandbox.clone())
            .with_resume(spec.resume.clone())
            .with_keep_work(spec.keep_work)
            .with_pipeline(spec.pipeline.clone())
            .with_metadata(spec.metadata.clone())
    }
    /// A request for a loaded plugin (pinned to its digest).
    pub fn for_plugin(plugin: &Plugin) -> Self {
        Self::new(plugin.path.to_string_lossy(), plugin.digest.clone())
    }
    pub fn with_experiment(mut self, experiment: impl Into<String>) -> Self {
        self.experiment = experiment.into();
        self
    }
    pub fn with_config(mut self, config: Map<String, Value>) -> Self {
        self.config = config;
        self
    }
    pub fn with_sandbox(mut self, sandbox: Sandbox) -> Self {
        self.sandbox = sandbox;
        self
    }
    pub fn with_resume(mut self, resume: Option<ResumePoint>) -> Self {
        self.resume = resume;
        self
    }
    pub fn with_keep_work(mut self, keep_work: bool) -> Self {
        self.keep_work = keep_work;
        self
    }
    pub fn with_pipeline(mut self, pipeline: Option<PipelineRef>) -> Self {
        self.pipeline = pipeline;
        self
    }
    pub fn with_metadata(mut self, metadata: Map<String, Value>) -> Self {
        self.metadata = metadata;
        self
    }
}

/// A boxed, sendable future (what [`Executor`] methods return, so the
/// trait can be used as `dyn Executor`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Runs jobs described by [`JobRequest`]s. Jobs are named by the id
/// `submit` returns (the id of their job record).
pub trait Executor: Send + Sync {
    /// Start a job. An error means no job was created (a bad config, a
    /// missing input, a plugin that is not the pinned one...).
    fn submit(&self, request: JobRequest) -> BoxFuture<'_, anyhow::Result<String>>;
    /// Where the job is now.
    fn status<'a>(&'a self, job: &'a str) -> BoxFuture<'a, anyhow::Result<JobStatus>>;
    /// Wait for the end of the job; its final record.
    fn wait<'a>(&'a self, job: &'a str) -> BoxFuture<'a, anyhow::Result<JobRecord>>;
    /// Ask the job to stop (it ends CANCELLED, after its grace period at most).
    fn cancel<'a>(&'a self, job: &'a str) -> BoxFuture<'a, anyhow::Result<()>>;
    /// The kind recorded in the jobs it places (`ExecutorRef::kind`) when
    /// they run outside this process and outlive it (a resumed pipeline
    /// waits for such a job instead of starting another); `None`: its jobs
    /// end with the process.
    fn kind(&self) -> Option<&str> {
        None
    }
}

struct Running {
    control: Arc<JobControl>,
    handle: Option<JobHandle>,
}

/// Runs jobs on a [`Host`] in this process: loads each plugin by its path
/// once (cached by path and digest), refuses a plugin whose digest is not
/// the request's pin, and starts the job with [`Host::start`].
pub struct LocalExecutor {
    host: Host,
    plugins: Mutex<HashMap<(String, String), Arc<Plugin>>>,
    jobs: Mutex<HashMap<String, Running>>,
}

impl LocalExecutor {
    pub fn new(host: Host) -> Self {
        LocalExecutor {
            host,
            plugins: Mutex::default(),
            jobs: Mutex::default(),
        }
    }

    pub fn host(&self) -> &Host {
        &self.host
    }

    /// Load the plugin at `path` (compile + describe) and keep it for
    /// requests that pin its digest.
    pub fn load(&self, path: &Path) -> anyhow::Result<Arc<Plugin>> {
        let plugin = self.host.load(path)?;
        self.insert(path.to_string_lossy().into_owned(), plugin.clone());
        Ok(plugin)
    }

    fn insert(&self, path: String, plugin: Arc<Plugin>) {
        let key = (path, plugin.digest.clone());
        lock(&self.plugins).entry(key).or_insert(plugin);
    }

    /// The plugin at `path` with digest `blake3`: cached, or loaded now
    /// (and refused if the file's digest is another).
    pub fn plugin(&self, path: &str, blake3: &str) -> anyhow::Result<Arc<Plugin>> {
        let key = (path.to_owned(), blake3.to_owned());
        if let Some(p) = lock(&self.plugins).get(&key) {
            return Ok(p.clone());
        }
        let plugin = self.host.load(Path::new(path))?;
        if plugin.digest != blake3 {
            bail!(
                "plugin {path} is not the pinned one (blake3 {} → {})",
                short(blake3),
                short(&plugin.digest)
            );
        }
        self.insert(path.to_owned(), plugin.clone());
        Ok(plugin)
    }

    /// The [`JobSpec`] of a request (its plugin loaded and checked).
    pub fn spec(&self, request: JobRequest) -> anyhow::Result<JobSpec> {
        let plugin = self.plugin(&request.plugin, &request.blake3)?;
        let mut spec = JobSpec::new(plugin);
        spec.experiment = request.experiment;
        spec.config = request.config;
        spec.sandbox = request.sandbox;
        spec.resume = request.resume;
        spec.keep_work = request.keep_work;
        spec.pipeline = request.pipeline;
        spec.metadata = request.metadata;
        Ok(spec)
    }

    /// Start a request's job and return its handle (its events, its end)
    /// without keeping it: [`Executor::wait`] and `cancel` do not see it.
    pub fn start(&self, request: JobRequest) -> anyhow::Result<JobHandle> {
        self.host.start(self.spec(request)?)
    }

    fn submit_now(&self, request: JobRequest) -> anyhow::Result<String> {
        let handle = self.start(request)?;
        let id = handle.id.clone();
        lock(&self.jobs).insert(
            id.clone(),
            Running {
                control: handle.control(),
                handle: Some(handle),
            },
        );
        Ok(id)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn short(digest: &str) -> &str {
    &digest[..12.min(digest.len())]
}

impl Executor for LocalExecutor {
    fn submit(&self, request: JobRequest) -> BoxFuture<'_, anyhow::Result<String>> {
        // Host::start is synchronous (and needs the caller's runtime).
        let started = self.submit_now(request);
        Box::pin(async move { started })
    }

    fn status<'a>(&'a self, job: &'a str) -> BoxFuture<'a, anyhow::Result<JobStatus>> {
        Box::pin(async move { Ok(self.host.workspace().find_job(job)?.0.status) })
    }

    fn wait<'a>(&'a self, job: &'a str) -> BoxFuture<'a, anyhow::Result<JobRecord>> {
        Box::pin(async move {
            let handle = lock(&self.jobs).get_mut(job).and_then(|r| r.handle.take());
            match handle {
                Some(handle) => {
                    let result = handle.wait().await;
                    lock(&self.jobs).remove(job);
                    result
                }
                None => {
                    let (rec, _) = self.host.workspace().find_job(job)?;
                    if rec.status == JobStatus::Running {
                        bail!("job {job} is not one this executor can wait for");
                    }
                    Ok(rec)
                }
            }
        })
    }

    fn cancel<'a>(&'a self, job: &'a str) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let control = lock(&self.jobs).get(job).map(|r| r.control.clone());
            match control {
                Some(c) => c.cancel(),
                // A job of another process: through its cancel file.
                None => {
                    self.host
                        .workspace()
                        .request_cancel(job)
                        .with_context(|| format!("cannot cancel job {job}"))?;
                }
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A LocalExecutor runs a request for a real guest (built by
    /// scripts/build-guests.sh) and refuses one whose pin is wrong.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn local_executor_checks_the_pin_and_runs_the_job() {
        let wasm = Path::new(env!("CARGO_MANIFEST_DIR")).join("../guests/dist/rust/datagen.wasm");
        assert!(
            wasm.exists(),
            "{} is missing: run scripts/build-guests.sh",
            wasm.display()
        );
        let dir = tempfile::tempdir().unwrap();
        let host = Host::with_cache(crate::Workspace::open(dir.path()).unwrap(), None).unwrap();
        let exec = LocalExecutor::new(host);
        let path = wasm.to_string_lossy().into_owned();
        let err = exec
            .submit(JobRequest::new(path.clone(), "0".repeat(64)))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("is not the pinned one"), "{err}");
        let digest = blake3::hash(&std::fs::read(&wasm).unwrap())
            .to_hex()
            .to_string();
        let mut config = Map::new();
        config.insert("rows".into(), 20.into());
        let req = JobRequest::new(path, digest.clone())
            .with_experiment("exec")
            .with_config(config);
        // Through JSON and back, as another machine would receive it.
        let req: JobRequest = serde_json::from_str(&serde_json::to_string(&req).unwrap()).unwrap();
        let id = exec.submit(req).await.unwrap();
        let rec = exec.wait(&id).await.unwrap();
        assert_eq!(rec.status, JobStatus::Complete, "{:?}", rec.message);
        assert_eq!(
            (rec.experiment.as_str(), rec.plugin.blake3.as_str()),
            ("exec", digest.as_str())
        );
        assert_eq!(exec.status(&id).await.unwrap(), JobStatus::Complete);
        // Ended jobs are read back from the workspace.
        assert_eq!(exec.wait(&id).await.unwrap().id, id);
    }

    #[test]
    fn job_request_round_trips_through_json() {
        let mut sandbox = Sandbox::default();
        sandbox.grants.datasets = vec!["ds-1".into()];
        sandbox.grants.env = vec![("K".into(), "V".into())];
        let mut config = Map::new();
        config.insert("lr".into(), 0.5.into());
        let req = JobRequest::new("/p/trainer.wasm", "ab".repeat(32))
            .with_experiment("demo")
            .with_config(config)
            .with_sandbox(sandbox)
            .with_resume(Some(ResumePoint::new("job-1", Some("epoch-2".into()))))
            .with_keep_work(true)
            .with_metadata(
                serde_json::json!({"ticket": "T-1"})
                    .as_object()
                    .unwrap()
                    .clone(),
            )
            .with_pipeline(Some(PipelineRef {
                run: "run-1".into(),
                instance: "train#2".into(),
                attempt: 2,
            }));
        let text = serde_json::to_string(&req).unwrap();
        let back: JobRequest = serde_json::from_str(&text).unwrap();
        assert_eq!(serde_json::to_string(&back).unwrap(), text);
        assert_eq!(back.resume, req.resume);
        assert_eq!(back.pipeline, req.pipeline);
        assert_eq!(back.sandbox.grants.datasets, ["ds-1"]);
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["resume"]["job"], "job-1");
        assert_eq!(v["resume"]["checkpoint"], "epoch-2");
        assert_eq!(v["config"]["lr"], 0.5);
        assert_eq!(v["metadata"]["ticket"], "T-1");
        // Optional fields may be left out.
        let min: JobRequest =
            serde_json::from_str(r#"{"plugin":"/p.wasm","blake3":"x","experiment":"e"}"#).unwrap();
        assert_eq!(min.resume, None);
        assert!(!min.keep_work);
        assert!(min.config.is_empty());
        assert_eq!(
            min.sandbox.limits.timeout,
            Sandbox::default().limits.timeout
        );
    }
}
