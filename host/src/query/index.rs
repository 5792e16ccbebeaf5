//! The job index: for every job of a workspace, the fields a
//! [`JobQuery`] filters and sorts on ([`JobKey`]), so that a query sorts
//! keys and reads only the records of its page.
//!
//! The records stay the source of truth; the index is a cache of them,
//! rebuilt from them whenever it cannot be trusted:
//!
//! - It lives in memory (one per workspace and process) and in
//!   `<workspace>/.cache/jobs.index`, written (temp + rename) at most every
//!   few seconds when it changed; a missing, unreadable or older file is
//!   ignored and the index rebuilt by reading every record once.
//! - Before each use it is refreshed: the experiments are listed; a jobs
//!   directory is listed again unless its mtime is the one it had when last
//!   listed *and* that mtime was settled then (older than [`SETTLE`], so a
//!   change in the same timestamp tick cannot hide); new job directories
//!   are read, removed ones dropped. Records of jobs that had not ended
//!   (and directories without a readable record yet) are read again every
//!   time; an ended job's key fields never change, so its record is not.
//! - A record on a query's page is read from its file; one that is gone or
//!   unreadable by then is left out and read again at the next refresh.
//!
//! A change made in place to an ended job's record (by hand) is not seen
//! until the index is rebuilt: delete the file, or set
//! `LABHOST_JOB_INDEX=off` to read every record.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{JobFields, JobQuery, SortKey};
use crate::store::{read_json_opt, JobRecord, JobStatus, Unreadable, Workspace};

/// The index file, under `<workspace>/.cache/`.
pub const FILE: &str = "jobs.index";
/// Bumped whenever the file's layout or the meaning of a key changes.
const VERSION: u32 = 1;
/// A jobs directory whose mtime was at least this old when it was listed
/// is trusted while its mtime stays the same (mtimes are coarse: a change
/// in the same tick as the listing would not move it).
pub const SETTLE: Duration = Duration::from_secs(2);
/// The file is written at most this often (when the index changed).
const SAVE_EVERY: Duration = Duration::from_secs(5);

/// A plugin as queries see it (shared by the jobs that ran it).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PluginName {
    pub name: String,
    pub path: String,
}

/// What a query needs of one job.
#[derive(Debug, Clone, PartialEq)]
pub struct JobKey {
    pub id: String,
    /// The experiment directory the job is in.
    dir: Arc<str>,
    /// The experiment its record names (the same, unless edited).
    experiment: Arc<str>,
    pub status: JobStatus,
    pub plugin: Arc<PluginName>,
    pub pipeline_run: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub progress: f32,
}

impl JobKey {
    /// The experiment directory holding the job.
    pub fn dir(&self) -> &str {
        &self.dir
    }
}

impl JobFields for JobKey {
    fn id(&self) -> &str {
        &self.id
    }
    fn experiment(&self) -> &str {
        &self.experiment
    }
    fn status(&self) -> JobStatus {
        self.status
    }
    fn plugin_name(&self) -> &str {
        &self.plugin.name
    }
    fn plugin_path(&self) -> &str {
        &self.plugin.path
    }
    fn pipeline_run(&self) -> Option<&str> {
        self.pipeline_run.as_deref()
    }
    fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }
    fn started_at(&self) -> Option<DateTime<Utc>> {
        self.started_at
    }
    fn ended_at(&self) -> Option<DateTime<Utc>> {
        self.ended_at
    }
    fn progress(&self) -> f32 {
        self.progress
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Entry {
    Key(JobKey),
    /// A directory without a record yet (a job being created).
    Pending,
    /// A record that cannot be read: where, and why.
    Unreadable(PathBuf, String),
}

/// A jobs directory's mtime when it was listed, and when (ns since the
/// epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Listing {
    mtime: i64,
    at: i64,
}

impl Listing {
    fn settled(&self) -> bool {
        self.mtime.saturating_add(SETTLE.as_nanos() as i64) < self.at
    }
}

#[derive(Debug, Default)]
struct Experiment {
    listed: Option<Listing>,
    jobs: HashMap<String, Entry>,
    /// The jobs whose record is read at every refresh: not ended, not
    /// written yet, or unreadable.
    volatile: HashSet<String>,
}

impl Experiment {
    fn set(&mut self, id: String, entry: Entry) {
        if matches!(&entry, Entry::Key(k) if k.status.is_terminal()) {
            self.volatile.remove(&id);
        } else {
            self.volatile.insert(id.clone());
        }
        self.jobs.insert(id, entry);
    }
}

/// The keys of every job of one workspace (see the module doc).
#[derive(Debug, Default)]
pub struct JobIndex {
    experiments: BTreeMap<Arc<str>, Experiment>,
    plugins: HashSet<Arc<PluginName>>,
    /// Changed since it was last written.
    changed: bool,
    saved: Option<Instant>,
}

