//! A running job's heartbeat: the host running a job that an executor
//! placed (on another node, perhaps) rewrites `<job>/.heartbeat` every
//! [`RENEW`], saying which machine and process run it and until when the
//! claim holds ([`TTL`]). Machines that cannot see the node's `flock`
//! (NFS does not promise it across nodes) read it instead: a job whose
//! heartbeat expired *and* whose executor says it is gone was interrupted
//! ([`crate::slurm::liveness`]).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How often the running host renews the heartbeat.
pub const RENEW: Duration = Duration::from_secs(2);
/// How long one renewal holds: several missed renewals, not one slow disk.
pub const TTL: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub hostname: String,
    pub pid: u32,
    pub renewed_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl Heartbeat {
    /// Whether the claim still holds at `now` (by the reader's clock: the
    /// nodes' clocks are assumed in step to well within [`TTL`]).
    pub fn is_alive(&self, now: DateTime<Utc>) -> bool {
        now < self.expires_at
    }
}

/// The heartbeat at `path`, if there is a readable one.
pub fn read(path: &Path) -> Option<Heartbeat> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// Write one renewal: a temp file renamed over the old one (not synced: a
/// renewal lost in a crash only makes the claim look older, which is true).
pub fn beat(path: &Path) -> std::io::Result<()> {
    let now = Utc::now();
    let hb = Heartbeat {
        hostname: crate::store::hostname(),
        pid: std::process::id(),
        renewed_at: now,
        expires_at: now + TTL,
    };
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    std::fs::write(&tmp, serde_json::to_vec(&hb)?)?;
    std::fs::rename(&tmp, path)
}

/// Renews a heartbeat on a thread until dropped.
pub struct Beating {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Beating {
    /// Write the first renewal now (an error: the job cannot claim it is
    /// alive, so it must not start), then renew every [`RENEW`].
    pub fn start(path: PathBuf) -> std::io::Result<Beating> {
        beat(&path)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("labhost-heartbeat".into())
            .spawn(move || {
                while !flag.load(Ordering::SeqCst) {
                    std::thread::park_timeout(RENEW);
                    if !flag.load(Ordering::SeqCst) {
                        // A failed renewal is retried at the next tick; if
                        // they keep failing the claim expires, as it should.
                        let _ = beat(&path);
                    }
                }
            })?;
        Ok(Beating {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Beating {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_heartbeat_is_renewed_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".heartbeat");
        let beating = Beating::start(path.clone()).unwrap();
        let first = read(&path).expect("written at start");
        assert_eq!(first.pid, std::process::id());
        assert_eq!(first.hostname, crate::store::hostname());
        assert!(first.is_alive(Utc::now()));
        assert!(!first.is_alive(first.expires_at));
        assert_eq!((first.expires_at - first.renewed_at).to_std().unwrap(), TTL);
        drop(beating);
        // Stopped: nothing rewrites it any more.
        let last = read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(read(&path).is_none());
        assert!(last.renewed_at >= first.renewed_at);
    }
}
