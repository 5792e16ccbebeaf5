//! Deleting a job or a pipeline run with everything it stored: its
//! directory, and the models and datasets it saved.
//!
//! Refused (with [`Refused`], naming what is in the way) while the job or
//! run is running, while a job it saved a model or dataset for is granted
//! to a running job, or a running job resumes from one of its checkpoints,
//! or a running pipeline run will still use one of its entries. A job of a
//! pipeline run is deleted with its run.
//!
//! Crash-safe: under the exclusive lifecycle lock, each directory is moved
//! into `<workspace>/.trash` with one rename (the run's directory first,
//! then each job's, then the registry entries), then removed. A crash
//! leaves either the whole job or none of it visible; registry entries
//! whose job is gone are removed by [`super::gc`].

use std::collections::BTreeSet;
use std::path::PathBuf;

use anyhow::Context;
use serde::Serialize;

use super::{LockMode, Refused, Target};
use crate::pipeline::{Input, RunPaths, RunRecord};
use crate::store::{read_json_opt, EntryRef, JobPaths, JobRecord, Registry, Workspace};

/// What a removal deleted.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Removed {
    /// The pipeline run, when a run was removed.
    pub run: Option<String>,
    pub jobs: Vec<String>,
    pub models: Vec<String>,
    pub datasets: Vec<String>,
    /// Disk space freed (allocated blocks).
    pub bytes: u64,
}

/// One job to remove and the registry entries it saved.
struct Doomed {
    rec: JobRecord,
    paths: JobPaths,
    entries: Vec<(Registry, String)>,
}

/// Delete the job or pipeline run `id` (a unique id prefix will do).
pub fn remove(ws: &Workspace, id: &str) -> anyhow::Result<Removed> {
    let target = super::find(ws, id)?;
    let lock = super::lock(ws, LockMode::Exclusive).context("cannot take the lifecycle lock")?;
    // Decided on what is on disk now, under the lock.
    let (run, jobs) = match target {
        Target::Job(rec, _) => {
            let (rec, paths) = ws.job(&rec.experiment, &rec.id)?;
            if let Some(p) = &rec.pipeline {
                if crate::pipeline::record::runs_dir(ws).join(&p.run).is_dir() {
                    return Err(Refused(format!(
                        "job {} belongs to pipeline run {} ({}); remove the run to remove its jobs",
                        rec.id, p.run, p.instance
                    ))
                    .into());
                }
            }
            (None, vec![(rec, paths)])
        }
        Target::Run(rec, paths) => {
            if paths.is_locked() {
                return Err(Refused(format!(
                    "pipeline run {} is running (pid {}); cancel it and wait for its end first",
                    rec.id, rec.runner_pid
                ))
                .into());
            }
            let jobs = run_jobs(ws, &rec);
            (Some((*rec, paths)), jobs)
        }
    };
    let mut doomed = Vec::new();
    for (rec, paths) in jobs {
        if crate::store::may_be_running(&rec, &paths) {
            return Err(Refused(format!(
                "job {} is running; cancel it and wait for its end first",
                rec.id
            ))
            .into());
        }
        let entries = saved_entries(ws, &rec);
        doomed.push(Doomed {
            rec,
            paths,
            entries,
        });
    }
    let users = dependents(ws, run.as_ref().map(|(r, _)| r.id.as_str()), &doomed)?;
    if !users.is_empty() {
        let what = match &run {
            Some((r, _)) => format!("pipeline run {}", r.id),
            None => format!("job {}", doomed[0].rec.id),
        };
        return Err(Refused(format!("cannot remove {what}: {}", users.join("; "))).into());
    }

    // Everything moves to the trash under the lock; it is removed after.
    let mut removed = Removed::default();
    let mut trashed: Vec<PathBuf> = Vec::new();
    let mut bytes = 0u64;
    let mut trash = |p: &std::path::Path| -> anyhow::Result<()> {
        // Measured here: another process's `Workspace::open` may empty the
        // trash before this one does.
        bytes += crate::store::tree::usage(p).map(|u| u.bytes).unwrap_or(0);
        if let Some(t) = ws
            .move_to_trash(p)
            .with_context(|| format!("cannot move {} to the trash", p.display()))?
        {
            trashed.push(t);
        }
        Ok(())
    };
    if let Some((rec, paths)) = &run {
        trash(&paths.dir)?;
        removed.run = Some(rec.id.clone());
    }
    for d in &doomed {
        trash(&d.paths.dir)?;
        removed.jobs.push(d.rec.id.clone());
    }
    for d in &doomed {
        for (reg, id) in &d.entries {
            trash(&ws.registry_dir(*reg).join(id))?;
            match reg {
                Registry::Models => removed.models.push(id.clone()),
                Registry::Datasets => removed.datasets.push(id.clone()),
            }
        }
    }
    removed.bytes = bytes;
    drop(lock);
    for t in trashed {
        let _ = crate::store::tree::remove_tree(&t);
    }
    Ok(removed)
}

