//! Running a pipeline: a scheduler over the run record. Instances whose
//! needs completed are queued; up to `workers` of them run at once as jobs
//! of the shared [`Host`]; a failed job is retried (with backoff) when its
//! failure kind is one the stage retries on, else its dependants are
//! blocked while independent branches go on. Every change is written to
//! `run.json` before anything else happens, so a killed runner loses at
//! most the jobs it was running (they read INTERRUPTED and are run again,
//! from their last checkpoint, by `resume`).

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use chrono::Utc;
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinSet;

use super::file::PipelineFile;
use super::plan;
use super::record::*;
use crate::plugin::Plugin;
use crate::settings::Effective;
use crate::store::{JobRecord, JobStatus, PipelineRef, Registry};
use crate::{Host, JobControl, JobSpec, Sandbox};

/// What a running pipeline reports.
#[derive(Debug, Clone)]
pub enum PipelineEvent {
    Started {
        instance: String,
        title: String,
        job_id: String,
        attempt: u32,
        resumed_from: Option<String>,
    },
    Ended {
        instance: String,
        title: String,
        status: InstanceStatus,
        message: String,
        job_id: Option<String>,
        seconds: f64,
    },
    Retrying {
        instance: String,
        title: String,
        failed_attempt: u32,
        delay: Duration,
        message: String,
    },
    Blocked {
        instance: String,
        title: String,
        reason: String,
    },
}

/// Cancels a run from another task (e.g. on Ctrl-C): running jobs get a
/// cancel, nothing new starts; the run can be resumed later.
#[derive(Clone, Default)]
pub struct RunCanceller {
    flag: Arc<AtomicBool>,
    notify: Arc<Notify>,
}

impl RunCanceller {
    pub fn cancel(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }
    fn is_cancelled(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }
}

/// A pipeline run that holds its lock, ready to [`execute`](Self::execute).
pub struct PipelineRun {
    host: Host,
    paths: RunPaths,
    record: RunRecord,
    plugins: HashMap<String, Arc<Plugin>>,
    canceller: RunCanceller,
    _lock: File,
}

/// How often the scheduler looks at backoffs and cancel requests.
const TICK: Duration = Duration::from_millis(50);

impl PipelineRun {
    /// Read, expand and check a pipeline file, load every plugin, validate
    /// every instance's config and inputs, and create the run (all
    /// instances waiting). Nothing runs yet; nothing is created on error.
    pub fn create(
        host: &Host,
        file: &Path,
        settings: &Effective,
        workers: Option<usize>,
    ) -> anyhow::Result<PipelineRun> {
        let (pipeline, text) = PipelineFile::read(file)?;
        let file = file
            .canonicalize()
            .with_context(|| format!("cannot resolve {}", file.display()))?;
        let base_dir = file.parent().unwrap_or(Path::new("/")).to_owned();
        let stages = pipeline.stages(&base_dir)?;
        let planned = plan::expand(&stages)?;
        let ws = host.workspace();
        crate::store::check_experiment(pipeline.experiment())?;

        let mut plugins: HashMap<String, Arc<Plugin>> = HashMap::new();
        let mut instances = Vec::new();
        for mut p in planned {
            let stage = &stages[p.stage];
            let ctx = || format!("stage `{}`", stage.name);
            let path = PipelineFile::plugin_path(&stage.spec.plugin, &base_dir, settings);
            let key = path_string(&path);
            let plugin = match plugins.get(&key) {
                Some(p) => p.clone(),
                None => {
                    let loaded = host.load(&path).with_context(ctx)?;
                    plugins.insert(key.clone(), loaded.clone());
                    loaded
                }
            };
            crate::config::resolve(&plugin.info, &p.config)
                .with_context(|| format!("stage `{}`{}", p.name, paren(&p.label)))?;
            // References by name are pinned to ids now: an entry published
            // later under the same name cannot shadow them mid-run.
            for input in p
                .datasets
                .iter_mut()
                .map(|i| (Registry::Datasets, i))
                .chain(p.models.iter_mut().map(|i| (Registry::Models, i)))
            {
                if let (reg, Input::Registry(r)) = input {
                    *r = ws.resolve(reg, r).with_context(ctx)?.id;
                }
            }
            for g in &stage.dirs {
                g.check().with_context(ctx)?;
                crate::mounts::open_dir_no_symlinks(&g.host)
                    .map_err(|e| anyhow::anyhow!("stage `{}`: dir: {e}", stage.name))?;
            }
            let mut limits = settings.limits.clone();
            stage.limits.apply(&mut limits);
            instances.push(Instance {
                name: p.name,
                stage: stage.name.clone(),
                label: p.label,
                needs: p.needs,
                plugin: PluginPin {
                    path: key,
                    blake3: plugin.digest.clone(),
                    name: plugin.info.name.clone(),
                    version: plugin.info.version.clone(),
                },
                config: p.config,
                datasets: p.datasets,
                models: p.models,
                dirs: stage.dirs.clone(),
                env: stage
                    .spec
                    .env
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                limits,
                retry: stage.retry.clone(),
                status: InstanceStatus::Waiting,
                message: None,
                attempts: vec![],
                retries_used: 0,
                not_before: None,
            });
        }
        let (id, paths) = create_run_dir(ws)?;
        let lock = paths.lock_run(&id)?;
        let now = Utc::now();
        let record = RunRecord {
            schema: RUN_SCHEMA,
            id,
            pipeline: pipeline.name.clone(),
            experiment: pipeline.experiment().to_owned(),
            file: path_string(&file),
            file_blake3: blake3::hash(text.as_bytes()).to_hex().to_string(),
            workers: workers.or(pipeline.workers).unwrap_or(settings.workers),
            status: RunStatus::Running,
            message: None,
            created_at: now,
            updated_at: now,
            ended_at: None,
            runner_pid: std::process::id(),
            resumes: 0,
            instances,
        };
        crate::store::fsutil::write_atomic(&paths.pipeline(), text.as_bytes())?;
        paths.save(&record)?;
        Ok(PipelineRun {
            host: host.clone(),
            paths,
            record,
            plugins,
            canceller: RunCanceller::default(),
            _lock: lock,
        })
    }

