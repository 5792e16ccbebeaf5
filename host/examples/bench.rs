//! labhost benchmark (issue 5): what it costs to start and run plugins, how
//! fast a plugin talks to the host, how stored files and concurrent jobs
//! scale. Prints a table (median, min, max over runs) with the machine,
//! build profile and date.
//!
//! ```sh
//! scripts/build-guests.sh && cargo build -p labhost && cargo run -p labhost --example bench
//! ```
//! Options: `--runs N` (default 5), `--quick` (fewer runs and smaller
//! sizes, for a smoke test). Python and JavaScript rows are skipped when
//! `guests/dist/{python,js}/probe.wasm` is missing.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use labhost::{
    CompileCache, DirGrant, Host, HostOptions, JobRecord, JobSpec, JobStatus, Plugin, Pooling,
    Workspace,
};
use serde_json::json;

#[path = "../../guests/rust/testing/cpu_kernel.rs"]
mod cpu_kernel;
mod support;
use support::{machine, percentile};

/// Features and batch of the CPU kernel (the probe's `cpu` scenario uses the same).
const CPU_FEATURES: usize = 4096;
const CPU_BATCH: usize = 64;
const GIB: u64 = 1 << 30;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

struct Stats {
    median: f64,
    min: f64,
    max: f64,
}

fn stats(mut v: Vec<f64>) -> Stats {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    Stats {
        median: v[v.len() / 2],
        min: v[0],
        max: v[v.len() - 1],
    }
}

fn fmt(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2} M", x / 1e6)
    } else if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.3}")
    }
}

fn row(what: &str, unit: &str, s: Stats, target: &str) {
    println!(
        "| {what} | {} | {} | {} | {unit} | {target} |",
        fmt(s.median),
        fmt(s.min),
        fmt(s.max)
    );
}

/// Peak resident set of this process (VmHWM), in MiB.
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kib| kib.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

fn spec(plugin: &std::sync::Arc<Plugin>, config: serde_json::Value) -> JobSpec {
    let mut spec = JobSpec::new(plugin.clone());
    spec.config = config.as_object().unwrap().clone();
    spec
}

async fn run_job(host: &Host, spec: JobSpec) -> anyhow::Result<(JobRecord, Duration)> {
    // Start from clean page cache: a journal commit (fsync) must otherwise
    // first write back what earlier measurements left dirty.
    sync_all();
    let t = Instant::now();
    let rec = host.run(spec).await?;
    anyhow::ensure!(rec.status == JobStatus::Complete, "{:?}", rec.message);
    Ok((rec, t.elapsed()))
}

/// The `probe: elapsed-ns N` the probe logged.
fn elapsed_ns(host: &Host, rec: &JobRecord) -> anyhow::Result<f64> {
    let log = std::fs::read_to_string(host.workspace().job_paths(&rec.experiment, &rec.id).log())?;
    let line = log
        .lines()
        .rev()
        .find_map(|l| l.split_once("probe: elapsed-ns "))
        .map(|(_, v)| v.to_owned());
    Ok(line
        .ok_or_else(|| anyhow::anyhow!("no elapsed-ns in the log of job {}", rec.id))?
        .trim()
        .parse()?)
}

