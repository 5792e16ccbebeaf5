//! `labhost gc`: find and remove what interrupted work left behind and
//! nothing lists — and nothing else.
//!
//! Under the exclusive lifecycle lock (no job is starting, nothing is
//! being removed or imported), and never inside the directory of a job or
//! pipeline run whose `.lock` a live process holds:
//!
//! * the contents of `<workspace>/.trash` (trees whose removal failed);
//! * `.tmp-*` siblings of interrupted writes: in ended jobs' directories,
//!   in the registries (unless the job saving them runs) and pipeline runs,
//!   and at the workspace root (those older than the minimum age);
//! * `.import-*` staging directories of imports that died;
//! * job and run directories without a record, older than the minimum age;
//! * artifacts, checkpoints and evals of ended jobs that their record does
//!   not list (a crash between storing and recording, or in retention);
//! * model and dataset entries whose job no longer exists;
//! * `.cancel` requests and resume pins left by jobs and runs that ended.
//!
//! Items are moved into the trash under the lock, then removed.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use serde::Serialize;

use super::LockMode;
use crate::store::dirs::is_locked;
use crate::store::{read_json_opt, EntryRef, JobRecord, Registry, Workspace};

/// Leftovers younger than this may belong to work in progress that takes
/// no lock (a record being created): kept unless `--min-age` says otherwise.
pub const DEFAULT_MIN_AGE: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, Clone)]
pub struct GcOptions {
    /// Report what would be removed; remove nothing.
    pub dry_run: bool,
    pub min_age: Duration,
}

impl Default for GcOptions {
    fn default() -> Self {
        GcOptions {
            dry_run: false,
            min_age: DEFAULT_MIN_AGE,
        }
    }
}

/// What kind of leftover.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Leftover {
    Trash,
    TempFile,
    ImportStaging,
    JobWithoutRecord,
    RunWithoutRecord,
    UnlistedStored,
    OrphanEntry,
    StaleCancel,
    StalePin,
}

impl Leftover {
    pub fn describe(self) -> &'static str {
        match self {
            Leftover::Trash => "trash",
            Leftover::TempFile => "temp file of an interrupted write",
            Leftover::ImportStaging => "staging of an interrupted import",
            Leftover::JobWithoutRecord => "job directory without a record",
            Leftover::RunWithoutRecord => "pipeline run directory without a record",
            Leftover::UnlistedStored => "stored item its job's record does not list",
            Leftover::OrphanEntry => "registry entry whose job no longer exists",
            Leftover::StaleCancel => "cancel request of an ended job or run",
            Leftover::StalePin => "resume pin of an ended job",
        }
    }
}

