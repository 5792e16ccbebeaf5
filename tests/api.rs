//! Every lab API call, driven through the probe guest and the real host.

use labhost::{DirGrant, JobStatus};
use labhost_tests::{blake3_file, Lab};
use serde_json::json;

#[test]
fn every_call_of_the_lab_api() {
    let lab = Lab::new();
    let probe = lab.load("rust", "probe");
    let rec = lab.run(lab.spec(&probe, json!({"count": 5, "extra": {"k": [1, 2]}})));
    assert_eq!(
        rec.status,
        JobStatus::Complete,
        "{:?}\n{}",
        rec.message,
        lab.log(&rec)
    );
    assert_eq!(rec.message.as_deref(), Some("all calls made"));
    assert_eq!(rec.scores.get("calls"), Some(&20.0));

    // config: defaults filled, overrides kept, as one JSON object.
    let config: serde_json::Value = serde_json::from_str(&lab.report(&rec, "config")).unwrap();
    assert_eq!(
        config,
        json!({"scenario": "all-api", "count": 5, "ratio": 0.5, "flag": false, "extra": {"k": [1, 2]}, "target": ""})
    );
    assert_eq!(lab.report(&rec, "job-id"), rec.id);
    assert_eq!(lab.report(&rec, "experiment"), "default");
    assert_eq!(lab.report(&rec, "work-dir"), "/work");

    // log: every level lands in output.log with its tag.
    let log = lab.log(&rec);
    for (tag, level) in [
        ("TRACE", "Trace"),
        ("DEBUG", "Debug"),
        ("INFO", "Info"),
        ("WARN", "Warn"),
        ("ERROR", "Error"),
    ] {
        assert!(
            log.lines()
                .any(|l| l.contains(&format!(" {tag:<6} level Level::{level}"))),
            "{tag} missing:\n{log}"
        );
    }

    // progress and metrics: bad values are invalid-argument; good ones stored.
    assert_eq!(lab.report(&rec, "progress-over-100"), "invalid-argument");
    assert_eq!(lab.report(&rec, "progress-nan"), "invalid-argument");
    assert_eq!(lab.report(&rec, "metric-nan"), "invalid-argument");
    assert_eq!((rec.progress, rec.stage.as_deref()), (100.0, Some("done")));
    let metrics = std::fs::read_to_string(lab.job_dir(&rec).join("metrics.jsonl")).unwrap();
    let points: Vec<serde_json::Value> = metrics
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let losses: Vec<(u64, f64)> = points
        .iter()
        .filter(|p| p["name"] == "loss")
        .map(|p| (p["step"].as_u64().unwrap(), p["value"].as_f64().unwrap()))
        .collect();
    assert_eq!(losses, vec![(0, 1.0), (1, 0.5), (2, 1.0 / 3.0)]);
    assert!(points
        .iter()
        .any(|p| p["name"] == "lr" && p.get("step").is_none()));

    // artifacts: a file and a directory, digests match the stored bytes.
    assert_eq!(rec.artifacts.len(), 2);
    let file = &rec.artifacts[0];
    assert_eq!(
        (file.name.as_str(), file.size, file.is_dir),
        ("hello.txt", 15, false)
    );
    assert_eq!(file.blake3, blake3_file(&lab.root().join(&file.location)));
    assert_eq!(lab.report(&rec, "artifact-dup"), "invalid-argument");
    assert_eq!(lab.report(&rec, "artifact-missing"), "not-found");
    let dir = &rec.artifacts[1];
    assert_eq!(
        (dir.name.as_str(), dir.size, dir.is_dir),
        ("bundle-dir", 3, true)
    );
    let mut paths: Vec<&str> = dir.files.iter().map(|f| f.path.as_str()).collect();
    paths.sort();
    assert_eq!(paths, ["a.txt", "sub/b.txt"]);
    for f in &dir.files {
        assert_eq!(
            f.blake3,
            blake3_file(&lab.root().join(&dir.location).join(&f.path))
        );
    }
    assert_eq!(lab.report(&rec, "artifacts"), "2");

    // checkpoints.
    assert_eq!(lab.report(&rec, "checkpoints"), "step-7");
    assert_eq!(lab.report(&rec, "resume"), "none");

    // models: record with metadata; metadata must be a JSON object.
    let models = lab.ws().models().unwrap();
    assert_eq!(models.len(), 1);
    let m = &models[0];
    assert_eq!(
        (
            m.name.as_str(),
            m.architecture.as_deref(),
            m.parent_model.as_deref()
        ),
        ("probe-model", Some("probe-arch"), Some("base-model"))
    );
    assert_eq!(m.metadata, json!({"layers": 2}));
    assert_eq!(lab.report(&rec, "model-bad-metadata"), "invalid-argument");

    // datasets: rows (JSON objects only) and files.
    let datasets = lab.ws().datasets().unwrap();
    let rows = datasets.iter().find(|d| d.name == "probe-rows").unwrap();
    assert_eq!(rows.rows, Some(2));
    assert_eq!(rows.description.as_deref(), Some("two rows"));
    let file = datasets.iter().find(|d| d.name == "probe-file").unwrap();
    assert_eq!(file.rows, None);
    assert_eq!(lab.report(&rec, "dataset-not-object"), "invalid-argument");
    assert_eq!(lab.report(&rec, "datasets"), "2");
    assert!(lab
        .ws()
        .datasets()
        .unwrap()
        .iter()
        .all(|d| d.name != "probe-bad"));
    // Opening a dataset that was not granted is denied.
    assert_eq!(lab.report(&rec, "open-ungranted"), "denied");

    // evals: CSV and JSONL tables with count and mean score.
    assert_eq!(rec.evals.len(), 2);
    for e in &rec.evals {
        assert_eq!((e.count, e.mean_score), (3, 0.5));
    }
    let csv = std::fs::read_to_string(lab.root().join(&rec.evals[0].file.location)).unwrap();
    assert_eq!(csv.lines().count(), 4);
    assert!(csv.contains("\"b, with comma\""), "{csv}");
    let jsonl = std::fs::read_to_string(lab.root().join(&rec.evals[1].file.location)).unwrap();
    let first: serde_json::Value = serde_json::from_str(jsonl.lines().next().unwrap()).unwrap();
    assert_eq!(first["input"], "a");
    assert_eq!(first["score"], 1.0);
    assert_eq!(lab.report(&rec, "should-stop"), "false");
}

