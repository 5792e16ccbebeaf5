//! Pure transition logic: what a job or run looked like last time, what it
//! looks like now, and the events in between, in the order they happened.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::EventType;
use crate::pipeline::{RunRecord, RunStatus};
use crate::store::{JobRecord, JobStatus};

/// What is remembered of a job between looks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSeen {
    pub status: JobStatus,
    /// The job has started (its record has `started_at`).
    #[serde(default)]
    pub started: bool,
    /// The latest status stage: its time and text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<(DateTime<Utc>, String)>,
}

impl JobSeen {
    pub fn of(rec: &JobRecord) -> JobSeen {
        JobSeen {
            status: rec.status,
            started: rec.started_at.is_some(),
            stage: rec.status_stage.as_ref().map(|s| (s.at, s.status.clone())),
        }
    }

    /// A job before anything happened to it.
    pub fn unseen() -> JobSeen {
        JobSeen {
            status: JobStatus::Queued,
            started: false,
            stage: None,
        }
    }
}

/// The terminal event of a job status.
pub fn job_end_event(status: JobStatus) -> Option<EventType> {
    match status {
        JobStatus::Queued | JobStatus::Running => None,
        JobStatus::Complete => Some(EventType::JobCompleted),
        JobStatus::Failed => Some(EventType::JobFailed),
        JobStatus::Cancelled => Some(EventType::JobCancelled),
        JobStatus::Interrupted => Some(EventType::JobInterrupted),
    }
}

/// The events between two looks at a job (`prev` `None`: never seen), in
/// order: started, a new status stage, the end.
pub fn job_events(prev: Option<&JobSeen>, now: &JobSeen) -> Vec<EventType> {
    let unseen = JobSeen::unseen();
    let prev = prev.unwrap_or(&unseen);
    let mut out = Vec::new();
    if prev.status.is_terminal() {
        // An ended job never changes again.
        return out;
    }
    if now.started && !prev.started {
        out.push(EventType::JobStarted);
    }
    if now.stage.is_some() && now.stage != prev.stage {
        out.push(EventType::JobStatusStage);
    }
    out.extend(job_end_event(now.status));
    out
}

/// What is remembered of a pipeline run between looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSeen {
    /// As readers show it: RUNNING without a live runner is INTERRUPTED.
    pub status: RunStatus,
    /// How many times it was resumed.
    pub resumes: u32,
}

impl RunSeen {
    pub fn of(rec: &RunRecord, runner_alive: bool) -> RunSeen {
        let status = match rec.status {
            RunStatus::Running if !runner_alive => RunStatus::Interrupted,
            s => s,
        };
        RunSeen {
            status,
            resumes: rec.resumes,
        }
    }

    pub fn is_settled(&self) -> bool {
        self.status != RunStatus::Running
    }
}

fn run_end_event(status: RunStatus) -> Option<EventType> {
    match status {
        RunStatus::Running => None,
        RunStatus::Complete => Some(EventType::RunCompleted),
        RunStatus::Failed => Some(EventType::RunFailed),
        RunStatus::Cancelled => Some(EventType::RunCancelled),
        RunStatus::Interrupted => Some(EventType::RunInterrupted),
    }
}

/// The events between two looks at a run: `run.started` when it is first
/// seen or was resumed since, then its end if it ended since.
pub fn run_events(prev: Option<&RunSeen>, now: &RunSeen) -> Vec<EventType> {
    let mut out = Vec::new();
    let new_life = match prev {
        None => true,
        Some(p) => now.resumes > p.resumes,
    };
    if new_life {
        out.push(EventType::RunStarted);
    }
    let ended_before = prev.is_some_and(|p| p.is_settled()) && !new_life;
    if now.is_settled() && !ended_before {
        out.extend(run_end_event(now.status));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use EventType::*;

    fn at(s: u32) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + i64::from(s), 0).unwrap()
    }
    fn job(status: JobStatus, started: bool, stage: Option<(u32, &str)>) -> JobSeen {
        JobSeen {
            status,
            started,
            stage: stage.map(|(t, s)| (at(t), s.to_owned())),
        }
    }
    use JobStatus::*;

    #[test]
    fn a_job_seen_at_every_step() {
        let queued = job(Queued, false, None);
        let running = job(Running, true, None);
        let staged = job(Running, true, Some((1, "training")));
        let restaged = job(Running, true, Some((2, "training")));
        let done = job(Complete, true, Some((2, "training")));
        assert_eq!(job_events(None, &queued), vec![]);
        assert_eq!(job_events(Some(&queued), &running), vec![JobStarted]);
        assert_eq!(job_events(Some(&running), &running), vec![]);
        assert_eq!(job_events(Some(&running), &staged), vec![JobStatusStage]);
        // The same text reported again is a new stage (its time differs).
        assert_eq!(job_events(Some(&staged), &restaged), vec![JobStatusStage]);
        assert_eq!(job_events(Some(&restaged), &done), vec![JobCompleted]);
        assert_eq!(job_events(Some(&done), &done), vec![]);
    }

    #[test]
    fn a_job_seen_late_gets_every_event_in_order() {
        let failed = job(Failed, true, Some((1, "loading")));
        assert_eq!(
            job_events(None, &failed),
            vec![JobStarted, JobStatusStage, JobFailed]
        );
        assert_eq!(
            job_events(Some(&job(Running, true, None)), &failed),
            vec![JobStatusStage, JobFailed]
        );
        // Refused before it started: only its end.
        assert_eq!(job_events(None, &job(Failed, false, None)), vec![JobFailed]);
        for (status, end) in [
            (Complete, JobCompleted),
            (Cancelled, JobCancelled),
            (Interrupted, JobInterrupted),
        ] {
            assert_eq!(
                job_events(Some(&job(Running, true, None)), &job(status, true, None)),
                vec![end]
            );
        }
    }

    #[test]
    fn an_ended_job_never_emits_again() {
        let done = job(Complete, true, None);
        assert_eq!(
            job_events(Some(&done), &job(Interrupted, true, None)),
            vec![]
        );
        assert_eq!(
            job_events(Some(&done), &job(Complete, true, Some((3, "late")))),
            vec![]
        );
    }

    fn run(status: RunStatus, resumes: u32) -> RunSeen {
        RunSeen { status, resumes }
    }

    #[test]
    fn runs_start_end_and_resume() {
        use RunStatus as R;
        assert_eq!(run_events(None, &run(R::Running, 0)), vec![RunStarted]);
        assert_eq!(
            run_events(None, &run(R::Complete, 0)),
            vec![RunStarted, RunCompleted]
        );
        let running = run(R::Running, 0);
        assert_eq!(run_events(Some(&running), &running), vec![]);
        for (s, e) in [
            (R::Complete, RunCompleted),
            (R::Failed, RunFailed),
            (R::Cancelled, RunCancelled),
            (R::Interrupted, RunInterrupted),
        ] {
            assert_eq!(run_events(Some(&running), &run(s, 0)), vec![e]);
            assert_eq!(run_events(Some(&run(s, 0)), &run(s, 0)), vec![]);
        }
        // Interrupted, then resumed: started again; then failed.
        let died = run(R::Interrupted, 0);
        assert_eq!(run_events(Some(&died), &run(R::Running, 0)), vec![]);
        assert_eq!(
            run_events(Some(&died), &run(R::Running, 1)),
            vec![RunStarted]
        );
        assert_eq!(
            run_events(Some(&died), &run(R::Failed, 1)),
            vec![RunStarted, RunFailed]
        );
        assert_eq!(
            run_events(Some(&run(R::Running, 1)), &run(R::Failed, 1)),
            vec![RunFailed]
        );
    }
}
