//! Verification of stored files and directories against their records:
//! every recorded file is re-hashed, a stored directory is walked for files
//! the record does not list, and the recorded digest of a directory is
//! compared with the manifest of its recorded files (a single file's with
//! the digest of its one entry).

use std::collections::BTreeMap;
use std::ffi::{CStr, OsStr};
use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};

use super::digest::{hash_parallel, manifest_digest};
use super::record::{FileEntry, StoredRecord};
use super::tree::for_each_file;

/// Files larger than this are hashed on all cores.
const PARALLEL_HASH: u64 = 4 << 20;

/// One way a stored item differs from its record. Every path is the host
/// path (workspace root joined with the recorded location).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A recorded file (or the stored item itself) is not there.
    Missing { path: PathBuf },
    /// A file (or symlink, or special file) inside a stored directory that
    /// the record does not list.
    Extra { path: PathBuf },
    /// A recorded file's content no longer has the recorded blake3.
    Changed {
        path: PathBuf,
        digest: String,
        recorded: String,
    },
    /// The record's top-level digest is not what its own file list gives:
    /// for a directory the manifest digest of the recorded files, for a
    /// single file the digest of its one entry.
    ManifestMismatch {
        path: PathBuf,
        manifest: String,
        recorded: String,
    },
    /// A recorded file is a directory, symlink or special file.
    NotAFile { path: PathBuf },
    /// A stored directory is not a directory.
    NotADirectory { path: PathBuf },
    /// Something could not be read.
    Unreadable { path: PathBuf, error: String },
    /// The record itself is malformed (a path leaving the stored item, a
    /// duplicate entry, a file record without its one entry).
    BadRecord { path: PathBuf, reason: String },
}

impl Problem {
    /// The host path the problem is about.
    pub fn path(&self) -> &Path {
        match self {
            Problem::Missing { path }
            | Problem::Extra { path }
            | Problem::Changed { path, .. }
            | Problem::ManifestMismatch { path, .. }
            | Problem::NotAFile { path }
            | Problem::NotADirectory { path }
            | Problem::Unreadable { path, .. }
            | Problem::BadRecord { path, .. } => path,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.path().display();
        match self {
            Problem::Missing { .. } => write!(f, "{p}: missing"),
            Problem::Extra { .. } => write!(f, "{p}: extra file, not in the record"),
            Problem::Changed {
                digest, recorded, ..
            } => write!(f, "{p}: digest {digest} != recorded {recorded}"),
            Problem::ManifestMismatch {
                manifest, recorded, ..
            } => write!(
                f,
                "{p}: recorded digest {recorded} != {manifest} computed from the recorded files"
            ),
            Problem::NotAFile { .. } => write!(f, "{p}: not a regular file"),
            Problem::NotADirectory { .. } => write!(f, "{p}: not a directory"),
            Problem::Unreadable { error, .. } => write!(f, "{p}: {error}"),
            Problem::BadRecord { reason, .. } => write!(f, "{p}: bad record: {reason}"),
        }
    }
}

/// A relative path of plain components (no `.`, `..`, root or empty part).
fn plain_relative(p: &str) -> bool {
    !p.is_empty()
        && !p.contains('\0')
        && p.split('/').all(|c| !c.is_empty() && c != "." && c != "..")
        && Path::new(p)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

/// Check the stored file or directory of `stored` (its location relative
/// to the workspace `root`) against the record: missing, extra and changed
/// files, and the recorded top-level digest. Problems are sorted by path.
pub fn verify_stored(root: &Path, stored: &StoredRecord) -> Vec<Problem> {
    let base = root.join(&stored.location);
    if !plain_relative(&stored.location) {
        return vec![Problem::BadRecord {
            path: base,
            reason: "the location is not a relative path inside the workspace".into(),
        }];
    }
    let mut problems = if stored.is_dir {
        verify_dir(&base, stored)
    } else {
        verify_file(&base, stored)
    };
    problems.sort_by(|a, b| a.path().cmp(b.path()));
    problems
}

fn verify_file(base: &Path, stored: &StoredRecord) -> Vec<Problem> {
    let entry = match stored.files.as_slice() {
        [e] if e.path.is_empty() => e,
        _ => {
            return vec![Problem::BadRecord {
                path: base.to_owned(),
                reason: "a stored file must list exactly one entry, with an empty path".into(),
            }]
        }
    };
    let mut problems = Vec::new();
    if stored.blake3 != entry.blake3 {
        problems.push(Problem::ManifestMismatch {
            path: base.to_owned(),
            manifest: entry.blake3.clone(),
            recorded: stored.blake3.clone(),
        });
    }
    let Some(parent) = base.parent() else {
        return problems;
    };
    let name = base.file_name().unwrap_or_default();
    let dir = match rustix::fs::open(
        parent,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(d) => d,
        Err(rustix::io::Errno::NOENT) => {
            problems.push(Problem::Missing {
                path: base.to_owned(),
            });
            return problems;
        }
        Err(e) => {
            problems.push(Problem::Unreadable {
                path: base.to_owned(),
                error: io::Error::from(e).to_string(),
            });
            return problems;
        }
    };
    if let Some(p) = check_file(&dir, name, base, entry) {
        problems.push(p);
    }
    problems
}

fn verify_dir(base: &Path, stored: &StoredRecord) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut recorded: BTreeMap<&[u8], &FileEntry> = BTreeMap::new();
    for f in &stored.files {
        let path = base.join(&f.path);
        if !plain_relative(&f.path) {
            problems.push(Problem::BadRecord {
                path,
                reason: format!("`{}` is not a relative path inside the directory", f.path),
            });
        } else if recorded.insert(f.path.as_bytes(), f).is_some() {
            problems.push(Problem::BadRecord {
                path,
                reason: "listed more than once".into(),
            });
        }
    }
    let mut sorted = stored.files.clone();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    let manifest = manifest_digest(&sorted);
    if manifest != stored.blake3 {
        problems.push(Problem::ManifestMismatch {
            path: base.to_owned(),
            manifest,
            recorded: stored.blake3.clone(),
        });
    }
    match base.symlink_metadata() {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            problems.push(Problem::NotADirectory {
                path: base.to_owned(),
            });
            return problems;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            problems.push(Problem::Missing {
                path: base.to_owned(),
            });
            return problems;
        }
        Err(e) => {
            problems.push(Problem::Unreadable {
                path: base.to_owned(),
                error: e.to_string(),
            });
            return problems;
        }
    }
    let walked = for_each_file(base, &mut |dir, name, rel| {
        let path = base.join(OsStr::from_bytes(rel));
        match recorded.remove(rel) {
            None => problems.push(Problem::Extra { path }),
            Some(entry) => {
                let name = OsStr::from_bytes(name.to_bytes());
                if let Some(p) = check_file(dir, name, &path, entry) {
                    problems.push(p);
                }
            }
        }
        Ok(())
    });
    if let Err(e) = walked {
        // What was not reached is not reported missing.
        problems.push(Problem::Unreadable {
            path: base.to_owned(),
            error: e.to_string(),
        });
        return problems;
    }
    // Recorded files the walk did not meet as files.
    for (rel, _) in recorded {
        let path = base.join(OsStr::from_bytes(rel));
        problems.push(match path.symlink_metadata() {
            Ok(_) => Problem::NotAFile { path },
            Err(_) => Problem::Missing { path },
        });
    }
    problems
}