    /// Reopen a run to go on: completed instances are kept; the others are
    /// queued again with a fresh retry budget (a job that died with its
    /// runner resumes from its last checkpoint). Refuses if another process
    /// runs it, or if a plugin changed since the run was created.
    pub fn resume(host: &Host, id: &str, workers: Option<usize>) -> anyhow::Result<PipelineRun> {
        let ws = host.workspace();
        let (found, paths) = find_run(ws, id)?;
        let lock = paths.lock_run(&found.id)?;
        let mut record = read_run(&paths)?;
        let mut plugins: HashMap<String, Arc<Plugin>> = HashMap::new();
        // Jobs a killed runner started but had not yet written down.
        let known: Vec<String> = record
            .instances
            .iter()
            .flat_map(|i| i.attempts.iter().filter_map(|a| a.job_id.clone()))
            .collect();
        let orphans: Vec<JobRecord> = ws
            .jobs(Some(&record.experiment))?
            .into_iter()
            .filter(|j| {
                j.pipeline.as_ref().is_some_and(|p| p.run == record.id) && !known.contains(&j.id)
            })
            .collect();
        for job in orphans {
            let p = job.pipeline.as_ref().expect("filtered");
            if let Some(inst) = record.instances.iter_mut().find(|i| i.name == p.instance) {
                let mut a = Attempt {
                    job_id: Some(job.id.clone()),
                    status: job.status,
                    failure: None,
                    message: None,
                    started_at: job.created_at,
                    ended_at: None,
                    resumed_from: job
                        .resume
                        .as_ref()
                        .map(|r| format!("{}:{}", r.job_id, r.checkpoint)),
                };
                update_attempt(&mut a, &job);
                inst.attempts.push(a);
            }
        }
        for inst in &mut record.instances {
            // A job that ended after its runner stopped looking keeps its result.
            if let Some(job) = inst.last_job().map(str::to_owned) {
                if let Ok((rec, _)) = ws.job(&record.experiment, &job) {
                    if let Some(a) = inst
                        .attempts
                        .iter_mut()
                        .rev()
                        .find(|a| a.job_id.as_deref() == Some(job.as_str()))
                    {
                        update_attempt(a, &rec);
                    }
                    if rec.status == JobStatus::Complete {
                        inst.status = InstanceStatus::Complete;
                        inst.message = rec.message.clone();
                    }
                }
            }
            if inst.status == InstanceStatus::Complete {
                continue;
            }
            inst.status = InstanceStatus::Waiting;
            inst.message = None;
            inst.retries_used = 0;
            inst.not_before = None;
            if !plugins.contains_key(&inst.plugin.path) {
                let plugin = host
                    .load(Path::new(&inst.plugin.path))
                    .with_context(|| format!("stage `{}`", inst.stage))?;
                if plugin.digest != inst.plugin.blake3 {
                    bail!(
                        "stage `{}`: plugin {} changed since the run was created (blake3 {} → {}); start a new run to use it",
                        inst.stage,
                        inst.plugin.path,
                        &inst.plugin.blake3[..12],
                        &plugin.digest[..12]
                    );
                }
                plugins.insert(inst.plugin.path.clone(), plugin);
            }
        }
        if let Some(w) = workers {
            record.workers = w;
        }
        record.status = RunStatus::Running;
        record.message = None;
        record.ended_at = None;
        record.runner_pid = std::process::id();
        record.resumes += 1;
        let _ = std::fs::remove_file(paths.cancel_request());
        paths.save(&record)?;
        Ok(PipelineRun {
            host: host.clone(),
            paths,
            record,
            plugins,
            canceller: RunCanceller::default(),
            _lock: lock,
        })
    }

