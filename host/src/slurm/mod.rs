//! The Slurm executor: each job is an `sbatch` job that runs the normal
//! labhost host on a compute node, against the shared workspace.
//!
//! - **Submit** ([`SlurmExecutor`]): the plugin is loaded and pinned and
//!   the config checked here; the job gets its id and a QUEUED record
//!   *before* `sbatch`, so listings, the dashboard and webhooks see it at
//!   once; its request is written beside the record (`request.json`) and
//!   the batch script runs `labhost exec-request` on it.
//! - **Run** ([`run_queued`], on the node): adopts the queued directory,
//!   renews the job's heartbeat while it runs, and turns Slurm's SIGTERM
//!   (scancel, preemption) into a cancel.
//! - **Wait**: the record, until it is terminal; a job whose heartbeat
//!   expired while Slurm says it is over was interrupted (node lost,
//!   host killed): that end is written here ([`liveness`]).
//! - **Cancel**: the cancel request first (the plugin sees should-stop
//!   through the shared workspace), `scancel` after its grace period (a
//!   queued job: at once).
//!
//! Dependencies stay the pipeline runner's, not Slurm's `afterok`: retries
//! elsewhere, resume from the last checkpoint and cancellation are decided
//! by the runner's scheduler on the run record (see `docs/cluster.md`).

pub mod liveness;
pub mod sbatch;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

pub use sbatch::SlurmSettings;

use crate::executor::{BoxFuture, Executor, JobRequest, LocalExecutor};
use crate::heartbeat::{self, Beating};
use crate::store::{durable, ExecutorRef, FailureKind, JobPaths, JobRecord, JobStatus};
use crate::{Adopt, Host, Workspace};

/// The executor kind recorded in a job placed by Slurm.
pub const KIND: &str = "slurm";
/// How often a waiting submitter reads a job's record.
const POLL: Duration = Duration::from_millis(200);
/// At most one `squeue` per this interval, for every job being waited on.
const VIEW_EVERY: Duration = Duration::from_secs(2);
/// After a cancel's grace period, how long before `scancel`.
const CANCEL_MARGIN: Duration = Duration::from_secs(5);
/// Reads of a job's record that may fail in a row (a shared filesystem's
/// transient errors) before a wait gives up: 10 s of polls.
const READ_FAILURES: u32 = 50;

/// What the submitter leaves for the node: the job's id and its request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QueuedRequest {
    pub job: String,
    pub request: JobRequest,
}

#[derive(Debug, Clone)]
struct Tracked {
    experiment: String,
    slurm_id: String,
    cancel_at: Option<Instant>,
    scancelled: bool,
}

#[derive(Default)]
struct View {
    at: Option<Instant>,
    /// Slurm ids asked about, and since when.
    wanted: HashMap<String, Instant>,
    /// Slurm id → state; absent: Slurm no longer knows the job.
    states: HashMap<String, String>,
    /// `squeue` answered at the last look.
    ok: bool,
}

/// Runs [`JobRequest`]s as Slurm jobs (see the module docs).
pub struct SlurmExecutor {
    local: LocalExecutor,
    settings: SlurmSettings,
    labhost: PathBuf,
    jobs: Mutex<HashMap<String, Tracked>>,
    view: tokio::sync::Mutex<View>,
}

impl SlurmExecutor {
    /// An executor submitting with `settings`; plugins are loaded (and
    /// pinned) by `host`, whose workspace must be shared with the nodes.
    pub fn new(host: Host, settings: SlurmSettings) -> anyhow::Result<Self> {
        settings.check().context("[executor.slurm]")?;
        let labhost = match &settings.labhost {
            Some(p) => p.clone(),
            None => std::env::current_exe().context("cannot find the labhost binary")?,
        };
        Ok(SlurmExecutor {
            local: LocalExecutor::new(host),
            settings,
            labhost,
            jobs: Mutex::default(),
            view: tokio::sync::Mutex::default(),
        })
    }

    fn ws(&self) -> &Workspace {
        self.local.host().workspace()
    }

