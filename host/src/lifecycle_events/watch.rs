//! The watcher: finds lifecycle events by looking at the workspace's job
//! and run records, and remembers what it saw in `outbox/seen.jsonl`.
//!
//! Cheap on a large workspace: an ended job is remembered (never read
//! again); new job directories are found by listing a `jobs/` directory
//! only when its modification time changed (and every
//! [`FULL_LISTING_EVERY`] in any case); a live job's record is parsed only
//! when the file changed. A steady tick over 100,000 ended jobs is one
//! `stat` per experiment.
//!
//! `seen.jsonl` is a journal (one JSON line per change, the last line of a
//! key wins), compacted when opened. The first time a workspace is watched
//! (no journal) what exists is taken as seen, without events.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::outbox::{sync_dir, Outbox};
use super::transitions::{job_events, run_events, JobSeen, RunSeen};
use super::{job_event, run_event, Event};
use crate::pipeline::record::{runs_dir, RunPaths, RunRecord, RunStatus};
use crate::store::{dirs, read_json_opt, JobRecord, Workspace};

/// The journal's file name in the outbox.
pub const JOURNAL: &str = "seen.jsonl";

/// Every job directory is listed at least this often, whatever the
/// directories' times say.
pub const FULL_LISTING_EVERY: Duration = Duration::from_secs(30);

/// A directory listed less than this after its last change is listed again
/// at the next tick (an entry made in the same timestamp tick as the listing
/// leaves the time unchanged).
const FINE_SLACK: Duration = Duration::from_millis(50);
/// The same for file systems with whole-second times.
const COARSE_SLACK: Duration = Duration::from_secs(1);

/// One journal line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
enum Line {
    /// `experiment/id` of a job that ended (nothing more happens to it).
    Ended {
        ended: String,
    },
    Job {
        job: String,
        seen: JobSeen,
    },
    Run {
        run: String,
        seen: RunSeen,
    },
}

/// What a file is now: any rewrite changes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

fn stamp(path: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let m = fs::metadata(path).ok()?;
    Some(Stamp {
        ino: m.ino(),
        len: m.size(),
        mtime: (m.mtime(), m.mtime_nsec()),
        ctime: (m.ctime(), m.ctime_nsec()),
    })
}

/// What the watcher knows of a job or run.
#[derive(Debug, Clone, PartialEq)]
enum Known<T> {
    /// Found since the journal was written: every event it has is new.
    New,
    /// Existed when the workspace was first watched: its state is taken as
    /// seen, without events.
    Baseline,
    Seen(T),
}

#[derive(Debug, Clone)]
enum Track {
    Ended,
    Live {
        known: Known<JobSeen>,
        stamp: Option<Stamp>,
        /// The dead-host check ran for this stamp.
        checked_dead: bool,
    },
}

impl Track {
    fn live(known: Known<JobSeen>) -> Track {
        Track::Live {
            known,
            stamp: None,
            checked_dead: false,
        }
    }
}

#[derive(Debug, Clone)]
struct RunTrack {
    known: Known<RunSeen>,
    stamp: Option<Stamp>,
}

/// When a directory was last listed, and its time then.
#[derive(Debug, Clone, Copy, Default)]
struct DirWatch {
    mtime: Option<SystemTime>,
    listed_at: Option<SystemTime>,
}

impl DirWatch {
    /// Whether `dir` must be listed; if so, call [`DirWatch::listed`] with
    /// the returned time after listing it.
    fn check(&self, dir: &Path, force: bool) -> Option<(Option<SystemTime>, SystemTime)> {
        let now = SystemTime::now();
        let mtime = fs::metadata(dir).and_then(|m| m.modified()).ok();
        let recent = match (self.mtime, self.listed_at) {
            (Some(m), Some(l)) => {
                let fine = m
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .is_ok_and(|d| d.subsec_nanos() != 0);
                let slack = if fine { FINE_SLACK } else { COARSE_SLACK };
                l.duration_since(m).map_or(true, |d| d < slack)
            }
            // Missing when listed: its appearance changes `mtime`.
            (None, Some(_)) => false,
            (_, None) => true,
        };
        (force || mtime != self.mtime || recent).then_some((mtime, now))
    }

