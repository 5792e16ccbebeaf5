//! Findings about the workspace store: records no reader can parse (2),
//! the recovery race (9), plugin files that are not files (low).

use crate::*;

/// A copy of `rec`'s directory as a new job `id`, whose record is `text`.
fn fake_job(a: &Arena, rec: &JobRecord, id: &str, text: &str) -> PathBuf {
    let dir = a.lab.job_dir(rec).with_file_name(id);
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("job.json"), text).unwrap();
    std::fs::write(dir.join(".lock"), "").unwrap();
    dir
}

/// Finding 2: eval scores whose mean overflows are stored with a finite
/// mean; and a record that cannot be parsed (here the old bug's shape,
/// `"mean_score": null`) no longer makes the workspace unreadable: opening
/// it, listing jobs and resolving names skip it and report it.
#[test]
fn h2_one_unreadable_record_leaves_the_workspace_readable() {
    let a = arena();
    let rec = a.attack("eval-overflow", json!({}), none);
    a.ended(&rec, JobStatus::Complete, "evals tried");
    a.expect_reports(&rec, &[("eval", "ok"), ("mean", &f64::MAX.to_string())]);
    assert_eq!(rec.evals[0].mean_score, f64::MAX);
    assert_eq!(
        a.lab.stored_record(&rec)["evals"][0]["mean_score"],
        json!(f64::MAX)
    );

    let mut bad: Value = a.lab.stored_record(&rec);
    bad["id"] = json!("20000101-000000-bad0");
    bad["status"] = json!("RUNNING");
    bad["evals"][0]["mean_score"] = Value::Null;
    let dir = fake_job(&a, &rec, "20000101-000000-bad0", &bad.to_string());

    // Another process opening the workspace (recovery scan) is not stopped.
    let ws = labhost::Workspace::open(a.lab.root()).unwrap();
    let scan = ws.scan_jobs(None).unwrap();
    assert!(scan.jobs.iter().any(|j| j.id == rec.id));
    assert_eq!(scan.unreadable.len(), 1);
    assert_eq!(scan.unreadable[0].path, dir.join("job.json"));
    assert!(
        scan.unreadable[0].error.starts_with("corrupt record "),
        "{}",
        scan.unreadable[0].error
    );
    // The bad record was neither "recovered" nor rewritten.
    assert_eq!(
        std::fs::read_to_string(dir.join("job.json")).unwrap(),
        bad.to_string()
    );
    let out = a.lab.cli(&["jobs"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        labhost_tests::stderr(&out)
    );
    assert!(labhost_tests::stdout(&out).contains(&rec.id));
    assert!(labhost_tests::stderr(&out).starts_with(&format!(
        "warning: skipped an unreadable record {}: corrupt record ",
        dir.join("job.json").display()
    )));
    // verify reports it and fails; the good job's files still verify.
    let out = a.lab.cli(&["verify"]);
    assert_eq!(out.status.code(), Some(1));
    let err = labhost_tests::stderr(&out);
    assert!(
        err.starts_with(&format!(
            "problem: unreadable record {}: corrupt record ",
            dir.join("job.json").display()
        )) && err.contains("\nerror: 1 problems ("),
        "{err}"
    );
}

/// Finding 9: the recovery scan takes a job's lock before it decides, and
/// decides from the record read under the lock. A job whose host holds the
/// lock is left alone; the same job is recovered once the lock is free;
/// and jobs that complete while other processes keep opening the workspace
/// are never rewritten as INTERRUPTED.
#[test]
fn h9_recovery_decides_under_the_job_lock() {
    let a = arena();
    let ws = a.lab.ws().clone();
    let (id, paths, lock) = ws.create_job_dir("racing").unwrap();
    let probe = a.lab.run(a.lab.spec(&a.probe, json!({})));
    let mut running: Value = a.lab.stored_record(&probe);
    running["id"] = json!(id);
    running["experiment"] = json!("racing");
    running["status"] = json!("RUNNING");
    std::fs::write(paths.record(), running.to_string()).unwrap();
    assert!(ws.recover_interrupted().unwrap().is_empty(), "lock held");
    drop(lock);
    assert_eq!(ws.recover_interrupted().unwrap(), std::slice::from_ref(&id));
    assert_eq!(
        ws.job("racing", &id).unwrap().0.status,
        JobStatus::Interrupted
    );

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let opener = {
        let (stop, root) = (stop.clone(), a.lab.root().to_owned());
        std::thread::spawn(move || {
            let mut opened = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                labhost::Workspace::open(&root).unwrap();
                opened += 1;
            }
            opened
        })
    };
    let mut ids = Vec::new();
    for _ in 0..60 {
        let mut spec = a.lab.spec(&a.probe, json!({}));
        spec.experiment = "raced".into();
        ids.push(a.lab.run(spec).id);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(opener.join().unwrap() > 0);
    for id in ids {
        let (rec, _) = ws.job("raced", &id).unwrap();
        assert_eq!(rec.status, JobStatus::Complete, "{id}: {:?}", rec.message);
    }
}

/// Low: a plugin path that is a device or a FIFO is refused at once
/// (neither read without end nor waited on).
#[test]
fn plugin_files_must_be_regular_files() {
    let a = arena();
    let err = a
        .lab
        .host
        .load(Path::new("/dev/zero"))
        .unwrap_err()
        .to_string();
    assert_eq!(err, "cannot read plugin /dev/zero: not a regular file");
    let fifo = a.lab.dir.path().join("plugin.fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let err = a.lab.host.load(&fifo).unwrap_err().to_string();
    assert_eq!(
        err,
        format!("cannot read plugin {}: not a regular file", fifo.display())
    );
}