    async fn submit_now(&self, request: JobRequest) -> anyhow::Result<String> {
        let spec = self.local.spec(request.clone())?;
        let ws = self.ws();
        let id = crate::launch::queue(
            ws,
            &spec,
            ExecutorRef {
                kind: KIND.into(),
                job_id: None,
            },
        )?;
        let paths = ws.job_paths(&spec.experiment, &id);
        let submitted = async {
            let queued = QueuedRequest {
                job: id.clone(),
                request,
            };
            durable::write_atomic(
                &paths.executor_request(),
                &serde_json::to_vec_pretty(&queued)?,
            )?;
            let args = sbatch::args(
                &self.settings,
                &spec.sandbox.limits,
                &format!("labhost-{}", spec.plugin.info.name),
                &paths.executor_output(),
            );
            let script = sbatch::script(&self.labhost, ws.root(), &paths.executor_request());
            let slurm_id = run_sbatch(&args, &script).await?;
            durable::write_atomic(&executor_id_file(&paths), slurm_id.as_bytes())?;
            let inflight = inflight_dir(ws);
            std::fs::create_dir_all(&inflight)?;
            durable::write_atomic(
                &inflight.join(&id),
                format!("{}\n{slurm_id}\n", spec.experiment).as_bytes(),
            )?;
            anyhow::Ok(slurm_id)
        }
        .await;
        match submitted {
            Ok(slurm_id) => {
                lock(&self.jobs).insert(
                    id.clone(),
                    Tracked {
                        experiment: spec.experiment.clone(),
                        slurm_id,
                        cancel_at: None,
                        scancelled: false,
                    },
                );
                Ok(id)
            }
            Err(e) => {
                let _ = crate::store::tree::remove_tree(&paths.dir);
                Err(e)
            }
        }
    }

    /// The job as this executor tracks it (read from its directory if
    /// another process submitted it).
    fn tracked(&self, job: &str) -> anyhow::Result<(String, Tracked)> {
        if let Some((id, t)) = lock(&self.jobs)
            .iter()
            .find(|(id, _)| id.as_str() == job)
            .map(|(id, t)| (id.clone(), t.clone()))
        {
            return Ok((id, t));
        }
        let (rec, paths) = self.ws().find_job(job)?;
        if rec.executor.as_ref().is_none_or(|e| e.kind != KIND) {
            bail!("job {} was not placed by Slurm", rec.id);
        }
        let slurm_id = rec
            .executor
            .and_then(|e| e.job_id)
            .or_else(|| std::fs::read_to_string(executor_id_file(&paths)).ok())
            .with_context(|| format!("job {} has no Slurm job id", rec.id))?;
        let t = Tracked {
            experiment: rec.experiment,
            slurm_id: slurm_id.trim().to_owned(),
            cancel_at: None,
            scancelled: false,
        };
        lock(&self.jobs)
            .entry(rec.id.clone())
            .or_insert_with(|| t.clone());
        Ok((rec.id, t))
    }

    /// Slurm's state for `slurm_id` (`None`: it no longer knows the job),
    /// or `Err` if Slurm could not be asked. One `squeue` per
    /// [`VIEW_EVERY`] answers every waiting job.
    async fn slurm_state(&self, slurm_id: &str) -> Result<Option<String>, ()> {
        let mut view = self.view.lock().await;
        let since = *view
            .wanted
            .entry(slurm_id.to_owned())
            .or_insert_with(Instant::now);
        // Refreshed for every job at most every VIEW_EVERY, and at once for
        // a job the last look did not ask about.
        if view
            .at
            .is_none_or(|at| at.elapsed() >= VIEW_EVERY || at < since)
        {
            let ids: Vec<String> = view.wanted.keys().cloned().collect();
            match squeue(&ids).await {
                Ok(states) => {
                    view.states = states;
                    view.ok = true;
                }
                Err(_) => view.ok = false,
            }
            view.at = Some(Instant::now());
        }
        if !view.ok {
            return Err(());
        }
        Ok(view.states.get(slurm_id).cloned())
    }

