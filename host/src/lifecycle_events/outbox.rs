//! The durable outbox: `<workspace>/outbox/`.
//!
//! ```text
//! outbox/
//!   .lock              held by the `labhost serve` that delivers (one at a time)
//!   seen.jsonl         the last state seen of every job and run (watch.rs)
//!   <hook>/            one queue per webhook URL (16 hex of the URL's blake3)
//!     url              the URL, for people
//!     <seq>-<id>.json  an event to deliver: its body, attempts, next try
//!     dead/            events given up after the last attempt
//! ```
//!
//! Each queue is delivered in order (`seq` grows), so the events of a job
//! arrive in the order they happened. An event file is written (and its
//! directory synced) before the watcher's seen state advances: a crash
//! between the two finds the event again, with the same id.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Event, EventType};
use crate::store::durable::write_atomic;
use crate::store::Workspace;

/// The outbox directory under the workspace root.
pub const DIR: &str = "outbox";

/// The first retry waits this long; each next one twice as long…
pub const BACKOFF_FIRST: Duration = Duration::from_secs(1);
/// …up to this.
pub const BACKOFF_MAX: Duration = Duration::from_secs(600);

/// How long to wait after `failed` failed attempts (1, 2, 4… seconds,
/// capped at [`BACKOFF_MAX`]).
pub fn backoff(failed: u32) -> Duration {
    let doublings = failed.saturating_sub(1).min(31);
    BACKOFF_FIRST
        .saturating_mul(1u32 << doublings)
        .min(BACKOFF_MAX)
}

/// The queue directory name of a webhook URL.
pub fn hook_key(url: &str) -> String {
    blake3::hash(url.as_bytes()).to_hex()[..16].to_owned()
}

/// One event waiting in a queue (the file `<seq>-<id>.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingEvent {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// The exact body sent at every attempt.
    pub body: String,
    pub created_at: DateTime<Utc>,
    /// Failed attempts so far.
    #[serde(default)]
    pub attempts: u32,
    /// Not before this time (unset: at once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_try: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// What became of an event after a failed attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterFailure {
    RetryAt(DateTime<Utc>),
    /// Moved here, in `dead/`.
    Dead(PathBuf),
}

/// The queue of one webhook.
#[derive(Debug, Clone)]
pub struct HookQueue {
    pub url: String,
    pub dir: PathBuf,
    pub events: Vec<EventType>,
    /// Ids pending when the outbox was opened: an event found again after a
    /// crash is not queued twice.
    recovered: HashSet<String>,
}

impl HookQueue {
    pub fn dead_dir(&self) -> PathBuf {
        self.dir.join("dead")
    }

    /// The pending event files, oldest first.
    pub fn pending(&self) -> std::io::Result<Vec<PathBuf>> {
        event_files(&self.dir)
    }

    pub fn read(path: &Path) -> anyhow::Result<PendingEvent> {
        let bytes = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        serde_json::from_slice(&bytes).with_context(|| format!("corrupt {}", path.display()))
    }

