//! The guest's filesystem view, and the host-side resolution of guest
//! paths handed to the lab API.
//!
//! Each grant is a [`Mount`]: a guest path prefix, and a cap-std [`Dir`]
//! handle on the host directory. A guest path is split lexically (`..` is
//! refused outright), matched to the longest mount prefix, and the rest is
//! opened *through the handle*: cap-std refuses any resolution, including a
//! symlink planted by the guest, that would leave the granted directory.
//!
//! The host directory of a grant is itself opened component by component
//! without following symlinks ([`open_dir_no_symlinks`]): a symlink that an
//! earlier job planted in a directory it could write must not redirect a
//! later job's grant. The guest's WASI preopen is made from that same open
//! directory (through `/proc/self/fd`), never by resolving the path again.

use std::path::{Path, PathBuf};

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
    /// Open `host` (no symlink followed anywhere in it) for the guest path
    /// `guest`. [`Mount::host`] is the resolved absolute path.
    pub fn new(guest: impl Into<String>, host: &Path, writable: bool) -> anyhow::Result<Self> {
        let (dir, resolved) = open_dir_no_symlinks(host)?;
        Ok(Mount {
            guest: guest.into(),
            host: resolved,
            dir,
            writable,
        })
    }

    /// A path that opens exactly this mount's directory (the open
    /// descriptor, through `/proc/self/fd`): what the WASI preopen is made from.
    pub fn fd_path(&self) -> PathBuf {
        use std::os::fd::AsRawFd;
        PathBuf::from(format!("/proc/self/fd/{}", self.dir.as_raw_fd()))
    }
}

/// Open the directory `path` walking it one component at a time with
/// `O_NOFOLLOW`: a symlink anywhere in it is refused (with the component
/// named), `..` goes to the real parent. Returns the directory and its
/// resolved absolute path.
pub fn open_dir_no_symlinks(path: &Path) -> anyhow::Result<(Dir, PathBuf)> {
    use rustix::fs::{Mode, OFlags, CWD};
    use std::path::Component;
    let shown = path.display();
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let open = |at: &dyn std::os::fd::AsFd, name: &std::ffi::OsStr| {
        rustix::fs::openat(at.as_fd(), name, flags, Mode::empty())
    };
    let start = if path.is_absolute() { "/" } else { "." };
    let mut cur =
        open(&CWD, start.as_ref()).map_err(|e| anyhow::anyhow!("cannot open {shown}: {e}"))?;
    let mut walked = PathBuf::from(if path.is_absolute() { "/" } else { "" });
    for c in path.components() {
        let name = match c {
            Component::RootDir | Component::CurDir => continue,
            Component::ParentDir => std::ffi::OsStr::new(".."),
            Component::Normal(n) => n,
            Component::Prefix(_) => anyhow::bail!("cannot open {shown}: unsupported path"),
        };
        walked.push(name);
        cur = match open(&cur, name) {
            Ok(fd) => fd,
            Err(e) => {
                let is_link = rustix::fs::statat(&cur, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
                    .is_ok_and(|st| {
                        rustix::fs::FileType::from_raw_mode(st.st_mode)
                            == rustix::fs::FileType::Symlink
                    });
                if is_link {
                    anyhow::bail!(
                        "cannot open {shown}: `{}` is a symlink; grants are opened without following symlinks (give the resolved path)",
                        walked.display()
                    );
                }
                anyhow::bail!("cannot open {shown}: {}", std::io::Error::from(e));
            }
        };
    }
    let file = std::fs::File::from(cur);
    let resolved = std::fs::read_link(format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&file)
    ))
    .map_err(|e| anyhow::anyhow!("cannot open {shown}: {e}"))?;
    Ok((Dir::from_std_file(file), resolved))
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

    /// A symlink planted in a writable directory cannot redirect a later
    /// grant through it; the resolved path is what the mount records.
    #[test]
    fn grants_are_opened_without_following_symlinks() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("out/real")).unwrap();
        std::fs::create_dir_all(root.join("elsewhere")).unwrap();
        std::os::unix::fs::symlink("../elsewhere", root.join("out/results")).unwrap();
        let err = Mount::new("/in", &root.join("out/results"), true).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "cannot open {}: `{}` is a symlink; grants are opened without following symlinks (give the resolved path)",
                root.join("out/results").display(),
                root.join("out/results").display()
            )
        );
        let err = Mount::new("/in", &root.join("out/results/x"), true).unwrap_err();
        assert!(err.to_string().contains("is a symlink"), "{err}");
        let m = Mount::new("/in", &root.join("out/real/../real/."), true).unwrap();
        assert_eq!(m.host, root.join("out/real"));
        std::fs::write(m.fd_path().join("f"), "x").unwrap();
        assert_eq!(std::fs::read(root.join("out/real/f")).unwrap(), b"x");
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
