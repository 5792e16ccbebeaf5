//! Job setup: everything [`crate::Host::start`] does before the guest
//! runs. The spec's checks (config, pooled memory), grant resolution
//! (directories opened without following symlinks and kept out of the
//! workspace, HTTP grants, registry entries by exact id, the resume
//! checkpoint), secrets, the descriptor lease, the job directory and its
//! first record, and the WASI context with only the grants as preopens.
//! Anything refused here creates no job.

use std::fs::File;
use std::sync::Arc;

use anyhow::{bail, Context};
use chrono::Utc;
use serde_json::Value;
use tokio::sync::broadcast;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use crate::engine::Pooling;
use crate::events::{JobEvent, LogSource};
use crate::executor::ResumePoint;
use crate::fds::Lease;
use crate::host::JobSpec;
use crate::job::{GrantedEntry, JobControl, JobCtx, ResumeInfo};
use crate::joblog::{GuestStdio, JobLog};
use crate::mounts::Mount;
use crate::secrets::Secrets;
use crate::store::{JobRecord, JobStatus, PluginRef, Registry, ResumeRef, Workspace, SCHEMA};
use crate::units::human_bytes;

/// Events buffered per subscriber before a slow one starts missing some.
const EVENT_BUFFER: usize = 4096;

/// A job set up and recorded (RUNNING, not yet snapshotted), ready for
/// its guest.
pub(crate) struct Launch {
    pub id: String,
    pub job: JobCtx,
    pub wasi: WasiCtxBuilder,
    /// The job directory's lock, held until the job ends.
    pub lock: File,
    /// The job's share of this process's descriptors, until the job ends.
    pub fd_lease: Lease,
    pub events: broadcast::Sender<JobEvent>,
    pub first: broadcast::Receiver<JobEvent>,
    pub control: Arc<JobControl>,
    /// The handle limit asked for (the record holds the one granted).
    pub asked_handles: u64,
}

/// What [`prepare`] checks first, without writing anything: the config
/// against the plugin's parameters and the registry grants.
pub(crate) fn check_spec(ws: &Workspace, spec: &JobSpec) -> anyhow::Result<()> {
    crate::config::resolve(&spec.plugin.info, &spec.config)?;
    for r in &spec.sandbox.grants.models {
        ws.resolve(Registry::Models, r)?;
    }
    for r in &spec.sandbox.grants.datasets {
        ws.resolve(Registry::Datasets, r)?;
    }
    Ok(())
}

/// Check `spec`, resolve its grants and secrets, create the job directory
/// and record, and build the guest's WASI context. On an error after the
/// directory was made, the directory is removed.
pub(crate) fn prepare(
    ws: &Workspace,
    pooling: Option<&Pooling>,
    spec: &JobSpec,
) -> anyhow::Result<Launch> {
    let plugin = spec.plugin.clone();
    if plugin.is_predictor() != spec.serving.is_some() {
        bail!(
            "{} is a predictor (world lab:api/predictor): deploy it as an app (`labhost app deploy`), it does not run as a job",
            plugin.path.display()
        );
    }
    let config = crate::config::resolve(&plugin.info, &spec.config)?;
    let metadata_len = serde_json::Value::Object(spec.metadata.clone())
        .to_string()
        .len();
    if metadata_len > crate::api::MAX_METADATA {
        bail!(
            "job metadata is {metadata_len} bytes of JSON; at most {} are kept",
            crate::api::MAX_METADATA
        );
    }
    if let Some(p) = pooling {
        let asked = spec.sandbox.limits.memory_bytes;
        if asked > p.max_memory {
            bail!(
                "memory limit {} is larger than this host's pooled memory slots of {} (use a smaller memory limit, or a host without pooling)",
                human_bytes(asked),
                human_bytes(p.max_memory)
            );
        }
    }
    let ws = ws.clone();
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
    let secrets = Secrets::resolve(
        crate::secrets::needed(&grants.secrets, &grants.http),
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
            Some((rec.id.clone(), chosen.name.clone(), paths))
        }
    };

    // Descriptors: the guest's handles, the mounts, the host's own files.
    let host_fds = crate::fds::PER_JOB_HOST
        + 1
        + (models.len() + datasets.len() + grant_mounts.len()) as u64
        + u64::from(resume.is_some());
    let asked_handles = spec.sandbox.limits.handles;
    let (fd_lease, handles) = crate::fds::lease(asked_handles, host_fds);
    // A new directory, or the queued one an executor's submitter made
    // (kept on an error: its record then tells why the job did not start).
    let (id, paths, lock, queued) = match &spec.adopt {
        None => {
            let (id, paths, lock) = ws.create_job_dir(&spec.experiment)?;
            (id, paths, lock, None)
        }
        Some(a) => {
            let (paths, lock, rec) = ws.adopt_queued_job(&spec.experiment, &a.id)?;
            (a.id.clone(), paths, lock, Some(rec))
        }
    };
    let discard = |paths: &crate::store::JobPaths| {
        if queued.is_none() {
            let _ = crate::store::tree::remove_tree(&paths.dir);
        }
    };
    if let Some((_, name, src)) = &resume {
        // Protects the checkpoint from the source job's retention and the
        // source job from removal while this job runs (`lifecycle::pins`).
        if let Err(e) = crate::lifecycle::pins::pin(src, &spec.experiment, &id, name) {
            discard(&paths);
            return Err(e).context("cannot pin the resumed checkpoint");
        }
    }
    let (events, first) = broadcast::channel(EVENT_BUFFER);
    let control = Arc::new(JobControl::default());
    let mut sandbox = spec.sandbox.clone();
    sandbox.grants.dirs = dir_grants;
    sandbox.limits.handles = handles;
    sandbox.grants.models = models.iter().map(|m| m.id.clone()).collect();
    sandbox.grants.datasets = datasets.iter().map(|d| d.id.clone()).collect();
    let mut record = new_record(spec, Value::Object(config), sandbox);
    record.id = id.clone();
    record.resume = resume.as_ref().map(|(j, c, _)| ResumeRef {
        job_id: j.clone(),
        checkpoint: c.clone(),
    });
    if let Some(queued) = &queued {
        record.created_at = queued.created_at;
    }

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
            mounts.push(Mount::new("/resume", &dir.checkpoints(), false)?);
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
    let (job, wasi) = match setup() {
        Ok(v) => v,
        Err(e) => {
            discard(&paths);
            return Err(e);
        }
    };
    Ok(Launch {
        id,
        job,
        wasi,
        lock,
        fd_lease,
        events,
        first,
        control,
        asked_handles,
    })
}

