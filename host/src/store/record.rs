//! The on-disk records of the workspace: `job.json`, `model.json`,
//! `dataset.json`. All are written whole and atomically by the host.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::sandbox::Sandbox;

/// Version of the record schema written by this host.
pub const SCHEMA: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobStatus {
    Queued,
    Running,
    Complete,
    Failed,
    Cancelled,
    /// The host process died while the job was running.
    Interrupted,
}

impl JobStatus {
    pub fn is_terminal(self) -> bool {
        !matches!(self, JobStatus::Queued | JobStatus::Running)
    }
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "QUEUED",
            JobStatus::Running => "RUNNING",
            JobStatus::Complete => "COMPLETE",
            JobStatus::Failed => "FAILED",
            JobStatus::Cancelled => "CANCELLED",
            JobStatus::Interrupted => "INTERRUPTED",
        }
    }
}

impl std::fmt::Display for JobStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a job failed, so that a retry policy can tell a flaky crash from a
/// plugin that reported a real error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureKind {
    /// The plugin called `fail()` or returned an error from `run()`.
    PluginError,
    /// The plugin trapped, exited, failed to start or returned without ending the job.
    Crash,
    /// The job's time limit was reached.
    Timeout,
    /// A memory, handle or scratch limit ended the job.
    ResourceLimit,
    /// The host process died while the job ran.
    Interrupted,
    /// The job could not be started (bad config, missing input...).
    Setup,
}

impl FailureKind {
    pub const ALL: [FailureKind; 6] = [
        FailureKind::PluginError,
        FailureKind::Crash,
        FailureKind::Timeout,
        FailureKind::ResourceLimit,
        FailureKind::Interrupted,
        FailureKind::Setup,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::PluginError => "plugin-error",
            FailureKind::Crash => "crash",
            FailureKind::Timeout => "timeout",
            FailureKind::ResourceLimit => "resource-limit",
            FailureKind::Interrupted => "interrupted",
            FailureKind::Setup => "setup",
        }
    }
}

impl std::fmt::Display for FailureKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The pipeline run a job belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipelineRef {
    pub run: String,
    /// The stage instance, e.g. `train#2`.
    pub instance: String,
    /// 1 for the first attempt, 2 for the first retry...
    pub attempt: u32,
}

/// One stored file inside a stored directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Relative path, `/`-separated.
    pub path: String,
    pub size: u64,
    pub blake3: String,
}

/// A file or directory the host stored for a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredRecord {
    pub name: String,
    /// Relative to the workspace root.
    pub location: String,
    pub size: u64,
    /// blake3 of the file, or of the directory's manifest.
    pub blake3: String,
    /// Every file with its digest (one entry, path "", for a single file).
    pub files: Vec<FileEntry>,
    pub is_dir: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalRecord {
    pub name: String,
    pub count: u64,
    #[serde(serialize_with = "finite::f64")]
    pub mean_score: f64,
    pub file: StoredRecord,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginRef {
    /// The .wasm path as given.
    pub path: String,
    /// blake3 of the component bytes.
    pub blake3: String,
    pub name: String,
    pub version: String,
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResumeRef {
    pub job_id: String,
    pub checkpoint: String,
}

/// `experiments/<exp>/jobs/<id>/job.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobRecord {
    pub schema: u32,
    pub id: String,
    pub experiment: String,
    pub status: JobStatus,
    /// The finish/fail/trap message.
    pub message: Option<String>,
    /// Why it failed (FAILED and INTERRUPTED jobs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<FailureKind>,
    /// The pipeline run that started it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<PipelineRef>,
    pub plugin: PluginRef,
    pub config: serde_json::Value,
    pub sandbox: Sandbox,
    pub resume: Option<ResumeRef>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "finite::f32")]
    pub progress: f32,
    pub stage: Option<String>,
    #[serde(serialize_with = "finite::map")]
    pub scores: BTreeMap<String, f64>,
    pub artifacts: Vec<StoredRecord>,
    pub checkpoints: Vec<StoredRecord>,
    /// Ids of models and datasets the job saved.
    pub models: Vec<String>,
    pub datasets: Vec<String>,
    pub evals: Vec<EvalRecord>,
    /// Lines and bytes written to `output.log`, and whether it was truncated.
    pub log_bytes: u64,
    pub log_truncated: bool,
    /// The process that ran (or runs) the job.
    pub host_pid: u32,
    pub host_version: String,
    /// The machine that ran (or runs) the job (empty: written before the
    /// field existed, or still queued).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hostname: String,
    /// The executor that placed the job, when it is not the process that
    /// created the record (e.g. a Slurm job on another node).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor: Option<ExecutorRef>,
    /// The job's free metadata (`metadata` interface), a JSON object.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// The latest status stage the plugin reported (`job.update-status`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_stage: Option<StatusStage>,
    /// What the job did over HTTP.
    #[serde(default, skip_serializing_if = "HttpUsage::is_unused")]
    pub http: HttpUsage,
}

