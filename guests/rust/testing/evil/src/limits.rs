//! Limit attacks: CPU, memory, stack, stored bytes and counts, the size of
//! what ends up in the job record and the registries, and the sandbox's
//! capabilities (threads, network, environment, exit).

use std::hint::black_box;

use lab::{EvalRow, ModelDesc, TableFormat};
use serde_json::json;

use crate::{count, io_outcome, message, outcome, report};

/// Spin forever.
pub fn spin() -> lab::Result<()> {
    loop {
        black_box(0u64);
    }
}

/// Hammer cheap lab calls forever, ignoring should-stop.
pub fn call_storm() -> lab::Result<()> {
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
pub fn memory_bomb() -> lab::Result<()> {
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    loop {
        chunks.push(vec![0xa5u8; 16 << 20]);
        report("allocated-mib", chunks.len() * 16);
        black_box(&chunks);
    }
}

pub fn stack_overflow() -> lab::Result<()> {
    let depth = recurse(black_box(u64::MAX));
    lab::finish(&format!("recursed {depth}"), &[])
}

pub fn deep_recursion() -> lab::Result<()> {
    let depth = tiny_frames(black_box(u64::MAX));
    lab::finish(&format!("recursed {depth}"), &[])
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
pub fn huge_alloc() -> lab::Result<()> {
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

/// Store more bytes than the stored-bytes limit allows, as a file artifact,
/// a directory checkpoint and dataset rows.
pub fn big_store() -> lab::Result<()> {
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

pub fn metric_flood() -> lab::Result<()> {
    let n = count();
    let mut i = 0u64;
    while n == 0 || i < n {
        lab::metric("flood", i as f64, Some(i))?;
        i += 1;
    }
    lab::finish(&format!("recorded {i} metrics"), &[])
}

pub fn many_artifacts() -> lab::Result<()> {
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

/// An eval table whose scores overflow to infinity when summed.
pub fn eval_overflow() -> lab::Result<()> {
    let row = |i: u32| EvalRow {
        input: format!("in{i}"),
        output: format!("out{i}"),
        expected: None,
        score: f64::MAX,
        extra: "{}".into(),
    };
    let r = lab::save_eval("overflow", &[row(0), row(1)], TableFormat::Csv);
    report("eval", outcome(&r));
    if let Ok(summary) = &r {
        report("mean", summary.mean_score);
    }
    lab::finish("evals tried", &[])
}

/// Datasets with `count` KiB (0: 1 MiB) of metadata each, until the host
/// refuses or 10,000 were saved.
pub fn metadata_flood() -> lab::Result<()> {
    let kib = match count() {
        0 => 1024,
        n => n,
    };
    let metadata = json!({ "pad": "x".repeat((kib as usize) << 10) });
    let mut saved = 0u64;
    let mut refused: Option<lab::Result<lab::DatasetInfo>> = None;
    while saved < 10_000 {
        let r = lab::save_dataset(
            &format!("md-{saved}"),
            &[json!({ "i": saved })],
            None,
            metadata.clone(),
        );
        if r.is_err() {
            refused = Some(r);
            break;
        }
        saved += 1;
    }
    report("saved", saved);
    match &refused {
        Some(r) => {
            report("refused", outcome(r));
            report("refused-message", message(r));
        }
        None => {
            report("refused", "none");
            report("refused-message", "none");
        }
    }
    lab::finish("flooded", &[])
}

/// A directory artifact whose manifest is large (2,000 files with ~1,000
/// byte relative paths), then a finish with 100,000 scores.
pub fn record_bloat() -> lab::Result<()> {
    let root = lab::work_dir().join("bloat");
    // 20 chains of 4 dirs with 200-byte names, 100 files (190-byte names)
    // at the bottom of each: relative paths of 4 * 201 + 190 = 994 bytes.
    for chain in 0..20u32 {
        let mut dir = root.clone();
        for level in 0..4u32 {
            dir.push(format!("{chain:02}{level}{}", "d".repeat(197)));
        }
        std::fs::create_dir_all(&dir)?;
        for i in 0..100u32 {
            let name = format!("{:05}{}", chain * 100 + i, "f".repeat(185));
            std::fs::write(dir.join(name), "x")?;
        }
    }
    let r = lab::save_artifact("/work/bloat", Some("bloat"));
    report("big-manifest", outcome(&r));
    report("big-manifest-message", message(&r));
    drop(r);
    let names: Vec<String> = (0..100_000).map(|i| format!("s{i}")).collect();
    let scores: Vec<(&str, f64)> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i as f64))
        .collect();
    let r = lab::finish("bloated", &scores);
    report("finish-many", outcome(&r));
    report("finish-many-message", message(&r));
    if r.is_err() {
        lab::finish("bloat tried", &[])?;
    }
    Ok(())
}

pub fn threads() -> lab::Result<()> {
    let r = std::thread::Builder::new().spawn(|| loop {
        black_box(0u8);
    });
    report("spawn", io_outcome(&r));
    lab::finish("threads tried", &[])
}

pub fn env() -> lab::Result<()> {
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

pub fn network() -> lab::Result<()> {
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

pub fn exit() -> lab::Result<()> {
    std::process::exit(0)
}
