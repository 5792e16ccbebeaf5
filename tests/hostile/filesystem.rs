//! Findings about the guest's files: deep trees (1), planted symlinks (3),
//! the scratch limit (4), sparse files and long copies (11), grants that
//! overlap the workspace (low).

use crate::*;

/// A writable grant `<t>/a/out` in its own tempdir `t` (outside the
/// arena's watched tree: the attack is expected to change it), beside a
/// directory `<t>/escape` that `out/../../escape` would reach.
fn out_grant(guest: &str) -> (tempfile::TempDir, DirGrant) {
    let t = tempfile::tempdir().unwrap();
    let host = t.path().canonicalize().unwrap().join("a/out");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::create_dir_all(t.path().join("escape")).unwrap();
    let g = DirGrant {
        host,
        guest: guest.into(),
        writable: true,
    };
    (t, g)
}

/// Finding 1: a tree 16,000 levels deep in `/work` is removed when the
/// job ends, without aborting the host (the neighbour job completes, the
/// test process lives) and without leaving anything behind.
#[test]
fn h1_a_deep_tree_in_work_is_removed_without_harm() {
    let a = arena();
    let rec = a.attack("deep-tree", json!({}), none);
    // 16,000 levels make host paths of 32 KB: the scratch watcher ends the
    // job when its walk (about once a second) meets one over 4096 bytes,
    // unless the guest was quicker and finished first. Either way the
    // host lives and removes the tree.
    let msg = rec.message.clone().unwrap();
    if rec.status == JobStatus::Complete {
        a.ended(&rec, JobStatus::Complete, "built a tree 16000 deep");
        a.expect_reports(&rec, &[("depth", "16000")]);
    } else {
        assert!(
            msg.starts_with("scratch paths may not be longer than 4096 bytes (/work holds one of "),
            "{msg}"
        );
        a.ended(&rec, JobStatus::Failed, &msg);
        assert_eq!(rec.failure, Some(labhost::FailureKind::ResourceLimit));
    }
    assert!(!a.lab.job_dir(&rec).join("work").exists());
    let trash = a.lab.root().join(".trash");
    assert!(
        a.file_names(&trash).is_empty(),
        "{:?}",
        a.file_names(&trash)
    );
}

/// Finding 1, with the common `ulimit -n 1024`: a 2,000-deep tree is still
/// removed (std's recursive removal held one descriptor per level and gave
/// up silently).
#[test]
fn h1_a_deep_tree_is_removed_under_a_low_descriptor_limit() {
    let a = arena();
    let evil = labhost_tests::guest("rust", "evil");
    let out = a.cli_with_nofile(
        1024,
        &[
            "run",
            "--json",
            evil.to_str().unwrap(),
            "-c",
            "attack=deep-tree",
            "-c",
            "count=2000",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        labhost_tests::stderr(&out)
    );
    let jobs = a.lab.ws().jobs(None).unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].message.as_deref(), Some("built a tree 2000 deep"));
    assert!(!a.lab.job_dir(&jobs[0]).join("work").exists());
}

/// Finding 3: a job plants `results -> ../../escape` in its writable grant;
/// a later job granted a path through that symlink is refused before it
/// starts (nothing is written outside), and a grant through real
/// directories is recorded by its resolved path.
#[test]
fn h3_a_planted_symlink_cannot_redirect_a_later_grant() {
    let a = arena();
    let (t, out) = out_grant("/mnt/out");
    let host_out = out.host.clone();
    let rec = a.attack(
        "plant-symlink",
        json!({"target": "/mnt/out", "link": "../../escape"}),
        |s| s.sandbox.grants.dirs = vec![out],
    );
    a.ended(&rec, JobStatus::Complete, "planted");
    a.expect_reports(&rec, &[("symlink", "ok"), ("real", "ok")]);
    assert_eq!(
        std::fs::read_link(host_out.join("results")).unwrap(),
        Path::new("../../escape")
    );

    let escape = t.path().join("escape");
    let mut spec = a
        .lab
        .spec(&a.evil, json!({"attack": "write-grant", "target": "/in"}));
    spec.sandbox.grants.dirs = vec![DirGrant {
        host: host_out.join("results"),
        guest: "/in".into(),
        writable: true,
    }];
    let err = a.lab.try_run(spec).unwrap_err().to_string();
    let shown = host_out.join("results");
    assert_eq!(
        err,
        format!(
            "directory grant: cannot open {0}: `{0}` is a symlink; grants are opened without following symlinks (give the resolved path)",
            shown.display()
        )
    );
    assert!(!escape.join("owned.txt").exists());

    // Through real directories (and `..`): runs, recorded resolved.
    let mut spec = a
        .lab
        .spec(&a.evil, json!({"attack": "write-grant", "target": "/in"}));
    spec.sandbox.grants.dirs = vec![DirGrant {
        host: host_out.join("real/../real"),
        guest: "/in".into(),
        writable: true,
    }];
    let rec = a.lab.run(spec);
    assert_eq!(rec.status, JobStatus::Complete, "{}", a.lab.log(&rec));
    assert_eq!(rec.sandbox.grants.dirs[0].host, host_out.join("real"));
    assert_eq!(
        std::fs::read(host_out.join("real/owned.txt")).unwrap(),
        b"owned\n"
    );
}

