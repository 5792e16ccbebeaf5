//! The compile cache: components precompiled by Cranelift, keyed by the
//! blake3 of the component bytes plus the engine's compatibility hash
//! (wasmtime version, target, settings), stored in the workspace's
//! `.cache/compiled/`. Each entry has a sidecar with the blake3 of the
//! precompiled bytes, checked before loading: a truncated or altered entry
//! is recompiled, never run. (Whoever can write both files can run native
//! code in the host: the workspace must be as trusted as the host itself.)

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use serde::Serialize;
use wasmtime::component::Component;
use wasmtime::Engine;

use crate::store::durable::write_atomic;

#[derive(Debug, Clone)]
pub struct CompileCache {
    dir: PathBuf,
}

/// One cached component.
#[derive(Debug, Clone, Serialize)]
pub struct CacheEntry {
    pub key: String,
    pub size: u64,
    pub path: PathBuf,
}

/// How a component was obtained, for diagnostics and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheOutcome {
    Hit,
    Miss,
    /// An entry was there but failed verification; it was replaced.
    Rejected,
    Disabled,
}

/// Feeds `Hash` output into blake3 (stable across Rust versions, unlike
/// `DefaultHasher`).
struct Blake3Hasher(blake3::Hasher);
impl Hasher for Blake3Hasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
    fn finish(&self) -> u64 {
        unreachable!("only the blake3 digest is used")
    }
}

impl CompileCache {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        CompileCache { dir: dir.into() }
    }

    /// The cache of the workspace at `root`: `<root>/.cache/compiled`.
    pub fn for_workspace(root: &Path) -> Self {
        Self::new(root.join(".cache").join("compiled"))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn key(engine: &Engine, digest: &str) -> String {
        let mut h = Blake3Hasher(blake3::Hasher::new());
        engine.precompile_compatibility_hash().hash(&mut h);
        format!("{digest}-{}", &h.0.finalize().to_hex()[..16])
    }

    fn paths(&self, key: &str) -> (PathBuf, PathBuf) {
        (
            self.dir.join(format!("{key}.cwasm")),
            self.dir.join(format!("{key}.blake3")),
        )
    }

    /// The component for `bytes` (whose blake3 is `digest`): from the cache
    /// if a verified entry exists, else compiled and stored.
    pub fn load(
        &self,
        engine: &Engine,
        bytes: &[u8],
        digest: &str,
    ) -> wasmtime::Result<(Component, CacheOutcome)> {
        let key = Self::key(engine, digest);
        let (cwasm, sidecar) = self.paths(&key);
        let mut outcome = CacheOutcome::Miss;
        if let (Ok(compiled), Ok(expected)) =
            (std::fs::read(&cwasm), std::fs::read_to_string(&sidecar))
        {
            if blake3::hash(&compiled).to_hex().as_str() == expected.trim() {
                // SAFETY: the bytes are what this host's engine wrote for this
                // key (checked above), and deserialize re-checks the engine
                // compatibility header.
                if let Ok(c) = unsafe { Component::deserialize(engine, &compiled) } {
                    return Ok((c, CacheOutcome::Hit));
                }
            }
            outcome = CacheOutcome::Rejected;
            let _ = std::fs::remove_file(&cwasm);
            let _ = std::fs::remove_file(&sidecar);
        }
        let compiled = engine.precompile_component(bytes)?;
        // A cache that cannot be written (read-only disk, full disk) only
        // costs speed; the compiled component is used either way.
        if std::fs::create_dir_all(&self.dir).is_ok() && write_atomic(&cwasm, &compiled).is_ok() {
            let _ = write_atomic(&sidecar, blake3::hash(&compiled).to_hex().as_bytes());
        }
        // SAFETY: produced by this engine just now.
        let component = unsafe { Component::deserialize(engine, &compiled)? };
        Ok((component, outcome))
    }

    pub fn entries(&self) -> std::io::Result<Vec<CacheEntry>> {
        let mut out = Vec::new();
        let rd = match std::fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e),
        };
        for entry in rd {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(key) = name.strip_suffix(".cwasm") {
                if !key.starts_with('.') {
                    out.push(CacheEntry {
                        key: key.to_owned(),
                        size: entry.metadata()?.len(),
                        path: entry.path(),
                    });
                }
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// Remove every entry; returns how many components were removed.
    pub fn clear(&self) -> std::io::Result<usize> {
        let n = self.entries()?.len();
        match std::fs::remove_dir_all(&self.dir) {
            Ok(()) => Ok(n),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(e),
        }
    }
}