    fn listed(&mut self, (mtime, at): (Option<SystemTime>, SystemTime)) {
        self.mtime = mtime;
        self.listed_at = Some(at);
    }
}

#[derive(Debug, Default)]
struct Experiment {
    jobs_dir: DirWatch,
    jobs: HashMap<String, Track>,
}

/// Work counters (for tests and benchmarks).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub ticks: u64,
    pub dirs_listed: u64,
    pub records_read: u64,
    pub events: u64,
}

/// A change to apply once the events are durable.
enum Change {
    Job {
        exp: String,
        id: String,
        track: Track,
        line: Option<Line>,
    },
    Run {
        id: String,
        track: RunTrack,
        line: Option<Line>,
    },
}

/// Finds the lifecycle events of a workspace, tick by tick.
pub struct Watcher {
    ws: Workspace,
    journal_path: PathBuf,
    journal: File,
    /// Lines in the journal file, and keys they describe (to compact it).
    journal_lines: usize,
    experiments_dir: DirWatch,
    experiments: BTreeMap<String, Experiment>,
    runs_dir: DirWatch,
    runs: HashMap<String, RunTrack>,
    last_full: Instant,
    stats: Stats,
}

impl Watcher {
    /// Open the watcher of `ws` (its journal in `outbox`'s directory):
    /// read the journal, list every job and run, compact the journal.
    pub fn open(ws: &Workspace, outbox: &Outbox) -> anyhow::Result<Watcher> {
        let dir = outbox.path().to_owned();
        fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let journal_path = dir.join(JOURNAL);
        let (baseline, lines) = match fs::read_to_string(&journal_path) {
            Ok(text) => (false, text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (true, String::new()),
            Err(e) => {
                return Err(e).with_context(|| format!("cannot read {}", journal_path.display()))
            }
        };
        let mut ended = std::collections::HashSet::new();
        let mut jobs: HashMap<String, JobSeen> = HashMap::new();
        let mut runs_seen: HashMap<String, RunSeen> = HashMap::new();
        // A torn last line (a crash while appending) is skipped.
        for line in lines.lines() {
            match serde_json::from_str::<Line>(line) {
                Ok(Line::Ended { ended: k }) => {
                    jobs.remove(&k);
                    ended.insert(k);
                }
                Ok(Line::Job { job, seen }) => {
                    jobs.insert(job, seen);
                }
                Ok(Line::Run { run, seen }) => {
                    runs_seen.insert(run, seen);
                }
                Err(_) => {}
            }
        }
        let mut w = Watcher {
            ws: ws.clone(),
            journal_path: journal_path.clone(),
            journal: File::options()
                .create(true)
                .append(true)
                .open(&journal_path)
                .with_context(|| format!("cannot open {}", journal_path.display()))?,
            journal_lines: 0,
            experiments_dir: DirWatch::default(),
            experiments: BTreeMap::new(),
            runs_dir: DirWatch::default(),
            runs: HashMap::new(),
            last_full: Instant::now(),
            stats: Stats::default(),
        };
        let exps_root = ws.root().join("experiments");
        let listing = w.experiments_dir.check(&exps_root, true).expect("forced");
        for exp in dir_names(&exps_root)? {
            let mut e = Experiment::default();
            let jobs_dir = exps_root.join(&exp).join("jobs");
            let listing = e.jobs_dir.check(&jobs_dir, true).expect("forced");
            for id in dir_names(&jobs_dir)? {
                let key = format!("{exp}/{id}");
                let track = if ended.contains(&key) {
                    Track::Ended
                } else if let Some(seen) = jobs.remove(&key) {
                    Track::live(Known::Seen(seen))
                } else if baseline {
                    // Ended (durably) before webhooks were configured: one stat.
                    if ws.job_paths(&exp, &id).ended_marker().exists() {
                        Track::Ended
                    } else {
                        Track::live(Known::Baseline)
                    }
                } else {
                    Track::live(Known::New)
                };
                e.jobs.insert(id, track);
            }
            e.jobs_dir.listed(listing);
            w.experiments.insert(exp, e);
        }
        w.experiments_dir.listed(listing);
        let rdir = runs_dir(ws);
        let listing = w.runs_dir.check(&rdir, true).expect("forced");
        for id in dir_names(&rdir)? {
            let known = match runs_seen.remove(&id) {
                Some(seen) => Known::Seen(seen),
                None if baseline => Known::Baseline,
                None => Known::New,
            };
            w.runs.insert(id, RunTrack { known, stamp: None });
        }
        w.runs_dir.listed(listing);
        w.compact()?;
        Ok(w)
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Rewrite the journal with one line per job and run known now.
    fn compact(&mut self) -> anyhow::Result<()> {
        let mut out = String::new();
        let mut n = 0;
        let mut push = |line: &Line| {
            out.push_str(&serde_json::to_string(line).expect("serialisable"));
            out.push('\n');
            n += 1;
        };
        for (exp, e) in &self.experiments {
            for (id, t) in &e.jobs {
                let key = format!("{exp}/{id}");
                match t {
                    Track::Ended => push(&Line::Ended { ended: key }),
                    Track::Live {
                        known: Known::Seen(seen),
                        ..
                    } => push(&Line::Job {
                        job: key,
                        seen: seen.clone(),
                    }),
                    Track::Live { .. } => {}
                }
            }
        }
        for (id, r) in &self.runs {
            if let Known::Seen(seen) = &r.known {
                push(&Line::Run {
                    run: id.clone(),
                    seen: *seen,
                });
            }
        }
        crate::store::durable::write_atomic(&self.journal_path, out.as_bytes())
            .with_context(|| format!("cannot write {}", self.journal_path.display()))?;
        if let Some(parent) = self.journal_path.parent() {
            sync_dir(parent)?;
        }
        self.journal = File::options()
            .append(true)
            .open(&self.journal_path)
            .with_context(|| format!("cannot open {}", self.journal_path.display()))?;
        self.journal_lines = n;
        Ok(())
    }

    /// Look once: find what changed, queue its events durably in `outbox`,
    /// then remember it. Returns the events queued. On an error nothing is
    /// remembered (the next tick finds the same events, with the same ids).
    pub fn tick(&mut self, outbox: &Outbox) -> anyhow::Result<Vec<Event>> {
        self.stats.ticks += 1;
        let full = self.last_full.elapsed() >= FULL_LISTING_EVERY;
        if full {
            self.last_full = Instant::now();
        }
        self.list_experiments(full)?;
        let mut events = Vec::new();
        let mut changes = Vec::new();
        let mut dead_host = false;
        let exps: Vec<String> = self.experiments.keys().cloned().collect();
        for exp in exps {
            dead_host |= self.look_at_jobs(&exp, full, &mut events, &mut changes)?;
        }
        self.look_at_runs(full, &mut events, &mut changes)?;
        outbox.enqueue(&events)?;
        self.commit(changes)?;
        self.stats.events += events.len() as u64;
        if dead_host {
            // A job whose process died: the library's recovery marks it
            // INTERRUPTED (under its lock), and the next tick reports it.
            self.ws.recover_interrupted()?;
        }
        Ok(events)
    }

    fn list_experiments(&mut self, full: bool) -> anyhow::Result<()> {
        let root = self.ws.root().join("experiments");
        if let Some(listing) = self.experiments_dir.check(&root, full) {
            self.stats.dirs_listed += 1;
            let names = dir_names(&root)?;
            self.experiments.retain(|e, _| names.contains(e));
            for n in names {
                self.experiments.entry(n).or_default();
            }
            self.experiments_dir.listed(listing);
        }
        Ok(())
    }

    /// Look at the jobs of `exp`; true if one looks like its host died.
    fn look_at_jobs(
        &mut self,
        exp: &str,
        full: bool,
        events: &mut Vec<Event>,
        changes: &mut Vec<Change>,
    ) -> anyhow::Result<bool> {
        let jobs_dir = self.ws.root().join("experiments").join(exp).join("jobs");
        let e = self.experiments.get_mut(exp).expect("listed");
        if let Some(listing) = e.jobs_dir.check(&jobs_dir, full) {
            self.stats.dirs_listed += 1;
            let names = dir_names(&jobs_dir)?;
            let new: Vec<&String> = names
                .iter()
                .filter(|id| !e.jobs.contains_key(*id))
                .collect();
            if e.jobs.len() + new.len() != names.len() {
                // Some were removed (`labhost rm`): forget them.
                let listed: std::collections::HashSet<&String> = names.iter().collect();
                e.jobs.retain(|id, _| listed.contains(id));
            }
            for id in new {
                e.jobs.insert(id.clone(), Track::live(Known::New));
            }
            e.jobs_dir.listed(listing);
        }
        let mut dead_host = false;
        let now = Utc::now();
        for (id, track) in &e.jobs {
            let Track::Live {
                known,
                stamp: last,
                checked_dead,
            } = track
            else {
                continue;
            };
            let paths = self.ws.job_paths(exp, id);
            let st = stamp(&paths.record());
            if st.is_none() {
                continue; // being created
            }
            if st == *last {
                if !checked_dead && !dirs::is_locked(&paths.lock()) {
                    dead_host = true;
                    changes.push(Change::Job {
                        exp: exp.to_owned(),
                        id: id.clone(),
                        track: Track::Live {
                            known: known.clone(),
                            stamp: *last,
                            checked_dead: true,
                        },
                        line: None,
                    });
                }
                continue;
            }
            let rec = match read_json_opt::<JobRecord>(&paths.record()) {
                Ok(Some(r)) => r,
                Ok(None) => continue,
                // Unreadable (`labhost jobs` reports it): read again once
                // the file changes.
                Err(_) => {
                    changes.push(Change::Job {
                        exp: exp.to_owned(),
                        id: id.clone(),
                        track: Track::Live {
                            known: known.clone(),
                            stamp: st,
                            checked_dead: true,
                        },
                        line: None,
                    });
                    continue;
                }
            };
            self.stats.records_read += 1;
            let seen = JobSeen::of(&rec);
            let kinds = match known {
                Known::New => job_events(None, &seen),
                Known::Baseline => Vec::new(),
                Known::Seen(prev) => job_events(Some(prev), &seen),
            };
            events.extend(kinds.into_iter().map(|k| job_event(k, &rec, now)));
            let key = format!("{exp}/{id}");
            let changed = *known != Known::Seen(seen.clone());
            let (track, line) = if seen.status.is_terminal() {
                (Track::Ended, Some(Line::Ended { ended: key }))
            } else {
                let line = changed.then(|| Line::Job {
                    job: key,
                    seen: seen.clone(),
                });
                (
                    Track::Live {
                        known: Known::Seen(seen),
                        stamp: st,
                        checked_dead: false,
                    },
                    line,
                )
            };
            changes.push(Change::Job {
                exp: exp.to_owned(),
                id: id.clone(),
                track,
                line,
            });
        }
        Ok(dead_host)
    }

    fn look_at_runs(
        &mut self,
        full: bool,
        events: &mut Vec<Event>,
        changes: &mut Vec<Change>,
    ) -> anyhow::Result<()> {
        let rdir = runs_dir(&self.ws);
        if let Some(listing) = self.runs_dir.check(&rdir, full) {
            self.stats.dirs_listed += 1;
            let names = dir_names(&rdir)?;
            self.runs.retain(|id, _| names.contains(id));
            for id in names {
                self.runs.entry(id).or_insert(RunTrack {
                    known: Known::New,
                    stamp: None,
                });
            }
            self.runs_dir.listed(listing);
        }
        let now = Utc::now();
        for (id, track) in &self.runs {
            let paths = RunPaths { dir: rdir.join(id) };
            let st = stamp(&paths.record());
            if st.is_none() {
                continue;
            }
            // A settled run changes only when its record does; a running
            // one also when its runner dies.
            if st == track.stamp {
                match &track.known {
                    Known::Seen(s) if s.is_settled() => continue,
                    Known::Seen(_) if paths.is_locked() => continue,
                    _ => {}
                }
            }
            // The lock before the record: a runner writes its last record
            // while it holds the lock, so a free lock then a RUNNING record
            // means the runner died.
            let locked = paths.is_locked();
            let rec = match read_json_opt::<RunRecord>(&paths.record()) {
                Ok(Some(r)) => r,
                _ => continue,
            };
            self.stats.records_read += 1;
            let alive = rec.status != RunStatus::Running || locked;
            let seen = RunSeen::of(&rec, alive);
            let kinds = match &track.known {
                Known::New => run_events(None, &seen),
                Known::Baseline => Vec::new(),
                Known::Seen(prev) => run_events(Some(prev), &seen),
            };
            events.extend(
                kinds
                    .into_iter()
                    .map(|k| run_event(k, &rec, seen.status, now)),
            );
            let changed = track.known != Known::Seen(seen);
            changes.push(Change::Run {
                id: id.clone(),
                track: RunTrack {
                    known: Known::Seen(seen),
                    stamp: st,
                },
                line: changed.then(|| Line::Run {
                    run: id.clone(),
                    seen,
                }),
            });
        }
        Ok(())
    }

    /// Remember `changes` (their events are durable in the outbox now).
    fn commit(&mut self, changes: Vec<Change>) -> anyhow::Result<()> {
        let mut text = String::new();
        let mut lines = 0;
        for c in &changes {
            let line = match c {
                Change::Job { line, .. } | Change::Run { line, .. } => line,
            };
            if let Some(l) = line {
                text.push_str(&serde_json::to_string(l)?);
                text.push('\n');
                lines += 1;
            }
        }
        if lines > 0 {
            self.journal
                .write_all(text.as_bytes())
                .and_then(|()| self.journal.sync_data())
                .with_context(|| format!("cannot append to {}", self.journal_path.display()))?;
            self.journal_lines += lines;
        }
        for c in changes {
            match c {
                Change::Job { exp, id, track, .. } => {
                    if let Some(e) = self.experiments.get_mut(&exp) {
                        e.jobs.insert(id, track);
                    }
                }
                Change::Run { id, track, .. } => {
                    self.runs.insert(id, track);
                }
            }
        }
        let known: usize = self
            .experiments
            .values()
            .map(|e| e.jobs.len())
            .sum::<usize>()
            + self.runs.len();
        if self.journal_lines > 2 * known + 10_000 {
            self.compact()?;
        }
        Ok(())
    }
}

/// Names of the visible subdirectories of `dir`, unordered (empty if it
/// is missing).
fn dir_names(dir: &Path) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e).with_context(|| format!("cannot list {}", dir.display())),
    };
    for entry in rd {
        let entry = entry?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if !name.starts_with('.') && entry.file_type()?.is_dir() {
            out.push(name);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle_events::{EventType, HookQueue};
    use serde_json::{json, Value};

    struct Fixture {
        _dir: tempfile::TempDir,
        ws: Workspace,
        outbox: Outbox,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::open(dir.path().join("ws")).unwrap();
        let outbox = Outbox::open(&ws, &[("http://a/".into(), EventType::ALL.to_vec())]).unwrap();
        Fixture {
            _dir: dir,
            ws,
            outbox,
        }
    }

    /// Write the record of job `id` (in experiment `e`) as `status`.
    fn write_job(ws: &Workspace, id: &str, status: &str, stage: Option<(&str, i64)>) {
        let paths = ws.job_paths("e", id);
        fs::create_dir_all(&paths.dir).unwrap();
        let t = |s: i64| chrono::DateTime::from_timestamp(1_700_000_000 + s, 0).unwrap();
        let started = status != "QUEUED";
        let ended = !matches!(status, "QUEUED" | "RUNNING");
        let rec = json!({
            "schema": 1, "id": id, "experiment": "e", "status": status,
            "message": if ended { Value::from("done") } else { Value::Null },
            "plugin": {"path": "p.wasm", "blake3": "b3", "name": "probe", "version": "1", "kind": "trainer"},
            "config": {}, "sandbox": serde_json::to_value(crate::Sandbox::default()).unwrap(),
            "resume": null, "created_at": t(0),
            "started_at": if started { json!(t(1)) } else { Value::Null },
            "ended_at": if ended { json!(t(9)) } else { Value::Null },
            "progress": 0.0, "stage": null, "scores": {}, "artifacts": [], "checkpoints": [],
            "models": [], "datasets": [], "evals": [], "log_bytes": 0, "log_truncated": false,
            "host_pid": 1, "host_version": "0",
            "status_stage": stage.map(|(s, at)| json!({"status": s, "at": t(at)})),
        });
        crate::store::durable::write_atomic(&paths.record(), &serde_json::to_vec(&rec).unwrap())
            .unwrap();
    }

    /// Hold the lock of job `id` as its running host would.
    fn hold(ws: &Workspace, id: &str) -> File {
        fs::create_dir_all(ws.job_paths("e", id).dir).unwrap();
        dirs::try_lock(&ws.job_paths("e", id).lock())
            .unwrap()
            .unwrap()
    }

    fn kinds(events: &[Event]) -> Vec<&'static str> {
        events.iter().map(|e| e.kind.as_str()).collect()
    }

    fn queued_ids(f: &Fixture) -> Vec<String> {
        let q = &f.outbox.hooks()[0];
        q.pending()
            .unwrap()
            .iter()
            .map(|p| HookQueue::read(p).unwrap().id)
            .collect()
    }

    #[test]
    fn a_job_is_followed_from_start_to_end_and_remembered() {
        let f = fixture();
        let mut w = Watcher::open(&f.ws, &f.outbox).unwrap();
        assert_eq!(w.tick(&f.outbox).unwrap(), vec![]);
        let _lock = hold(&f.ws, "j1");
        write_job(&f.ws, "j1", "RUNNING", None);
        assert_eq!(kinds(&w.tick(&f.outbox).unwrap()), vec!["job.started"]);
        assert_eq!(w.tick(&f.outbox).unwrap(), vec![]);
        write_job(&f.ws, "j1", "RUNNING", Some(("training", 2)));
        let ev = w.tick(&f.outbox).unwrap();
        assert_eq!(kinds(&ev), vec!["job.status_stage"]);
        let body: Value = serde_json::from_str(&ev[0].body).unwrap();
        assert_eq!(body["type"], "job.status_stage");
        assert_eq!(body["timestamp"], "2023-11-14T22:13:22.000Z");
        assert_eq!(body["data"]["job_id"], "j1");
        assert_eq!(body["data"]["status_stage"]["status"], "training");
        write_job(&f.ws, "j1", "FAILED", Some(("training", 2)));
        assert_eq!(kinds(&w.tick(&f.outbox).unwrap()), vec!["job.failed"]);
        assert_eq!(queued_ids(&f).len(), 3);
        // Ended: never read again, even when its record changes.
        let read = w.stats().records_read;
        write_job(&f.ws, "j1", "COMPLETE", None);
        assert_eq!(w.tick(&f.outbox).unwrap(), vec![]);
        assert_eq!(w.stats().records_read, read);

        // A restart remembers all of it; a job that came while it was down
        // gets all its events.
        drop(w);
        write_job(&f.ws, "j2", "COMPLETE", Some(("eval", 3)));
        let mut w = Watcher::open(&f.ws, &f.outbox).unwrap();
        assert_eq!(
            kinds(&w.tick(&f.outbox).unwrap()),
            vec!["job.started", "job.status_stage", "job.completed"]
        );
        assert_eq!(w.tick(&f.outbox).unwrap(), vec![]);
        assert_eq!(queued_ids(&f).len(), 6);
    }

    #[test]
    fn events_found_again_after_a_crash_keep_their_ids_and_are_not_queued_twice() {
        let f = fixture();
        let mut w = Watcher::open(&f.ws, &f.outbox).unwrap();
        let journal = f.outbox.path().join(JOURNAL);
        let before = fs::read(&journal).unwrap();
        write_job(&f.ws, "j1", "COMPLETE", None);
        let first = w.tick(&f.outbox).unwrap();
        assert_eq!(kinds(&first), vec!["job.started", "job.completed"]);
        // The crash: the events were queued, the seen state not yet written.
        drop(w);
        fs::write(&journal, &before).unwrap();
        let outbox = Outbox::open(&f.ws, &[("http://a/".into(), EventType::ALL.to_vec())]).unwrap();
        let mut w = Watcher::open(&f.ws, &outbox).unwrap();
        let again = w.tick(&outbox).unwrap();
        assert_eq!(again, first);
        let ids: Vec<String> = first.iter().map(|e| e.id.clone()).collect();
        assert_eq!(queued_ids(&f), ids);
    }

    #[test]
    fn the_first_watch_takes_what_exists_as_seen() {
        let f = fixture();
        write_job(&f.ws, "old", "COMPLETE", None);
        f.ws.job_paths("e", "old").mark_ended();
        let _lock = hold(&f.ws, "live");
        write_job(&f.ws, "live", "RUNNING", None);
        let mut w = Watcher::open(&f.ws, &f.outbox).unwrap();
        assert_eq!(w.tick(&f.outbox).unwrap(), vec![]);
        // The ended job was not even read; the live one is followed on.
        assert_eq!(w.stats().records_read, 1);
        write_job(&f.ws, "live", "CANCELLED", None);
        assert_eq!(kinds(&w.tick(&f.outbox).unwrap()), vec!["job.cancelled"]);
    }

    #[test]
    fn a_job_whose_host_died_is_reported_interrupted() {
        let f = fixture();
        let mut w = Watcher::open(&f.ws, &f.outbox).unwrap();
        let lock = hold(&f.ws, "j1");
        write_job(&f.ws, "j1", "RUNNING", None);
        assert_eq!(kinds(&w.tick(&f.outbox).unwrap()), vec!["job.started"]);
        assert_eq!(w.tick(&f.outbox).unwrap(), vec![]);
        drop(lock); // the host died
        let mut got = Vec::new();
        for _ in 0..3 {
            got.extend(w.tick(&f.outbox).unwrap());
        }
        assert_eq!(kinds(&got), vec!["job.interrupted"]);
        let body: Value = serde_json::from_str(&got[0].body).unwrap();
        assert_eq!(body["data"]["status"], "INTERRUPTED");
    }

    #[test]
    fn a_steady_workspace_costs_no_reads() {
        let f = fixture();
        let mut w = Watcher::open(&f.ws, &f.outbox).unwrap();
        for i in 0..500 {
            write_job(&f.ws, &format!("j{i:04}"), "COMPLETE", None);
        }
        assert_eq!(w.tick(&f.outbox).unwrap().len(), 1000);
        let deadline = Instant::now() + Duration::from_secs(10);
        // Once the directories' times are old enough, a tick lists nothing.
        loop {
            let before = w.stats().dirs_listed;
            assert_eq!(w.tick(&f.outbox).unwrap(), vec![]);
            if w.stats().dirs_listed == before {
                break;
            }
            assert!(Instant::now() < deadline, "still listing: {:?}", w.stats());
        }
        // Each of the 500 was read once (they were new), never again.
        assert_eq!(w.stats().records_read, 500);
        for _ in 0..20 {
            assert_eq!(w.tick(&f.outbox).unwrap(), vec![]);
        }
        assert_eq!(w.stats().records_read, 500);
        // A new job is found by listing its experiment again.
        write_job(&f.ws, "new", "COMPLETE", None);
        assert_eq!(w.tick(&f.outbox).unwrap().len(), 2);
        // A removed one is forgotten: a job made again under its id is new.
        fs::remove_dir_all(f.ws.job_paths("e", "j0000").dir).unwrap();
        assert_eq!(w.tick(&f.outbox).unwrap(), vec![]);
        write_job(&f.ws, "j0000", "COMPLETE", None);
        assert_eq!(
            kinds(&w.tick(&f.outbox).unwrap()),
            ["job.started", "job.completed"]
        );
    }

    fn write_run(ws: &Workspace, id: &str, status: &str, resumes: u32) {
        let dir = runs_dir(ws).join(id);
        fs::create_dir_all(&dir).unwrap();
        let t = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let rec = json!({
            "schema": 1, "id": id, "pipeline": "p", "experiment": "e", "file": "p.toml",
            "file_blake3": "x", "workers": 1, "status": status, "message": null,
            "created_at": t, "updated_at": t, "ended_at": null, "runner_pid": 1,
            "resumes": resumes, "instances": [],
        });
        crate::store::durable::write_atomic(
            &dir.join("run.json"),
            &serde_json::to_vec(&rec).unwrap(),
        )
        .unwrap();
    }

    #[test]
    fn runs_start_end_resume_and_die() {
        let f = fixture();
        let mut w = Watcher::open(&f.ws, &f.outbox).unwrap();
        fs::create_dir_all(runs_dir(&f.ws).join("r1")).unwrap();
        let lock = dirs::try_lock(&runs_dir(&f.ws).join("r1").join(".lock"))
            .unwrap()
            .unwrap();
        write_run(&f.ws, "r1", "RUNNING", 0);
        assert_eq!(kinds(&w.tick(&f.outbox).unwrap()), vec!["run.started"]);
        assert_eq!(w.tick(&f.outbox).unwrap(), vec![]);
        drop(lock); // its runner died
        let ev = w.tick(&f.outbox).unwrap();
        assert_eq!(kinds(&ev), vec!["run.interrupted"]);
        let body: Value = serde_json::from_str(&ev[0].body).unwrap();
        assert_eq!(body["data"]["status"], "INTERRUPTED");
        assert_eq!(w.tick(&f.outbox).unwrap(), vec![]);
        // Resumed, then it completes.
        let _lock = dirs::try_lock(&runs_dir(&f.ws).join("r1").join(".lock"))
            .unwrap()
            .unwrap();
        write_run(&f.ws, "r1", "RUNNING", 1);
        let resumed = w.tick(&f.outbox).unwrap();
        assert_eq!(kinds(&resumed), vec!["run.started"]);
        write_run(&f.ws, "r1", "COMPLETE", 1);
        assert_eq!(kinds(&w.tick(&f.outbox).unwrap()), vec!["run.completed"]);
        assert_eq!(queued_ids(&f).len(), 4);
    }

    /// Figures for the README: `cargo test -p labhost --release --lib
    /// bench_watch_100k -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn bench_watch_100k() {
        let f = fixture();
        let n = 100_000;
        let t = Instant::now();
        write_job(&f.ws, "template", "COMPLETE", None);
        let tpl = f.ws.job_paths("e", "template");
        let rec = fs::read(tpl.record()).unwrap();
        for i in 0..n {
            let p = f.ws.job_paths("e", &format!("j{i:06}"));
            fs::create_dir_all(&p.dir).unwrap();
            fs::write(p.record(), &rec).unwrap();
            p.mark_ended();
        }
        println!("made {n} ended jobs in {:?}", t.elapsed());
        let time = |what: &str, f: &mut dyn FnMut()| {
            let t = Instant::now();
            f();
            println!("{what}: {:?}", t.elapsed());
        };
        let mut w = None;
        time("open, first watch (baseline)", &mut || {
            w = Some(Watcher::open(&f.ws, &f.outbox).unwrap())
        });
        let mut w = w.unwrap();
        time("first tick", &mut || {
            w.tick(&f.outbox).unwrap();
        });
        std::thread::sleep(COARSE_SLACK);
        w.tick(&f.outbox).unwrap();
        let before = w.stats();
        time("steady tick (x100, total)", &mut || {
            for _ in 0..100 {
                w.tick(&f.outbox).unwrap();
            }
        });
        assert_eq!(w.stats().records_read, before.records_read);
        assert_eq!(w.stats().dirs_listed, before.dirs_listed);
        write_job(&f.ws, "new", "COMPLETE", None);
        time("tick finding one new job (relists 100k)", &mut || {
            assert_eq!(w.tick(&f.outbox).unwrap().len(), 2);
        });
        drop(w);
        let size = fs::metadata(f.outbox.path().join(JOURNAL)).unwrap().len();
        let mut w = None;
        time(&format!("reopen with a {size}-byte journal"), &mut || {
            w = Some(Watcher::open(&f.ws, &f.outbox).unwrap())
        });
        let mut w = w.unwrap();
        time("first tick after reopen", &mut || {
            assert_eq!(w.tick(&f.outbox).unwrap(), vec![]);
        });
        println!("{:?}", w.stats());
    }
}