    fn forget(&self, job: &str, slurm_id: &str) {
        let _ = std::fs::remove_file(inflight_dir(self.ws()).join(job));
        lock(&self.jobs).remove(job);
        if let Ok(mut v) = self.view.try_lock() {
            v.wanted.remove(slurm_id);
        }
    }

    async fn wait_for(&self, job: &str) -> anyhow::Result<JobRecord> {
        let (id, t) = self.tracked(job)?;
        let ws = self.ws().clone();
        let paths = ws.job_paths(&t.experiment, &id);
        let mut failures = 0;
        loop {
            let read = crate::store::read_json_opt::<JobRecord>(&paths.record())
                .and_then(|r| r.with_context(|| format!("job {id} has no record")));
            let rec = match read {
                Ok(rec) => {
                    failures = 0;
                    rec
                }
                // A wait that gives up makes a pipeline run the job again:
                // not for one failed read while the job runs on.
                Err(_) if failures < READ_FAILURES => {
                    failures += 1;
                    tokio::time::sleep(POLL).await;
                    continue;
                }
                Err(e) => return Err(e),
            };
            if rec.status.is_terminal() {
                self.forget(&id, &t.slurm_id);
                return Ok(rec);
            }
            let now = Utc::now();
            let beat = heartbeat::read(&paths.heartbeat());
            self.escalate_cancel(&id, &rec).await;
            // Slurm is asked only when the heartbeat does not vouch for the job.
            if beat.as_ref().is_none_or(|h| !h.is_alive(now)) {
                if let Ok(state) = self.slurm_state(&t.slurm_id).await {
                    let seen = (t.slurm_id.as_str(), beat.as_ref(), state.as_deref(), now);
                    if let Some(rec) = end_if_gone(&ws, &rec, &paths, seen)? {
                        self.forget(&id, &t.slurm_id);
                        return Ok(rec);
                    }
                }
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// `scancel` a cancelled job that outlived its grace period.
    async fn escalate_cancel(&self, id: &str, rec: &JobRecord) {
        let due = {
            let mut jobs = lock(&self.jobs);
            let Some(t) = jobs.get_mut(id) else { return };
            let grace = rec.sandbox.limits.grace + CANCEL_MARGIN;
            match t.cancel_at {
                Some(at) if !t.scancelled && at.elapsed() >= grace => {
                    t.scancelled = true;
                    Some(t.slurm_id.clone())
                }
                _ => None,
            }
        };
        if let Some(slurm_id) = due {
            let _ = scancel(&slurm_id).await;
        }
    }

    async fn cancel_now(&self, job: &str) -> anyhow::Result<()> {
        let (id, t) = self.tracked(job)?;
        let rec = self.ws().request_cancel(&id)?;
        let queued = rec.status == JobStatus::Queued;
        if let Some(t) = lock(&self.jobs).get_mut(&id) {
            t.cancel_at.get_or_insert_with(Instant::now);
            t.scancelled |= queued;
        }
        // A job that has not started has nothing to stop gracefully.
        if queued {
            scancel(&t.slurm_id).await?;
        }
        Ok(())
    }
}

impl Executor for SlurmExecutor {
    fn submit(&self, request: JobRequest) -> BoxFuture<'_, anyhow::Result<String>> {
        Box::pin(self.submit_now(request))
    }

    fn status<'a>(&'a self, job: &'a str) -> BoxFuture<'a, anyhow::Result<JobStatus>> {
        Box::pin(async move { Ok(self.ws().find_job(job)?.0.status) })
    }

    fn wait<'a>(&'a self, job: &'a str) -> BoxFuture<'a, anyhow::Result<JobRecord>> {
        Box::pin(self.wait_for(job))
    }

    fn cancel<'a>(&'a self, job: &'a str) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(self.cancel_now(job))
    }

    fn kind(&self) -> Option<&str> {
        Some(KIND)
    }
}

/// Run a queued job here (`labhost exec-request`, on the node Slurm
/// chose): adopt its directory, keep its heartbeat while it runs, cancel
/// it on SIGTERM. A job that cannot start is recorded FAILED (setup).
pub async fn run_queued(host: &Host, request_file: &Path) -> anyhow::Result<JobRecord> {
    let text = std::fs::read(request_file)
        .with_context(|| format!("cannot read {}", request_file.display()))?;
    let QueuedRequest { job, request } = serde_json::from_slice(&text)
        .with_context(|| format!("{} is not a labhost job request", request_file.display()))?;
    let ws = host.workspace();
    let experiment = request.experiment.clone();
    let paths = ws.job_paths(&experiment, &job);
    let beating = Beating::start(paths.heartbeat())
        .with_context(|| format!("cannot write the heartbeat of job {job}"))?;
    let executor = ExecutorRef {
        kind: KIND.into(),
        job_id: std::env::var("SLURM_JOB_ID").ok(),
    };
    let local = LocalExecutor::new(host.clone());
    let started = local.spec(request).and_then(|mut spec| {
        spec.adopt = Some(Adopt {
            id: job.clone(),
            executor,
        });
        host.start(spec)
    });
    let handle = match started {
        Ok(h) => h,
        Err(e) => {
            drop(beating);
            // Only a job still queued is this host's to end: another one
            // (running elsewhere, or ended) is left as it is.
            let queued = crate::store::read_json_opt::<JobRecord>(&paths.record())
                .ok()
                .flatten()
                .is_some_and(|r| r.status == JobStatus::Queued);
            if !queued {
                return Err(e.context(format!("job {job} was not started here")));
            }
            return ws.end_job(
                &experiment,
                &job,
                JobStatus::Failed,
                Some(FailureKind::Setup),
                format!(
                    "the job could not start on {}: {e:#}",
                    crate::store::hostname()
                ),
            );
        }
    };
    let control = handle.control();
    // scancel, preemption, Slurm's own time limit: SIGTERM, then SIGKILL
    // after the cluster's KillWait.
    let sigterm = tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut s) = signal(SignalKind::terminate()) {
            if s.recv().await.is_some() {
                control.cancel();
            }
        }
    });
    let rec = handle.wait().await;
    sigterm.abort();
    drop(beating);
    rec
}

