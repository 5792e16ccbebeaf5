//! Hostile guests: the `evil` plugin attacks the host (spins, exhausts
//! memory, stack and handles, floods the log and the store, tries to leave
//! its grants through paths and symlinks, looks for the network, the
//! environment and host files). Each attack runs under tight limits while a
//! well-behaved job runs in the same host; each test checks the attack's
//! exact end (status + message), what the guest observed, that the
//! well-behaved job completes, and that nothing outside the grants changed.
//!
//! The red team's findings (issue 11) each have a test named after them,
//! by category: `hostile/filesystem.rs` (1, 3, 4, 11), `store.rs` (2, 9),
//! `describe.rs` (5, 6), `time.rs` (6), `output.rs` (7), `limits.rs`
//! (8, 10, 12), `registry.rs` (13), and the low-severity ones beside them.

mod hostile {
    pub mod describe;
    pub mod egress;
    pub mod filesystem;
    pub mod limits;
    pub mod output;
    pub mod registry;
    pub mod store;
    pub mod time;
}

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use labhost::{DirGrant, JobEvent, JobRecord, JobSpec, JobStatus, Plugin};
use labhost_tests::Lab;
use serde_json::{json, Value};

/// A lab with the evil and probe plugins, and host files outside the
/// workspace for the attacks to aim at.
struct Arena {
    lab: Lab,
    evil: Arc<Plugin>,
    probe: Arc<Plugin>,
    /// Files outside every grant (in the test's tempdir).
    outside: PathBuf,
    /// A host directory the `symlinks` attack gets as a writable grant.
    links: PathBuf,
}

fn arena() -> Arena {
    let lab = Lab::new();
    let root = lab.dir.path().to_owned();
    let outside = root.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret.txt"), "secret\n").unwrap();
    std::fs::write(outside.join("hard-src.txt"), "hard\n").unwrap();
    let links = root.join("links");
    std::fs::create_dir_all(&links).unwrap();
    std::fs::write(links.join("plain.txt"), "plain\n").unwrap();
    std::os::unix::fs::symlink("/etc", links.join("etc")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", links.join("b")).unwrap();
    std::os::unix::fs::symlink("b", links.join("a")).unwrap();
    std::os::unix::fs::symlink(outside.join("secret.txt"), links.join("w")).unwrap();
    // Same filesystem (both in the tempdir), so the hard link can be made.
    std::fs::hard_link(outside.join("hard-src.txt"), links.join("hard")).unwrap();
    let evil = lab.load("rust", "evil");
    let probe = lab.load("rust", "probe");
    Arena {
        lab,
        evil,
        probe,
        outside,
        links,
    }
}

/// Every path under `dir` (not following symlinks) except `skip`, with its
/// kind, size and blake3 (or symlink target).
fn snapshot(dir: &Path, skip: &Path, out: &mut BTreeMap<PathBuf, String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path == skip {
            continue;
        }
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let desc = if meta.file_type().is_symlink() {
            format!("link -> {}", std::fs::read_link(&path).unwrap().display())
        } else if meta.is_dir() {
            snapshot(&path, skip, out);
            "dir".to_string()
        } else {
            format!("file {} {}", meta.len(), labhost_tests::blake3_file(&path))
        };
        out.insert(path, desc);
    }
}

impl Arena {
    /// What exists outside the workspace: the test's tempdir (the granted
    /// `links` dir included) and the host files the attacks aim at.
    fn outside_state(&self) -> BTreeMap<PathBuf, String> {
        let mut out = BTreeMap::new();
        let root = self.lab.dir.path();
        snapshot(root, &root.join("ws"), &mut out);
        for p in ["/etc/passwd", "/etc/hostname"] {
            if let Ok(bytes) = std::fs::read(p) {
                out.insert(p.into(), blake3::hash(&bytes).to_hex().to_string());
            }
        }
        for p in [
            "/etc/labhost-pwned",
            "/etc/labhost-pwned-dir",
            "/tmp/labhost-evil",
        ] {
            out.insert(p.into(), Path::new(p).exists().to_string());
        }
        out
    }