/// Hash the entry `name` of `dir` (not followed if a symlink, never opened
/// unless a regular file) and compare it with `entry`.
fn check_file(dir: &impl AsFd, name: &OsStr, path: &Path, entry: &FileEntry) -> Option<Problem> {
    let unreadable = |e: io::Error| Problem::Unreadable {
        path: path.to_owned(),
        error: e.to_string(),
    };
    let name_c = match std::ffi::CString::new(name.as_bytes()) {
        Ok(n) => n,
        Err(e) => return Some(unreadable(io::Error::new(io::ErrorKind::InvalidInput, e))),
    };
    let name_c: &CStr = &name_c;
    match rustix::fs::statat(dir, name_c, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::RegularFile => {}
        Ok(_) => {
            return Some(Problem::NotAFile {
                path: path.to_owned(),
            })
        }
        Err(rustix::io::Errno::NOENT) => {
            return Some(Problem::Missing {
                path: path.to_owned(),
            })
        }
        Err(e) => return Some(unreadable(e.into())),
    }
    let fd: OwnedFd = match rustix::fs::openat(
        dir,
        name_c,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(e) => return Some(unreadable(e.into())),
    };
    let digest = match hash_file(File::from(fd)) {
        Ok(d) => d,
        Err(e) => return Some(unreadable(e)),
    };
    (digest != entry.blake3).then(|| Problem::Changed {
        path: path.to_owned(),
        digest,
        recorded: entry.blake3.clone(),
    })
}

