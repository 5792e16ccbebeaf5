//! `labhost serve` benchmark (issue 14, item 8): the real `labhost serve`
//! binary on 127.0.0.1 over throwaway workspaces, driven over HTTP. Prints
//! one Markdown table (p50/p99 or a throughput, with the anchor measured
//! in the same run beside it where there is one); nothing is asserted.
//!
//! ```sh
//! cargo build -p labhost-cli && cargo run -p labhost-serve --example bench_serve
//! ```
//! (`--release` on both for a release build: the bench runs the `labhost`
//! of its own profile.) Options: `--quick` (small sizes, few repeats, for a
//! smoke run), `--only list,sse,launch,metrics,rows` (some sections),
//! `--jobs N` (workspace size for the jobs list, default 100,000).
//!
//! Sections:
//! - `list`: `GET /api/v1/jobs?limit=50` on a workspace of N jobs (job
//!   directories written directly from the record of one real completed
//!   job), with the job index and with it turned off
//!   (`LABHOST_JOB_INDEX=off`: every record read per request); the same
//!   query from `labhost jobs`.
//! - `sse`: one job logging lines, its events followed by 100 SSE clients
//!   (and by 1, the anchor).
//! - `launch`: `POST /api/v1/jobs` of the warm Rust probe to its first lab
//!   call, against `Host::start` in process and a durable record write.
//! - `metrics`: `GET /api/v1/jobs/{id}/metrics?max_points=1000` on a
//!   1,000,000-point series, against the library's read in process.
//! - `rows`: a 1,000,000-row CSV uploaded, then a filter+sort row query and
//!   a plain page.

#[path = "../../host/examples/support/mod.rs"]
mod support;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};
use support::{machine, percentile};

use chrono::{DateTime, Utc};
use labhost::store::{durable, read_json_opt, JobPaths};
use labhost::{CompileCache, Host, JobRecord, JobSpec, Workspace};
use serde_json::{json, Value};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

// ---- the table ---------------------------------------------------------------

/// p50 and p99 (nearest rank) of `v`.
fn p50_p99(v: &mut [f64]) -> (f64, f64) {
    (percentile(v, 0.5), percentile(v, 0.99))
}

