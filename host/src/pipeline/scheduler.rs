//! The scheduler's state machine: pure functions over the run record, with
//! the clock passed in. No I/O, no jobs: the runner (`runner.rs`) asks
//! [`next_actions`] what to do, starts jobs through its executor, reports
//! what happened ([`on_started`], [`on_setup_failed`], [`on_job_end`]) and
//! writes the record down.
//!
//! ```text
//!  WAITING ──needs all COMPLETE──▶ QUEUED ──worker free, backoff passed──▶ RUNNING
//!     │                              ▲                                      │
//!     └─a need FAILED/BLOCKED/       └──── retryable failure, retries left ─┤
//!       CANCELLED─▶ BLOCKED                 (not before now + backoff·2ⁿ)   ▼
//!                                                        COMPLETE / FAILED / CANCELLED
//! ```

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::file::RetryPolicy;
use super::record::{Attempt, Instance, InstanceStatus, RunRecord, RunStatus};
use crate::store::{FailureKind, JobRecord, JobStatus};

/// What a running pipeline reports. Serialised with its kind in `event`:
/// `{"event": "started", "instance": "train#2", ...}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
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
        /// Serialised as seconds.
        #[serde(with = "super::file::secs")]
        delay: Duration,
        message: String,
    },
    Blocked {
        instance: String,
        title: String,
        reason: String,
    },
}

/// A step the scheduler asks for, naming instances by their index in
/// `record.instances`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Every instance it needs completed: it waits for a worker.
    Queue { instance: usize },
    /// An instance it needs failed, was blocked or was cancelled.
    Block { instance: usize, reason: String },
    /// Run a job for it: a worker is free and its backoff has passed. The
    /// runner starts the job, then calls [`on_started`] or [`on_setup_failed`].
    Start { instance: usize },
}

/// What to do now: block the instances whose needs cannot complete, queue
/// those whose needs all completed (repeated until nothing changes), then
/// start queued instances whose backoff has passed at `now`, in record
/// order, while fewer than `record.workers` jobs are `running`. Queue and
/// Block actions come before Start actions (apply them in order). Once the
/// run is `cancelled` nothing is asked for: waiting instances stay waiting
/// (a resume runs them).
pub fn next_actions(
    record: &RunRecord,
    now: DateTime<Utc>,
    running: usize,
    cancelled: bool,
) -> Vec<Action> {
    let mut actions = Vec::new();
    if cancelled {
        return actions;
    }
    let index: HashMap<&str, usize> = record
        .instances
        .iter()
        .enumerate()
        .map(|(k, i)| (i.name.as_str(), k))
        .collect();
    let mut status: Vec<InstanceStatus> = record.instances.iter().map(|i| i.status).collect();
    loop {
        // Each pass sees the statuses as they were when it began.
        let before = status.clone();
        let of = |n: &String| index.get(n.as_str()).map(|&k| before[k]);
        let mut step = false;
        for (k, inst) in record.instances.iter().enumerate() {
            if status[k] != InstanceStatus::Waiting {
                continue;
            }
            let bad = inst.needs.iter().find_map(|n| match of(n) {
                Some(
                    s @ (InstanceStatus::Failed
                    | InstanceStatus::Blocked
                    | InstanceStatus::Cancelled),
                ) => Some((n, s)),
                _ => None,
            });
            if let Some((n, s)) = bad {
                status[k] = InstanceStatus::Blocked;
                actions.push(Action::Block {
                    instance: k,
                    reason: format!("needs {n}, which is {s}"),
                });
                step = true;
            } else if inst
                .needs
                .iter()
                .all(|n| of(n) == Some(InstanceStatus::Complete))
            {
                status[k] = InstanceStatus::Queued;
                actions.push(Action::Queue { instance: k });
                step = true;
            }
        }
        if !step {
            break;
        }
    }
    let free = record.workers.saturating_sub(running);
    let ready = record.instances.iter().enumerate().filter(|(k, i)| {
        status[*k] == InstanceStatus::Queued && i.not_before.is_none_or(|t| t <= now)
    });
    actions.extend(ready.take(free).map(|(k, _)| Action::Start { instance: k }));
    actions
}

