//! Whether a Slurm-placed job still lives, decided without `flock`: the
//! job's heartbeat (written by the host running it, wherever that is) and
//! Slurm's own view of the job. Either alone misleads: a heartbeat stops
//! for a while on a slow shared disk, and Slurm keeps a lost node's job
//! RUNNING until it declares the node down. Only both together end a job
//! from outside. Pure: tested without a cluster.

use chrono::{DateTime, Utc};

use crate::heartbeat::Heartbeat;
use crate::store::{FailureKind, JobStatus};

/// Slurm job states in which the batch script may still run.
const ACTIVE: &[&str] = &[
    "PENDING",
    "CONFIGURING",
    "RUNNING",
    "SUSPENDED",
    "REQUEUED",
    "REQUEUE_HOLD",
    "REQUEUE_FED",
    "RESIZING",
    "SIGNALING",
    "STAGE_OUT",
    "RESV_DEL_HOLD",
];

/// Whether Slurm's state `state` (`squeue -o %T`) may still run the job.
pub fn is_active(state: &str) -> bool {
    ACTIVE.contains(&state)
}

/// What was seen of one job.
#[derive(Debug, Clone)]
pub struct Seen<'a> {
    /// Its record's status.
    pub status: JobStatus,
    pub heartbeat: Option<&'a Heartbeat>,
    /// Slurm's state for it; `None`: Slurm no longer knows the job.
    pub slurm: Option<&'a str>,
    pub slurm_id: &'a str,
    /// Someone asked for the job to be cancelled.
    pub cancel_requested: bool,
    pub now: DateTime<Utc>,
}

/// What to do about it.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// It may still run (or its host may still write its end): look again.
    Wait,
    /// Nothing will end it: record this end.
    End {
        status: JobStatus,
        failure: Option<FailureKind>,
        message: String,
    },
}

pub fn judge(seen: &Seen<'_>) -> Verdict {
    if seen.status.is_terminal() {
        return Verdict::Wait;
    }
    if seen.slurm.is_some_and(is_active) {
        return Verdict::Wait;
    }
    if seen.heartbeat.is_some_and(|h| h.is_alive(seen.now)) {
        return Verdict::Wait;
    }
    let slurm = match seen.slurm {
        Some(state) => format!("Slurm job {} is {state}", seen.slurm_id),
        None => format!("Slurm job {} is gone", seen.slurm_id),
    };
    match (seen.status, seen.heartbeat) {
        (JobStatus::Queued, None) if seen.cancel_requested || seen.slurm == Some("CANCELLED") => {
            Verdict::End {
                status: JobStatus::Cancelled,
                failure: None,
                message: format!("cancelled before it started ({slurm})"),
            }
        }
        (JobStatus::Queued, None) => Verdict::End {
            status: JobStatus::Interrupted,
            failure: Some(FailureKind::Interrupted),
            message: format!("{slurm} and no host started the job (see the job's executor.out)"),
        },
        (_, hb) => {
            let host = match hb {
                Some(h) => format!(
                    "the host on {} (pid {}) stopped its heartbeat at {}",
                    h.hostname,
                    h.pid,
                    h.renewed_at.format("%Y-%m-%d %H:%M:%S UTC")
                ),
                None => "the job's host never wrote a heartbeat".to_owned(),
            };
            if seen.cancel_requested && seen.slurm == Some("CANCELLED") {
                // The executor's scancel after the grace period: a cancel.
                return Verdict::End {
                    status: JobStatus::Cancelled,
                    failure: None,
                    message: format!("cancelled with scancel: {host} and {slurm}"),
                };
            }
            let lost = if seen.slurm == Some("NODE_FAIL") {
                "; its node was lost"
            } else {
                ""
            };
            Verdict::End {
                status: JobStatus::Interrupted,
                failure: Some(FailureKind::Interrupted),
                message: format!("{host} and {slurm}{lost}"),
            }
        }
    }
}