    /// Run `attack` under tight limits (changed by `tweak`), with a
    /// well-behaved probe job started in the same host while the attack
    /// runs. Asserts the probe completes and nothing outside the grants
    /// changed; returns the attack's final record.
    fn attack(&self, attack: &str, extra: Value, tweak: impl FnOnce(&mut JobSpec)) -> JobRecord {
        let before = self.outside_state();
        let registry_before = self.registry();
        let lab = &self.lab;
        let mut config = json!({ "attack": attack });
        config
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let mut spec = lab.spec(&self.evil, config);
        let limits = &mut spec.sandbox.limits;
        // Generous for the attacks that end by themselves (the machine may
        // be busy); the runaway ones use `spin` (2 s).
        limits.timeout = Duration::from_secs(20);
        limits.grace = Duration::from_millis(500);
        limits.memory_bytes = 64 << 20;
        limits.log_bytes = 256 << 10;
        limits.stored_bytes = 1 << 20;
        limits.stored_files = 50;
        limits.handles = 256;
        tweak(&mut spec);

        let _guard = lab.rt.enter();
        let mut handle = lab.host.start(spec).unwrap();
        // Start the well-behaved job once the attack is under way.
        let mut events = handle.events();
        lab.rt.block_on(async {
            loop {
                match events.recv().await {
                    Ok(JobEvent::Log { message, .. }) if message.starts_with("probe: attack ") => {
                        break
                    }
                    Ok(JobEvent::Ended { .. })
                    | Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                    _ => {}
                }
            }
        });
        let good = lab.host.start(lab.spec(&self.probe, json!({}))).unwrap();
        let good = lab.rt.block_on(good.wait()).unwrap();
        let rec = lab.rt.block_on(handle.wait()).unwrap();
        assert_eq!(
            (good.status, good.message.as_deref()),
            (JobStatus::Complete, Some("all calls made")),
            "the well-behaved job next to `{attack}`:\n{}",
            lab.log(&good)
        );

        // The record on disk says what the handle returned.
        let disk = lab.stored_record(&rec);
        assert_eq!(disk["status"], rec.status.as_str(), "{attack}");
        assert_eq!(disk["message"], json!(rec.message), "{attack}");
        assert!(disk["ended_at"].is_string(), "{attack}");

        let after = self.outside_state();
        assert_eq!(
            before, after,
            "`{attack}` changed something outside its grants"
        );
        // New registry entries carry the id of one of the two jobs; no
        // temp leftovers.
        for name in self.registry().difference(&registry_before) {
            assert!(
                name.ends_with(&rec.id) || name.ends_with(&good.id),
                "{name} after `{attack}`"
            );
        }
        rec
    }

    /// `models/<id>` and `datasets/<id>` entries of the workspace.
    fn registry(&self) -> std::collections::BTreeSet<String> {
        let mut out = std::collections::BTreeSet::new();
        for reg in ["models", "datasets"] {
            for e in std::fs::read_dir(self.lab.root().join(reg))
                .into_iter()
                .flatten()
            {
                let name = e.unwrap().file_name().to_string_lossy().into_owned();
                out.insert(format!("{reg}/{name}"));
            }
        }
        out
    }

    fn report(&self, rec: &JobRecord, key: &str) -> String {
        self.lab.report(rec, key)
    }

