//! What job directories and pipeline-run directories have in common: ids
//! allocated by creating the directory (`YYYYMMDD-HHMMSS-xxxx`), lookup by
//! id or unique id prefix, the `.lock` the process running it holds, and
//! the cancel-request file another process writes.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use chrono::Utc;

/// Create `<parent>/<new id>` (and `parent` if needed); the id is new
/// because the directory did not exist.
pub fn create_unique(parent: &Path, noun: &str) -> anyhow::Result<(String, PathBuf)> {
    std::fs::create_dir_all(parent)
        .with_context(|| format!("cannot create {}", parent.display()))?;
    for _ in 0..100 {
        let id = format!(
            "{}-{:04x}",
            Utc::now().format("%Y%m%d-%H%M%S"),
            fastrand::u16(..)
        );
        let dir = parent.join(&id);
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok((id, dir)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("cannot create a {noun} in {}", parent.display()))
            }
        }
    }
    bail!("cannot allocate a {noun} id in {}", parent.display())
}

/// The items `given` names: the one whose id it is, else those whose id
/// starts with it. Exactly one is an answer; none or several is an error
/// (`what` names the kind, e.g. "job", "pipeline run").
pub fn pick<'a, T>(
    items: &'a [T],
    id: impl Fn(&T) -> &str,
    given: &str,
    what: &str,
    workspace: &Path,
) -> anyhow::Result<&'a T> {
    if let Some(exact) = items.iter().find(|i| id(i) == given) {
        return Ok(exact);
    }
    let found: Vec<&T> = items.iter().filter(|i| id(i).starts_with(given)).collect();
    match found.as_slice() {
        [] => bail!("no {what} `{given}` in workspace {}", workspace.display()),
        [one] => Ok(one),
        _ => bail!(
            "{what} id `{given}` is ambiguous ({} {what}s match)",
            found.len()
        ),
    }
}

/// Take the lock file at `path` (created if missing), or `None` when a
/// live process holds it.
pub fn try_lock(path: &Path) -> anyhow::Result<Option<File>> {
    let f = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    Ok(f.try_lock().is_ok().then_some(f))
}

/// Whether a live process holds the lock file at `path` (a missing file:
/// no).
pub fn is_locked(path: &Path) -> bool {
    match File::open(path) {
        Ok(f) => f.try_lock().is_err(),
        Err(_) => false,
    }
}

/// Ask the process holding the lock to cancel: write the request file.
pub fn request_cancel(path: &Path) -> anyhow::Result<()> {
    super::durable::write_atomic(path, Utc::now().to_rfc3339().as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_found_by_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let ids: Vec<String> = (0..50)
            .map(|_| create_unique(dir.path(), "job").unwrap().0)
            .collect();
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 50);
        let items = vec![
            "20260101-000000-aaaa",
            "20260101-000000-aabb",
            "20260101-000000-bbbb",
        ];
        let pick = |g: &str| pick(&items, |s| s, g, "job", dir.path()).copied();
        assert_eq!(pick("20260101-000000-b").unwrap(), "20260101-000000-bbbb");
        assert_eq!(
            pick("20260101-000000-aaaa").unwrap(),
            "20260101-000000-aaaa"
        );
        assert_eq!(
            pick("20260101-000000-aa").unwrap_err().to_string(),
            "job id `20260101-000000-aa` is ambiguous (2 jobs match)"
        );
        assert!(pick("x")
            .unwrap_err()
            .to_string()
            .starts_with("no job `x` in workspace "));
    }

    #[test]
    fn a_held_lock_is_seen_and_not_taken_twice() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".lock");
        assert!(!is_locked(&path));
        let held = try_lock(&path).unwrap().expect("free");
        assert!(is_locked(&path));
        assert!(try_lock(&path).unwrap().is_none());
        drop(held);
        assert!(!is_locked(&path));
    }
}
