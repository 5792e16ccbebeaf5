//! Digests: blake3 of stored files (large ones hashed on all cores) and of
//! directory manifests, and the [`StoredRecord`] they make.

use std::io::Read;

use crate::store::record::{FileEntry, StoredRecord};

/// Read size when hashing a large stored file (hashed on all cores).
const HASH_CHUNK: usize = 16 << 20;

/// blake3 of everything `r` yields, read in 16 MiB chunks each hashed on
/// all cores (the digest is the same as a one-thread hash).
pub fn hash_parallel(r: &mut impl Read) -> std::io::Result<blake3::Hash> {
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; HASH_CHUNK];
    loop {
        let mut filled = 0;
        while filled < buf.len() {
            match r.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if filled == 0 {
            break;
        }
        hasher.update_rayon(&buf[..filled]);
    }
    Ok(hasher.finalize())
}

/// Digest of a directory: blake3 over its sorted `path digest` lines.
pub fn manifest_digest(files: &[FileEntry]) -> String {
    let mut h = blake3::Hasher::new();
    for f in files {
        h.update(f.path.as_bytes());
        h.update(b" ");
        h.update(f.blake3.as_bytes());
        h.update(b"\n");
    }
    h.finalize().to_hex().to_string()
}

/// Build a [`StoredRecord`] from what [`super::ingest::store_from_guest`] copied.
pub fn stored_record(
    name: &str,
    location: String,
    files: Vec<FileEntry>,
    is_dir: bool,
) -> StoredRecord {
    let size = files.iter().map(|f| f.size).sum();
    let blake3 = if is_dir {
        manifest_digest(&files)
    } else {
        files[0].blake3.clone()
    };
    StoredRecord {
        name: name.to_owned(),
        location,
        size,
        blake3,
        files,
        is_dir,
    }
}
