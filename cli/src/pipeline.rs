//! `labhost pipeline run|resume|status|ls|cancel`: a thin layer over
//! [`labhost::pipeline`].

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use labhost::pipeline::{self, InstanceStatus, PipelineEvent, PipelineRun, RunRecord, RunStatus};
use labhost::settings::Effective;
use labhost::{Host, Workspace};

use crate::show::{table, timing};
use crate::ExecutorKind;
use labhost::text::for_terminal_line as t;
use labhost::units::human_elapsed;

#[derive(Subcommand)]
pub enum Action {
    /// Check a pipeline file, create a run and run it.
    Run {
        file: PathBuf,
        /// Jobs at once (default: the file's `workers`, else the workspace setting).
        #[arg(long)]
        workers: Option<usize>,
        /// Where the jobs run: here, or as Slurm jobs (`[executor.slurm]`).
        #[arg(long, value_enum, default_value = "local")]
        executor: ExecutorKind,
        /// Print pipeline events as JSON lines instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Go on with a run: skip completed stages, run the others again (a
    /// trainer resumes from its last checkpoint).
    Resume {
        run: String,
        #[arg(long)]
        workers: Option<usize>,
        #[arg(long, value_enum, default_value = "local")]
        executor: ExecutorKind,
        #[arg(long)]
        json: bool,
    },
    /// Show a run: every stage instance with its status, progress, time and ETA.
    Status {
        run: String,
        #[arg(long)]
        json: bool,
        /// Print the status again every second until the run ends.
        #[arg(long, conflicts_with = "json")]
        watch: bool,
    },
    /// List pipeline runs.
    Ls {
        #[arg(long)]
        json: bool,
    },
    /// Ask the process running a run to cancel it (its jobs get a cancel).
    Cancel { run: String },
}

pub fn main(ws: Workspace, settings: &Effective, action: Action) -> anyhow::Result<ExitCode> {
    match action {
        Action::Run {
            file,
            workers,
            executor,
            json,
        } => execute(ws, settings, executor, json, |host| {
            PipelineRun::create(host, &file, settings, check_workers(workers)?)
        }),
        Action::Resume {
            run,
            workers,
            executor,
            json,
        } => execute(ws, settings, executor, json, |host| {
            PipelineRun::resume(host, &run, check_workers(workers)?)
        }),
        Action::Status { run, json, watch } => {
            crate::sweep_slurm(&ws);
            let (mut rec, _) = pipeline::find_run(&ws, &run)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rec)?);
                return Ok(exit_code(rec.status));
            }
            status(&ws, &rec);
            while watch && rec.status == RunStatus::Running {
                std::thread::sleep(std::time::Duration::from_secs(1));
                ws.recover_interrupted()?; // a runner's jobs die with it
                rec = pipeline::find_run(&ws, &rec.id)?.0;
                println!();
                status(&ws, &rec);
            }
            Ok(exit_code(rec.status))
        }
        Action::Ls { json } => {
            let runs = pipeline::list_runs(&ws)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&runs)?);
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "{:<20}  {:<16}  {:<11}  {:<19}  STAGES",
                "RUN", "PIPELINE", "STATUS", "CREATED"
            );
            for r in runs {
                println!(
                    "{:<20}  {:<16}  {:<11}  {:<19}  {}/{} complete",
                    t(&r.id),
                    t(&r.pipeline),
                    r.status.as_str(),
                    r.created_at.format("%Y-%m-%d %H:%M:%S"),
                    r.count(InstanceStatus::Complete),
                    r.instances.len()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Action::Cancel { run } => {
            let rec = pipeline::request_cancel(&ws, &run)?;
            println!("cancel requested for pipeline run {}", rec.id);
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn check_workers(w: Option<usize>) -> anyhow::Result<Option<usize>> {
    if w == Some(0) {
        anyhow::bail!("--workers must be at least 1");
    }
    Ok(w)
}

/// Exit codes as for jobs: 0 complete, 3 failed, 4 cancelled, 5 interrupted/running.
fn exit_code(s: RunStatus) -> ExitCode {
    match s {
        RunStatus::Complete => ExitCode::SUCCESS,
        RunStatus::Failed => ExitCode::from(3),
        RunStatus::Cancelled => ExitCode::from(4),
        RunStatus::Running | RunStatus::Interrupted => ExitCode::from(5),
    }
}

fn execute(
    ws: Workspace,
    settings: &Effective,
    executor: ExecutorKind,
    json: bool,
    open: impl FnOnce(&Host) -> anyhow::Result<PipelineRun>,
) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let host = Host::new(ws)?;
        let mut run = open(&host)?;
        if executor == ExecutorKind::Slurm {
            let slurm = labhost::slurm::SlurmExecutor::new(host.clone(), settings.slurm.clone())?;
            run = run.with_executor(std::sync::Arc::new(slurm));
        }
        let rec = run.record();
        if !json {
            let todo = rec
                .instances
                .iter()
                .filter(|i| i.status != InstanceStatus::Complete)
                .count();
            println!(
                "pipeline {}: run {} ({} jobs to run of {}, {} worker{}, experiment {})",
                t(&rec.pipeline),
                rec.id,
                todo,
                rec.instances.len(),
                rec.workers,
                if rec.workers == 1 { "" } else { "s" },
                t(&rec.experiment)
            );
        }
        let canceller = run.canceller();
        crate::cancel_on_ctrl_c(
            "cancelling the pipeline (resume it later with `labhost pipeline resume`)...",
            move || canceller.cancel(),
        );
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let printer = tokio::spawn(async move {
            while let Some(e) = rx.recv().await {
                print_event(&e, json);
            }
        });
        let result = run.execute(Some(tx)).await;
        let _ = printer.await;
        let rec = result?;
        if json {
            println!(
                "{}",
                serde_json::json!({"event": "run-ended", "run": rec.id, "status": rec.status, "message": rec.message})
            );
        } else {
            println!();
            status(host.workspace(), &rec);
        }
        Ok(exit_code(rec.status))
    })
}

