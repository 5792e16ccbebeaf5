//! [`Host`]: the engine, the linker and the job runner.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::Utc;
use serde_json::{Map, Value};
use tokio::sync::broadcast;
use wasmtime::component::{types::ComponentItem, Component, HasSelf, Linker, ResourceTable};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, UpdateDeadline,
};
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use crate::bindings::{Plugin as PluginBindings, PluginPre};
use crate::cache::{CacheOutcome, CompileCache};
use crate::events::{JobEvent, LogSource};
use crate::job::{GrantedEntry, JobControl, JobCtx, ResumeInfo};
use crate::joblog::{GuestStdio, JobLog, SharedLog};
use crate::mounts::Mount;
use crate::plugin::{Plugin, PluginInfo};
use crate::sandbox::{human_bytes, Sandbox};
use crate::state::{HostState, Interrupt, MemoryLimiter};
use crate::store::{
    FailureKind, JobRecord, JobStatus, PipelineRef, PluginRef, Registry, ResumeRef, Workspace,
    SCHEMA,
};

/// How often the epoch ticks; the granularity of timeouts and cancellation.
const EPOCH_TICK: Duration = Duration::from_millis(10);
/// Time and memory allowed to `describe()`.
const DESCRIBE_TIMEOUT: Duration = Duration::from_secs(10);
const DESCRIBE_MEMORY: u64 = 256 << 20;
/// Events buffered per subscriber before a slow one starts missing some.
const EVENT_BUFFER: usize = 4096;

/// What to run: a loaded plugin, its parameters, its sandbox.
#[derive(Clone)]
pub struct JobSpec {
    pub plugin: Arc<Plugin>,
    pub experiment: String,
    /// Parameters; validated and completed with defaults by [`Host::start`].
    pub config: Map<String, Value>,
    pub sandbox: Sandbox,
    /// Resume from a job's checkpoint (`None`: its latest).
    pub resume: Option<(String, Option<String>)>,
    /// Keep the job's `/work` directory after the job ends.
    pub keep_work: bool,
    /// The pipeline run and stage instance starting it (recorded in the job).
    pub pipeline: Option<PipelineRef>,
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

/// How a [`Host`] is built. `HostOptions::default()` is what [`Host::new`]
/// uses: instances are allocated on demand.
#[derive(Debug, Clone, Default)]
pub struct HostOptions {
    /// Pre-allocate instance slots (wasmtime's pooling allocator): faster
    /// instantiation when many jobs run, at the cost of a fixed virtual
    /// memory reservation. `None`: allocate per instance.
    pub pooling: Option<Pooling>,
}

/// Sizing of the pooling allocator. Each linear-memory slot reserves
/// virtual memory (4 GiB + guard on 64-bit hosts, not resident memory), so
/// the pool is sized by the number of instances alive at once.
#[derive(Debug, Clone)]
pub struct Pooling {
    /// Plugin instances alive at once: concurrent jobs, plus one per
    /// `Host::load` in progress (describe). More fail to start with an error
    /// naming the limit.
    pub instances: u32,
    /// Largest linear memory a slot holds. A job whose memory limit is
    /// larger is refused at start (run it on a host without pooling).
    pub max_memory: u64,
}

impl Default for Pooling {
    fn default() -> Self {
        Pooling {
            instances: 300,
            max_memory: crate::sandbox::Limits::default().memory_bytes,
        }
    }
}

/// Per component (Python and JS components hold several core instances,
/// memories and tables).
const POOL_CORE_INSTANCES_PER_COMPONENT: u32 = 32;
const POOL_MEMORIES_PER_COMPONENT: u32 = 4;
const POOL_TABLES_PER_COMPONENT: u32 = 8;
const POOL_TABLE_ELEMENTS: usize = 1 << 17;

impl Pooling {
    fn config(&self) -> PoolingAllocationConfig {
        let n = self.instances.max(1);
        let mut p = PoolingAllocationConfig::default();
        p.total_component_instances(n)
            .total_core_instances(n.saturating_mul(POOL_CORE_INSTANCES_PER_COMPONENT))
            .total_memories(n.saturating_mul(POOL_MEMORIES_PER_COMPONENT))
            .total_tables(n.saturating_mul(POOL_TABLES_PER_COMPONENT))
            .max_memories_per_component(POOL_MEMORIES_PER_COMPONENT)
            .max_tables_per_component(POOL_TABLES_PER_COMPONENT)
            .max_core_instances_per_component(POOL_CORE_INSTANCES_PER_COMPONENT)
            .max_memory_size(usize::try_from(self.max_memory).unwrap_or(usize::MAX))
            .table_elements(POOL_TABLE_ELEMENTS);
        p
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
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        if let Some(p) = &options.pooling {
            anyhow::ensure!(p.instances > 0, "pooling: instances must be at least 1");
            config.allocation_strategy(InstanceAllocationStrategy::Pooling(p.config()));
        }
        let engine = Engine::new(&config)
            .map_err(|e| anyhow::anyhow!("cannot create the wasm engine: {}", root_cause(&e)))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        PluginBindings::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)?;
        spawn_epoch_ticker(&engine);
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
        let shown = path.display();
        let bytes =
            std::fs::read(path).map_err(|e| anyhow::anyhow!("cannot read plugin {shown}: {e}"))?;
        let digest = blake3::hash(&bytes).to_hex().to_string();
        if wasmparser_is_core_module(&bytes) {
            bail!("{shown} is a core WebAssembly module, not a component (build for wasm32-wasip2 or wrap it with `wasm-tools component new`)");
        }
        let compiled = match &self.inner.cache {
            Some(cache) => cache.load(&self.inner.engine, &bytes, &digest),
            None => Component::new(&self.inner.engine, &bytes).map(|c| (c, CacheOutcome::Disabled)),
        };
        let (component, cache_outcome) = compiled.map_err(|e| {
            anyhow::anyhow!(
                "{shown} is not a valid WebAssembly component: {}",
                root_cause(&e)
            )
        })?;
        let ty = component.component_type();
        let imports: Vec<String> = ty
            .imports(&self.inner.engine)
            .filter(|(_, item)| matches!(item.ty, ComponentItem::ComponentInstance(_)))
            .map(|(name, _)| name.to_owned())
            .collect();
        let pre = self
            .inner
            .linker
            .instantiate_pre(&component)
            .map_err(|e| anyhow::anyhow!("{shown} cannot be linked: {}", root_cause(&e)))?;
        let pre = PluginPre::new(pre).map_err(|e| {
            anyhow::anyhow!(
                "{shown} is not a labhost plugin (world lab:api/plugin@0.1.0): {}",
                root_cause(&e)
            )
        })?;
        let info = self
            .describe(&pre)
            .map_err(|e| anyhow::anyhow!("{shown}: {e}"))?;
        Ok(Arc::new(Plugin {
            path: path.to_owned(),
            digest,
            info,
            imports,
            pre,
            component,
            cache: cache_outcome,
        }))
    }

