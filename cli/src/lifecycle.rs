//! `labhost rm`, `gc`, `export`, `import`: argument parsing and rendering
//! over `labhost::lifecycle`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use labhost::lifecycle::{bundle, gc, remove};
use labhost::text::for_terminal_line;
use labhost::units::human_bytes;
use labhost::Workspace;

#[derive(Args)]
pub struct RmArgs {
    /// A job or pipeline run id (or unique id prefix).
    target: String,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct GcArgs {
    /// Print what would be removed; remove nothing.
    #[arg(long)]
    dry_run: bool,
    /// Leave leftovers younger than this (job directories without a
    /// record, temp files nobody's lock covers), e.g. 15m, 0s.
    #[arg(long, value_name = "DURATION", value_parser = min_age)]
    min_age: Option<std::time::Duration>,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct ExportArgs {
    /// A job or pipeline run id (or unique id prefix).
    target: String,
    /// The bundle to write (a tar archive).
    out: PathBuf,
}

#[derive(Args)]
pub struct ImportArgs {
    /// A bundle written by `labhost export`.
    bundle: PathBuf,
    #[arg(long)]
    json: bool,
}

/// A duration as `run` flags take them, or `0` / `0s` (no minimum age).
fn min_age(s: &str) -> anyhow::Result<std::time::Duration> {
    match s.trim() {
        "0" | "0s" => Ok(std::time::Duration::ZERO),
        t => labhost::units::parse_duration(t),
    }
}

fn ids(v: &[String]) -> String {
    v.iter()
        .map(|s| for_terminal_line(s).into_owned())
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a removal or import touched, in words.
fn contents(run: Option<&str>, jobs: &[String], models: &[String], datasets: &[String]) -> String {
    let mut s = match run {
        Some(r) => format!(
            "pipeline run {} with {} job{}",
            for_terminal_line(r),
            jobs.len(),
            if jobs.len() == 1 { "" } else { "s" }
        ),
        None => format!("job {}", ids(jobs)),
    };
    let mut saved = Vec::new();
    if !models.is_empty() {
        saved.push(format!("model(s) {}", ids(models)));
    }
    if !datasets.is_empty() {
        saved.push(format!("dataset(s) {}", ids(datasets)));
    }
    if !saved.is_empty() {
        s.push_str(&format!(" and {}", saved.join(", ")));
    }
    s
}

pub fn rm(ws: &Workspace, a: RmArgs) -> anyhow::Result<ExitCode> {
    let r = remove::remove(ws, &a.target)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!(
            "removed {}; freed {}",
            contents(r.run.as_deref(), &r.jobs, &r.models, &r.datasets),
            human_bytes(r.bytes)
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn gc(ws: &Workspace, a: GcArgs) -> anyhow::Result<ExitCode> {
    let opts = gc::GcOptions {
        dry_run: a.dry_run,
        min_age: a.min_age.unwrap_or(gc::DEFAULT_MIN_AGE),
    };
    let report = gc::gc(ws, &opts)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let verb = if a.dry_run { "would remove" } else { "removed" };
        for f in &report.found {
            println!(
                "{verb} {}  ({}, {})",
                for_terminal_line(&f.path),
                f.kind.describe(),
                human_bytes(f.bytes)
            );
        }
        if report.found.is_empty() {
            println!("nothing to remove");
        } else {
            println!(
                "{verb} {} leftover{}, {} {}",
                report.found.len(),
                if report.found.len() == 1 { "" } else { "s" },
                if a.dry_run { "freeing" } else { "freed" },
                human_bytes(report.bytes)
            );
        }
    }
    for e in &report.errors {
        eprintln!("error: could not remove {}", for_terminal_line(e));
    }
    Ok(if report.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub fn export(ws: &Workspace, a: ExportArgs) -> anyhow::Result<ExitCode> {
    let plan = bundle::plan_export(ws, &a.target)?;
    plan.write_file(&a.out)?;
    let m = &plan.manifest;
    println!(
        "exported {} ({} files, {}) to {}",
        contents(
            m.run.as_deref(),
            &m.jobs.iter().map(|j| j.id.clone()).collect::<Vec<_>>(),
            &m.models,
            &m.datasets
        ),
        m.files.len() + 1,
        human_bytes(m.bytes()),
        for_terminal_line(&a.out.display().to_string())
    );
    Ok(ExitCode::SUCCESS)
}

pub fn import(ws: &Workspace, a: ImportArgs) -> anyhow::Result<ExitCode> {
    let r = bundle::import_file(ws, &a.bundle)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!(
            "imported {} ({} files, {}, every digest verified)",
            contents(r.run.as_deref(), &r.jobs, &r.models, &r.datasets),
            r.files,
            human_bytes(r.bytes)
        );
    }
    Ok(ExitCode::SUCCESS)
}