/// `labhost cancel` of a Slurm-placed job from any process: the cancel
/// request, `scancel` after the grace period (at once if still queued),
/// then its final record.
pub async fn cancel_and_wait(host: &Host, job: &str) -> anyhow::Result<JobRecord> {
    let exec = SlurmExecutor::new(host.clone(), SlurmSettings::default())?;
    exec.cancel_now(job).await?;
    exec.wait_for(job).await
}

/// `<ws>/.slurm/<job>` (its experiment and Slurm job id): written at
/// submit, removed once the job is seen ended, so [`sweep`] reads only the
/// jobs in flight, not the whole workspace.
fn inflight_dir(ws: &Workspace) -> PathBuf {
    ws.root().join(".slurm")
}

/// End the Slurm jobs in flight that nobody waits for any more (their
/// submitter is gone) whose heartbeat expired and that Slurm says are over:
/// a listing must not show a lost node's job RUNNING for ever. Without an
/// answer from Slurm (none on this machine), nothing is decided. Returns
/// the ids of the jobs it ended.
pub async fn sweep(ws: &Workspace) -> anyhow::Result<Vec<String>> {
    let Ok(entries) = std::fs::read_dir(inflight_dir(ws)) else {
        return Ok(Vec::new());
    };
    let now = Utc::now();
    let mut candidates = Vec::new();
    for entry in entries.flatten() {
        let id = entry.file_name().to_string_lossy().into_owned();
        let Ok(text) = std::fs::read_to_string(entry.path()) else {
            continue;
        };
        let mut lines = text.lines();
        let (Some(experiment), Some(slurm_id)) = (lines.next(), lines.next()) else {
            continue; // a temp file, or one being written
        };
        let paths = ws.job_paths(experiment, &id);
        let rec = match crate::store::read_json_opt::<JobRecord>(&paths.record()) {
            Ok(Some(rec)) => rec,
            Ok(None) => {
                let _ = std::fs::remove_file(entry.path()); // removed since
                continue;
            }
            Err(_) => continue,
        };
        if rec.status.is_terminal() {
            let _ = std::fs::remove_file(entry.path());
            continue;
        }
        let beat = heartbeat::read(&paths.heartbeat());
        if beat.as_ref().is_some_and(|h| h.is_alive(now)) {
            continue;
        }
        candidates.push((rec, paths, slurm_id.to_owned(), beat, entry.path()));
    }
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = candidates.iter().map(|c| c.2.clone()).collect();
    let Ok(states) = squeue(&ids).await else {
        return Ok(Vec::new());
    };
    let mut ended = Vec::new();
    for (rec, paths, slurm_id, beat, marker) in candidates {
        let state = states.get(&slurm_id).map(String::as_str);
        if end_if_gone(ws, &rec, &paths, (&slurm_id, beat.as_ref(), state, now))?.is_some() {
            let _ = std::fs::remove_file(&marker);
            ended.push(rec.id);
        }
    }
    Ok(ended)
}

