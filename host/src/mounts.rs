//! The guest's filesystem view, and the host-side resolution of guest
//! paths handed to the lab API.
//!
//! Each grant is a [`Mount`]: a guest path prefix, and a cap-std [`Dir`]
//! handle on the host directory. A guest path is split lexically (`..` is
//! refused outright), matched to the longest mount prefix, and the rest is
//! opened *through the handle*: cap-std refuses any resolution, including a
//! symlink planted by the guest, that would leave the granted directory.

use std::path::{Path, PathBuf};

use cap_std::ambient_authority;
use cap_std::fs::Dir;

use crate::error::{CallError, CallResult};

/// Longest guest path accepted by the lab API, in bytes.
pub const MAX_GUEST_PATH: usize = 4096;

#[derive(Debug)]
pub struct Mount {
    /// Absolute guest path, without trailing slash.
    pub guest: String,
    pub host: PathBuf,
    pub dir: Dir,
    pub writable: bool,
}

impl Mount {
    pub fn new(guest: impl Into<String>, host: &Path, writable: bool) -> anyhow::Result<Self> {
        let dir = Dir::open_ambient_dir(host, ambient_authority())
            .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", host.display()))?;
        Ok(Mount {
            guest: guest.into(),
            host: host.to_owned(),
            dir,
            writable,
        })
    }
}

/// Map a guest path to (mount, path relative to the mount).
pub fn resolve<'m>(mounts: &'m [Mount], guest_path: &str) -> CallResult<(&'m Mount, PathBuf)> {
    if guest_path.is_empty() {
        return Err(CallError::Invalid("empty path".into()));
    }
    if guest_path.len() > MAX_GUEST_PATH {
        return Err(CallError::Invalid(format!(
            "path longer than {MAX_GUEST_PATH} bytes"
        )));
    }
    if guest_path.contains('\0') {
        return Err(CallError::Invalid("path contains NUL".into()));
    }
    let absolute = if guest_path.starts_with('/') {
        guest_path.to_owned()
    } else {
        format!("/work/{guest_path}")
    };
    let mut parts = Vec::new();
    for c in absolute.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                return Err(CallError::Denied(format!(
                    "`{guest_path}`: `..` is not allowed in lab API paths"
                )))
            }
            c => parts.push(c),
        }
    }
    let best = mounts
        .iter()
        .filter_map(|m| {
            let mparts: Vec<&str> = m.guest.split('/').filter(|c| !c.is_empty()).collect();
            parts.starts_with(&mparts).then_some((m, mparts.len()))
        })
        .max_by_key(|(_, n)| *n);
    match best {
        Some((m, n)) => Ok((m, parts[n..].iter().collect())),
        None => Err(CallError::Denied(format!(
            "`{guest_path}` is outside this job's grants"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mounts(root: &Path) -> Vec<Mount> {
        std::fs::create_dir_all(root.join("w")).unwrap();
        std::fs::create_dir_all(root.join("d")).unwrap();
        vec![
            Mount::new("/work", &root.join("w"), true).unwrap(),
            Mount::new("/datasets/x", &root.join("d"), false).unwrap(),
        ]
    }

    #[test]
    fn resolves_inside_grants() {
        let t = tempfile::tempdir().unwrap();
        let m = mounts(t.path());
        let (mount, rel) = resolve(&m, "/work/a/b.txt").unwrap();
        assert_eq!(
            (mount.guest.as_str(), rel),
            ("/work", PathBuf::from("a/b.txt"))
        );
        let (mount, rel) = resolve(&m, "out.bin").unwrap();
        assert_eq!(
            (mount.guest.as_str(), rel),
            ("/work", PathBuf::from("out.bin"))
        );
        let (mount, rel) = resolve(&m, "/datasets/x/").unwrap();
        assert_eq!((mount.guest.as_str(), rel), ("/datasets/x", PathBuf::new()));
        let (_, rel) = resolve(&m, "/work/./a//b/").unwrap();
        assert_eq!(rel, PathBuf::from("a/b"));
    }

    #[test]
    fn refuses_escapes() {
        let t = tempfile::tempdir().unwrap();
        let m = mounts(t.path());
        for bad in [
            "/etc/passwd",
            "/work/../etc",
            "../x",
            "/datasets/y",
            "/workx/a",
            "/",
        ] {
            let e = resolve(&m, bad).unwrap_err();
            assert!(matches!(e, CallError::Denied(_)), "{bad}: {e}");
        }
        assert!(matches!(
            resolve(&m, "a\0b").unwrap_err(),
            CallError::Invalid(_)
        ));
        assert!(matches!(
            resolve(&m, &"a/".repeat(3000)).unwrap_err(),
            CallError::Invalid(_)
        ));
    }

    #[test]
    fn cap_std_refuses_symlinks_out_of_a_grant() {
        let t = tempfile::tempdir().unwrap();
        let m = mounts(t.path());
        std::fs::write(t.path().join("secret"), "s").unwrap();
        std::os::unix::fs::symlink(t.path().join("secret"), t.path().join("w/abs")).unwrap();
        std::os::unix::fs::symlink("../secret", t.path().join("w/rel")).unwrap();
        std::os::unix::fs::symlink("abs", t.path().join("w/chain")).unwrap();
        for name in ["abs", "rel", "chain"] {
            let (mount, rel) = resolve(&m, &format!("/work/{name}")).unwrap();
            let err = mount.dir.open(&rel).unwrap_err();
            assert!(
                matches!(CallError::io("x", err), CallError::Denied(_)),
                "{name}"
            );
        }
    }
}