/// Apply a Queue or Block action (a Start is applied by [`on_started`] or
/// [`on_setup_failed`]); returns the event to report, if any.
pub fn apply(record: &mut RunRecord, action: &Action) -> Option<PipelineEvent> {
    match action {
        Action::Queue { instance } => {
            record.instances[*instance].status = InstanceStatus::Queued;
            None
        }
        Action::Block { instance, reason } => {
            let inst = &mut record.instances[*instance];
            inst.status = InstanceStatus::Blocked;
            inst.message = Some(reason.clone());
            Some(PipelineEvent::Blocked {
                instance: inst.name.clone(),
                title: inst.title(),
                reason: reason.clone(),
            })
        }
        Action::Start { .. } => None,
    }
}

/// The attempt number the next job of instance `i` will have.
pub fn next_attempt(record: &RunRecord, i: usize) -> u32 {
    record.instances[i].attempts.len() as u32 + 1
}

/// A job of instance `i` started at `started_at` (from the checkpoint
/// `resumed_from`, `JOB:CHECKPOINT`, if any).
pub fn on_started(
    record: &mut RunRecord,
    i: usize,
    job_id: &str,
    resumed_from: Option<String>,
    started_at: DateTime<Utc>,
) -> PipelineEvent {
    let attempt = next_attempt(record, i);
    let inst = &mut record.instances[i];
    inst.status = InstanceStatus::Running;
    inst.not_before = None;
    inst.attempts.push(Attempt {
        job_id: Some(job_id.to_owned()),
        status: JobStatus::Running,
        failure: None,
        message: None,
        started_at,
        ended_at: None,
        resumed_from: resumed_from.clone(),
    });
    PipelineEvent::Started {
        instance: inst.name.clone(),
        title: inst.title(),
        job_id: job_id.to_owned(),
        attempt,
        resumed_from,
    }
}

/// Instance `i`'s last job still runs under an executor that outlived the
/// run's previous runner (a Slurm job): the resumed run waits for it
/// instead of starting another. Returns its job id.
pub fn reattach(record: &mut RunRecord, i: usize) -> Option<String> {
    let inst = &mut record.instances[i];
    let job = inst.last_job()?.to_owned();
    inst.status = InstanceStatus::Running;
    inst.not_before = None;
    Some(job)
}

/// Instance `i`'s job could not be started (failure kind `setup`): retried
/// if the stage retries setup failures, else failed.
pub fn on_setup_failed(
    record: &mut RunRecord,
    i: usize,
    message: String,
    started_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> PipelineEvent {
    record.instances[i].attempts.push(Attempt {
        job_id: None,
        status: JobStatus::Failed,
        failure: Some(FailureKind::Setup),
        message: Some(message),
        started_at,
        ended_at: Some(now),
        resumed_from: None,
    });
    after_failure(&mut record.instances[i], false, now)
}

/// How a job ended, as the scheduler needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct JobOutcome {
    pub status: JobStatus,
    pub failure: Option<FailureKind>,
    pub message: Option<String>,
    pub ended_at: Option<DateTime<Utc>>,
}

impl JobOutcome {
    /// From the job's final record.
    pub fn from_record(rec: &JobRecord) -> Self {
        JobOutcome {
            status: rec.status,
            failure: rec.failure,
            message: rec.message.clone(),
            ended_at: rec.ended_at,
        }
    }
    /// The job's end could not be observed (its executor failed): a crash.
    pub fn lost(message: String, now: DateTime<Utc>) -> Self {
        JobOutcome {
            status: JobStatus::Failed,
            failure: Some(FailureKind::Crash),
            message: Some(message),
            ended_at: Some(now),
        }
    }
}

/// Copy a job's end into its attempt.
pub fn record_outcome(a: &mut Attempt, outcome: &JobOutcome) {
    a.status = outcome.status;
    a.failure = outcome.failure;
    a.message = outcome.message.clone();
    a.ended_at = outcome.ended_at;
}

