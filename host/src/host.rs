//! [`Host`]: loads plugins ([`crate::loader`]) on its engine and linker
//! ([`crate::engine`]), starts jobs ([`crate::launch`] sets them up) and
//! runs each to its end: the guest raced against its interrupts, the
//! outcome classified ([`crate::outcome`]), the final record written.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::Utc;
use serde_json::{Map, Value};
use tokio::sync::broadcast;
use wasmtime::component::{Linker, ResourceTable};
use wasmtime::{Engine, Store, UpdateDeadline};
use wasmtime_wasi::WasiCtxBuilder;

use crate::cache::CompileCache;
use crate::engine::{self, root_cause, HostOptions, Pooling};
use crate::events::JobEvent;
use crate::executor::ResumePoint;
use crate::job::{Deadlines, Interrupt, JobControl, JobCtx};
use crate::launch::{self, Launch};
use crate::lifecycle::LockMode;
use crate::loader;
use crate::outcome::{classify, GuestEnd, Observed};
use crate::plugin::Entry;
use crate::plugin::Plugin;
use crate::sandbox::Sandbox;
use crate::secrets::Secrets;
use crate::state::{HostState, MemoryLimiter};
use crate::store::{JobRecord, PipelineRef, Workspace};
use crate::watcher::spawn_job_watcher;

/// What to run: a loaded plugin, its parameters, its sandbox.
#[derive(Clone)]
pub struct JobSpec {
    pub plugin: Arc<Plugin>,
    pub experiment: String,
    /// Parameters; validated and completed with defaults by [`Host::start`].
    pub config: Map<String, Value>,
    pub sandbox: Sandbox,
    /// Resume from a job's checkpoint.
    pub resume: Option<ResumePoint>,
    /// Keep the job's `/work` directory after the job ends.
    pub keep_work: bool,
    /// The pipeline run and stage instance starting it (recorded in the job).
    pub pipeline: Option<PipelineRef>,
    /// Secret values the embedder supplies; a secret the grants name that
    /// is not here comes from the environment, then the workspace secrets
    /// file (see [`crate::secrets`]).
    pub secrets: Secrets,
    /// The job's metadata from the start (e.g. the ids of the webhook that
    /// launched it); the plugin's `metadata` calls merge into it.
    pub metadata: Map<String, Value>,
    /// Run the job in the directory of this QUEUED job (written by an
    /// executor's submitter) instead of a new one.
    pub adopt: Option<Adopt>,
    /// For an app instance (a predictor): the queue it serves.
    pub(crate) serving: Option<Arc<crate::app::serving::Serving>>,
}

/// A QUEUED job to run in place (see [`crate::slurm`]).
#[derive(Debug, Clone)]
pub struct Adopt {
    pub id: String,
    /// Where the executor placed it (recorded in the job).
    pub executor: crate::store::ExecutorRef,
}

impl JobSpec {
    pub fn new(plugin: Arc<Plugin>) -> Self {
        JobSpec {
            plugin,
            experiment: "default".into(),
            config: Map::new(),
            sandbox: Sandbox::default(),
            resume: None,
            keep_work: false,
            pipeline: None,
            secrets: Secrets::default(),
            metadata: Map::new(),
            adopt: None,
            serving: None,
        }
    }
}

/// A started job.
pub struct JobHandle {
    pub id: String,
    pub experiment: String,
    events: broadcast::Sender<JobEvent>,
    first: Option<broadcast::Receiver<JobEvent>>,
    control: Arc<JobControl>,
    task: tokio::task::JoinHandle<anyhow::Result<JobRecord>>,
}

impl JobHandle {
    /// Events of the job. The first call gets every event from the start;
    /// later calls get events from now on.
    pub fn events(&mut self) -> broadcast::Receiver<JobEvent> {
        self.first.take().unwrap_or_else(|| self.events.subscribe())
    }
    /// Ask the job to stop (see [`JobControl::cancel`]).
    pub fn cancel(&self) {
        self.control.cancel()
    }
    pub fn control(&self) -> Arc<JobControl> {
        self.control.clone()
    }
    /// Wait for the end of the job; returns its final record.
    pub async fn wait(self) -> anyhow::Result<JobRecord> {
        self.task.await.context("job thread panicked")?
    }
}

struct Inner {
    engine: Engine,
    linker: Linker<HostState>,
    workspace: Workspace,
    cache: Option<CompileCache>,
    pooling: Option<Pooling>,
}

/// The labhost runtime: share one per process (it is cheap to clone).
#[derive(Clone)]
pub struct Host {
    inner: Arc<Inner>,
}

impl Host {
    /// Build the engine and linker for `workspace` and start the epoch
    /// ticker. Compiled plugins are cached in `<workspace>/.cache/compiled`.
    pub fn new(workspace: Workspace) -> anyhow::Result<Self> {
        let cache = CompileCache::for_workspace(workspace.root());
        Self::with_cache(workspace, Some(cache))
    }

