//! Job events an embedder (or the CLI) can subscribe to while a job runs.

use serde::Serialize;

use crate::store::JobStatus;

/// Where a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogSource {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
    /// The guest's stdout / stderr, line by line.
    Stdout,
    Stderr,
    /// A message from labhost itself about the job.
    Host,
}

impl LogSource {
    /// The source a log tag names (`INFO`, `STDOUT`...).
    pub fn from_tag(tag: &str) -> Option<LogSource> {
        [
            LogSource::Trace,
            LogSource::Debug,
            LogSource::Info,
            LogSource::Warn,
            LogSource::Error,
            LogSource::Stdout,
            LogSource::Stderr,
            LogSource::Host,
        ]
        .into_iter()
        .find(|s| s.tag() == tag)
    }
    pub fn tag(self) -> &'static str {
        match self {
            LogSource::Trace => "TRACE",
            LogSource::Debug => "DEBUG",
            LogSource::Info => "INFO",
            LogSource::Warn => "WARN",
            LogSource::Error => "ERROR",
            LogSource::Stdout => "STDOUT",
            LogSource::Stderr => "STDERR",
            LogSource::Host => "HOST",
        }
    }
}

/// What kind of thing was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StoredKind {
    Artifact,
    Checkpoint,
    Model,
    Dataset,
    Eval,
}

/// One thing that happened in a job.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum JobEvent {
    Started {
        job_id: String,
        experiment: String,
        plugin: String,
    },
    Log {
        source: LogSource,
        message: String,
    },
    Progress {
        percent: f32,
        stage: Option<String>,
    },
    /// A status stage (`job.update-status`).
    Status {
        status: String,
        error_message: Option<String>,
    },
    Metric {
        name: String,
        value: f64,
        step: Option<u64>,
    },
    Stored {
        kind: StoredKind,
        name: String,
        location: String,
        size: u64,
        blake3: String,
    },
    Ended {
        status: JobStatus,
        message: String,
    },
}