/// The running job of instance `i` ended: complete, cancelled, retried
/// after a backoff (when its failure kind is one the stage retries on,
/// retries are left and the run is not `cancelled`), or failed.
pub fn on_job_end(
    record: &mut RunRecord,
    i: usize,
    outcome: &JobOutcome,
    cancelled: bool,
    now: DateTime<Utc>,
) -> PipelineEvent {
    let inst = &mut record.instances[i];
    let attempt = inst
        .attempts
        .last_mut()
        .expect("a running instance has an attempt");
    record_outcome(attempt, outcome);
    let status = match attempt.status {
        JobStatus::Complete => InstanceStatus::Complete,
        JobStatus::Cancelled => InstanceStatus::Cancelled,
        _ => return after_failure(inst, cancelled, now),
    };
    let message = attempt.message.clone().unwrap_or_default();
    let (job_id, seconds) = (attempt.job_id.clone(), attempt.seconds());
    inst.status = status;
    inst.message = Some(message.clone());
    PipelineEvent::Ended {
        instance: inst.name.clone(),
        title: inst.title(),
        status,
        message,
        job_id,
        seconds,
    }
}

/// The wait before retry number `n` (1 for the first): the backoff,
/// doubled at each further retry.
pub fn retry_delay(policy: &RetryPolicy, n: u32) -> Duration {
    policy
        .backoff
        .saturating_mul(1u32 << n.saturating_sub(1).min(16))
}

/// The last attempt of `inst` failed: queue it again after its backoff, or
/// fail it.
fn after_failure(inst: &mut Instance, cancelled: bool, now: DateTime<Utc>) -> PipelineEvent {
    let attempt = inst.attempts.last().expect("attempt");
    let kind = attempt.failure;
    let message = attempt.message.clone().unwrap_or_default();
    let n = inst.attempts.len() as u32;
    let retryable = kind.is_some_and(|k| inst.retry.retry_on.contains(&k));
    if !cancelled && retryable && inst.retries_used < inst.retry.retries {
        inst.retries_used += 1;
        let delay = retry_delay(&inst.retry, inst.retries_used);
        inst.status = InstanceStatus::Queued;
        inst.not_before = Some(now + chrono::Duration::from_std(delay).unwrap_or_default());
        inst.message = Some(format!(
            "attempt {n} failed ({}): {message}; retry {}/{} in {}",
            kind.map_or("?", |k| k.as_str()),
            inst.retries_used,
            inst.retry.retries,
            crate::units::human_duration(delay)
        ));
        PipelineEvent::Retrying {
            instance: inst.name.clone(),
            title: inst.title(),
            failed_attempt: n,
            delay,
            message,
        }
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
        PipelineEvent::Ended {
            instance: inst.name.clone(),
            title: inst.title(),
            status: inst.status,
            message: inst.message.clone().unwrap_or_default(),
            job_id: attempt.job_id.clone(),
            seconds: attempt.seconds(),
        }
    }
}

/// Nothing runs and nothing more will start: the run is over (for now).
pub fn is_done(record: &RunRecord, running: usize, cancelled: bool) -> bool {
    running == 0 && (cancelled || record.count(InstanceStatus::Queued) == 0)
}

/// Write the run's end: COMPLETE when every instance completed, else
/// CANCELLED or FAILED, with counts.
pub fn finish(record: &mut RunRecord, cancelled: bool, now: DateTime<Utc>) {
    let (done, failed, blocked) = (
        record.count(InstanceStatus::Complete),
        record.count(InstanceStatus::Failed),
        record.count(InstanceStatus::Blocked),
    );
    let total = record.instances.len();
    record.status = if done == total {
        RunStatus::Complete
    } else if cancelled {
        RunStatus::Cancelled
    } else {
        RunStatus::Failed
    };
    record.message = Some(format!(
        "{done}/{total} complete, {failed} failed, {blocked} blocked{}",
        if cancelled { ", cancelled" } else { "" }
    ));
    record.ended_at = Some(now);
}

/// Make a run ready to go on (after its jobs' ends were copied in):
/// completed instances are kept; every other one waits again, with a fresh
/// retry budget and no backoff.
pub fn reopen(record: &mut RunRecord) {
    for inst in &mut record.instances {
        if inst.status == InstanceStatus::Complete {
            continue;
        }
        inst.status = InstanceStatus::Waiting;
        inst.message = None;
        inst.retries_used = 0;
        inst.not_before = None;
    }
    record.status = RunStatus::Running;
    record.message = None;
    record.ended_at = None;
    record.resumes += 1;
}

#[cfg(test)]
mod tests {
    use super::super::record::{PluginPin, RUN_SCHEMA};
    use super::*;
    use crate::sandbox::Limits;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn secs(s: i64) -> chrono::Duration {
        chrono::Duration::seconds(s)
    }