/// Judge a job from what was seen of it (its Slurm id, heartbeat, Slurm's
/// state, the time) and write the end [`liveness::judge`] decides, if any.
fn end_if_gone(
    ws: &Workspace,
    rec: &JobRecord,
    paths: &JobPaths,
    (slurm_id, heartbeat, slurm, now): (
        &str,
        Option<&heartbeat::Heartbeat>,
        Option<&str>,
        chrono::DateTime<Utc>,
    ),
) -> anyhow::Result<Option<JobRecord>> {
    let seen = liveness::Seen {
        status: rec.status,
        heartbeat,
        slurm,
        slurm_id,
        cancel_requested: paths.cancel_request().exists(),
        now,
    };
    match liveness::judge(&seen) {
        liveness::Verdict::End {
            status,
            failure,
            message,
        } => Ok(Some(ws.end_job(
            &rec.experiment,
            &rec.id,
            status,
            failure,
            message,
        )?)),
        liveness::Verdict::Wait => Ok(None),
    }
}

/// [`sweep`] from synchronous code (a runtime only if a job is in flight).
pub fn sweep_blocking(ws: &Workspace) -> anyhow::Result<Vec<String>> {
    let in_flight = std::fs::read_dir(inflight_dir(ws)).is_ok_and(|mut d| d.next().is_some());
    if !in_flight {
        return Ok(Vec::new());
    }
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(sweep(ws))
}

