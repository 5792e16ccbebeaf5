//! Cancels from another process and `kill -9` of the host at random points:
//! the workspace stays consistent, the killed job is reported INTERRUPTED,
//! and training resumes from its last checkpoint.
//!
//! `LABHOST_CRASH_ROUNDS` sets the number of kills (default 20).

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
        std::thread::sleep(Duration::from_millis(rng.u64(0..400)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let jobs = check_invariants(&root);
        let rec = jobs.iter().find(|j| j.id == id).unwrap();
        assert!(
            matches!(rec.status, JobStatus::Interrupted | JobStatus::Complete),
            "round {round}: {}",
            rec.status
        );
        if rec.status == JobStatus::Interrupted {
            assert!(rec
                .message
                .as_deref()
                .unwrap()
                .contains("died while the job was running"));
            interrupted.push(rec.clone());
        }
    }
    println!("{} of {rounds} kills hit a running job", interrupted.len());
    // Resume the interrupted job that got furthest.
    let best = interrupted
        .iter()
        .max_by_key(|j| j.checkpoints.len())
        .expect("some job was interrupted");
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

#[test]
fn readers_never_see_a_torn_record() {
    let lab = Lab::new();
    let datagen = lab.load("rust", "datagen");
    assert_eq!(
        lab.run(lab.spec(&datagen, serde_json::json!({}))).status,
        JobStatus::Complete
    );
    let trainer = lab.load("rust", "trainer");
    let mut spec = lab.spec(
        &trainer,
        serde_json::json!({"epochs": 150, "batch_size": 2}),
    );
    spec.sandbox.grants.datasets = vec!["sentiment".into()];
    let _guard = lab.rt.enter();
    let handle = lab.host.start(spec).unwrap();
    let (_, paths) = lab.ws().find_job(&handle.id).unwrap();
    let reader = std::thread::spawn(move || {
        let (mut reads, mut log_reads) = (0u64, 0u64);
        loop {
            let bytes = std::fs::read(paths.record()).unwrap();
            let rec: JobRecord = serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("torn job.json after {reads} reads: {e}"));
            reads += 1;
            // metrics.jsonl is append-only: every complete line parses.
            let metrics = std::fs::read_to_string(paths.metrics()).unwrap_or_default();
            for line in metrics.split_inclusive('\n').filter(|l| l.ends_with('\n')) {
                serde_json::from_str::<serde_json::Value>(line).unwrap();
            }
            log_reads += 1;
            if rec.status.is_terminal() {
                return (reads, log_reads, rec);
            }
        }
    });
    let done = lab.rt.block_on(handle.wait()).unwrap();
    let (reads, _, last) = reader.join().unwrap();
    assert_eq!(done.status, JobStatus::Complete, "{:?}", done.message);
    assert_eq!(last.status, JobStatus::Complete);
    assert!(reads > 10, "the reader raced the writer ({reads} reads)");
}
