//! The process's file-descriptor budget. Every job in a process shares its
//! descriptor limit (`RLIMIT_NOFILE`), so a job allowed more live handles
//! than the process can open would starve its neighbours (they could not
//! even write their records). At the first job the soft limit is raised to
//! the hard one; each job then leases the descriptors it may use — its
//! handle limit plus the host's own files for it — and a job is given fewer
//! handles than it asked for when the rest of the process needs them (and
//! never more than a quarter of the process's descriptors).

use std::sync::Mutex;

/// Descriptors kept for the host itself (records, logs, group commits of
/// stored files, the compile cache, the runtime).
const HOST_RESERVED: u64 = 192;
/// Host-side descriptors of a job besides its mounts (log, metrics, lock,
/// the file being stored and its copy, a record being written).
pub const PER_JOB_HOST: u64 = 8;
/// Fewest guest handles a job is started with.
pub const MIN_HANDLES: u64 = 64;

struct Budget {
    limit: u64,
    free: u64,
}

static BUDGET: Mutex<Option<Budget>> = Mutex::new(None);

/// Descriptors leased by one job; returned when dropped.
#[derive(Debug)]
pub struct Lease {
    n: u64,
}

impl Drop for Lease {
    fn drop(&mut self) {
        let mut b = BUDGET.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(b) = b.as_mut() {
            b.free += self.n;
        }
    }
}

/// Raise the soft descriptor limit to the hard one; returns the limit now
/// in force.
fn raise_nofile() -> u64 {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut l = getrlimit(Resource::Nofile);
    if l.current < l.maximum {
        let raised = rustix::process::Rlimit {
            current: l.maximum,
            maximum: l.maximum,
        };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            l = raised;
        }
    }
    l.current.unwrap_or(u64::MAX)
}

/// Lease descriptors for a job that asks for `handles` guest handles and
/// has `host_fds` descriptors of its own. Returns the lease and the guest
/// handles granted (see [`grant`]). Never fails: a process short of
/// descriptors gives its jobs fewer handles rather than refusing them.
pub fn lease(handles: u64, host_fds: u64) -> (Lease, u64) {
    let mut guard = BUDGET.lock().unwrap_or_else(|e| e.into_inner());
    let b = guard.get_or_insert_with(|| {
        let limit = raise_nofile();
        Budget {
            limit,
            free: limit.saturating_sub(HOST_RESERVED),
        }
    });
    let cap = b.limit.saturating_sub(HOST_RESERVED) / 4;
    let (granted, n) = grant(b.free, cap, handles, host_fds);
    b.free -= n;
    (Lease { n }, granted)
}

/// The pure rule: `(handles granted, descriptors leased)`. One job never
/// gets more than `cap` (a quarter of the process's descriptors), and, while
/// the process has them, gets descriptors no other job can take; when it is
/// short, a job still gets [`MIN_HANDLES`] (or what it asked, if fewer) and
/// leases what is left.
fn grant(free: u64, cap: u64, handles: u64, host_fds: u64) -> (u64, u64) {
    let want = handles.min(cap).max(MIN_HANDLES.min(handles));
    let granted = if free >= want + host_fds {
        want
    } else {
        free.saturating_sub(host_fds)
            .max(MIN_HANDLES.min(handles))
            .min(want)
    };
    (granted, (granted + host_fds).min(free))
}

#[cfg(test)]
mod tests {
    use super::grant;

    #[test]
    fn one_job_gets_at_most_a_quarter_and_a_short_process_gives_fewer_handles() {
        // Plenty: what was asked.
        assert_eq!(grant(1_000_000, 250_000, 4096, 10), (4096, 4106));
        // `ulimit -n 1024`: 832 usable, a quarter per job at most.
        assert_eq!(grant(832, 208, 4096, 10), (208, 218));
        assert_eq!(grant(614, 208, 4096, 10), (208, 218));
        // Short: what is left, never under the minimum.
        assert_eq!(grant(100, 208, 4096, 10), (90, 100));
        assert_eq!(grant(20, 208, 4096, 10), (64, 20));
        assert_eq!(grant(0, 208, 4096, 10), (64, 0));
        // A job that asks for few gets them.
        assert_eq!(grant(832, 208, 20, 10), (20, 30));
    }
}