/// One leftover found (and removed, unless a dry run).
#[derive(Debug, Clone, Serialize)]
pub struct Found {
    pub kind: Leftover,
    /// Relative to the workspace root.
    pub path: String,
    /// Disk space it takes (allocated blocks).
    pub bytes: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct GcReport {
    pub dry_run: bool,
    pub found: Vec<Found>,
    /// Bytes freed (or that would be).
    pub bytes: u64,
    /// Items that could not be removed, one line each.
    pub errors: Vec<String>,
}

/// Find the leftovers of `ws` and (unless `dry_run`) remove them.
pub fn gc(ws: &Workspace, opts: &GcOptions) -> anyhow::Result<GcReport> {
    let lock = super::lock(ws, LockMode::Exclusive).context("cannot take the lifecycle lock")?;
    let now = SystemTime::now();
    let old = |p: &Path| {
        newest_mtime(p, 0)
            .is_some_and(|t| now.duration_since(t).unwrap_or_default() >= opts.min_age)
    };
    let mut items: Vec<(Leftover, PathBuf)> = Vec::new();
    let root = ws.root();

    for e in children(&root.join(".trash")) {
        items.push((Leftover::Trash, e));
    }
    for e in children(root) {
        let name = file_name(&e);
        if name.starts_with(".tmp-") && old(&e) {
            items.push((Leftover::TempFile, e));
        } else if name.starts_with(super::bundle::STAGING_PREFIX)
            && !is_locked(&e.join(".lock"))
            && (e.join(".lock").exists() || old(&e))
        {
            items.push((Leftover::ImportStaging, e));
        }
    }

    for (_, id, paths) in ws.job_dirs()? {
        if is_locked(&paths.lock()) {
            continue; // a live host runs (or is creating) it
        }
        let rec = match read_json_opt::<JobRecord>(&paths.record()) {
            Ok(Some(rec)) => rec,
            Ok(None) => {
                if old(&paths.dir) {
                    items.push((Leftover::JobWithoutRecord, paths.dir.clone()));
                }
                continue;
            }
            Err(_) => continue, // unreadable: `labhost verify` reports it
        };
        if crate::store::may_be_running(&rec, &paths) {
            continue; // queued, or running on another node
        }
        let _ = id;
        for dir in [
            paths.dir.clone(),
            paths.artifacts(),
            paths.checkpoints(),
            paths.evals(),
        ] {
            for e in children(&dir) {
                if file_name(&e).starts_with(".tmp-") {
                    items.push((Leftover::TempFile, e));
                }
            }
        }
        let listed: std::collections::BTreeSet<String> =
            rec.stored().map(|s| s.location.clone()).collect();
        for dir in [paths.artifacts(), paths.checkpoints(), paths.evals()] {
            for e in children(&dir) {
                if !file_name(&e).starts_with('.') && !listed.contains(&ws.relative(&e)) {
                    items.push((Leftover::UnlistedStored, e));
                }
            }
        }
        if paths.cancel_request().exists() {
            items.push((Leftover::StaleCancel, paths.cancel_request()));
        }
        for p in super::pins::stale(ws, &paths) {
            items.push((Leftover::StalePin, p));
        }
    }

    for reg in [Registry::Models, Registry::Datasets] {
        for e in children(&ws.registry_dir(reg)) {
            let name = file_name(&e);
            if let Some(rest) = name.strip_prefix(".tmp-") {
                let running = job_of_temp(rest).is_some_and(|jid| {
                    ws.find_job(jid)
                        .is_ok_and(|(r, p)| r.id == jid && is_locked(&p.lock()))
                });
                if !running && old(&e) {
                    items.push((Leftover::TempFile, e));
                }
                continue;
            }
            if name.starts_with('.') {
                continue;
            }
            let Ok(Some(entry)) = read_json_opt::<EntryRef>(&e.join(reg.record_name())) else {
                continue;
            };
            if !super::remove::entry_job_exists(ws, &entry) && old(&e) {
                items.push((Leftover::OrphanEntry, e));
            }
        }
    }

    let runs = crate::pipeline::record::runs_dir(ws);
    for dir in children(&runs) {
        let paths = crate::pipeline::RunPaths { dir };
        if file_name(&paths.dir).starts_with('.') || !paths.dir.is_dir() || paths.is_locked() {
            continue;
        }
        if !paths.record().exists() {
            if old(&paths.dir) {
                items.push((Leftover::RunWithoutRecord, paths.dir.clone()));
            }
            continue;
        }
        for e in children(&paths.dir) {
            if file_name(&e).starts_with(".tmp-") {
                items.push((Leftover::TempFile, e));
            }
        }
        if paths.cancel_request().exists() {
            items.push((Leftover::StaleCancel, paths.cancel_request()));
        }
    }

    let mut report = GcReport {
        dry_run: opts.dry_run,
        ..Default::default()
    };
    let mut trashed = Vec::new();
    for (kind, path) in items {
        let rel = ws.relative(&path);
        if opts.dry_run {
            let bytes = disk_usage(&path);
            report.bytes += bytes;
            report.found.push(Found {
                kind,
                path: rel,
                bytes,
            });
            continue;
        }
        let moved = if kind == Leftover::Trash {
            Ok(Some(path.clone()))
        } else {
            ws.move_to_trash(&path)
        };
        match moved {
            Ok(Some(t)) => trashed.push((kind, rel, t)),
            Ok(None) => {}
            Err(e) => report.errors.push(format!("{rel}: {e}")),
        }
    }
    drop(lock);
    for (kind, rel, t) in trashed {
        let bytes = disk_usage(&t);
        match crate::store::tree::remove_tree(&t) {
            Ok(()) => {
                report.bytes += bytes;
                report.found.push(Found {
                    kind,
                    path: rel,
                    bytes,
                });
            }
            Err(e) => report.errors.push(format!("{rel}: {e}")),
        }
    }
    Ok(report)
}

/// The job id in a registry temp name `<name>-<job id>-<16 hex>` (after
/// `.tmp-`), if it has that shape.
fn job_of_temp(rest: &str) -> Option<&str> {
    let (id, rand) = rest.rsplit_once('-')?;
    if rand.len() != 16 || !rand.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let start = id.len().checked_sub(20)?;
    let jid = id.get(start..)?;
    let b = jid.as_bytes();
    let shape = b.iter().enumerate().all(|(i, c)| match i {
        8 | 15 => *c == b'-',
        16..=19 => c.is_ascii_hexdigit(),
        _ => c.is_ascii_digit(),
    });
    shape.then_some(jid)
}

fn children(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    out.sort();
    out
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The newest modification time of `p` and (a directory) anything below
/// it, so a tree still being filled is not taken for an old one.
fn newest_mtime(p: &Path, depth: usize) -> Option<SystemTime> {
    let m = p.symlink_metadata().ok()?;
    let mut newest = m.modified().ok()?;
    if m.is_dir() && depth < 128 {
        for c in children(p) {
            if let Some(t) = newest_mtime(&c, depth + 1) {
                newest = newest.max(t);
            }
        }
    }
    Some(newest)
}

fn disk_usage(p: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    match p.symlink_metadata() {
        Ok(m) if m.is_dir() => crate::store::tree::usage(p).map(|u| u.bytes).unwrap_or(0),
        Ok(m) => m.blocks() * 512,
        Err(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_temp_names_give_their_job() {
        assert_eq!(
            job_of_temp("sentiment-20260101-120000-ab12-0123456789abcdef"),
            Some("20260101-120000-ab12")
        );
        assert_eq!(job_of_temp("x-0123456789abcdef"), None);
        assert_eq!(job_of_temp("sentiment-20260101-120000-ab12-xyz"), None);
        assert_eq!(job_of_temp("imported-data-0123456789abcdef"), None);
    }
}
