//! The read-only commands: they read the workspace and print tables or JSON.

use std::io::{Read, Seek, SeekFrom, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use labhost::store::read_json_opt;
use labhost::text::{clip, for_terminal, for_terminal_line as t};
use labhost::units::{human_bytes, human_elapsed};
use labhost::{JobRecord, Plugin, Workspace};
use serde::Serialize;

pub fn print_json<T: Serialize + ?Sized>(v: &T) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, v)?;
    writeln!(out)?;
    Ok(())
}

/// Print rows as aligned columns (last column unpadded). Every cell is
/// shown with [`t`] (control and invisible characters escaped, one line):
/// cells hold guest text.
pub fn table(header: &[&str], rows: Vec<Vec<String>>) {
    let escape = |cells: Vec<String>| -> Vec<String> {
        cells
            .into_iter()
            .map(|c| match t(&c) {
                std::borrow::Cow::Borrowed(_) => c,
                std::borrow::Cow::Owned(e) => e,
            })
            .collect()
    };
    let rows: Vec<Vec<String>> = rows.into_iter().map(escape).collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = std::io::stdout().lock();
    let mut line = String::new();
    let mut print = |cells: &[String]| {
        line.clear();
        let n = cells.len();
        for (i, c) in cells.iter().enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(c);
            // Padded by hand: a `{:<w$}` width over 65535 panics.
            if i + 1 < n {
                let pad = widths[i].saturating_sub(c.chars().count());
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
    };
    print(&header.iter().map(|h| h.to_string()).collect::<Vec<_>>());
    for r in &rows {
        print(r);
    }
}

/// Characters of a parameter default shown by `inspect` (the rest: `--json`).
const MAX_DEFAULT: usize = 60;
/// Characters of a description shown by `inspect`.
const MAX_SHOWN: usize = 2000;

pub fn plugin(p: &Plugin, json: bool) -> anyhow::Result<()> {
    if json {
        #[derive(Serialize)]
        struct Out<'a> {
            path: String,
            blake3: &'a str,
            #[serde(flatten)]
            info: &'a labhost::PluginInfo,
            imports: &'a [String],
        }
        return print_json(&Out {
            path: p.path.display().to_string(),
            blake3: &p.digest,
            info: &p.info,
            imports: &p.imports,
        });
    }
    let i = &p.info;
    println!("{} {} ({})", t(&i.name), t(&i.version), i.kind.as_str());
    let description = clip(&i.description, MAX_SHOWN);
    let mut clipped = matches!(description, std::borrow::Cow::Owned(_));
    if !i.description.is_empty() {
        println!("  {}", t(&description));
    }
    println!("blake3  {}", p.digest);
    if i.params.is_empty() {
        println!("parameters: none");
    } else {
        println!("parameters:");
        let rows = i
            .params
            .iter()
            .map(|p| {
                let default = p
                    .default
                    .as_ref()
                    .map(|d| d.to_string())
                    .unwrap_or_else(|| "(required)".into());
                let default = match clip(&default, MAX_DEFAULT) {
                    std::borrow::Cow::Owned(c) => {
                        clipped = true;
                        format!("{c} ({} bytes)", default.len())
                    }
                    std::borrow::Cow::Borrowed(_) => default,
                };
                let description = clip(&p.description, MAX_SHOWN);
                clipped |= matches!(description, std::borrow::Cow::Owned(_));
                vec![
                    format!("  {}", p.name),
                    p.ty.as_str().to_owned(),
                    default,
                    description.into_owned(),
                ]
            })
            .collect();
        table(&["  NAME", "TYPE", "DEFAULT", "DESCRIPTION"], rows);
    }
    if clipped {
        println!("(long values are clipped at {MAX_DEFAULT} characters, descriptions at {MAX_SHOWN}: `labhost inspect --json` shows them whole)");
    }
    println!(
        "lab interfaces{}: {}",
        p.api_version()
            .map(|v| format!(" (lab:api@{})", t(&v)))
            .unwrap_or_default(),
        t(&p.lab_imports().join(", "))
    );
    let other: Vec<&String> = p
        .imports
        .iter()
        .filter(|i| !i.starts_with("lab:api/"))
        .collect();
    if !other.is_empty() {
        println!(
            "other imports: {}",
            t(&other
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", "))
        );
    }
    Ok(())
}

