//! Lifecycle events of jobs and pipeline runs, for webhooks out: found by
//! watching the workspace's records (so the jobs of every process count:
//! the CLI's as well as a server's), queued durably, then delivered by
//! `labhost serve` (`serve/src/outbox.rs`).
//!
//! ```text
//!  job.json / run.json ──(watch.rs: each tick, only live records are read)──▶
//!      transitions.rs (pure: last seen state → new state = events)
//!          ──▶ outbox.rs: one file per event and webhook, durable,
//!              BEFORE the seen state advances (`outbox/seen.jsonl`)
//!          ──▶ delivery (serve): POST, signed; retried with backoff;
//!              `dead/` after the last attempt
//! ```
//!
//! An event's id is derived from what happened (the job, the event type,
//! the status stage's time, the run's resume count), so an event found again
//! after a crash has the id it had: receivers dedupe on `webhook-id`.
//!
//! Status stages are seen as the job record shows them: a stage replaced by
//! the next within one record snapshot (about a second) is not seen.

pub mod outbox;
pub mod transitions;
pub mod watch;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

use crate::pipeline::{InstanceStatus, RunRecord, RunStatus};
use crate::store::JobRecord;

pub use outbox::{backoff, AfterFailure, HookQueue, Outbox, PendingEvent};
pub use transitions::{job_events, run_events, JobSeen, RunSeen};
pub use watch::Watcher;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    JobStarted,
    /// The plugin reported a status stage (`job.update-status`).
    JobStatusStage,
    JobCompleted,
    JobFailed,
    JobCancelled,
    /// The process running the job died.
    JobInterrupted,
    /// A run started, or was resumed.
    RunStarted,
    RunCompleted,
    RunFailed,
    RunCancelled,
    /// The process running the run died.
    RunInterrupted,
}

impl EventType {
    pub const ALL: [EventType; 11] = [
        EventType::JobStarted,
        EventType::JobStatusStage,
        EventType::JobCompleted,
        EventType::JobFailed,
        EventType::JobCancelled,
        EventType::JobInterrupted,
        EventType::RunStarted,
        EventType::RunCompleted,
        EventType::RunFailed,
        EventType::RunCancelled,
        EventType::RunInterrupted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::JobStarted => "job.started",
            EventType::JobStatusStage => "job.status_stage",
            EventType::JobCompleted => "job.completed",
            EventType::JobFailed => "job.failed",
            EventType::JobCancelled => "job.cancelled",
            EventType::JobInterrupted => "job.interrupted",
            EventType::RunStarted => "run.started",
            EventType::RunCompleted => "run.completed",
            EventType::RunFailed => "run.failed",
            EventType::RunCancelled => "run.cancelled",
            EventType::RunInterrupted => "run.interrupted",
        }
    }

    pub fn parse(s: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One event, ready to send: its stable id, its type and the exact body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `msg_<32 hex>`, the same whenever this event is found again.
    pub id: String,
    pub kind: EventType,
    /// JSON: `{"type", "timestamp", "data": {…}}`.
    pub body: String,
}

/// The id of the event `kind` of the job or run `subject`; `detail` tells
/// apart events of one type (a status stage's time, a run's resume count).
pub fn event_id(subject: &str, kind: EventType, detail: &str) -> String {
    let mut h = blake3::Hasher::new();
    for part in [subject, kind.as_str(), detail] {
        h.update(part.as_bytes());
        h.update(&[0]);
    }
    format!("msg_{}", &h.finalize().to_hex()[..32])
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn body(kind: EventType, at: DateTime<Utc>, data: Value) -> String {
    json!({"type": kind.as_str(), "timestamp": time(at), "data": data}).to_string()
}

/// The event `kind` of a job, from its record as read now. `data` is the
/// job as its record shows it when the event was found (a job that ended
/// between two looks gets its `job.started` with its final status); the
/// timestamp is when it happened, by the record.
pub fn job_event(kind: EventType, rec: &JobRecord, found_at: DateTime<Utc>) -> Event {
    let at = match kind {
        EventType::JobStarted => rec.started_at,
        EventType::JobStatusStage => rec.status_stage.as_ref().map(|s| s.at),
        _ => rec.ended_at,
    }
    .unwrap_or(found_at);
    let detail = match (kind, &rec.status_stage) {
        (EventType::JobStatusStage, Some(s)) => format!("{}\0{}", time(s.at), s.status),
        _ => String::new(),
    };
    let stage = rec
        .status_stage
        .as_ref()
        .map(|s| json!({"status": s.status, "error_message": s.error_message, "at": time(s.at)}));
    let data = json!({
        "job_id": rec.id,
        "experiment": rec.experiment,
        "plugin": {"name": rec.plugin.name, "version": rec.plugin.version, "blake3": rec.plugin.blake3},
        "status": rec.status.as_str(),
        "status_stage": stage,
        "message": rec.message,
        "failure": rec.failure.map(|f| f.as_str()),
        "progress": rec.progress,
        "scores": rec.scores,
        "pipeline": rec.pipeline,
        "metadata": rec.metadata,
        "created_at": time(rec.created_at),
        "started_at": rec.started_at.map(time),
        "ended_at": rec.ended_at.map(time),
    });
    Event {
        id: event_id(&format!("job/{}/{}", rec.experiment, rec.id), kind, &detail),
        kind,
        body: body(kind, at, data),
    }
}

/// The event `kind` of a pipeline run; `status` is the run's status as
/// readers show it (INTERRUPTED when its process is gone).
pub fn run_event(
    kind: EventType,
    rec: &RunRecord,
    status: RunStatus,
    found_at: DateTime<Utc>,
) -> Event {
    let at = match kind {
        EventType::RunStarted => None,
        _ => rec.ended_at,
    }
    .unwrap_or(found_at);
    let count = |s: InstanceStatus| rec.count(s);
    let data = json!({
        "run_id": rec.id,
        "pipeline": rec.pipeline,
        "experiment": rec.experiment,
        "status": status.as_str(),
        "message": rec.message,
        "resumes": rec.resumes,
        "instances": {
            "total": rec.instances.len(),
            "complete": count(InstanceStatus::Complete),
            "failed": count(InstanceStatus::Failed),
            "cancelled": count(InstanceStatus::Cancelled),
            "blocked": count(InstanceStatus::Blocked),
            "running": count(InstanceStatus::Running),
        },
        "created_at": time(rec.created_at),
        "ended_at": rec.ended_at.map(time),
    });
    Event {
        id: event_id(&format!("run/{}", rec.id), kind, &rec.resumes.to_string()),
        kind,
        body: body(kind, at, data),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_names_round_trip_and_ids_are_stable() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
        }
        assert_eq!(EventType::parse("job.finished"), None);
        let a = event_id("job/e/1", EventType::JobStarted, "");
        assert_eq!(a, event_id("job/e/1", EventType::JobStarted, ""));
        assert!(a.starts_with("msg_") && a.len() == 36, "{a}");
        assert_ne!(a, event_id("job/e/1", EventType::JobCompleted, ""));
        assert_ne!(a, event_id("job/e/2", EventType::JobStarted, ""));
        assert_ne!(
            event_id("run/r", EventType::RunStarted, "0"),
            event_id("run/r", EventType::RunStarted, "1")
        );
    }
}
