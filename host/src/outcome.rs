//! How a job ended: a pure function from what the host observed (the
//! guest's own finish/fail, how `run()` came back, the interrupt that fired,
//! a refused memory growth) to the status, message and failure kind that go
//! into the record. No wasm here: unit-tested directly.

use crate::job::Interrupt;
use crate::sandbox::Limits;
use crate::store::{FailureKind, JobStatus};
use crate::units::{human_bytes, human_duration};

/// How the guest's `run()` came back.
#[derive(Debug, Clone)]
pub enum GuestEnd {
    /// `run()` returned (`Err`: the plugin's error text).
    Returned(Result<(), String>),
    /// The guest trapped, exited or was interrupted.
    Trapped {
        /// During instantiation, before `run()` was entered.
        at_start: bool,
        /// The trap's root cause.
        cause: String,
        /// `Some(status)` when the guest called `exit`.
        exit: Option<i32>,
    },
}

/// Everything [`classify`] decides from.
#[derive(Debug, Clone)]
pub struct Observed<'a> {
    /// Set by the guest's `finish`/`fail` (terminal and final).
    pub ended_by_guest: Option<(JobStatus, String)>,
    pub guest: GuestEnd,
    /// The interrupt that fired, if one did.
    pub interrupt: Option<Interrupt>,
    /// Bytes of a refused memory growth.
    pub memory_refused: Option<u64>,
    /// Why the host aborted the job (scratch limit...).
    pub abort_reason: Option<String>,
    pub cancel_requested: bool,
    pub limits: &'a Limits,
}

/// The record's ending, plus lines for the job log.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub status: JobStatus,
    pub message: String,
    pub failure: Option<FailureKind>,
    /// Host log lines that say what else happened.
    pub notes: Vec<String>,
}

/// What an interrupt means, in the words of the record.
pub fn interrupt_reason(i: Interrupt, abort_reason: Option<&str>, limits: &Limits) -> String {
    match i {
        Interrupt::Timeout => format!("time limit of {} exceeded", human_duration(limits.timeout)),
        Interrupt::Aborted => abort_reason.unwrap_or("stopped by the host").to_owned(),
        Interrupt::Cancelled => format!(
            "cancelled; the plugin did not stop within the {} grace period",
            human_duration(limits.grace)
        ),
    }
}