    /// Instantiate `plugin` once in an empty sandbox (no grants, nothing
    /// called) and drop it; returns the time the instantiation took. A
    /// health check, and what the benchmark times.
    pub fn instantiate_once(&self, plugin: &Plugin) -> anyhow::Result<Duration> {
        let mut store = self.empty_store();
        let t = Instant::now();
        plugin
            .pre
            .instantiate(&mut store)
            .map_err(|e| anyhow::anyhow!("instantiation failed: {}", root_cause(&e)))?;
        let took = t.elapsed();
        drop(store); // frees the instance (and its pool slot)
        Ok(took)
    }

    /// A store with no grants, no job and the describe() limits (memory,
    /// and [`DESCRIBE_TIMEOUT`] from now).
    fn empty_store(&self) -> Store<HostState> {
        let wasi = WasiCtxBuilder::new().build();
        let state = HostState {
            wasi,
            table: Default::default(),
            limiter: MemoryLimiter {
                memory_bytes: DESCRIBE_MEMORY,
                refused: None,
            },
            job: None,
            interrupt: None,
        };
        let mut store = Store::new(&self.inner.engine, state);
        store.limiter(|s| &mut s.limiter);
        let deadline = Instant::now() + DESCRIBE_TIMEOUT;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if Instant::now() >= deadline {
                wasmtime::bail!(
                    "describe() did not return within {}s",
                    DESCRIBE_TIMEOUT.as_secs()
                );
            }
            Ok(UpdateDeadline::Continue(1))
        });
        store
    }

    /// Call `describe()` in a sandbox with no grants.
    fn describe(&self, pre: &PluginPre<HostState>) -> anyhow::Result<PluginInfo> {
        let mut store = self.empty_store();
        let instance = pre
            .instantiate(&mut store)
            .map_err(|e| anyhow::anyhow!("instantiation failed: {}", root_cause(&e)))?;
        let info = instance
            .call_describe(&mut store)
            .map_err(|e| anyhow::anyhow!("describe() failed: {}", root_cause(&e)))?;
        PluginInfo::from_wit(info)
    }

    /// Validate the spec, create the job record and start the job on a
    /// worker thread. Errors here (bad config, unknown dataset...) create
    /// no job. Must be called within a tokio runtime.
    pub fn start(&self, spec: JobSpec) -> anyhow::Result<JobHandle> {
        let plugin = spec.plugin.clone();
        let config = crate::config::resolve(&plugin.info, &spec.config)?;
        if let Some(p) = &self.inner.pooling {
            let asked = spec.sandbox.limits.memory_bytes;
            if asked > p.max_memory {
                bail!(
                    "memory limit {} is larger than this host's pooled memory slots of {} (use a smaller --memory, or a host without pooling)",
                    human_bytes(asked),
                    human_bytes(p.max_memory)
                );
            }
        }
        for g in &spec.sandbox.grants.dirs {
            g.check()?;
            if !g.host.is_dir() {
                bail!("--dir {}: not a directory", g.host.display());
            }
        }
        let ws = self.inner.workspace.clone();
        let resolve_all = |reg: Registry, refs: &[String]| -> anyhow::Result<Vec<GrantedEntry>> {
            let mut out: Vec<GrantedEntry> = Vec::new();
            for r in refs {
                let id = ws.resolve(reg, r)?;
                let name = match reg {
                    Registry::Models => ws
                        .models()?
                        .into_iter()
                        .find(|m| m.id == id)
                        .map(|m| m.name),
                    Registry::Datasets => ws
                        .datasets()?
                        .into_iter()
                        .find(|d| d.id == id)
                        .map(|d| d.name),
                }
                .unwrap_or_default();
                if !out.iter().any(|e| e.id == id) {
                    out.push(GrantedEntry { id, name });
                }
            }
            Ok(out)
        };
        let models = resolve_all(Registry::Models, &spec.sandbox.grants.models)?;
        let datasets = resolve_all(Registry::Datasets, &spec.sandbox.grants.datasets)?;
        let resume = match &spec.resume {
            None => None,
            Some((job, ckpt)) => {
                let (rec, paths) = ws.find_job(job)?;
                let chosen = match ckpt {
                    Some(name) => rec
                        .checkpoints
                        .iter()
                        .find(|c| &c.name == name)
                        .with_context(|| format!("job {} has no checkpoint `{name}`", rec.id))?,
                    None => rec.checkpoints.last().with_context(|| {
                        format!("job {} saved no checkpoint to resume from", rec.id)
                    })?,
                };
                Some((rec.id.clone(), chosen.name.clone(), paths.checkpoints()))
            }
        };

        let (id, paths, lock) = ws.create_job_dir(&spec.experiment)?;
        let (events, first) = broadcast::channel(EVENT_BUFFER);
        let control = Arc::new(JobControl::default());
        let mut sandbox = spec.sandbox.clone();
        sandbox.grants.models = models.iter().map(|m| m.id.clone()).collect();
        sandbox.grants.datasets = datasets.iter().map(|d| d.id.clone()).collect();
        let record = JobRecord {
            schema: SCHEMA,
            id: id.clone(),
            experiment: spec.experiment.clone(),
            status: JobStatus::Running,
            message: None,
            failure: None,
            pipeline: spec.pipeline.clone(),
            plugin: PluginRef {
                path: plugin.path.display().to_string(),
                blake3: plugin.digest.clone(),
                name: plugin.info.name.clone(),
                version: plugin.info.version.clone(),
                kind: plugin.info.kind.as_str().into(),
            },
            config: Value::Object(config),
            sandbox,
            resume: resume.as_ref().map(|(j, c, _)| ResumeRef {
                job_id: j.clone(),
                checkpoint: c.clone(),
            }),
            created_at: Utc::now(),
            started_at: Some(Utc::now()),
            ended_at: None,
            progress: 0.0,
            stage: None,
            scores: Default::default(),
            artifacts: vec![],
            checkpoints: vec![],
            models: vec![],
            datasets: vec![],
            evals: vec![],
            log_bytes: 0,
            log_truncated: false,
            host_pid: std::process::id(),
            host_version: env!("CARGO_PKG_VERSION").into(),
        };

        let setup = || -> anyhow::Result<(JobCtx, WasiCtxBuilder)> {
            let log = JobLog::create(
                &paths.log(),
                record.sandbox.limits.log_bytes,
                events.clone(),
            )?;
            let mut wasi = WasiCtxBuilder::new();
            wasi.stdout(GuestStdio::new(log.clone(), LogSource::Stdout));
            wasi.stderr(GuestStdio::new(log.clone(), LogSource::Stderr));
            wasi.envs(&record.sandbox.grants.env);
            wasi.allow_tcp(false)
                .allow_udp(false)
                .allow_ip_name_lookup(false);
            wasi.socket_addr_check(|_, _| Box::pin(async { false }));
            let mut mounts = vec![Mount::new("/work", &paths.work(), true)?];
            for m in &models {
                mounts.push(Mount::new(
                    format!("/models/{}", m.id),
                    &ws.registry_dir(Registry::Models).join(&m.id).join("files"),
                    false,
                )?);
            }
            for d in &datasets {
                mounts.push(Mount::new(
                    format!("/datasets/{}", d.id),
                    &ws.registry_dir(Registry::Datasets)
                        .join(&d.id)
                        .join("files"),
                    false,
                )?);
            }
            let mut resume_info = None;
            if let Some((job, name, dir)) = &resume {
                mounts.push(Mount::new("/resume", dir, false)?);
                resume_info = Some(ResumeInfo {
                    job_id: job.clone(),
                    name: name.clone(),
                    guest_path: format!("/resume/{name}"),
                });
            }
            for g in &record.sandbox.grants.dirs {
                mounts.push(Mount::new(
                    g.guest.trim_end_matches('/'),
                    &g.host,
                    g.writable,
                )?);
            }
            for m in &mounts {
                let perms = if m.writable {
                    FsPerms::ReadWrite
                } else {
                    FsPerms::ReadOnly
                };
                wasi.preopened_dir(&m.host, &m.guest, perms)?;
            }
            let job = JobCtx::new(
                ws.clone(),
                paths.clone(),
                record.clone(),
                mounts,
                models.clone(),
                datasets.clone(),
                resume_info,
                log,
                events.clone(),
                control.clone(),
            )?;
            Ok((job, wasi))
        };
        let (mut job, wasi) = match setup() {
            Ok(v) => v,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&paths.dir);
                return Err(e);
            }
        };
        job.snapshot(true).map_err(|e| anyhow::anyhow!("{e}"))?;
        let _ = events.send(JobEvent::Started {
            job_id: id.clone(),
            experiment: spec.experiment.clone(),
            plugin: plugin.info.name.clone(),
        });

        spawn_job_watcher(
            paths.cancel_request(),
            paths.work(),
            record.sandbox.limits.scratch_bytes,
            control.clone(),
            job.log.clone(),
        );
        let host = self.clone();
        let keep_work = spec.keep_work;
        let task = tokio::task::spawn_blocking(move || {
            let record = host.execute(&plugin, job, wasi, keep_work);
            drop(lock);
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
            .map(|r| (r.job_id.clone(), Some(r.checkpoint.clone())));
        Ok(spec)
    }

    /// Start a job and wait for its end.
    pub async fn run(&self, spec: JobSpec) -> anyhow::Result<JobRecord> {
        self.start(spec)?.wait().await
    }

    /// Run the guest to the end and write the final record.
    fn execute(
        &self,
        plugin: &Plugin,
        job: JobCtx,
        mut wasi: WasiCtxBuilder,
        keep_work: bool,
    ) -> anyhow::Result<JobRecord> {
        let limits = job.record.sandbox.limits.clone();
        let control = job.control.clone();
        let state = HostState {
            wasi: wasi.build(),
            table: handle_table(limits.handles),
            limiter: MemoryLimiter {
                memory_bytes: limits.memory_bytes,
                refused: None,
            },
            job: Some(job),
            interrupt: None,
        };
        let mut store = Store::new(&self.inner.engine, state);
        store.limiter(|s| &mut s.limiter);
        let started = Instant::now();
        let deadline = started + limits.timeout;
        let soft_deadline = deadline.checked_sub(limits.grace).unwrap_or(started);
        let grace = limits.grace;
        let ctl = control.clone();
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |mut ctx| {
            let now = Instant::now();
            if now >= deadline {
                ctx.data_mut().interrupt = Some(Interrupt::Timeout);
                wasmtime::bail!("time limit reached");
            }
            if now >= soft_deadline {
                ctl.request_stop();
            }
            if ctl.is_aborted() {
                ctx.data_mut().interrupt = Some(Interrupt::Aborted);
                wasmtime::bail!("aborted by the host");
            }
            if ctl
                .cancel_requested_at()
                .is_some_and(|at| now >= at + grace)
            {
                ctx.data_mut().interrupt = Some(Interrupt::Cancelled);
                wasmtime::bail!("cancelled");
            }
            Ok(UpdateDeadline::Continue(1))
        });

        let result = plugin
            .pre
            .instantiate(&mut store)
            .map_err(|e| (true, e))
            .and_then(|inst| inst.call_run(&mut store).map_err(|e| (false, e)));

        let state = store.data_mut();
        let interrupt = state.interrupt;
        let refused = state.limiter.refused;
        let mut job = state.job.take().expect("job context present");
        let (status, message, failure) = match (job.outcome.clone(), result) {
            (Some((status, msg)), Ok(Ok(()))) => (status, msg, Some(FailureKind::PluginError)),
            (Some((status, msg)), Ok(Err(err))) => {
                job.host_log(&format!("plugin returned an error after ending the job: {err}"));
                (status, msg, Some(FailureKind::PluginError))
            }
            (Some((status, msg)), Err((_, e))) => {
                job.host_log(&format!(
                    "plugin trapped after ending the job: {}",
                    root_cause(&e)
                ));
                (status, msg, Some(FailureKind::PluginError))
            }
            // Runtimes that turn a refused memory growth into an exception
            // (SpiderMonkey: "out of memory") may return it as an error.
            (None, Ok(Err(msg))) if refused.is_some() => (
                JobStatus::Failed,
                format!(
                    "memory limit of {} exceeded (the plugin asked for {}; it returned: {msg})",
                    human_bytes(limits.memory_bytes),
                    human_bytes(refused.unwrap_or_default() as u64)
                ),
                Some(FailureKind::ResourceLimit),
            ),
            (None, Ok(Err(msg))) => (
                JobStatus::Failed,
                format!("plugin returned an error: {msg}"),
                Some(FailureKind::PluginError),
            ),
            (None, Ok(Ok(()))) => (
                JobStatus::Failed,
                "plugin returned without calling finish() or fail()".into(),
                Some(FailureKind::Crash),
            ),
            (None, Err((at_start, e))) => match (interrupt, refused) {
                (Some(Interrupt::Timeout), _) => (
                    JobStatus::Failed,
                    format!("time limit of {} exceeded", fmt_duration(limits.timeout)),
                    Some(FailureKind::Timeout),
                ),
                (Some(Interrupt::Aborted), _) => (
                    JobStatus::Failed,
                    control.abort_reason().unwrap_or_else(|| "stopped by the host".into()),
                    Some(FailureKind::ResourceLimit),
                ),
                (Some(Interrupt::Cancelled), _) => (
                    JobStatus::Cancelled,
                    format!(
                        "cancelled; the plugin did not stop within the {} grace period",
                        fmt_duration(limits.grace)
                    ),
                    Some(FailureKind::PluginError),
                ),
                (None, Some(asked)) => (
                    JobStatus::Failed,
                    format!(
                        "memory limit of {} exceeded (the plugin asked for {})",
                        human_bytes(limits.memory_bytes),
                        human_bytes(asked as u64)
                    ),
                    Some(FailureKind::ResourceLimit),
                ),
                (None, None) if root_cause(&e).contains("resource table has no free keys") => (
                    JobStatus::Failed,
                    format!(
                        "handle limit of {} live handles (open files, streams, pollables) exceeded",
                        limits.handles
                    ),
                    Some(FailureKind::ResourceLimit),
                ),
                (None, None) if e.downcast_ref::<wasmtime_wasi::I32Exit>().is_some() => (
                    JobStatus::Failed,
                    format!(
                        "plugin exited (status {}) without calling finish() or fail()",
                        e.downcast_ref::<wasmtime_wasi::I32Exit>().map_or(0, |x| x.0)
                    ),
                    Some(FailureKind::Crash),
                ),
                (None, None) if root_cause(&e).ends_with("out of bounds memory access") => (
                    JobStatus::Failed,
                    format!(
                        "plugin crashed: {} (often a stack overflow: the guest's stack lives in its linear memory)",
                        root_cause(&e)
                    ),
                    Some(FailureKind::Crash),
                ),
                (None, None) if at_start => (
                    JobStatus::Failed,
                    format!("plugin failed to start: {}", root_cause(&e)),
                    Some(FailureKind::Crash),
                ),
                (None, None) => (
                    JobStatus::Failed,
                    format!("plugin crashed: {}", root_cause(&e)),
                    Some(FailureKind::Crash),
                ),
            },
        };
        // A cancel the plugin honoured by returning (or failing) is a cancel.
        let (status, message) = match (control.cancel_requested_at(), status) {
            (Some(_), JobStatus::Failed) if interrupt.is_none() => {
                (JobStatus::Cancelled, format!("cancelled: {message}"))
            }
            (_, status) => (status, message),
        };
        let failure = failure.filter(|_| status == JobStatus::Failed);
        job.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .finish_stdio();
        job.host_log(&format!("job ended {status}: {message}"));
        job.record.status = status;
        job.record.message = Some(message.clone());
        job.record.failure = failure;
        job.record.ended_at = Some(Utc::now());
        if !keep_work {
            let _ = std::fs::remove_dir_all(job.paths.work());
        }
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

fn handle_table(max: u64) -> ResourceTable {
    let mut table = ResourceTable::new();
    table.set_max_capacity(usize::try_from(max).unwrap_or(usize::MAX));
    table
}

/// How often a running job looks for a cancel request from another process.
const CANCEL_POLL: Duration = Duration::from_millis(100);

/// How often the scratch directory's size is measured.
const SCRATCH_POLL_EVERY: u32 = 10; // × CANCEL_POLL

/// Watch a running job from outside the guest: turn a `.cancel` file
/// (written by `labhost cancel`) into a cancel, end the job when its
/// `/work` scratch directory grows over the limit, and flush the buffered
/// log on a short timer (a guest that logs and then computes for a long time
/// without other lab calls is still seen by `labhost logs -f`).
fn spawn_job_watcher(
    request: PathBuf,
    work: PathBuf,
    scratch_limit: u64,
    control: Arc<JobControl>,
    log: SharedLog,
) {
    let spawned = std::thread::Builder::new()
        .name("labhost-job-watch".into())
        .spawn(move || {
            let mut ticks = 0u32;
            while !control.has_ended() {
                log.lock().unwrap_or_else(|e| e.into_inner()).flush();
                if control.cancel_requested_at().is_none() && request.exists() {
                    control.cancel();
                }
                ticks += 1;
                if ticks.is_multiple_of(SCRATCH_POLL_EVERY) {
                    let used = dir_size(&work);
                    if used > scratch_limit {
                        control.abort(format!(
                            "scratch limit of {} exceeded (/work holds {})",
                            human_bytes(scratch_limit),
                            human_bytes(used)
                        ));
                    }
                }
                std::thread::sleep(CANCEL_POLL);
            }
        });
    // Without the watcher only in-process cancels work; not worth failing the job.
    drop(spawned);
}

/// Bytes of the files under `dir` (symlinks not followed).
fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            Ok(_) => e.metadata().map(|m| m.len()).unwrap_or(0),
            Err(_) => 0,
        })
        .sum()
}