impl JobIndex {
    /// An empty index (the first refresh reads every record).
    pub fn new() -> JobIndex {
        JobIndex::default()
    }

    fn intern(&mut self, name: &str, path: &str) -> Arc<PluginName> {
        let p = PluginName {
            name: name.to_owned(),
            path: path.to_owned(),
        };
        if let Some(have) = self.plugins.get(&p) {
            return have.clone();
        }
        let p = Arc::new(p);
        self.plugins.insert(p.clone());
        p
    }

    fn key(&mut self, dir: &Arc<str>, rec: &JobRecord) -> JobKey {
        JobKey {
            id: rec.id.clone(),
            dir: dir.clone(),
            experiment: if rec.experiment.as_str() == &**dir {
                dir.clone()
            } else {
                rec.experiment.as_str().into()
            },
            status: rec.status,
            plugin: self.intern(&rec.plugin.name, &rec.plugin.path),
            pipeline_run: rec.pipeline.as_ref().map(|p| p.run.clone()),
            created_at: rec.created_at,
            started_at: rec.started_at,
            ended_at: rec.ended_at,
            progress: rec.progress,
        }
    }

    /// Bring the index up to date with the workspace's files.
    pub fn refresh(&mut self, ws: &Workspace) -> anyhow::Result<()> {
        let experiments = ws.root().join("experiments");
        let names = dir_names(&experiments, true)?;
        let before = self.experiments.len();
        self.experiments
            .retain(|name, _| names.binary_search_by(|n| n.as_str().cmp(&**name)).is_ok());
        self.changed |= self.experiments.len() != before;
        for name in names {
            let dir: Arc<str> = match self.experiments.get_key_value(name.as_str()) {
                Some((k, _)) => k.clone(),
                None => {
                    self.changed = true;
                    let k: Arc<str> = name.as_str().into();
                    self.experiments.insert(k.clone(), Experiment::default());
                    k
                }
            };
            self.refresh_experiment(ws, &dir)?;
        }
        Ok(())
    }