fn fmt(x: f64) -> String {
    if !x.is_finite() {
        "–".into()
    } else if x >= 1e6 {
        format!("{:.2} M", x / 1e6)
    } else if x >= 1e4 {
        format!("{:.0} k", x / 1e3)
    } else if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

/// A latency row: p50/p99 of `samples` (ms).
fn lat_row(what: &str, mut samples: Vec<f64>, anchor: &str) {
    let n = samples.len();
    let (p50, p99) = p50_p99(&mut samples);
    println!(
        "| {what} | {} | {} | ms | {n} | {anchor} |",
        fmt(p50),
        fmt(p99)
    );
}

/// A single-value row (a throughput or a total).
fn one_row(what: &str, value: f64, unit: &str, anchor: &str) {
    println!("| {what} | {} | | {unit} | 1 | {anchor} |", fmt(value));
}

fn p50(mut v: Vec<f64>) -> f64 {
    p50_p99(&mut v).0
}

// ---- the server ----------------------------------------------------------------

/// `labhost serve --bind 127.0.0.1:0` over `ws`, stopped on drop.
struct Server {
    child: Child,
    _stdout: ChildStdout,
    base: String,
}

impl Server {
    fn start(bin: &Path, ws: &Path, env: &[(&str, &str)]) -> anyhow::Result<Server> {
        let mut child = Command::new(bin)
            .arg("--workspace")
            .arg(ws)
            .args(["serve", "--bind", "127.0.0.1:0"])
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line)?;
        let base = line
            .trim()
            .strip_prefix("labhost serve: listening on ")
            .ok_or_else(|| anyhow::anyhow!("labhost serve said {line:?}"))?
            .to_owned();
        Ok(Server {
            child,
            _stdout: out.into_inner(),
            base,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// GET `url`, checked for 200; the body.
async fn get(http: &reqwest::Client, url: &str) -> anyhow::Result<axum::body::Bytes> {
    let r = http.get(url).send().await?;
    let status = r.status();
    let body = r.bytes().await?;
    anyhow::ensure!(
        status.is_success(),
        "GET {url}: {status} {}",
        String::from_utf8_lossy(&body)
    );
    Ok(body)
}

/// Time `n` GETs of `url` (after `warm` unmeasured ones), in ms.
async fn time_gets(
    http: &reqwest::Client,
    url: &str,
    warm: usize,
    n: usize,
) -> anyhow::Result<Vec<f64>> {
    for _ in 0..warm {
        get(http, url).await?;
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        get(http, url).await?;
        out.push(ms(t.elapsed()));
    }
    Ok(out)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Milliseconds from `a` to `b` (wall clock, same machine).
fn ms_between(a: DateTime<Utc>, b: DateTime<Utc>) -> f64 {
    (b - a).num_nanoseconds().unwrap_or(i64::MAX) as f64 / 1e6
}

// ---- workspaces ------------------------------------------------------------------

/// The record of one real completed probe job (run by `labhost run`).
fn template_record(bin: &Path, probe: &Path, tmp: &Path) -> anyhow::Result<Value> {
    let ws = tmp.join("template-ws");
    let o = Command::new(bin)
        .arg("--workspace")
        .arg(&ws)
        .arg("run")
        .arg(probe)
        .args([
            "-c",
            "scenario=bench",
            "-c",
            "target=metric",
            "-c",
            "count=3",
        ])
        .output()?;
    anyhow::ensure!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let job = Workspace::open(&ws)?
        .jobs(None)?
        .pop()
        .ok_or_else(|| anyhow::anyhow!("the template job left no record"))?;
    Ok(serde_json::to_value(job)?)
}

/// Write job `i` of a generated workspace: a copy of `template` with its
/// own id, times and (mostly COMPLETE) status, marked ended like a real one.
fn write_job(
    ws: &Path,
    experiment: &str,
    template: &Value,
    created: DateTime<Utc>,
    i: usize,
) -> anyhow::Result<(String, JobPaths)> {
    let id = format!("{}-{:04x}", created.format("%Y%m%d-%H%M%S"), i % 65536);
    let mut rec = template.clone();
    let started = created + chrono::Duration::milliseconds(4);
    let ended = started + chrono::Duration::milliseconds(50 + (i % 600) as i64 * 1000);
    rec["id"] = json!(id);
    rec["experiment"] = json!(experiment);
    rec["created_at"] = json!(created);
    rec["started_at"] = json!(started);
    rec["ended_at"] = json!(ended);
    rec["progress"] = json!((i % 101) as f32);
    let (status, message) = match i % 100 {
        7 | 57 => ("FAILED", "probe failed on purpose"),
        13 => ("CANCELLED", "cancelled"),
        _ => ("COMPLETE", "bench done"),
    };
    rec["status"] = json!(status);
    rec["message"] = json!(message);
    if status == "FAILED" {
        rec["failure"] = json!("plugin-error");
    }
    let dir = ws
        .join("experiments")
        .join(experiment)
        .join("jobs")
        .join(&id);
    std::fs::create_dir(&dir)?;
    std::fs::write(dir.join("job.json"), serde_json::to_vec_pretty(&rec)?)?;
    let paths = JobPaths { dir };
    paths.mark_ended();
    Ok((id, paths))
}

/// A workspace of `n` ended jobs in one experiment, one per 30 s of the
/// last `n` × 30 s, written on all cores.
fn fill_jobs(ws: &Path, template: &Value, n: usize) -> anyhow::Result<()> {
    Workspace::open(ws)?;
    std::fs::create_dir_all(ws.join("experiments/default/jobs"))?;
    let start = Utc::now() - chrono::Duration::seconds(30 * n as i64 + 60);
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || -> anyhow::Result<()> {
                    for i in (t..n).step_by(threads) {
                        let created = start + chrono::Duration::seconds(30 * i as i64);
                        write_job(ws, "default", template, created, i)?;
                    }
                    Ok(())
                })
            })
            .collect();
        handles
            .into_iter()
            .try_for_each(|h| h.join().expect("writer thread"))
    })
}

// ---- sections ---------------------------------------------------------------------

struct Ctx {
    bin: PathBuf,
    probe: PathBuf,
    tmp: tempfile::TempDir,
    template: Value,
    quick: bool,
    http: reqwest::Client,
}

