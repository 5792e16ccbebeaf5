//! The workspace: a human-readable, crash-safe job store on disk.
//!
//! ```text
//! <workspace>/
//!   experiments/<exp>/jobs/<job-id>/
//!       job.json        snapshot of the job record, replaced atomically
//!       output.log      append-only log (guest log calls, stdout, stderr)
//!       metrics.jsonl   append-only metric points
//!       artifacts/ checkpoints/ evals/
//!       work/           the guest's /work while the job runs
//!       .lock           held (flock) by the host process running the job
//!       .ended          the terminal record is durable (recovery skips the job
//!                       while job.json is unchanged)
//!   models/<id>/{files/, model.json}
//!   datasets/<id>/{files/, dataset.json}
//! ```
//!
//! The host is the only writer. Anything stored is built under a `.tmp-*`
//! name and renamed into place; records are written whole (temp + rename).
//! A job whose `.lock` is free while its record says RUNNING belonged to a
//! host that died: [`Workspace::open`] marks it INTERRUPTED.

pub mod digest;
pub mod dirs;
pub mod durable;
mod error;
pub mod import;
pub mod ingest;
pub mod record;
pub mod tree;
pub mod verify;

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use chrono::Utc;

pub use error::{StoreError, StoreResult};
pub use record::*;

/// The job records of a workspace, and those that could not be read.
#[derive(Debug, Default)]
pub struct JobScan {
    pub jobs: Vec<JobRecord>,
    pub unreadable: Vec<Unreadable>,
}

/// A record file that exists but cannot be read or parsed.
#[derive(Debug, Clone)]
pub struct Unreadable {
    pub path: PathBuf,
    pub error: String,
}

/// A workspace root.
#[derive(Debug, Clone)]
pub struct Workspace {
    root: PathBuf,
}

/// The paths of one job.
#[derive(Debug, Clone)]
pub struct JobPaths {
    pub dir: PathBuf,
}

impl JobPaths {
    pub fn record(&self) -> PathBuf {
        self.dir.join("job.json")
    }
    pub fn log(&self) -> PathBuf {
        self.dir.join("output.log")
    }
    pub fn metrics(&self) -> PathBuf {
        self.dir.join("metrics.jsonl")
    }
    pub fn artifacts(&self) -> PathBuf {
        self.dir.join("artifacts")
    }
    pub fn checkpoints(&self) -> PathBuf {
        self.dir.join("checkpoints")
    }
    pub fn evals(&self) -> PathBuf {
        self.dir.join("evals")
    }
    pub fn work(&self) -> PathBuf {
        self.dir.join("work")
    }
    pub fn lock(&self) -> PathBuf {
        self.dir.join(".lock")
    }
    /// Written by `labhost cancel` (another process); the job's host polls it.
    pub fn cancel_request(&self) -> PathBuf {
        self.dir.join(".cancel")
    }
    /// Rewritten every few seconds by the host running an executor's job
    /// ([`crate::heartbeat`]): how other machines tell it is alive.
    pub fn heartbeat(&self) -> PathBuf {
        self.dir.join(".heartbeat")
    }
    /// The job's request, as an executor's submitter wrote it for the node
    /// that runs it.
    pub fn executor_request(&self) -> PathBuf {
        self.dir.join("request.json")
    }
    /// What the executor itself printed (e.g. Slurm's batch output).
    pub fn executor_output(&self) -> PathBuf {
        self.dir.join("executor.out")
    }
    /// Created once the job's terminal record is durable, holding the
    /// record file's identity (inode, size, mtime, ctime): the recovery scan
    /// of [`Workspace::open`] then skips the job without reading its record,
    /// unless the record was rewritten since.
    pub fn ended_marker(&self) -> PathBuf {
        self.dir.join(".ended")
    }
    /// Mark the job as ended (best effort: without the marker the recovery
    /// scan reads the record, which says the same).
    pub fn mark_ended(&self) {
        if let Some(stamp) = record_stamp(&self.record()) {
            let _ = fs::write(self.ended_marker(), stamp);
        }
    }
    /// True if the job ended and its record is the one it ended with.
    pub fn has_ended_marker(&self) -> bool {
        match (
            fs::read_to_string(self.ended_marker()),
            record_stamp(&self.record()),
        ) {
            (Ok(marker), Some(stamp)) => marker == stamp,
            _ => false,
        }
    }
}