pub fn jobs(ws: &Workspace, query: &labhost::query::JobQuery, json: bool) -> anyhow::Result<()> {
    let page = query.run(ws)?;
    if json {
        // An array of records (the page), as before paging existed.
        return print_json(&page.jobs);
    }
    let shown = page.jobs.len();
    let rows = page
        .jobs
        .iter()
        .map(|j| {
            vec![
                j.id.clone(),
                j.experiment.clone(),
                j.plugin.name.clone(),
                match &j.status_stage {
                    // The plugin's own stage while it runs (Labelbox-style).
                    Some(st) if !j.status.is_terminal() => format!("{} ({})", j.status, st.status),
                    _ => j.status.to_string(),
                },
                format!("{:.0}%", j.progress),
                j.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                j.message.clone().unwrap_or_default(),
            ]
        })
        .collect();
    table(
        &[
            "JOB",
            "EXPERIMENT",
            "PLUGIN",
            "STATUS",
            "PROGRESS",
            "CREATED",
            "MESSAGE",
        ],
        rows,
    );
    if shown < page.total {
        println!(
            "({shown} of {} matching jobs, from {}; see --offset/--limit)",
            page.total,
            query.offset + 1
        );
    }
    Ok(())
}

/// HTTP and secret grants, the status stage and HTTP use, as
/// `key         value` lines (`show` and the run summary).
pub fn grant_use_lines(r: &JobRecord) -> Vec<String> {
    let mut out = Vec::new();
    let g = &r.sandbox.grants;
    for h in &g.http {
        let headers: Vec<&str> = h.headers.iter().map(|(n, _)| n.as_str()).collect();
        out.push(format!(
            "grant       http {}{}",
            t(&h.url),
            if headers.is_empty() {
                String::new()
            } else {
                format!(" (host adds {})", t(&headers.join(", ")))
            }
        ));
    }
    for s in &g.secrets {
        out.push(format!("grant       secret {}", t(s)));
    }
    if let Some(st) = &r.status_stage {
        out.push(format!(
            "status      {}{}",
            t(&st.status),
            st.error_message
                .as_ref()
                .map(|e| format!(" (error: {})", t(e)))
                .unwrap_or_default()
        ));
    }
    let h = &r.http;
    if !h.is_unused() {
        out.push(format!(
            "http        {} request(s), {} denied, {} out, {} in, {} ms",
            h.requests,
            h.denied,
            human_bytes(h.bytes_out),
            human_bytes(h.bytes_in),
            h.millis
        ));
    }
    out
}

/// Elapsed time and an ETA from progress so far: `12.3s, ETA 4.0s`.
pub fn timing(r: &JobRecord) -> String {
    let t = labhost::read::timing(r, chrono::Utc::now());
    let mut out = human_elapsed(t.elapsed.as_secs_f64());
    if let Some(eta) = t.eta {
        out.push_str(&format!(", ETA {}", human_elapsed(eta.as_secs_f64())));
    }
    out
}

pub fn settings(s: &labhost::settings::Effective, json: bool) -> anyhow::Result<()> {
    let mut rows: Vec<(String, String)> = vec![("workers".into(), s.workers.to_string())];
    for (k, v) in s.limits.describe() {
        rows.push((format!("limits.{k}"), v));
    }
    rows.push((
        "paths.plugins".into(),
        s.plugins_dir
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
    ));
    let http: Vec<String> = s
        .http
        .iter()
        .map(|g| {
            let names: Vec<&str> = g.headers.iter().map(|(n, _)| n.as_str()).collect();
            if names.is_empty() {
                g.url.clone()
            } else {
                format!("{} (host adds {})", g.url, names.join(", "))
            }
        })
        .collect();
    rows.push(("grants.allow-http".into(), t(&http.join(", ")).into_owned()));
    rows.push((
        "grants.secrets".into(),
        t(&s.secrets.join(", ")).into_owned(),
    ));
    if json {
        let map: serde_json::Map<String, serde_json::Value> = rows
            .into_iter()
            .map(|(k, v)| {
                let src = s.sources.get(&k).cloned().unwrap_or_default();
                (k, serde_json::json!({ "value": v, "source": src }))
            })
            .collect();
        return print_json(&map);
    }
    if let Some(p) = &s.profile {
        println!("profile {p}");
    }
    let rows = rows
        .into_iter()
        .map(|(k, v)| {
            let src = s.sources.get(&k).cloned().unwrap_or_default();
            vec![k, if v.is_empty() { "-".into() } else { v }, src]
        })
        .collect();
    table(&["SETTING", "VALUE", "FROM"], rows);
    Ok(())
}

