//! The hostile guest: one plugin whose `attack` parameter picks a way to
//! abuse the host (spin, exhaust memory/stack/handles, flood the log or the
//! store, escape the grants through paths and symlinks, look for the
//! network, the environment and host files). Everything it observes is
//! logged as `probe: <key> <value>` (same format as the probe), so the
//! tests in `tests/hostile.rs` can assert on it.

use std::hint::black_box;

use lab::{Describe, Error, EvalRow, Kind, LabError, ModelDesc, ParamType, Plugin, TableFormat};
use serde_json::json;

struct Evil;

fn report(key: &str, value: impl std::fmt::Display) {
    lab::info(&format!("probe: {key} {value}"));
}

/// Name of the lab error variant, or `ok`.
fn outcome<T>(r: &lab::Result<T>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(Error::Lab(e)) => match e {
            LabError::InvalidArgument(_) => "invalid-argument",
            LabError::Denied(_) => "denied",
            LabError::NotFound(_) => "not-found",
            LabError::LimitExceeded(_) => "limit-exceeded",
            LabError::Io(_) => "io",
        }
        .into(),
        Err(Error::Other(m)) => format!("other({m})"),
    }
}

/// The error message of a lab call, or `ok`.
fn message<T>(r: &lab::Result<T>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(Error::Lab(e)) => match e {
            LabError::InvalidArgument(m)
            | LabError::Denied(m)
            | LabError::NotFound(m)
            | LabError::LimitExceeded(m)
            | LabError::Io(m) => m.clone(),
        },
        Err(Error::Other(m)) => m.clone(),
    }
}

/// `ok` or the std I/O error kind.
fn io_outcome<T>(r: &std::io::Result<T>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(e) => format!("{:?}", e.kind()),
    }
}

fn readable(path: &str) -> String {
    match std::fs::read(path) {
        Ok(_) => "readable".into(),
        Err(e) => format!("unreadable({:?})", e.kind()),
    }
}

fn text(name: &str) -> String {
    lab::config()
        .get(name)
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_owned()
}

fn count() -> u64 {
    lab::config()["count"].as_u64().unwrap_or(0)
}

impl Plugin for Evil {
    fn describe() -> Describe {
        Describe::new(
            "evil",
            Kind::Other,
            "Hostile guest: abuses the host per `attack`",
        )
        .param("attack", ParamType::Text, None, "Which attack to run")
        .param(
            "count",
            ParamType::Integer,
            Some("0"),
            "How many (0: forever) for the flood attacks",
        )
        .param(
            "target",
            ParamType::Text,
            Some("\"\""),
            "A guest path some attacks use",
        )
    }

    fn run() -> lab::Result<()> {
        let attack = text("attack");
        report("attack", &attack);
        match attack.as_str() {
            "loop" => loop {
                black_box(0u64);
            },
            "call-storm" => call_storm(),
            "memory-bomb" => memory_bomb(),
            "stack-overflow" => {
                let depth = recurse(black_box(u64::MAX));
                lab::finish(&format!("recursed {depth}"), &[])
            }
            "deep-recursion" => {
                let depth = tiny_frames(black_box(u64::MAX));
                lab::finish(&format!("recursed {depth}"), &[])
            }
            "huge-alloc" => huge_alloc(),
            "big-store" => big_store(),
            "disk-fill" => disk_fill(),
            "huge-log-line" => {
                // One lab log call of ~40 MiB, full of newlines.
                let line = "line\n".repeat(8 << 20);
                lab::info(&line);
                report("after", "logged");
                lab::finish("logged a huge line", &[])
            }
            "path-escapes" => path_escapes(),
            "symlinks" => symlinks(),
            "long-names" => long_names(),
            "log-flood" => log_flood(),
            "stdout-flood" => stdout_flood(),
            "metric-flood" => metric_flood(),
            "many-artifacts" => many_artifacts(),
            "after-finish" => after_finish(),
            "bad-progress" => bad_progress(),
            "env" => env(),
            "network" => network(),
            "host-files" => host_files(),
            "resource-bomb" => resource_bomb(),
            "threads" => {
                let r = std::thread::Builder::new().spawn(|| loop {
                    black_box(0u8);
                });
                report("spawn", io_outcome(&r));
                lab::finish("threads tried", &[])
            }
            "exit" => std::process::exit(0),
            other => Err(Error::msg(format!("unknown attack `{other}`"))),
        }
    }
}

/// Hammer cheap lab calls forever, ignoring should-stop.
fn call_storm() -> lab::Result<()> {
    let mut stop_seen = false;
    let mut i = 0u64;
    loop {
        if lab::should_stop() && !stop_seen {
            stop_seen = true;
            report("should-stop-seen-after-calls", i);
        }
        let _ = black_box(lab::progress((i % 100) as f32));
        i += 1;
    }
}