    fn refresh_experiment(&mut self, ws: &Workspace, dir: &Arc<str>) -> anyhow::Result<()> {
        let jobs_dir = ws.root().join("experiments").join(&**dir).join("jobs");
        let mut exp = self.experiments.remove(dir).unwrap_or_default();
        let result = (|| -> anyhow::Result<()> {
            let mtime = match fs::metadata(&jobs_dir) {
                Ok(m) => nanos(m.modified()?),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    if exp.listed.is_some() || !exp.jobs.is_empty() {
                        self.changed = true;
                    }
                    exp = Experiment::default();
                    return Ok(());
                }
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot read {}", jobs_dir.display()))
                }
            };
            let trusted = exp.listed.is_some_and(|l| l.mtime == mtime && l.settled());
            if !trusted {
                let at = nanos(SystemTime::now());
                let ids = dir_names(&jobs_dir, false)?;
                let mut old = std::mem::take(&mut exp.jobs);
                let mut changed = false;
                exp.jobs.reserve(ids.len());
                for id in ids {
                    let entry = old.remove(&id).unwrap_or_else(|| {
                        changed = true;
                        exp.volatile.insert(id.clone());
                        Entry::Pending
                    });
                    exp.jobs.insert(id, entry);
                }
                changed |= !old.is_empty();
                for id in old.keys() {
                    exp.volatile.remove(id);
                }
                exp.listed = Some(Listing { mtime, at });
                // A listing that is not settled yet is not worth writing.
                self.changed |= changed || exp.listed.is_some_and(|l| l.settled());
            }
            // Jobs that may still change: read their records again.
            let volatile: Vec<String> = exp.volatile.iter().cloned().collect();
            for id in volatile {
                let paths = ws.job_paths(dir, &id);
                let path = paths.record();
                let fresh = match read_json_opt::<JobRecord>(&path) {
                    Ok(Some(rec)) => Entry::Key(self.key(dir, &rec)),
                    Ok(None) if !paths.dir.exists() => {
                        exp.jobs.remove(&id);
                        exp.volatile.remove(&id);
                        self.changed = true;
                        continue;
                    }
                    Ok(None) => Entry::Pending,
                    Err(e) => Entry::Unreadable(path, format!("{e:#}")),
                };
                if exp.jobs.get(&id) != Some(&fresh) {
                    self.changed = true;
                }
                exp.set(id, fresh);
            }
            Ok(())
        })();
        self.experiments.insert(dir.clone(), exp);
        result
    }

    /// The keys of the jobs, of one experiment directory or all.
    pub fn keys(&self, experiment: Option<&str>) -> Vec<&JobKey> {
        let exps: Vec<&Experiment> = match experiment {
            Some(e) => self.experiments.get(e).into_iter().collect(),
            None => self.experiments.values().collect(),
        };
        exps.into_iter()
            .flat_map(|exp| exp.jobs.values())
            .filter_map(|e| match e {
                Entry::Key(k) => Some(k),
                _ => None,
            })
            .collect()
    }

    /// How many jobs the index holds (records read).
    pub fn len(&self) -> usize {
        self.keys(None).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The jobs matching `q`: how many, and the page `q` asks for, in
    /// its order. The same answer as [`JobQuery::apply`] over every record.
    pub fn select(&self, q: &JobQuery) -> (usize, Vec<&JobKey>) {
        let now = Utc::now();
        let ranks = Ranks::new(q, self, now);
        // Each job with its place in the order as integers (see [`Ranks`]).
        let mut hits: Vec<(i128, i128, &JobKey)> = self
            .keys(q.experiment.as_deref())
            .into_iter()
            .filter(|k| q.matches(*k))
            .map(|k| (ranks.primary(k), time_rank(k.created_at), k))
            .collect();
        let total = hits.len();
        let descending = q.sort.descending;
        let order = |a: &(i128, i128, &JobKey), b: &(i128, i128, &JobKey)| {
            let ord = (a.0, a.1, &a.2.id).cmp(&(b.0, b.1, &b.2.id));
            let ord = if descending { ord.reverse() } else { ord };
            // Equal keys (the same id and creation time in two experiments)
            // keep the order of the experiments, as the scan would.
            ord.then_with(|| a.2.dir.cmp(&b.2.dir))
        };
        let end = q.offset.saturating_add(q.limit.unwrap_or(usize::MAX));
        if q.offset >= total {
            return (total, Vec::new());
        }
        // Only ranks offset..end are needed: two selections (linear), then
        // a sort of the page alone.
        if end < total {
            hits.select_nth_unstable_by(end, order);
            hits.truncate(end);
        }
        if q.offset > 0 {
            hits.select_nth_unstable_by(q.offset, order);
            hits.drain(..q.offset);
        }
        hits.sort_unstable_by(order);
        (total, hits.into_iter().map(|h| h.2).collect())
    }

    /// The records that exist but cannot be read, in workspace order.
    pub fn unreadable(&self) -> Vec<Unreadable> {
        let mut out = Vec::new();
        for exp in self.experiments.values() {
            let mut bad: Vec<(&String, Unreadable)> = exp
                .jobs
                .iter()
                .filter_map(|(id, e)| match e {
                    Entry::Unreadable(path, error) => Some((
                        id,
                        Unreadable {
                            path: path.clone(),
                            error: error.clone(),
                        },
                    )),
                    _ => None,
                })
                .collect();
            bad.sort_by(|a, b| a.0.cmp(b.0));
            out.extend(bad.into_iter().map(|(_, u)| u));
        }
        out
    }

    /// Read job `id` of experiment directory `dir` again at the next refresh.
    pub fn forget(&mut self, dir: &str, id: &str) {
        if let Some(exp) = self.experiments.get_mut(dir) {
            if exp.jobs.contains_key(id) {
                exp.set(id.to_owned(), Entry::Pending);
                self.changed = true;
            }
        }
    }

    fn file(root: &Path) -> PathBuf {
        root.join(".cache").join(FILE)
    }

    /// The index saved in the workspace at `root`, if there is a readable
    /// one of this version.
    pub fn load(root: &Path) -> Option<JobIndex> {
        let bytes = fs::read(Self::file(root)).ok()?;
        let file: IndexFile = serde_json::from_slice(&bytes).ok()?;
        if file.version != VERSION {
            return None;
        }
        let mut idx = JobIndex::new();
        let plugins: Vec<Arc<PluginName>> = file
            .plugins
            .iter()
            .map(|(name, path)| idx.intern(name, path))
            .collect();
        for e in file.experiments {
            let dir: Arc<str> = e.name.into();
            let mut exp = Experiment {
                listed: e.listed,
                jobs: HashMap::with_capacity(e.jobs.len() + e.pending.len()),
                volatile: HashSet::new(),
            };
            for j in e.jobs {
                let key = JobKey {
                    id: j.0,
                    experiment: j.8.map_or_else(|| dir.clone(), Into::into),
                    dir: dir.clone(),
                    status: j.1,
                    plugin: plugins.get(j.2 as usize)?.clone(),
                    pipeline_run: j.3,
                    created_at: DateTime::from_timestamp_nanos(j.4),
                    started_at: j.5.map(DateTime::from_timestamp_nanos),
                    ended_at: j.6.map(DateTime::from_timestamp_nanos),
                    progress: j.7,
                };
                exp.set(key.id.clone(), Entry::Key(key));
            }
            for id in e.pending {
                exp.set(id, Entry::Pending);
            }
            idx.experiments.insert(dir, exp);
        }
        Some(idx)
    }

    /// Write the index into the workspace at `root` (temp + rename: a
    /// reader sees the old file or the new one; no fsync, it is a cache).
    pub fn save(&mut self, root: &Path) -> std::io::Result<()> {
        let mut plugins: Vec<Arc<PluginName>> = self.plugins.iter().cloned().collect();
        plugins.sort_by(|a, b| (&a.name, &a.path).cmp(&(&b.name, &b.path)));
        let number: HashMap<&PluginName, u32> = plugins
            .iter()
            .enumerate()
            .map(|(i, p)| (&**p, i as u32))
            .collect();
        let ns = |t: DateTime<Utc>| t.timestamp_nanos_opt().unwrap_or(i64::MAX);
        let file = IndexFile {
            version: VERSION,
            plugins: plugins
                .iter()
                .map(|p| (p.name.clone(), p.path.clone()))
                .collect(),
            experiments: self
                .experiments
                .iter()
                .map(|(name, exp)| {
                    let mut jobs = Vec::new();
                    let mut pending = Vec::new();
                    for (id, e) in &exp.jobs {
                        match e {
                            Entry::Key(k) => jobs.push(FileJob(
                                k.id.clone(),
                                k.status,
                                number[&*k.plugin],
                                k.pipeline_run.clone(),
                                ns(k.created_at),
                                k.started_at.map(ns),
                                k.ended_at.map(ns),
                                k.progress,
                                (k.experiment != k.dir).then(|| k.experiment.to_string()),
                            )),
                            _ => pending.push(id.clone()),
                        }
                    }
                    FileExperiment {
                        name: name.to_string(),
                        // An unsettled listing is not trusted by a reader.
                        listed: exp.listed.filter(Listing::settled),
                        jobs,
                        pending,
                    }
                })
                .collect(),
        };
        let bytes = serde_json::to_vec(&file).map_err(std::io::Error::other)?;
        let path = Self::file(root);
        fs::create_dir_all(path.parent().expect("under .cache"))?;
        let tmp = crate::store::durable::temp_sibling(&path);
        let written = fs::write(&tmp, &bytes).and_then(|()| fs::rename(&tmp, &path));
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        written?;
        self.changed = false;
        self.saved = Some(Instant::now());
        Ok(())
    }

    /// Write the file if the index changed and was not written in the last
    /// [`SAVE_EVERY`] (by this process). A failure is ignored: the next
    /// process rebuilds what it lacks.
    fn save_if_due(&mut self, root: &Path) {
        if self.changed && self.saved.is_none_or(|t| t.elapsed() >= SAVE_EVERY) {
            let _ = self.save(root);
        }
    }
}

