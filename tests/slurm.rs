//! Jobs and pipelines on a real Slurm cluster (`--executor slurm`): a
//! one-node cluster on 127.0.0.1 started by `scripts/slurm.sh start`
//! (scripts/test.sh does). Every test shares it, so they run one at a
//! time; the lost-node test kills and restarts its `slurmd`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use labhost::{JobRecord, JobStatus};
use labhost_tests::{guest, labhost_bin, repo_root, stderr, stdout, Lab};

/// One test at a time on the one node.
static CLUSTER: Mutex<()> = Mutex::new(());

/// The running test cluster (its `slurm.conf`), or a clear failure.
struct Cluster {
    conf: PathBuf,
    _turn: std::sync::MutexGuard<'static, ()>,
}

impl Cluster {
    fn get() -> Cluster {
        let turn = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
        let conf = std::env::var_os("SLURM_CONF")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/tmp/labhost-slurm/slurm.conf"));
        let c = Cluster { conf, _turn: turn };
        let out = c.cmd("sinfo").args(["-h", "-o", "%T"]).output();
        match out {
            Ok(o) if o.status.success() => {}
            _ => panic!(
                "no Slurm cluster at {}: start one with scripts/slurm.sh start (scripts/test.sh does)",
                c.conf.display()
            ),
        }
        // A node left down by an earlier run is brought back first.
        c.wait_node_up();
        c
    }

    fn dir(&self) -> &Path {
        self.conf.parent().unwrap()
    }

    fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("SLURM_CONF", &self.conf);
        c
    }

    /// `labhost` against `lab`'s workspace, with this cluster.
    fn labhost(&self, lab: &Lab, args: &[&str]) -> Command {
        let mut c = self.cmd(labhost_bin().to_str().unwrap());
        c.arg("--workspace").arg(lab.root()).args(args);
        c
    }

    fn run(&self, lab: &Lab, args: &[&str]) -> Output {
        self.labhost(lab, args).output().unwrap()
    }

    fn spawn(&self, lab: &Lab, args: &[&str]) -> Child {
        self.labhost(lab, args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Slurm's state of a job (`squeue -t all`).
    fn state(&self, slurm_id: &str) -> String {
        let o = self
            .cmd("squeue")
            .args(["-h", "-t", "all", "-o", "%T", "-j", slurm_id])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).trim().to_owned()
    }

    /// Slurm's state of a job once it is over: a job whose record ended
    /// may still be COMPLETING for a moment while its host process exits.
    fn end_state(&self, slurm_id: &str) -> String {
        wait_for("Slurm to see the job end", Duration::from_secs(60), || {
            let s = self.state(slurm_id);
            (!s.is_empty() && !labhost::slurm::liveness::is_active(&s) && s != "COMPLETING")
                .then_some(s)
        })
    }

    /// `scontrol show job`'s `KEY=value`.
    fn job_field(&self, slurm_id: &str, key: &str) -> String {
        let o = self
            .cmd("scontrol")
            .args(["-o", "show", "job", slurm_id])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&o.stdout).into_owned();
        text.split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("no {key} in {text}"))
            .to_owned()
    }

    fn node_state(&self) -> String {
        let o = self.cmd("sinfo").args(["-h", "-o", "%T"]).output().unwrap();
        String::from_utf8_lossy(&o.stdout).trim().to_owned()
    }

    fn wait_node_up(&self) {
        let script = repo_root().join("scripts/slurm.sh");
        if self.node_state().contains("down") || !pid_alive(&self.dir().join("slurmd.pid")) {
            let o = Command::new(&script)
                .args(["restart-slurmd", self.dir().to_str().unwrap()])
                .output()
                .unwrap();
            assert!(o.status.success(), "{}", stderr(&o));
        }
        wait_for("the node to be up", Duration::from_secs(90), || {
            let s = self.node_state();
            (s == "idle" || s == "mixed" || s == "allocated").then_some(())
        });
    }
}

