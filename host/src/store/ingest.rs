//! Ingest and quota: copying guest files (through their cap-std grant) and
//! host-made bytes into the store, hashing them in the same pass, charged
//! to the job's [`Quota`] before a byte is copied. Nothing here is fsynced:
//! the caller adds what was stored to a [`Pending`](super::durable::Pending) commit.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::Path;

use cap_std::fs::Dir;

use super::digest::hash_parallel;
use super::durable::start_writeback_range;
use super::error::{StoreError, StoreResult};
use crate::store::record::FileEntry;

/// Deepest directory nesting accepted when storing a directory.
const MAX_DEPTH: usize = 64;
/// Files up to this size are read whole, hashed and written in one call
/// each; larger ones are copied by the kernel (`copy_file_range`, a reflink
/// where the filesystem has them) in [`KERNEL_STEP`] steps and then hashed.
const SMALL_FILE: u64 = 256 << 10;
const KERNEL_STEP: u64 = 64 << 20;

/// Whether a long host operation must stop now (the job's deadline,
/// cancel or abort): checked between the steps of a copy.
pub type StopCheck = std::sync::Arc<dyn Fn() -> bool + Send + Sync>;

/// Remaining storage a job may use; charged before bytes are copied.
#[derive(Clone)]
pub struct Quota {
    pub bytes_left: u64,
    pub files_left: u64,
    pub bytes_limit: u64,
    pub files_limit: u64,
    /// Checked between the steps of long copies.
    pub stop: Option<StopCheck>,
}

impl std::fmt::Debug for Quota {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Quota")
            .field("bytes_left", &self.bytes_left)
            .field("files_left", &self.files_left)
            .finish_non_exhaustive()
    }
}

/// Bytes charged per stored file for its entry in the job record.
pub const ENTRY_BYTES: u64 = 128;

/// Longest relative path of a file inside a stored directory, in bytes:
/// every path is written into the job record.
pub const MAX_STORED_PATH: usize = 1024;

impl Quota {
    pub fn new(bytes: u64, files: u64) -> Self {
        Quota {
            bytes_left: bytes,
            files_left: files,
            bytes_limit: bytes,
            files_limit: files,
            stop: None,
        }
    }
    /// Fail the operation ([`StoreError::Interrupted`]: the job is being
    /// ended) if the job must stop.
    pub fn check_stop(&self) -> StoreResult<()> {
        match &self.stop {
            Some(stop) if stop() => Err(StoreError::Interrupted),
            _ => Ok(()),
        }
    }
    /// Charge `n` bytes of record or metadata (not file content).
    pub fn charge_record_bytes(&mut self, n: u64) -> StoreResult<()> {
        self.charge_bytes(n)
    }
    fn charge_bytes(&mut self, n: u64) -> StoreResult<()> {
        self.bytes_left = self.bytes_left.checked_sub(n).ok_or_else(|| {
            StoreError::Limit(format!(
                "stored-bytes limit of {} reached",
                crate::units::human_bytes(self.bytes_limit)
            ))
        })?;
        Ok(())
    }
    fn charge_file(&mut self) -> StoreResult<()> {
        self.files_left = self.files_left.checked_sub(1).ok_or_else(|| {
            StoreError::Limit(format!(
                "stored-files limit of {} reached",
                self.files_limit
            ))
        })?;
        Ok(())
    }
}

/// Copy `src` to a new file at `dest` and return its size and blake3.
/// Not fsynced: the caller adds `dest` to a [`Pending`](super::durable::Pending) commit.
///
/// The digest is always that of the bytes written to `dest`: small files
/// are read once into memory, hashed and written; large files are copied
/// by the kernel and then `dest` (which only the host writes) is hashed.
fn copy_hashing(
    src: &File,
    dest: &Path,
    quota: &mut Quota,
    what: &str,
) -> StoreResult<(u64, String)> {
    quota.charge_file()?;
    // The whole size is charged before a byte is copied (a guest's sparse
    // 1 TiB file is refused at once, not after copying the quota's worth of
    // zeros), and at most that many bytes are copied.
    let len = src.metadata().map_err(|e| StoreError::io(what, e))?.len();
    quota.charge_bytes(len)?;
    quota.check_stop()?;
    let mut out = File::create_new(dest)
        .map_err(|e| StoreError::Io(format!("creating {}: {e}", dest.display())))?;
    let write_err = |e: std::io::Error| StoreError::Io(format!("writing {}: {e}", dest.display()));
    if len > SMALL_FILE {
        return copy_large(src, len, &mut out, dest, quota, what);
    }
    // Small: one buffer, hashed and written.
    let mut buf = Vec::with_capacity(len as usize);
    src.take(len)
        .read_to_end(&mut buf)
        .map_err(|e| StoreError::io(what, e))?;
    out.write_all(&buf).map_err(write_err)?;
    Ok((buf.len() as u64, blake3::hash(&buf).to_hex().to_string()))
}

