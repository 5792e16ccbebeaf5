//! Filesystem attacks: escapes through paths and symlinks, host files,
//! handle exhaustion, and scratch space the host must bound (deep or long
//! trees, unlinked and sparse files).

use std::io::Write;
use std::time::Duration;

use lab::ModelDesc;
use serde_json::json;
use wasi::filesystem::types::{Descriptor, DescriptorFlags, ErrorCode, OpenFlags, PathFlags};

use crate::{count, flag, io_outcome, message, outcome, readable, report, text, wasi_outcome};

const MIB: usize = 1 << 20;

pub fn path_escapes() -> lab::Result<()> {
    let work = lab::work_dir();
    std::fs::write(work.join("x"), "x")?;
    let long = format!("/work/{}", "a/".repeat(5000));
    let paths: Vec<(&str, String)> = vec![
        ("dotdot", "..".into()),
        ("dotdot-passwd", "../../etc/passwd".into()),
        ("etc-passwd", "/etc/passwd".into()),
        ("work-dotdot-etc", "/work/../etc".into()),
        ("trailing-slash", "/work/x/".into()),
        ("dot-dotdot", "/work/./../..".into()),
        ("root", "/".into()),
        ("workx", "/workx/a".into()),
        ("empty", "".into()),
        ("nul", "/work/x\0/../../etc".into()),
        ("long", long),
    ];
    let mut n = 0;
    for (key, path) in &paths {
        n += 1;
        report(
            &format!("artifact:{key}"),
            outcome(&lab::save_artifact(path, Some(&format!("art-{n}")))),
        );
        report(
            &format!("checkpoint:{key}"),
            outcome(&lab::save_checkpoint(path, &format!("ckpt-{n}"))),
        );
        report(
            &format!("model:{key}"),
            outcome(&lab::save_model(
                path,
                &format!("model-{n}"),
                ModelDesc::default(),
            )),
        );
        report(
            &format!("dataset:{key}"),
            outcome(&lab::save_dataset_file(
                path,
                &format!("data-{n}"),
                None,
                json!({}),
            )),
        );
    }
    report(
        "long-message",
        message(&lab::save_artifact(&paths[10].1, Some("l"))),
    );
    report("artifacts", lab::artifacts().len());
    report("checkpoints", lab::checkpoints().len());
    lab::finish("escapes tried", &[])
}

/// `target` is a writable granted dir holding `etc` -> /etc, `a` -> `b` ->
/// /etc/passwd, `w` -> a file outside the grant, and `hard`, a hard link to
/// a file outside the grant.
pub fn symlinks() -> lab::Result<()> {
    let t = text("target");
    for (key, rel) in [
        ("etc", "etc"),
        ("etc-passwd", "etc/passwd"),
        ("chain", "a"),
        ("chain-mid", "b"),
        ("out-file", "w"),
        ("hard", "hard"),
    ] {
        let path = format!("{t}/{rel}");
        report(
            &format!("save:{key}"),
            outcome(&lab::save_artifact(&path, Some(&format!("s-{key}")))),
        );
        report(&format!("read:{key}"), readable(&path));
    }
    report(
        "save:whole-dir",
        outcome(&lab::save_artifact(&t, Some("whole-dir"))),
    );
    report(
        "list:etc",
        match std::fs::read_dir(format!("{t}/etc")) {
            Ok(d) => format!("listed({})", d.count()),
            Err(e) => format!("unlistable({:?})", e.kind()),
        },
    );
    // Writes through the links: must not reach outside the grant.
    report(
        "write:out-file",
        io_outcome(&std::fs::write(format!("{t}/w"), "pwned")),
    );
    report(
        "write:chain",
        io_outcome(&std::fs::write(format!("{t}/a"), "pwned")),
    );
    report(
        "write:etc-new",
        io_outcome(&std::fs::write(format!("{t}/etc/labhost-pwned"), "pwned")),
    );
    report(
        "mkdir:etc",
        io_outcome(&std::fs::create_dir(format!("{t}/etc/labhost-pwned-dir"))),
    );
    report(
        "remove:out-file",
        io_outcome(&std::fs::remove_file(format!("{t}/w/"))),
    );
    report("artifacts", lab::artifacts().len());
    lab::finish("symlinks tried", &[])
}

pub fn host_files() -> lab::Result<()> {
    for (key, path) in [
        ("etc-passwd", "/etc/passwd".to_string()),
        ("etc-shadow", "/etc/shadow".into()),
        ("proc-environ", "/proc/self/environ".into()),
        ("proc-maps", "/proc/self/maps".into()),
        ("work-dotdot", "/work/../etc/passwd".into()),
        ("home", text("target")),
    ] {
        report(key, readable(&path));
    }
    for (key, path) in [("root", "/".to_string()), ("home-dir", text("target"))] {
        report(
            &format!("list-{key}"),
            match std::fs::read_dir(&path) {
                Ok(d) => format!("listed({})", d.count()),
                Err(e) => format!("unlistable({:?})", e.kind()),
            },
        );
    }
    report(
        "write-tmp",
        io_outcome(&std::fs::write("/tmp/labhost-evil", "x")),
    );
    report(
        "write-work-dotdot",
        io_outcome(&std::fs::write("/work/../labhost-evil", "x")),
    );
    lab::finish("host files tried", &[])
}