pub fn job(ws: &Workspace, id: &str, json: bool) -> anyhow::Result<()> {
    let (rec, paths) = ws.find_job(id)?;
    if json {
        return print_json(&rec);
    }
    let r = &rec;
    println!("job         {}", r.id);
    println!("experiment  {}", t(&r.experiment));
    println!(
        "status      {}{}",
        r.status,
        r.message
            .as_ref()
            .map(|m| format!(": {}", t(m)))
            .unwrap_or_default()
    );
    println!(
        "plugin      {} {} ({}) {}",
        t(&r.plugin.name),
        t(&r.plugin.version),
        r.plugin.kind,
        t(&r.plugin.path)
    );
    println!(
        "progress    {:.0}%{}",
        r.progress,
        r.stage
            .as_ref()
            .map(|s| format!(" ({})", t(s)))
            .unwrap_or_default()
    );
    if let Some(f) = r.failure {
        println!("failure     {f}");
    }
    if !r.hostname.is_empty() || r.executor.is_some() {
        let placed = r
            .executor
            .as_ref()
            .map(|e| match &e.job_id {
                Some(id) => format!(" ({} job {})", e.kind, t(id)),
                None => format!(" ({}, not started)", e.kind),
            })
            .unwrap_or_default();
        let host = if r.hostname.is_empty() {
            "-".to_owned()
        } else {
            format!("{} pid {}", t(&r.hostname), r.host_pid)
        };
        println!("host        {host}{placed}");
    }
    if let Some(p) = &r.pipeline {
        println!(
            "pipeline    run {} instance {} attempt {}",
            t(&p.run),
            t(&p.instance),
            p.attempt
        );
    }
    println!(
        "created     {}",
        r.created_at.format("%Y-%m-%d %H:%M:%S UTC")
    );
    println!(
        "{}     {}",
        if r.ended_at.is_some() {
            "ran for"
        } else {
            "running"
        },
        timing(r)
    );
    println!("config      {}", t(&r.config.to_string()));
    if let Some(res) = &r.resume {
        println!("resumed     from {}:{}", t(&res.job_id), t(&res.checkpoint));
    }
    let g = &r.sandbox.grants;
    for d in &g.datasets {
        println!("grant       dataset {}", t(d));
    }
    for m in &g.models {
        println!("grant       model {}", t(m));
    }
    for d in &g.dirs {
        println!(
            "grant       dir {} at {} ({})",
            t(&d.host.display().to_string()),
            t(&d.guest),
            if d.writable { "rw" } else { "ro" }
        );
    }
    for line in grant_use_lines(r) {
        println!("{line}");
    }
    if !r.metadata.is_empty() {
        println!(
            "metadata    {}",
            t(&serde_json::Value::Object(r.metadata.clone()).to_string())
        );
    }
    for (k, v) in &r.scores {
        println!("score       {} = {v}", t(k));
    }
    for a in &r.artifacts {
        println!(
            "artifact    {}  {}  {}",
            t(&a.name),
            human_bytes(a.size),
            t(&a.location)
        );
    }
    for c in &r.checkpoints {
        println!(
            "checkpoint  {}  {}  {}",
            t(&c.name),
            human_bytes(c.size),
            t(&c.location)
        );
    }
    for m in &r.models {
        println!("model       {}", t(m));
    }
    for d in &r.datasets {
        println!("dataset     {}", t(d));
    }
    for e in &r.evals {
        println!(
            "eval        {}  {} rows  mean score {:.4}  {}",
            t(&e.name),
            e.count,
            e.mean_score,
            t(&e.file.location)
        );
    }
    println!(
        "log         {} ({}{})",
        t(&paths.log().display().to_string()),
        human_bytes(r.log_bytes),
        if r.log_truncated { ", truncated" } else { "" }
    );
    Ok(())
}