pub fn classify(o: Observed<'_>) -> Outcome {
    use JobStatus::*;
    let limits = o.limits;
    let mut notes = Vec::new();
    let memory = |asked: u64| {
        format!(
            "memory limit of {} exceeded (the plugin asked for {})",
            human_bytes(limits.memory_bytes),
            human_bytes(asked)
        )
    };
    let (status, message, failure) = match (o.ended_by_guest, &o.guest) {
        (Some((status, msg)), end) => {
            match end {
                GuestEnd::Returned(Ok(())) => {}
                GuestEnd::Returned(Err(err)) => {
                    notes.push(format!("plugin returned an error after ending the job: {err}"))
                }
                GuestEnd::Trapped { cause, .. } => match o.interrupt {
                    // The limit hit after finish()/fail() keeps its reason.
                    Some(i) => notes.push(format!(
                        "after the job ended {status}: {}",
                        interrupt_reason(i, o.abort_reason.as_deref(), limits)
                    )),
                    None => notes.push(format!("plugin trapped after ending the job: {cause}")),
                },
            }
            (status, msg, Some(FailureKind::PluginError))
        }
        // Runtimes that turn a refused memory growth into an exception
        // (SpiderMonkey: "out of memory") may return it as an error.
        (None, GuestEnd::Returned(Err(msg))) if o.memory_refused.is_some() => (
            Failed,
            format!(
                "memory limit of {} exceeded (the plugin asked for {}; it returned: {msg})",
                human_bytes(limits.memory_bytes),
                human_bytes(o.memory_refused.unwrap_or_default())
            ),
            Some(FailureKind::ResourceLimit),
        ),
        (None, GuestEnd::Returned(Err(msg))) => (
            Failed,
            format!("plugin returned an error: {msg}"),
            Some(FailureKind::PluginError),
        ),
        (None, GuestEnd::Returned(Ok(()))) => (
            Failed,
            "plugin returned without calling finish() or fail()".into(),
            Some(FailureKind::Crash),
        ),
        (None, GuestEnd::Trapped { at_start, cause, exit }) => match (o.interrupt, o.memory_refused)
        {
            (Some(i), _) => (
                if i == Interrupt::Cancelled { Cancelled } else { Failed },
                interrupt_reason(i, o.abort_reason.as_deref(), limits),
                Some(match i {
                    Interrupt::Timeout => FailureKind::Timeout,
                    Interrupt::Aborted => FailureKind::ResourceLimit,
                    Interrupt::Cancelled => FailureKind::PluginError,
                }),
            ),
            (None, Some(asked)) => (Failed, memory(asked), Some(FailureKind::ResourceLimit)),
            (None, None) if cause.contains("resource table has no free keys") => (
                Failed,
                format!(
                    "handle limit of {} live handles (open files, streams, pollables) exceeded",
                    limits.handles
                ),
                Some(FailureKind::ResourceLimit),
            ),
            (None, None) if exit.is_some() => (
                Failed,
                format!(
                    "plugin exited (status {}) without calling finish() or fail()",
                    exit.unwrap_or_default()
                ),
                Some(FailureKind::Crash),
            ),
            (None, None) if cause.ends_with("out of bounds memory access") => (
                Failed,
                format!(
                    "plugin crashed: {cause} (often a stack overflow: the guest's stack lives in its linear memory)"
                ),
                Some(FailureKind::Crash),
            ),
            (None, None) if *at_start => (
                Failed,
                format!("plugin failed to start: {cause}"),
                Some(FailureKind::Crash),
            ),
            (None, None) => (
                Failed,
                format!("plugin crashed: {cause}"),
                Some(FailureKind::Crash),
            ),
        },
    };
    // A cancel the plugin honoured by returning (or failing) is a cancel.
    let (status, message) = match (o.cancel_requested, status) {
        (true, Failed) if o.interrupt.is_none() => (Cancelled, format!("cancelled: {message}")),
        (_, status) => (status, message),
    };
    let failure = failure.filter(|_| status == Failed);
    Outcome {
        status,
        message,
        failure,
        notes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observed(limits: &Limits) -> Observed<'_> {
        Observed {
            ended_by_guest: None,
            guest: GuestEnd::Returned(Ok(())),
            interrupt: None,
            memory_refused: None,
            abort_reason: None,
            cancel_requested: false,
            limits,
        }
    }

    fn trapped(cause: &str) -> GuestEnd {
        GuestEnd::Trapped {
            at_start: false,
            cause: cause.into(),
            exit: None,
        }
    }

    #[test]
    fn finish_is_final_and_a_later_limit_keeps_its_reason() {
        let l = Limits {
            timeout: std::time::Duration::from_secs(2),
            ..Limits::default()
        };
        let o = classify(Observed {
            ended_by_guest: Some((JobStatus::Complete, "done".into())),
            guest: trapped("time limit reached"),
            interrupt: Some(Interrupt::Timeout),
            ..observed(&l)
        });
        assert_eq!(
            (o.status, o.message.as_str(), o.failure),
            (JobStatus::Complete, "done", None)
        );
        assert_eq!(
            o.notes,
            ["after the job ended COMPLETE: time limit of 2s exceeded"]
        );
        let o = classify(Observed {
            ended_by_guest: Some((JobStatus::Complete, "done".into())),
            guest: trapped("aborted"),
            interrupt: Some(Interrupt::Aborted),
            abort_reason: Some("scratch limit of 1 MiB exceeded (/work holds 2 MiB)".into()),
            ..observed(&l)
        });
        assert_eq!(
            o.notes,
            ["after the job ended COMPLETE: scratch limit of 1 MiB exceeded (/work holds 2 MiB)"]
        );
    }

    #[test]
    fn interrupts_limits_and_crashes() {
        let l = Limits::default();
        let cases: Vec<(Observed, JobStatus, &str, Option<FailureKind>)> = vec![
            (
                Observed {
                    guest: trapped("x"),
                    interrupt: Some(Interrupt::Timeout),
                    ..observed(&l)
                },
                JobStatus::Failed,
                "time limit of 1h exceeded",
                Some(FailureKind::Timeout),
            ),
            (
                Observed {
                    guest: trapped("x"),
                    interrupt: Some(Interrupt::Cancelled),
                    cancel_requested: true,
                    ..observed(&l)
                },
                JobStatus::Cancelled,
                "cancelled; the plugin did not stop within the 10s grace period",
                None,
            ),
            (
                Observed {
                    guest: trapped("x"),
                    memory_refused: Some(2 << 30),
                    ..observed(&l)
                },
                JobStatus::Failed,
                "memory limit of 1 GiB exceeded (the plugin asked for 2 GiB)",
                Some(FailureKind::ResourceLimit),
            ),
            (
                Observed {
                    guest: GuestEnd::Returned(Err("oom".into())),
                    memory_refused: Some(2 << 30),
                    ..observed(&l)
                },
                JobStatus::Failed,
                "memory limit of 1 GiB exceeded (the plugin asked for 2 GiB; it returned: oom)",
                Some(FailureKind::ResourceLimit),
            ),
            (
                Observed {
                    guest: GuestEnd::Trapped {
                        at_start: false,
                        cause: "exit".into(),
                        exit: Some(3),
                    },
                    ..observed(&l)
                },
                JobStatus::Failed,
                "plugin exited (status 3) without calling finish() or fail()",
                Some(FailureKind::Crash),
            ),
            (
                Observed {
                    guest: GuestEnd::Returned(Err("bad".into())),
                    cancel_requested: true,
                    ..observed(&l)
                },
                JobStatus::Cancelled,
                "cancelled: plugin returned an error: bad",
                None,
            ),
            (
                observed(&l),
                JobStatus::Failed,
                "plugin returned without calling finish() or fail()",
                Some(FailureKind::Crash),
            ),
        ];
        for (obs, status, message, failure) in cases {
            let o = classify(obs);
            assert_eq!(
                (o.status, o.message.as_str(), o.failure),
                (status, message, failure)
            );
        }
    }

    /// The branches the tests above leave out: crash causes, aborts, a
    /// guest's own fail() (under a cancel too), what a guest does after
    /// ending the job, and how limits read.
    #[test]
    fn crash_causes_aborts_guest_endings_and_durations() {
        let l = Limits {
            handles: 7,
            ..Limits::default()
        };
        let cases: Vec<(Observed, JobStatus, &str, Option<FailureKind>)> = vec![
            (
                Observed {
                    guest: trapped("wasm trap: resource table has no free keys"),
                    ..observed(&l)
                },
                JobStatus::Failed,
                "handle limit of 7 live handles (open files, streams, pollables) exceeded",
                Some(FailureKind::ResourceLimit),
            ),
            (
                Observed {
                    guest: trapped("wasm trap: out of bounds memory access"),
                    ..observed(&l)
                },
                JobStatus::Failed,
                "plugin crashed: wasm trap: out of bounds memory access (often a stack overflow: the guest's stack lives in its linear memory)",
                Some(FailureKind::Crash),
            ),
            (
                Observed {
                    guest: GuestEnd::Trapped {
                        at_start: true,
                        cause: "unreachable".into(),
                        exit: None,
                    },
                    ..observed(&l)
                },
                JobStatus::Failed,
                "plugin failed to start: unreachable",
                Some(FailureKind::Crash),
            ),
            (
                Observed {
                    guest: trapped("unreachable"),
                    ..observed(&l)
                },
                JobStatus::Failed,
                "plugin crashed: unreachable",
                Some(FailureKind::Crash),
            ),
            (
                Observed {
                    guest: GuestEnd::Returned(Err("bad".into())),
                    ..observed(&l)
                },
                JobStatus::Failed,
                "plugin returned an error: bad",
                Some(FailureKind::PluginError),
            ),
            (
                Observed {
                    guest: trapped("x"),
                    interrupt: Some(Interrupt::Aborted),
                    abort_reason: Some("scratch limit of 1 MiB exceeded".into()),
                    ..observed(&l)
                },
                JobStatus::Failed,
                "scratch limit of 1 MiB exceeded",
                Some(FailureKind::ResourceLimit),
            ),
            (
                Observed {
                    guest: trapped("x"),
                    interrupt: Some(Interrupt::Aborted),
                    ..observed(&l)
                },
                JobStatus::Failed,
                "stopped by the host",
                Some(FailureKind::ResourceLimit),
            ),
            (
                Observed {
                    ended_by_guest: Some((JobStatus::Failed, "gave up".into())),
                    ..observed(&l)
                },
                JobStatus::Failed,
                "gave up",
                Some(FailureKind::PluginError),
            ),
            (
                Observed {
                    ended_by_guest: Some((JobStatus::Failed, "stopped".into())),
                    cancel_requested: true,
                    ..observed(&l)
                },
                JobStatus::Cancelled,
                "cancelled: stopped",
                None,
            ),
            (
                Observed {
                    ended_by_guest: Some((JobStatus::Complete, "done".into())),
                    cancel_requested: true,
                    ..observed(&l)
                },
                JobStatus::Complete,
                "done",
                None,
            ),
        ];
        for (obs, status, message, failure) in cases {
            let o = classify(obs);
            assert_eq!(
                (o.status, o.message.as_str(), o.failure),
                (status, message, failure)
            );
        }
        // What the guest did after ending the job is a note, not the outcome.
        let o = classify(Observed {
            ended_by_guest: Some((JobStatus::Complete, "done".into())),
            guest: GuestEnd::Returned(Err("late".into())),
            ..observed(&l)
        });
        assert_eq!(
            (o.status, o.message.as_str()),
            (JobStatus::Complete, "done")
        );
        assert_eq!(
            o.notes,
            ["plugin returned an error after ending the job: late"]
        );
        let o = classify(Observed {
            ended_by_guest: Some((JobStatus::Failed, "no".into())),
            guest: trapped("unreachable"),
            ..observed(&l)
        });
        assert_eq!((o.status, o.message.as_str()), (JobStatus::Failed, "no"));
        assert_eq!(
            o.notes,
            ["plugin trapped after ending the job: unreachable"]
        );
        // Durations as limits read in messages.
        for (secs, shown) in [
            (1.5, "1.5s"),
            (2.0, "2s"),
            (59.0, "59s"),
            (60.0, "1m"),
            (90.0, "90s"),
            (120.0, "2m"),
            (0.25, "250ms"),
            (3600.0, "1h"),
        ] {
            assert_eq!(
                human_duration(std::time::Duration::from_secs_f64(secs)),
                shown
            );
        }
    }
}