fn spawn_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("labhost-epoch".into())
        .spawn(move || loop {
            std::thread::sleep(EPOCH_TICK);
            match weak.upgrade() {
                Some(engine) => engine.increment_epoch(),
                None => return,
            }
        })
        .expect("spawn epoch ticker");
}

/// The innermost cause of a wasmtime error, plus the trap code if any.
pub(crate) fn root_cause(e: &wasmtime::Error) -> String {
    let msg = e.chain().map(|c| c.to_string()).collect::<Vec<_>>();
    // wasmtime puts the trap message last and the wasm backtrace in between.
    let last = msg.last().cloned().unwrap_or_default();
    let first = msg.first().cloned().unwrap_or_default();
    let first_line = first.lines().next().unwrap_or_default().to_owned();
    if msg.len() > 1 && !first_line.starts_with("error while executing") {
        format!("{first_line}: {last}")
    } else {
        last.lines().next().unwrap_or_default().to_owned()
    }
}

fn fmt_duration(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 60.0 && s.fract() == 0.0 && (s as u64).is_multiple_of(60) {
        format!("{}m", s as u64 / 60)
    } else if s.fract() == 0.0 {
        format!("{}s", s as u64)
    } else {
        format!("{s:.1}s")
    }
}

/// A core module starts with the wasm magic and version 1; a component
/// with the same magic and layer 1.
fn wasmparser_is_core_module(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes[0..4] == *b"\0asm" && bytes[4..8] == [1, 0, 0, 0]
}
