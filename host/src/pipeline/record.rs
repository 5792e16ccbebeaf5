//! A pipeline run on disk: `<workspace>/pipelines/<run-id>/`
//!
//! ```text
//! run.json        the run record: every stage instance with its pinned
//!                 plugin digest, config, inputs, limits, status and attempts;
//!                 replaced atomically at every change (it is the run's queue)
//! pipeline.toml   the pipeline file as it was when the run was created
//! .lock           held (flock) by the process running the run
//! ```

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::file::RetryPolicy;
use crate::sandbox::{DirGrant, Limits};
use crate::store::dirs;
use crate::store::durable::write_atomic;
use crate::store::{read_json_opt, FailureKind, JobStatus, Workspace};

pub const RUN_SCHEMA: u32 = 1;

/// Where a stage instance is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum InstanceStatus {
    /// Waiting for the stages it needs.
    Waiting,
    /// Ready; waiting for a worker (or for its retry backoff).
    Queued,
    Running,
    Complete,
    Failed,
    Cancelled,
    /// A stage it needs did not complete.
    Blocked,
}

impl InstanceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceStatus::Waiting => "WAITING",
            InstanceStatus::Queued => "QUEUED",
            InstanceStatus::Running => "RUNNING",
            InstanceStatus::Complete => "COMPLETE",
            InstanceStatus::Failed => "FAILED",
            InstanceStatus::Cancelled => "CANCELLED",
            InstanceStatus::Blocked => "BLOCKED",
        }
    }
    /// Will not change without a resume.
    pub fn is_settled(self) -> bool {
        matches!(
            self,
            InstanceStatus::Complete
                | InstanceStatus::Failed
                | InstanceStatus::Cancelled
                | InstanceStatus::Blocked
        )
    }
}

impl std::fmt::Display for InstanceStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The status of a whole run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RunStatus {
    Running,
    Complete,
    /// At least one instance failed or was blocked; the others ran.
    Failed,
    Cancelled,
    /// The process running it died (shown by readers; never written).
    Interrupted,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "RUNNING",
            RunStatus::Complete => "COMPLETE",
            RunStatus::Failed => "FAILED",
            RunStatus::Cancelled => "CANCELLED",
            RunStatus::Interrupted => "INTERRUPTED",
        }
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The exact plugin an instance runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginPin {
    /// Absolute path of the .wasm.
    pub path: String,
    pub blake3: String,
    pub name: String,
    pub version: String,
}

/// A dataset or model granted to an instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Input {
    /// A registry id (a name in the file is pinned to its id when the run
    /// is created, so a later entry with that name cannot shadow it).
    Registry(String),
    /// What an upstream instance saved (only the one named `name`, if given).
    Stage {
        instance: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
}

/// One job attempt of an instance.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Attempt {
    /// `None` when the job could not even be started (see `message`).
    pub job_id: Option<String>,
    pub status: JobStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<FailureKind>,
    pub message: Option<String>,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    /// `JOB:CHECKPOINT` this attempt resumed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resumed_from: Option<String>,
}

impl Attempt {
    /// How long it ran (so far, if it still runs).
    pub fn seconds(&self) -> f64 {
        (self.ended_at.unwrap_or_else(Utc::now) - self.started_at).num_milliseconds() as f64
            / 1000.0
    }
}

/// One job-to-be of a run: a stage, or one branch of a fanned-out stage.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Instance {
    /// `train`, or `train#2` when the stage fans out.
    pub name: String,
    pub stage: String,
    /// What distinguishes it from its siblings: `lr=0.5`, `train#2`.
    pub label: String,
    /// Instances that must complete first.
    pub needs: Vec<String>,
    pub plugin: PluginPin,
    /// The stage's config with the matrix values (plugin defaults are
    /// added when the job starts and recorded in the job).
    pub config: Map<String, Value>,
    pub datasets: Vec<Input>,
    pub models: Vec<Input>,
    pub dirs: Vec<DirGrant>,
    pub env: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http: Vec<crate::HttpGrant>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
    pub limits: Limits,
    pub retry: RetryPolicy,
    pub status: InstanceStatus,
    pub message: Option<String>,
    pub attempts: Vec<Attempt>,
    /// Retries used since the run was created or last resumed.
    #[serde(default)]
    pub retries_used: u32,
    /// Not before this time (retry backoff).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<DateTime<Utc>>,
}

impl Instance {
    /// `train#2 (lr=0.5)`.
    pub fn title(&self) -> String {
        if self.label.is_empty() {
            self.name.clone()
        } else {
            format!("{} ({})", self.name, self.label)
        }
    }
    pub fn last_job(&self) -> Option<&str> {
        self.attempts.iter().rev().find_map(|a| a.job_id.as_deref())
    }
}