/// Which registry: models or datasets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registry {
    Models,
    Datasets,
}

impl Registry {
    pub fn dir_name(self) -> &'static str {
        match self {
            Registry::Models => "models",
            Registry::Datasets => "datasets",
        }
    }
    pub fn record_name(self) -> &'static str {
        match self {
            Registry::Models => "model.json",
            Registry::Datasets => "dataset.json",
        }
    }
    pub fn noun(self) -> &'static str {
        match self {
            Registry::Models => "model",
            Registry::Datasets => "dataset",
        }
    }
}

/// Experiment names follow the same rules as stored names.
pub fn check_experiment(name: &str) -> anyhow::Result<()> {
    crate::names::check_name("experiment", name).map_err(anyhow::Error::msg)
}

impl Workspace {
    /// Open (creating if needed) the workspace at `root`, and mark jobs
    /// whose host died as INTERRUPTED.
    pub fn open(root: impl Into<PathBuf>) -> anyhow::Result<Self> {
        let root = root.into();
        for sub in ["experiments", "models", "datasets"] {
            fs::create_dir_all(root.join(sub))
                .with_context(|| format!("cannot create workspace at {}", root.display()))?;
        }
        let root = root.canonicalize()?;
        let ws = Workspace { root };
        ws.recover_interrupted()?;
        ws.empty_trash();
        Ok(ws)
    }

    /// Where trees being removed wait (`<root>/.trash`).
    fn trash(&self) -> PathBuf {
        self.root.join(".trash")
    }

    /// Remove a tree a job left (its `/work`): first moved into the trash
    /// (one rename, so the job directory is clean at once), then removed.
    /// If the removal fails, the tree stays in the trash and the next
    /// [`Workspace::open`] tries again.
    pub fn discard_tree(&self, path: &Path) -> std::io::Result<()> {
        let target = match self.move_to_trash(path) {
            Ok(None) => return Ok(()),
            Ok(Some(moved)) => moved,
            Err(_) => path.to_owned(),
        };
        tree::remove_tree(&target)
    }

    /// Move `path` (a file or tree inside the workspace) into the trash
    /// with one rename, so it is gone from where readers look at once;
    /// `None` if it does not exist. The caller removes the returned path;
    /// if it cannot, the next [`Workspace::open`] does.
    pub fn move_to_trash(&self, path: &Path) -> std::io::Result<Option<PathBuf>> {
        if path.symlink_metadata().is_err() {
            return Ok(None);
        }
        let trash = self.trash();
        let _ = fs::create_dir(&trash);
        let name = format!(
            "{}-{:016x}",
            path.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            fastrand::u64(..)
        );
        let moved = trash.join(name);
        fs::rename(path, &moved)?;
        Ok(Some(moved))
    }

    /// Remove what earlier removals left in the trash (best effort).
    fn empty_trash(&self) {
        let Ok(entries) = fs::read_dir(self.trash()) else {
            return;
        };
        for entry in entries.flatten() {
            let _ = tree::remove_tree(&entry.path());
        }
    }

