//! Walks of directory trees that a guest built: iterative, descriptor-
//! relative, with a bounded stack and a bounded number of open descriptors.
//!
//! A guest can build a tree thousands of levels deep one descriptor at a
//! time, so that no path it ever uses is long. A recursive walk (like
//! `std::fs::remove_dir_all`) then needs one native stack frame and one
//! descriptor per level, and a path-based one fails with `ENAMETOOLONG`
//! below `PATH_MAX`. These walks keep the pending work on the heap (the
//! names of directories still to visit), hold at most three descriptors at
//! once, and reach every directory by `openat(parent, name, O_NOFOLLOW)`;
//! going back up they open `..` and check it is the directory they came
//! from (device and inode), so a tree changed during the walk is reported,
//! never followed elsewhere.

use std::collections::HashSet;
use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, CWD};

/// What [`walk`] calls for each thing it meets.
trait Visitor {
    /// A directory `name` was entered (`depth` 0 is the root, whose `name`
    /// is its whole path); `path_len` is the length in bytes of its host path.
    fn dir(&mut self, fd: &OwnedFd, depth: usize, name: &CStr, path_len: usize) -> io::Result<()>;
    /// A non-directory entry `name` of the directory `dir`.
    fn entry(&mut self, dir: &OwnedFd, name: &CStr, path_len: usize) -> io::Result<()>;
    /// Every entry of the directory `name` (in `parent`) was visited.
    fn dir_done(&mut self, parent: &OwnedFd, name: &CStr) -> io::Result<()>;
}

struct Frame {
    name: CString,
    dev: u64,
    ino: u64,
    /// Subdirectories not visited yet.
    pending: Vec<CString>,
    path_len: usize,
}

fn open_dir_at(dir: impl AsFd, name: &CStr) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

fn identity(fd: &OwnedFd) -> io::Result<(u64, u64)> {
    let st = rustix::fs::fstat(fd)?;
    Ok((st.st_dev, st.st_ino))
}

/// The entries of `dir`: calls `v.entry` for each non-directory, returns
/// the names of the subdirectories.
fn list(dir: &OwnedFd, path_len: usize, v: &mut dyn Visitor) -> io::Result<Vec<CString>> {
    let mut subdirs = Vec::new();
    for entry in rustix::fs::Dir::read_from(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        let is_dir = match entry.file_type() {
            FileType::Unknown => match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => FileType::from_raw_mode(st.st_mode) == FileType::Directory,
                Err(rustix::io::Errno::NOENT) => continue,
                Err(e) => return Err(e.into()),
            },
            t => t == FileType::Directory,
        };
        if is_dir {
            subdirs.push(name.to_owned());
        } else {
            v.entry(dir, name, path_len + 1 + name.to_bytes().len())?;
        }
    }
    Ok(subdirs)
}

/// Depth-first walk of the tree at `root` (not followed if a symlink).
fn walk(root: &Path, v: &mut dyn Visitor) -> io::Result<()> {
    let root_c = CString::new(root.as_os_str().as_encoded_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))?;
    let mut cur = open_dir_at(CWD, &root_c)?;
    let root_len = root.as_os_str().len();
    v.dir(&cur, 0, &root_c, root_len)?;
    let (dev, ino) = identity(&cur)?;
    let pending = list(&cur, root_len, v)?;
    let mut stack = vec![Frame {
        name: root_c,
        dev,
        ino,
        pending,
        path_len: root_len,
    }];
    while let Some(top) = stack.last_mut() {
        if let Some(name) = top.pending.pop() {
            let path_len = top.path_len + 1 + name.to_bytes().len();
            let fd = match open_dir_at(&cur, &name) {
                Ok(fd) => fd,
                // Removed or replaced since it was listed (a running guest).
                Err(e) if is_gone(&e) => continue,
                Err(e) => return Err(e),
            };
            cur = fd;
            v.dir(&cur, stack.len(), &name, path_len)?;
            let (dev, ino) = identity(&cur)?;
            let pending = list(&cur, path_len, v)?;
            stack.push(Frame {
                name,
                dev,
                ino,
                pending,
                path_len,
            });
        } else {
            let done = stack.pop().expect("non-empty");
            let Some(parent) = stack.last() else {
                break;
            };
            let up = open_dir_at(&cur, c"..")?;
            if identity(&up)? != (parent.dev, parent.ino) {
                return Err(io::Error::other(
                    "the directory tree changed while it was walked",
                ));
            }
            cur = up;
            v.dir_done(&cur, &done.name)?;
        }
    }
    Ok(())
}