/// `pipelines/<id>/run.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    pub schema: u32,
    pub id: String,
    pub pipeline: String,
    pub experiment: String,
    /// The pipeline file it was created from, and its blake3.
    pub file: String,
    pub file_blake3: String,
    pub workers: usize,
    pub status: RunStatus,
    pub message: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    /// The process running it (or that last ran it).
    pub runner_pid: u32,
    /// How many times it was resumed.
    #[serde(default)]
    pub resumes: u32,
    pub instances: Vec<Instance>,
}

impl RunRecord {
    pub fn instance(&self, name: &str) -> Option<&Instance> {
        self.instances.iter().find(|i| i.name == name)
    }
    pub fn count(&self, status: InstanceStatus) -> usize {
        self.instances.iter().filter(|i| i.status == status).count()
    }
}

/// The paths of one run.
#[derive(Debug, Clone)]
pub struct RunPaths {
    pub dir: PathBuf,
}

impl RunPaths {
    pub fn record(&self) -> PathBuf {
        self.dir.join("run.json")
    }
    pub fn pipeline(&self) -> PathBuf {
        self.dir.join("pipeline.toml")
    }
    pub fn lock(&self) -> PathBuf {
        self.dir.join(".lock")
    }
    /// Written by `labhost pipeline cancel`; the runner polls it.
    pub fn cancel_request(&self) -> PathBuf {
        self.dir.join(".cancel")
    }

    pub fn save(&self, rec: &RunRecord) -> anyhow::Result<()> {
        let bytes = serde_json::to_vec_pretty(rec)?;
        write_atomic(&self.record(), &bytes)
            .with_context(|| format!("cannot write {}", self.record().display()))
    }

    /// Take the run's lock, or say who holds it.
    pub fn lock_run(&self, id: &str) -> anyhow::Result<File> {
        match dirs::try_lock(&self.lock())? {
            Some(f) => Ok(f),
            None => {
                let pid = read_json_opt::<RunRecord>(&self.record())
                    .ok()
                    .flatten()
                    .map(|r| r.runner_pid);
                bail!(
                    "pipeline run {id} is being run by another process{}",
                    pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
                );
            }
        }
    }

    /// Whether a live process holds the lock.
    pub fn is_locked(&self) -> bool {
        dirs::is_locked(&self.lock())
    }
}

pub fn runs_dir(ws: &Workspace) -> PathBuf {
    ws.root().join("pipelines")
}

/// Create a fresh run directory with a new id.
pub fn create_run_dir(ws: &Workspace) -> anyhow::Result<(String, RunPaths)> {
    let (id, dir) = dirs::create_unique(&runs_dir(ws), "run")?;
    Ok((id, RunPaths { dir }))
}

/// Every run, oldest first, with its status as readers should show it
/// (RUNNING without a live runner reads INTERRUPTED).
pub fn list_runs(ws: &Workspace) -> anyhow::Result<Vec<RunRecord>> {
    let dir = runs_dir(ws);
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e).with_context(|| format!("cannot list {}", dir.display())),
    };
    for e in entries.flatten() {
        let paths = RunPaths { dir: e.path() };
        if let Some(rec) = read_json_opt::<RunRecord>(&paths.record())? {
            out.push(shown(rec, &paths));
        }
    }
    out.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
    Ok(out)
}

fn shown(mut rec: RunRecord, paths: &RunPaths) -> RunRecord {
    if rec.status == RunStatus::Running && !paths.is_locked() {
        rec.status = RunStatus::Interrupted;
    }
    rec
}

/// Find a run by id or unique id prefix.
pub fn find_run(ws: &Workspace, id: &str) -> anyhow::Result<(RunRecord, RunPaths)> {
    let runs = list_runs(ws)?;
    let r = dirs::pick(&runs, |r| &r.id, id, "pipeline run", ws.root())?;
    let paths = RunPaths {
        dir: runs_dir(ws).join(&r.id),
    };
    Ok((r.clone(), paths))
}

/// Ask the process running pipeline run `id` to cancel it (its jobs get a
/// cancel; the run can be resumed later).
pub fn request_cancel(ws: &Workspace, id: &str) -> anyhow::Result<RunRecord> {
    let (rec, paths) = find_run(ws, id)?;
    if rec.status != RunStatus::Running {
        bail!("pipeline run {} is not running ({})", rec.id, rec.status);
    }
    dirs::request_cancel(&paths.cancel_request())?;
    Ok(rec)
}

/// Re-read a run's record as stored (no status adjustment).
pub fn read_run(paths: &RunPaths) -> anyhow::Result<RunRecord> {
    read_json_opt::<RunRecord>(&paths.record())?
        .with_context(|| format!("{} is missing", paths.record().display()))
}

pub(crate) fn path_string(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}