/// Open `/work/x` (or, with target `dirs`, list `/work`) until the host
/// refuses, keeping every handle.
pub fn resource_bomb() -> lab::Result<()> {
    let p = lab::work_dir().join("x");
    std::fs::write(&p, "x")?;
    let dirs = text("target") == "dirs";
    let mut files: Vec<Box<dyn std::any::Any>> = Vec::new();
    loop {
        let r = if dirs {
            std::fs::read_dir("/work").map(|d| Box::new(d) as Box<dyn std::any::Any>)
        } else {
            std::fs::File::open(&p).map(|f| Box::new(f) as Box<dyn std::any::Any>)
        };
        match r {
            Ok(f) => files.push(f),
            Err(e) => {
                report("open-error", format!("{:?}", e.kind()));
                break;
            }
        }
        if files.len() % 100 == 0 {
            report("opened", files.len());
        }
    }
    report("opened", files.len());
    lab::finish(&format!("opened {} files", files.len()), &[])
}

/// Write `count` MiB into `/work` (the scratch dir), ignoring stored limits.
pub fn disk_fill() -> lab::Result<()> {
    let mib = count();
    let chunk = vec![0x5au8; MIB];
    let mut f = std::fs::File::create(lab::work_dir().join("fill.bin"))?;
    let mut written = 0u64;
    while mib == 0 || written < mib {
        if let Err(e) = f.write_all(&chunk) {
            report("write-error", format!("{:?}", e.kind()));
            break;
        }
        written += 1;
    }
    drop(f);
    report("written-mib", written);
    lab::finish(&format!("wrote {written} MiB to /work"), &[])
}

// ---- fd-relative helpers -------------------------------------------------

/// The preopened directory holding guest path `path`, and the rest of the
/// path relative to it (`""` for the preopen itself).
fn preopen(path: &str) -> Option<(Descriptor, String)> {
    let path = path.trim_end_matches('/');
    let mut best: Option<(Descriptor, String, usize)> = None;
    for (dir, name) in wasi::filesystem::preopens::get_directories() {
        let name_t = name.trim_end_matches('/');
        let rest = if path == name_t {
            Some(String::new())
        } else {
            path.strip_prefix(name_t)
                .and_then(|r| r.strip_prefix('/'))
                .map(str::to_owned)
        };
        if let Some(rest) = rest {
            if best.as_ref().is_none_or(|b| name_t.len() > b.2) {
                best = Some((dir, rest, name_t.len()));
            }
        }
    }
    best.map(|(d, r, _)| (d, r))
}

fn work_preopen() -> lab::Result<Descriptor> {
    preopen("/work")
        .map(|(d, _)| d)
        .ok_or_else(|| lab::Error::msg("no /work preopen"))
}

fn dir_flags() -> DescriptorFlags {
    DescriptorFlags::READ | DescriptorFlags::MUTATE_DIRECTORY
}

/// Create directory `name` in `dir` and open it.
fn mkdir_open(dir: &Descriptor, name: &str) -> Result<Descriptor, ErrorCode> {
    dir.create_directory_at(name)?;
    dir.open_at(PathFlags::empty(), name, OpenFlags::DIRECTORY, dir_flags())
}