/// Grow memory in 16 MiB chunks forever.
fn memory_bomb() -> lab::Result<()> {
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    loop {
        chunks.push(vec![0xa5u8; 16 << 20]);
        report("allocated-mib", chunks.len() * 16);
        black_box(&chunks);
    }
}

#[inline(never)]
fn recurse(n: u64) -> u64 {
    let frame = black_box([n; 32]);
    if n == 0 {
        return 0;
    }
    black_box(recurse(black_box(n - 1))) + frame[7] % 2
}

/// Recursion with (almost) no linear-memory frame: exhausts the native
/// wasm stack rather than the shadow stack.
#[inline(never)]
fn tiny_frames(n: u64) -> u64 {
    if n == 0 {
        return 0;
    }
    let next: fn(u64) -> u64 = black_box(tiny_frames);
    next(n - 1).wrapping_mul(3).wrapping_add(n)
}

/// Ask for ~3.5 GiB: through Vec, through memory.grow, then a Vec of the
/// largest size wasm32 allows.
fn huge_alloc() -> lab::Result<()> {
    const HUGE: usize = 0xE000_0000; // 3.5 GiB
    let mut v: Vec<u8> = Vec::new();
    report(
        "try-reserve",
        match v.try_reserve_exact(HUGE) {
            Ok(()) => "ok".to_string(),
            Err(e) => format!("err({e})"),
        },
    );
    #[cfg(target_arch = "wasm32")]
    {
        let pages = HUGE / 65536;
        let r = core::arch::wasm32::memory_grow(0, pages);
        report(
            "memory-grow",
            if r == usize::MAX {
                "refused".to_string()
            } else {
                format!("granted(old={r})")
            },
        );
    }
    // The largest Vec wasm32 can express (isize::MAX is 2 GiB - 1).
    let big = vec![1u8; 0x7000_0000];
    report("big-vec", big.len());
    lab::finish("allocated 1.75 GiB", &[])
}

