//! The job watcher: a thread per running job that looks at it from outside
//! the guest — cancel requests from other processes, the `/work` scratch
//! limit, and the log flush timer.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::job::JobControl;
use crate::joblog::SharedLog;
use crate::store::tree;
use crate::units::human_bytes;

/// How often a running job looks for a cancel request from another process.
const CANCEL_POLL: Duration = Duration::from_millis(100);

/// How often the scratch directory's size is measured.
const SCRATCH_POLL_EVERY: u32 = 10; // × CANCEL_POLL

/// Longest host path accepted in a job's `/work`: deeper paths are the
/// sign of a guest hiding files from path-based tools (the kernel cannot
/// name them in `/proc`), and no plugin needs them.
pub const MAX_SCRATCH_PATH: usize = 4096;

/// Watch a running job from outside the guest: turn a `.cancel` file
/// (written by `labhost cancel`) into a cancel, end the job when its
/// `/work` scratch directory grows over the limit, and flush the buffered
/// log on a short timer (a guest that logs and then computes for a long time
/// without other lab calls is still seen by `labhost logs -f`).
pub fn spawn_job_watcher(
    request: PathBuf,
    work: PathBuf,
    scratch_limit: u64,
    control: Arc<JobControl>,
    log: SharedLog,
) {
    let spawned = std::thread::Builder::new()
        .name("labhost-job-watch".into())
        .spawn(move || {
            let mut ticks = 0u32;
            while !control.has_ended() {
                log.lock().unwrap_or_else(|e| e.into_inner()).flush();
                if control.cancel_requested_at().is_none() && request.exists() {
                    control.cancel();
                }
                ticks += 1;
                if ticks.is_multiple_of(SCRATCH_POLL_EVERY) {
                    if let Some(reason) = scratch_over(&work, scratch_limit) {
                        control.abort(reason);
                    }
                }
                // Wakes the job's wait on a blocked WASI call promptly.
                let _ = control.interrupt_due(Instant::now());
                std::thread::sleep(CANCEL_POLL);
            }
        });
    // Without the watcher only in-process cancels work; not worth failing the job.
    drop(spawned);
}

/// Why the scratch directory `work` breaks its limit, if it does.
pub fn scratch_over(work: &Path, limit: u64) -> Option<String> {
    let walked = match tree::usage(work) {
        Ok(u) => u,
        // Changed while walked: measured again at the next tick.
        Err(_) => return None,
    };
    if walked.longest_path > MAX_SCRATCH_PATH {
        return Some(format!(
            "scratch paths may not be longer than {MAX_SCRATCH_PATH} bytes (/work holds one of {} bytes)",
            walked.longest_path
        ));
    }
    let hidden = unlinked_open_bytes(work);
    let used = walked.bytes.saturating_add(hidden);
    (used > limit).then(|| {
        format!(
            "scratch limit of {} exceeded (/work holds {})",
            human_bytes(limit),
            human_bytes(used)
        )
    })
}

/// One file that was unlinked while this process still holds it open.
#[derive(Debug, Clone)]
struct Unlinked {
    /// Where it was, if the kernel can still name it.
    path: Option<PathBuf>,
    bytes: u64,
}

/// Scans of `/proc/self/fd` shared by every job's watcher (one per this).
const UNLINKED_SCAN_EVERY: Duration = Duration::from_millis(500);

static UNLINKED: Mutex<Option<(Instant, Vec<Unlinked>)>> = Mutex::new(None);

/// Disk bytes held by files that were under `work` and were unlinked while
/// still open (a guest can write through such a handle, and no walk of the
/// tree sees it). Files the kernel cannot name any more (their path grew
/// past `PATH_MAX` before they were unlinked) are charged to every job: only
/// a guest that built such a path can hold them.
pub fn unlinked_open_bytes(work: &Path) -> u64 {
    let mut cache = UNLINKED.lock().unwrap_or_else(|e| e.into_inner());
    let fresh = cache
        .as_ref()
        .is_some_and(|(at, _)| at.elapsed() < UNLINKED_SCAN_EVERY);
    if !fresh {
        *cache = Some((Instant::now(), scan_unlinked()));
    }
    let files = &cache.as_ref().expect("just filled").1;
    files
        .iter()
        .filter(|f| f.path.as_ref().is_none_or(|p| p.starts_with(work)))
        .map(|f| f.bytes)
        .sum()
}

fn scan_unlinked() -> Vec<Unlinked> {
    let mut out = Vec::new();
    let Ok(fds) = std::fs::read_dir("/proc/self/fd") else {
        return out;
    };
    for fd in fds.flatten() {
        let link = fd.path();
        let target = std::fs::read_link(&link);
        let path = match &target {
            Ok(t) => match t.to_str().and_then(|s| s.strip_suffix(" (deleted)")) {
                Some(p) => Some(PathBuf::from(p)),
                None => continue,
            },
            // Too long for the kernel to name: still count it.
            Err(e) if e.raw_os_error() == Some(libc::ENAMETOOLONG) => None,
            Err(_) => continue,
        };
        use std::os::unix::fs::MetadataExt;
        match std::fs::metadata(&link) {
            Ok(m) if m.is_file() && m.nlink() == 0 => out.push(Unlinked {
                path,
                bytes: m.blocks() * 512,
            }),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn an_unlinked_open_file_still_counts_against_its_directory() {
        let t = tempfile::tempdir().unwrap();
        let work = t.path().join("work");
        std::fs::create_dir(&work).unwrap();
        let mut f = std::fs::File::create(work.join("hidden")).unwrap();
        std::fs::remove_file(work.join("hidden")).unwrap();
        f.write_all(&vec![1u8; 3 << 20]).unwrap();
        f.sync_all().unwrap();
        *UNLINKED.lock().unwrap() = None;
        assert!(unlinked_open_bytes(&work) >= 3 << 20);
        let msg = scratch_over(&work, 1 << 20).unwrap();
        assert!(
            msg.starts_with("scratch limit of 1 MiB exceeded (/work holds 3."),
            "{msg}"
        );
        // Another directory is not charged for it.
        let other = t.path().join("other");
        std::fs::create_dir(&other).unwrap();
        assert_eq!(unlinked_open_bytes(&other), 0);
        drop(f);
    }
}
