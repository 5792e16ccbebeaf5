//! Running a pipeline: opening a run (create or resume), the event loop
//! and persistence. What to do next is decided by the pure state machine
//! in `scheduler.rs`; jobs are described as [`JobRequest`]s and handed to
//! an [`Executor`] (a [`LocalExecutor`] on the run's [`Host`] by default).
//! Instances whose needs completed are queued; up to `workers` of them run
//! at once; a failed job is retried (with backoff) when its failure kind is
//! one the stage retries on, else its dependants are blocked while
//! independent branches go on. Every change is written to `run.json`
//! before anything else happens, so a killed runner loses at most the jobs
//! it was running (they read INTERRUPTED and are run again, from their last
//! checkpoint, by `resume`).

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;
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
pub use super::scheduler::PipelineEvent;
use super::scheduler::{self, Action, JobOutcome};
use crate::executor::{Executor, JobRequest, LocalExecutor, ResumePoint};
use crate::settings::Effective;
use crate::store::{JobRecord, JobStatus, PipelineRef, Registry, Workspace};
use crate::{Host, Sandbox};

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
    ws: Workspace,
    paths: RunPaths,
    record: RunRecord,
    executor: Arc<dyn Executor>,
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

        // Plugins are loaded once, into the executor that will run them.
        let local = LocalExecutor::new(host.clone());
        let mut plugins: HashMap<String, Arc<crate::Plugin>> = HashMap::new();
        let mut instances = Vec::new();
        for mut p in planned {
            let stage = &stages[p.stage];
            let ctx = || format!("stage `{}`", stage.name);
            let path = PipelineFile::plugin_path(&stage.spec.plugin, &base_dir, settings);
            let key = path_string(&path);
            let plugin = match plugins.get(&key) {
                Some(p) => p.clone(),
                None => {
                    let loaded = local.load(&path).with_context(ctx)?;
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
            // Secrets must resolve now, not fail each job later (the
            // values are resolved again, and never kept, by each job).
            let names = crate::secrets::needed(
                settings.secrets.iter().chain(&stage.spec.secrets),
                settings.http.iter().chain(&stage.http),
            );
            crate::secrets::Secrets::resolve(names, |n| std::env::var(n).ok(), ws.root())
                .with_context(ctx)?;
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
                http: settings.http.iter().chain(&stage.http).cloned().collect(),
                secrets: settings
                    .secrets
                    .iter()
                    .chain(&stage.spec.secrets)
                    .cloned()
                    .collect(),
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
        crate::store::durable::write_atomic(&paths.pipeline(), text.as_bytes())?;
        paths.save(&record)?;
        Ok(PipelineRun {
            ws: ws.clone(),
            paths,
            record,
            executor: Arc::new(local),
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
        let local = LocalExecutor::new(host.clone());
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
                scheduler::record_outcome(&mut a, &JobOutcome::from_record(&job));
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
                        scheduler::record_outcome(a, &JobOutcome::from_record(&rec));
                    }
                    if rec.status == JobStatus::Complete {
                        inst.status = InstanceStatus::Complete;
                        inst.message = rec.message.clone();
                    }
                }
            }
        }
        scheduler::reopen(&mut record);
        let mut checked: Vec<&str> = Vec::new();
        for inst in &record.instances {
            if inst.status == InstanceStatus::Complete {
                continue;
            }
            if !checked.contains(&inst.plugin.path.as_str()) {
                let plugin = local
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
                checked.push(&inst.plugin.path);
            }
        }
        if let Some(w) = workers {
            record.workers = w;
        }
        record.runner_pid = std::process::id();
        let _ = std::fs::remove_file(paths.cancel_request());
        paths.save(&record)?;
        Ok(PipelineRun {
            ws: ws.clone(),
            paths,
            record,
            executor: Arc::new(local),
            canceller: RunCanceller::default(),
            _lock: lock,
        })
    }

    /// Run the jobs with another executor (the default runs them on the
    /// [`Host`] the run was opened with, its plugins already loaded).
    pub fn with_executor(mut self, executor: Arc<dyn Executor>) -> Self {
        self.executor = executor;
        self
    }

    pub fn executor(&self) -> Arc<dyn Executor> {
        self.executor.clone()
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
        // Instance → its running job.
        let mut running: HashMap<usize, String> = HashMap::new();
        for (i, job) in self.reattach_live_jobs()? {
            running.insert(i, job.clone());
            let executor = self.executor.clone();
            joins.spawn(async move { (i, executor.wait(&job).await) });
        }
        let mut cancelled = false;
        loop {
            if !cancelled && (self.canceller.is_cancelled() || self.paths.cancel_request().exists())
            {
                cancelled = true;
                for job in running.values() {
                    // A job that cannot be told ends on its own; the run
                    // waits for it either way.
                    let _ = self.executor.cancel(job).await;
                }
            }
            let mut changed = false;
            loop {
                let actions =
                    scheduler::next_actions(&self.record, Utc::now(), running.len(), cancelled);
                if actions.is_empty() {
                    break;
                }
                changed = true;
                for action in actions {
                    let Action::Start { instance: i } = action else {
                        if let Some(e) = scheduler::apply(&mut self.record, &action) {
                            emit(e);
                        }
                        continue;
                    };
                    if let Some(job) = self.start(i, &emit).await {
                        running.insert(i, job.clone());
                        let executor = self.executor.clone();
                        joins.spawn(async move { (i, executor.wait(&job).await) });
                    }
                }
            }
            if changed {
                self.save()?;
            }
            if scheduler::is_done(&self.record, running.len(), cancelled) {
                break;
            }
            tokio::select! {
                Some(joined) = joins.join_next() => {
                    let (i, result) = joined.context("pipeline job task panicked")?;
                    running.remove(&i);
                    let now = Utc::now();
                    let outcome = match &result {
                        Ok(rec) => JobOutcome::from_record(rec),
                        Err(e) => JobOutcome::lost(format!("{e:#}"), now),
                    };
                    emit(scheduler::on_job_end(&mut self.record, i, &outcome, cancelled, now));
                    self.save()?;
                }
                _ = tokio::time::sleep(TICK) => {}
                _ = self.canceller.notify.notified() => {}
            }
        }
        scheduler::finish(&mut self.record, cancelled, Utc::now());
        let _ = std::fs::remove_file(self.paths.cancel_request());
        self.save()?;
        Ok(self.record)
    }

    /// Jobs of unfinished instances that still run under this run's
    /// executor (its previous runner was killed; the jobs were not): waited
    /// for again. Refused if such a job was placed by another executor.
    fn reattach_live_jobs(&mut self) -> anyhow::Result<Vec<(usize, String)>> {
        let mut out = Vec::new();
        for i in 0..self.record.instances.len() {
            let inst = &self.record.instances[i];
            if inst.status == InstanceStatus::Complete {
                continue;
            }
            let Some(Ok((rec, _))) = inst.last_job().map(|j| self.job(j)) else {
                continue;
            };
            // A job of this machine died with its runner (recovery marked it).
            let Some(placed) = rec.executor.as_ref().filter(|_| !rec.status.is_terminal()) else {
                continue;
            };
            if self.executor.kind() != Some(placed.kind.as_str()) {
                bail!(
                    "{}'s job {} is still {} as a {} job: resume with --executor {}, or cancel the job first",
                    inst.name,
                    rec.id,
                    rec.status,
                    placed.kind,
                    placed.kind
                );
            }
            if let Some(job) = scheduler::reattach(&mut self.record, i) {
                out.push((i, job));
            }
        }
        if !out.is_empty() {
            self.save()?;
        }
        Ok(out)
    }

    fn save(&mut self) -> anyhow::Result<()> {
        self.record.updated_at = Utc::now();
        self.paths.save(&self.record)
    }

    /// Start instance `i` as a job through the executor; returns its job
    /// id, or `None` (after recording a setup failure) if it could not start.
    async fn start(&mut self, i: usize, emit: &impl Fn(PipelineEvent)) -> Option<String> {
        let started_at = Utc::now();
        let submitted = match self.request_for(i, scheduler::next_attempt(&self.record, i)) {
            Ok((request, resumed_from)) => self
                .executor
                .submit(request)
                .await
                .map(|job| (job, resumed_from)),
            Err(e) => Err(e),
        };
        match submitted {
            Ok((job, resumed_from)) => {
                emit(scheduler::on_started(
                    &mut self.record,
                    i,
                    &job,
                    resumed_from,
                    started_at,
                ));
                Some(job)
            }
            Err(e) => {
                emit(scheduler::on_setup_failed(
                    &mut self.record,
                    i,
                    format!("{e:#}"),
                    started_at,
                    Utc::now(),
                ));
                None
            }
        }
    }

    /// The job request of instance `i`: its pinned plugin, config, limits
    /// and grants, with the outputs of the instances it takes them from,
    /// and the checkpoint to go on from (`JOB:CHECKPOINT`, if any).
    fn request_for(&self, i: usize, attempt: u32) -> anyhow::Result<(JobRequest, Option<String>)> {
        let inst = &self.record.instances[i];
        let mut sandbox = Sandbox {
            limits: inst.limits.clone(),
            ..Default::default()
        };
        sandbox.grants.dirs = inst.dirs.clone();
        sandbox.grants.env = inst.env.clone();
        sandbox.grants.http = inst.http.clone();
        sandbox.grants.secrets = inst.secrets.clone();
        sandbox.grants.datasets = self.inputs(inst, &inst.datasets, Registry::Datasets)?;
        sandbox.grants.models = self.inputs(inst, &inst.models, Registry::Models)?;
        // Go on from the last checkpoint an earlier attempt saved.
        // (A job whose directory its killed runner never finished has no record.)
        let mut resume = None;
        if let Some(Ok((rec, _))) = inst.last_job().map(|j| self.job(j)) {
            if let Some(ck) = rec.checkpoints.last() {
                resume = Some(ResumePoint::new(rec.id.clone(), Some(ck.name.clone())));
            }
        }
        let resumed_from = resume
            .as_ref()
            .map(|r| format!("{}:{}", r.job, r.checkpoint.as_deref().unwrap_or_default()));
        let request = JobRequest::new(inst.plugin.path.clone(), inst.plugin.blake3.clone())
            .with_experiment(self.record.experiment.clone())
            .with_config(inst.config.clone())
            .with_sandbox(sandbox)
            .with_resume(resume)
            .with_pipeline(Some(PipelineRef {
                run: self.record.id.clone(),
                instance: inst.name.clone(),
                attempt,
            }));
        Ok((request, resumed_from))
    }

    /// A job of this run (they all are in the run's experiment).
    fn job(&self, id: &str) -> anyhow::Result<(JobRecord, crate::store::JobPaths)> {
        self.ws.job(&self.record.experiment, id)
    }

    /// Registry references as given; stage inputs as the ids the upstream
    /// instance's job saved.
    fn inputs(
        &self,
        inst: &Instance,
        inputs: &[Input],
        reg: Registry,
    ) -> anyhow::Result<Vec<String>> {
        let ws = &self.ws;
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
}