/// A query's sort key as an integer per job, ordered as
/// [`JobQuery::compare`] orders the field (so that selecting a page of
/// 100,000 jobs compares integers).
struct Ranks {
    key: SortKey,
    now: DateTime<Utc>,
    /// Status names in alphabetical order.
    statuses: Vec<&'static str>,
    /// Plugin names in alphabetical order.
    plugins: Vec<String>,
}

impl Ranks {
    fn new(q: &JobQuery, idx: &JobIndex, now: DateTime<Utc>) -> Ranks {
        let mut statuses: Vec<&'static str> = [
            JobStatus::Queued,
            JobStatus::Running,
            JobStatus::Complete,
            JobStatus::Failed,
            JobStatus::Cancelled,
            JobStatus::Interrupted,
        ]
        .map(JobStatus::as_str)
        .to_vec();
        statuses.sort_unstable();
        let mut plugins = Vec::new();
        if q.sort.key == SortKey::Plugin {
            plugins = idx.plugins.iter().map(|p| p.name.clone()).collect();
            plugins.sort_unstable();
            plugins.dedup();
        }
        Ranks {
            key: q.sort.key,
            now,
            statuses,
            plugins,
        }
    }

    fn primary(&self, k: &JobKey) -> i128 {
        match self.key {
            SortKey::Created => time_rank(k.created_at),
            SortKey::Ended => k.ended_at.map_or(i128::MIN, time_rank),
            SortKey::Duration => {
                let start = k.started_at.unwrap_or(k.created_at);
                (k.ended_at.unwrap_or(self.now) - start)
                    .num_milliseconds()
                    .into()
            }
            SortKey::Status => rank_of(&self.statuses, k.status.as_str()),
            SortKey::Plugin => rank_of(&self.plugins, &k.plugin.name),
            SortKey::Progress => {
                // `f32::total_cmp`'s order, as an integer.
                let bits = k.progress.to_bits() as i32;
                (bits ^ ((((bits >> 31) as u32) >> 1) as i32)).into()
            }
        }
    }
}