fn hash_file(mut f: File) -> io::Result<String> {
    let meta = f.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    let hash = if meta.len() > PARALLEL_HASH {
        hash_parallel(&mut f)?
    } else {
        let mut h = blake3::Hasher::new();
        let mut buf = Vec::with_capacity(meta.len() as usize + 1);
        f.read_to_end(&mut buf)?;
        h.update(&buf);
        h.finalize()
    };
    Ok(hash.to_hex().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::digest::stored_record;

    fn digest(b: &[u8]) -> String {
        blake3::hash(b).to_hex().to_string()
    }

    fn entry(path: &str, bytes: &[u8]) -> FileEntry {
        FileEntry {
            path: path.into(),
            size: bytes.len() as u64,
            blake3: digest(bytes),
        }
    }

    /// A stored directory `models/m/files` holding `a` and `sub/b`, and its record.
    fn stored_dir(root: &Path) -> (PathBuf, StoredRecord) {
        let base = root.join("models/m/files");
        std::fs::create_dir_all(base.join("sub")).unwrap();
        std::fs::write(base.join("a"), b"alpha").unwrap();
        std::fs::write(base.join("sub/b"), b"beta").unwrap();
        let files = vec![entry("a", b"alpha"), entry("sub/b", b"beta")];
        let rec = stored_record("m", "models/m/files".into(), files, true);
        (base, rec)
    }

    #[test]
    fn an_intact_directory_and_file_verify() {
        let t = tempfile::tempdir().unwrap();
        let (base, rec) = stored_dir(t.path());
        // Empty directories are not content: not reported.
        std::fs::create_dir(base.join("empty")).unwrap();
        assert_eq!(verify_stored(t.path(), &rec), vec![]);
        std::fs::write(t.path().join("f.csv"), b"x,y").unwrap();
        let file = stored_record("f", "f.csv".into(), vec![entry("", b"x,y")], false);
        assert_eq!(verify_stored(t.path(), &file), vec![]);
    }

    #[test]
    fn extra_missing_and_changed_files_are_reported() {
        let t = tempfile::tempdir().unwrap();
        let (base, rec) = stored_dir(t.path());
        std::fs::write(base.join("planted"), b"evil").unwrap();
        std::fs::create_dir_all(base.join("sub/deeper")).unwrap();
        std::fs::write(base.join("sub/deeper/x"), b"evil").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", base.join("link")).unwrap();
        std::fs::remove_file(base.join("a")).unwrap();
        std::fs::write(base.join("sub/b"), b"bet").unwrap();
        assert_eq!(
            verify_stored(t.path(), &rec),
            vec![
                Problem::Missing {
                    path: base.join("a")
                },
                Problem::Extra {
                    path: base.join("link")
                },
                Problem::Extra {
                    path: base.join("planted")
                },
                Problem::Changed {
                    path: base.join("sub/b"),
                    digest: digest(b"bet"),
                    recorded: digest(b"beta"),
                },
                Problem::Extra {
                    path: base.join("sub/deeper/x")
                },
            ]
        );
    }

    #[test]
    fn a_recorded_digest_that_is_not_the_manifest_is_reported() {
        let t = tempfile::tempdir().unwrap();
        let (base, mut rec) = stored_dir(t.path());
        let manifest = rec.blake3.clone();
        rec.blake3 = digest(b"forged");
        let p = verify_stored(t.path(), &rec);
        assert_eq!(
            p,
            vec![Problem::ManifestMismatch {
                path: base.clone(),
                manifest: manifest.clone(),
                recorded: digest(b"forged"),
            }]
        );
        assert_eq!(
            p[0].to_string(),
            format!(
                "{}: recorded digest {} != {manifest} computed from the recorded files",
                base.display(),
                digest(b"forged")
            )
        );
        // A single file's top-level digest must be its entry's.
        std::fs::write(t.path().join("f"), b"x").unwrap();
        let mut file = stored_record("f", "f".into(), vec![entry("", b"x")], false);
        file.blake3 = digest(b"y");
        assert_eq!(
            verify_stored(t.path(), &file),
            vec![Problem::ManifestMismatch {
                path: t.path().join("f"),
                manifest: digest(b"x"),
                recorded: digest(b"y"),
            }]
        );
    }

    #[test]
    fn wrong_types_and_bad_records_are_reported_without_leaving_the_item() {
        let t = tempfile::tempdir().unwrap();
        let (base, rec) = stored_dir(t.path());
        // A recorded file replaced by a directory; a stored dir replaced by a file.
        std::fs::remove_file(base.join("a")).unwrap();
        std::fs::create_dir(base.join("a")).unwrap();
        assert_eq!(
            verify_stored(t.path(), &rec),
            vec![Problem::NotAFile {
                path: base.join("a")
            }]
        );
        std::fs::write(t.path().join("plain"), b"x").unwrap();
        let mut as_file = rec.clone();
        as_file.location = "plain".into();
        assert_eq!(
            verify_stored(t.path(), &as_file),
            vec![Problem::NotADirectory {
                path: t.path().join("plain")
            }]
        );
        // A symlinked single file is not followed.
        std::os::unix::fs::symlink(t.path().join("plain"), t.path().join("ln")).unwrap();
        let file = stored_record("ln", "ln".into(), vec![entry("", b"x")], false);
        assert_eq!(
            verify_stored(t.path(), &file),
            vec![Problem::NotAFile {
                path: t.path().join("ln")
            }]
        );
        let gone = stored_record("g", "gone".into(), vec![entry("", b"x")], false);
        assert_eq!(
            verify_stored(t.path(), &gone),
            vec![Problem::Missing {
                path: t.path().join("gone")
            }]
        );
        // Paths that leave the stored item are refused, never read.
        let mut escaping = rec.clone();
        escaping.files.push(entry("../../../plain", b"x"));
        escaping.files.sort_by(|a, b| a.path.cmp(&b.path));
        escaping.blake3 = manifest_digest(&escaping.files);
        let p = verify_stored(t.path(), &escaping);
        assert!(
            matches!(&p[0], Problem::BadRecord { reason, .. } if reason.contains("../../../plain")),
            "{p:?}"
        );
        let mut outside = rec;
        outside.location = "/etc".into();
        assert!(matches!(
            verify_stored(t.path(), &outside)[..],
            [Problem::BadRecord { .. }]
        ));
    }
}