fn paren(label: &str) -> String {
    if label.is_empty() {
        String::new()
    } else {
        format!(" ({label})")
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::executor::BoxFuture;

    /// Records every request, then hands it to the local executor.
    struct Recording {
        inner: Arc<dyn Executor>,
        seen: Mutex<Vec<String>>,
    }

    impl Executor for Recording {
        fn submit(&self, request: JobRequest) -> BoxFuture<'_, anyhow::Result<String>> {
            let json = serde_json::to_string(&request).unwrap();
            self.seen.lock().unwrap().push(json);
            self.inner.submit(request)
        }
        fn status<'a>(&'a self, job: &'a str) -> BoxFuture<'a, anyhow::Result<JobStatus>> {
            self.inner.status(job)
        }
        fn wait<'a>(&'a self, job: &'a str) -> BoxFuture<'a, anyhow::Result<JobRecord>> {
            self.inner.wait(job)
        }
        fn cancel<'a>(&'a self, job: &'a str) -> BoxFuture<'a, anyhow::Result<()>> {
            self.inner.cancel(job)
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_runner_hands_serialisable_requests_to_its_executor() {
        let guests = Path::new(env!("CARGO_MANIFEST_DIR")).join("../guests/dist/rust");
        assert!(
            guests.join("datagen.wasm").exists(),
            "{} is missing: run scripts/build-guests.sh",
            guests.display()
        );
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("ws");
        let host = Host::with_cache(Workspace::open(&root).unwrap(), None).unwrap();
        let file = dir.path().join("p.toml");
        std::fs::write(
            &file,
            format!(
                "name = \"p\"\n[stages.gen]\nplugin = \"{}\"\nconfig = {{ rows = 20 }}\nmatrix = {{ seed = [1, 2] }}\n",
                guests.join("datagen.wasm").display()
            ),
        )
        .unwrap();
        let settings = crate::Settings::load(&root)
            .unwrap()
            .effective(&root, None)
            .unwrap();
        let run = PipelineRun::create(&host, &file, &settings, Some(1)).unwrap();
        let recording = Arc::new(Recording {
            inner: run.executor(),
            seen: Mutex::default(),
        });
        let run = run.with_executor(recording.clone());
        let (tx, mut rx) = mpsc::unbounded_channel();
        let rec = run.execute(Some(tx)).await.unwrap();
        assert_eq!(rec.status, RunStatus::Complete, "{:?}", rec.message);
        let seen = recording.seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 2);
        let first: JobRequest = serde_json::from_str(&seen[0]).unwrap();
        let inst = &rec.instances[0];
        assert_eq!(first.blake3, inst.plugin.blake3);
        assert_eq!(first.config["seed"], 1);
        let p = first.pipeline.unwrap();
        assert_eq!(
            (p.run, p.instance, p.attempt),
            (rec.id.clone(), "gen#1".into(), 1)
        );
        let mut kinds = vec![];
        while let Ok(e) = rx.try_recv() {
            kinds.push(
                serde_json::to_value(&e).unwrap()["event"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
        }
        assert_eq!(kinds, ["started", "ended", "started", "ended"]);
    }
}
