//! Durable writes: atomic whole-file writes, publishing a finished temp
//! file or directory, and the group commit ([`Pending`]) that makes stored
//! files durable before a record lists them.
//!
//! Everything stored is first built under a hidden `.tmp-*` name in its
//! final directory, then renamed into place: a reader (or a host that
//! restarts after `kill -9`) sees either nothing or the whole thing.
//!
//! Durability is a group commit: stored files are not fsynced one by one;
//! their final paths go to a [`Pending`] list, and the snapshot that writes
//! the record listing them first fsyncs them all (then their directories).
//! A record on disk therefore never lists a file that a power loss could
//! take away. (Checkpoints commit at once: resume relies on them.)

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::store::record::FileEntry;

/// Stored files and directories written without fsync, made durable
/// together by [`Pending::commit`] before a record that lists them is
/// written (group commit).
#[derive(Debug, Default)]
pub struct Pending {
    files: Vec<PathBuf>,
    dirs: BTreeSet<PathBuf>,
}

impl Pending {
    /// A stored file at its final path.
    pub fn file(&mut self, path: PathBuf) {
        self.files.push(path);
    }
    /// A directory that got a new entry (or was created).
    pub fn dir(&mut self, path: &Path) {
        self.dirs.insert(path.to_owned());
    }
    /// Every file of a stored item at `dest` (a file, or a directory holding
    /// `files`), and the directories that name them, up to `parent`.
    pub fn stored(&mut self, parent: &Path, dest: &Path, files: &[FileEntry], is_dir: bool) {
        self.dir(parent);
        if !is_dir {
            self.file(dest.to_owned());
            return;
        }
        self.dir(dest);
        for f in files {
            let p = dest.join(&f.path);
            let mut d = p.parent();
            while let Some(dir) = d.filter(|d| d.starts_with(dest) && *d != dest) {
                self.dir(dir);
                d = dir.parent();
            }
            self.file(p);
        }
    }
    /// fsync every pending file, then every pending directory. On an error
    /// the list is kept (the caller must not write a record listing them).
    ///
    /// Writeback of a whole batch is started first (`sync_file_range`), so
    /// the block allocations of all its files land in one filesystem journal
    /// transaction: the first fsync commits it and the others find their
    /// data already durable, instead of one journal commit per file.
    pub fn commit(&mut self) -> std::io::Result<()> {
        const BATCH: usize = 64; // open files at once (see `crate::fds`)
        let ctx = |p: &Path, e: std::io::Error| {
            std::io::Error::new(e.kind(), format!("syncing {}: {e}", p.display()))
        };
        for batch in self.files.chunks(BATCH) {
            let mut open = Vec::with_capacity(batch.len());
            for f in batch {
                let h = File::open(f).map_err(|e| ctx(f, e))?;
                start_writeback(&h);
                open.push(h);
            }
            for (h, f) in open.iter().zip(batch) {
                h.sync_data().map_err(|e| ctx(f, e))?;
            }
        }
        self.files.clear();
        // Deepest first: a new directory's own entries before its name.
        for d in self.dirs.iter().rev() {
            File::open(d)
                .and_then(|h| h.sync_all())
                .map_err(|e| ctx(d, e))?;
        }
        self.dirs.clear();
        Ok(())
    }
}

/// Start writing `file`'s dirty pages without waiting (a hint: the fsync
/// that follows is what makes them durable).
fn start_writeback(file: &File) {
    start_writeback_range(file, 0, 0);
}

/// [`start_writeback`] for `len` bytes from `offset` (`len` 0: to the end).
pub(super) fn start_writeback_range(file: &File, offset: u64, len: u64) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
            return;
        };
        // SAFETY: a valid open descriptor; the call only schedules writeback.
        unsafe {
            libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, offset, len);
}

/// Write `bytes` to `path` atomically (temp file in the same directory,
/// fsync, rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = temp_sibling(path);
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_data()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// A hidden, unique temporary name next to `path`.
pub fn temp_sibling(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".tmp-{name}-{:016x}", fastrand::u64(..)))
}

/// Move a finished temp file/dir into place; fails if `dest` exists.
pub fn publish(tmp: &Path, dest: &Path) -> std::io::Result<()> {
    if dest.symlink_metadata().is_ok() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!("{} already exists", dest.display()),
        ));
    }
    fs::rename(tmp, dest)
}

/// Remove a temp file or directory, ignoring errors (best effort cleanup).
pub fn discard(tmp: &Path) {
    match tmp.symlink_metadata() {
        Ok(m) if m.is_dir() => {
            let _ = super::tree::remove_tree(tmp);
        }
        Ok(_) => {
            let _ = fs::remove_file(tmp);
        }
        Err(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The group commit lists every stored file and the directories that
    /// name them, and syncs them (here: without error) once.
    #[test]
    fn pending_lists_files_and_their_directories() {
        let tmp = tempfile::tempdir().unwrap();
        let parent = tmp.path().join("artifacts");
        let dest = parent.join("tree");
        fs::create_dir_all(dest.join("a/b")).unwrap();
        fs::write(dest.join("a/b/f"), b"x").unwrap();
        fs::write(dest.join("g"), b"y").unwrap();
        let entry = |p: &str| FileEntry {
            path: p.into(),
            size: 1,
            blake3: String::new(),
        };
        let mut pending = Pending::default();
        pending.stored(&parent, &dest, &[entry("a/b/f"), entry("g")], true);
        assert_eq!(pending.files, vec![dest.join("a/b/f"), dest.join("g")]);
        let dirs: Vec<_> = pending.dirs.iter().cloned().collect();
        assert_eq!(
            dirs,
            vec![
                parent.clone(),
                dest.clone(),
                dest.join("a"),
                dest.join("a/b")
            ]
        );
        pending.commit().unwrap();
        assert!(pending.files.is_empty() && pending.dirs.is_empty());
    }
}
