//! labhost benchmark: how much it costs to run a plugin and how fast a
//! plugin talks to the host. Prints a table (median, min, max over runs).
//!
//! ```sh
//! scripts/build-guests.sh rust && cargo build -p labhost && cargo run -p labhost --example bench
//! ```
//! Options: `--runs N` (default 5).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use labhost::{Host, JobRecord, JobSpec, JobStatus, Workspace};
use serde_json::json;

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

fn row(what: &str, unit: &str, s: Stats, target: &str) {
    let f = |x: f64| {
        if x >= 100.0 {
            format!("{x:.0}")
        } else {
            format!("{x:.3}")
        }
    };
    println!(
        "{what:<44} {:>12} {:>12} {:>12}  {unit:<9} {target}",
        f(s.median),
        f(s.min),
        f(s.max)
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let runs: usize = std::env::args()
        .skip_while(|a| a != "--runs")
        .nth(1)
        .map(|v| v.parse())
        .transpose()?
        .unwrap_or(5);
    let probe_path = repo().join("guests/dist/rust/probe.wasm");
    let datagen_path = repo().join("guests/dist/rust/datagen.wasm");
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
    let host = Host::new(Workspace::open(tmp.path().join("ws"))?)?;
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown cpu".into());
    let profile = if cfg!(debug_assertions) {
        "dev (labhost and dependencies at opt-level 2)"
    } else {
        "release"
    };
    println!(
        "labhost bench: {}, {} × {}, profile {profile}, {runs} runs",
        chrono::Utc::now().format("%Y-%m-%d"),
        cpu,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "{:<44} {:>12} {:>12} {:>12}  {:<9} target",
        "measure", "median", "min", "max", "unit"
    );

    // Compile: first (cache cleared) vs cached load, in process.
    let (mut first, mut cached) = (Vec::new(), Vec::new());
    let cache = host.cache().expect("Host::new keeps a compile cache");
    for _ in 0..runs {
        cache.clear()?;
        let t = Instant::now();
        host.load(&probe_path)?;
        first.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        host.load(&probe_path)?;
        cached.push(t.elapsed().as_secs_f64() * 1e3);
    }
    row(
        "load Rust probe: compile (no cache)",
        "ms",
        stats(first),
        "",
    );
    row(
        "load Rust probe: cached (+ describe)",
        "ms",
        stats(cached),
        "",
    );

    let probe = host.load(&probe_path)?;
    let run = |config: serde_json::Value| {
        let mut spec = JobSpec::new(probe.clone());
        spec.config = config.as_object().unwrap().clone();
        let host = host.clone();
        async move {
            let t = Instant::now();
            let rec = host.run(spec).await?;
            anyhow::ensure!(rec.status == JobStatus::Complete, "{:?}", rec.message);
            Ok::<(JobRecord, Duration), anyhow::Error>((rec, t.elapsed()))
        }
    };
    let elapsed_ns = |rec: &JobRecord| -> anyhow::Result<f64> {
        let log =
            std::fs::read_to_string(host.workspace().job_paths(&rec.experiment, &rec.id).log())?;
        let line = log
            .lines()
            .rev()
            .find_map(|l| l.split_once("probe: elapsed-ns "))
            .map(|(_, v)| v.to_owned());
        Ok(line
            .ok_or_else(|| anyhow::anyhow!("no elapsed-ns"))?
            .trim()
            .parse()?)
    };

    // Lab API call rates, timed inside the guest.
    for (op, n, target) in [
        ("log", 200_000u64, ">= 1,000,000/s"),
        ("progress", 200_000, ">= 100,000/s"),
        ("metric", 200_000, ""),
    ] {
        let mut rates = Vec::new();
        for _ in 0..runs {
            let (rec, _) = run(json!({"scenario": "bench", "target": op, "count": n})).await?;
            rates.push(n as f64 / (elapsed_ns(&rec)? / 1e9));
        }
        row(
            &format!("{op} calls from a Rust guest"),
            "calls/s",
            stats(rates),
            target,
        );
    }
    let mut lat = Vec::new();
    for _ in 0..runs {
        let (rec, _) =
            run(json!({"scenario": "bench", "target": "artifact", "count": 500})).await?;
        lat.push(elapsed_ns(&rec)? / 500.0 / 1e3);
    }
    row("save_artifact of 1 KiB", "µs/call", stats(lat), "<= 50 µs");

    // The Transformer-Lab-shaped workload, in process and as a CLI run.
    let mut inproc = Vec::new();
    for _ in 0..runs {
        let (_, t) = run(json!({"scenario": "workload"})).await?;
        inproc.push(t.as_secs_f64() * 1e3);
    }
    row(
        "TL workload, Rust guest, in process",
        "ms",
        stats(inproc),
        "",
    );
    let cli = |plugin: &Path, args: &[&str]| -> anyhow::Result<f64> {
        let t = Instant::now();
        let o = std::process::Command::new(&labhost_bin)
            .arg("--workspace")
            .arg(tmp.path().join("ws"))
            .arg("run")
            .arg(plugin)
            .args(args)
            .output()?;
        anyhow::ensure!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        Ok(t.elapsed().as_secs_f64() * 1e3)
    };
    cli(&probe_path, &["-c", "scenario=workload"])?; // fill the cache
    let walls = (0..runs)
        .map(|_| cli(&probe_path, &["-c", "scenario=workload"]))
        .collect::<anyhow::Result<Vec<_>>>()?;
    row(
        "TL workload, Rust guest, `labhost run` (cached)",
        "ms",
        stats(walls),
        "<= 250 ms",
    );
    cli(&datagen_path, &[])?;
    let walls = (0..runs)
        .map(|_| cli(&datagen_path, &[]))
        .collect::<anyhow::Result<Vec<_>>>()?;
    row(
        "`labhost run` Rust datagen (cached), wall",
        "ms",
        stats(walls),
        "<= 30 ms",
    );
    Ok(())
}