/// Kernel copy of at most `len` bytes (already charged) in steps, the
/// job's interrupt checked between steps, then hash `dest`.
fn copy_large(
    src: &File,
    len: u64,
    out: &mut File,
    dest: &Path,
    quota: &mut Quota,
    what: &str,
) -> StoreResult<(u64, String)> {
    let mut size = 0u64;
    while size < len {
        quota.check_stop()?;
        let step = KERNEL_STEP.min(len - size);
        let n = std::io::copy(&mut src.take(step), out).map_err(|e| StoreError::io(what, e))?;
        // Overlap the disk writes with the rest of the copy and the hashing:
        // the fsync that makes the file durable then waits for less.
        start_writeback_range(out, size, n);
        size += n;
        if n < step {
            break; // the file shrank meanwhile
        }
    }
    quota.check_stop()?;
    let hash = File::open(dest)
        .and_then(|mut f| hash_parallel(&mut f))
        .map_err(|e| StoreError::Io(format!("reading back {}: {e}", dest.display())))?;
    Ok((size, hash.to_hex().to_string()))
}

/// Store bytes made by the host (dataset rows, eval tables) at `dest`
/// (not fsynced: see [`Pending`](super::durable::Pending)).
pub fn store_bytes(bytes: &[u8], dest: &Path, quota: &mut Quota) -> StoreResult<FileEntry> {
    quota.charge_file()?;
    quota.charge_bytes(bytes.len() as u64)?;
    let mut out = File::create_new(dest)
        .map_err(|e| StoreError::Io(format!("creating {}: {e}", dest.display())))?;
    out.write_all(bytes)
        .map_err(|e| StoreError::Io(format!("writing {}: {e}", dest.display())))?;
    Ok(FileEntry {
        path: String::new(),
        size: bytes.len() as u64,
        blake3: blake3::hash(bytes).to_hex().to_string(),
    })
}

/// Copy the file or directory `rel` of the grant `src` (opened by cap-std,
/// so nothing outside the grant is reachable) to the new path `dest`.
///
/// The top-level path may be a symlink that stays inside the grant; inside
/// a stored directory, symlinks and special files are refused.
pub fn store_from_guest(
    src: &Dir,
    rel: &Path,
    guest_path: &str,
    dest: &Path,
    quota: &mut Quota,
) -> StoreResult<(Vec<FileEntry>, bool)> {
    let what = format!("`{guest_path}`");
    let meta = if rel.as_os_str().is_empty() {
        src.dir_metadata()
    } else {
        src.metadata(rel)
    }
    .map_err(|e| StoreError::io(&what, e))?;
    if meta.is_file() {
        let file = src
            .open(rel)
            .map_err(|e| StoreError::io(&what, e))?
            .into_std();
        let (size, blake3) = copy_hashing(&file, dest, quota, &what)?;
        Ok((
            vec![FileEntry {
                path: String::new(),
                size,
                blake3,
            }],
            false,
        ))
    } else if meta.is_dir() {
        let dir = if rel.as_os_str().is_empty() {
            src.try_clone()
        } else {
            src.open_dir(rel)
        }
        .map_err(|e| StoreError::io(&what, e))?;
        fs::create_dir(dest)
            .map_err(|e| StoreError::Io(format!("creating {}: {e}", dest.display())))?;
        let mut files = Vec::new();
        copy_dir(&dir, "", guest_path, dest, quota, &mut files, 0)?;
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok((files, true))
    } else {
        Err(StoreError::Denied(format!(
            "{what} is not a regular file or directory"
        )))
    }
}