    pub fn record(&self) -> &RunRecord {
        &self.record
    }

    pub fn dir(&self) -> &Path {
        &self.paths.dir
    }

    pub fn canceller(&self) -> RunCanceller {
        self.canceller.clone()
    }

    /// Run every instance that can run; returns the final record. Must be
    /// called within a tokio runtime.
    pub async fn execute(
        mut self,
        events: Option<mpsc::UnboundedSender<PipelineEvent>>,
    ) -> anyhow::Result<RunRecord> {
        let emit = |e: PipelineEvent| {
            if let Some(tx) = &events {
                let _ = tx.send(e);
            }
        };
        let mut joins: JoinSet<(usize, anyhow::Result<JobRecord>)> = JoinSet::new();
        let mut controls: HashMap<usize, Arc<JobControl>> = HashMap::new();
        let mut cancelled = false;
        loop {
            if !cancelled && (self.canceller.is_cancelled() || self.paths.cancel_request().exists())
            {
                cancelled = true;
                for c in controls.values() {
                    c.cancel();
                }
            }
            let mut changed = self.settle(cancelled, &emit);
            if !cancelled {
                while joins.len() < self.record.workers {
                    let Some(i) = self.next_ready() else { break };
                    changed = true;
                    if let Some((control, handle)) = self.start(i, &emit) {
                        controls.insert(i, control);
                        joins.spawn(async move { (i, handle.wait().await) });
                    }
                }
            }
            if changed {
                self.save()?;
            }
            if joins.is_empty() {
                let waiting = self
                    .record
                    .instances
                    .iter()
                    .any(|i| i.status == InstanceStatus::Queued);
                if cancelled || !waiting {
                    break;
                }
            }
            tokio::select! {
                Some(joined) = joins.join_next() => {
                    let (i, result) = joined.context("pipeline job task panicked")?;
                    controls.remove(&i);
                    self.finished(i, result, cancelled, &emit);
                    self.save()?;
                }
                _ = tokio::time::sleep(TICK) => {}
                _ = self.canceller.notify.notified() => {}
            }
        }
        let (done, failed, blocked) = (
            self.record.count(InstanceStatus::Complete),
            self.record.count(InstanceStatus::Failed),
            self.record.count(InstanceStatus::Blocked),
        );
        let total = self.record.instances.len();
        self.record.status = if done == total {
            RunStatus::Complete
        } else if cancelled {
            RunStatus::Cancelled
        } else {
            RunStatus::Failed
        };
        self.record.message = Some(format!(
            "{done}/{total} complete, {failed} failed, {blocked} blocked{}",
            if cancelled { ", cancelled" } else { "" }
        ));
        self.record.ended_at = Some(Utc::now());
        let _ = std::fs::remove_file(self.paths.cancel_request());
        self.save()?;
        Ok(self.record)
    }

    fn save(&mut self) -> anyhow::Result<()> {
        self.record.updated_at = Utc::now();
        self.paths.save(&self.record)
    }

