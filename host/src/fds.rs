//! The process's file-descriptor budget. Every job in a process shares its
//! descriptor limit (`RLIMIT_NOFILE`), so a job allowed more live handles
//! than the process can open would starve its neighbours (they could not
//! even write their records). At the first job the soft limit is raised to
//! the hard one; each job then leases the descriptors it may use — its
//! handle limit plus the host's own files for it — and a job is given fewer
//! handles than it asked for when the rest of the process needs them.

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
        if setrlimit(Resource::Nofile, raised.clone()).is_ok() {
            l = raised;
        }
    }
    l.current.unwrap_or(u64::MAX)
}

/// Lease descriptors for a job that asks for `handles` guest handles and
/// has `host_fds` descriptors of its own. Returns the lease and the guest
/// handles granted: what was asked, or less when the process is short (at
/// most half of what is free goes to one job), never under
/// [`MIN_HANDLES`].
pub fn lease(handles: u64, host_fds: u64) -> anyhow::Result<(Lease, u64)> {
    let mut guard = BUDGET.lock().unwrap_or_else(|e| e.into_inner());
    let b = guard.get_or_insert_with(|| {
        let limit = raise_nofile();
        Budget {
            limit,
            free: limit.saturating_sub(HOST_RESERVED),
        }
    });
    let (granted, n) = grant(b.free, handles, host_fds).ok_or_else(|| {
        anyhow::anyhow!(
            "not enough file descriptors for another job: {} of this process's {} are free; \
             raise the limit (ulimit -n), lower max-handles or run fewer jobs at once",
            b.free,
            b.limit
        )
    })?;
    b.free -= n;
    Ok((Lease { n }, granted))
}

/// The pure rule: `(handles granted, descriptors leased)`, or `None`.
fn grant(free: u64, handles: u64, host_fds: u64) -> Option<(u64, u64)> {
    let share = free / 2;
    let granted = handles.min(share.saturating_sub(host_fds));
    (granted >= MIN_HANDLES.min(handles)).then_some((granted, granted + host_fds))
}

#[cfg(test)]
mod tests {
    use super::grant;

    #[test]
    fn jobs_get_at_most_half_of_what_is_free() {
        // Plenty: what was asked.
        assert_eq!(grant(1_000_000, 4096, 10), Some((4096, 4106)));
        // `ulimit -n 1024`: 832 free → 406 handles, then 198, then 92.
        assert_eq!(grant(832, 4096, 10), Some((406, 416)));
        assert_eq!(grant(416, 4096, 10), Some((198, 208)));
        assert_eq!(grant(208, 4096, 10), Some((94, 104)));
        assert_eq!(grant(104, 4096, 10), None);
        // A job that asks for few gets them while they fit.
        assert_eq!(grant(104, 20, 10), Some((20, 30)));
    }
}