fn pid_alive(pid_file: &Path) -> bool {
    std::fs::read_to_string(pid_file)
        .ok()
        .and_then(|p| p.trim().parse::<i32>().ok())
        .is_some_and(|pid| unsafe { libc::kill(pid, 0) } == 0)
}

fn kill9(pid: i32) {
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
}

/// Poll `f` every 100 ms until it gives a value, or fail after `limit`.
fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn jobs(lab: &Lab) -> Vec<JobRecord> {
    lab.ws().jobs(None).unwrap()
}

fn slurm_id(rec: &JobRecord) -> String {
    let e = rec.executor.as_ref().expect("placed by an executor");
    assert_eq!(e.kind, "slurm");
    e.job_id
        .clone()
        .expect("the node recorded its Slurm job id")
}

/// `labhost run` of the probe's cooperative scenario (it runs until
/// should-stop) through Slurm.
fn spawn_cooperative(cluster: &Cluster, lab: &Lab, extra: &[&str]) -> Child {
    let probe = guest("rust", "probe");
    let mut args = vec![
        "run",
        probe.to_str().unwrap(),
        "-c",
        "scenario=cooperative",
        "--executor",
        "slurm",
    ];
    args.extend_from_slice(extra);
    cluster.spawn(lab, &args)
}

/// [`spawn_cooperative`], once its job runs on the node.
fn start_cooperative(cluster: &Cluster, lab: &Lab, extra: &[&str]) -> (Child, JobRecord) {
    let child = spawn_cooperative(cluster, lab, extra);
    let rec = wait_for(
        "the job to run on the node",
        Duration::from_secs(60),
        || {
            jobs(lab)
                .into_iter()
                .find(|r| r.status == JobStatus::Running)
        },
    );
    (child, rec)
}

fn hostname() -> String {
    labhost::store::hostname()
}

fn settings(lab: &Lab, text: &str) {
    std::fs::write(lab.root().join("labhost.toml"), text).unwrap();
}

#[test]
fn a_job_runs_as_a_slurm_job_with_its_limits_mapped() {
    let cluster = Cluster::get();
    let lab = Lab::new();
    settings(
        &lab,
        "[executor.slurm]\nsbatch-args = [\"--comment=labhost-test\"]\n",
    );
    let datagen = guest("rust", "datagen");
    let o = cluster.run(
        &lab,
        &[
            "run",
            datagen.to_str().unwrap(),
            "-c",
            "rows=50",
            "--timeout",
            "90s",
            "--memory",
            "512MiB",
            "--executor",
            "slurm",
        ],
    );
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    assert!(stderr(&o).contains("submitted to Slurm"), "{}", stderr(&o));
    let all = jobs(&lab);
    assert_eq!(all.len(), 1);
    let rec = &all[0];
    assert_eq!(rec.status, JobStatus::Complete, "{:?}", rec.message);
    assert_eq!(rec.hostname, hostname());
    assert_eq!(rec.datasets.len(), 1);
    // The node's log reached the submitter's terminal.
    assert!(
        stdout(&o).contains("generating 50 rows (seed"),
        "{}",
        stdout(&o)
    );
    let id = slurm_id(rec);
    assert_eq!(cluster.end_state(&id), "COMPLETED");
    // 90 s + 10 s grace + 60 s margin → 3 min; 512 MiB + 256 MiB host.
    assert_eq!(cluster.job_field(&id, "TimeLimit"), "00:03:00");
    assert_eq!(cluster.job_field(&id, "MinMemoryNode"), "768M");
    assert_eq!(cluster.job_field(&id, "Comment"), "labhost-test");
    assert_eq!(cluster.job_field(&id, "Requeue"), "0");
    let shown = stdout(&cluster.run(&lab, &["show", &rec.id]));
    assert!(
        shown.contains(&format!(
            "host        {} pid {} (slurm job {id})",
            hostname(),
            rec.host_pid
        )),
        "{shown}"
    );
    // Bad settings: one line, nothing submitted.
    settings(
        &lab,
        "[executor.slurm]\nsbatch-args = [\"--output=/tmp/x\"]\n",
    );
    let o = cluster.run(
        &lab,
        &["run", datagen.to_str().unwrap(), "--executor", "slurm"],
    );
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o).trim(),
        format!(
            "error: {}: [executor.slurm]: sbatch-args: `--output=/tmp/x` is set by labhost",
            lab.root().join("labhost.toml").display()
        )
    );
    settings(&lab, "[executor.slurm]\npartition = \"nosuch\"\n");
    let o = cluster.run(
        &lab,
        &["run", datagen.to_str().unwrap(), "--executor", "slurm"],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with(
            "error: sbatch failed: sbatch: error: invalid partition specified: nosuch"
        ),
        "{}",
        stderr(&o)
    );
    assert_eq!(jobs(&lab).len(), 1, "a refused submission leaves no job");
}