    fn inst(name: &str, needs: &[&str]) -> Instance {
        Instance {
            name: name.into(),
            stage: name.split('#').next().unwrap().into(),
            label: String::new(),
            needs: needs.iter().map(|n| n.to_string()).collect(),
            plugin: PluginPin {
                path: "/p.wasm".into(),
                blake3: "0".repeat(64),
                name: "p".into(),
                version: "1".into(),
            },
            config: Default::default(),
            datasets: vec![],
            models: vec![],
            dirs: vec![],
            env: vec![],
            http: vec![],
            secrets: vec![],
            limits: Limits::default(),
            retry: RetryPolicy {
                retries: 0,
                backoff: Duration::from_secs(1),
                retry_on: super::super::file::DEFAULT_RETRY_ON.to_vec(),
            },
            status: InstanceStatus::Waiting,
            message: None,
            attempts: vec![],
            retries_used: 0,
            not_before: None,
        }
    }

    fn run(workers: usize, instances: Vec<Instance>) -> RunRecord {
        RunRecord {
            schema: RUN_SCHEMA,
            id: "run".into(),
            pipeline: "p".into(),
            experiment: "e".into(),
            file: "/p.toml".into(),
            file_blake3: String::new(),
            workers,
            status: RunStatus::Running,
            message: None,
            created_at: t0(),
            updated_at: t0(),
            ended_at: None,
            runner_pid: 1,
            resumes: 0,
            instances,
        }
    }

    /// Apply every Queue/Block action and start every Start one (job ids
    /// `<instance>-<attempt>`); returns the started instances' names.
    fn step(rec: &mut RunRecord, now: DateTime<Utc>) -> Vec<String> {
        let running = rec.count(InstanceStatus::Running);
        let mut started = vec![];
        for a in next_actions(rec, now, running, false) {
            match a {
                Action::Start { instance } => {
                    let job = format!(
                        "{}-{}",
                        rec.instances[instance].name,
                        next_attempt(rec, instance)
                    );
                    on_started(rec, instance, &job, None, now);
                    started.push(rec.instances[instance].name.clone());
                }
                other => {
                    apply(rec, &other);
                }
            }
        }
        started
    }

    fn end(
        rec: &mut RunRecord,
        name: &str,
        status: JobStatus,
        failure: Option<FailureKind>,
        now: DateTime<Utc>,
    ) -> PipelineEvent {
        let i = rec.instances.iter().position(|i| i.name == name).unwrap();
        let outcome = JobOutcome {
            status,
            failure,
            message: Some(format!("{name} {status}")),
            ended_at: Some(now),
        };
        on_job_end(rec, i, &outcome, false, now)
    }

    fn status_of(rec: &RunRecord, name: &str) -> InstanceStatus {
        rec.instance(name).unwrap().status
    }

    #[test]
    fn ready_set_follows_needs_and_fan_in() {
        let mut rec = run(
            8,
            vec![
                inst("gen", &[]),
                inst("train#1", &["gen"]),
                inst("train#2", &["gen"]),
                inst("report", &["train#1", "train#2"]),
            ],
        );
        assert_eq!(
            next_actions(&rec, t0(), 0, false),
            [Action::Queue { instance: 0 }, Action::Start { instance: 0 }]
        );
        assert_eq!(step(&mut rec, t0()), ["gen"]);
        // Nothing else is ready while gen runs.
        assert!(next_actions(&rec, t0(), 1, false).is_empty());
        end(&mut rec, "gen", JobStatus::Complete, None, t0());
        assert_eq!(step(&mut rec, t0()), ["train#1", "train#2"]);
        // Fan-in: report waits for every upstream instance.
        end(&mut rec, "train#1", JobStatus::Complete, None, t0());
        assert!(step(&mut rec, t0()).is_empty());
        assert_eq!(status_of(&rec, "report"), InstanceStatus::Waiting);
        end(&mut rec, "train#2", JobStatus::Complete, None, t0());
        assert_eq!(step(&mut rec, t0()), ["report"]);
        end(&mut rec, "report", JobStatus::Complete, None, t0());
        assert!(is_done(&rec, 0, false));
        finish(&mut rec, false, t0());
        assert_eq!(rec.status, RunStatus::Complete);
        assert_eq!(
            rec.message.as_deref(),
            Some("4/4 complete, 0 failed, 0 blocked")
        );
    }