/// A time as an integer in its order: seconds, then nanoseconds (which
/// exceed 10^9 in a leap second, as chrono orders them).
fn time_rank(t: DateTime<Utc>) -> i128 {
    (i128::from(t.timestamp()) << 32) | i128::from(t.timestamp_subsec_nanos())
}

fn rank_of<S: AsRef<str>>(sorted: &[S], name: &str) -> i128 {
    match sorted.binary_search_by(|s| s.as_ref().cmp(name)) {
        Ok(i) | Err(i) => i as i128,
    }
}

/// `jobs.index`: one object, every job as a compact array.
#[derive(Serialize, Deserialize)]
struct IndexFile {
    version: u32,
    /// (name, path), numbered by position.
    plugins: Vec<(String, String)>,
    experiments: Vec<FileExperiment>,
}

#[derive(Serialize, Deserialize)]
struct FileExperiment {
    name: String,
    listed: Option<Listing>,
    jobs: Vec<FileJob>,
    /// Directories without a readable record (read again).
    pending: Vec<String>,
}

/// id, status, plugin number, pipeline run, created, started and ended
/// (ns since the epoch), progress, the record's experiment if it is not
/// the directory's.
#[derive(Serialize, Deserialize)]
struct FileJob(
    String,
    JobStatus,
    u32,
    Option<String>,
    i64,
    Option<i64>,
    Option<i64>,
    f32,
    Option<String>,
);

/// The index of `ws` in this process (loaded from its file the first
/// time), refreshed, and written back when due; `f` runs on it.
pub fn with<T>(ws: &Workspace, f: impl FnOnce(&mut JobIndex) -> T) -> anyhow::Result<T> {
    let slot = slot(ws.root());
    let mut guard = slot.lock().unwrap_or_else(|e| e.into_inner());
    let idx = guard.get_or_insert_with(|| JobIndex::load(ws.root()).unwrap_or_default());
    idx.refresh(ws)?;
    idx.save_if_due(ws.root());
    Ok(f(idx))
}

/// `f` on the index of `ws` in this process, if there is one (no refresh).
pub fn with_cached(ws: &Workspace, f: impl FnOnce(&mut JobIndex)) {
    let slot = slot(ws.root());
    let mut guard = slot.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(idx) = guard.as_mut() {
        f(idx);
    }
}

type Slot = Arc<Mutex<Option<JobIndex>>>;

/// This process's index of the workspace at `root` (by its canonical path).
fn slot(root: &Path) -> Slot {
    static INDEXES: OnceLock<Mutex<HashMap<PathBuf, Slot>>> = OnceLock::new();
    INDEXES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(root.to_owned())
        .or_default()
        .clone()
}

fn nanos(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_nanos()).unwrap_or(i64::MAX),
    }
}