#[test]
fn the_demo_pipeline_runs_through_slurm() {
    let cluster = Cluster::get();
    let lab = Lab::new();
    let file = repo_root().join("examples/pipelines/sentiment.toml");
    let o = cluster.run(
        &lab,
        &[
            "pipeline",
            "run",
            file.to_str().unwrap(),
            "--executor",
            "slurm",
            "--workers",
            "6",
        ],
    );
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    let all = jobs(&lab);
    assert_eq!(all.len(), 7, "generate, 3 train, 3 evaluate");
    let mut slurm_ids = Vec::new();
    for rec in &all {
        assert_eq!(
            rec.status,
            JobStatus::Complete,
            "{}: {:?}",
            rec.id,
            rec.message
        );
        assert_eq!(rec.hostname, hostname());
        let id = slurm_id(rec);
        assert_eq!(cluster.end_state(&id), "COMPLETED", "Slurm job {id}");
        slurm_ids.push(id);
    }
    slurm_ids.sort();
    slurm_ids.dedup();
    assert_eq!(slurm_ids.len(), 7, "one Slurm job per instance");
    let evals: Vec<&JobRecord> = all
        .iter()
        .filter(|r| r.plugin.name == "sentiment-evaluator")
        .collect();
    assert_eq!(evals.len(), 3);
    for e in evals {
        assert!(e.scores["accuracy"] > 0.5, "{:?}", e.scores);
    }
}