fn executor_id_file(paths: &JobPaths) -> PathBuf {
    paths.dir.join("executor.id")
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// First line of a command's stderr, for an error message.
fn first_line(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    text.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("(no message)")
        .trim()
        .to_owned()
}

async fn slurm_command(
    program: &str,
    args: &[String],
    stdin: Option<&str>,
) -> anyhow::Result<String> {
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot run {program} (is Slurm installed and on PATH?)"))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes()).await?;
    }
    let out = child.wait_with_output().await?;
    if !out.status.success() {
        bail!("{program} failed: {}", first_line(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

async fn run_sbatch(args: &[String], script: &str) -> anyhow::Result<String> {
    sbatch::parse_job_id(&slurm_command("sbatch", args, Some(script)).await?)
}

async fn scancel(slurm_id: &str) -> anyhow::Result<()> {
    slurm_command("scancel", &[slurm_id.to_owned()], None).await?;
    Ok(())
}

/// Slurm's state of each of `ids` it still knows.
async fn squeue(ids: &[String]) -> anyhow::Result<HashMap<String, String>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let args = |ids: &[String]| {
        vec![
            "-h".to_owned(),
            "-t".into(),
            "all".into(),
            "-o".into(),
            "%i|%T".into(),
            "-j".into(),
            ids.join(","),
        ]
    };
    match slurm_command("squeue", &args(ids), None).await {
        Ok(out) => Ok(liveness::parse_squeue(&out).into_iter().collect()),
        // One id Slurm forgot fails the whole query: ask one by one.
        Err(e) if e.to_string().contains("Invalid job id") && ids.len() > 1 => {
            let mut all = HashMap::new();
            for id in ids {
                match slurm_command("squeue", &args(std::slice::from_ref(id)), None).await {
                    Ok(out) => all.extend(liveness::parse_squeue(&out)),
                    Err(e) if e.to_string().contains("Invalid job id") => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(all)
        }
        Err(e) if e.to_string().contains("Invalid job id") => Ok(HashMap::new()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::JobSpec;

    /// What the submitter and the node do around `sbatch`, without Slurm:
    /// the queued record is left alone by the flock recovery, adopted and
    /// run in place once, and a job that cannot start there ends FAILED
    /// (setup) in its own directory.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_queued_job_is_adopted_once_and_run_in_place() {
        let wasm = Path::new(env!("CARGO_MANIFEST_DIR")).join("../guests/dist/rust/datagen.wasm");
        assert!(
            wasm.exists(),
            "{} is missing: run scripts/build-guests.sh",
            wasm.display()
        );
        let dir = tempfile::tempdir().unwrap();
        let host = Host::with_cache(Workspace::open(dir.path()).unwrap(), None).unwrap();
        let ws = host.workspace().clone();
        let plugin = host.load(&wasm).unwrap();
        let queue = |spec: &JobSpec| {
            let executor = ExecutorRef {
                kind: KIND.into(),
                job_id: None,
            };
            let id = crate::launch::queue(&ws, spec, executor).unwrap();
            let file = dir.path().join(format!("{id}.json"));
            let q = QueuedRequest {
                job: id.clone(),
                request: JobRequest::from_spec(spec),
            };
            std::fs::write(&file, serde_json::to_vec(&q).unwrap()).unwrap();
            (id, file)
        };
        let mut spec = JobSpec::new(plugin.clone());
        spec.experiment = "q".into();
        spec.config.insert("rows".into(), 20.into());
        let (id, file) = queue(&spec);
        let (queued, paths) = ws.find_job(&id).unwrap();
        assert_eq!(queued.status, JobStatus::Queued);
        assert_eq!((queued.started_at, queued.hostname.as_str()), (None, ""));
        assert_eq!(queued.config["rows"], 20);
        assert!(queued.config.get("seed").is_some(), "defaults filled in");
        // Its lock is free, but no flock decides an executor's job.
        let reopened = Workspace::open(dir.path()).unwrap();
        assert_eq!(reopened.find_job(&id).unwrap().0.status, JobStatus::Queued);

        let rec = run_queued(&host, &file).await.unwrap();
        assert_eq!(rec.status, JobStatus::Complete, "{:?}", rec.message);
        assert_eq!(rec.id, id);
        assert_eq!(rec.created_at, queued.created_at);
        assert_eq!(rec.hostname, crate::store::hostname());
        assert_eq!(rec.executor.as_ref().unwrap().kind, KIND);
        let beat = heartbeat::read(&paths.heartbeat()).expect("a heartbeat was kept");
        assert_eq!(beat.pid, std::process::id());
        // Run again: refused (not QUEUED), and the record is kept as it was.
        let err = run_queued(&host, &file).await.unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            format!("job {id} was not started here: job {id} is COMPLETE, not QUEUED (it started or ended already)")
        );
        let (again, _) = ws.find_job(&id).unwrap();
        assert_eq!(
            (again.status, again.ended_at),
            (JobStatus::Complete, rec.ended_at)
        );

        // A grant only the node can check (a directory it does not have).
        let mut spec = JobSpec::new(plugin);
        spec.experiment = "q".into();
        spec.sandbox.grants.dirs = vec!["/nonexistent-labhost-dir::/mnt/in".parse().unwrap()];
        let (id, file) = queue(&spec);
        let rec = run_queued(&host, &file).await.unwrap();
        assert_eq!(rec.id, id);
        assert_eq!(rec.status, JobStatus::Failed);
        assert_eq!(rec.failure, Some(FailureKind::Setup));
        let msg = rec.message.unwrap();
        assert!(
            msg.starts_with(&format!(
                "the job could not start on {}: ",
                crate::store::hostname()
            )) && msg.contains("/nonexistent-labhost-dir"),
            "{msg}"
        );
        assert!(ws.find_job(&id).is_ok(), "the directory is kept");
    }
}
