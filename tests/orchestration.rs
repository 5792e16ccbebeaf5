//! Pipelines and job orchestration: a fan-out pipeline end to end, a failing
//! branch, retries with backoff, resume after a failed stage and after a
//! killed runner (its queue survives), job queries and workspace settings.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use labhost::pipeline::{InstanceStatus, PipelineRun, RunRecord, RunStatus};
use labhost::{FailureKind, JobStatus, Settings};
use labhost_tests::{blake3_file, guest, labhost_bin, repo_root, stderr, stdout, Lab};
use serde_json::Value;

fn effective(lab: &Lab) -> labhost::settings::Effective {
    Settings::load(lab.root())
        .unwrap()
        .effective(lab.root(), None)
        .unwrap()
}

fn create(lab: &Lab, file: &Path) -> anyhow::Result<PipelineRun> {
    PipelineRun::create(&lab.host, file, &effective(lab), None)
}

fn execute(lab: &Lab, run: PipelineRun) -> RunRecord {
    lab.rt.block_on(run.execute(None)).unwrap()
}

fn run_file(lab: &Lab, file: &Path) -> RunRecord {
    let run = create(lab, file).unwrap();
    execute(lab, run)
}

/// Write a pipeline file into the lab's temp dir; `{probe}` etc. are
/// replaced by the built guests' paths.
fn pipeline(lab: &Lab, name: &str, text: &str) -> PathBuf {
    let text = text
        .replace("{probe}", &guest("rust", "probe").display().to_string())
        .replace("{datagen}", &guest("rust", "datagen").display().to_string())
        .replace("{trainer}", &guest("rust", "trainer").display().to_string())
        .replace(
            "{evaluator}",
            &guest("rust", "evaluator").display().to_string(),
        );
    let path = lab.dir.path().join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs of spaces as one (for aligned tables).
fn squash(s: &str) -> String {
    s.split(' ')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn status_of(rec: &RunRecord, name: &str) -> InstanceStatus {
    rec.instance(name)
        .unwrap_or_else(|| panic!("no instance {name}"))
        .status
}

fn job_ids(rec: &RunRecord, name: &str) -> Vec<String> {
    rec.instance(name)
        .unwrap()
        .attempts
        .iter()
        .filter_map(|a| a.job_id.clone())
        .collect()
}

#[test]
fn fan_out_pipeline_end_to_end() {
    let lab = Lab::new();
    let file = repo_root().join("examples/pipelines/sentiment.toml");
    let rec = run_file(&lab, &file);
    assert_eq!(rec.status, RunStatus::Complete, "{rec:#?}");
    let names: Vec<&str> = rec.instances.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "generate",
            "train#1",
            "train#2",
            "train#3",
            "evaluate#1",
            "evaluate#2",
            "evaluate#3"
        ]
    );
    assert_eq!(
        rec.message.as_deref(),
        Some("7/7 complete, 0 failed, 0 blocked")
    );
    let ws = lab.ws();

    // Every instance ran once, as a job of the pipeline's experiment that
    // names the run, with the pinned plugin digest.
    let gen_job = &job_ids(&rec, "generate")[0];
    let (gen, _) = ws.find_job(gen_job).unwrap();
    assert_eq!(gen.datasets.len(), 1);
    for inst in &rec.instances {
        let ids = job_ids(&rec, &inst.name);
        assert_eq!(ids.len(), 1, "{}", inst.name);
        let (job, _) = ws.find_job(&ids[0]).unwrap();
        assert_eq!(job.status, JobStatus::Complete);
        assert_eq!(job.experiment, "demo");
        let p = job.pipeline.as_ref().unwrap();
        assert_eq!(
            (p.run.as_str(), p.instance.as_str(), p.attempt),
            (rec.id.as_str(), inst.name.as_str(), 1)
        );
        assert_eq!(
            inst.plugin.blake3,
            blake3_file(Path::new(&inst.plugin.path))
        );
        assert_eq!(job.plugin.blake3, inst.plugin.blake3);
        assert_eq!(
            job.sandbox.limits.memory_bytes,
            256 << 20,
            "pipeline [defaults] limits"
        );
    }
    // Trainers: the matrix value in the config, the generator's dataset granted, a stage timeout.
    for (i, lr, shown) in [(1, 0.1, "0.1"), (2, 0.5, "0.5"), (3, 2.0, "2.0")] {
        let (train, _) = ws
            .find_job(&job_ids(&rec, &format!("train#{i}"))[0])
            .unwrap();
        assert_eq!(train.config["lr"], lr);
        assert_eq!(train.config["epochs"], 8);
        assert_eq!(train.sandbox.grants.datasets, gen.datasets);
        assert_eq!(train.sandbox.limits.timeout, Duration::from_secs(300));
        assert_eq!(train.models.len(), 1);
        // The evaluator of this trainer got exactly its model.
        let (eval, _) = ws
            .find_job(&job_ids(&rec, &format!("evaluate#{i}"))[0])
            .unwrap();
        assert_eq!(eval.sandbox.grants.models, train.models);
        assert_eq!(eval.sandbox.grants.datasets, gen.datasets);
        assert!(eval.scores["accuracy"] > 0.8, "{:?}", eval.scores);
        assert_eq!(
            rec.instance(&format!("evaluate#{i}")).unwrap().label,
            format!("train#{i}: lr={shown}")
        );
    }
    // Never more jobs at once than workers (2).
    let jobs = ws.jobs(Some("demo")).unwrap();
    for j in &jobs {
        let at = j.started_at.unwrap();
        let overlapping = jobs
            .iter()
            .filter(|o| o.started_at.unwrap() <= at && o.ended_at.unwrap() > at)
            .count();
        assert!(overlapping <= 2, "{overlapping} jobs ran at once");
    }
    // The run record on disk is the one returned; its copy of the file is kept.
    let stored: Value = serde_json::from_slice(
        &std::fs::read(lab.root().join("pipelines").join(&rec.id).join("run.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(stored["status"], "COMPLETE");
    assert_eq!(
        std::fs::read_to_string(
            lab.root()
                .join("pipelines")
                .join(&rec.id)
                .join("pipeline.toml")
        )
        .unwrap(),
        std::fs::read_to_string(&file).unwrap()
    );

    // Status from the CLI.
    let out = lab.cli(&["pipeline", "status", &rec.id[..15]]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("pipeline sentiment  COMPLETE  7/7 complete"),
        "{text}"
    );
    assert!(text.contains("train#2 (lr=0.5)"), "{text}");
    assert!(text.contains("evaluate#3 (train#3: lr=2.0)"), "{text}");
    assert!(text.contains("accuracy="), "{text}");

    // Its jobs, by query.
    let out = lab.cli(&[
        "jobs",
        "--pipeline",
        &rec.id,
        "--plugin",
        "sentiment-trainer",
        "--json",
    ]);
    let listed: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 3);

    // Any stage reruns alone with the same inputs and gives the same result.
    let eval_job = &job_ids(&rec, "evaluate#2")[0];
    let (first, _) = ws.find_job(eval_job).unwrap();
    let out = lab.cli(&["rerun", eval_job]);
    assert!(out.status.success(), "{}", stderr(&out));
    let again = ws
        .jobs(Some("demo"))
        .unwrap()
        .into_iter()
        .find(|j| j.pipeline.is_none())
        .expect("the rerun job");
    assert_eq!(again.config, first.config);
    assert_eq!(again.sandbox.grants.models, first.sandbox.grants.models);
    assert_eq!(again.scores, first.scores);
}

#[test]
fn failing_branch_blocks_its_dependants_and_other_branches_go_on() {
    let lab = Lab::new();
    let file = pipeline(
        &lab,
        "branches",
        r#"
name = "branches"
workers = 1
[stages.broken]
plugin = "{probe}"
config = { scenario = "fail" }
retries = 3                       # plugin errors are not retried by default
[stages.after-broken]
plugin = "{probe}"
needs = ["broken"]
[stages.last]
plugin = "{probe}"
needs = ["after-broken"]
[stages.generate]
plugin = "{datagen}"
config = { rows = 60 }
[stages.train]
plugin = "{trainer}"
datasets = [{ stage = "generate" }]
"#,
    );
    let rec = run_file(&lab, &file);
    assert_eq!(rec.status, RunStatus::Failed);
    assert_eq!(status_of(&rec, "broken"), InstanceStatus::Failed);
    let broken = rec.instance("broken").unwrap();
    assert_eq!(broken.attempts.len(), 1);
    assert_eq!(broken.attempts[0].failure, Some(FailureKind::PluginError));
    assert_eq!(
        broken.message.as_deref(),
        Some("probe failed on purpose (plugin-error)")
    );
    assert_eq!(status_of(&rec, "after-broken"), InstanceStatus::Blocked);
    assert_eq!(
        rec.instance("after-broken").unwrap().message.as_deref(),
        Some("needs broken, which is FAILED")
    );
    assert_eq!(
        rec.instance("last").unwrap().message.as_deref(),
        Some("needs after-broken, which is BLOCKED")
    );
    assert!(rec.instance("last").unwrap().attempts.is_empty());
    assert_eq!(status_of(&rec, "generate"), InstanceStatus::Complete);
    assert_eq!(status_of(&rec, "train"), InstanceStatus::Complete);
    assert_eq!(
        rec.message.as_deref(),
        Some("2/5 complete, 1 failed, 2 blocked")
    );

    let out = lab.cli(&["pipeline", "status", &rec.id]);
    assert_eq!(out.status.code(), Some(3), "a failed run exits 3");
    assert!(stdout(&out).contains("BLOCKED"), "{}", stdout(&out));
}

#[test]
fn retries_with_backoff_per_failure_kind_and_stage_timeouts() {
    let lab = Lab::new();
    let ctl = lab.dir.path().join("ctl");
    std::fs::create_dir(&ctl).unwrap();
    let file = pipeline(
        &lab,
        "retries",
        r#"
name = "retries"
workers = 2
[stages.flaky]
plugin = "{probe}"
config = { scenario = "flaky", count = 3, target = "/ctl/attempts" }
dirs = ["ctl::/ctl:rw"]
retries = 2
backoff = "200ms"
retry-on = ["plugin-error"]
[stages.slow]
plugin = "{probe}"
config = { scenario = "spin" }
limits = { timeout = "300ms" }
retries = 1
backoff = "100ms"
"#,
    );
    let rec = run_file(&lab, &file);
    assert_eq!(rec.status, RunStatus::Failed, "{rec:#?}");

    // flaky: failed twice, retried after 200 ms then 400 ms, then completed;
    // each retry resumed from the checkpoint the attempt before saved.
    let flaky = rec.instance("flaky").unwrap();
    assert_eq!(flaky.status, InstanceStatus::Complete);
    assert_eq!(flaky.attempts.len(), 3);
    assert_eq!(flaky.message.as_deref(), Some("succeeded at attempt 3"));
    for (i, wait_ms) in [(1, 200), (2, 400)] {
        let prev = &flaky.attempts[i - 1];
        let next = &flaky.attempts[i];
        assert_eq!(prev.failure, Some(FailureKind::PluginError));
        let gap = (next.started_at - prev.ended_at.unwrap()).num_milliseconds();
        assert!(
            gap >= wait_ms,
            "retry {i} started {gap} ms after the failure (backoff {wait_ms} ms)"
        );
        let (job, _) = lab.ws().find_job(next.job_id.as_ref().unwrap()).unwrap();
        assert_eq!(job.pipeline.as_ref().unwrap().attempt, i as u32 + 1);
        let resume = job.resume.expect("resumed");
        assert_eq!(resume.job_id, *prev.job_id.as_ref().unwrap());
        assert_eq!(resume.checkpoint, format!("attempt-{i}"));
    }

    // slow: the stage's 300 ms timeout, retried once (timeouts are
    // retried by default), then failed.
    let slow = rec.instance("slow").unwrap();
    assert_eq!(slow.status, InstanceStatus::Failed);
    assert_eq!(slow.attempts.len(), 2);
    for a in &slow.attempts {
        assert_eq!(a.failure, Some(FailureKind::Timeout));
        assert_eq!(a.message.as_deref(), Some("time limit of 0.3s exceeded"));
    }
    assert_eq!(
        slow.message.as_deref(),
        Some("time limit of 0.3s exceeded (timeout, after 2 attempts)")
    );
}

#[test]
fn resume_after_a_failed_stage_skips_completed_ones() {
    let lab = Lab::new();
    let ctl = lab.dir.path().join("ctl");
    std::fs::create_dir(&ctl).unwrap();
    let file = pipeline(
        &lab,
        "resume",
        r#"
name = "resume"
[stages.generate]
plugin = "{datagen}"
config = { rows = 60 }
[stages.flaky]
plugin = "{probe}"
config = { scenario = "flaky", count = 2, target = "/ctl/attempts" }
dirs = ["ctl::/ctl:rw"]
needs = ["generate"]
[stages.train]
plugin = "{trainer}"
datasets = [{ stage = "generate", name = "sentiment" }]
needs = ["flaky"]
"#,
    );
    let first = run_file(&lab, &file);
    assert_eq!(first.status, RunStatus::Failed);
    assert_eq!(status_of(&first, "flaky"), InstanceStatus::Failed);
    assert_eq!(status_of(&first, "train"), InstanceStatus::Blocked);
    let gen_jobs = job_ids(&first, "generate");

    // Resume from the CLI.
    let out = lab.cli(&["pipeline", "resume", &first.id]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("2 jobs to run of 3"), "{text}");
    assert!(
        text.contains(&format!(
            "resuming from {}:attempt-1",
            job_ids(&first, "flaky")[0]
        )),
        "{text}"
    );
    let (rec, _) = labhost::pipeline::find_run(lab.ws(), &first.id).unwrap();
    assert_eq!(rec.status, RunStatus::Complete);
    assert_eq!(rec.resumes, 1);
    assert_eq!(
        job_ids(&rec, "generate"),
        gen_jobs,
        "a completed stage is not run again"
    );
    assert_eq!(rec.instance("flaky").unwrap().attempts.len(), 2);
    assert_eq!(status_of(&rec, "train"), InstanceStatus::Complete);

    // Resuming a complete run runs nothing.
    let out = lab.cli(&["pipeline", "resume", &first.id]);
    assert!(out.status.success());
    assert!(
        stdout(&out).contains("0 jobs to run of 3"),
        "{}",
        stdout(&out)
    );

    // A changed plugin is refused: the run pins digests.
    let copy = lab.dir.path().join("probe-copy.wasm");
    std::fs::copy(guest("rust", "probe"), &copy).unwrap();
    let file2 = pipeline(
        &lab,
        "pinned",
        &format!(
            "name = \"pinned\"\n[stages.a]\nplugin = \"{}\"\nconfig = {{ scenario = \"fail\" }}\n",
            copy.display()
        ),
    );
    let failed = run_file(&lab, &file2);
    assert_eq!(failed.status, RunStatus::Failed);
    std::fs::copy(guest("rust", "datagen"), &copy).unwrap();
    let out = lab.cli(&["pipeline", "resume", &failed.id]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("changed since the run was created"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

/// `kill -9` of `labhost pipeline run` while a trainer runs and another
/// waits in the queue: the run reads INTERRUPTED, its queue is still in
/// run.json, and `resume` runs the rest, the trainer from its checkpoint.
#[test]
fn killed_runner_keeps_its_queue_and_resume_goes_on_from_checkpoints() {
    let lab = Lab::new();
    let file = pipeline(
        &lab,
        "killed",
        r#"
name = "killed"
workers = 1
[stages.generate]
plugin = "{datagen}"
config = { rows = 200 }
[stages.train]
plugin = "{trainer}"
datasets = [{ stage = "generate" }]
config = { epochs = 400 }
matrix = { lr = [0.5, 1.0] }
[stages.evaluate]
plugin = "{evaluator}"
datasets = [{ stage = "generate" }]
models = [{ stage = "train" }]
"#,
    );
    let mut child = Command::new(labhost_bin())
        .arg("--workspace")
        .arg(lab.root())
        .args(["pipeline", "run"])
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait for a trainer job with two checkpoints.
    let until = Instant::now() + Duration::from_secs(120);
    let killed_job = loop {
        assert!(Instant::now() < until, "no trainer checkpoint appeared");
        let running = lab
            .ws()
            .jobs(Some("killed"))
            .unwrap()
            .into_iter()
            .find(|j| {
                j.plugin.name == "sentiment-trainer"
                    && j.status == JobStatus::Running
                    && j.checkpoints.len() >= 2
            });
        if let Some(j) = running {
            break j.id;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    child.kill().unwrap();
    child.wait().unwrap();

    let (rec, _) = labhost::pipeline::find_run(lab.ws(), "2").unwrap();
    assert_eq!(rec.status, RunStatus::Interrupted);
    assert_eq!(status_of(&rec, "generate"), InstanceStatus::Complete);
    let statuses: Vec<InstanceStatus> = rec.instances.iter().map(|i| i.status).collect();
    assert_eq!(
        statuses,
        [
            InstanceStatus::Complete,
            InstanceStatus::Running,
            InstanceStatus::Queued,
            InstanceStatus::Waiting,
            InstanceStatus::Waiting
        ],
        "the queue as the killed runner left it"
    );
    let out = lab.cli(&["pipeline", "status", &rec.id]);
    assert_eq!(out.status.code(), Some(5));
    assert!(stdout(&out).contains("INTERRUPTED"), "{}", stdout(&out));

    let out = lab.cli(&["pipeline", "resume", &rec.id]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let (rec, _) = labhost::pipeline::find_run(lab.ws(), &rec.id).unwrap();
    assert_eq!(rec.status, RunStatus::Complete, "{rec:#?}");
    assert_eq!(job_ids(&rec, "generate").len(), 1);
    let train1 = rec.instance("train#1").unwrap();
    assert_eq!(train1.attempts.len(), 2);
    assert_eq!(
        train1.attempts[0].job_id.as_deref(),
        Some(killed_job.as_str())
    );
    assert_eq!(train1.attempts[0].status, JobStatus::Interrupted);
    assert_eq!(train1.attempts[0].failure, Some(FailureKind::Interrupted));
    let (resumed, _) = lab
        .ws()
        .find_job(train1.attempts[1].job_id.as_ref().unwrap())
        .unwrap();
    assert_eq!(resumed.resume.as_ref().unwrap().job_id, killed_job);
    assert!(resumed.log_bytes > 0);
    assert_eq!(rec.instance("train#2").unwrap().attempts.len(), 1);
    for e in ["evaluate#1", "evaluate#2"] {
        assert_eq!(status_of(&rec, e), InstanceStatus::Complete);
    }
}

#[test]
fn bad_pipelines_get_one_line_errors_and_create_nothing() {
    let lab = Lab::new();
    let cases = [
        (
            "name = \"x\"\n[stages.a]\nplugin = \"{probe}\"\nconfig = { nope = 1 }\n",
            "stage `a`: invalid config: `probe` has no parameter `nope`",
        ),
        (
            "name = \"x\"\n[stages.a]\nplugin = \"missing.wasm\"\n",
            "stage `a`: cannot read plugin",
        ),
        (
            "name = \"x\"\n[stages.a]\nplugin = \"{probe}\"\ndatasets = [\"no-such-data\"]\n",
            "no dataset `no-such-data`",
        ),
        (
            "name = \"x\"\n[stages.a]\nplugin = \"{probe}\"\nmatrix = { count = \"many\" }\n",
            "matrix.count must be a list",
        ),
        (
            "name = \"x\"\n[stages.a]\nplugin = \"{probe}\"\nneeds = [\"a\"]\n",
            "needs `a`",
        ),
        (
            "name = \"x\"\n[stages.a]\nplugin = \"{probe}\"\nmatrix = { count = [1, \"two\"] }\n",
            "stage `a#2` (count=two)",
        ),
        (
            "name = \"x\"\n[stages.a]\nplugin = \"{probe}\"\ndirs = [\"nowhere::/n\"]\n",
            "nowhere: No such file or directory",
        ),
        ("this is not toml", "expected"),
    ];
    for (i, (text, want)) in cases.iter().enumerate() {
        let file = pipeline(&lab, &format!("bad{i}"), text);
        let out = lab.cli(&["pipeline", "run", file.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{text}");
        let err = stderr(&out);
        assert!(
            err.starts_with("error: ") && err.contains(want),
            "{text}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    assert!(labhost::pipeline::list_runs(lab.ws()).unwrap().is_empty());
    let out = lab.cli(&["pipeline", "status", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no pipeline run `nope`"));
    let out = lab.cli(&["pipeline", "run", "x.toml", "--workers", "0"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn job_queries_filter_sort_and_page() {
    let lab = Lab::new();
    let probe = guest("rust", "probe");
    let p = probe.to_str().unwrap();
    // One run after the other: each job is created after the previous ended.
    for (exp, scenario, code) in [
        ("a", "all-api", 0),
        ("a", "fail", 3),
        ("b", "fail", 3),
        ("b", "trap", 3),
        ("a", "no-finish", 3),
    ] {
        let out = lab.cli(&["run", p, "-e", exp, "-c", &format!("scenario={scenario}")]);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{scenario}: a complete job exits 0, a failed one 3\n{}",
            stderr(&out)
        );
    }
    lab.cli(&[
        "run",
        guest("rust", "datagen").to_str().unwrap(),
        "-e",
        "b",
        "-c",
        "rows=20",
    ]);
    let ids = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["jobs", "--json"];
        all.extend_from_slice(args);
        let out = lab.cli(&all);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|j| {
                format!(
                    "{}/{}",
                    j["experiment"].as_str().unwrap(),
                    j["status"].as_str().unwrap()
                )
            })
            .collect()
    };
    assert_eq!(ids(&[]).len(), 6);
    assert_eq!(
        ids(&["--status", "failed"]),
        ["a/FAILED", "b/FAILED", "b/FAILED", "a/FAILED"]
    );
    assert_eq!(
        ids(&["--status", "complete", "--status", "failed", "-e", "b"]),
        ["b/COMPLETE", "b/FAILED", "b/FAILED"]
    );
    // Newest first by default; `--sort created` is oldest first.
    assert_eq!(ids(&["-e", "b"]), ["b/COMPLETE", "b/FAILED", "b/FAILED"]);
    assert_eq!(
        ids(&["-e", "b", "--sort", "created"]),
        ["b/FAILED", "b/FAILED", "b/COMPLETE"]
    );
    assert_eq!(ids(&[]), ids(&["--sort", "-created"]));
    assert_eq!(ids(&["--plugin", "sentiment-datagen"]), ["b/COMPLETE"]);
    assert_eq!(
        ids(&[
            "--plugin",
            "probe.wasm",
            "--sort",
            "-created",
            "--limit",
            "2"
        ]),
        ["a/FAILED", "b/FAILED"]
    );
    assert_eq!(
        ids(&["--sort", "created", "--offset", "4"]),
        ["a/FAILED", "b/COMPLETE"]
    );
    assert_eq!(ids(&["--sort", "status", "--limit", "1"]), ["a/COMPLETE"]);
    assert!(ids(&["--since", "2h", "--until", "2000-01-01"]).is_empty());
    assert_eq!(ids(&["--since", "1h"]).len(), 6);
    // The table says when a page hides jobs.
    let out = lab.cli(&["jobs", "--limit", "2"]);
    assert!(
        stdout(&out).contains("(2 of 6 matching jobs, from 1; see --offset/--limit)"),
        "{}",
        stdout(&out)
    );
    for (args, want) in [
        (
            vec!["jobs", "--status", "broken"],
            "invalid status `broken`",
        ),
        (vec!["jobs", "--sort", "size"], "invalid sort `size`"),
        (
            vec!["jobs", "--since", "yesterday"],
            "invalid time `yesterday`",
        ),
    ] {
        let out = lab.cli(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stderr(&out).contains(want), "{}", stderr(&out));
    }
}

#[test]
fn workspace_settings_and_profiles_set_job_defaults() {
    let lab = Lab::new();
    let probe = guest("rust", "probe");
    let p = probe.to_str().unwrap();
    assert!(lab.cli(&["config", "init"]).status.success());
    assert_eq!(
        lab.cli(&["config", "init"]).status.code(),
        Some(1),
        "init does not overwrite"
    );
    assert!(lab
        .cli(&["config", "set", "limits.timeout", "400ms"])
        .status
        .success());
    assert!(lab
        .cli(&[
            "--profile",
            "patient",
            "config",
            "set",
            "limits.timeout",
            "2s"
        ])
        .status
        .success());
    let show = stdout(&lab.cli(&["config", "show"]));
    assert!(
        squash(&show).contains("limits.timeout 0.4s workspace"),
        "{show}"
    );
    assert!(
        squash(&show).contains("limits.memory 1GiB default"),
        "{show}"
    );
    let show = stdout(&lab.cli(&["--profile", "patient", "config", "show"]));
    assert!(
        squash(&show).contains("limits.timeout 2s profile patient"),
        "{show}"
    );

    let timed_out = |args: &[&str]| -> String {
        let mut all = args.to_vec();
        all.extend_from_slice(&["run", p, "-c", "scenario=spin", "--json"]);
        let out = lab.cli(&all);
        assert_eq!(out.status.code(), Some(3));
        let (rec, _) = lab
            .ws()
            .jobs(None)
            .unwrap()
            .into_iter()
            .map(|j| (j.clone(), j.created_at))
            .max_by_key(|(_, t)| *t)
            .unwrap();
        rec.message.unwrap()
    };
    assert_eq!(timed_out(&[]), "time limit of 0.4s exceeded");
    assert_eq!(
        timed_out(&["--profile", "patient"]),
        "time limit of 2s exceeded"
    );
    let mut with_flag = vec!["run", p, "-c", "scenario=spin", "--timeout", "100ms"];
    with_flag.push("--json");
    assert_eq!(lab.cli(&with_flag).status.code(), Some(3));
    let newest = lab
        .ws()
        .jobs(None)
        .unwrap()
        .into_iter()
        .max_by_key(|j| j.created_at)
        .unwrap();
    assert_eq!(
        newest.message.as_deref(),
        Some("time limit of 0.1s exceeded"),
        "a flag beats the settings"
    );

    // Plugins by name from paths.plugins.
    let plugins = lab.dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    std::fs::copy(&probe, plugins.join("probe.wasm")).unwrap();
    let rel = plugins.to_str().unwrap();
    assert!(lab
        .cli(&["config", "set", "paths.plugins", rel])
        .status
        .success());
    let out = lab.cli(&["run", "probe", "-c", "scenario=all-api"]);
    assert!(out.status.success(), "{}", stderr(&out));

    for (args, want) in [
        (
            vec!["config", "set", "limits.speed", "1"],
            "unknown setting `limits.speed`",
        ),
        (
            vec!["config", "set", "limits.memory", "lots"],
            "invalid size `lots`",
        ),
        (vec!["config", "set", "workers", "0"], "invalid workers `0`"),
        (
            vec!["--profile", "nope", "config", "show"],
            "no profile `nope`",
        ),
    ] {
        let out = lab.cli(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(stderr(&out).contains(want), "{args:?}: {}", stderr(&out));
        assert_eq!(stderr(&out).lines().count(), 1);
    }
    assert!(lab
        .cli(&["config", "unset", "limits.timeout"])
        .status
        .success());
    let show = stdout(&lab.cli(&["config", "show"]));
    assert!(
        squash(&show).contains("limits.timeout 1h default"),
        "{show}"
    );

    // A broken settings file is reported, not ignored.
    std::fs::write(lab.root().join("labhost.toml"), "wrokers = 2\n").unwrap();
    let out = lab.cli(&["run", p]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("unknown field `wrokers`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn cancel_from_another_process_leaves_the_rest_waiting() {
    let lab = Lab::new();
    let file = pipeline(
        &lab,
        "cancel",
        r#"
name = "cancel"
[stages.coop]
plugin = "{probe}"
config = { scenario = "cooperative" }
[stages.after]
plugin = "{probe}"
needs = ["coop"]
"#,
    );
    let child = Command::new(labhost_bin())
        .arg("--workspace")
        .arg(lab.root())
        .args(["pipeline", "run"])
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let until = Instant::now() + Duration::from_secs(60);
    while !lab
        .ws()
        .jobs(None)
        .unwrap()
        .iter()
        .any(|j| j.status == JobStatus::Running)
    {
        assert!(Instant::now() < until, "the job never started");
        std::thread::sleep(Duration::from_millis(10));
    }
    let (rec, _) = labhost::pipeline::find_run(lab.ws(), "2").unwrap();
    let mut watcher = Command::new(labhost_bin())
        .arg("--workspace")
        .arg(lab.root())
        .args(["pipeline", "status", "--watch", &rec.id])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Cancel only once the watcher has shown the run RUNNING: read its
    // output up to that line (the rest is read after the cancel).
    let (lines_tx, lines_rx) = std::sync::mpsc::channel::<String>();
    let watcher_out = watcher.stdout.take().unwrap();
    let collect = std::thread::spawn(move || {
        let mut text = String::new();
        for line in std::io::BufRead::lines(std::io::BufReader::new(watcher_out)) {
            let line = line.unwrap();
            text.push_str(&line);
            text.push('\n');
            let _ = lines_tx.send(line);
        }
        text
    });
    loop {
        let line = lines_rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the watcher shows the run RUNNING");
        if line.contains("RUNNING") {
            break;
        }
    }
    let out = lab.cli(&["pipeline", "cancel", &rec.id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(
        watcher.wait().unwrap().code(),
        Some(4),
        "--watch ends with the run"
    );
    let text = collect.join().unwrap();
    assert!(
        text.contains("RUNNING") && text.contains("pipeline cancel  CANCELLED"),
        "{text}"
    );
    let (rec, _) = labhost::pipeline::find_run(lab.ws(), &rec.id).unwrap();
    assert_eq!(rec.status, RunStatus::Cancelled);
    assert_eq!(status_of(&rec, "coop"), InstanceStatus::Cancelled);
    assert_eq!(
        status_of(&rec, "after"),
        InstanceStatus::Waiting,
        "resume would run it"
    );
    let out = lab.cli(&["pipeline", "cancel", &rec.id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("is not running (CANCELLED)"),
        "{}",
        stderr(&out)
    );
}

/// A runner killed between starting a job and writing it down: resume
/// finds the job by its pipeline reference and goes on from its checkpoint.
#[test]
fn resume_adopts_a_job_the_killed_runner_did_not_record() {
    let lab = Lab::new();
    let ctl = lab.dir.path().join("ctl");
    std::fs::create_dir(&ctl).unwrap();
    let file = pipeline(
        &lab,
        "orphan",
        r#"
name = "orphan"
[stages.flaky]
plugin = "{probe}"
config = { scenario = "flaky", count = 2, target = "/ctl/attempts" }
dirs = ["ctl::/ctl:rw"]
"#,
    );
    let run = create(&lab, &file).unwrap();
    let id = run.record().id.clone();
    drop(run); // the "killed" runner: nothing executed, lock released

    // The job it had started (attempt 1 fails after a checkpoint).
    let probe = lab.load("rust", "probe");
    let mut spec = lab.spec(
        &probe,
        serde_json::json!({"scenario": "flaky", "count": 2, "target": "/ctl/attempts"}),
    );
    spec.experiment = "orphan".into();
    spec.sandbox.grants.dirs = vec![format!("{}::/ctl:rw", ctl.display()).parse().unwrap()];
    spec.pipeline = Some(labhost::PipelineRef {
        run: id.clone(),
        instance: "flaky".into(),
        attempt: 1,
    });
    let orphan = lab.run(spec);
    assert_eq!(orphan.status, JobStatus::Failed);

    let run = PipelineRun::resume(&lab.host, &id, None).unwrap();
    let rec = execute(&lab, run);
    assert_eq!(rec.status, RunStatus::Complete, "{rec:#?}");
    let flaky = rec.instance("flaky").unwrap();
    assert_eq!(flaky.attempts.len(), 2);
    assert_eq!(
        flaky.attempts[0].job_id.as_deref(),
        Some(orphan.id.as_str())
    );
    assert_eq!(flaky.attempts[0].failure, Some(FailureKind::PluginError));
    assert_eq!(
        flaky.attempts[1].resumed_from.as_deref(),
        Some(format!("{}:attempt-1", orphan.id).as_str())
    );
}