#[test]
fn cancel_reaches_a_running_job_and_a_queued_one() {
    let cluster = Cluster::get();
    let lab = Lab::new();
    let (child, rec) = start_cooperative(&cluster, &lab, &[]);
    let o = cluster.run(&lab, &["cancel", &rec.id]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains(&format!(
            "CANCELLED {}: cancelled: stopped on request",
            rec.id
        )),
        "{}",
        stdout(&o)
    );
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let (end, _) = lab.ws().find_job(&rec.id).unwrap();
    assert_eq!(end.status, JobStatus::Cancelled);
    // The plugin stopped by itself: Slurm saw the batch script end.
    let id = slurm_id(&end);
    wait_for("Slurm to see the end", Duration::from_secs(30), || {
        let s = cluster.state(&id);
        (s != "RUNNING" && s != "COMPLETING").then_some(())
    });

    // A job Slurm holds (it may not start for an hour) is cancelled at once.
    settings(
        &lab,
        "[executor.slurm]\nsbatch-args = [\"--begin=now+3600\"]\n",
    );
    let child = spawn_cooperative(&cluster, &lab, &[]);
    let queued = wait_for("the queued record", Duration::from_secs(30), || {
        jobs(&lab).into_iter().find(|r| {
            r.status == JobStatus::Queued
                && std::fs::read_to_string(
                    lab.ws()
                        .job_paths(&r.experiment, &r.id)
                        .dir
                        .join("executor.id"),
                )
                .is_ok()
        })
    });
    assert_eq!(queued.hostname, "");
    assert!(queued.started_at.is_none());
    let o = cluster.run(&lab, &["cancel", &queued.id]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (end, paths) = lab.ws().find_job(&queued.id).unwrap();
    assert_eq!(end.status, JobStatus::Cancelled);
    let slurm = std::fs::read_to_string(paths.dir.join("executor.id")).unwrap();
    assert_eq!(
        end.message.as_deref(),
        Some(format!("cancelled before it started (Slurm job {slurm} is CANCELLED)").as_str())
    );
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
}

#[test]
fn a_stage_timeout_is_recorded_by_labhost_before_slurms_limit() {
    let cluster = Cluster::get();
    let lab = Lab::new();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("timeout.toml");
    std::fs::write(
        &file,
        format!(
            "name = \"timeout\"\n[stages.spin]\nplugin = \"{}\"\nconfig = {{ scenario = \"spin\" }}\nlimits = {{ timeout = \"3s\" }}\nretries = 0\n",
            guest("rust", "probe").display()
        ),
    )
    .unwrap();
    let o = cluster.run(
        &lab,
        &[
            "pipeline",
            "run",
            file.to_str().unwrap(),
            "--executor",
            "slurm",
        ],
    );
    assert_eq!(o.status.code(), Some(3), "{}\n{}", stdout(&o), stderr(&o));
    let all = jobs(&lab);
    assert_eq!(all.len(), 1);
    let rec = &all[0];
    assert_eq!(rec.status, JobStatus::Failed);
    assert_eq!(rec.failure, Some(labhost::FailureKind::Timeout));
    assert_eq!(rec.message.as_deref(), Some("time limit of 3s exceeded"));
    let id = slurm_id(rec);
    // Slurm's limit (3 s + 10 s grace + 60 s → 2 min) never fired: the
    // host ended the job and exited non-zero.
    assert_eq!(cluster.job_field(&id, "TimeLimit"), "00:02:00");
    assert_eq!(cluster.end_state(&id), "FAILED");
    assert_eq!(cluster.job_field(&id, "ExitCode"), "3:0");
}

#[test]
fn a_lost_node_interrupts_the_job_and_the_retry_resumes_from_its_checkpoint() {
    let cluster = Cluster::get();
    let lab = Lab::new();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("lost.toml");
    std::fs::write(
        &file,
        format!(
            "name = \"lost-node\"\n[stages.work]\nplugin = \"{}\"\nconfig = {{ scenario = \"checkpoint-wait\" }}\nretries = 1\nbackoff = \"1s\"\n",
            guest("rust", "probe").display()
        ),
    )
    .unwrap();
    let runner = cluster.spawn(
        &lab,
        &[
            "pipeline",
            "run",
            file.to_str().unwrap(),
            "--executor",
            "slurm",
        ],
    );
    let first = wait_for("a checkpoint on the node", Duration::from_secs(60), || {
        jobs(&lab)
            .into_iter()
            .find(|r| r.status == JobStatus::Running && !r.checkpoints.is_empty())
    });
    let slurm = slurm_id(&first);
    let paths = lab.ws().job_paths(&first.experiment, &first.id);
    let beat = labhost::heartbeat::read(&paths.heartbeat()).expect("a heartbeat");
    assert_eq!(beat.hostname, hostname());
    // The node dies: slurmd, the step daemons and the job's host process.
    let slurmd: i32 = std::fs::read_to_string(cluster.dir().join("slurmd.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    kill9(slurmd);
    let _ = Command::new("pkill")
        .args(["-9", "-x", "slurmstepd"])
        .status();
    kill9(beat.pid as i32);
    // Slurm declares the node lost, the heartbeat expires: INTERRUPTED.
    let lost = wait_for(
        "the job to be INTERRUPTED",
        Duration::from_secs(120),
        || {
            let (rec, _) = lab.ws().find_job(&first.id).unwrap();
            rec.status.is_terminal().then_some(rec)
        },
    );
    assert_eq!(lost.status, JobStatus::Interrupted, "{:?}", lost.message);
    let msg = lost.message.clone().unwrap();
    assert!(
        msg.starts_with(&format!(
            "the host on {} (pid {}) stopped its heartbeat at ",
            hostname(),
            beat.pid
        )),
        "{msg}"
    );
    assert!(
        msg.ends_with(&format!(
            "and Slurm job {slurm} is NODE_FAIL; its node was lost"
        )),
        "{msg}"
    );
    // The node comes back; the runner's retry resumes from the checkpoint.
    cluster.wait_node_up();
    let out = runner.wait_with_output().unwrap();
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let all = jobs(&lab);
    assert_eq!(all.len(), 2);
    let retry = all.iter().find(|r| r.id != first.id).unwrap();
    assert_eq!(retry.status, JobStatus::Complete, "{:?}", retry.message);
    assert_eq!(
        retry.message.as_deref(),
        Some(format!("resumed from step-1 of {}: step 1 done", first.id).as_str())
    );
    assert_eq!(retry.pipeline.as_ref().unwrap().attempt, 2);
    assert_ne!(slurm_id(retry), slurm);
}

#[test]
fn labhost_serve_runs_launched_jobs_and_pipelines_on_slurm() {
    use reqwest::StatusCode;
    use serde_json::{json, Value};
    let cluster = Cluster::get();
    let lab = Lab::new();
    let conf = cluster.conf.to_str().unwrap().to_owned();
    let server = labhost_tests::Server::start_with(
        &lab,
        &["--executor", "slurm"],
        &[("SLURM_CONF", conf.as_str())],
    );
    let http = reqwest::blocking::Client::new();
    let send = |r: reqwest::blocking::RequestBuilder| -> (StatusCode, Value) {
        let resp = r.send().unwrap();
        (resp.status(), resp.json().unwrap())
    };
    let mut digests = Vec::new();
    for name in ["datagen", "probe"] {
        let (s, p) = send(
            http.post(server.url("/api/v1/plugins"))
                .body(std::fs::read(guest("rust", name)).unwrap()),
        );
        assert_eq!(s, StatusCode::CREATED, "{p}");
        digests.push(p["blake3"].as_str().unwrap().to_owned());
    }
    // A launched job is QUEUED (or already running) as a Slurm job.
    let (s, rec) = send(
        http.post(server.url("/api/v1/jobs"))
            .json(&json!({"plugin": digests[0], "config": {"rows": 30}})),
    );
    assert_eq!(s, StatusCode::CREATED, "{rec}");
    assert_eq!(rec["executor"]["kind"], "slurm");
    let id = rec["id"].as_str().unwrap().to_owned();
    let done = wait_for("the job's end", Duration::from_secs(60), || {
        let (_, r) = send(http.get(server.url(&format!("/api/v1/jobs/{id}"))));
        (r["status"] != "QUEUED" && r["status"] != "RUNNING").then_some(r)
    });
    assert_eq!(done["status"], "COMPLETE", "{done}");
    assert_eq!(done["hostname"], json!(hostname()));
    assert_eq!(
        cluster.end_state(done["executor"]["job_id"].as_str().unwrap()),
        "COMPLETED"
    );
    // Cancel through the API: should-stop on the node, CANCELLED.
    let (s, rec) = send(
        http.post(server.url("/api/v1/jobs"))
            .json(&json!({"plugin": digests[1], "config": {"scenario": "cooperative"}})),
    );
    assert_eq!(s, StatusCode::CREATED, "{rec}");
    let id = rec["id"].as_str().unwrap().to_owned();
    wait_for("the job to run", Duration::from_secs(60), || {
        let (_, r) = send(http.get(server.url(&format!("/api/v1/jobs/{id}"))));
        (r["status"] == "RUNNING").then_some(())
    });
    let (s, v) = send(http.post(server.url(&format!("/api/v1/jobs/{id}/cancel"))));
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let done = wait_for("the cancel", Duration::from_secs(60), || {
        let (_, r) = send(http.get(server.url(&format!("/api/v1/jobs/{id}"))));
        (r["status"] != "RUNNING").then_some(r)
    });
    assert_eq!(done["status"], "CANCELLED", "{done}");
    // A pipeline: every instance a Slurm job.
    let pipeline = format!(
        "name = \"api\"\nworkers = 4\n[stages.generate]\nplugin = \"{}.wasm\"\nconfig = {{ rows = 60 }}\n[stages.probe]\nplugin = \"{}.wasm\"\nneeds = [\"generate\"]\nconfig = {{ scenario = \"bench\", target = \"log\" }}\nmatrix = {{ count = [1, 2, 3] }}\n",
        digests[0], digests[1]
    );
    let (s, created) = send(
        http.post(server.url("/api/v1/pipelines"))
            .json(&json!({"pipeline": pipeline})),
    );
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let run = created["id"].as_str().unwrap().to_owned();
    let v = wait_for("the run's end", Duration::from_secs(90), || {
        let (_, v) = send(http.get(server.url(&format!("/api/v1/pipelines/{run}"))));
        (v["run"]["status"] != "RUNNING").then_some(v)
    });
    assert_eq!(v["run"]["status"], "COMPLETE", "{v}");
    let in_run: Vec<JobRecord> = jobs(&lab)
        .into_iter()
        .filter(|j| j.pipeline.as_ref().is_some_and(|p| p.run == run))
        .collect();
    assert_eq!(in_run.len(), 4);
    for j in &in_run {
        assert_eq!(j.status, JobStatus::Complete);
        assert_eq!(cluster.end_state(&slurm_id(j)), "COMPLETED");
    }
}

/// The runner is killed while its Slurm job runs on: resumed without the
/// executor it is refused; with it, the run waits for the same job (no
/// second one); `pipeline cancel` stops it through Slurm; a last resume
/// goes on from the job's checkpoint.
#[test]
fn a_resumed_run_waits_for_the_slurm_job_its_killed_runner_left() {
    let cluster = Cluster::get();
    let lab = Lab::new();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("outlive.toml");
    std::fs::write(
        &file,
        format!(
            "name = \"outlive\"\n[stages.work]\nplugin = \"{}\"\nconfig = {{ scenario = \"checkpoint-wait\" }}\nretries = 0\n",
            guest("rust", "probe").display()
        ),
    )
    .unwrap();
    let mut runner = cluster.spawn(
        &lab,
        &[
            "pipeline",
            "run",
            file.to_str().unwrap(),
            "--executor",
            "slurm",
        ],
    );
    let first = wait_for("a checkpoint on the node", Duration::from_secs(60), || {
        jobs(&lab)
            .into_iter()
            .find(|r| r.status == JobStatus::Running && !r.checkpoints.is_empty())
    });
    let run = first.pipeline.clone().unwrap().run;
    runner.kill().unwrap();
    runner.wait().unwrap();
    // The job runs on without its runner.
    assert_eq!(cluster.state(&slurm_id(&first)), "RUNNING");

    let o = cluster.run(&lab, &["pipeline", "resume", &run]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert_eq!(
        stderr(&o).trim(),
        format!(
            "error: work's job {} is still RUNNING as a slurm job: resume with --executor slurm, or cancel the job first",
            first.id
        )
    );
    let resumed = cluster.spawn(&lab, &["pipeline", "resume", &run, "--executor", "slurm"]);
    let pid = resumed.id();
    let run_file = lab.root().join("pipelines").join(&run).join("run.json");
    wait_for("the resumed runner", Duration::from_secs(30), || {
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&run_file).ok()?).ok()?;
        (v["runner_pid"] == pid && v["instances"][0]["status"] == "RUNNING").then_some(())
    });
    let o = cluster.run(&lab, &["pipeline", "cancel", &run]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = resumed.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    let all = jobs(&lab);
    assert_eq!(all.len(), 1, "the resumed run started no second job");
    assert_eq!(all[0].status, JobStatus::Cancelled);
    assert_eq!(
        all[0].message.as_deref(),
        Some("cancelled: stopped on request")
    );

    let o = cluster.run(&lab, &["pipeline", "resume", &run, "--executor", "slurm"]);
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    let all = jobs(&lab);
    assert_eq!(all.len(), 2);
    let last = all.iter().find(|r| r.id != first.id).unwrap();
    assert_eq!(last.status, JobStatus::Complete);
    assert_eq!(
        last.message.as_deref(),
        Some(format!("resumed from step-1 of {}: step 1 done", first.id).as_str())
    );
}

/// A host that cannot answer a cancel (stopped with SIGSTOP) is
/// scancelled once the grace period and the margin have passed; the job
/// ends CANCELLED either way (the host saw Slurm's SIGTERM, or the
/// liveness rule found it gone after the scancel).
#[test]
fn a_host_that_does_not_answer_a_cancel_is_scancelled() {
    let cluster = Cluster::get();
    let lab = Lab::new();
    let (child, rec) = start_cooperative(&cluster, &lab, &["--grace", "1s"]);
    let paths = lab.ws().job_paths(&rec.experiment, &rec.id);
    let beat = labhost::heartbeat::read(&paths.heartbeat()).expect("a heartbeat");
    unsafe {
        libc::kill(beat.pid as i32, libc::SIGSTOP);
    }
    let started = Instant::now();
    let o = cluster.run(&lab, &["cancel", &rec.id]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Not before the grace period (1 s) and the margin (5 s).
    assert!(
        started.elapsed() >= Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    let (end, _) = lab.ws().find_job(&rec.id).unwrap();
    assert_eq!(end.status, JobStatus::Cancelled, "{:?}", end.message);
    let id = slurm_id(&end);
    assert_eq!(cluster.end_state(&id), "CANCELLED");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
}

/// A Slurm job nobody waits for any more (its submitter and its host both
/// killed) is ended by the next `labhost jobs` once its heartbeat expired
/// and Slurm says it is over. The node is this machine, so the record is
/// first made to name another host, as on a real cluster: this machine's
/// flock must not decide a job of another node.
#[test]
fn a_listing_ends_a_slurm_job_nobody_waits_for() {
    let cluster = Cluster::get();
    let lab = Lab::new();
    let (mut submitter, rec) = start_cooperative(&cluster, &lab, &[]);
    let paths = lab.ws().job_paths(&rec.experiment, &rec.id);
    let marker = lab.root().join(".slurm").join(&rec.id);
    assert!(marker.is_file(), "the job is in flight");
    let beat = labhost::heartbeat::read(&paths.heartbeat()).expect("a heartbeat");
    submitter.kill().unwrap();
    submitter.wait().unwrap();
    kill9(beat.pid as i32);
    let mut v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(paths.record()).unwrap()).unwrap();
    v["hostname"] = "node-elsewhere".into();
    let tmp = paths.dir.join(".job.json.test");
    std::fs::write(&tmp, serde_json::to_vec(&v).unwrap()).unwrap();
    std::fs::rename(&tmp, paths.record()).unwrap();
    let status = |lab: &Lab| -> (String, String) {
        let o = cluster.run(lab, &["jobs", "--json"]);
        assert!(o.status.success(), "{}", stderr(&o));
        let all: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
        let j = &all[0];
        (
            j["status"].as_str().unwrap().to_owned(),
            j["message"].as_str().unwrap_or_default().to_owned(),
        )
    };
    // The heartbeat still vouches for it (renewed < 2 s ago, valid 10 s).
    assert_eq!(status(&lab).0, "RUNNING");
    let (end, message) = wait_for("a listing to end the job", Duration::from_secs(60), || {
        let s = status(&lab);
        (s.0 != "RUNNING").then_some(s)
    });
    assert_eq!(end, "INTERRUPTED", "{message}");
    let slurm = slurm_id(&rec);
    // The state Slurm gave when the listing looked (COMPLETING, then FAILED).
    let state = message
        .rsplit_once(" is ")
        .map(|(_, s)| s.to_owned())
        .unwrap_or_default();
    assert!(!labhost::slurm::liveness::is_active(&state), "{message}");
    assert_eq!(
        message,
        format!(
            "the host on {} (pid {}) stopped its heartbeat at {} and Slurm job {slurm} is {state}",
            beat.hostname,
            beat.pid,
            labhost::heartbeat::read(&paths.heartbeat())
                .unwrap()
                .renewed_at
                .format("%Y-%m-%d %H:%M:%S UTC")
        )
    );
    assert!(!marker.exists(), "no longer in flight");
}