fn print_event(e: &PipelineEvent, json: bool) {
    if json {
        let v = match e {
            PipelineEvent::Started {
                instance,
                job_id,
                attempt,
                resumed_from,
                ..
            } => serde_json::json!({
                "event": "started", "instance": instance, "job": job_id, "attempt": attempt, "resumed_from": resumed_from,
            }),
            PipelineEvent::Ended {
                instance,
                status,
                message,
                job_id,
                seconds,
                ..
            } => serde_json::json!({
                "event": "ended", "instance": instance, "status": status, "message": message, "job": job_id, "seconds": seconds,
            }),
            PipelineEvent::Retrying {
                instance,
                failed_attempt,
                delay,
                message,
                ..
            } => serde_json::json!({
                "event": "retrying", "instance": instance, "failed_attempt": failed_attempt, "delay_seconds": delay.as_secs_f64(), "message": message,
            }),
            PipelineEvent::Blocked {
                instance, reason, ..
            } => serde_json::json!({
                "event": "blocked", "instance": instance, "reason": reason,
            }),
        };
        println!("{v}");
        return;
    }
    // Titles hold config values; messages hold what the plugin said.
    match e {
        PipelineEvent::Started {
            title,
            job_id,
            attempt,
            resumed_from,
            ..
        } => {
            let mut extra = String::new();
            if *attempt > 1 {
                extra.push_str(&format!(", attempt {attempt}"));
            }
            if let Some(r) = resumed_from {
                extra.push_str(&format!(", resuming from {}", t(r)));
            }
            println!("  ▶ {:<28} job {job_id}{extra}", t(title));
        }
        PipelineEvent::Ended {
            title,
            status,
            message,
            seconds,
            ..
        } => {
            let mark = if *status == InstanceStatus::Complete {
                "✓"
            } else {
                "✗"
            };
            println!(
                "  {mark} {:<28} {status} in {}: {}",
                t(title),
                human_elapsed(*seconds),
                t(message)
            );
        }
        PipelineEvent::Retrying {
            title,
            failed_attempt,
            delay,
            message,
            ..
        } => {
            println!(
                "  ↻ {:<28} attempt {failed_attempt} failed: {}; retrying in {}",
                t(title),
                t(message),
                human_elapsed(delay.as_secs_f64())
            );
        }
        PipelineEvent::Blocked { title, reason, .. } => {
            println!("  ⊘ {:<28} BLOCKED: {}", t(title), t(reason));
        }
    }
}