/// Section 1: `GET /api/v1/jobs?limit=50` on a big workspace, with and without
/// the index; `labhost jobs` the same.
async fn bench_list(c: &Ctx, jobs: usize) -> anyhow::Result<()> {
    let ws = c.tmp.path().join("list-ws");
    let t = Instant::now();
    fill_jobs(&ws, &c.template, jobs)?;
    eprintln!(
        "list: wrote {jobs} jobs in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let record_bytes = serde_json::to_vec_pretty(&c.template)?.len();
    let n_index = if c.quick { 20 } else { 200 };
    let n_scan = if c.quick { 5 } else { 20 };
    let jobs_k = format!("{}k", jobs / 1000);

    // Without the index (every record read per request): the anchor.
    let scan = {
        let server = Server::start(&c.bin, &ws, &[("LABHOST_JOB_INDEX", "off")])?;
        let url = server.url("/api/v1/jobs?limit=50");
        let page: Value = serde_json::from_slice(&get(&c.http, &url).await?)?;
        anyhow::ensure!(page["total"] == json!(jobs), "total {}", page["total"]);
        time_gets(&c.http, &url, 1, n_scan).await?
    };
    let scan_p50 = p50(scan.clone());

    let server = Server::start(&c.bin, &ws, &[])?;
    let url = server.url("/api/v1/jobs?limit=50");
    let t = Instant::now();
    let first: Value = serde_json::from_slice(&get(&c.http, &url).await?)?;
    let first_ms = ms(t.elapsed());
    anyhow::ensure!(first["total"] == json!(jobs), "total {}", first["total"]);
    let indexed = time_gets(&c.http, &url, 2, n_index).await?;
    lat_row(
        &format!("`GET /jobs?limit=50`, {jobs_k} jobs ({record_bytes} B records), index"),
        indexed.clone(),
        &format!("index off (every record read): p50 {} ms", fmt(scan_p50)),
    );
    lat_row(
        &format!("… index off (`LABHOST_JOB_INDEX=off`), {jobs_k} jobs"),
        scan,
        "the code before the index",
    );
    one_row(
        "… first request after the server started (index loaded or built)",
        first_ms,
        "ms",
        "",
    );
    let failed = server.url("/api/v1/jobs?status=failed&sort=-duration&limit=50");
    let page: Value = serde_json::from_slice(&get(&c.http, &failed).await?)?;
    lat_row(
        &format!(
            "`GET /jobs?status=failed&sort=-duration&limit=50` ({} match), index",
            page["total"]
        ),
        time_gets(&c.http, &failed, 2, n_index).await?,
        "",
    );
    let deep = server.url(&format!("/api/v1/jobs?offset={}&limit=50", jobs / 2));
    lat_row(
        "`GET /jobs?offset=N/2&limit=50`, index",
        time_gets(&c.http, &deep, 2, n_index).await?,
        "",
    );
    // A job added while the server runs is seen by the next request.
    let created = Utc::now();
    let (new_id, _) = write_job(&ws, "default", &c.template, created, jobs + 1)?;
    let t = Instant::now();
    let page: Value = serde_json::from_slice(&get(&c.http, &url).await?)?;
    let refresh_ms = ms(t.elapsed());
    anyhow::ensure!(
        page["jobs"][0]["id"] == json!(new_id),
        "the new job is not first"
    );
    one_row(
        "… first request after a job was added (its directory listed again)",
        refresh_ms,
        "ms",
        "",
    );
    drop(server);

    // The library alone: the same query in this process (index built once).
    let lib_ws = Workspace::open(&ws)?;
    let query = labhost::query::JobQuery {
        limit: Some(50),
        ..Default::default()
    };
    query.run(&lib_ws)?;
    let mut lib = Vec::new();
    for _ in 0..n_index {
        let t = Instant::now();
        std::hint::black_box(query.run(&lib_ws)?);
        lib.push(ms(t.elapsed()));
    }
    lat_row(
        "… anchor: `JobQuery::run` in process (index; 50 records read)",
        lib,
        "",
    );

    // The CLI: `labhost jobs --limit 50 --json`, wall time.
    let cli = |env: &[(&str, &str)]| -> anyhow::Result<f64> {
        let t = Instant::now();
        let o = Command::new(&c.bin)
            .arg("--workspace")
            .arg(&ws)
            .args(["jobs", "--limit", "50", "--json"])
            .envs(env.iter().copied())
            .output()?;
        anyhow::ensure!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        Ok(ms(t.elapsed()))
    };
    let n_cli = if c.quick { 3 } else { 10 };
    let off = (0..n_cli.min(5))
        .map(|_| cli(&[("LABHOST_JOB_INDEX", "off")]))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let on = (0..n_cli)
        .map(|_| cli(&[]))
        .collect::<anyhow::Result<Vec<_>>>()?;
    lat_row(
        &format!("`labhost jobs --limit 50 --json`, {jobs_k} jobs, wall"),
        on,
        &format!("index off: p50 {} ms", fmt(p50(off.clone()))),
    );
    lat_row("… index off", off, "");
    Ok(())
}

/// What one SSE client saw: events, when it saw the end (since `t0`), and
/// log-line latencies (its receive time minus the line's timestamp).
struct Seen {
    events: usize,
    end_ms: f64,
    latencies: Vec<f64>,
}

async fn sse_client(http: reqwest::Client, url: String, t0: Instant) -> anyhow::Result<Seen> {
    let mut resp = http.get(&url).send().await?;
    anyhow::ensure!(resp.status().is_success(), "GET {url}: {}", resp.status());
    let mut buf: Vec<u8> = Vec::new();
    let mut seen = Seen {
        events: 0,
        end_ms: f64::NAN,
        latencies: Vec::new(),
    };
    while let Some(chunk) = resp.chunk().await? {
        buf.extend_from_slice(&chunk);
        let Some(last) = buf.windows(2).rposition(|w| w == b"\n\n") else {
            continue;
        };
        let now = Utc::now();
        let frames: Vec<u8> = buf.drain(..last + 2).collect();
        for line in frames.split(|&b| b == b'\n') {
            let Some(data) = line.strip_prefix(b"data: ") else {
                continue;
            };
            seen.events += 1;
            let text = std::str::from_utf8(data)?;
            if text.contains(r#""event":"ended""#) {
                seen.end_ms = ms(t0.elapsed());
                return Ok(seen);
            }
            if let Some(ts) = text
                .strip_prefix(r#"{"ts":""#)
                .and_then(|r| r.split('"').next())
            {
                if let Ok(ts) = DateTime::parse_from_rfc3339(ts) {
                    seen.latencies.push(ms_between(ts.with_timezone(&Utc), now));
                }
            }
        }
    }
    anyhow::bail!("the event stream of {url} ended without an `ended` event")
}

/// Upload the probe; its blake3.
async fn upload_probe(c: &Ctx, server: &Server) -> anyhow::Result<String> {
    let r = c
        .http
        .post(server.url("/api/v1/plugins"))
        .body(std::fs::read(&c.probe)?)
        .send()
        .await?;
    anyhow::ensure!(r.status().as_u16() == 201, "upload: {}", r.status());
    let v: Value = r.json().await?;
    Ok(v["blake3"].as_str().unwrap_or_default().to_owned())
}

/// Launch `config` on the probe; the record the API answered with.
async fn launch(
    c: &Ctx,
    server: &Server,
    digest: &str,
    config: Value,
) -> anyhow::Result<JobRecord> {
    let r = c
        .http
        .post(server.url("/api/v1/jobs"))
        .json(&json!({"plugin": digest, "config": config}))
        .send()
        .await?;
    let status = r.status();
    let body = r.bytes().await?;
    anyhow::ensure!(
        status.as_u16() == 201,
        "launch: {status} {}",
        String::from_utf8_lossy(&body)
    );
    Ok(serde_json::from_slice(&body)?)
}

/// Wait until the job's record (read from the workspace) says it ended.
async fn wait_ended(ws: &Workspace, rec: &JobRecord) -> anyhow::Result<JobRecord> {
    let paths = ws.job_paths(&rec.experiment, &rec.id);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(r) = read_json_opt::<JobRecord>(&paths.record())? {
            if r.status.is_terminal() {
                return Ok(r);
            }
        }
        anyhow::ensure!(Instant::now() < deadline, "job {} did not end", rec.id);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// The timestamp of a job's first metric point (its guest's first lab call
/// in the `bench`/`metric` scenario).
fn first_metric_ts(paths: &JobPaths) -> anyhow::Result<DateTime<Utc>> {
    let text = std::fs::read_to_string(paths.metrics())?;
    let first: Value = serde_json::from_str(
        text.lines()
            .next()
            .ok_or_else(|| anyhow::anyhow!("no metric point"))?,
    )?;
    Ok(serde_json::from_value(first["ts"].clone())?)
}

/// Section 2: one job's events to 100 SSE clients (and to 1).
async fn bench_sse(c: &Ctx) -> anyhow::Result<()> {
    let ws_dir = c.tmp.path().join("sse-ws");
    Workspace::open(&ws_dir)?;
    let server = Server::start(&c.bin, &ws_dir, &[])?;
    let digest = upload_probe(c, &server).await?;
    let lines: u64 = if c.quick { 2_000 } else { 10_000 };
    for clients in [1usize, 100] {
        let config = json!({"scenario": "bench", "target": "log", "count": lines});
        let t0 = Instant::now();
        let rec = launch(c, &server, &digest, config).await?;
        let url = server.url(&format!("/api/v1/jobs/{}/events", rec.id));
        let tasks: Vec<_> = (0..clients)
            .map(|_| tokio::spawn(sse_client(c.http.clone(), url.clone(), t0)))
            .collect();
        let mut seen = Vec::new();
        for t in tasks {
            seen.push(t.await??);
        }
        let events = seen[0].events;
        anyhow::ensure!(
            events as u64 > lines && seen.iter().all(|s| s.events == events),
            "clients saw {:?} events",
            seen.iter().map(|s| s.events).collect::<Vec<_>>()
        );
        let all_ms = seen.iter().map(|s| s.end_ms).fold(0.0, f64::max);
        let latencies: Vec<f64> = seen.iter().flat_map(|s| s.latencies.clone()).collect();
        let who = if clients == 1 {
            "1 client (anchor)".to_owned()
        } else {
            format!("{clients} clients")
        };
        one_row(
            &format!(
                "SSE, job logging {lines} lines, {who}: launch → every client got all {events} events"
            ),
            all_ms,
            "ms",
            "",
        );
        one_row(
            &format!("… {who}: events delivered"),
            (events * clients) as f64 / (all_ms / 1e3),
            "events/s",
            "",
        );
        lat_row(
            &format!("… {who}: log line written → received"),
            latencies,
            "ms-resolution log timestamps",
        );
    }
    Ok(())
}

/// Section 3: launch latency of the warm probe through the API, against the
/// library in process and a durable record write.
async fn bench_launch(c: &Ctx) -> anyhow::Result<()> {
    let n = if c.quick { 30 } else { 200 };
    let config = json!({"scenario": "bench", "target": "metric", "count": 1});

    // Anchor: one durable record write (temp file + fdatasync + rename).
    let dir = c.tmp.path().join("fsync");
    std::fs::create_dir_all(&dir)?;
    let bytes = serde_json::to_vec_pretty(&c.template)?;
    let mut fsync = Vec::new();
    for i in 0..n {
        let t = Instant::now();
        durable::write_atomic(&dir.join(format!("r{}.json", i % 8)), &bytes)?;
        fsync.push(ms(t.elapsed()));
    }

    // Anchor: `Host::start` in process, same probe, warm.
    let lib_ws = c.tmp.path().join("launch-lib-ws");
    let host = Host::with_cache(
        Workspace::open(&lib_ws)?,
        Some(CompileCache::new(c.tmp.path().join("lib-cache"))),
    )?;
    let probe = host.load(&c.probe)?;
    let (mut lib_first, mut lib_setup) = (Vec::new(), Vec::new());
    for i in 0..n + 5 {
        let mut spec = JobSpec::new(probe.clone());
        spec.config = config.as_object().unwrap().clone();
        let sent = Utc::now();
        let rec = host.run(spec).await?;
        let paths = host.workspace().job_paths(&rec.experiment, &rec.id);
        if i >= 5 {
            lib_setup.push(ms_between(sent, rec.created_at));
            lib_first.push(ms_between(sent, first_metric_ts(&paths)?));
        }
    }
    drop(host);

    let ws_dir = c.tmp.path().join("launch-ws");
    let ws = Workspace::open(&ws_dir)?;
    let server = Server::start(&c.bin, &ws_dir, &[])?;
    let digest = upload_probe(c, &server).await?;
    let (mut first, mut created, mut to_guest, mut round) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..n + 5 {
        let sent = Utc::now();
        let t = Instant::now();
        let rec = launch(c, &server, &digest, config.clone()).await?;
        let rt = ms(t.elapsed());
        let rec = wait_ended(&ws, &rec).await?;
        anyhow::ensure!(
            rec.status == labhost::JobStatus::Complete,
            "{:?}",
            rec.message
        );
        let paths = ws.job_paths(&rec.experiment, &rec.id);
        if i >= 5 {
            let guest = first_metric_ts(&paths)?;
            round.push(rt);
            created.push(ms_between(sent, rec.created_at));
            to_guest.push(ms_between(rec.created_at, guest));
            first.push(ms_between(sent, guest));
        }
    }
    let lib_p50 = p50(lib_first.clone());
    lat_row(
        "`POST /jobs` (warm Rust probe) → guest's first lab call",
        first,
        &format!(
            "target ≤ 1 ms; `Host::start` in process: p50 {} ms",
            fmt(lib_p50)
        ),
    );
    lat_row(
        "… request sent → job record built (`created_at`)",
        created,
        "HTTP, auth, settings, plugin lookup, grants, job directory",
    );
    lat_row(
        "… job record built → guest's first lab call",
        to_guest,
        "first record written durably, log and metric files, instantiation",
    );
    lat_row(
        "… `POST /jobs` HTTP round trip (201 with the record)",
        round,
        "",
    );
    lat_row(
        "… anchor: `Host::start` in process → guest's first lab call",
        lib_first,
        "",
    );
    lat_row(
        "… anchor: `Host::start` in process → job record built",
        lib_setup,
        "",
    );
    lat_row(
        &format!(
            "… anchor: durable write of a {} B record (temp + fdatasync + rename)",
            bytes.len()
        ),
        fsync,
        "",
    );
    Ok(())
}

/// Section 4: the downsampled metrics endpoint on a 1,000,000-point series.
async fn bench_metrics(c: &Ctx) -> anyhow::Result<()> {
    let points: u64 = if c.quick { 100_000 } else { 1_000_000 };
    let ws_dir = c.tmp.path().join("metrics-ws");
    Workspace::open(&ws_dir)?;
    std::fs::create_dir_all(ws_dir.join("experiments/default/jobs"))?;
    let (id, paths) = write_job(&ws_dir, "default", &c.template, Utc::now(), 0)?;
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(paths.metrics())?);
        let t0 = Utc::now() - chrono::Duration::seconds(points as i64);
        for i in 0..points {
            let ts = (t0 + chrono::Duration::milliseconds(i as i64 * 997))
                .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
            let value = 2.0 / (1.0 + i as f64 / 1000.0) + (i % 17) as f64 * 1e-3;
            writeln!(
                f,
                r#"{{"name":"loss","value":{value},"step":{i},"ts":"{ts}"}}"#
            )?;
        }
        f.flush()?;
    }
    let size = std::fs::metadata(paths.metrics())?.len();
    let n = if c.quick { 5 } else { 20 };
    let query = labhost::read::MetricQuery {
        max_points: Some(1000),
        ..Default::default()
    };
    let mut lib = Vec::new();
    for _ in 0..n.min(10) {
        let t = Instant::now();
        std::hint::black_box(labhost::read::metrics(&paths, &query)?);
        lib.push(ms(t.elapsed()));
    }
    let server = Server::start(&c.bin, &ws_dir, &[])?;
    let url = server.url(&format!("/api/v1/jobs/{id}/metrics?max_points=1000"));
    let pts: Value = serde_json::from_slice(&get(&c.http, &url).await?)?;
    let got = pts.as_array().map_or(0, Vec::len);
    lat_row(
        &format!(
            "`GET /jobs/{{id}}/metrics?max_points=1000`, {}k points ({} MB metrics.jsonl) → {got} points",
            points / 1000,
            size / 1_000_000
        ),
        time_gets(&c.http, &url, 1, n).await?,
        &format!(
            "`labhost::read::metrics` in process: p50 {} ms",
            fmt(p50(lib.clone()))
        ),
    );
    lat_row("… anchor: `labhost::read::metrics` in process", lib, "");
    Ok(())
}

/// Section 5: the dataset rows query on 1,000,000 rows.
async fn bench_rows(c: &Ctx) -> anyhow::Result<()> {
    let rows: usize = if c.quick { 100_000 } else { 1_000_000 };
    let ws_dir = c.tmp.path().join("rows-ws");
    Workspace::open(&ws_dir)?;
    let server = Server::start(&c.bin, &ws_dir, &[])?;
    let probe = c
        .http
        .get(server.url("/api/v1/datasets/none/rows"))
        .send()
        .await?;
    let text = probe.text().await?;
    if text.contains("no such route") {
        one_row(
            "dataset rows query: not measured (no dataset routes in this build)",
            f64::NAN,
            "",
            "",
        );
        return Ok(());
    }
    let labels = ["positive", "negative", "neutral"];
    let mut csv = String::with_capacity(rows * 48);
    csv.push_str("id,text,label,score,group\n");
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..rows {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let score = (x % 1_000_000) as f64 / 1e6;
        csv.push_str(&format!(
            "{i},review number {i},{},{score},g{}\n",
            labels[(x >> 20) as usize % 3],
            (x >> 40) % 10
        ));
    }
    let csv_mb = csv.len() as f64 / 1e6;
    let t = Instant::now();
    let r = c
        .http
        .post(server.url("/api/v1/datasets?name=big&format=csv"))
        .body(csv)
        .send()
        .await?;
    let status = r.status();
    let body = r.text().await?;
    anyhow::ensure!(status.as_u16() == 201, "upload: {status} {body}");
    one_row(
        &format!(
            "`POST /datasets?name=big&format=csv`, {}k rows ({csv_mb:.0} MB)",
            rows / 1000
        ),
        ms(t.elapsed()),
        "ms",
        "",
    );
    let n = if c.quick { 5 } else { 20 };
    let filtered = server.url(
        "/api/v1/datasets/big/rows?filter=score%20%3E%3D%200.5&filter=label%20%3D%20positive&order_by=score%20DESC&order_by=id%20ASC&max_items=20",
    );
    let page: Value = serde_json::from_slice(&get(&c.http, &filtered).await?)?;
    lat_row(
        &format!(
            "`GET /datasets/big/rows?filter=score >= 0.5&filter=label = positive&order_by=score DESC&order_by=id ASC&max_items=20` ({} match)",
            page["total"]
        ),
        time_gets(&c.http, &filtered, 1, n).await?,
        "",
    );
    let plain = server.url("/api/v1/datasets/big/rows?max_items=20");
    lat_row(
        "`GET /datasets/big/rows?max_items=20` (plain first page)",
        time_gets(&c.http, &plain, 1, n).await?,
        "",
    );
    let deep = server.url(&format!(
        "/api/v1/datasets/big/rows?max_items=20&offset={}",
        rows / 2
    ));
    lat_row(
        "`GET /datasets/big/rows?max_items=20&offset=N/2`",
        time_gets(&c.http, &deep, 1, n).await?,
        "",
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let value = |flag: &str| args.iter().skip_while(|a| *a != flag).nth(1).cloned();
    let only: Vec<String> = value("--only")
        .map(|s| s.split(',').map(str::to_owned).collect())
        .unwrap_or_default();
    let jobs: usize = value("--jobs")
        .map(|v| v.parse())
        .transpose()?
        .unwrap_or(if quick { 10_000 } else { 100_000 });
    let wanted = |s: &str| only.is_empty() || only.iter().any(|o| o == s);

    let probe = repo().join("guests/dist/rust/probe.wasm");
    anyhow::ensure!(probe.is_file(), "missing {}", probe.display());
    // target/<profile>/examples/bench_serve → target/<profile>/labhost
    let bin = std::env::current_exe()?
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("labhost"))
        .ok_or_else(|| anyhow::anyhow!("no target directory"))?;
    anyhow::ensure!(
        bin.is_file(),
        "{} is missing: build it first (`cargo build -p labhost-cli`, with --release for a release bench)",
        bin.display()
    );
    let tmp = tempfile::tempdir()?;
    let template = template_record(&bin, &probe, tmp.path())?;
    let c = Ctx {
        bin,
        probe,
        tmp,
        template,
        quick,
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .build()?,
    };
    let profile = if cfg!(debug_assertions) {
        "dev (labhost and its dependencies at opt-level 2, labhost-serve at 0)"
    } else {
        "release"
    };
    println!(
        "labhost serve bench, {}: {}; profile {profile}{}\n",
        Utc::now().format("%Y-%m-%d %H:%M UTC"),
        machine(),
        if quick { "; --quick" } else { "" }
    );
    println!("| measure | p50 | p99 | unit | n | anchor (same run) / target |");
    println!("|---|---|---|---|---|---|");
    if wanted("list") {
        bench_list(&c, jobs).await?;
    }
    if wanted("sse") {
        bench_sse(&c).await?;
    }
    if wanted("launch") {
        bench_launch(&c).await?;
    }
    if wanted("metrics") {
        bench_metrics(&c).await?;
    }
    if wanted("rows") {
        bench_rows(&c).await?;
    }
    Ok(())
}