/// Finding 3 in a pipeline: a stage's `dirs` entry through a symlink an
/// earlier job planted is refused when the run is created.
#[test]
fn h3_a_pipeline_dir_through_a_planted_symlink_is_refused() {
    let a = arena();
    let (t, out) = out_grant("/mnt/out");
    let host_out = out.host.clone();
    let rec = a.attack(
        "plant-symlink",
        json!({"target": "/mnt/out", "link": "../../escape"}),
        |s| s.sandbox.grants.dirs = vec![out],
    );
    a.ended(&rec, JobStatus::Complete, "planted");
    assert!(t.path().join("escape").is_dir());
    let file = a.lab.dir.path().join("p.toml");
    std::fs::write(
        &file,
        format!(
            "name = \"p\"\n[stages.w]\nplugin = \"{}\"\nconfig = {{ attack = \"write-grant\", target = \"/in\" }}\ndirs = [\"{}::/in:rw\"]\n",
            labhost_tests::guest("rust", "evil").display(),
            host_out.join("results").display()
        ),
    )
    .unwrap();
    let out = a.lab.cli(&["pipeline", "run", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = labhost_tests::stderr(&out);
    assert!(
        err.starts_with("error: stage `w`: dir: cannot open ") && err.contains("is a symlink"),
        "{err}"
    );
}

/// Finding 4: bytes written below a path longer than PATH_MAX end the job
/// (the walk is descriptor-relative; such paths are refused outright).
#[test]
fn h4_a_path_longer_than_path_max_ends_the_job() {
    let a = arena();
    let rec = a.attack("long-path-scratch", json!({}), |s| {
        s.sandbox.limits.scratch_bytes = 256 << 20;
    });
    let work = a.lab.job_dir(&rec).join("work");
    // `<work>/aaa…(×20 levels of 250)/f`
    let longest = work.as_os_str().len() + 20 * 251 + 2;
    a.ended(
        &rec,
        JobStatus::Failed,
        &format!(
            "scratch paths may not be longer than 4096 bytes (/work holds one of {longest} bytes)"
        ),
    );
    assert_eq!(rec.failure, Some(labhost::FailureKind::ResourceLimit));
}

/// Finding 4: a file the guest unlinked but keeps open still counts.
#[test]
fn h4_an_unlinked_open_file_counts_against_the_scratch_limit() {
    let a = arena();
    let rec = a.attack("unlinked-scratch", json!({}), |s| {
        s.sandbox.limits.scratch_bytes = 64 << 20;
    });
    a.expect_reports(&rec, &[("unlinked", "ok")]);
    let msg = rec.message.clone().unwrap();
    assert_eq!(rec.status, JobStatus::Failed, "{msg}");
    assert!(
        msg.starts_with("scratch limit of 64 MiB exceeded (/work holds "),
        "{msg}"
    );
    assert_eq!(rec.failure, Some(labhost::FailureKind::ResourceLimit));
}

/// Finding 11: a 1 TiB sparse file is refused against the quota before a
/// byte is copied, every time; nothing is left behind.
#[test]
fn h11_a_sparse_file_is_refused_before_copying() {
    let a = arena();
    let rec = a.attack("sparse-store", json!({}), |s| {
        s.sandbox.limits.stored_bytes = 8 << 30;
    });
    a.ended(&rec, JobStatus::Complete, "sparse tried");
    a.expect_reports(
        &rec,
        &[
            ("sparse-bytes", &(1u64 << 40).to_string()),
            ("save", "limit-exceeded"),
            ("save-message", "stored-bytes limit of 8 GiB reached"),
            ("save2", "limit-exceeded"),
        ],
    );
    assert!(rec.artifacts.is_empty());
    assert!(a
        .file_names(&a.lab.job_dir(&rec).join("artifacts"))
        .is_empty());
}

/// Finding 11 / 6: a long host copy stops at the job's deadline (checked
/// between copy steps), not when the copy is done.
#[test]
fn h11_a_long_host_copy_stops_at_the_deadline() {
    let a = arena();
    let rec = a.attack("sparse-store", json!({"count": 64}), |s| {
        s.sandbox.limits.stored_bytes = 128 << 30;
        s.sandbox.limits.timeout = Duration::from_secs(1);
        s.sandbox.limits.grace = Duration::from_millis(200);
    });
    a.ended(&rec, JobStatus::Failed, "time limit of 1s exceeded");
    assert!(a.reports(&rec, "save").is_empty());
    assert!(a
        .file_names(&a.lab.job_dir(&rec).join("artifacts"))
        .is_empty());
}

/// Low: a grant that covers the workspace (or lies inside it) is refused:
/// the guest could otherwise rewrite records, stored files or the compile
/// cache.
#[test]
fn grants_overlapping_the_workspace_are_refused() {
    let a = arena();
    let root = a.lab.root().to_owned();
    for (host, guest) in [
        (root.clone(), "/mnt/ws"),
        (root.parent().unwrap().to_owned(), "/mnt/up"),
        (root.join("models"), "/mnt/m"),
    ] {
        let mut spec = a.lab.spec(&a.probe, json!({}));
        spec.sandbox.grants.dirs = vec![DirGrant {
            host: host.clone(),
            guest: guest.into(),
            writable: false,
        }];
        let err = a.lab.try_run(spec).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "directory grant {}: overlaps the labhost workspace {} (a plugin could rewrite job records, stored files or the compile cache)",
                host.display(),
                root.display()
            )
        );
    }
    assert!(a.lab.ws().jobs(None).unwrap().is_empty());
}