    #[test]
    fn workers_bound_the_jobs_at_once() {
        let mut rec = run(2, (1..=5).map(|k| inst(&format!("s#{k}"), &[])).collect());
        assert_eq!(step(&mut rec, t0()), ["s#1", "s#2"]);
        assert_eq!(rec.count(InstanceStatus::Queued), 3);
        // No free worker: nothing starts.
        assert!(next_actions(&rec, t0(), 2, false).is_empty());
        end(&mut rec, "s#2", JobStatus::Complete, None, t0());
        assert_eq!(step(&mut rec, t0()), ["s#3"]);
        assert!(!is_done(&rec, 2, false));
    }

    #[test]
    fn retries_with_doubled_backoff_on_the_injected_clock() {
        let mut a = inst("a", &[]);
        a.retry.retries = 2;
        a.retry.backoff = Duration::from_secs(10);
        let mut rec = run(1, vec![a]);
        assert_eq!(step(&mut rec, t0()), ["a"]);
        let e = end(
            &mut rec,
            "a",
            JobStatus::Failed,
            Some(FailureKind::Crash),
            t0(),
        );
        assert!(
            matches!(&e, PipelineEvent::Retrying { failed_attempt: 1, delay, .. } if *delay == Duration::from_secs(10)),
            "{e:?}"
        );
        let a = rec.instance("a").unwrap();
        assert_eq!(a.status, InstanceStatus::Queued);
        assert_eq!(a.not_before, Some(t0() + secs(10)));
        assert!(
            a.message
                .as_deref()
                .unwrap()
                .starts_with("attempt 1 failed (crash): a FAILED; retry 1/2 in 10s"),
            "{:?}",
            a.message
        );
        // Not before its backoff has passed.
        assert!(step(&mut rec, t0() + secs(9)).is_empty());
        assert_eq!(step(&mut rec, t0() + secs(10)), ["a"]);
        assert_eq!(rec.instance("a").unwrap().not_before, None);
        // The second retry waits twice as long.
        let now = t0() + secs(15);
        let e = end(
            &mut rec,
            "a",
            JobStatus::Failed,
            Some(FailureKind::Timeout),
            now,
        );
        assert!(
            matches!(&e, PipelineEvent::Retrying { failed_attempt: 2, delay, .. } if *delay == Duration::from_secs(20)),
            "{e:?}"
        );
        assert!(step(&mut rec, now + secs(19)).is_empty());
        assert_eq!(step(&mut rec, now + secs(20)), ["a"]);
        // No retries left.
        let e = end(
            &mut rec,
            "a",
            JobStatus::Failed,
            Some(FailureKind::Crash),
            now + secs(30),
        );
        assert!(
            matches!(
                &e,
                PipelineEvent::Ended {
                    status: InstanceStatus::Failed,
                    ..
                }
            ),
            "{e:?}"
        );
        let a = rec.instance("a").unwrap();
        assert_eq!(
            a.message.as_deref(),
            Some("a FAILED (crash, after 3 attempts)")
        );
        assert_eq!(a.attempts.len(), 3);
        assert!(is_done(&rec, 0, false));
        assert_eq!(retry_delay(&a.retry, 3), Duration::from_secs(40));
    }

    #[test]
    fn only_retry_on_kinds_are_retried() {
        let mut a = inst("a", &[]);
        a.retry.retries = 3;
        a.retry.retry_on = vec![FailureKind::Timeout];
        let mut b = inst("b", &[]);
        b.retry.retries = 1;
        b.retry.retry_on = vec![FailureKind::Setup];
        let mut rec = run(2, vec![a, b]);
        assert_eq!(step(&mut rec, t0()), ["a", "b"]);
        let e = end(
            &mut rec,
            "a",
            JobStatus::Failed,
            Some(FailureKind::PluginError),
            t0(),
        );
        assert!(matches!(
            e,
            PipelineEvent::Ended {
                status: InstanceStatus::Failed,
                ..
            }
        ));
        assert_eq!(status_of(&rec, "a"), InstanceStatus::Failed);
        assert_eq!(
            rec.instance("a").unwrap().message.as_deref(),
            Some("a FAILED (plugin-error)")
        );
        // A job that could not start is a setup failure (retried here).
        rec.instances[1].attempts.clear();
        rec.instances[1].status = InstanceStatus::Queued;
        let e = on_setup_failed(&mut rec, 1, "no such dataset".into(), t0(), t0());
        assert!(
            matches!(
                e,
                PipelineEvent::Retrying {
                    failed_attempt: 1,
                    ..
                }
            ),
            "{e:?}"
        );
        assert_eq!(
            rec.instances[1].attempts[0].failure,
            Some(FailureKind::Setup)
        );
        assert_eq!(rec.instances[1].attempts[0].job_id, None);
        assert_eq!(step(&mut rec, t0() + secs(1)), ["b"]);
    }