#[test]
fn resume_mounts_the_checkpoint_read_only() {
    let lab = Lab::new();
    let probe = lab.load("rust", "probe");
    let first = lab.run(lab.spec(&probe, json!({})));
    assert_eq!(first.status, JobStatus::Complete);
    let mut spec = lab.spec(&probe, json!({}));
    spec.resume = Some(labhost::ResumePoint::latest(first.id.clone()));
    let second = lab.run(spec);
    assert_eq!(second.status, JobStatus::Complete, "{:?}", second.message);
    assert_eq!(
        lab.report(&second, "resume"),
        format!("{} step-7 {{\"step\":7}}", first.id)
    );
    assert_eq!(lab.report(&second, "resume-write"), "denied");

    // Unknown job or checkpoint: refused before a job is created.
    let jobs_before = lab.ws().jobs(None).unwrap().len();
    let mut spec = lab.spec(&probe, json!({}));
    spec.resume = Some(labhost::ResumePoint::at(&first.id, "nope"));
    let err = lab.try_run(spec).unwrap_err().to_string();
    assert_eq!(err, format!("job {} has no checkpoint `nope`", first.id));
    let mut spec = lab.spec(&probe, json!({}));
    spec.resume = Some(labhost::ResumePoint::latest("no-such-job"));
    assert!(lab
        .try_run(spec)
        .unwrap_err()
        .to_string()
        .starts_with("no job `no-such-job`"));
    assert_eq!(lab.ws().jobs(None).unwrap().len(), jobs_before);
}

#[test]
fn granted_datasets_and_models_are_read_only() {
    let lab = Lab::new();
    let probe = lab.load("rust", "probe");
    let made = lab.run(lab.spec(&probe, json!({})));
    let ds = lab
        .ws()
        .datasets()
        .unwrap()
        .into_iter()
        .find(|d| d.name == "probe-rows")
        .unwrap();
    let model = lab.ws().models().unwrap().remove(0);

    let mut spec = lab.spec(
        &probe,
        json!({"scenario": "open", "target": "dataset:probe-rows"}),
    );
    spec.sandbox.grants.datasets = vec!["probe-rows".into()];
    let rec = lab.run(spec);
    assert_eq!(rec.status, JobStatus::Complete, "{:?}", rec.message);
    assert_eq!(lab.report(&rec, "path"), format!("/datasets/{}", ds.id));
    assert_eq!(lab.report(&rec, "files"), "data.jsonl");
    assert_eq!(lab.report(&rec, "write"), "denied");

    let mut spec = lab.spec(
        &probe,
        json!({"scenario": "open", "target": format!("model:{}", model.id)}),
    );
    spec.sandbox.grants.models = vec![model.id.clone()];
    let rec = lab.run(spec);
    assert_eq!(rec.status, JobStatus::Complete, "{:?}", rec.message);
    assert_eq!(lab.report(&rec, "path"), format!("/models/{}", model.id));
    assert_eq!(lab.report(&rec, "files"), "weights.bin");
    assert_eq!(lab.report(&rec, "write"), "denied");
    let _ = made;
}

