//! Cancels from another process and `kill -9` of the host at random points:
//! the workspace stays consistent, the killed job is reported INTERRUPTED,
//! and training resumes from its last checkpoint.
//!
//! The kill points are events, not delays: each round picks a number of
//! checkpoints and kills the host once the job's record on disk lists that
//! many, so what the kill interrupts does not depend on the trainer's speed.
//!
//! `LABHOST_CRASH_ROUNDS` sets the number of kills (default 20),
//! `LABHOST_CRASH_SEED` the seed of the kill points.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use labhost::store::verify::{verify_stored, Problem};
use labhost::{JobRecord, JobStatus, Workspace};
use labhost_tests::{guest, labhost_bin, stderr, stdout, Lab};

fn spawn_run(lab: &Lab, args: &[&str]) -> Child {
    Command::new(labhost_bin())
        .arg("--workspace")
        .arg(lab.root())
        .arg("run")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Wait until a job of `plugin` not in `known` is RUNNING; return its id.
fn wait_running(ws: &Workspace, plugin: &str, known: &[String]) -> String {
    let until = Instant::now() + Duration::from_secs(60);
    while Instant::now() < until {
        for j in ws.jobs(None).unwrap() {
            if j.plugin.name == plugin && j.status == JobStatus::Running && !known.contains(&j.id) {
                return j.id;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("no running {plugin} job appeared");
}

/// Wait until job `id` is RUNNING with at least `checkpoints` checkpoints
/// in its record on disk; return that record.
fn wait_checkpoints(ws: &Workspace, id: &str, checkpoints: usize) -> JobRecord {
    let until = Instant::now() + Duration::from_secs(120);
    loop {
        let (rec, _) = ws.find_job(id).unwrap();
        assert_eq!(
            rec.status,
            JobStatus::Running,
            "job {id} ended before its checkpoint {checkpoints}: {:?}",
            rec.message
        );
        if rec.checkpoints.len() >= checkpoints {
            return rec;
        }
        assert!(
            Instant::now() < until,
            "job {id} did not reach {checkpoints} checkpoints"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn cancel_from_another_process() {
    let lab = Lab::new();
    let probe = guest("rust", "probe").display().to_string();
    let mut child = spawn_run(&lab, &[&probe, "-c", "scenario=cooperative"]);
    let id = wait_running(lab.ws(), "probe", &[]);
    let o = lab.cli(&["cancel", &id, "--wait"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("CANCELLED"), "{}", stdout(&o));
    assert_eq!(
        child.wait().unwrap().code(),
        Some(4),
        "the run exits with the CANCELLED code"
    );
    let (rec, paths) = lab.ws().find_job(&id).unwrap();
    assert_eq!(
        (rec.status, rec.message.as_deref()),
        (JobStatus::Cancelled, Some("cancelled: stopped on request"))
    );
    assert!(
        !paths.cancel_request().exists(),
        "the request file is cleaned up"
    );
    // An ended job cannot be cancelled.
    let o = lab.cli(&["cancel", &id]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        format!("error: job {id} already ended (CANCELLED)\n")
    );
}

/// The invariants a crash must keep: every record parses, nothing listed
/// is half-written or altered, no temp file is listed.
fn check_invariants(root: &std::path::Path) -> Vec<JobRecord> {
    let ws = Workspace::open(root).expect("workspace opens after a crash");
    let jobs = ws.jobs(None).expect("every job.json parses");
    for j in &jobs {
        assert!(j.status.is_terminal(), "job {} left {}", j.id, j.status);
        for s in j.stored() {
            assert!(
                !s.location.contains(".tmp-"),
                "temp file listed: {}",
                s.location
            );
            assert_eq!(
                verify_stored(ws.root(), s),
                Vec::<Problem>::new(),
                "job {}",
                j.id
            );
        }
        // Leftover temp files of a dead job are removed on recovery.
        let paths = ws.job_paths(&j.experiment, &j.id);
        for d in [paths.dir.clone(), paths.artifacts(), paths.checkpoints()] {
            for e in std::fs::read_dir(d).unwrap() {
                let name = e.unwrap().file_name().to_string_lossy().into_owned();
                assert!(
                    !name.starts_with(".tmp-"),
                    "leftover {name} in job {}",
                    j.id
                );
            }
        }
    }
    for m in ws.models().expect("every model.json parses") {
        assert_eq!(verify_stored(ws.root(), &m.files), Vec::<Problem>::new());
    }
    for d in ws.datasets().expect("every dataset.json parses") {
        assert_eq!(verify_stored(ws.root(), &d.files), Vec::<Problem>::new());
    }
    jobs
}

#[test]
fn kill_9_at_random_points_keeps_the_workspace_consistent() {
    let rounds: usize = std::env::var("LABHOST_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let lab = Lab::new();
    let root = lab.root().to_owned();
    let gen = lab.cli(&[
        "run",
        &guest("rust", "datagen").display().to_string(),
        "-c",
        "rows=300",
    ]);
    assert!(gen.status.success(), "{}", stderr(&gen));
    let trainer = guest("rust", "trainer").display().to_string();
    let mut rng = fastrand::Rng::with_seed(
        std::env::var("LABHOST_CRASH_SEED")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(42),
    );
    let mut interrupted = Vec::new();
    for round in 0..rounds {
        let known: Vec<String> = Workspace::open(&root)
            .unwrap()
            .jobs(None)
            .unwrap()
            .into_iter()
            .map(|j| j.id)
            .collect();
        let mut child = spawn_run(
            &lab,
            &[
                &trainer,
                "--dataset",
                "sentiment",
                "-c",
                "epochs=400",
                "-c",
                "batch_size=4",
            ],
        );
        let id = wait_running(lab.ws(), "sentiment-trainer", &known);
        // The kill point: after 0 to 8 of the 400 epochs' checkpoints (the
        // first round after 3, so that some killed job has one to resume).
        let at = if round == 0 { 3 } else { rng.usize(0..=8) };
        let seen = wait_checkpoints(lab.ws(), &id, at);
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let jobs = check_invariants(&root);
        let rec = jobs.iter().find(|j| j.id == id).unwrap();
        // Seen running a few epochs into 400: the kill found it running.
        assert_eq!(
            rec.status,
            JobStatus::Interrupted,
            "round {round} (killed after {at} checkpoints): {:?}",
            rec.message
        );
        assert!(
            rec.message
                .as_deref()
                .unwrap()
                .contains("died while the job was running"),
            "{:?}",
            rec.message
        );
        // What was recorded before the kill is kept.
        assert!(
            rec.checkpoints.len() >= seen.checkpoints.len(),
            "round {round}: {} checkpoints recorded, {} after the kill",
            seen.checkpoints.len(),
            rec.checkpoints.len()
        );
        assert_eq!(
            rec.checkpoints[..seen.checkpoints.len()]
                .iter()
                .map(|c| &c.name)
                .collect::<Vec<_>>(),
            seen.checkpoints.iter().map(|c| &c.name).collect::<Vec<_>>(),
            "round {round}"
        );
        interrupted.push(rec.clone());
    }
    // Resume the interrupted job that got furthest.
    let best = interrupted
        .iter()
        .max_by_key(|j| j.checkpoints.len())
        .expect("rounds >= 1");
    let last = best
        .checkpoints
        .last()
        .expect("the killed job saved a checkpoint")
        .name
        .clone();
    let o = lab.cli(&[
        "run",
        &trainer,
        "--dataset",
        "sentiment",
        "-c",
        "epochs=400",
        "-c",
        "batch_size=4",
        "--resume",
        &best.id,
    ]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let jobs = check_invariants(&root);
    let resumed = jobs.last().unwrap();
    assert_eq!(resumed.status, JobStatus::Complete);
    assert_eq!(resumed.resume.as_ref().unwrap().checkpoint, last);
    assert_eq!(resumed.checkpoints.last().unwrap().name, "epoch-400");
}

/// A reader polling job.json and metrics.jsonl while the trainer rewrites
/// them never sees a torn record or line. The job runs until the reader
/// has seen the record rewritten with 5 different checkpoint counts (so the
/// reads did overlap the writes), then it is cancelled.
#[test]
fn readers_never_see_a_torn_record() {
    const VERSIONS: usize = 5;
    let lab = Lab::new();
    let datagen = lab.load("rust", "datagen");
    assert_eq!(
        lab.run(lab.spec(&datagen, serde_json::json!({}))).status,
        JobStatus::Complete
    );
    let trainer = lab.load("rust", "trainer");
    let mut spec = lab.spec(
        &trainer,
        serde_json::json!({"epochs": 1_000_000, "batch_size": 2}),
    );
    spec.sandbox.grants.datasets = vec!["sentiment".into()];
    let _guard = lab.rt.enter();
    let handle = lab.host.start(spec).unwrap();
    let (_, paths) = lab.ws().find_job(&handle.id).unwrap();
    let (seen_tx, seen_rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut reads = 0u64;
        let mut versions = std::collections::BTreeSet::new();
        loop {
            let bytes = std::fs::read(paths.record()).unwrap();
            let rec: JobRecord = serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("torn job.json after {reads} reads: {e}"));
            reads += 1;
            // metrics.jsonl is append-only: every complete line parses.
            let metrics = std::fs::read_to_string(paths.metrics()).unwrap_or_default();
            for line in metrics.split_inclusive('\n').filter(|l| l.ends_with('\n')) {
                serde_json::from_str::<serde_json::Value>(line)
                    .unwrap_or_else(|e| panic!("torn metrics line {line:?}: {e}"));
            }
            if rec.status.is_terminal() {
                return (versions, rec);
            }
            versions.insert(rec.checkpoints.len());
            if versions.len() == VERSIONS {
                let _ = seen_tx.send(());
            }
        }
    });
    // Cancel once the reader has seen enough versions (or it failed).
    if seen_rx.recv_timeout(Duration::from_secs(120)).is_err() {
        handle.cancel();
        lab.rt.block_on(handle.wait()).unwrap();
        reader.join().unwrap();
        panic!("the reader saw fewer than {VERSIONS} versions of the record");
    }
    handle.cancel();
    let done = lab.rt.block_on(handle.wait()).unwrap();
    let (versions, last) = reader.join().unwrap();
    assert!(versions.len() >= VERSIONS, "{versions:?}");
    assert_eq!(done.status, JobStatus::Cancelled, "{:?}", done.message);
    let message = done.message.as_deref().unwrap();
    assert!(
        message.starts_with("cancelled: stopped by request after epoch "),
        "{message}"
    );
    assert_eq!(
        (last.status, last.message.as_deref()),
        (done.status, Some(message)),
        "the reader's last read is the final record"
    );
}