/// Print the log; with `raw`, its bytes unchanged (for piping), else with
/// control and invisible characters escaped (the lines hold guest text).
pub fn logs(ws: &Workspace, id: &str, follow: bool, raw: bool) -> anyhow::Result<()> {
    let (_, paths) = ws.find_job(id)?;
    if raw {
        return logs_raw(&paths, follow);
    }
    // The library's follower: the same stream a server or a Python client
    // reads; lines are printed as the log file holds them, escaped.
    let mut follower = labhost::read::Follower::new(ws, paths, Default::default());
    let mut out = std::io::stdout().lock();
    loop {
        let batch = follower.poll()?;
        for u in &batch {
            if let labhost::JobEvent::Log { source, message } = &u.event {
                let ts =
                    u.ts.map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
                        .unwrap_or_default();
                let text = for_terminal(message).replace('\n', "\n                         ");
                writeln!(out, "{ts} {:<6} {text}", source.tag())?;
            }
        }
        out.flush()?;
        if !follow || follower.done() {
            return Ok(());
        }
        if batch.is_empty() {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// `logs --raw`: the file's bytes, as written.
fn logs_raw(paths: &labhost::store::JobPaths, follow: bool) -> anyhow::Result<()> {
    let path = paths.log();
    let mut file =
        std::fs::File::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut out = std::io::stdout().lock();
    let mut pos = 0u64;
    let mut buf = Vec::new();
    loop {
        file.seek(SeekFrom::Start(pos))?;
        buf.clear();
        file.read_to_end(&mut buf)?;
        pos += buf.len() as u64;
        // Read the record after draining: a job that ended has flushed all.
        let done = !follow
            || (read_json_opt::<JobRecord>(&paths.record())?
                .is_none_or(|r| r.status.is_terminal())
                && buf.is_empty());
        out.write_all(&buf)?;
        out.flush()?;
        if done {
            return Ok(());
        }
        if buf.is_empty() {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

pub fn metrics(
    ws: &Workspace,
    id: &str,
    q: &labhost::read::MetricQuery,
    json: bool,
) -> anyhow::Result<()> {
    let (_, paths) = ws.find_job(id)?;
    let points = labhost::read::metrics(&paths, q)
        .with_context(|| format!("cannot read {}", paths.metrics().display()))?;
    if json {
        return print_json(&points);
    }
    let rows = points
        .iter()
        .map(|p| {
            vec![
                p.name.clone(),
                p.step.map(|s| s.to_string()).unwrap_or_default(),
                p.value.to_string(),
            ]
        })
        .collect();
    table(&["NAME", "STEP", "VALUE"], rows);
    Ok(())
}

pub fn models(ws: &Workspace, json: bool) -> anyhow::Result<()> {
    let models = ws.models()?;
    if json {
        return print_json(&models);
    }
    let rows = models
        .iter()
        .map(|m| {
            vec![
                m.id.clone(),
                m.name.clone(),
                m.architecture.clone().unwrap_or_default(),
                m.pipeline_tag.clone().unwrap_or_default(),
                human_bytes(m.files.size),
                m.job_id.clone(),
            ]
        })
        .collect();
    table(
        &["ID", "NAME", "ARCHITECTURE", "PIPELINE", "SIZE", "JOB"],
        rows,
    );
    Ok(())
}

pub fn datasets(ws: &Workspace, json: bool) -> anyhow::Result<()> {
    let datasets = ws.datasets()?;
    if json {
        return print_json(&datasets);
    }
    let rows = datasets
        .iter()
        .map(|d| {
            vec![
                d.id.clone(),
                d.name.clone(),
                d.rows.map(|r| r.to_string()).unwrap_or_else(|| "-".into()),
                human_bytes(d.files.size),
                d.job_id.clone(),
                d.description.clone().unwrap_or_default(),
            ]
        })
        .collect();
    table(&["ID", "NAME", "ROWS", "SIZE", "JOB", "DESCRIPTION"], rows);
    Ok(())
}

pub fn evals(ws: &Workspace, id: &str, json: bool) -> anyhow::Result<()> {
    let (rec, _) = ws.find_job(id)?;
    if json {
        return print_json(&rec.evals);
    }
    let rows = rec
        .evals
        .iter()
        .map(|e| {
            vec![
                e.name.clone(),
                e.count.to_string(),
                format!("{:.4}", e.mean_score),
                e.file.location.clone(),
            ]
        })
        .collect();
    table(&["NAME", "ROWS", "MEAN SCORE", "FILE"], rows);
    Ok(())
}

/// Exit 0 when every stored item matches its record, 1 otherwise (one
/// line per problem: missing, extra and changed files, a recorded digest
/// that is not the manifest of the recorded files, unreadable records).
/// With a job: its stored files and the models and datasets it saved.
pub fn verify(ws: &Workspace, job: Option<&str>) -> anyhow::Result<ExitCode> {
    let root = ws.root();
    let mut checked = 0usize;
    let mut problems = Vec::new();
    let jobs = match job {
        Some(id) => vec![ws.find_job(id)?.0],
        None => {
            let scan = ws.scan_jobs(None)?;
            let entries = ws.unreadable_entries()?;
            for u in scan.unreadable.iter().chain(&entries) {
                problems.push(format!(
                    "unreadable record {}: {}",
                    u.path.display(),
                    u.error
                ));
            }
            scan.jobs
        }
    };
    let mut check = |what: String, stored: &labhost::store::StoredRecord| {
        checked += stored.files.len();
        for p in labhost::store::verify::verify_stored(root, stored) {
            problems.push(format!("{what}: {p}"));
        }
    };
    for j in &jobs {
        for s in j.stored() {
            check(format!("job {}", j.id), s);
        }
    }
    let saved_by = |job_id: &str| job.is_none() || jobs.iter().any(|j| j.id == job_id);
    for m in ws.models()? {
        if saved_by(&m.job_id) {
            check(format!("model {}", m.id), &m.files);
        }
    }
    for d in ws.datasets()? {
        if saved_by(&d.job_id) {
            check(format!("dataset {}", d.id), &d.files);
        }
    }
    for p in &problems {
        eprintln!("problem: {}", t(p));
    }
    if problems.is_empty() {
        println!("ok: {checked} stored files match their blake3 digests");
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "error: {} problems ({checked} stored files checked)",
            problems.len()
        );
        Ok(ExitCode::from(1))
    }
}

pub fn cache(cache: &labhost::CompileCache, json: bool) -> anyhow::Result<()> {
    let entries = cache
        .entries()
        .with_context(|| format!("cannot read {}", cache.dir().display()))?;
    if json {
        return print_json(&entries);
    }
    let rows = entries
        .iter()
        .map(|e| vec![e.key.clone(), human_bytes(e.size)])
        .collect();
    table(&["KEY (component blake3 - engine)", "SIZE"], rows);
    Ok(())
}

/// `labhost token ls`: id, name, scope, created, revoked — never a secret.
pub fn tokens(list: &[labhost::tokens::TokenInfo], json: bool) -> anyhow::Result<()> {
    if json {
        return print_json(list);
    }
    let rows = list
        .iter()
        .map(|tok| {
            vec![
                tok.id.clone(),
                t(&tok.name).into_owned(),
                tok.scope.to_string(),
                tok.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                tok.revoked_at
                    .map(|r| format!("revoked {}", r.format("%Y-%m-%d %H:%M:%S")))
                    .unwrap_or_else(|| "active".into()),
            ]
        })
        .collect();
    table(&["ID", "NAME", "SCOPE", "CREATED", "STATE"], rows);
    Ok(())
}