#[test]
fn bad_names_are_refused_and_nothing_is_written() {
    let lab = Lab::new();
    let probe = lab.load("rust", "probe");
    let rec = lab.run(lab.spec(&probe, json!({"scenario": "bad-names"})));
    assert_eq!(rec.status, JobStatus::Complete, "{:?}", rec.message);
    let reports = lab.reports(&rec);
    let names: Vec<_> = reports
        .iter()
        .filter(|(k, _)| k.starts_with("artifact-name"))
        .collect();
    assert_eq!(names.len(), 8, "{reports:?}");
    for (k, v) in &names {
        assert_eq!(v, "invalid-argument", "{k}");
    }
    for k in [
        "checkpoint-name",
        "model-name",
        "dataset-name",
        "eval-name",
        "metric-name",
    ] {
        assert_eq!(lab.report(&rec, k), "invalid-argument", "{k}");
    }
    assert_eq!(lab.report(&rec, "artifacts"), "0");
    assert!(rec.artifacts.is_empty() && rec.checkpoints.is_empty() && rec.evals.is_empty());
    assert_eq!(
        std::fs::read_dir(lab.job_dir(&rec).join("artifacts"))
            .unwrap()
            .count(),
        0
    );
    assert!(lab.ws().models().unwrap().is_empty());
    assert!(lab.ws().datasets().unwrap().is_empty());
}

#[test]
fn paths_and_symlinks_cannot_leave_the_grants() {
    let lab = Lab::new();
    let probe = lab.load("rust", "probe");
    // A granted directory holding symlinks that point out of it.
    let evil = lab.dir.path().join("evil");
    std::fs::create_dir_all(evil.join("dir")).unwrap();
    std::fs::write(evil.join("dir/ok.txt"), "ok").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", evil.join("link")).unwrap();
    std::os::unix::fs::symlink("../../../../../../../../etc", evil.join("dir/up")).unwrap();
    let mut spec = lab.spec(&probe, json!({"scenario": "escape", "target": "/mnt/evil"}));
    spec.sandbox.grants.dirs = vec![DirGrant {
        host: evil.clone(),
        guest: "/mnt/evil".into(),
        writable: false,
    }];
    let rec = lab.run(spec);
    assert_eq!(
        rec.status,
        JobStatus::Complete,
        "{:?}\n{}",
        rec.message,
        lab.log(&rec)
    );
    assert_eq!(lab.report(&rec, "etc-passwd"), "denied");
    assert_eq!(lab.report(&rec, "dotdot"), "denied");
    assert_eq!(lab.report(&rec, "relative-dotdot"), "denied");
    assert_eq!(lab.report(&rec, "open-etc"), "unreadable");
    assert_eq!(lab.report(&rec, "symlink-file"), "denied");
    assert_eq!(lab.report(&rec, "symlink-in-dir"), "denied");
    assert_eq!(lab.report(&rec, "symlink-read"), "unreadable");
    assert_eq!(lab.report(&rec, "artifacts"), "0");
    assert!(rec.artifacts.is_empty());
}

#[test]
fn dir_grants_are_read_only_unless_rw() {
    let lab = Lab::new();
    let probe = lab.load("rust", "probe");
    let data = lab.dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("in.txt"), "host data\n").unwrap();
    for (spec_str, write) in [
        (format!("{}", data.display()), "denied"),
        (format!("{}:rw", data.display()), "allowed"),
    ] {
        let grant: DirGrant = spec_str.parse().unwrap();
        assert_eq!(grant.guest, "/mnt/data");
        let mut spec = lab.spec(
            &probe,
            json!({"scenario": "read", "target": "/mnt/data/in.txt"}),
        );
        spec.sandbox.grants.dirs = vec![grant];
        let rec = lab.run(spec);
        assert_eq!(lab.report(&rec, "content"), "host data");
        assert_eq!(lab.report(&rec, "write"), write, "{spec_str}");
    }
    assert!(
        data.join("in.txt.new").exists(),
        "the :rw grant wrote through"
    );
    // Without a grant the host file does not exist for the guest.
    let target = data.join("in.txt");
    let rec = lab.run(lab.spec(
        &probe,
        json!({"scenario": "read", "target": target.to_str().unwrap()}),
    ));
    assert_eq!(lab.report(&rec, "read-error"), "entity not found");
}

#[test]
fn guest_stdout_and_stderr_go_to_the_log() {
    let lab = Lab::new();
    let probe = lab.load("rust", "probe");
    let rec = lab.run(lab.spec(&probe, json!({"scenario": "stdio"})));
    assert_eq!(rec.status, JobStatus::Complete);
    let log = lab.log(&rec);
    assert!(log.contains(" STDOUT hello from stdout"), "{log}");
    assert!(log.contains(" STDERR hello from stderr"), "{log}");
}