/// The record of a job of `spec` as it starts (RUNNING on this machine),
/// with its config resolved and its sandbox as granted; the id is the
/// caller's to fill in.
fn new_record(spec: &JobSpec, config: Value, sandbox: crate::Sandbox) -> JobRecord {
    let plugin = &spec.plugin;
    let now = Utc::now();
    JobRecord {
        schema: SCHEMA,
        id: String::new(),
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
        config,
        sandbox,
        resume: None,
        created_at: now,
        started_at: Some(now),
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
        hostname: crate::store::hostname(),
        executor: spec.adopt.as_ref().map(|a| a.executor.clone()),
        metadata: spec.metadata.clone(),
        status_stage: None,
        http: Default::default(),
    }
}

/// Write `spec`'s job as QUEUED, to be run later by an executor in this
/// directory (see [`crate::slurm`]): its config checked and completed, its
/// resume point and registry grants named by id; no host, no start time.
/// Everything else (directories, secrets, HTTP grants) is checked again
/// where it runs. Returns the job id.
pub(crate) fn queue(
    ws: &Workspace,
    spec: &JobSpec,
    executor: crate::store::ExecutorRef,
) -> anyhow::Result<String> {
    let config = crate::config::resolve(&spec.plugin.info, &spec.config)?;
    let mut sandbox = spec.sandbox.clone();
    for g in &sandbox.grants.http {
        g.check()?;
    }
    for g in &sandbox.grants.dirs {
        g.check()?;
    }
    sandbox.grants.models = resolve_ids(ws, Registry::Models, &sandbox.grants.models)?;
    sandbox.grants.datasets = resolve_ids(ws, Registry::Datasets, &sandbox.grants.datasets)?;
    let mut record = new_record(spec, Value::Object(config), sandbox);
    if let Some(ResumePoint { job, checkpoint }) = &spec.resume {
        let (rec, _) = ws.find_job(job)?;
        let chosen = match checkpoint {
            Some(name) => rec.checkpoints.iter().find(|c| &c.name == name),
            None => rec.checkpoints.last(),
        }
        .with_context(|| format!("job {} has no checkpoint to resume from", rec.id))?;
        record.resume = Some(ResumeRef {
            job_id: rec.id.clone(),
            checkpoint: chosen.name.clone(),
        });
    }
    record.started_at = None;
    record.host_pid = 0;
    record.hostname = String::new();
    record.executor = Some(executor);
    // As for a local start: a removal sees the job or the job sees the
    // removal (the record names the grants it uses).
    let _lifecycle = crate::lifecycle::lock(ws, crate::lifecycle::LockMode::Shared)
        .context("cannot take the workspace's lifecycle lock")?;
    ws.create_queued_job(&mut record)?;
    Ok(record.id)
}

fn resolve_ids(ws: &Workspace, reg: Registry, refs: &[String]) -> anyhow::Result<Vec<String>> {
    let mut ids: Vec<String> = Vec::new();
    for r in refs {
        let id = ws.resolve(reg, r)?.id;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    Ok(ids)
}