/// Where an executor placed a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutorRef {
    /// `slurm`.
    pub kind: String,
    /// The executor's own id for it (the Slurm job id), once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
}

/// A status stage a plugin reported (Labelbox `update_status`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusStage {
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    pub at: DateTime<Utc>,
}

/// A job's HTTP use, against its `http-*` limits.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HttpUsage {
    /// Requests sent (each redirect hop counts).
    pub requests: u64,
    /// Requests refused before sending (ungranted URL, bad header).
    pub denied: u64,
    pub bytes_out: u64,
    pub bytes_in: u64,
    /// Milliseconds spent in requests, summed.
    pub millis: u64,
}

impl HttpUsage {
    pub fn is_unused(&self) -> bool {
        *self == HttpUsage::default()
    }
}

impl JobRecord {
    /// Every stored file of the job, for verification.
    pub fn stored(&self) -> impl Iterator<Item = &StoredRecord> {
        self.artifacts
            .iter()
            .chain(&self.checkpoints)
            .chain(self.evals.iter().map(|e| &e.file))
    }
}

/// `models/<id>/model.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelRecord {
    pub schema: u32,
    pub id: String,
    pub name: String,
    pub job_id: String,
    pub experiment: String,
    pub created_at: DateTime<Utc>,
    pub architecture: Option<String>,
    pub pipeline_tag: Option<String>,
    pub parent_model: Option<String>,
    pub metadata: serde_json::Value,
    pub files: StoredRecord,
}

/// `datasets/<id>/dataset.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DatasetRecord {
    pub schema: u32,
    pub id: String,
    pub name: String,
    pub job_id: String,
    pub experiment: String,
    pub created_at: DateTime<Utc>,
    pub rows: Option<u64>,
    pub description: Option<String>,
    pub metadata: serde_json::Value,
    pub files: StoredRecord,
    /// The earlier version this one replaces (`labhost datasets append`):
    /// a name resolves to the newest version. Only imports set it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supersedes: Option<String>,
}

/// The identity of a model or dataset entry: what references resolve to
/// (read from its record, ignoring the rest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryRef {
    pub id: String,
    pub name: String,
    pub job_id: String,
    pub experiment: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supersedes: Option<String>,
}

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricPoint {
    pub name: String,
    #[serde(serialize_with = "finite::f64")]
    pub value: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<u64>,
    pub ts: DateTime<Utc>,
}

/// Serializers that refuse non-finite numbers: JSON cannot hold them
/// (serde_json would write `null`, which no reader accepts back), so a
/// record holding one is never written. The lab API refuses them first;
/// this is the guarantee that nothing slips through.
mod finite {
    use std::collections::BTreeMap;

    use serde::ser::{Error, SerializeMap};
    use serde::Serializer;

    fn check<E: Error>(v: f64) -> Result<f64, E> {
        if v.is_finite() {
            Ok(v)
        } else {
            Err(E::custom(format!(
                "a record cannot hold the non-finite number {v}"
            )))
        }
    }
    pub fn f64<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(check(*v)?)
    }
    pub fn f32<S: Serializer>(v: &f32, s: S) -> Result<S::Ok, S::Error> {
        check::<S::Error>(f64::from(*v))?;
        s.serialize_f32(*v)
    }
    pub fn map<S: Serializer>(m: &BTreeMap<String, f64>, s: S) -> Result<S::Ok, S::Error> {
        let mut out = s.serialize_map(Some(m.len()))?;
        for (k, v) in m {
            out.serialize_entry(k, &check::<S::Error>(*v)?)?;
        }
        out.end()
    }
}

#[cfg(test)]
mod finite_tests {
    use super::*;

    #[test]
    fn non_finite_numbers_are_never_written() {
        let p = MetricPoint {
            name: "x".into(),
            value: f64::INFINITY,
            step: None,
            ts: Utc::now(),
        };
        let err = serde_json::to_vec(&p).unwrap_err();
        assert!(err.to_string().contains("non-finite number inf"), "{err}");
        let ok = MetricPoint {
            value: f64::MAX,
            ..p
        };
        let back: MetricPoint = serde_json::from_slice(&serde_json::to_vec(&ok).unwrap()).unwrap();
        assert_eq!(back.value, f64::MAX);
    }
}