    /// `$LABHOST_HOME`, else `./labhost-workspace`.
    pub fn default_root() -> PathBuf {
        std::env::var_os("LABHOST_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("labhost-workspace"))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn job_paths(&self, experiment: &str, id: &str) -> JobPaths {
        JobPaths {
            dir: self
                .root
                .join("experiments")
                .join(experiment)
                .join("jobs")
                .join(id),
        }
    }

    /// Path relative to the root, `/`-separated, for records.
    pub fn relative(&self, p: &Path) -> String {
        p.strip_prefix(&self.root)
            .unwrap_or(p)
            .to_string_lossy()
            .replace('\\', "/")
    }

    /// Create a fresh job directory with a new id and take its lock.
    pub fn create_job_dir(&self, experiment: &str) -> anyhow::Result<(String, JobPaths, File)> {
        check_experiment(experiment)?;
        let jobs = self.root.join("experiments").join(experiment).join("jobs");
        let (id, dir) = dirs::create_unique(&jobs, "job directory")?;
        let paths = JobPaths { dir };
        for d in [
            paths.artifacts(),
            paths.checkpoints(),
            paths.evals(),
            paths.work(),
        ] {
            fs::create_dir(d)?;
        }
        let lock =
            dirs::try_lock(&paths.lock())?.with_context(|| format!("cannot lock new job {id}"))?;
        Ok((id, paths, lock))
    }

    /// Create a job directory holding `record` as QUEUED (its id filled
    /// in): the job of an executor that runs it later, elsewhere, in this
    /// directory ([`Workspace::adopt_queued_job`]). Jobs listings, the
    /// dashboard and webhooks see it at once.
    pub fn create_queued_job(&self, record: &mut JobRecord) -> anyhow::Result<JobPaths> {
        let (id, paths, lock) = self.create_job_dir(&record.experiment)?;
        record.id = id;
        record.status = JobStatus::Queued;
        let written = serde_json::to_vec_pretty(&*record)
            .map_err(anyhow::Error::from)
            .and_then(|bytes| Ok(durable::write_atomic(&paths.record(), &bytes)?));
        if let Err(e) = written {
            let _ = tree::remove_tree(&paths.dir);
            return Err(e.context(format!(
                "cannot write the record of queued job {}",
                record.id
            )));
        }
        drop(lock);
        Ok(paths)
    }

    /// Take over a QUEUED job's directory to run it here: its lock and its
    /// queued record. Refused if it is not queued (it ran, or ended, or
    /// another host holds it).
    pub fn adopt_queued_job(
        &self,
        experiment: &str,
        id: &str,
    ) -> anyhow::Result<(JobPaths, File, JobRecord)> {
        check_experiment(experiment)?;
        let paths = self.job_paths(experiment, id);
        let rec: JobRecord = read_json_opt(&paths.record())?
            .with_context(|| format!("no queued job {id} in experiment {experiment}"))?;
        let lock = dirs::try_lock(&paths.lock())?
            .with_context(|| format!("job {id} is held by another host process"))?;
        // Under the lock: the record as it is now.
        let rec = read_json_opt::<JobRecord>(&paths.record())?.unwrap_or(rec);
        if rec.status != JobStatus::Queued {
            bail!(
                "job {id} is {}, not QUEUED (it started or ended already)",
                rec.status
            );
        }
        Ok((paths, lock, rec))
    }

    /// End a job that its host will not end: an executor found it gone
    /// (its node lost, cancelled while queued). Does nothing and returns
    /// the record as it is if the job ended meanwhile.
    pub fn end_job(
        &self,
        experiment: &str,
        id: &str,
        status: JobStatus,
        failure: Option<FailureKind>,
        message: String,
    ) -> anyhow::Result<JobRecord> {
        let paths = self.job_paths(experiment, id);
        let mut rec: JobRecord = read_json_opt(&paths.record())?
            .with_context(|| format!("no job {id} in experiment {experiment}"))?;
        if rec.status.is_terminal() {
            return Ok(rec);
        }
        rec.status = status;
        rec.failure = failure;
        rec.message = Some(message);
        rec.ended_at = Some(Utc::now());
        durable::write_atomic(&paths.record(), &serde_json::to_vec_pretty(&rec)?)?;
        paths.mark_ended();
        self.remove_leftovers(id, &paths);
        Ok(rec)
    }

    /// All job directories, as (experiment, id, paths).
    pub fn job_dirs(&self) -> anyhow::Result<Vec<(String, String, JobPaths)>> {
        let mut out = Vec::new();
        for exp in read_dir_names(&self.root.join("experiments"))? {
            for id in read_dir_names(&self.root.join("experiments").join(&exp).join("jobs"))? {
                let paths = self.job_paths(&exp, &id);
                out.push((exp.clone(), id, paths));
            }
        }
        Ok(out)
    }

    /// Every job record (optionally of one experiment), oldest first.
    /// Unreadable records are skipped (see [`Workspace::scan_jobs`]).
    pub fn jobs(&self, experiment: Option<&str>) -> anyhow::Result<Vec<JobRecord>> {
        Ok(self.scan_jobs(experiment)?.jobs)
    }

    /// Every job record (optionally of one experiment), oldest first, and
    /// the records that could not be read: one bad record never makes the
    /// rest of the workspace unreadable.
    pub fn scan_jobs(&self, experiment: Option<&str>) -> anyhow::Result<JobScan> {
        let mut scan = JobScan::default();
        for (exp, _, paths) in self.job_dirs()? {
            if experiment.is_some_and(|e| e != exp) {
                continue;
            }
            // A job directory without a record yet is being created: skip it.
            match read_json_opt::<JobRecord>(&paths.record()) {
                Ok(Some(rec)) => scan.jobs.push(rec),
                Ok(None) => {}
                Err(e) => scan.unreadable.push(Unreadable {
                    path: paths.record(),
                    error: format!("{e:#}"),
                }),
            }
        }
        scan.jobs
            .sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        Ok(scan)
    }

    /// The job `id` of `experiment`, read directly (no search).
    pub fn job(&self, experiment: &str, id: &str) -> anyhow::Result<(JobRecord, JobPaths)> {
        let paths = self.job_paths(experiment, id);
        let rec = read_json_opt::<JobRecord>(&paths.record())?
            .with_context(|| format!("no job `{id}` in experiment `{experiment}`"))?;
        Ok((rec, paths))
    }

    /// Find a job by id (or unique id prefix).
    pub fn find_job(&self, id: &str) -> anyhow::Result<(JobRecord, JobPaths)> {
        let all = self.job_dirs()?;
        let (_, _, paths) = dirs::pick(&all, |(_, jid, _)| jid, id, "job", &self.root)?;
        let rec = read_json_opt::<JobRecord>(&paths.record())?
            .with_context(|| format!("job `{id}` has no record yet"))?;
        Ok((rec, paths.clone()))
    }

    pub fn registry_dir(&self, reg: Registry) -> PathBuf {
        self.root.join(reg.dir_name())
    }

    fn registry_records<T: serde::de::DeserializeOwned>(
        &self,
        reg: Registry,
    ) -> anyhow::Result<Vec<T>> {
        let dir = self.registry_dir(reg);
        let mut out = Vec::new();
        for id in read_dir_names(&dir)? {
            // An unreadable entry is skipped; `labhost verify` reports it.
            if let Ok(Some(rec)) = read_json_opt::<T>(&dir.join(&id).join(reg.record_name())) {
                out.push(rec);
            }
        }
        Ok(out)
    }

    /// Model and dataset records that exist but cannot be read (the
    /// listings skip them).
    pub fn unreadable_entries(&self) -> anyhow::Result<Vec<Unreadable>> {
        let mut out = Vec::new();
        for reg in [Registry::Models, Registry::Datasets] {
            let dir = self.registry_dir(reg);
            for id in read_dir_names(&dir)? {
                let path = dir.join(&id).join(reg.record_name());
                if let Err(e) = read_json_opt::<EntryRef>(&path) {
                    out.push(Unreadable {
                        path,
                        error: format!("{e:#}"),
                    });
                }
            }
        }
        Ok(out)
    }

    /// Every model, oldest first.
    pub fn models(&self) -> anyhow::Result<Vec<ModelRecord>> {
        let mut v: Vec<ModelRecord> = self.registry_records(Registry::Models)?;
        v.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        Ok(v)
    }

    /// Every dataset, oldest first.
    pub fn datasets(&self) -> anyhow::Result<Vec<DatasetRecord>> {
        let mut v: Vec<DatasetRecord> = self.registry_records(Registry::Datasets)?;
        v.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        Ok(v)
    }

    /// The registry entry `id` (its name and the job that saved it), or
    /// `None` if there is none. Reads one record.
    pub fn registry_entry(&self, reg: Registry, id: &str) -> anyhow::Result<Option<EntryRef>> {
        if crate::names::check_name("id", id).is_err() {
            return Ok(None);
        }
        let path = self.registry_dir(reg).join(id).join(reg.record_name());
        read_json_opt::<EntryRef>(&path)
    }

    /// Any entry with this id or name, published or not (for messages).
    pub fn find_entry(&self, reg: Registry, reference: &str) -> Option<EntryRef> {
        if let Ok(Some(e)) = self.registry_entry(reg, reference) {
            return Some(e);
        }
        let prefix = format!("{reference}-");
        read_dir_names(&self.registry_dir(reg))
            .ok()?
            .into_iter()
            .filter(|id| id.starts_with(&prefix))
            .filter_map(|id| self.registry_entry(reg, &id).ok().flatten())
            .find(|e| e.name == reference)
    }

    /// The stored files of registry entry `id`, if it can be read.
    pub fn registry_files(&self, reg: Registry, id: &str) -> Option<StoredRecord> {
        #[derive(serde::Deserialize)]
        struct Files {
            files: StoredRecord,
        }
        if crate::names::check_name("id", id).is_err() {
            return None;
        }
        let path = self.registry_dir(reg).join(id).join(reg.record_name());
        read_json_opt::<Files>(&path)
            .ok()
            .flatten()
            .map(|f| f.files)
    }

    /// Whether the entry was published: the job that saved it completed.
    /// Entries of FAILED, CANCELLED, INTERRUPTED or still running jobs are
    /// reachable by id only.
    pub fn is_published(&self, entry: &EntryRef) -> bool {
        self.job(&entry.experiment, &entry.job_id)
            .is_ok_and(|(rec, _)| rec.status == JobStatus::Complete)
    }

    /// Resolve a model or dataset reference: an exact id, else the one
    /// published entry with that name. A name that several published
    /// entries share is refused (listing their ids), so that no job can
    /// shadow a name others resolve. Only the entries whose id could carry
    /// the name (`<name>-<job id>`) are read.
    pub fn resolve(&self, reg: Registry, reference: &str) -> anyhow::Result<EntryRef> {
        let noun = reg.noun();
        if let Some(e) = self.registry_entry(reg, reference)? {
            return Ok(e);
        }
        let prefix = format!("{reference}-");
        let mut published = Vec::new();
        let mut unpublished = Vec::new();
        for id in read_dir_names(&self.registry_dir(reg))? {
            if !id.starts_with(&prefix) {
                continue;
            }
            let Ok(Some(e)) = self.registry_entry(reg, &id) else {
                continue;
            };
            if e.name != reference {
                continue;
            }
            if self.is_published(&e) {
                published.push(e);
            } else {
                unpublished.push(e);
            }
        }
        // A version replaced by a later published one (`datasets append`)
        // no longer answers to the name.
        let replaced: Vec<String> = published
            .iter()
            .filter_map(|e| e.supersedes.clone())
            .collect();
        published.retain(|e| !replaced.contains(&e.id));
        match published.len() {
            1 => Ok(published.remove(0)),
            0 if !unpublished.is_empty() => bail!(
                "no published {noun} `{reference}`: {} saved by job(s) that did not complete ({}); give an id to use one",
                if unpublished.len() == 1 { "one was" } else { "some were" },
                unpublished.iter().map(|e| e.id.as_str()).collect::<Vec<_>>().join(", ")
            ),
            0 => bail!(
                "no {noun} `{reference}` in workspace {}",
                self.root.display()
            ),
            n => bail!(
                "{noun} name `{reference}` is ambiguous: {n} published entries have it ({}); give an id",
                published.iter().map(|e| e.id.as_str()).collect::<Vec<_>>().join(", ")
            ),
        }
    }

    /// Ask the host running job `id` (in any process) to cancel it.
    pub fn request_cancel(&self, id: &str) -> anyhow::Result<JobRecord> {
        let (rec, paths) = self.find_job(id)?;
        if rec.status.is_terminal() {
            bail!("job {} already ended ({})", rec.id, rec.status);
        }
        // An executor's job may be queued, or on another node (whose lock
        // this machine cannot see): the cancel file reaches it either way.
        if judged_by_lock(&rec) && !dirs::is_locked(&paths.lock()) {
            bail!(
                "job {} is {} but no host is running it (it will be marked INTERRUPTED)",
                rec.id,
                rec.status
            );
        }
        dirs::request_cancel(&paths.cancel_request())
            .with_context(|| format!("cannot request the cancel of job {}", rec.id))?;
        Ok(rec)
    }

    /// Mark RUNNING/QUEUED jobs whose host is gone as INTERRUPTED.
    ///
    /// The job's lock is taken *before* its record is read for the
    /// decision: a host that ends the job writes its final record while it
    /// still holds the lock, so a record read under the lock is the latest,
    /// and a job that just completed is never rewritten as INTERRUPTED.
    /// An unreadable record is left alone (and reported by `scan_jobs`).
    pub fn recover_interrupted(&self) -> anyhow::Result<Vec<String>> {
        let mut recovered = Vec::new();
        for (_, id, paths) in self.job_dirs()? {
            // An ended job never runs again: one stat instead of a record read.
            if paths.has_ended_marker() {
                continue;
            }
            // Cheap first look: most jobs are terminal.
            match read_json_opt::<JobRecord>(&paths.record()) {
                Ok(Some(rec)) if !rec.status.is_terminal() && judged_by_lock(&rec) => {}
                _ => continue,
            }
            let Ok(lock) = File::open(paths.lock()) else {
                continue;
            };
            if lock.try_lock().is_err() {
                continue; // a live host holds it
            }
            // Under the lock: the record as its host last wrote it.
            let Ok(Some(mut rec)) = read_json_opt::<JobRecord>(&paths.record()) else {
                continue;
            };
            if rec.status.is_terminal() || !judged_by_lock(&rec) {
                continue;
            }
            rec.status = JobStatus::Interrupted;
            rec.failure = Some(FailureKind::Interrupted);
            rec.ended_at = Some(Utc::now());
            rec.message = Some(format!(
                "the host process (pid {}) died while the job was {}; found at {}",
                rec.host_pid,
                if rec.started_at.is_some() {
                    "running"
                } else {
                    "queued"
                },
                Utc::now().format("%Y-%m-%d %H:%M:%S UTC")
            ));
            durable::write_atomic(&paths.record(), &serde_json::to_vec_pretty(&rec)?)?;
            paths.mark_ended();
            self.remove_leftovers(&id, &paths);
            drop(lock);
            recovered.push(id);
        }
        Ok(recovered)
    }
}

impl Workspace {
    /// Remove the half-written temp files of a job whose host died: nothing
    /// lists them, and nobody else writes them.
    fn remove_leftovers(&self, id: &str, paths: &JobPaths) {
        let job_dirs = [
            paths.dir.clone(),
            paths.artifacts(),
            paths.checkpoints(),
            paths.evals(),
        ];
        let in_job = job_dirs.iter().map(|d| (d.clone(), None));
        let registries = [Registry::Models, Registry::Datasets]
            .map(|r| (self.registry_dir(r), Some(format!("-{id}-"))));
        for (dir, must_contain) in in_job.chain(registries) {
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with(".tmp-")
                    && must_contain
                        .as_ref()
                        .is_none_or(|m| name.contains(m.as_str()))
                {
                    durable::discard(&entry.path());
                }
            }
        }
    }
}