fn copy_dir(
    dir: &Dir,
    prefix: &str,
    guest_root: &str,
    dest: &Path,
    quota: &mut Quota,
    files: &mut Vec<FileEntry>,
    depth: usize,
) -> StoreResult<()> {
    if depth > MAX_DEPTH {
        return Err(StoreError::Limit(format!(
            "`{guest_root}` nests deeper than {MAX_DEPTH} directories"
        )));
    }
    let entries = dir
        .entries()
        .map_err(|e| StoreError::io(&format!("`{guest_root}/{prefix}`"), e))?;
    for entry in entries {
        let entry = entry.map_err(|e| StoreError::io(&format!("`{guest_root}/{prefix}`"), e))?;
        let os_name = entry.file_name();
        let name = os_name.to_str().ok_or_else(|| {
            StoreError::Invalid(format!(
                "`{guest_root}/{prefix}` holds a file whose name is not UTF-8: {os_name:?}"
            ))
        })?;
        let rel = if prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{prefix}/{name}")
        };
        let shown = format!("`{guest_root}/{rel}`");
        if rel.len() > MAX_STORED_PATH {
            return Err(StoreError::Limit(format!(
                "`{guest_root}` holds a path of {} bytes; stored paths may be at most {MAX_STORED_PATH} bytes",
                rel.len()
            )));
        }
        quota.charge_bytes(ENTRY_BYTES + rel.len() as u64)?;
        let ft = entry.file_type().map_err(|e| StoreError::io(&shown, e))?;
        if ft.is_symlink() {
            return Err(StoreError::Denied(format!(
                "{shown} is a symlink; symlinks are not stored"
            )));
        } else if ft.is_dir() {
            let sub = entry.open_dir().map_err(|e| StoreError::io(&shown, e))?;
            let sub_dest = dest.join(name);
            fs::create_dir(&sub_dest)
                .map_err(|e| StoreError::Io(format!("creating {}: {e}", sub_dest.display())))?;
            copy_dir(&sub, &rel, guest_root, &sub_dest, quota, files, depth + 1)?;
        } else if ft.is_file() {
            let file = entry
                .open()
                .map_err(|e| StoreError::io(&shown, e))?
                .into_std();
            let (size, blake3) = copy_hashing(&file, &dest.join(name), quota, &shown)?;
            files.push(FileEntry {
                path: rel,
                size,
                blake3,
            });
        } else {
            return Err(StoreError::Denied(format!(
                "{shown} is not a regular file or directory"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(dir: &Path) -> Dir {
        Dir::open_ambient_dir(dir, cap_std::ambient_authority()).unwrap()
    }

    /// Small files go through one buffer, large ones through the kernel
    /// copy; both record the digest of what was stored.
    #[test]
    fn stored_copies_match_their_digests_small_and_large() {
        let tmp = tempfile::tempdir().unwrap();
        let (src, dst) = (tmp.path().join("src"), tmp.path().join("dst"));
        fs::create_dir_all(&src).unwrap();
        fs::create_dir_all(&dst).unwrap();
        let large: Vec<u8> = (0..SMALL_FILE as usize * 3 + 7)
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        fs::write(src.join("small"), b"hello").unwrap();
        fs::write(src.join("large"), &large).unwrap();
        let mut quota = Quota::new(u64::MAX, 10);
        for (name, bytes) in [("small", &b"hello"[..]), ("large", &large[..])] {
            let (files, is_dir) = store_from_guest(
                &grant(&src),
                Path::new(name),
                name,
                &dst.join(name),
                &mut quota,
            )
            .unwrap();
            assert!(!is_dir);
            assert_eq!(files[0].size, bytes.len() as u64);
            assert_eq!(files[0].blake3, blake3::hash(bytes).to_hex().to_string());
            assert_eq!(fs::read(dst.join(name)).unwrap(), bytes);
        }
        assert_eq!(quota.files_left, 8);
    }

    #[test]
    fn a_large_copy_over_the_byte_quota_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("large"), vec![7u8; SMALL_FILE as usize * 4]).unwrap();
        let mut quota = Quota::new(SMALL_FILE * 2, 10);
        let err = store_from_guest(
            &grant(tmp.path()),
            Path::new("large"),
            "/work/large",
            &tmp.path().join("copy"),
            &mut quota,
        )
        .unwrap_err();
        assert!(matches!(err, StoreError::Limit(_)), "{err:?}");
    }

    fn limit_message(e: StoreError) -> String {
        match e {
            StoreError::Limit(m) => m,
            other => panic!("not a limit error: {other:?}"),
        }
    }

    /// A refused charge takes nothing: the quota is as before.
    #[test]
    fn a_refused_charge_leaves_the_quota_as_it_was() {
        let mut q = Quota::new(100, 1);
        q.charge_record_bytes(60).unwrap();
        let err = q.charge_record_bytes(41).unwrap_err();
        assert_eq!(limit_message(err), "stored-bytes limit of 100 B reached");
        assert_eq!((q.bytes_left, q.files_left), (40, 1));
        q.charge_record_bytes(40).unwrap();
        assert_eq!(q.bytes_left, 0);
        q.charge_record_bytes(0).unwrap();
        assert!(q.charge_record_bytes(1).is_err());
        assert_eq!((q.bytes_left, q.files_left), (0, 1));
    }

    /// `store_bytes` charges the file, then its bytes: refused on the
    /// bytes, it has already taken the file (and created nothing), which
    /// is why callers keep a copy of the quota and put it back on failure.
    #[test]
    fn store_bytes_refusals_and_the_callers_refund() {
        let tmp = tempfile::tempdir().unwrap();
        let mut q = Quota::new(10, 1);
        let before = q.clone();
        let err = store_bytes(b"eleven byte", &tmp.path().join("a"), &mut q).unwrap_err();
        assert_eq!(limit_message(err), "stored-bytes limit of 10 B reached");
        assert!(!tmp.path().join("a").exists(), "nothing written");
        assert_eq!(
            (q.bytes_left, q.files_left),
            (10, 0),
            "the file was charged"
        );
        q = before; // the refund, as JobState::store_guest and evals do
        let entry = store_bytes(b"ten bytes!", &tmp.path().join("b"), &mut q).unwrap();
        assert_eq!(entry.size, 10);
        assert_eq!((q.bytes_left, q.files_left), (0, 0));
        let err = store_bytes(b"", &tmp.path().join("c"), &mut q).unwrap_err();
        assert_eq!(limit_message(err), "stored-files limit of 1 reached");
        assert_eq!((q.bytes_left, q.files_left), (0, 0));
        assert!(!tmp.path().join("c").exists());
    }

    /// A directory refused half way (here: its second file is over the
    /// files limit) has charged what it copied so far; putting back the
    /// quota from before the store refunds all of it, and a smaller store
    /// then fits.
    #[test]
    fn a_directory_refused_half_way_is_refunded_whole() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        fs::create_dir_all(src.join("tree")).unwrap();
        fs::write(src.join("tree/a"), b"aaaa").unwrap();
        fs::write(src.join("tree/b"), b"bbbb").unwrap();
        fs::write(src.join("one"), b"1").unwrap();
        let mut quota = Quota::new(10_000, 1);
        let before = quota.clone();
        let err = store_from_guest(
            &grant(&src),
            Path::new("tree"),
            "/work/tree",
            &tmp.path().join("tree-copy"),
            &mut quota,
        )
        .unwrap_err();
        assert_eq!(limit_message(err), "stored-files limit of 1 reached");
        assert_eq!(quota.files_left, 0);
        assert!(quota.bytes_left < before.bytes_left, "{quota:?}");
        quota = before.clone();
        assert_eq!(
            (quota.bytes_left, quota.files_left),
            (before.bytes_left, before.files_left)
        );
        let (files, is_dir) = store_from_guest(
            &grant(&src),
            Path::new("one"),
            "/work/one",
            &tmp.path().join("one-copy"),
            &mut quota,
        )
        .unwrap();
        assert_eq!((files[0].size, is_dir), (1, false));
        assert_eq!((quota.bytes_left, quota.files_left), (9_999, 0));
        // Over the byte limit: refused before a byte is copied.
        let mut quota = Quota::new(3, 5);
        let err = store_from_guest(
            &grant(&src),
            Path::new("tree/a"),
            "/work/tree/a",
            &tmp.path().join("a-copy"),
            &mut quota,
        )
        .unwrap_err();
        assert_eq!(limit_message(err), "stored-bytes limit of 3 B reached");
        assert!(!tmp.path().join("a-copy").exists());
    }
}