    /// Block instances whose needs cannot complete; queue those whose
    /// needs all completed. Returns whether anything changed. Once the run
    /// is cancelled, waiting instances stay waiting (a resume runs them).
    fn settle(&mut self, cancelled: bool, emit: &impl Fn(PipelineEvent)) -> bool {
        if cancelled {
            return false;
        }
        let mut changed = false;
        loop {
            let status: HashMap<String, InstanceStatus> = self
                .record
                .instances
                .iter()
                .map(|i| (i.name.clone(), i.status))
                .collect();
            let mut step = false;
            for inst in &mut self.record.instances {
                if inst.status != InstanceStatus::Waiting {
                    continue;
                }
                let bad = inst.needs.iter().find(|n| {
                    matches!(
                        status[n.as_str()],
                        InstanceStatus::Failed
                            | InstanceStatus::Blocked
                            | InstanceStatus::Cancelled
                    )
                });
                if let Some(n) = bad {
                    let reason = format!("needs {n}, which is {}", status[n.as_str()]);
                    inst.status = InstanceStatus::Blocked;
                    inst.message = Some(reason.clone());
                    emit(PipelineEvent::Blocked {
                        instance: inst.name.clone(),
                        title: inst.title(),
                        reason,
                    });
                    step = true;
                } else if inst
                    .needs
                    .iter()
                    .all(|n| status[n.as_str()] == InstanceStatus::Complete)
                {
                    inst.status = InstanceStatus::Queued;
                    step = true;
                }
            }
            if !step {
                return changed;
            }
            changed = true;
        }
    }

    /// The first queued instance whose backoff has passed.
    fn next_ready(&self) -> Option<usize> {
        let now = Utc::now();
        self.record.instances.iter().position(|i| {
            i.status == InstanceStatus::Queued && i.not_before.is_none_or(|t| t <= now)
        })
    }

    /// Start instance `i` as a job; on a setup error mark it failed.
    fn start(
        &mut self,
        i: usize,
        emit: &impl Fn(PipelineEvent),
    ) -> Option<(Arc<JobControl>, crate::JobHandle)> {
        let attempt = self.record.instances[i].attempts.len() as u32 + 1;
        let started_at = Utc::now();
        match self.spec_for(i, attempt) {
            Ok((spec, resumed_from)) => match self.host.start(spec) {
                Ok(handle) => {
                    let inst = &mut self.record.instances[i];
                    inst.status = InstanceStatus::Running;
                    inst.not_before = None;
                    inst.attempts.push(Attempt {
                        job_id: Some(handle.id.clone()),
                        status: JobStatus::Running,
                        failure: None,
                        message: None,
                        started_at,
                        ended_at: None,
                        resumed_from: resumed_from.clone(),
                    });
                    emit(PipelineEvent::Started {
                        instance: inst.name.clone(),
                        title: inst.title(),
                        job_id: handle.id.clone(),
                        attempt,
                        resumed_from,
                    });
                    return Some((handle.control(), handle));
                }
                Err(e) => self.setup_failed(i, started_at, format!("{e:#}"), emit),
            },
            Err(e) => self.setup_failed(i, started_at, format!("{e:#}"), emit),
        }
        None
    }

    fn setup_failed(
        &mut self,
        i: usize,
        started_at: chrono::DateTime<Utc>,
        message: String,
        emit: &impl Fn(PipelineEvent),
    ) {
        let inst = &mut self.record.instances[i];
        inst.attempts.push(Attempt {
            job_id: None,
            status: JobStatus::Failed,
            failure: Some(crate::store::FailureKind::Setup),
            message: Some(message.clone()),
            started_at,
            ended_at: Some(Utc::now()),
            resumed_from: None,
        });
        self.after_failure(i, false, emit);
    }

