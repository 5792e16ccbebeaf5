//! [`Host`]: the engine, the linker and the job runner.

use std::path::Path;
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
use crate::executor::ResumePoint;
use crate::job::{Deadlines, Interrupt};
use crate::job::{GrantedEntry, JobControl, JobCtx, ResumeInfo};
use crate::joblog::{GuestStdio, JobLog};
use crate::mounts::Mount;
use crate::outcome::{classify, GuestEnd, Observed};
use crate::plugin::{Plugin, PluginInfo};
use crate::sandbox::{human_bytes, Sandbox};
use crate::secrets::Secrets;
use crate::state::{HostState, MemoryLimiter};
use crate::store::{
    JobRecord, JobStatus, PipelineRef, PluginRef, Registry, ResumeRef, Workspace, SCHEMA,
};
use crate::watcher::spawn_job_watcher;

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
            .total_stacks(n)
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
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        PluginBindings::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)?;
        crate::bindings::v0_1_0::Plugin::add_to_linker::<HostState, HasSelf<HostState>>(
            &mut linker,
            |s| s,
        )?;
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
        let bytes = read_plugin_file(path)?;
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
    /// health check, and what the benchmark times. Runs on its own thread.
    pub fn instantiate_once(&self, plugin: &Plugin) -> anyhow::Result<Duration> {
        let store = self.empty_store();
        let pre = plugin.pre.clone();
        on_own_runtime(async move {
            let mut store = store;
            let t = Instant::now();
            pre.instantiate_async(&mut store)
                .await
                .map_err(|e| anyhow::anyhow!("instantiation failed: {}", root_cause(&e)))?;
            let took = t.elapsed();
            drop(store); // frees the instance (and its pool slot)
            Ok(took)
        })
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
        };
        let mut store = Store::new(&self.inner.engine, state);
        store.limiter(|s| &mut s.limiter);
        let deadline = Instant::now() + DESCRIBE_TIMEOUT;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if Instant::now() >= deadline {
                wasmtime::bail!("{}", describe_timeout_message());
            }
            Ok(UpdateDeadline::Continue(1))
        });
        store
    }

    /// Call `describe()` in a sandbox with no grants, on its own thread and
    /// runtime (callers may be inside a runtime), within [`DESCRIBE_TIMEOUT`]
    /// whether the guest computes or blocks in a WASI call.
    fn describe(&self, pre: &PluginPre<HostState>) -> anyhow::Result<PluginInfo> {
        let store = self.empty_store();
        let pre = pre.clone();
        let info = on_own_runtime(async move {
            let mut store = store;
            let call = async {
                let instance = pre
                    .instantiate_async(&mut store)
                    .await
                    .map_err(|e| anyhow::anyhow!("instantiation failed: {}", root_cause(&e)))?;
                instance
                    .call_describe(&mut store)
                    .await
                    .map_err(|e| anyhow::anyhow!("describe() failed: {}", root_cause(&e)))
            };
            match tokio::time::timeout(DESCRIBE_TIMEOUT, call).await {
                Ok(r) => r,
                Err(_) => bail!("describe() failed: {}", describe_timeout_message()),
            }
        })?;
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
                    "memory limit {} is larger than this host's pooled memory slots of {} (use a smaller memory limit, or a host without pooling)",
                    human_bytes(asked),
                    human_bytes(p.max_memory)
                );
            }
        }
        let ws = self.inner.workspace.clone();
        // Host directories: opened now, without following symlinks, and
        // recorded by their resolved paths.
        let mut dir_grants = spec.sandbox.grants.dirs.clone();
        let mut grant_mounts = Vec::with_capacity(dir_grants.len());
        for g in &mut dir_grants {
            g.check()?;
            let m = Mount::new(g.guest.trim_end_matches('/'), &g.host, g.writable)
                .map_err(|e| anyhow::anyhow!("directory grant: {e}"))?;
            if m.host.starts_with(ws.root()) || ws.root().starts_with(&m.host) {
                bail!(
                    "directory grant {}: overlaps the labhost workspace {} (a plugin could rewrite job records, stored files or the compile cache)",
                    m.host.display(),
                    ws.root().display()
                );
            }
            g.host = m.host.clone();
            grant_mounts.push(m);
        }
        // Secrets: the granted ones and those header templates name, resolved
        // now (a missing one stops the job before it has a directory).
        let grants = &spec.sandbox.grants;
        for g in &grants.http {
            g.check()?;
        }
        let mut secret_names: Vec<&str> = grants.secrets.iter().map(String::as_str).collect();
        for g in &grants.http {
            for (_, v) in &g.headers {
                secret_names.extend(crate::secrets::placeholders(v));
            }
        }
        let secrets = Secrets::resolve(
            secret_names,
            |n| {
                spec.secrets
                    .get(n)
                    .map(str::to_owned)
                    .or_else(|| std::env::var(n).ok())
            },
            ws.root(),
        )?;
        let resolve_all = |reg: Registry, refs: &[String]| -> anyhow::Result<Vec<GrantedEntry>> {
            let mut out: Vec<GrantedEntry> = Vec::new();
            for r in refs {
                let e = ws.resolve(reg, r)?;
                if !out.iter().any(|o| o.id == e.id) {
                    out.push(GrantedEntry {
                        id: e.id,
                        name: e.name,
                    });
                }
            }
            Ok(out)
        };
        let models = resolve_all(Registry::Models, &spec.sandbox.grants.models)?;
        let datasets = resolve_all(Registry::Datasets, &spec.sandbox.grants.datasets)?;
        let resume = match &spec.resume {
            None => None,
            Some(ResumePoint { job, checkpoint }) => {
                let (rec, paths) = ws.find_job(job)?;
                let chosen = match checkpoint {
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

        // Descriptors: the guest's handles, the mounts, the host's own files.
        let host_fds = crate::fds::PER_JOB_HOST
            + 1
            + (models.len() + datasets.len() + grant_mounts.len()) as u64
            + u64::from(resume.is_some());
        let asked_handles = spec.sandbox.limits.handles;
        let (fd_lease, handles) = crate::fds::lease(asked_handles, host_fds);
        let (id, paths, lock) = ws.create_job_dir(&spec.experiment)?;
        let (events, first) = broadcast::channel(EVENT_BUFFER);
        let control = Arc::new(JobControl::default());
        let mut sandbox = spec.sandbox.clone();
        sandbox.grants.dirs = dir_grants;
        sandbox.limits.handles = handles;
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
            metadata: Default::default(),
            status_stage: None,
            http: Default::default(),
        };

        let mut setup = || -> anyhow::Result<(JobCtx, WasiCtxBuilder)> {
            let log = JobLog::create(
                &paths.log(),
                record.sandbox.limits.log_bytes,
                events.clone(),
            )?;
            log.lock()
                .unwrap_or_else(|e| e.into_inner())
                .set_secrets(secrets.clone());
            let mut wasi = WasiCtxBuilder::new();
            // The guest runs on its own blocking-pool thread (see
            // `execute`): file I/O may block it directly, without a hop
            // through tokio's blocking pool per WASI call.
            wasi.allow_blocking_current_thread(true);
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
            mounts.append(&mut grant_mounts);
            for m in &mounts {
                let perms = if m.writable {
                    FsPerms::ReadWrite
                } else {
                    FsPerms::ReadOnly
                };
                wasi.preopened_dir(m.fd_path(), &m.guest, perms)?;
            }
            let mut job = JobCtx::new(
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
            job.secrets = secrets.clone();
            Ok((job, wasi))
        };
        let (mut job, wasi) = match setup() {
            Ok(v) => v,
            Err(e) => {
                let _ = crate::store::tree::remove_tree(&paths.dir);
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
        if handles < asked_handles {
            job.host_log(&format!(
                "handle limit lowered from {asked_handles} to {handles}: this process's descriptors are shared with its other jobs"
            ));
        }
        let task = tokio::task::spawn_blocking(move || {
            let record = host.execute(&plugin, job, wasi, keep_work);
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
    ) -> anyhow::Result<JobRecord> {
        let limits = job.record.sandbox.limits.clone();
        let control = job.control.clone();
        control.start_clock(Deadlines::new(Instant::now(), limits.timeout, limits.grace));
        let state = HostState {
            wasi: wasi.build(),
            table: handle_table(limits.handles),
            limiter: MemoryLimiter {
                memory_bytes: limits.memory_bytes,
                refused: None,
            },
            job: Some(job),
        };
        let mut store = Store::new(&self.inner.engine, state);
        store.limiter(|s| &mut s.limiter);
        // A guest that computes is stopped by the epoch callback...
        let ctl = control.clone();
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| match ctl.interrupt_due(Instant::now()) {
            Some(i) => wasmtime::bail!("{}", trap_text(i)),
            None => Ok(UpdateDeadline::Continue(1)),
        });
        // ...and one waiting in a WASI call by dropping the call.
        let pre = plugin.pre.clone();
        let result = tokio::runtime::Handle::current().block_on(async {
            let run = async {
                let instance = pre
                    .instantiate_async(&mut store)
                    .await
                    .map_err(|e| (true, e))?;
                instance.call_run(&mut store).await.map_err(|e| (false, e))
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

fn describe_timeout_message() -> String {
    format!(
        "describe() did not return within {}s",
        DESCRIBE_TIMEOUT.as_secs()
    )
}

/// Run `fut` to completion on a new thread with its own current-thread
/// runtime: usable from sync code and from inside another runtime.
fn on_own_runtime<T: Send + 'static>(
    fut: impl std::future::Future<Output = anyhow::Result<T>> + Send + 'static,
) -> anyhow::Result<T> {
    std::thread::Builder::new()
        .name("labhost-describe".into())
        .spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start a runtime")?
                .block_on(fut)
        })
        .context("cannot start a thread")?
        .join()
        .map_err(|_| anyhow::anyhow!("the plugin's describe thread panicked"))?
}

/// Largest plugin file accepted (the Python and JavaScript runtimes make
/// components of 13–19 MB).
pub const MAX_PLUGIN_BYTES: u64 = 512 << 20;

/// Read a plugin file: a regular file of at most [`MAX_PLUGIN_BYTES`]
/// (a device such as `/dev/zero` or a FIFO is refused without reading;
/// the file is opened non-blocking so a FIFO cannot hang the open).
fn read_plugin_file(path: &Path) -> anyhow::Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let shown = path.display();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| anyhow::anyhow!("cannot read plugin {shown}: {e}"))?;
    let meta = file
        .metadata()
        .map_err(|e| anyhow::anyhow!("cannot read plugin {shown}: {e}"))?;
    if !meta.is_file() {
        bail!("cannot read plugin {shown}: not a regular file");
    }
    if meta.len() > MAX_PLUGIN_BYTES {
        bail!(
            "cannot read plugin {shown}: {} is larger than the {} a plugin may have",
            human_bytes(meta.len()),
            human_bytes(MAX_PLUGIN_BYTES)
        );
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_PLUGIN_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| anyhow::anyhow!("cannot read plugin {shown}: {e}"))?;
    if bytes.len() as u64 > MAX_PLUGIN_BYTES {
        bail!(
            "cannot read plugin {shown}: it grew past {}",
            human_bytes(MAX_PLUGIN_BYTES)
        );
    }
    Ok(bytes)
}

fn handle_table(max: u64) -> ResourceTable {
    let mut table = ResourceTable::new();
    table.set_max_capacity(usize::try_from(max).unwrap_or(usize::MAX));
    table
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

/// A core module starts with the wasm magic and version 1; a component
/// with the same magic and layer 1.
fn wasmparser_is_core_module(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes[0..4] == *b"\0asm" && bytes[4..8] == [1, 0, 0, 0]
}