    /// The event was accepted: remove it.
    pub fn delivered(&self, path: &Path) -> std::io::Result<()> {
        match fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Count a failed attempt: the event waits for its next try (written
    /// down, so a restart keeps the schedule), or after `max_attempts` goes
    /// to `dead/`.
    pub fn failed(
        &self,
        path: &Path,
        ev: &mut PendingEvent,
        error: &str,
        now: DateTime<Utc>,
        max_attempts: u32,
    ) -> std::io::Result<AfterFailure> {
        ev.attempts += 1;
        ev.last_error = Some(error.to_owned());
        let after = if ev.attempts >= max_attempts {
            ev.next_try = None;
            let dead = self.dead_dir().join(path.file_name().unwrap_or_default());
            AfterFailure::Dead(dead)
        } else {
            let wait = chrono::Duration::from_std(backoff(ev.attempts)).unwrap_or_default();
            ev.next_try = Some(now + wait);
            AfterFailure::RetryAt(now + wait)
        };
        write_atomic(
            path,
            &serde_json::to_vec_pretty(ev).map_err(std::io::Error::other)?,
        )?;
        if let AfterFailure::Dead(dead) = &after {
            fs::create_dir_all(self.dead_dir())?;
            fs::rename(path, dead)?;
            sync_dir(&self.dead_dir())?;
            sync_dir(&self.dir)?;
        }
        Ok(after)
    }
}

/// The outbox of a workspace, with one queue per configured webhook.
#[derive(Debug)]
pub struct Outbox {
    dir: PathBuf,
    hooks: Vec<HookQueue>,
    /// The last sequence number given.
    seq: Mutex<u64>,
}

impl Outbox {
    pub fn dir(ws: &Workspace) -> PathBuf {
        ws.root().join(DIR)
    }

    /// Open the outbox with these webhooks (URL and event types), creating
    /// their queues.
    pub fn open(ws: &Workspace, hooks: &[(String, Vec<EventType>)]) -> anyhow::Result<Outbox> {
        let dir = Self::dir(ws);
        let mut queues = Vec::new();
        let mut last = 0u64;
        for (url, events) in hooks {
            let qdir = dir.join(hook_key(url));
            fs::create_dir_all(&qdir)
                .with_context(|| format!("cannot create {}", qdir.display()))?;
            let url_file = qdir.join("url");
            if fs::read_to_string(&url_file).ok().as_deref() != Some(url.as_str()) {
                write_atomic(&url_file, url.as_bytes())
                    .with_context(|| format!("cannot write {}", url_file.display()))?;
            }
            let mut recovered = HashSet::new();
            for f in event_files(&qdir)? {
                if let Some((seq, id)) = parse_name(&f) {
                    last = last.max(seq);
                    recovered.insert(id.to_owned());
                }
            }
            queues.push(HookQueue {
                url: url.clone(),
                dir: qdir,
                events: events.clone(),
                recovered,
            });
        }
        Ok(Outbox {
            dir,
            hooks: queues,
            seq: Mutex::new(last),
        })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    pub fn hooks(&self) -> &[HookQueue] {
        &self.hooks
    }

    /// Queues left by webhooks no longer configured, with their URL and
    /// how many events wait in each.
    pub fn orphans(&self) -> Vec<(PathBuf, String, usize)> {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for e in entries.flatten() {
            let p = e.path();
            if !p.is_dir() || self.hooks.iter().any(|h| h.dir == p) {
                continue;
            }
            let Ok(url) = fs::read_to_string(p.join("url")) else {
                continue;
            };
            let n = event_files(&p).map(|f| f.len()).unwrap_or(0);
            if n > 0 {
                out.push((p, url, n));
            }
        }
        out.sort();
        out
    }

    /// Write `events` durably into the queue of every webhook that wants
    /// them, in order. Returns the indexes of the queues that got one.
    pub fn enqueue(&self, events: &[Event]) -> anyhow::Result<Vec<usize>> {
        let now = Utc::now();
        let mut touched = Vec::new();
        for (i, hook) in self.hooks.iter().enumerate() {
            let mut wrote = false;
            for ev in events {
                if !hook.events.contains(&ev.kind) || hook.recovered.contains(&ev.id) {
                    continue;
                }
                let seq = self.next_seq(now);
                let path = hook.dir.join(format!("{seq:020}-{}.json", ev.id));
                let pending = PendingEvent {
                    id: ev.id.clone(),
                    kind: ev.kind.as_str().to_owned(),
                    body: ev.body.clone(),
                    created_at: now,
                    attempts: 0,
                    next_try: None,
                    last_error: None,
                };
                write_atomic(&path, &serde_json::to_vec_pretty(&pending)?)
                    .with_context(|| format!("cannot write {}", path.display()))?;
                wrote = true;
            }
            if wrote {
                sync_dir(&hook.dir)
                    .with_context(|| format!("cannot sync {}", hook.dir.display()))?;
                touched.push(i);
            }
        }
        Ok(touched)
    }

    /// Strictly growing, near the time in nanoseconds (so a restart, which
    /// starts from the largest name on disk, keeps the order).
    fn next_seq(&self, now: DateTime<Utc>) -> u64 {
        let mut last = self.seq.lock().unwrap_or_else(|e| e.into_inner());
        let t = u64::try_from(now.timestamp_nanos_opt().unwrap_or(0)).unwrap_or(0);
        *last = t.max(*last + 1);
        *last
    }
}

/// `<seq>-<id>.json` → (seq, id).
fn parse_name(path: &Path) -> Option<(u64, &str)> {
    let name = path.file_name()?.to_str()?.strip_suffix(".json")?;
    let (seq, id) = name.split_once('-')?;
    Some((seq.parse().ok()?, id))
}

/// The event files of a queue directory, sorted (by sequence).
fn event_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for e in entries {
        let p = e?.path();
        if parse_name(&p).is_some() {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

/// Make a directory's entries durable (new, renamed files).
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_then_caps() {
        let secs: Vec<u64> = (1..=13).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(
            secs,
            vec![1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 600, 600, 600]
        );
        assert_eq!(backoff(0), Duration::from_secs(1));
        assert_eq!(backoff(u32::MAX), BACKOFF_MAX);
    }

    fn ev(id: &str, kind: EventType) -> Event {
        Event {
            id: id.into(),
            kind,
            body: format!("{{\"id\":\"{id}\"}}"),
        }
    }

    #[test]
    fn queues_keep_order_filter_types_and_survive_a_reopen() {
        let t = tempfile::tempdir().unwrap();
        let ws = Workspace::open(t.path().join("ws")).unwrap();
        let hooks = vec![
            ("http://a/".to_owned(), EventType::ALL.to_vec()),
            ("http://b/".to_owned(), vec![EventType::JobFailed]),
        ];
        let ob = Outbox::open(&ws, &hooks).unwrap();
        let events: Vec<Event> = (0..30)
            .map(|i| ev(&format!("msg_{i:02}"), EventType::JobStarted))
            .chain([ev("msg_f", EventType::JobFailed)])
            .collect();
        assert_eq!(ob.enqueue(&events).unwrap(), vec![0, 1]);
        let a = &ob.hooks()[0];
        let ids: Vec<String> = a
            .pending()
            .unwrap()
            .iter()
            .map(|p| HookQueue::read(p).unwrap().id)
            .collect();
        let want: Vec<String> = events.iter().map(|e| e.id.clone()).collect();
        assert_eq!(ids, want);
        let b = &ob.hooks()[1];
        assert_eq!(b.pending().unwrap().len(), 1);
        assert_eq!(fs::read_to_string(a.dir.join("url")).unwrap(), "http://a/");

        // Reopened (a restart): an event found again is not queued twice;
        // a new one goes after the old ones.
        let ob = Outbox::open(&ws, &hooks).unwrap();
        ob.enqueue(&[
            ev("msg_f", EventType::JobFailed),
            ev("msg_new", EventType::JobFailed),
        ])
        .unwrap();
        let b = &ob.hooks()[1];
        let ids: Vec<String> = b
            .pending()
            .unwrap()
            .iter()
            .map(|p| HookQueue::read(p).unwrap().id)
            .collect();
        assert_eq!(ids, vec!["msg_f", "msg_new"]);

        // A webhook removed from the settings leaves its queue, reported.
        let only_b = Outbox::open(&ws, &hooks[1..]).unwrap();
        let orphans = only_b.orphans();
        assert_eq!(orphans.len(), 1);
        assert_eq!((orphans[0].1.as_str(), orphans[0].2), ("http://a/", 32));
    }

    #[test]
    fn failures_are_scheduled_then_dead() {
        let t = tempfile::tempdir().unwrap();
        let ws = Workspace::open(t.path().join("ws")).unwrap();
        let ob = Outbox::open(&ws, &[("http://a/".into(), EventType::ALL.to_vec())]).unwrap();
        ob.enqueue(&[ev("msg_1", EventType::RunStarted)]).unwrap();
        let q = &ob.hooks()[0];
        let path = q.pending().unwrap().remove(0);
        let now = Utc::now();
        let mut pe = HookQueue::read(&path).unwrap();
        let after = q.failed(&path, &mut pe, "HTTP 500", now, 3).unwrap();
        assert_eq!(
            after,
            AfterFailure::RetryAt(now + chrono::Duration::seconds(1))
        );
        let stored = HookQueue::read(&path).unwrap();
        assert_eq!(
            (
                stored.attempts,
                stored.next_try,
                stored.last_error.as_deref()
            ),
            (
                1,
                Some(now + chrono::Duration::seconds(1)),
                Some("HTTP 500")
            )
        );
        let mut pe = stored;
        let after = q.failed(&path, &mut pe, "HTTP 500", now, 3).unwrap();
        assert_eq!(
            after,
            AfterFailure::RetryAt(now + chrono::Duration::seconds(2))
        );
        let after = q.failed(&path, &mut pe, "timed out", now, 3).unwrap();
        let dead = q.dead_dir().join(path.file_name().unwrap());
        assert_eq!(after, AfterFailure::Dead(dead.clone()));
        assert!(q.pending().unwrap().is_empty());
        let d = HookQueue::read(&dead).unwrap();
        assert_eq!(
            (d.attempts, d.last_error.as_deref()),
            (3, Some("timed out"))
        );
        // Delivered: gone.
        ob.enqueue(&[ev("msg_2", EventType::RunStarted)]).unwrap();
        let p = q.pending().unwrap().remove(0);
        q.delivered(&p).unwrap();
        assert!(q.pending().unwrap().is_empty());
    }
}