fn is_gone(e: &io::Error) -> bool {
    matches!(
        rustix::io::Errno::from_io_error(e),
        Some(rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR | rustix::io::Errno::LOOP)
    )
}

struct Remover;

impl Visitor for Remover {
    fn dir(&mut self, _: &OwnedFd, _: usize, _: &CStr, _: usize) -> io::Result<()> {
        Ok(())
    }
    fn entry(&mut self, dir: &OwnedFd, name: &CStr, _: usize) -> io::Result<()> {
        match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
            Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
    fn dir_done(&mut self, parent: &OwnedFd, name: &CStr) -> io::Result<()> {
        match rustix::fs::unlinkat(parent, name, AtFlags::REMOVEDIR) {
            Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// Remove the directory tree at `path` (like `std::fs::remove_dir_all`,
/// but at any depth with O(1) native stack and at most three descriptors).
/// A missing `path` is not an error; a symlink at `path` is removed, not
/// followed.
pub fn remove_tree(path: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
        Ok(m) if !m.is_dir() => return std::fs::remove_file(path),
        Ok(_) => {}
    }
    walk(path, &mut Remover)?;
    match std::fs::remove_dir(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
}

/// Disk use of a tree, as [`usage`] measures it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Bytes of disk allocated (`st_blocks`, so a sparse file counts what
    /// it occupies), directories included, hard links counted once.
    pub bytes: u64,
    /// Longest host path in the tree, in bytes.
    pub longest_path: usize,
    /// Deepest directory level (the root is 0).
    pub depth: usize,
}

#[derive(Default)]
struct Measure {
    usage: Usage,
    linked: HashSet<(u64, u64)>,
}

impl Measure {
    fn add(&mut self, st: &rustix::fs::Stat) {
        if st.st_nlink > 1
            && FileType::from_raw_mode(st.st_mode) != FileType::Directory
            && !self.linked.insert((st.st_dev, st.st_ino))
        {
            return;
        }
        self.usage.bytes = self.usage.bytes.saturating_add(st.st_blocks as u64 * 512);
    }
}

impl Visitor for Measure {
    fn dir(&mut self, fd: &OwnedFd, depth: usize, _: &CStr, path_len: usize) -> io::Result<()> {
        let st = rustix::fs::fstat(fd)?;
        self.add(&st);
        self.usage.depth = self.usage.depth.max(depth);
        self.usage.longest_path = self.usage.longest_path.max(path_len);
        Ok(())
    }
    fn entry(&mut self, dir: &OwnedFd, name: &CStr, path_len: usize) -> io::Result<()> {
        self.usage.longest_path = self.usage.longest_path.max(path_len);
        match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => self.add(&st),
            Err(rustix::io::Errno::NOENT) => {}
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }
    fn dir_done(&mut self, _: &OwnedFd, _: &CStr) -> io::Result<()> {
        Ok(())
    }
}

/// Measure the tree at `path` at any depth and path length.
pub fn usage(path: &Path) -> io::Result<Usage> {
    let mut m = Measure::default();
    walk(path, &mut m)?;
    Ok(m.usage)
}

/// Calls `f(dir, name, rel)` for every non-directory entry of the tree at
/// `root` (symlinks and special files included, none followed): `dir` is
/// the open directory holding it, `rel` its path from `root`, `/`-separated.
type FileFn<'a> = dyn FnMut(&OwnedFd, &CStr, &[u8]) -> io::Result<()> + 'a;

struct Files<'a> {
    /// The names of the directories from the root to the current one.
    prefix: Vec<Vec<u8>>,
    f: &'a mut FileFn<'a>,
}

impl Visitor for Files<'_> {
    fn dir(&mut self, _: &OwnedFd, depth: usize, name: &CStr, _: usize) -> io::Result<()> {
        if depth > 0 {
            self.prefix.truncate(depth - 1);
            self.prefix.push(name.to_bytes().to_vec());
        }
        Ok(())
    }
    fn entry(&mut self, dir: &OwnedFd, name: &CStr, _: usize) -> io::Result<()> {
        let mut rel = Vec::new();
        for p in &self.prefix {
            rel.extend_from_slice(p);
            rel.push(b'/');
        }
        rel.extend_from_slice(name.to_bytes());
        (self.f)(dir, name, &rel)
    }
    fn dir_done(&mut self, _: &OwnedFd, _: &CStr) -> io::Result<()> {
        Ok(())
    }
}

/// Visit every non-directory entry below the directory `root` (at any
/// depth, iteratively, descriptor-relative; see [`Files`]).
pub(crate) fn for_each_file(root: &Path, f: &mut FileFn<'_>) -> io::Result<()> {
    walk(
        root,
        &mut Files {
            prefix: Vec::new(),
            f,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A chain `depth` levels deep under `root`, built one descriptor at a
    /// time (as a guest would): no path used is long.
    fn chain(root: &Path, depth: usize, name: &str) -> OwnedFd {
        let name = CString::new(name).unwrap();
        let mut cur = open_dir_at(CWD, &CString::new(root.to_str().unwrap()).unwrap()).unwrap();
        for _ in 0..depth {
            rustix::fs::mkdirat(&cur, &name, Mode::from_raw_mode(0o755)).unwrap();
            cur = open_dir_at(&cur, &name).unwrap();
        }
        cur
    }

    fn write_at(dir: &OwnedFd, name: &CStr, bytes: usize) {
        let fd = rustix::fs::openat(
            dir,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        )
        .unwrap();
        let data = vec![7u8; bytes];
        let mut done = 0;
        while done < bytes {
            done += rustix::io::write(&fd, &data[done..]).unwrap();
        }
    }

    /// 20,000 levels: far past what a recursive walk survives on a 2 MiB
    /// thread and past any descriptor limit, run on a 256 KiB stack.
    #[test]
    fn removes_a_tree_deeper_than_any_stack_or_descriptor_limit() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("work");
        std::fs::create_dir(&root).unwrap();
        let bottom = chain(&root, 20_000, "d");
        write_at(&bottom, c"f", 10);
        drop(bottom);
        let r = root.clone();
        let removed = std::thread::Builder::new()
            .stack_size(256 << 10)
            .spawn(move || remove_tree(&r))
            .unwrap()
            .join()
            .unwrap();
        removed.unwrap();
        assert!(!root.exists());
        // Missing is fine; a symlink is removed, not followed.
        remove_tree(&root).unwrap();
        let keep = t.path().join("keep");
        std::fs::create_dir(&keep).unwrap();
        std::fs::write(keep.join("x"), "x").unwrap();
        std::os::unix::fs::symlink(&keep, t.path().join("link")).unwrap();
        remove_tree(&t.path().join("link")).unwrap();
        assert_eq!(std::fs::read(keep.join("x")).unwrap(), b"x");
    }

    /// Bytes below a path longer than PATH_MAX are counted; sparse files
    /// count their blocks; hard links once; symlinks are not followed.
    #[test]
    fn usage_counts_below_path_max_sparse_files_and_hard_links_once() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("work");
        std::fs::create_dir(&root).unwrap();
        let long = "a".repeat(250);
        let bottom = chain(&root, 20, &long);
        write_at(&bottom, c"big", 4 << 20);
        drop(bottom);
        let u = usage(&root).unwrap();
        assert!(u.longest_path > 4096, "{u:?}");
        assert_eq!(u.depth, 20);
        assert!(
            u.bytes >= 4 << 20 && u.bytes < (4 << 20) + (1 << 20),
            "{u:?}"
        );

        let flat = t.path().join("flat");
        std::fs::create_dir(&flat).unwrap();
        let f = std::fs::File::create(flat.join("sparse")).unwrap();
        f.set_len(1 << 40).unwrap();
        std::fs::write(flat.join("one"), vec![1u8; 1 << 20]).unwrap();
        std::fs::hard_link(flat.join("one"), flat.join("two")).unwrap();
        std::os::unix::fs::symlink(&root, flat.join("link")).unwrap();
        let u = usage(&flat).unwrap();
        assert!(u.bytes >= 1 << 20 && u.bytes < 2 << 20, "{u:?}");
    }
}