    /// Every value of the repeated report `key`, in order.
    fn reports(&self, rec: &JobRecord, key: &str) -> Vec<String> {
        self.lab
            .reports(rec)
            .into_iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v)
            .collect()
    }

    /// Assert each `(key, value)` report of `rec`.
    fn expect_reports(&self, rec: &JobRecord, expected: &[(&str, &str)]) {
        for (key, value) in expected {
            assert_eq!(
                self.report(rec, key),
                *value,
                "report `{key}` of `{}`",
                rec.config["attack"]
            );
        }
    }

    /// Assert the attack's final status and exact message; the log's last
    /// line says the same (host lines survive log truncation).
    fn ended(&self, rec: &JobRecord, status: JobStatus, message: &str) {
        let attack = &rec.config["attack"];
        assert_eq!(
            (rec.status, rec.message.as_deref()),
            (status, Some(message)),
            "{attack}: {}",
            self.tail(rec)
        );
        let log = self.lab.log(rec);
        assert!(
            log.trim_end()
                .ends_with(&format!("job ended {status}: {message}")),
            "{attack}: {}",
            self.tail(rec)
        );
    }

    fn tail(&self, rec: &JobRecord) -> String {
        let log = self.lab.log(rec);
        let mut start = log.len().saturating_sub(3000);
        while !log.is_char_boundary(start) {
            start += 1;
        }
        log[start..].to_owned()
    }

    /// Run the CLI on this workspace in a shell whose descriptor limit is
    /// `ulimit -n nofile` (soft and hard).
    fn cli_with_nofile(&self, nofile: u32, args: &[&str]) -> std::process::Output {
        let mut script = format!(
            "ulimit -n {nofile} && exec {} --workspace {}",
            labhost_tests::labhost_bin().display(),
            self.lab.root().display()
        );
        for a in args {
            script.push_str(&format!(" '{a}'"));
        }
        std::process::Command::new("sh")
            .args(["-c", &script])
            .output()
            .unwrap()
    }

    fn file_names(&self, dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

fn none(_: &mut JobSpec) {}

/// For attacks that never end by themselves: a 2 s time limit.
fn spin(spec: &mut JobSpec) {
    spec.sandbox.limits.timeout = Duration::from_secs(2);
}

#[test]
fn runaway_loops_are_stopped_by_the_time_limit() {
    let a = arena();
    let rec = a.attack("loop", json!({}), spin);
    a.ended(&rec, JobStatus::Failed, "time limit of 2s exceeded");

    // Lab calls in a tight loop: the host keeps serving them, should-stop
    // turns true at the soft deadline (timeout - grace), and the guest that
    // ignores it is still stopped at the deadline.
    let rec = a.attack("call-storm", json!({}), spin);
    a.ended(&rec, JobStatus::Failed, "time limit of 2s exceeded");
    let calls: u64 = a
        .report(&rec, "should-stop-seen-after-calls")
        .parse()
        .unwrap();
    assert!(calls > 0);
    assert!(rec.progress >= 0.0 && rec.progress <= 100.0);
}

#[test]
fn memory_and_stack_exhaustion_end_the_job() {
    let a = arena();
    let rec = a.attack("memory-bomb", json!({}), none);
    a.ended(
        &rec,
        JobStatus::Failed,
        "memory limit of 64 MiB exceeded (the plugin asked for 65.1 MiB)",
    );
    assert_eq!(a.reports(&rec, "allocated-mib"), ["16", "32", "48"]);
    assert!(a
        .lab
        .log(&rec)
        .contains(" STDERR memory allocation of 16777216 bytes failed"));

    // 3.5 GiB: Vec refuses it on wasm32 (over isize::MAX), memory.grow is
    // refused by the limiter, and the largest Vec wasm32 allows ends the job.
    let rec = a.attack("huge-alloc", json!({}), none);
    a.ended(
        &rec,
        JobStatus::Failed,
        "memory limit of 64 MiB exceeded (the plugin asked for 1.8 GiB)",
    );
    a.expect_reports(
        &rec,
        &[
            ("try-reserve", "err(memory allocation failed because the computed capacity exceeded the collection's maximum)"),
            ("memory-grow", "refused"),
        ],
    );
    assert!(a.reports(&rec, "big-vec").is_empty());

    // Big frames overflow Rust's shadow stack (in linear memory, first in
    // the address space): an out-of-bounds trap, which the message explains.
    let rec = a.attack("stack-overflow", json!({}), none);
    a.ended(
        &rec,
        JobStatus::Failed,
        "plugin crashed: wasm trap: out of bounds memory access (often a stack overflow: the guest's stack lives in its linear memory)",
    );
    // Tiny frames exhaust wasmtime's native wasm stack.
    let rec = a.attack("deep-recursion", json!({}), none);
    a.ended(
        &rec,
        JobStatus::Failed,
        "plugin crashed: wasm trap: call stack exhausted",
    );
}

#[test]
fn handle_exhaustion_ends_the_job() {
    let a = arena();
    let msg = "handle limit of 256 live handles (open files, streams, pollables) exceeded";
    // Open files: one handle each (+ the preopens and stdio).
    let rec = a.attack("resource-bomb", json!({}), none);
    a.ended(&rec, JobStatus::Failed, msg);
    assert_eq!(a.reports(&rec, "opened"), ["100", "200"]);
    // The host ends the job: the guest never sees an open error.
    assert!(a.reports(&rec, "open-error").is_empty());
    // Directory listings: a descriptor and a stream each.
    let rec = a.attack("resource-bomb", json!({"target": "dirs"}), none);
    a.ended(&rec, JobStatus::Failed, msg);
    assert_eq!(a.reports(&rec, "opened"), ["100"]);
}

#[test]
fn paths_given_to_the_lab_api_stay_inside_the_grants() {
    let a = arena();
    let rec = a.attack("path-escapes", json!({}), none);
    a.ended(&rec, JobStatus::Complete, "escapes tried");
    let expected = [
        ("dotdot", "denied"),
        ("dotdot-passwd", "denied"),
        ("etc-passwd", "denied"),
        ("work-dotdot-etc", "denied"),
        // `/work/x/` names the file /work/x: stored, inside the grant.
        ("trailing-slash", "ok"),
        ("dot-dotdot", "denied"),
        ("root", "denied"),
        ("workx", "denied"),
        ("empty", "invalid-argument"),
        ("nul", "invalid-argument"),
        ("long", "invalid-argument"),
    ];
    for (path, outcome) in expected {
        for call in ["artifact", "checkpoint", "model", "dataset"] {
            assert_eq!(
                a.report(&rec, &format!("{call}:{path}")),
                outcome,
                "{call} of `{path}`"
            );
        }
    }
    assert_eq!(
        a.report(&rec, "long-message"),
        "path longer than 4096 bytes"
    );
    a.expect_reports(&rec, &[("artifacts", "1"), ("checkpoints", "1")]);
    // Only the trailing-slash saves were stored, holding /work/x.
    let names = |v: &[labhost::store::StoredRecord]| -> Vec<String> {
        v.iter().map(|s| s.name.clone()).collect()
    };
    assert_eq!(names(&rec.artifacts), ["art-5"]);
    assert_eq!(names(&rec.checkpoints), ["ckpt-5"]);
    assert_eq!(
        labhost_tests::blake3_file(&a.lab.root().join(&rec.artifacts[0].location)),
        blake3::hash(b"x").to_hex().to_string()
    );
    let models: Vec<String> = a
        .lab
        .ws()
        .models()
        .unwrap()
        .into_iter()
        .filter(|m| m.job_id == rec.id)
        .map(|m| m.id)
        .collect();
    assert_eq!(models, [format!("model-5-{}", rec.id)]);
    let datasets: Vec<String> = a
        .lab
        .ws()
        .datasets()
        .unwrap()
        .into_iter()
        .filter(|d| d.job_id == rec.id)
        .map(|d| d.id)
        .collect();
    assert_eq!(datasets, [format!("data-5-{}", rec.id)]);
}

#[test]
fn symlinks_in_a_granted_dir_lead_nowhere() {
    let a = arena();
    let links = a.links.clone();
    let rec = a.attack("symlinks", json!({"target": "/mnt/links"}), |s| {
        s.sandbox.grants.dirs = vec![DirGrant {
            host: links,
            guest: "/mnt/links".into(),
            writable: true,
        }];
    });
    a.ended(&rec, JobStatus::Complete, "symlinks tried");
    a.expect_reports(
        &rec,
        &[
            // etc -> /etc
            ("save:etc", "denied"),
            ("read:etc", "unreadable(PermissionDenied)"),
            ("list:etc", "unlistable(PermissionDenied)"),
            ("save:etc-passwd", "denied"),
            ("read:etc-passwd", "unreadable(PermissionDenied)"),
            // a -> b -> /etc/passwd
            ("save:chain", "denied"),
            ("read:chain", "unreadable(PermissionDenied)"),
            ("save:chain-mid", "denied"),
            ("read:chain-mid", "unreadable(PermissionDenied)"),
            // w -> a file of the test's tempdir outside the grant
            ("save:out-file", "denied"),
            ("read:out-file", "unreadable(PermissionDenied)"),
            // The whole dir holds symlinks: refused as a whole.
            ("save:whole-dir", "denied"),
            // Writes through the links (the grant is writable).
            ("write:out-file", "PermissionDenied"),
            ("write:chain", "PermissionDenied"),
            ("write:etc-new", "PermissionDenied"),
            ("mkdir:etc", "PermissionDenied"),
            ("remove:out-file", "PermissionDenied"),
            // A hard link *is* the file, inside the grant: the operator
            // granted it, so it is readable and storable.
            ("save:hard", "ok"),
            ("read:hard", "readable"),
            ("artifacts", "1"),
        ],
    );
    assert_eq!(rec.artifacts.len(), 1);
    assert_eq!(rec.artifacts[0].name, "s-hard");
    assert_eq!(
        rec.artifacts[0].blake3,
        labhost_tests::blake3_file(&a.outside.join("hard-src.txt"))
    );
}

#[test]
fn long_names_are_refused() {
    let a = arena();
    let rec = a.attack("long-names", json!({}), none);
    // The 10 kB finish message is clipped to 4096 bytes.
    let clipped = format!("{}…", "m".repeat(4096));
    a.ended(&rec, JobStatus::Complete, &clipped);
    for key in [
        "artifact",
        "artifact-default-name",
        "checkpoint",
        "model",
        "dataset",
        "dataset-file",
        "eval",
        "metric",
        "stage",
        "score",
    ] {
        assert_eq!(a.report(&rec, key), "invalid-argument", "{key}");
    }
    assert_eq!(a.report(&rec, "artifacts"), "0");
    assert!(rec.scores.is_empty() && rec.evals.is_empty());
    assert!(a
        .lab
        .ws()
        .models()
        .unwrap()
        .iter()
        .all(|m| m.job_id != rec.id));
    assert!(a
        .lab
        .ws()
        .datasets()
        .unwrap()
        .iter()
        .all(|d| d.job_id != rec.id));
}

#[test]
fn log_floods_are_cut_at_the_log_limit() {
    let a = arena();
    let limit = 256 << 10;
    let marker = "log truncated: the log limit of 256 KiB was reached; later lines are dropped";
    for attack in ["log-flood", "stdout-flood"] {
        let rec = a.attack(attack, json!({}), spin);
        a.ended(&rec, JobStatus::Failed, "time limit of 2s exceeded");
        assert!(rec.log_truncated, "{attack}");
        let log = a.lab.log(&rec);
        assert_eq!(log.len() as u64, rec.log_bytes, "{attack}");
        assert!(rec.log_bytes <= limit + 200, "{attack}: {}", rec.log_bytes);
        assert_eq!(log.matches(marker).count(), 1, "{attack}");
    }
    // One ~40 MiB log call: dropped whole, the job goes on.
    let rec = a.attack("huge-log-line", json!({}), none);
    a.ended(&rec, JobStatus::Complete, "logged a huge line");
    assert!(rec.log_truncated);
    assert!(rec.log_bytes <= limit);
    assert!(a.lab.log(&rec).contains(marker));
}

#[test]
fn metric_and_store_floods() {
    let a = arena();
    let rec = a.attack("metric-flood", json!({"count": 1000}), none);
    a.ended(&rec, JobStatus::Complete, "recorded 1000 metrics");
    let metrics = std::fs::read_to_string(a.lab.job_dir(&rec).join("metrics.jsonl")).unwrap();
    assert_eq!(metrics.lines().count(), 1000);
    // Forever: metrics.jsonl stops at its limit; the plugin gets
    // limit-exceeded (and here returns it).
    let rec = a.attack("metric-flood", json!({}), |s| {
        s.sandbox.limits.metrics_bytes = 64 << 10
    });
    a.ended(
        &rec,
        JobStatus::Failed,
        "plugin returned an error: limit exceeded: metrics limit of 64 KiB reached; metric `flood` not recorded",
    );
    let size = std::fs::metadata(a.lab.job_dir(&rec).join("metrics.jsonl"))
        .unwrap()
        .len();
    assert!(size <= 64 << 10 && size > 60 << 10, "{size}");

    // Tiny artifacts one by one: the 51st is refused, the 50 stay.
    let rec = a.attack("many-artifacts", json!({}), none);
    a.ended(&rec, JobStatus::Complete, "saved 50 artifacts");
    a.expect_reports(
        &rec,
        &[
            ("error", "limit-exceeded"),
            ("error-message", "stored-files limit of 50 reached"),
            ("saved", "50"),
            ("listed", "50"),
        ],
    );
    assert_eq!(rec.artifacts.len(), 50);
    let stored = a.file_names(&a.lab.job_dir(&rec).join("artifacts"));
    assert_eq!(stored.len(), 50, "no temp files left: {stored:?}");
    assert!(stored.iter().all(|n| n.starts_with('f')), "{stored:?}");

    // More bytes than the stored-bytes limit, by every kind of store.
    let rec = a.attack("big-store", json!({}), none);
    a.ended(&rec, JobStatus::Complete, "stored too much");
    a.expect_reports(
        &rec,
        &[
            ("artifact", "limit-exceeded"),
            ("artifact-message", "stored-bytes limit of 1 MiB reached"),
            ("checkpoint", "limit-exceeded"),
            ("dataset-rows", "limit-exceeded"),
            ("model", "limit-exceeded"),
            ("checkpoints", "0"),
        ],
    );
    // Refused stores are refunded: a small artifact still fits afterwards.
    assert_eq!(a.report(&rec, "small"), "ok");
    assert_eq!(rec.artifacts.len(), 1);
    for dir in ["artifacts", "checkpoints"] {
        let left = a.file_names(&a.lab.job_dir(&rec).join(dir));
        assert!(
            left.iter().all(|n| n == "small.txt"),
            "temp files left in {dir}: {left:?}"
        );
    }
    for reg in ["models", "datasets"] {
        let left = a.file_names(&a.lab.root().join(reg));
        assert!(
            left.iter().all(|n| !n.starts_with(".tmp")),
            "{reg}: {left:?}"
        );
    }

    // The scratch dir has its own limit; under it the job completes and
    // /work is removed when the job ends.
    let rec = a.attack("disk-fill", json!({"count": 64}), none);
    a.ended(&rec, JobStatus::Complete, "wrote 64 MiB to /work");
    assert_eq!(a.report(&rec, "written-mib"), "64");
    assert!(!a.lab.job_dir(&rec).join("work").exists());
    // Filling it forever ends the job within about a second of the limit.
    let rec = a.attack("disk-fill", json!({}), |s| {
        s.sandbox.limits.scratch_bytes = 16 << 20
    });
    assert_eq!(rec.status, JobStatus::Failed);
    let msg = rec.message.clone().unwrap();
    assert!(
        msg.starts_with("scratch limit of 16 MiB exceeded (/work holds "),
        "{msg}"
    );
    assert!(!a.lab.job_dir(&rec).join("work").exists());
}

#[test]
fn lab_calls_after_the_end_and_bad_progress() {
    let a = arena();
    let rec = a.attack("after-finish", json!({}), none);
    // The first finish is final; the error returned afterwards is logged.
    assert_eq!(
        (rec.status, rec.message.as_deref()),
        (JobStatus::Complete, Some("finished first"))
    );
    assert!(a.lab.log(&rec).contains(
        "plugin returned an error after ending the job: returned an error after finishing"
    ));
    assert_eq!(rec.scores.get("a"), Some(&1.0));
    a.expect_reports(
        &rec,
        &[
            ("fail", "invalid-argument"),
            ("finish", "invalid-argument"),
            ("progress", "ok"),
            ("metric", "ok"),
            ("artifact", "ok"),
        ],
    );
    assert_eq!(a.lab.stored_record(&rec)["status"], "COMPLETE");

    let rec = a.attack("bad-progress", json!({}), none);
    a.ended(&rec, JobStatus::Complete, "progress tried");
    a.expect_reports(
        &rec,
        &[
            ("minus-5", "invalid-argument"),
            ("150", "invalid-argument"),
            ("nan", "invalid-argument"),
            ("inf", "invalid-argument"),
            ("neg-zero", "ok"),
            ("100", "ok"),
            ("stage-newline", "invalid-argument"),
            ("stage-long", "invalid-argument"),
        ],
    );
    assert_eq!((rec.progress, rec.stage.as_deref()), (42.0, Some("ok")));
}

#[test]
fn no_environment_network_threads_or_host_files() {
    let a = arena();
    let rec = a.attack("env", json!({}), none);
    a.ended(&rec, JobStatus::Complete, "env read");
    a.expect_reports(
        &rec,
        &[
            ("vars", "0"),
            ("var-names", ""),
            ("home", "false"),
            ("path", "false"),
            ("args", "0"),
            ("cwd", "/"),
        ],
    );
    // Only what is granted is visible.
    let rec = a.attack("env", json!({}), |s| {
        s.sandbox.grants.env = vec![("LAB_K".into(), "v".into())];
    });
    a.expect_reports(
        &rec,
        &[("vars", "1"), ("var-names", "LAB_K"), ("home", "false")],
    );

    let rec = a.attack("network", json!({}), none);
    a.ended(&rec, JobStatus::Complete, "network tried");
    a.expect_reports(
        &rec,
        &[
            ("tcp-localhost", "PermissionDenied"),
            ("tcp-dns", "Uncategorized"),
            ("udp-bind", "PermissionDenied"),
            ("tcp-listen", "PermissionDenied"),
            ("dns", "Uncategorized"),
        ],
    );

    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let rec = a.attack("host-files", json!({"target": home}), none);
    a.ended(&rec, JobStatus::Complete, "host files tried");
    a.expect_reports(
        &rec,
        &[
            ("etc-passwd", "unreadable(NotFound)"),
            ("etc-shadow", "unreadable(NotFound)"),
            ("proc-environ", "unreadable(NotFound)"),
            ("proc-maps", "unreadable(NotFound)"),
            ("work-dotdot", "unreadable(PermissionDenied)"),
            ("home", "unreadable(NotFound)"),
            ("list-root", "unlistable(NotFound)"),
            ("list-home-dir", "unlistable(NotFound)"),
            ("write-tmp", "NotFound"),
            ("write-work-dotdot", "PermissionDenied"),
        ],
    );

    let rec = a.attack("threads", json!({}), none);
    a.ended(&rec, JobStatus::Complete, "threads tried");
    assert_eq!(a.report(&rec, "spawn"), "Unsupported");

    // exit(0) without finish(): a failure that says what happened.
    let rec = a.attack("exit", json!({}), none);
    a.ended(
        &rec,
        JobStatus::Failed,
        "plugin exited (status 0) without calling finish() or fail()",
    );
}