/// `squeue -h -o '%i|%T'` lines → (job id, state).
pub fn parse_squeue(out: &str) -> Vec<(String, String)> {
    out.lines()
        .filter_map(|l| {
            let (id, state) = l.trim().split_once('|')?;
            // `1234_5` (array task) or `1234`; states may carry a `+`.
            Some((id.to_owned(), state.trim_end_matches('+').to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn hb(renewed: i64) -> Heartbeat {
        let at = Utc.timestamp_opt(renewed, 0).unwrap();
        Heartbeat {
            hostname: "node3".into(),
            pid: 77,
            renewed_at: at,
            expires_at: at + crate::heartbeat::TTL,
        }
    }

    fn seen<'a>(
        status: JobStatus,
        heartbeat: Option<&'a Heartbeat>,
        slurm: Option<&'a str>,
        now: i64,
    ) -> Seen<'a> {
        Seen {
            status,
            heartbeat,
            slurm,
            slurm_id: "42",
            cancel_requested: false,
            now: Utc.timestamp_opt(now, 0).unwrap(),
        }
    }

    #[test]
    fn a_job_slurm_still_runs_is_alive_whatever_its_heartbeat() {
        let old = hb(1_000);
        for state in ["PENDING", "RUNNING", "SUSPENDED", "CONFIGURING"] {
            assert_eq!(
                judge(&seen(JobStatus::Running, Some(&old), Some(state), 9_999)),
                Verdict::Wait
            );
        }
        assert_eq!(
            judge(&seen(JobStatus::Queued, None, Some("PENDING"), 9_999)),
            Verdict::Wait
        );
    }

    #[test]
    fn a_fresh_heartbeat_keeps_a_job_slurm_ended() {
        let fresh = hb(1_000);
        // Slurm is done with the batch script, the host is writing its end.
        assert_eq!(
            judge(&seen(
                JobStatus::Running,
                Some(&fresh),
                Some("COMPLETING"),
                1_005
            )),
            Verdict::Wait
        );
        assert_eq!(
            judge(&seen(JobStatus::Running, Some(&fresh), None, 1_009)),
            Verdict::Wait
        );
    }

    #[test]
    fn a_lost_node_interrupts_the_job_only_when_both_agree() {
        let old = hb(1_000);
        // Heartbeat expired, but Slurm has not declared the node lost yet.
        assert_eq!(
            judge(&seen(
                JobStatus::Running,
                Some(&old),
                Some("RUNNING"),
                1_060
            )),
            Verdict::Wait
        );
        assert_eq!(
            judge(&seen(JobStatus::Running, Some(&old), Some("NODE_FAIL"), 1_060)),
            Verdict::End {
                status: JobStatus::Interrupted,
                failure: Some(FailureKind::Interrupted),
                message: "the host on node3 (pid 77) stopped its heartbeat at 1970-01-01 00:16:40 UTC and Slurm job 42 is NODE_FAIL; its node was lost".into(),
            }
        );
        // Expiry is exact: alive until expires_at, then not.
        assert_eq!(
            judge(&seen(JobStatus::Running, Some(&old), None, 1_009)),
            Verdict::Wait
        );
        assert!(matches!(
            judge(&seen(JobStatus::Running, Some(&old), None, 1_010)),
            Verdict::End {
                status: JobStatus::Interrupted,
                ..
            }
        ));
    }

    #[test]
    fn a_host_scancelled_after_a_cancel_request_ends_cancelled() {
        let old = hb(1_000);
        let mut s = seen(JobStatus::Running, Some(&old), Some("CANCELLED"), 1_060);
        // Cancelled by someone else (an admin's scancel): the job was cut off.
        assert!(matches!(
            judge(&s),
            Verdict::End {
                status: JobStatus::Interrupted,
                ..
            }
        ));
        s.cancel_requested = true;
        assert_eq!(
            judge(&s),
            Verdict::End {
                status: JobStatus::Cancelled,
                failure: None,
                message: "cancelled with scancel: the host on node3 (pid 77) stopped its heartbeat at 1970-01-01 00:16:40 UTC and Slurm job 42 is CANCELLED".into(),
            }
        );
    }

    #[test]
    fn a_queued_job_slurm_dropped_is_cancelled_or_interrupted() {
        assert_eq!(
            judge(&seen(JobStatus::Queued, None, Some("CANCELLED"), 5)),
            Verdict::End {
                status: JobStatus::Cancelled,
                failure: None,
                message: "cancelled before it started (Slurm job 42 is CANCELLED)".into(),
            }
        );
        let mut s = seen(JobStatus::Queued, None, None, 5);
        s.cancel_requested = true;
        assert!(matches!(
            judge(&s),
            Verdict::End {
                status: JobStatus::Cancelled,
                ..
            }
        ));
        assert_eq!(
            judge(&seen(JobStatus::Queued, None, Some("FAILED"), 5)),
            Verdict::End {
                status: JobStatus::Interrupted,
                failure: Some(FailureKind::Interrupted),
                message: "Slurm job 42 is FAILED and no host started the job (see the job's executor.out)".into(),
            }
        );
        // Terminal records are never judged.
        assert_eq!(
            judge(&seen(JobStatus::Complete, None, None, 5)),
            Verdict::Wait
        );
    }

    #[test]
    fn squeue_lines_are_parsed() {
        assert_eq!(
            parse_squeue("12|RUNNING\n13|COMPLETED\n\n14_2|PENDING\nbad\n"),
            [
                ("12".to_owned(), "RUNNING".to_owned()),
                ("13".to_owned(), "COMPLETED".to_owned()),
                ("14_2".to_owned(), "PENDING".to_owned()),
            ]
        );
    }
}