/// The status view of a run.
pub fn status(ws: &Workspace, rec: &RunRecord) {
    let total = rec.instances.len();
    let done = rec.count(InstanceStatus::Complete);
    let end = rec
        .ended_at
        .filter(|_| rec.status != RunStatus::Running && rec.status != RunStatus::Interrupted);
    let secs =
        (end.unwrap_or_else(chrono::Utc::now) - rec.created_at).num_milliseconds() as f64 / 1000.0;
    println!(
        "run {}  pipeline {}  {}  {done}/{total} complete  {}{}",
        t(&rec.id),
        t(&rec.pipeline),
        rec.status,
        human_elapsed(secs),
        if rec.resumes > 0 {
            format!("  resumed {}×", rec.resumes)
        } else {
            String::new()
        }
    );
    if rec.status == RunStatus::Interrupted {
        println!(
            "  the process running it (pid {}) is gone: `labhost pipeline resume {}` goes on",
            rec.runner_pid,
            t(&rec.id)
        );
    }
    let mut rows = Vec::new();
    for inst in &rec.instances {
        let live = pipeline::live(ws, &rec.experiment, inst);
        // A queued retry's last job is history: its progress is not the instance's.
        let current = !matches!(
            inst.status,
            InstanceStatus::Queued | InstanceStatus::Waiting
        );
        let (progress, time, job, counters) = match &live {
            Some(l) if !current => ("-".into(), "-".into(), l.job.id.clone(), String::new()),
            Some(l) => (
                format!(
                    "{:.0}%{}",
                    l.job.progress,
                    l.job
                        .stage
                        .as_ref()
                        .map(|s| format!(" {s}"))
                        .unwrap_or_default()
                ),
                timing(&l.job),
                l.job.id.clone(),
                l.latest_metrics
                    .iter()
                    .map(|(k, v)| format!("{k}={}", short_num(*v)))
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            None => ("-".into(), "-".into(), "-".into(), String::new()),
        };
        let status = match (inst.status, rec.status) {
            (InstanceStatus::Running, RunStatus::Interrupted) => "INTERRUPTED".to_owned(),
            // The plugin's own status stage while it runs.
            (InstanceStatus::Running, _) => {
                match live.as_ref().and_then(|l| l.job.status_stage.as_ref()) {
                    Some(st) => format!("RUNNING ({})", t(&st.status)),
                    None => "RUNNING".to_owned(),
                }
            }
            (s, _) => s.to_string(),
        };
        let tries = if inst.attempts.len() > 1 {
            format!(" ×{}", inst.attempts.len())
        } else {
            String::new()
        };
        let note = inst.message.clone().unwrap_or_default();
        let note = match (counters.is_empty(), note.is_empty()) {
            (true, _) => note,
            (false, true) => counters,
            (false, false) => format!("{counters} | {note}"),
        };
        rows.push([
            inst.title(),
            format!("{status}{tries}"),
            progress,
            time,
            job,
            note,
        ]);
    }
    table(
        &["STAGE", "STATUS", "PROGRESS", "TIME", "JOB", "NOTE"],
        rows.into_iter().map(|r| r.to_vec()).collect(),
    );
}

pub fn short_num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v:.4}")
    }
}