    #[test]
    fn a_failure_blocks_dependants_and_independent_branches_go_on() {
        let mut rec = run(
            4,
            vec![
                inst("a", &[]),
                inst("b", &[]),
                inst("a2", &["a"]),
                inst("a3", &["a2"]),
                inst("b2", &["b"]),
                inst("all", &["a3", "b2"]),
            ],
        );
        assert_eq!(step(&mut rec, t0()), ["a", "b"]);
        end(
            &mut rec,
            "a",
            JobStatus::Failed,
            Some(FailureKind::PluginError),
            t0(),
        );
        let actions = next_actions(&rec, t0(), 1, false);
        assert_eq!(
            actions,
            [
                Action::Block {
                    instance: 2,
                    reason: "needs a, which is FAILED".into()
                },
                Action::Block {
                    instance: 3,
                    reason: "needs a2, which is BLOCKED".into()
                },
                Action::Block {
                    instance: 5,
                    reason: "needs a3, which is BLOCKED".into()
                },
            ]
        );
        let events: Vec<_> = actions.iter().filter_map(|a| apply(&mut rec, a)).collect();
        assert_eq!(
            events[0],
            PipelineEvent::Blocked {
                instance: "a2".into(),
                title: "a2".into(),
                reason: "needs a, which is FAILED".into()
            }
        );
        assert_eq!(
            rec.instance("a3").unwrap().message.as_deref(),
            Some("needs a2, which is BLOCKED")
        );
        // The other branch goes on.
        end(&mut rec, "b", JobStatus::Complete, None, t0());
        assert_eq!(step(&mut rec, t0()), ["b2"]);
        end(&mut rec, "b2", JobStatus::Complete, None, t0());
        assert!(step(&mut rec, t0()).is_empty());
        assert!(is_done(&rec, 0, false));
        finish(&mut rec, false, t0());
        assert_eq!(rec.status, RunStatus::Failed);
        assert_eq!(
            rec.message.as_deref(),
            Some("2/6 complete, 1 failed, 3 blocked")
        );
    }

    #[test]
    fn resume_skips_completed_instances() {
        let mut a = inst("a", &[]);
        a.retry.retries = 1;
        let mut rec = run(
            4,
            vec![a, inst("b", &["a"]), inst("c", &["b"]), inst("d", &[])],
        );
        assert_eq!(step(&mut rec, t0()), ["a", "d"]);
        end(&mut rec, "a", JobStatus::Complete, None, t0());
        assert_eq!(step(&mut rec, t0()), ["b"]);
        // The runner died: b and d were running, c waiting.
        let mut rec: RunRecord =
            serde_json::from_str(&serde_json::to_string(&rec).unwrap()).unwrap();
        rec.instances[3].retries_used = 1;
        rec.instances[3].not_before = Some(t0() + secs(100));
        reopen(&mut rec);
        assert_eq!(rec.resumes, 1);
        assert_eq!(status_of(&rec, "a"), InstanceStatus::Complete);
        for n in ["b", "c", "d"] {
            let i = rec.instance(n).unwrap();
            assert_eq!(
                (i.status, i.retries_used, i.not_before),
                (InstanceStatus::Waiting, 0, None),
                "{n}"
            );
        }
        // Only the instances that did not complete run again.
        assert_eq!(step(&mut rec, t0()), ["b", "d"]);
        assert_eq!(rec.instance("b").unwrap().attempts.len(), 2);
        assert_eq!(rec.instance("a").unwrap().attempts.len(), 1);
    }

