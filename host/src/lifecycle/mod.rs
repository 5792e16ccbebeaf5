//! The lifecycle of what a workspace holds: deleting a job or a pipeline
//! run ([`remove`]), checkpoint retention ([`retention`]), collecting
//! leftovers ([`gc`]), and moving jobs and runs between workspaces as
//! verified bundles ([`bundle`]).
//!
//! Deletions and imports change what other jobs may be using, so they
//! and job starts are ordered by one lock file, `<workspace>/.lifecycle.lock`:
//! a job start holds it shared from resolving its grants and resume point
//! until its first record (naming them) is written; a removal, an import,
//! `gc` and checkpoint retention hold it exclusively while they decide and
//! move things away. A job is therefore either visible as running with its
//! grants when a removal checks, or resolves its grants after the removal
//! (and finds them gone).

pub mod bundle;
pub mod gc;
pub mod pins;
pub mod remove;
pub mod retention;

use std::fs::File;
use std::path::PathBuf;

use crate::store::Workspace;

/// How [`lock`] takes the workspace's lifecycle lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// Job starts: many at once.
    Shared,
    /// Removal, import, gc, retention: alone.
    Exclusive,
}

fn lock_path(ws: &Workspace) -> PathBuf {
    ws.root().join(".lifecycle.lock")
}

/// Take the workspace's lifecycle lock (blocking); released when the file
/// is dropped.
pub fn lock(ws: &Workspace, mode: LockMode) -> std::io::Result<File> {
    let f = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(lock_path(ws))?;
    match mode {
        LockMode::Shared => f.lock_shared()?,
        LockMode::Exclusive => f.lock()?,
    }
    Ok(f)
}

/// A refusal: the request is understood but what it would change is in use
/// or exists (HTTP 409). The message is one line naming what is in the way.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// Nothing with that id (HTTP 404).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NotFound(pub String);

/// A bundle that cannot be imported as it is: malformed, unsafe or
/// tampered with (HTTP 400). Nothing was imported.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadBundle(pub String);

/// What `labhost rm`, `export` and the API take: a job or a pipeline run.
#[derive(Debug, Clone)]
pub enum Target {
    Job(Box<crate::store::JobRecord>, crate::store::JobPaths),
    Run(Box<crate::pipeline::RunRecord>, crate::pipeline::RunPaths),
}

/// The job or pipeline run with this id (or unique id prefix).
pub fn find(ws: &Workspace, id: &str) -> anyhow::Result<Target> {
    let job = ws.find_job(id);
    let run = crate::pipeline::find_run(ws, id);
    match (job, run) {
        (Ok((j, _)), Ok((r, _))) => Err(anyhow::anyhow!(
            "`{id}` names both job {} and pipeline run {}; give more of the id",
            j.id,
            r.id
        )),
        (Ok((rec, paths)), Err(_)) => Ok(Target::Job(Box::new(rec), paths)),
        (Err(_), Ok((rec, paths))) => Ok(Target::Run(Box::new(rec), paths)),
        (Err(e), Err(_)) if e.to_string().contains("ambiguous") => {
            Err(NotFound(e.to_string()).into())
        }
        (Err(_), Err(_)) => Err(NotFound(format!(
            "no job or pipeline run `{}` in workspace {}",
            crate::text::for_terminal_line(id),
            ws.root().display()
        ))
        .into()),
    }
}
