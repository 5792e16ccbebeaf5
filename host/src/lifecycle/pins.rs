//! Resume pins: a job that starts from another job's checkpoint leaves
//! `<source job>/.pins/<its id>` (its experiment and the checkpoint's name)
//! while it starts, under the shared lifecycle lock. Retention in the
//! source job and `labhost rm` read them under the exclusive lock: a pin
//! whose job still holds its `.lock` protects that checkpoint (and the
//! job); one whose job ended is stale and removed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::store::dirs::is_locked;
use crate::store::durable::write_atomic;
use crate::store::{JobPaths, Workspace};

fn dir(src: &JobPaths) -> PathBuf {
    src.dir.join(".pins")
}

/// A live resume of `src`'s checkpoint: the resuming job and the checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    pub job_id: String,
    pub checkpoint: String,
    path: PathBuf,
    live: bool,
}

/// Record that job `experiment/id` resumes from `checkpoint` of `src`.
pub(crate) fn pin(
    src: &JobPaths,
    experiment: &str,
    id: &str,
    checkpoint: &str,
) -> std::io::Result<()> {
    let d = dir(src);
    match std::fs::create_dir(&d) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    write_atomic(
        &d.join(id),
        format!("{experiment}\n{checkpoint}\n").as_bytes(),
    )
}

/// Every pin of `src`, live or stale.
pub fn all(ws: &Workspace, src: &JobPaths) -> Vec<Pin> {
    let Ok(entries) = std::fs::read_dir(dir(src)) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let id = e.file_name().to_string_lossy().into_owned();
        if id.starts_with('.') {
            continue; // a temp of write_atomic
        }
        let text = std::fs::read_to_string(e.path()).unwrap_or_default();
        let mut lines = text.lines();
        let (exp, ckpt) = (lines.next().unwrap_or(""), lines.next().unwrap_or(""));
        let live = crate::names::check_name("experiment", exp).is_ok()
            && crate::names::check_name("id", &id).is_ok()
            && is_locked(&ws.job_paths(exp, &id).lock());
        out.push(Pin {
            job_id: id,
            checkpoint: ckpt.to_owned(),
            path: e.path(),
            live,
        });
    }
    out.sort_by(|a, b| a.job_id.cmp(&b.job_id));
    out
}

/// The pins of running jobs; stale pins are removed on the way.
pub fn live(ws: &Workspace, src: &JobPaths) -> Vec<Pin> {
    let mut out = Vec::new();
    for p in all(ws, src) {
        if p.live {
            out.push(p);
        } else {
            let _ = std::fs::remove_file(&p.path);
        }
    }
    out
}

/// The checkpoints running jobs resume from.
pub fn protected(ws: &Workspace, src: &JobPaths) -> BTreeSet<String> {
    live(ws, src).into_iter().map(|p| p.checkpoint).collect()
}

/// Stale pin files of `src` (for `gc`).
pub fn stale(ws: &Workspace, src: &JobPaths) -> Vec<PathBuf> {
    all(ws, src)
        .into_iter()
        .filter(|p| !p.live)
        .map(|p| p.path)
        .collect()
}

impl Pin {
    pub fn path(&self) -> &Path {
        &self.path
    }
}