/// Hidden sub-command: run `n` probe jobs at once on one tokio runtime in
/// this fresh process; prints `RESULT <total ms> <peak RSS MiB>`.
async fn concurrent_child(args: &[String]) -> anyhow::Result<()> {
    let n: usize = args[2].parse()?;
    let ws = PathBuf::from(&args[3]);
    let cache = CompileCache::new(&args[4]);
    let pooling = args[5] == "pooling";
    let probe_path = PathBuf::from(&args[6]);
    let options = HostOptions {
        pooling: pooling.then(|| Pooling {
            instances: (n as u32 + 8).max(16),
            ..Pooling::default()
        }),
    };
    let host = Host::with_options(Workspace::open(ws)?, Some(cache), options)?;
    let probe = host.load(&probe_path)?;
    let t = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..n {
        handles.push(host.start(spec(&probe, json!({"scenario": "workload"})))?);
    }
    for h in handles {
        let rec = h.wait().await?;
        anyhow::ensure!(rec.status == JobStatus::Complete, "{:?}", rec.message);
    }
    let total = t.elapsed();
    println!("RESULT {} {}", total.as_secs_f64() * 1e3, peak_rss_mib());
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--concurrent-child") {
        return concurrent_child(&args).await;
    }
    let quick = args.iter().any(|a| a == "--quick");
    let runs: usize = args
        .iter()
        .skip_while(|a| *a != "--runs")
        .nth(1)
        .map(|v| v.parse())
        .transpose()?
        .unwrap_or(if quick { 1 } else { 5 });
    let dist = repo().join("guests/dist");
    let probe_path = dist.join("rust/probe.wasm");
    let datagen_path = dist.join("rust/datagen.wasm");
    let py_probe = Some(dist.join("python/probe.wasm")).filter(|p| p.is_file());
    let js_probe = Some(dist.join("js/probe.wasm")).filter(|p| p.is_file());
    anyhow::ensure!(
        probe_path.is_file(),
        "run scripts/build-guests.sh rust first"
    );
    let labhost_bin = std::env::current_exe()?
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("labhost");
    anyhow::ensure!(labhost_bin.is_file(), "run `cargo build -p labhost` first");

    let tmp = tempfile::tempdir()?;
    let ws_dir = tmp.path().join("ws");
    let host = Host::new(Workspace::open(&ws_dir)?)?;
    let profile = if cfg!(debug_assertions) {
        "dev (labhost and dependencies at opt-level 2)"
    } else {
        "release"
    };
    println!(
        "labhost bench, {}: {}; profile {profile}; {runs} run(s){}\n",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        machine(),
        if quick { ", --quick" } else { "" }
    );
    println!("| measure | median | min | max | unit | target (issue 5) |");
    println!("|---|---|---|---|---|---|");

    let load_cache = CompileCache::new(tmp.path().join("load-cache"));
    let load_host = Host::with_cache(
        Workspace::open(tmp.path().join("load-ws"))?,
        Some(load_cache.clone()),
    )?;
    // 4. In-process instantiation, on demand vs pooled.
    let pooled_host = Host::with_options(
        Workspace::open(tmp.path().join("pool-ws"))?,
        Some(load_cache.clone()),
        HostOptions {
            pooling: Some(Pooling::default()),
        },
    )?;
    for (lang, path, n) in [
        (
            "Rust",
            Some(probe_path.clone()),
            if quick { 200 } else { 2000 },
        ),
        ("Python", py_probe.clone(), if quick { 20 } else { 200 }),
    ] {
        let Some(path) = path else { continue };
        for (how, h) in [("on demand", &load_host), ("pooled", &pooled_host)] {
            let plugin = h.load(&path)?;
            let (mut p50, mut p99) = (Vec::new(), Vec::new());
            for _ in 0..runs {
                let mut v = (0..n)
                    .map(|_| h.instantiate_once(&plugin).map(|d| d.as_secs_f64() * 1e6))
                    .collect::<anyhow::Result<Vec<_>>>()?;
                p50.push(percentile(&mut v, 0.5));
                p99.push(percentile(&mut v, 0.99));
            }
            row(
                &format!("instantiate {lang} probe, {how}: p50"),
                "µs",
                stats(p50),
                "",
            );
            row(
                &format!("instantiate {lang} probe, {how}: p99"),
                "µs",
                stats(p99),
                "",
            );
        }
    }
    drop(pooled_host);

    // 2. Lab API call rates, timed inside the guest.
    let probe = host.load(&probe_path)?;
    let calls: u64 = if quick { 50_000 } else { 200_000 };
    for (op, target) in [
        ("log", ">= 1,000,000/s"),
        ("progress", ">= 100,000/s"),
        ("metric", ""),
    ] {
        let mut rates = Vec::new();
        for _ in 0..runs {
            let (rec, _) = run_job(
                &host,
                spec(
                    &probe,
                    json!({"scenario": "bench", "target": op, "count": calls}),
                ),
            )
            .await?;
            rates.push(calls as f64 / (elapsed_ns(&host, &rec)? / 1e9));
        }
        row(
            &format!("`{op}` calls from a Rust guest"),
            "calls/s",
            stats(rates),
            target,
        );
    }

    // 3. save_artifact latency for 1 KiB.
    let mut lat = Vec::new();
    for _ in 0..runs {
        let (rec, _) = run_job(
            &host,
            spec(
                &probe,
                json!({"scenario": "bench", "target": "artifact", "count": 500}),
            ),
        )
        .await?;
        lat.push(elapsed_ns(&host, &rec)? / 500.0 / 1e3);
    }
    row(
        "`save_artifact` of 1 KiB",
        "µs/call",
        stats(lat),
        "<= 50 µs",
    );

    // 1. The Transformer-Lab-shaped workload: in process, and as a cached
    // `labhost run` (process start to exit).
    let cli = |plugin: &Path, args: &[&str]| -> anyhow::Result<f64> {
        sync_all();
        let t = Instant::now();
        let o = std::process::Command::new(&labhost_bin)
            .arg("--workspace")
            .arg(&ws_dir)
            .arg("run")
            .arg(plugin)
            .args(args)
            .output()?;
        anyhow::ensure!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        Ok(t.elapsed().as_secs_f64() * 1e3)
    };
    for (lang, path, target) in [
        ("Rust", Some(probe_path.clone()), "<= 250 ms (CLI)"),
        ("Python", py_probe.clone(), ""),
    ] {
        let Some(path) = path else { continue };
        let plugin = host.load(&path)?;
        let mut inproc = Vec::new();
        for _ in 0..runs {
            let (_, t) = run_job(&host, spec(&plugin, json!({"scenario": "workload"}))).await?;
            inproc.push(t.as_secs_f64() * 1e3);
        }
        row(
            &format!("TL workload, {lang} guest, in process"),
            "ms",
            stats(inproc),
            "",
        );
        cli(&path, &["-c", "scenario=workload"])?; // fill the cache
        let walls = (0..runs)
            .map(|_| cli(&path, &["-c", "scenario=workload"]))
            .collect::<anyhow::Result<Vec<_>>>()?;
        row(
            &format!("TL workload, {lang} guest, cached `labhost run`"),
            "ms",
            stats(walls),
            target,
        );
    }
    for (lang, path) in [
        ("Rust", Some(probe_path.clone())),
        ("Python", py_probe.clone()),
        ("JS", js_probe.clone()),
    ] {
        let Some(path) = path else { continue };
        cli(&path, &["-c", "scenario=stdio"])?;
        let walls = (0..runs)
            .map(|_| cli(&path, &["-c", "scenario=stdio"]))
            .collect::<anyhow::Result<Vec<_>>>()?;
        row(
            &format!("cached `labhost run` of the {lang} probe (stdio), wall"),
            "ms",
            stats(walls),
            if lang == "Rust" { "<= 30 ms" } else { "" },
        );
    }
    cli(&datagen_path, &[])?;
    let walls = (0..runs)
        .map(|_| cli(&datagen_path, &[]))
        .collect::<anyhow::Result<Vec<_>>>()?;
    row(
        "cached `labhost run` of the Rust datagen, wall",
        "ms",
        stats(walls),
        "<= 30 ms",
    );
    let jobs = host.workspace().jobs(None)?.len();

    // 6. A CPU-bound guest against the same code compiled natively.
    let steps: u64 = if quick { 5_000 } else { 30_000 };
    let (mut wasm, mut native) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let (rec, _) = run_job(
            &host,
            spec(&probe, json!({"scenario": "cpu", "count": steps})),
        )
        .await?;
        wasm.push(elapsed_ns(&host, &rec)? / 1e6);
        let t = Instant::now();
        std::hint::black_box(cpu_kernel::train(
            std::hint::black_box(steps),
            CPU_FEATURES,
            CPU_BATCH,
        ));
        native.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let (w, n) = (stats(wasm), stats(native));
    let ratio = w.median / n.median;
    row(
        &format!("CPU kernel ({steps} SGD steps), Rust guest"),
        "ms",
        w,
        "",
    );
    row("CPU kernel, same code native", "ms", n, "");
    println!("| … guest ÷ native (medians) | {ratio:.2} | | | × | <= 1.5 |");

    // 4. First compile vs cached start, per language (in process: load =
    // read + compile or cache hit + link + describe()). Heavy on the disk
    // (Python/JS cache entries are ~30 MB), so after the latency rows.
    for (lang, path) in [
        ("Rust", Some(probe_path.clone())),
        ("Python", py_probe.clone()),
        ("JS", js_probe.clone()),
    ] {
        let Some(path) = path else {
            println!("| load {lang} probe | skipped: guests/dist/… missing | | | | |");
            continue;
        };
        let compile_runs = if lang == "Rust" { runs } else { runs.min(2) };
        let (mut first, mut cached) = (Vec::new(), Vec::new());
        for i in 0..runs {
            if i < compile_runs {
                load_cache.clear()?;
                let t = Instant::now();
                load_host.load(&path)?;
                first.push(t.elapsed().as_secs_f64() * 1e3);
            }
            let t = Instant::now();
            load_host.load(&path)?;
            cached.push(t.elapsed().as_secs_f64() * 1e3);
        }
        row(
            &format!("load {lang} probe: first compile"),
            "ms",
            stats(first),
            "",
        );
        row(
            &format!("load {lang} probe: cached (+ describe)"),
            "ms",
            stats(cached),
            "",
        );
    }

    // 3. A big checkpoint: the guest's save vs plain `cp` of the same file
    // on the same disk, and the copy strategies the store could use.
    let big_size = if quick { 256 << 20 } else { GIB };
    let big_dir = tmp.path().join("big");
    std::fs::create_dir(&big_dir)?;
    let big = big_dir.join("ckpt.bin");
    write_big(&big, big_size)?;
    let big_runs = runs.min(3);
    let gib = |secs: f64| big_size as f64 / GIB as f64 / secs;
    let out = tmp.path().join("copy.out");
    let strat =
        |name: &str, f: &dyn Fn(&Path, &Path) -> anyhow::Result<()>| -> anyhow::Result<f64> {
            let mut v = Vec::new();
            for _ in 0..big_runs {
                let _ = std::fs::remove_file(&out);
                sync_all();
                let t = Instant::now();
                f(&big, &out)?;
                v.push(gib(t.elapsed().as_secs_f64()));
            }
            let s = stats(v);
            let median = s.median;
            row(name, "GiB/s", s, "");
            Ok(median)
        };
    let size_label = if quick { "256 MiB" } else { "1 GiB" };
    let cp = strat(
        &format!("`cp` of a {size_label} file (page cache)"),
        &|a, b| {
            let st = std::process::Command::new("cp").arg(a).arg(b).status()?;
            anyhow::ensure!(st.success(), "cp failed");
            Ok(())
        },
    )?;
    strat(
        &format!("`cp` + fsync of the {size_label} file"),
        &|a, b| {
            let st = std::process::Command::new("cp").arg(a).arg(b).status()?;
            anyhow::ensure!(st.success(), "cp failed");
            std::fs::File::open(b)?.sync_data()?;
            Ok(())
        },
    )?;
    strat(
        "store: read, hash, write 1 MiB chunks + fsync (before)",
        &|a, b| {
            let mut src = std::fs::File::open(a)?;
            let mut dst = std::fs::File::create_new(b)?;
            let mut h = blake3::Hasher::new();
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = src.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
                dst.write_all(&buf[..n])?;
            }
            dst.sync_data()?;
            std::hint::black_box(h.finalize());
            Ok(())
        },
    )?;
    strat(
        "store: copy_file_range, hash dest 1 thread + fsync",
        &|a, b| {
            std::fs::copy(a, b)?;
            let mut h = blake3::Hasher::new();
            std::io::copy(&mut std::fs::File::open(b)?, &mut h)?;
            std::fs::File::open(b)?.sync_data()?;
            std::hint::black_box(h.finalize());
            Ok(())
        },
    )?;
    strat(
        "store: copy_file_range, hash dest on all cores + fsync",
        &|a, b| {
            std::fs::copy(a, b)?;
            let mut f = std::fs::File::open(b)?;
            std::hint::black_box(labhost::store::digest::hash_parallel(&mut f)?);
            f.sync_data()?;
            Ok(())
        },
    )?;
    strat(
        "store: same, writeback started every 64 MiB + fsync (now)",
        &|a, b| {
            use std::os::fd::AsRawFd;
            let src = std::fs::File::open(a)?;
            let mut dst = std::fs::File::create_new(b)?;
            let mut off = 0i64;
            loop {
                let n = std::io::copy(&mut (&src).take(64 << 20), &mut dst)?;
                // SAFETY: valid descriptor; only schedules writeback.
                unsafe {
                    libc::sync_file_range(
                        dst.as_raw_fd(),
                        off,
                        n as i64,
                        libc::SYNC_FILE_RANGE_WRITE,
                    );
                }
                off += n as i64;
                if n < 64 << 20 {
                    break;
                }
            }
            std::hint::black_box(labhost::store::digest::hash_parallel(
                &mut std::fs::File::open(b)?,
            )?);
            dst.sync_data()?;
            Ok(())
        },
    )?;
    let _ = std::fs::remove_file(&out);
    let mut ckpt = Vec::new();
    for _ in 0..big_runs {
        sync_all();
        let mut s = spec(
            &probe,
            json!({"scenario": "save-big", "target": "/big/ckpt.bin"}),
        );
        s.sandbox.grants.dirs.push(DirGrant {
            host: big_dir.clone(),
            guest: "/big".into(),
            writable: false,
        });
        s.sandbox.limits.stored_bytes = 2 * big_size;
        let (rec, _) = run_job(&host, s).await?;
        ckpt.push(gib(elapsed_ns(&host, &rec)? / 1e9));
        // Free the disk for the next run.
        let paths = host.workspace().job_paths(&rec.experiment, &rec.id);
        std::fs::remove_file(paths.checkpoints().join("big"))?;
    }
    let s = stats(ckpt);
    let ratio = s.median / cp;
    row(
        &format!("`save_checkpoint` of the {size_label} file (durable)"),
        "GiB/s",
        s,
        ">= 0.8 × cp",
    );
    println!("| … checkpoint save ÷ `cp` (medians) | {ratio:.2} | | | × | >= 0.8 |");
    std::fs::remove_file(&big)?;

    // 5. N concurrent jobs (the TL workload) in a fresh process each, so its
    // peak RSS is the jobs' own.
    let shared_cache = host.cache().unwrap().dir().to_owned();
    for (n, pooling) in [(1, false), (16, false), (256, false), (256, true)] {
        let (mut total, mut rss) = (Vec::new(), Vec::new());
        for i in 0..runs.min(3) {
            let ws = tmp.path().join(format!("conc-{n}-{pooling}-{i}"));
            sync_all();
            let o = std::process::Command::new(std::env::current_exe()?)
                .arg("--concurrent-child")
                .arg(n.to_string())
                .arg(&ws)
                .arg(&shared_cache)
                .arg(if pooling { "pooling" } else { "on-demand" })
                .arg(&probe_path)
                .output()?;
            anyhow::ensure!(
                o.status.success(),
                "concurrent child failed: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            let out = String::from_utf8_lossy(&o.stdout);
            let line = out
                .lines()
                .find_map(|l| l.strip_prefix("RESULT "))
                .ok_or_else(|| anyhow::anyhow!("no RESULT from the child"))?;
            let mut it = line.split_whitespace().map(|v| v.parse::<f64>());
            total.push(it.next().unwrap()?);
            rss.push(it.next().unwrap()?);
            let _ = std::fs::remove_dir_all(&ws);
        }
        let how = if pooling { ", pooled" } else { "" };
        row(
            &format!("{n} concurrent TL workload jobs{how}: total"),
            "ms",
            stats(total),
            "",
        );
        row(
            &format!("{n} concurrent TL workload jobs{how}: peak RSS"),
            "MiB",
            stats(rss),
            if n == 256 { "<= 2048 MiB" } else { "" },
        );
    }
    println!("\n(the CLI rows ran in a workspace holding {jobs} jobs)");
    Ok(())
}

/// A file of `size` bytes of varied content (not sparse, not all zeros).
fn write_big(path: &Path, size: u64) -> anyhow::Result<()> {
    let mut block = vec![0u8; 1 << 20];
    let mut x = 0x1234_5678_9abc_def0u64;
    for b in block.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        b.copy_from_slice(&x.to_le_bytes());
    }
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    for i in 0..size >> 20 {
        block[0..8].copy_from_slice(&i.to_le_bytes());
        f.write_all(&block)?;
    }
    f.into_inner()?.sync_all()?;
    Ok(())
}

/// Flush dirty pages so one measurement does not pay for the last one's
/// writeback.
fn sync_all() {
    let _ = std::process::Command::new("sync").status();
}