    /// The job spec of instance `i`: its pinned plugin, config, limits and
    /// grants, with the outputs of the instances it takes them from.
    fn spec_for(&self, i: usize, attempt: u32) -> anyhow::Result<(JobSpec, Option<String>)> {
        let inst = &self.record.instances[i];
        let plugin = self
            .plugins
            .get(&inst.plugin.path)
            .with_context(|| format!("plugin {} is not loaded", inst.plugin.path))?
            .clone();
        let mut spec = JobSpec::new(plugin);
        spec.experiment = self.record.experiment.clone();
        spec.config = inst.config.clone();
        let mut sandbox = Sandbox {
            limits: inst.limits.clone(),
            ..Default::default()
        };
        sandbox.grants.dirs = inst.dirs.clone();
        sandbox.grants.env = inst.env.clone();
        sandbox.grants.datasets = self.inputs(inst, &inst.datasets, Registry::Datasets)?;
        sandbox.grants.models = self.inputs(inst, &inst.models, Registry::Models)?;
        spec.sandbox = sandbox;
        spec.pipeline = Some(PipelineRef {
            run: self.record.id.clone(),
            instance: inst.name.clone(),
            attempt,
        });
        // Go on from the last checkpoint an earlier attempt saved.
        let mut resumed_from = None;
        // (A job whose directory its killed runner never finished has no record.)
        if let Some(Ok((rec, _))) = inst.last_job().map(|j| self.job(j)) {
            if let Some(ck) = rec.checkpoints.last() {
                spec.resume = Some((rec.id.clone(), Some(ck.name.clone())));
                resumed_from = Some(format!("{}:{}", rec.id, ck.name));
            }
        }
        Ok((spec, resumed_from))
    }

    /// A job of this run (they all are in the run's experiment).
    fn job(&self, id: &str) -> anyhow::Result<(JobRecord, crate::store::JobPaths)> {
        self.host.workspace().job(&self.record.experiment, id)
    }

    /// Registry references as given; stage inputs as the ids the upstream
    /// instance's job saved.
    fn inputs(
        &self,
        inst: &Instance,
        inputs: &[Input],
        reg: Registry,
    ) -> anyhow::Result<Vec<String>> {
        let ws = self.host.workspace();
        let mut out = Vec::new();
        for input in inputs {
            match input {
                Input::Registry(r) => out.push(r.clone()),
                Input::Stage { instance, name } => {
                    let up = self
                        .record
                        .instance(instance)
                        .with_context(|| format!("no instance `{instance}`"))?;
                    let job = up
                        .last_job()
                        .with_context(|| format!("{instance} has not run"))?;
                    let (rec, _) = self.job(job)?;
                    let saved = match reg {
                        Registry::Datasets => &rec.datasets,
                        Registry::Models => &rec.models,
                    };
                    let mut ids: Vec<String> = saved.clone();
                    if let Some(want) = name {
                        ids.retain(|id| {
                            ws.registry_entry(reg, id)
                                .is_ok_and(|e| e.is_some_and(|e| &e.name == want))
                        });
                    }
                    if ids.is_empty() {
                        let what = match name {
                            Some(n) => format!("a {} named `{n}`", reg.noun()),
                            None => format!("a {}", reg.noun()),
                        };
                        bail!(
                            "{} takes {what} from {instance}, whose job {} saved none",
                            inst.name,
                            rec.id
                        );
                    }
                    out.extend(ids);
                }
            }
        }
        Ok(out)
    }

    /// A job of instance `i` ended.
    fn finished(
        &mut self,
        i: usize,
        result: anyhow::Result<JobRecord>,
        cancelled: bool,
        emit: &impl Fn(PipelineEvent),
    ) {
        let inst = &mut self.record.instances[i];
        let attempt = inst
            .attempts
            .last_mut()
            .expect("a running instance has an attempt");
        match &result {
            Ok(rec) => update_attempt(attempt, rec),
            Err(e) => {
                attempt.status = JobStatus::Failed;
                attempt.failure = Some(crate::store::FailureKind::Crash);
                attempt.message = Some(format!("{e:#}"));
                attempt.ended_at = Some(Utc::now());
            }
        }
        let status = match attempt.status {
            JobStatus::Complete => InstanceStatus::Complete,
            JobStatus::Cancelled => InstanceStatus::Cancelled,
            _ => return self.after_failure(i, cancelled, emit),
        };
        let message = attempt.message.clone().unwrap_or_default();
        let (job_id, seconds) = (attempt.job_id.clone(), attempt.seconds());
        inst.status = status;
        inst.message = Some(message.clone());
        emit(PipelineEvent::Ended {
            instance: inst.name.clone(),
            title: inst.title(),
            status,
            message,
            job_id,
            seconds,
        });
    }