/// The jobs of a run that still exist (every attempt of every instance).
pub(crate) fn run_jobs(ws: &Workspace, rec: &RunRecord) -> Vec<(JobRecord, JobPaths)> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for i in &rec.instances {
        for a in &i.attempts {
            let Some(id) = &a.job_id else { continue };
            if !seen.insert(id.clone()) {
                continue;
            }
            if let Ok(found) = ws
                .job(&rec.experiment, id)
                .or_else(|_| ws.find_job(id).and_then(|(r, p)| exact(r, p, id)))
            {
                out.push(found);
            }
        }
    }
    out
}

fn exact(r: JobRecord, p: JobPaths, id: &str) -> anyhow::Result<(JobRecord, JobPaths)> {
    anyhow::ensure!(r.id == id, "not the job");
    Ok((r, p))
}

/// The registry entries job `rec` saved: those its record lists, and
/// those published after its last snapshot (`<name>-<job id>`, saved by it).
pub fn saved_entries(ws: &Workspace, rec: &JobRecord) -> Vec<(Registry, String)> {
    let mut out = Vec::new();
    for (reg, listed) in [
        (Registry::Models, &rec.models),
        (Registry::Datasets, &rec.datasets),
    ] {
        let mut ids: BTreeSet<String> = listed.iter().cloned().collect();
        let suffix = format!("-{}", rec.id);
        if let Ok(rd) = std::fs::read_dir(ws.registry_dir(reg)) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') || !name.ends_with(&suffix) {
                    continue;
                }
                if let Ok(Some(entry)) = ws.registry_entry(reg, &name) {
                    if entry.job_id == rec.id {
                        ids.insert(name);
                    }
                }
            }
        }
        out.extend(
            ids.into_iter()
                .filter(|id| ws.registry_dir(reg).join(id).exists())
                .map(|id| (reg, id)),
        );
    }
    out
}

/// Running jobs and pipeline runs that use what `doomed` holds, as one
/// phrase each. Jobs of the run being removed (`own_run`) do not count.
fn dependents(
    ws: &Workspace,
    own_run: Option<&str>,
    doomed: &[Doomed],
) -> anyhow::Result<Vec<String>> {
    let ids: BTreeSet<&str> = doomed.iter().map(|d| d.rec.id.as_str()).collect();
    let mut users: Vec<(String, BTreeSet<String>)> = Vec::new();
    let mut add = |what: String, who: String| match users.iter_mut().find(|(w, _)| *w == what) {
        Some((_, set)) => {
            set.insert(who);
        }
        None => users.push((what, BTreeSet::from([who]))),
    };
    let granted = |reg: Registry, id: &str| {
        doomed
            .iter()
            .any(|d| d.entries.iter().any(|(r, e)| *r == reg && e == id))
    };
    for (_, jid, paths) in ws.job_dirs()? {
        if ids.contains(jid.as_str()) || paths.has_ended_marker() {
            continue;
        }
        let Ok(Some(rec)) = read_json_opt::<JobRecord>(&paths.record()) else {
            continue;
        };
        if !crate::store::may_be_running(&rec, &paths) {
            continue;
        }
        for (reg, list) in [
            (Registry::Models, &rec.sandbox.grants.models),
            (Registry::Datasets, &rec.sandbox.grants.datasets),
        ] {
            for e in list.iter().filter(|e| granted(reg, e)) {
                add(
                    format!("{} `{e}` is granted to running job", reg.noun()),
                    rec.id.clone(),
                );
            }
        }
        if let Some(r) = rec
            .resume
            .as_ref()
            .filter(|r| ids.contains(r.job_id.as_str()))
        {
            add(
                format!("a checkpoint of job {} is resumed by running job", r.job_id),
                rec.id.clone(),
            );
        }
    }
    for run in crate::pipeline::list_runs(ws)? {
        if Some(run.id.as_str()) == own_run {
            continue;
        }
        let paths = RunPaths {
            dir: crate::pipeline::record::runs_dir(ws).join(&run.id),
        };
        if !paths.is_locked() {
            continue;
        }
        for i in run.instances.iter().filter(|i| !i.status.is_settled()) {
            for (reg, inputs) in [
                (Registry::Models, &i.models),
                (Registry::Datasets, &i.datasets),
            ] {
                for input in inputs {
                    if let Input::Registry(e) = input {
                        if granted(reg, e) {
                            add(
                                format!("{} `{e}` is an input of running pipeline run", reg.noun()),
                                run.id.clone(),
                            );
                        }
                    }
                }
            }
        }
    }
    Ok(users
        .into_iter()
        .map(|(what, who)| {
            let who: Vec<String> = who.into_iter().collect();
            let what = if who.len() > 1 {
                what.replacen("running job", "running jobs", 1).replacen(
                    "running pipeline run",
                    "running pipeline runs",
                    1,
                )
            } else {
                what
            };
            format!("{what} {}", who.join(", "))
        })
        .collect())
}

/// The entry records of `reg` whose job no longer exists (for `gc`).
pub(crate) fn entry_job_exists(ws: &Workspace, e: &EntryRef) -> bool {
    crate::names::check_name("experiment", &e.experiment).is_ok()
        && crate::names::check_name("id", &e.job_id).is_ok()
        && ws.job_paths(&e.experiment, &e.job_id).dir.is_dir()
}