    #[test]
    fn cancel_leaves_waiting_instances_waiting() {
        let mut rec = run(
            2,
            vec![
                inst("a", &[]),
                inst("b", &["a"]),
                inst("c", &[]),
                inst("d", &[]),
            ],
        );
        assert_eq!(step(&mut rec, t0()), ["a", "c"]);
        // Cancelled: nothing is queued, blocked or started any more.
        assert!(next_actions(&rec, t0(), 2, true).is_empty());
        let i = 0;
        let e = on_job_end(
            &mut rec,
            i,
            &JobOutcome {
                status: JobStatus::Cancelled,
                failure: None,
                message: Some("cancelled".into()),
                ended_at: Some(t0()),
            },
            true,
            t0(),
        );
        assert!(matches!(
            e,
            PipelineEvent::Ended {
                status: InstanceStatus::Cancelled,
                ..
            }
        ));
        // A retryable failure while cancelling is not retried.
        rec.instances[2].retry.retries = 5;
        let e = on_job_end(
            &mut rec,
            2,
            &JobOutcome::lost("gone".into(), t0()),
            true,
            t0(),
        );
        assert!(
            matches!(
                e,
                PipelineEvent::Ended {
                    status: InstanceStatus::Failed,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(next_actions(&rec, t0(), 0, true).is_empty());
        assert!(is_done(&rec, 0, true));
        assert_eq!(status_of(&rec, "b"), InstanceStatus::Waiting);
        assert_eq!(status_of(&rec, "d"), InstanceStatus::Queued);
        finish(&mut rec, true, t0());
        assert_eq!(rec.status, RunStatus::Cancelled);
        assert_eq!(
            rec.message.as_deref(),
            Some("0/4 complete, 1 failed, 0 blocked, cancelled")
        );
    }

    #[test]
    fn events_serialise_tagged() {
        let e = PipelineEvent::Retrying {
            instance: "train#2".into(),
            title: "train#2 (lr=0.5)".into(),
            failed_attempt: 1,
            delay: Duration::from_millis(1500),
            message: "boom".into(),
        };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["event"], "retrying");
        assert_eq!(v["delay"], 1.5);
        assert_eq!(serde_json::from_value::<PipelineEvent>(v).unwrap(), e);
        let e = PipelineEvent::Ended {
            instance: "a".into(),
            title: "a".into(),
            status: InstanceStatus::Complete,
            message: "ok".into(),
            job_id: Some("j".into()),
            seconds: 0.25,
        };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(
            (v["event"].as_str(), v["status"].as_str()),
            (Some("ended"), Some("COMPLETE"))
        );
        assert_eq!(serde_json::from_value::<PipelineEvent>(v).unwrap(), e);
    }

    /// A resumed run waits for a job that outlived its previous runner:
    /// the instance runs again with no new attempt, takes no second
    /// worker slot, and its end is that attempt's end.
    #[test]
    fn a_reattached_job_is_waited_for_not_started_again() {
        let mut rec = run(1, vec![inst("a", &[]), inst("b", &["a"])]);
        assert_eq!(step(&mut rec, t0()), ["a"]);
        // The runner dies; resume reopens the run with `a` unfinished.
        reopen(&mut rec);
        assert_eq!(rec.instances[0].status, InstanceStatus::Waiting);
        assert_eq!(reattach(&mut rec, 0).as_deref(), Some("a-1"));
        assert_eq!(rec.instances[0].status, InstanceStatus::Running);
        assert_eq!(rec.instances[0].attempts.len(), 1);
        // One worker, taken by the reattached job: nothing starts.
        assert!(next_actions(&rec, t0(), 1, false).is_empty());
        end(&mut rec, "a", JobStatus::Complete, None, t0() + secs(5));
        assert_eq!(rec.instances[0].status, InstanceStatus::Complete);
        assert_eq!(rec.instances[0].attempts[0].status, JobStatus::Complete);
        assert_eq!(step(&mut rec, t0() + secs(5)), ["b"]);
        // An instance that never started has nothing to reattach.
        let mut fresh = run(1, vec![inst("c", &[])]);
        assert_eq!(reattach(&mut fresh, 0), None);
        assert_eq!(fresh.instances[0].status, InstanceStatus::Waiting);
    }
}