    /// The last attempt of `i` failed: retry it later, or fail it.
    fn after_failure(&mut self, i: usize, cancelled: bool, emit: &impl Fn(PipelineEvent)) {
        let inst = &mut self.record.instances[i];
        let attempt = inst.attempts.last().expect("attempt");
        let kind = attempt.failure;
        let message = attempt.message.clone().unwrap_or_default();
        let n = inst.attempts.len() as u32;
        let retryable = kind.is_some_and(|k| inst.retry.retry_on.contains(&k));
        if !cancelled && retryable && inst.retries_used < inst.retry.retries {
            inst.retries_used += 1;
            let delay = inst
                .retry
                .backoff
                .saturating_mul(1u32 << (inst.retries_used - 1).min(16));
            inst.status = InstanceStatus::Queued;
            inst.not_before =
                Some(Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default());
            inst.message = Some(format!(
                "attempt {n} failed ({}): {message}; retry {}/{} in {}",
                kind.map_or("?", |k| k.as_str()),
                inst.retries_used,
                inst.retry.retries,
                crate::sandbox::human_duration(delay)
            ));
            emit(PipelineEvent::Retrying {
                instance: inst.name.clone(),
                title: inst.title(),
                failed_attempt: n,
                delay,
                message,
            });
        } else {
            inst.status = if cancelled && attempt.status == JobStatus::Cancelled {
                InstanceStatus::Cancelled
            } else {
                InstanceStatus::Failed
            };
            inst.message = Some(match kind {
                Some(k) => format!(
                    "{message} ({k}{})",
                    if n > 1 {
                        format!(", after {n} attempts")
                    } else {
                        String::new()
                    }
                ),
                None => message.clone(),
            });
            emit(PipelineEvent::Ended {
                instance: inst.name.clone(),
                title: inst.title(),
                status: inst.status,
                message: inst.message.clone().unwrap_or_default(),
                job_id: attempt.job_id.clone(),
                seconds: attempt.seconds(),
            });
        }
    }
}

fn update_attempt(a: &mut Attempt, rec: &JobRecord) {
    a.status = rec.status;
    a.failure = rec.failure;
    a.message = rec.message.clone();
    a.ended_at = rec.ended_at;
}

fn paren(label: &str) -> String {
    if label.is_empty() {
        String::new()
    } else {
        format!(" ({label})")
    }
}

/// The live state of a running (or ended) instance's job, for status views.
#[derive(Debug, Clone)]
pub struct LiveJob {
    pub job: JobRecord,
    pub elapsed: Duration,
    /// Estimated time left, from progress so far (running jobs with progress > 0).
    pub eta: Option<Duration>,
    /// The latest value of each metric, by name (at most a few recent ones).
    pub latest_metrics: Vec<(String, f64)>,
}

/// Read the job of an instance's last attempt (jobs of a run are in its experiment).
pub fn live(ws: &crate::Workspace, experiment: &str, inst: &Instance) -> Option<LiveJob> {
    let (job, paths) = ws.job(experiment, inst.last_job()?).ok()?;
    let start = job.started_at.unwrap_or(job.created_at);
    let end = job.ended_at.unwrap_or_else(Utc::now);
    let elapsed = (end - start).to_std().unwrap_or_default();
    let eta = (job.status == JobStatus::Running && job.progress > 0.0 && job.progress < 100.0)
        .then(|| elapsed.mul_f64(f64::from(100.0 - job.progress) / f64::from(job.progress)));
    let latest_metrics = latest_metrics(&paths.metrics(), 4);
    Some(LiveJob {
        job,
        elapsed,
        eta,
        latest_metrics,
    })
}

/// The last value of up to `max` metrics, from the tail of `metrics.jsonl`.
fn latest_metrics(path: &PathBuf, max: usize) -> Vec<(String, f64)> {
    use std::io::{Read, Seek, SeekFrom};
    const TAIL: u64 = 16 << 10;
    let Ok(mut f) = File::open(path) else {
        return vec![];
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(TAIL)));
    let mut buf = String::new();
    if f.take(TAIL).read_to_string(&mut buf).is_err() {
        return vec![];
    }
    let mut out: Vec<(String, f64)> = Vec::new();
    for line in buf.lines().rev() {
        if let Ok(p) = serde_json::from_str::<crate::store::MetricPoint>(line) {
            if !out.iter().any(|(n, _)| *n == p.name) {
                out.push((p.name, p.value));
                if out.len() == max {
                    break;
                }
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}