/// Write 1 MiB chunks through `write` forever, reporting `written-mib`
/// every 64 MiB; on an error report `write-error <what>` and idle forever
/// (the host must end the job).
pub(crate) fn scratch_forever(mut write: impl FnMut(&[u8]) -> Result<(), String>) -> ! {
    let chunk = vec![0x5au8; MIB];
    let mut mib = 0u64;
    loop {
        if let Err(what) = write(&chunk) {
            report("write-error", what);
            loop {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        mib += 1;
        if mib % 64 == 0 {
            report("written-mib", mib);
        }
    }
}

/// Write all of `buf` at `*offset` through a WASI descriptor.
fn fd_write_all(f: &Descriptor, mut buf: &[u8], offset: &mut u64) -> Result<(), String> {
    while !buf.is_empty() {
        let n = f.write(buf, *offset).map_err(|e| e.name().to_owned())?;
        if n == 0 {
            return Err("short-write".into());
        }
        *offset += n;
        buf = &buf[n as usize..];
    }
    Ok(())
}

/// A directory tree `count` (0: 16000) levels deep under /work/t, built one
/// descriptor at a time so no path is ever long.
pub fn deep_tree() -> lab::Result<()> {
    let levels = match count() {
        0 => 16_000,
        n => n,
    };
    let work = work_preopen()?;
    let mut depth = 0u64;
    let mut cur = match mkdir_open(&work, "t") {
        Ok(d) => Some(d),
        Err(e) => {
            report("error-at", format!("{depth} {}", e.name()));
            None
        }
    };
    drop(work);
    while let Some(dir) = cur.take() {
        if depth >= levels {
            break;
        }
        match mkdir_open(&dir, "d") {
            Ok(next) => {
                drop(dir);
                cur = Some(next);
                depth += 1;
            }
            Err(e) => report("error-at", format!("{depth} {}", e.name())),
        }
    }
    report("depth", depth);
    lab::finish(&format!("built a tree {depth} deep"), &[])
}

/// 20 nested dirs of 250-byte names under /work, a file at the bottom, and
/// writes through its descriptor until the host stops the job.
pub fn long_path_scratch() -> lab::Result<()> {
    let name = "a".repeat(250);
    let mut dir = work_preopen()?;
    for level in 0..20 {
        match mkdir_open(&dir, &name) {
            Ok(next) => dir = next,
            Err(e) => {
                report("error-at", format!("{level} {}", e.name()));
                return lab::finish("long path failed", &[]);
            }
        }
    }
    let f = match dir.open_at(
        PathFlags::empty(),
        "f",
        OpenFlags::CREATE,
        DescriptorFlags::WRITE,
    ) {
        Ok(f) => f,
        Err(e) => {
            report("create-error", e.name());
            return lab::finish("long path failed", &[]);
        }
    };
    drop(dir);
    let mut offset = 0u64;
    scratch_forever(|chunk| fd_write_all(&f, chunk, &mut offset))
}

/// Unlink an open scratch file, then keep writing through the handle.
pub fn unlinked_scratch() -> lab::Result<()> {
    let p = lab::work_dir().join("hidden");
    let mut f = std::fs::File::create(&p)?;
    report("unlinked", io_outcome(&std::fs::remove_file(&p)));
    scratch_forever(|chunk| f.write_all(chunk).map_err(|e| format!("{:?}", e.kind())))
}

/// A sparse file of `count` GiB (0: 1 TiB), saved twice as an artifact.
pub fn sparse_store() -> lab::Result<()> {
    let gib = match count() {
        0 => 1024,
        n => n,
    };
    let f = std::fs::File::create(lab::work_dir().join("sparse"))?;
    let r = f.set_len(gib << 30);
    if r.is_err() {
        report("set-len", io_outcome(&r));
    }
    report("sparse-bytes", f.metadata()?.len());
    drop(f);
    let r = lab::save_artifact("/work/sparse", None);
    report("save", outcome(&r));
    report("save-message", message(&r));
    report("save2", outcome(&lab::save_artifact("/work/sparse", None)));
    lab::finish("sparse tried", &[])
}

/// In the writable grant `target`, plant the relative symlink `results` ->
/// `link` and a real directory `real`.
pub fn plant_symlink() -> lab::Result<()> {
    let t = text("target");
    let link = text("link");
    let (dir, rest) =
        preopen(&t).ok_or_else(|| lab::Error::msg(format!("no preopen holds {t}")))?;
    let dir = if rest.is_empty() {
        dir
    } else {
        dir.open_at(PathFlags::empty(), &rest, OpenFlags::DIRECTORY, dir_flags())
            .map_err(|e| lab::Error::msg(format!("open {t}: {}", e.name())))?
    };
    report("symlink", wasi_outcome(&dir.symlink_at(&link, "results")));
    report("real", wasi_outcome(&dir.create_directory_at("real")));
    lab::finish("planted", &[])
}

/// Write `<target>/owned.txt` (a later job is granted a path through a
/// symlink planted by `plant-symlink`).
pub fn write_grant() -> lab::Result<()> {
    let t = text("target");
    report(
        "write",
        io_outcome(&std::fs::write(format!("{t}/owned.txt"), "owned\n")),
    );
    lab::finish("wrote", &[])
}

/// Keep `count` (0: until an error) files open, then hold them until asked
/// to stop.
pub fn fd_hog() -> lab::Result<()> {
    let n = count();
    let work = lab::work_dir();
    let mut files = Vec::new();
    let mut error = None;
    while n == 0 || (files.len() as u64) < n {
        match std::fs::File::create(work.join(format!("fd-{}", files.len()))) {
            Ok(f) => files.push(f),
            Err(e) => {
                error = Some(format!("{:?}", e.kind()));
                break;
            }
        }
    }
    report("opened", files.len());
    if let Some(kind) = error {
        report("open-error", kind);
    }
    while !lab::should_stop() {
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(files);
    flag("released");
    lab::finish("released", &[])
}