/// This machine's name (recorded in every job it runs).
pub fn hostname() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

/// Whether a job's liveness is this machine's `flock` to decide: jobs it
/// created and ran itself. A job an executor placed is queued with no host
/// yet, or runs on a node whose locks `flock` here does not see (NFS does
/// not promise them): the executor decides from the job's heartbeat and
/// its own view ([`crate::slurm`]).
pub fn judged_by_lock(rec: &JobRecord) -> bool {
    rec.executor.is_none() || (rec.status == JobStatus::Running && rec.hostname == hostname())
}

/// Whether a job may still be running: its host holds its lock, or it is
/// an executor's job (queued, or on a node whose lock is not visible here)
/// that has not ended. Removal and gc leave such jobs alone.
pub fn may_be_running(rec: &JobRecord, paths: &JobPaths) -> bool {
    !rec.status.is_terminal() && (!judged_by_lock(rec) || dirs::is_locked(&paths.lock()))
}

/// Identity of a record file as it is on disk now (any rewrite changes it:
/// an atomic write makes a new inode, an in-place one the size or times).
fn record_stamp(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let m = fs::metadata(path).ok()?;
    Some(format!(
        "{} {} {}.{} {}.{}\n",
        m.ino(),
        m.size(),
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec()
    ))
}

/// Names of the visible (non-dot) subdirectories of `dir`; empty if absent.
fn read_dir_names(dir: &Path) -> anyhow::Result<Vec<String>> {
    let mut names = Vec::new();
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(names),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
    };
    for entry in rd {
        let entry = entry?;
        if !entry.file_type()?.is_dir() {
            continue;
        }
        if let Some(name) = entry.file_name().to_str() {
            if !name.starts_with('.') {
                names.push(name.to_owned());
            }
        }
    }
    names.sort();
    Ok(names)
}

/// Read a JSON record; `None` if the file does not exist.
pub fn read_json_opt<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<Option<T>> {
    match fs::read(path) {
        Ok(bytes) => {
            Ok(Some(serde_json::from_slice(&bytes).with_context(|| {
                format!("corrupt record {}", path.display())
            })?))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}