    /// Like [`Host::new`] with another compile cache, or none.
    pub fn with_cache(workspace: Workspace, cache: Option<CompileCache>) -> anyhow::Result<Self> {
        Self::with_options(workspace, cache, HostOptions::default())
    }

    /// Like [`Host::with_cache`], with [`HostOptions`] (e.g. pooling).
    pub fn with_options(
        workspace: Workspace,
        cache: Option<CompileCache>,
        options: HostOptions,
    ) -> anyhow::Result<Self> {
        let (engine, linker) = engine::build(&options)?;
        Ok(Host {
            inner: Arc::new(Inner {
                engine,
                linker,
                workspace,
                cache,
                pooling: options.pooling,
            }),
        })
    }

    pub fn workspace(&self) -> &Workspace {
        &self.inner.workspace
    }

    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    pub fn cache(&self) -> Option<&CompileCache> {
        self.inner.cache.as_ref()
    }

    /// Compile, link and describe a plugin.
    pub fn load(&self, path: &Path) -> anyhow::Result<Arc<Plugin>> {
        loader::load(
            &self.inner.engine,
            &self.inner.linker,
            self.inner.cache.as_ref(),
            path,
        )
    }

    /// Instantiate `plugin` once in an empty sandbox (no grants, nothing
    /// called) and drop it; returns the time the instantiation took. A
    /// health check, and what the benchmark times. Runs on its own thread.
    pub fn instantiate_once(&self, plugin: &Plugin) -> anyhow::Result<Duration> {
        loader::instantiate_once(&self.inner.engine, plugin)
    }

    /// Validate the spec, create the job record and start the job on a
    /// worker thread. Errors here (bad config, unknown dataset...) create
    /// no job. Must be called within a tokio runtime.
    pub fn start(&self, spec: JobSpec) -> anyhow::Result<JobHandle> {
        // Held until the record naming the job's grants is written, so a
        // removal sees the job or the job sees the removal (see `lifecycle`).
        let lifecycle = crate::lifecycle::lock(&self.inner.workspace, LockMode::Shared)
            .context("cannot take the workspace's lifecycle lock")?;
        let Launch {
            id,
            mut job,
            wasi,
            lock,
            fd_lease,
            events,
            first,
            control,
            asked_handles,
        } = launch::prepare(&self.inner.workspace, self.inner.pooling.as_ref(), &spec)?;
        let plugin = spec.plugin.clone();
        job.snapshot(true).map_err(|e| anyhow::anyhow!("{e}"))?;
        drop(lifecycle);
        let _ = events.send(JobEvent::Started {
            job_id: id.clone(),
            experiment: spec.experiment.clone(),
            plugin: plugin.info.name.clone(),
        });

        spawn_job_watcher(
            job.paths.cancel_request(),
            job.paths.work(),
            job.record.sandbox.limits.scratch_bytes,
            control.clone(),
            job.log.clone(),
        );
        let host = self.clone();
        let keep_work = spec.keep_work;
        let serving = spec.serving.clone();
        let handles = job.record.sandbox.limits.handles;
        if handles < asked_handles {
            job.host_log(&format!(
                "handle limit lowered from {asked_handles} to {handles}: this process's descriptors are shared with its other jobs"
            ));
        }
        let task = tokio::task::spawn_blocking(move || {
            let record = host.execute(&plugin, job, wasi, keep_work, serving);
            drop(lock);
            drop(fd_lease);
            record
        });
        Ok(JobHandle {
            id,
            experiment: spec.experiment,
            events,
            first: Some(first),
            control,
            task,
        })
    }

    /// The spec a recorded job ran with: the same plugin (which must still
    /// have the recorded digest), config, experiment, grants (datasets and
    /// models by the exact ids it was given), limits and resume point.
    pub fn spec_from_record(&self, rec: &JobRecord) -> anyhow::Result<JobSpec> {
        let plugin = self.load(Path::new(&rec.plugin.path))?;
        if plugin.digest != rec.plugin.blake3 {
            bail!(
                "plugin {} changed since job {} ran (blake3 {} → {})",
                rec.plugin.path,
                rec.id,
                &rec.plugin.blake3[..12.min(rec.plugin.blake3.len())],
                &plugin.digest[..12]
            );
        }
        let mut spec = JobSpec::new(plugin);
        spec.experiment = rec.experiment.clone();
        spec.config = match &rec.config {
            Value::Object(m) => m.clone(),
            _ => Map::new(),
        };
        spec.sandbox = rec.sandbox.clone();
        spec.resume = rec
            .resume
            .as_ref()
            .map(|r| ResumePoint::new(r.job_id.clone(), Some(r.checkpoint.clone())));
        Ok(spec)
    }

    /// Start a job and wait for its end.
    pub async fn run(&self, spec: JobSpec) -> anyhow::Result<JobRecord> {
        self.start(spec)?.wait().await
    }