/// Names of the visible subdirectories of `dir` (sorted if asked); empty
/// if absent (as the workspace's own listing: dot names and non-UTF-8
/// names skipped).
fn dir_names(dir: &Path, sorted: bool) -> anyhow::Result<Vec<String>> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
    };
    let mut names = Vec::new();
    for entry in rd {
        let entry = entry.with_context(|| format!("cannot read {}", dir.display()))?;
        if !entry.file_type()?.is_dir() {
            continue;
        }
        if let Some(name) = entry.file_name().to_str() {
            if !name.starts_with('.') {
                names.push(name.to_owned());
            }
        }
    }
    if sorted {
        names.sort();
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::Sort;
    use serde_json::json;

    fn write_record(ws: &Workspace, exp: &str, id: &str, rec: &serde_json::Value) -> PathBuf {
        let dir = ws.job_paths(exp, id).dir;
        fs::create_dir_all(&dir).unwrap();
        crate::store::durable::write_atomic(&dir.join("job.json"), rec.to_string().as_bytes())
            .unwrap();
        dir
    }

    /// A record as the host writes it, with these query fields.
    #[allow(clippy::too_many_arguments)]
    fn record(
        id: &str,
        exp: &str,
        status: &str,
        plugin: (&str, &str),
        pipeline: Option<&str>,
        created: DateTime<Utc>,
        started: Option<DateTime<Utc>>,
        ended: Option<DateTime<Utc>>,
        progress: f32,
    ) -> serde_json::Value {
        json!({
            "schema": 1, "id": id, "experiment": exp, "status": status, "message": null,
            "pipeline": pipeline.map(|r| json!({"run": r, "instance": "train#1", "attempt": 1})),
            "plugin": {"path": plugin.1, "blake3": "b", "name": plugin.0, "version": "1", "kind": "other"},
            "config": {}, "sandbox": {"grants": {"datasets": [], "models": [], "dirs": [], "env": []},
              "limits": {"timeout": 60.0, "grace": 1.0, "memory_bytes": 1, "log_bytes": 1,
                         "stored_bytes": 1, "stored_files": 1}},
            "resume": null, "created_at": created, "started_at": started, "ended_at": ended,
            "progress": progress, "stage": null, "scores": {}, "artifacts": [], "checkpoints": [],
            "models": [], "datasets": [], "evals": [], "log_bytes": 0, "log_truncated": false,
            "host_pid": 1, "host_version": "0"
        })
    }

    /// A workspace of `n` varied jobs in three experiments: every status,
    /// three plugins, pipelines, jobs not started or not ended, equal
    /// creation times and the same id in two experiments.
    fn varied(n: usize) -> (tempfile::TempDir, Workspace) {
        let tmp = tempfile::tempdir().unwrap();
        let ws = Workspace::open(tmp.path()).unwrap();
        let statuses = [
            "COMPLETE",
            "FAILED",
            "RUNNING",
            "CANCELLED",
            "QUEUED",
            "INTERRUPTED",
        ];
        let plugins = [
            ("trainer", "/p/trainer.wasm"),
            ("probe", "/q/probe.wasm"),
            ("eval", "/p/trainer-eval.wasm"),
        ];
        let t0 = DateTime::parse_from_rfc3339("2026-11-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        for i in 0..n {
            let exp = ["a", "a-b", "zeta"][i % 3];
            // Job 10 has the id and creation time of job 9, in another
            // experiment; every fifth job shares its creation time with the
            // one before.
            let same = if i == 10 { 9 } else { i };
            let id = format!("{same:04}");
            let created =
                t0 + chrono::Duration::seconds((same - usize::from(same % 5 == 4)) as i64 * 7);
            let started = (i % 11 != 3).then(|| created + chrono::Duration::milliseconds(5));
            let status = statuses[(i * 7) % statuses.len()];
            let ended = (!matches!(status, "RUNNING" | "QUEUED"))
                .then(|| created + chrono::Duration::seconds((i % 13) as i64));
            let pipeline = (i % 4 == 0).then_some(if i % 8 == 0 { "run-1" } else { "run-2" });
            let progress = ((i * 37) % 101) as f32;
            write_record(
                &ws,
                exp,
                &id,
                &record(
                    &id,
                    exp,
                    status,
                    plugins[i % 3],
                    pipeline,
                    created,
                    started,
                    ended,
                    progress,
                ),
            );
        }
        (tmp, ws)
    }

    fn ids_of_scan(ws: &Workspace, q: &JobQuery) -> (usize, Vec<(String, String)>) {
        let page = q.apply(ws.jobs(q.experiment.as_deref()).unwrap());
        (
            page.total,
            page.jobs
                .iter()
                .map(|j| (j.experiment.clone(), j.id.clone()))
                .collect(),
        )
    }

    fn ids_of_index(idx: &JobIndex, q: &JobQuery) -> (usize, Vec<(String, String)>) {
        let (total, keys) = idx.select(q);
        (
            total,
            keys.iter()
                .map(|k| (k.experiment.to_string(), k.id.clone()))
                .collect(),
        )
    }

    #[test]
    fn index_answers_every_query_as_the_scan_does() {
        let (_tmp, ws) = varied(240);
        let mut idx = JobIndex::new();
        idx.refresh(&ws).unwrap();
        assert_eq!(idx.len(), 240);
        let t = |s: &str| crate::query::parse_time(s).unwrap();
        let filters: Vec<JobQuery> = vec![
            JobQuery::default(),
            JobQuery {
                statuses: vec![JobStatus::Failed, JobStatus::Running],
                ..Default::default()
            },
            JobQuery {
                experiment: Some("a".into()),
                ..Default::default()
            },
            JobQuery {
                experiment: Some("nope".into()),
                ..Default::default()
            },
            JobQuery {
                plugin: Some("trainer".into()),
                ..Default::default()
            },
            JobQuery {
                plugin: Some("/p/".into()),
                ..Default::default()
            },
            JobQuery {
                pipeline: Some("run-".into()),
                ..Default::default()
            },
            JobQuery {
                pipeline: Some("run-2".into()),
                since: Some(t("2026-11-01T00:05:00Z")),
                until: Some(t("2026-11-01T00:20:00Z")),
                ..Default::default()
            },
        ];
        let keys = [
            SortKey::Created,
            SortKey::Ended,
            SortKey::Duration,
            SortKey::Status,
            SortKey::Plugin,
            SortKey::Progress,
        ];
        let pages = [
            (0, None),
            (0, Some(1)),
            (5, Some(7)),
            (70, Some(50)),
            (239, None),
            (400, Some(3)),
        ];
        let mut checked = 0;
        for f in &filters {
            for key in keys {
                for descending in [false, true] {
                    for (offset, limit) in pages {
                        let q = JobQuery {
                            sort: Sort { key, descending },
                            offset,
                            limit,
                            ..f.clone()
                        };
                        assert_eq!(ids_of_index(&idx, &q), ids_of_scan(&ws, &q), "{q:?}");
                        checked += 1;
                    }
                }
            }
        }
        assert_eq!(checked, 8 * 6 * 2 * 6);
        // The job id shared by two experiments: both, experiment order.
        let q = JobQuery {
            sort: "created".parse().unwrap(),
            ..Default::default()
        };
        let (_, all) = ids_of_index(&idx, &q);
        let nines: Vec<&(String, String)> = all.iter().filter(|(_, id)| id == "0009").collect();
        assert_eq!(
            nines,
            [
                &("a".to_owned(), "0009".to_owned()),
                &("a-b".to_owned(), "0009".to_owned())
            ]
        );
    }

    #[test]
    fn refresh_sees_new_removed_changed_and_unreadable_jobs() {
        let (_tmp, ws) = varied(30);
        let mut idx = JobIndex::new();
        idx.refresh(&ws).unwrap();
        assert_eq!(idx.len(), 30);
        let now = Utc::now();
        let newest = |idx: &JobIndex| {
            let (_, keys) = idx.select(&JobQuery {
                limit: Some(1),
                ..Default::default()
            });
            (keys[0].id.clone(), keys[0].status)
        };

        // A new job, seen at once (its directory was listed moments ago:
        // not settled, so listed again).
        let running = record(
            "new",
            "a",
            "RUNNING",
            ("probe", "/q"),
            None,
            now,
            Some(now),
            None,
            1.0,
        );
        write_record(&ws, "a", "new", &running);
        idx.refresh(&ws).unwrap();
        assert_eq!(newest(&idx), ("new".to_owned(), JobStatus::Running));
        assert_eq!(idx.len(), 31);

        // It ends: its record is read again (it had not ended).
        let mut done = running.clone();
        done["status"] = json!("COMPLETE");
        done["ended_at"] = json!(now);
        write_record(&ws, "a", "new", &done);
        idx.refresh(&ws).unwrap();
        assert_eq!(newest(&idx), ("new".to_owned(), JobStatus::Complete));

        // A directory without a record yet is not a job; once its record
        // is written it is.
        let later = now + chrono::Duration::seconds(1);
        let dir = ws.job_paths("zeta", "later").dir;
        fs::create_dir_all(&dir).unwrap();
        idx.refresh(&ws).unwrap();
        assert_eq!(idx.len(), 31);
        assert!(idx.unreadable().is_empty());
        write_record(
            &ws,
            "zeta",
            "later",
            &record(
                "later",
                "zeta",
                "QUEUED",
                ("probe", "/q"),
                None,
                later,
                None,
                None,
                0.0,
            ),
        );
        idx.refresh(&ws).unwrap();
        assert_eq!(newest(&idx), ("later".to_owned(), JobStatus::Queued));

        // An unreadable record is reported, not listed; fixed, it is listed.
        let bad = write_record(&ws, "a", "bad", &json!({"schema": 1}));
        idx.refresh(&ws).unwrap();
        let unreadable = idx.unreadable();
        assert_eq!(unreadable.len(), 1);
        assert_eq!(unreadable[0].path, bad.join("job.json"));
        assert!(
            unreadable[0].error.starts_with("corrupt record "),
            "{}",
            unreadable[0].error
        );
        assert_eq!(
            unreadable.iter().map(|u| &u.path).collect::<Vec<_>>(),
            ws.scan_jobs(None)
                .unwrap()
                .unreadable
                .iter()
                .map(|u| &u.path)
                .collect::<Vec<_>>()
        );
        assert_eq!(idx.len(), 32);

        // Removed jobs and experiments are dropped.
        fs::remove_dir_all(ws.job_paths("zeta", "later").dir).unwrap();
        idx.refresh(&ws).unwrap();
        assert_eq!(newest(&idx).0, "new");
        fs::remove_dir_all(ws.root().join("experiments/a")).unwrap();
        idx.refresh(&ws).unwrap();
        assert_eq!(idx.len(), 20);
        assert!(idx.unreadable().is_empty());
        let q = JobQuery::default();
        assert_eq!(ids_of_index(&idx, &q), ids_of_scan(&ws, &q));
    }

    /// Set the mtime of directory `dir`.
    fn set_mtime(dir: &Path, t: SystemTime) {
        fs::File::open(dir).unwrap().set_modified(t).unwrap();
    }

    #[test]
    fn a_settled_directory_is_not_listed_again_until_its_mtime_moves() {
        let (_tmp, ws) = varied(9);
        let jobs = ws.root().join("experiments/a/jobs");
        let old = SystemTime::now() - Duration::from_secs(60);
        set_mtime(&jobs, old);
        let mut idx = JobIndex::new();
        idx.refresh(&ws).unwrap();
        assert_eq!(idx.len(), 9);
        // A job directory slipped in without moving the mtime (as a change
        // in the same tick would): the settled listing is trusted...
        let now = Utc::now();
        write_record(
            &ws,
            "a",
            "hidden",
            &record(
                "hidden",
                "a",
                "COMPLETE",
                ("p", "/p"),
                None,
                now,
                Some(now),
                Some(now),
                100.0,
            ),
        );
        set_mtime(&jobs, old);
        idx.refresh(&ws).unwrap();
        assert_eq!(idx.len(), 9);
        // ...until the mtime moves.
        let recent = SystemTime::now();
        set_mtime(&jobs, recent);
        idx.refresh(&ws).unwrap();
        assert_eq!(idx.len(), 10);
        // A listing taken while the mtime was recent is not trusted, even
        // if the mtime did not move.
        write_record(
            &ws,
            "a",
            "next",
            &record(
                "next",
                "a",
                "COMPLETE",
                ("p", "/p"),
                None,
                now,
                Some(now),
                Some(now),
                100.0,
            ),
        );
        set_mtime(&jobs, recent);
        idx.refresh(&ws).unwrap();
        assert_eq!(idx.len(), 11);
    }

    #[test]
    fn the_file_round_trips_and_a_bad_one_is_ignored() {
        let (_tmp, ws) = varied(60);
        let mut idx = JobIndex::new();
        idx.refresh(&ws).unwrap();
        fs::create_dir_all(ws.job_paths("a", "pending").dir).unwrap();
        write_record(&ws, "a", "broken", &json!([]));
        idx.refresh(&ws).unwrap();
        idx.save(ws.root()).unwrap();
        let mut loaded = JobIndex::load(ws.root()).expect("saved index");
        assert_eq!(loaded.len(), 60);
        for key in [SortKey::Created, SortKey::Duration, SortKey::Progress] {
            let q = JobQuery {
                sort: Sort {
                    key,
                    descending: true,
                },
                limit: Some(25),
                ..Default::default()
            };
            assert_eq!(ids_of_index(&loaded, &q), ids_of_index(&idx, &q));
        }
        // Pending and unreadable directories are read again after a load.
        loaded.refresh(&ws).unwrap();
        assert_eq!(loaded.unreadable().len(), 1);
        assert_eq!(loaded.len(), 60);

        let file = ws.root().join(".cache").join(FILE);
        for bad in [
            "".to_owned(),
            "{not json".to_owned(),
            fs::read_to_string(&file)
                .unwrap()
                .replacen("\"version\":1", "\"version\":999", 1),
            // A plugin number out of range.
            json!({"version": VERSION, "plugins": [], "experiments": [{"name": "a",
                "listed": null, "pending": [],
                "jobs": [["x", "COMPLETE", 3, null, 0, null, null, 0.0, null]]}]})
            .to_string(),
        ] {
            fs::write(&file, bad.as_bytes()).unwrap();
            assert!(JobIndex::load(ws.root()).is_none(), "{bad}");
        }
    }

    #[test]
    fn the_process_index_follows_the_workspace_and_keeps_its_file() {
        let (_tmp, ws) = varied(12);
        let old = SystemTime::now() - Duration::from_secs(60);
        for exp in ["a", "a-b", "zeta"] {
            set_mtime(&ws.root().join("experiments").join(exp).join("jobs"), old);
        }
        let q = JobQuery {
            limit: Some(3),
            ..Default::default()
        };
        let (total, first) = with(&ws, |idx| ids_of_index(idx, &q)).unwrap();
        assert_eq!((total, first.clone()), ids_of_scan(&ws, &q));
        assert!(ws.root().join(".cache").join(FILE).is_file());
        // The newest job removed without the mtime moving: the page's
        // record read finds it gone and leaves it out...
        let (exp, id) = &first[0];
        fs::remove_dir_all(ws.job_paths(exp, id).dir).unwrap();
        set_mtime(&ws.root().join("experiments").join(exp).join("jobs"), old);
        let page = q.run(&ws).unwrap();
        assert_eq!(page.total, 12);
        assert_eq!(
            page.jobs
                .iter()
                .map(|j| (j.experiment.clone(), j.id.clone()))
                .collect::<Vec<_>>(),
            first[1..]
        );
        // ...and the index reads it again: gone.
        assert_eq!(with(&ws, |idx| idx.len()).unwrap(), 11);
        assert_eq!(q.run(&ws).unwrap().total, 11);
    }
}