fn path_escapes() -> lab::Result<()> {
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
fn symlinks() -> lab::Result<()> {
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

/// Store more bytes than the stored-bytes limit allows, as a file artifact,
/// a directory checkpoint and dataset rows.
fn big_store() -> lab::Result<()> {
    let work = lab::work_dir();
    std::fs::write(work.join("big.bin"), vec![7u8; 4 << 20])?;
    let r = lab::save_artifact("/work/big.bin", None);
    report("artifact", outcome(&r));
    report("artifact-message", message(&r));
    std::fs::create_dir_all(work.join("dir"))?;
    for i in 0..8 {
        std::fs::write(work.join(format!("dir/{i}.bin")), vec![i as u8; 256 << 10])?;
    }
    report(
        "checkpoint",
        outcome(&lab::save_checkpoint("/work/dir", "dir")),
    );
    let rows: Vec<serde_json::Value> = (0..20_000)
        .map(|i| json!({"i": i, "pad": "p".repeat(100)}))
        .collect();
    report(
        "dataset-rows",
        outcome(&lab::save_dataset("rows", &rows, None, json!({}))),
    );
    report(
        "model",
        outcome(&lab::save_model("/work/dir", "m", ModelDesc::default())),
    );
    // Small things still fit.
    std::fs::write(work.join("small.txt"), "small")?;
    report(
        "small",
        outcome(&lab::save_artifact("/work/small.txt", None)),
    );
    report("artifacts", lab::artifacts().len());
    report("checkpoints", lab::checkpoints().len());
    lab::finish("stored too much", &[])
}

/// Write `count` MiB into `/work` (the scratch dir), ignoring stored limits.
fn disk_fill() -> lab::Result<()> {
    use std::io::Write;
    let mib = count();
    let chunk = vec![0x5au8; 1 << 20];
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

fn long_names() -> lab::Result<()> {
    let long = "n".repeat(10_000);
    std::fs::write(lab::work_dir().join("f"), "f")?;
    report(
        "artifact",
        outcome(&lab::save_artifact("/work/f", Some(&long))),
    );
    report(
        "artifact-default-name",
        outcome(&lab::save_artifact(format!("/work/{long}"), None)),
    );
    report(
        "checkpoint",
        outcome(&lab::save_checkpoint("/work/f", &long)),
    );
    report(
        "model",
        outcome(&lab::save_model("/work/f", &long, ModelDesc::default())),
    );
    report(
        "dataset",
        outcome(&lab::save_dataset(
            &long,
            &[json!({"a": 1})],
            None,
            json!({}),
        )),
    );
    report(
        "dataset-file",
        outcome(&lab::save_dataset_file("/work/f", &long, None, json!({}))),
    );
    report(
        "eval",
        outcome(&lab::save_eval(
            &long,
            &[EvalRow {
                input: "i".into(),
                output: "o".into(),
                expected: None,
                score: 1.0,
                extra: "{}".into(),
            }],
            TableFormat::Csv,
        )),
    );
    report("metric", outcome(&lab::metric(&long, 1.0, None)));
    report("stage", outcome(&lab::progress_stage(1.0, &long)));
    report("score", outcome(&lab::finish("x", &[(long.as_str(), 1.0)])));
    report("artifacts", lab::artifacts().len());
    lab::finish(&"m".repeat(10_000), &[])
}

fn log_flood() -> lab::Result<()> {
    let line = "L".repeat(1000);
    let n = count();
    let mut i = 0u64;
    while n == 0 || i < n {
        lab::info(&line);
        i += 1;
    }
    lab::finish(&format!("logged {i} lines"), &[])
}

fn stdout_flood() -> lab::Result<()> {
    use std::io::Write;
    let chunk = "S".repeat(4096);
    let mut out = std::io::stdout();
    loop {
        // No newline: the host must bound the partial line it buffers.
        let _ = out.write_all(chunk.as_bytes());
    }
}

fn metric_flood() -> lab::Result<()> {
    let n = count();
    let mut i = 0u64;
    while n == 0 || i < n {
        lab::metric("flood", i as f64, Some(i))?;
        i += 1;
    }
    lab::finish(&format!("recorded {i} metrics"), &[])
}

fn many_artifacts() -> lab::Result<()> {
    let work = lab::work_dir();
    let n = count();
    let mut saved = 0u64;
    while n == 0 || saved < n {
        let p = work.join(format!("f{saved}"));
        std::fs::write(&p, "x")?;
        let r = lab::save_artifact(&p, None);
        if r.is_err() {
            report("error", outcome(&r));
            report("error-message", message(&r));
            break;
        }
        saved += 1;
    }
    report("saved", saved);
    report("listed", lab::artifacts().len());
    lab::finish(&format!("saved {saved} artifacts"), &[])
}

fn after_finish() -> lab::Result<()> {
    lab::finish("finished first", &[("a", 1.0)])?;
    report("fail", outcome(&lab::fail("failing after finish")));
    report("finish", outcome(&lab::finish("finishing again", &[])));
    report("progress", outcome(&lab::progress(50.0)));
    report("metric", outcome(&lab::metric("late", 1.0, None)));
    std::fs::write(lab::work_dir().join("late.txt"), "late")?;
    report(
        "artifact",
        outcome(&lab::save_artifact("/work/late.txt", None)),
    );
    Err(Error::msg("returned an error after finishing"))
}

fn bad_progress() -> lab::Result<()> {
    for (key, v) in [
        ("minus-5", -5.0f32),
        ("150", 150.0),
        ("nan", f32::NAN),
        ("inf", f32::INFINITY),
        ("neg-zero", -0.0),
        ("100", 100.0),
    ] {
        report(key, outcome(&lab::progress(v)));
    }
    report("stage-newline", outcome(&lab::progress_stage(1.0, "a\nb")));
    report(
        "stage-long",
        outcome(&lab::progress_stage(1.0, &"s".repeat(10_000))),
    );
    lab::progress_stage(42.0, "ok")?;
    lab::finish("progress tried", &[])
}

fn env() -> lab::Result<()> {
    let vars: Vec<(String, String)> = std::env::vars().collect();
    report("vars", vars.len());
    report(
        "var-names",
        vars.iter()
            .map(|(k, _)| k.as_str())
            .collect::<Vec<_>>()
            .join(","),
    );
    report("home", std::env::var("HOME").is_ok());
    report("path", std::env::var("PATH").is_ok());
    report("args", std::env::args().count());
    report(
        "cwd",
        std::env::current_dir()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|e| format!("err({:?})", e.kind())),
    );
    lab::finish("env read", &[])
}

fn network() -> lab::Result<()> {
    use std::net::{TcpListener, TcpStream, UdpSocket};
    report(
        "tcp-localhost",
        io_outcome(&TcpStream::connect("127.0.0.1:80")),
    );
    report("tcp-dns", io_outcome(&TcpStream::connect("example.com:80")));
    report("udp-bind", io_outcome(&UdpSocket::bind("0.0.0.0:0")));
    report("tcp-listen", io_outcome(&TcpListener::bind("127.0.0.1:0")));
    report(
        "dns",
        io_outcome(&std::net::ToSocketAddrs::to_socket_addrs("localhost:80")),
    );
    lab::finish("network tried", &[])
}

fn host_files() -> lab::Result<()> {
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
fn resource_bomb() -> lab::Result<()> {
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

lab::export_plugin!(Evil);