    /// Run the guest to the end and write the final record. Runs on a
    /// blocking-pool thread (lab calls are sync and may copy large files);
    /// the guest runs on wasmtime's async path, raced against the job's
    /// interrupt, so a guest blocked in a WASI call is stopped too.
    fn execute(
        &self,
        plugin: &Plugin,
        job: JobCtx,
        mut wasi: WasiCtxBuilder,
        keep_work: bool,
        serving: Option<Arc<crate::app::serving::Serving>>,
    ) -> anyhow::Result<JobRecord> {
        let limits = job.record.sandbox.limits.clone();
        let control = job.control.clone();
        control.start_clock(Deadlines::new(Instant::now(), limits.timeout, limits.grace));
        let state = HostState {
            wasi: wasi.build(),
            table: handle_table(limits.handles),
            limiter: MemoryLimiter::new(limits.memory_bytes),
            job: Some(job),
        };
        let mut store = Store::new(&self.inner.engine, state);
        store.limiter(|s| &mut s.limiter);
        // A guest that computes is stopped by the epoch callback...
        // (An app instance's request past its timeout, the same way.)
        let ctl = control.clone();
        let overdue = serving.clone();
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            let now = Instant::now();
            if let Some(s) = overdue.as_ref().filter(|s| s.overdue(now)) {
                wasmtime::bail!("{}", s.timeout_text());
            }
            match ctl.interrupt_due(now) {
                Some(i) => wasmtime::bail!("{}", trap_text(i)),
                None => Ok(UpdateDeadline::Continue(1)),
            }
        });
        // ...and one waiting in a WASI call by dropping the call.
        let pre = plugin.pre.clone();
        let result = tokio::runtime::Handle::current().block_on(async {
            let run = async {
                match (&pre, &serving) {
                    (Entry::Plugin(pre), _) => {
                        let instance = pre
                            .instantiate_async(&mut store)
                            .await
                            .map_err(|e| (true, e))?;
                        instance.call_run(&mut store).await.map_err(|e| (false, e))
                    }
                    (Entry::Predictor(pre), Some(serving)) => {
                        let instance = pre
                            .instantiate_async(&mut store)
                            .await
                            .map_err(|e| (true, e))?;
                        crate::app::serving::serve(&instance, &mut store, serving)
                            .await
                            .map_err(|e| (false, e))
                    }
                    (Entry::Predictor(_), None) => unreachable!("refused by launch::prepare"),
                }
            };
            tokio::select! {
                r = run => r,
                i = control.interrupted() => Err((false, wasmtime::Error::msg(trap_text(i)))),
            }
        });

        let state = store.data_mut();
        let refused = state.limiter.refused;
        let mut job = state.job.take().expect("job context present");
        let guest = match result {
            Ok(r) => GuestEnd::Returned(r),
            Err((at_start, e)) => GuestEnd::Trapped {
                at_start,
                cause: root_cause(&e),
                exit: e.downcast_ref::<wasmtime_wasi::I32Exit>().map(|x| x.0),
            },
        };
        let outcome = classify(Observed {
            ended_by_guest: job.outcome.clone(),
            guest,
            interrupt: control.fired(),
            memory_refused: refused.map(|r| r as u64),
            abort_reason: control.abort_reason(),
            cancel_requested: control.cancel_requested_at().is_some(),
            limits: &limits,
        });
        drop(store); // closes every handle the guest held
                     // A plugin's error text may quote a secret.
        let (status, message) = (outcome.status, job.redact(outcome.message));
        job.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .finish_stdio();
        for note in &outcome.notes {
            job.host_log(note);
        }
        if !keep_work {
            if let Err(e) = job.ws.discard_tree(&job.paths.work()) {
                job.host_log(&format!(
                    "could not remove the job's /work: {e}; the next labhost start removes it"
                ));
            }
        }
        job.host_log(&format!("job ended {status}: {message}"));
        job.record.status = status;
        job.record.message = Some(message.clone());
        job.record.failure = outcome.failure;
        job.record.ended_at = Some(Utc::now());
        control.mark_ended();
        let _ = std::fs::remove_file(job.paths.cancel_request());
        job.snapshot(true).map_err(|e| anyhow::anyhow!("{e}"))?;
        if let Ok(dir) = std::fs::File::open(&job.paths.dir) {
            let _ = dir.sync_all();
        }
        job.paths.mark_ended();
        job.emit(JobEvent::Ended { status, message });
        Ok(job.record)
    }
}

/// The trap an interrupt raises in the guest (its record message comes
/// from [`crate::outcome::interrupt_reason`]).
fn trap_text(i: Interrupt) -> &'static str {
    match i {
        Interrupt::Timeout => "time limit reached",
        Interrupt::Aborted => "aborted by the host",
        Interrupt::Cancelled => "cancelled",
    }
}

fn handle_table(max: u64) -> ResourceTable {
    let mut table = ResourceTable::new();
    table.set_max_capacity(usize::try_from(max).unwrap_or(usize::MAX));
    table
}
