//! Misbehaving plugins and bad inputs: each gets a clear message, a final
//! record, and nothing already stored is lost. What a job's guest does
//! (crashes, errors, limits, cooperative cancel) is in conformance, for
//! every language; here is what the host decides on its own: config and
//! grants refused before a job, bad components, forced cancel, the log
//! limit, dead hosts and the compile cache.

use std::time::Duration;

use labhost::{JobStatus, Workspace};
use labhost_tests::Lab;
use serde_json::json;

fn run_scenario(lab: &Lab, scenario: &str) -> labhost::JobRecord {
    let probe = lab.load("rust", "probe");
    lab.run(lab.spec(&probe, json!({"scenario": scenario})))
}

#[test]
fn config_is_validated_before_the_guest_starts() {
    let lab = Lab::new();
    let probe = lab.load("rust", "probe");
    let bad = [
        (json!({"nope": 1}), "invalid config: `probe` has no parameter `nope` (parameters: scenario, count, ratio, flag, extra, target)"),
        (json!({"count": "three"}), "invalid config: `count` must be an integer, got \"three\""),
        (json!({"count": 1.5, "flag": "yes"}), "invalid config: `count` must be an integer, got 1.5; `flag` must be a boolean, got \"yes\""),
        (json!({"ratio": true}), "invalid config: `ratio` must be a number, got true"),
    ];
    for (config, message) in bad {
        let err = lab.try_run(lab.spec(&probe, config.clone())).unwrap_err();
        assert_eq!(err.to_string(), message, "{config}");
    }
    assert!(
        lab.ws().jobs(None).unwrap().is_empty(),
        "no job is created for a bad config"
    );
    // Overrides from the command line are read by the parameter's type.
    let mut config = serde_json::Map::new();
    labhost::config::apply_override(&probe.info, &mut config, "count=7").unwrap();
    labhost::config::apply_override(&probe.info, &mut config, "scenario=42").unwrap();
    assert_eq!(
        serde_json::Value::Object(config),
        json!({"count": 7, "scenario": "42"})
    );
    let mut config = serde_json::Map::new();
    let err = labhost::config::apply_override(&probe.info, &mut config, "count=many").unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid config: `count` must be an integer, got `many`"
    );
}

#[test]
fn unknown_grants_are_refused_before_the_job() {
    let lab = Lab::new();
    let probe = lab.load("rust", "probe");
    let mut spec = lab.spec(&probe, json!({}));
    spec.sandbox.grants.datasets = vec!["missing".into()];
    let err = lab.try_run(spec).unwrap_err().to_string();
    assert_eq!(
        err,
        format!("no dataset `missing` in workspace {}", lab.root().display())
    );
    let mut spec = lab.spec(&probe, json!({}));
    spec.sandbox.grants.dirs = vec!["/definitely/not/here::/mnt/x".parse().unwrap()];
    assert_eq!(
        lab.try_run(spec).unwrap_err().to_string(),
        "directory grant: cannot open /definitely/not/here: No such file or directory (os error 2)"
    );
    assert!(lab.ws().jobs(None).unwrap().is_empty());
}

#[test]
fn bad_components_get_clear_errors() {
    let lab = Lab::new();
    let dir = lab.dir.path();
    let cases: Vec<(&str, Vec<u8>, String)> = vec![
        (
            "garbage.wasm",
            b"not wasm at all".to_vec(),
            "is not a valid WebAssembly component".into(),
        ),
        (
            "core.wasm",
            wat::parse_str("(module (func (export \"run\")))").unwrap(),
            "is a core WebAssembly module, not a component".into(),
        ),
        (
            "empty-component.wasm",
            wat::parse_str("(component)").unwrap(),
            "is not a labhost plugin (world lab:api/plugin) or predictor (world lab:api/predictor): no export `describe` found".into(),
        ),
        (
            "wrong-import.wasm",
            wat::parse_str(
                "(component (import \"lab:api/secret@9.9.9\" (instance (export \"peek\" (func)))))",
            )
            .unwrap(),
            "cannot be linked".into(),
        ),
    ];
    for (name, bytes, expected) in cases {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        let err = lab
            .host
            .load(&path)
            .err()
            .unwrap_or_else(|| panic!("{name} loaded"));
        let msg = err.to_string();
        assert!(msg.starts_with(&path.display().to_string()), "{msg}");
        assert!(msg.contains(&expected), "{name}: {msg}");
        assert!(!msg.contains('\n'), "one line: {msg}");
    }
    let err = lab
        .host
        .load(&dir.join("absent.wasm"))
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.starts_with("cannot read plugin") && err.contains("absent.wasm"),
        "{err}"
    );
}

/// A plugin that ignores should-stop is stopped after the grace period
/// (the cooperative case is in conformance, for every language).
#[test]
fn cancel_of_a_plugin_that_ignores_it_is_forced_after_the_grace() {
    let lab = Lab::new();
    let probe = lab.load("rust", "probe");
    let _guard = lab.rt.enter();
    let mut spec = lab.spec(&probe, json!({"scenario": "spin"}));
    spec.sandbox.limits.grace = Duration::from_millis(300);
    let mut handle = lab.host.start(spec).unwrap();
    // Cancel a started job (not one still being set up).
    let mut events = handle.events();
    lab.rt.block_on(async {
        loop {
            match events.recv().await.unwrap() {
                labhost::JobEvent::Started { .. } => break,
                labhost::JobEvent::Ended { status, message } => {
                    panic!("ended before it started: {status}: {message}")
                }
                _ => {}
            }
        }
    });
    handle.cancel();
    let rec = lab.rt.block_on(handle.wait()).unwrap();
    assert_eq!(
        (rec.status, rec.message.as_deref()),
        (
            JobStatus::Cancelled,
            Some("cancelled; the plugin did not stop within the 0.3s grace period")
        )
    );
}

#[test]
fn log_limit_truncates_with_a_marker() {
    let lab = Lab::new();
    let probe = lab.load("rust", "probe");
    let mut spec = lab.spec(&probe, json!({"scenario": "log-flood", "count": 200}));
    spec.sandbox.limits.log_bytes = 20_000;
    let rec = lab.run(spec);
    assert_eq!(rec.status, JobStatus::Complete);
    assert!(rec.log_truncated);
    let log = lab.log(&rec);
    assert!(
        log.contains("log truncated: the log limit of 19.5 KiB was reached"),
        "{}",
        &log[log.len().saturating_sub(500)..]
    );
    assert!(log.len() < 25_000, "{}", log.len());
}

#[test]
fn a_job_whose_host_died_is_reported_interrupted() {
    let lab = Lab::new();
    let rec = run_scenario(&lab, "fail");
    // Fake a crash: the record still says RUNNING and nobody holds the lock.
    let path = lab.job_dir(&rec).join("job.json");
    let mut disk = lab.stored_record(&rec);
    disk["status"] = json!("RUNNING");
    disk["ended_at"] = json!(null);
    std::fs::write(&path, serde_json::to_vec_pretty(&disk).unwrap()).unwrap();
    let ws = Workspace::open(lab.root()).unwrap();
    let (after, _) = ws.find_job(&rec.id).unwrap();
    assert_eq!(after.status, JobStatus::Interrupted);
    assert!(after
        .message
        .unwrap()
        .contains("died while the job was running"));
    // A RUNNING job whose host is alive (lock held) is left alone.
    let probe = lab.load("rust", "probe");
    let _guard = lab.rt.enter();
    let handle = lab
        .host
        .start(lab.spec(&probe, json!({"scenario": "cooperative"})))
        .unwrap();
    let ws = Workspace::open(lab.root()).unwrap();
    assert_eq!(
        ws.find_job(&handle.id).unwrap().0.status,
        JobStatus::Running
    );
    handle.cancel();
    assert_eq!(
        lab.rt.block_on(handle.wait()).unwrap().status,
        JobStatus::Cancelled
    );
}

#[test]
fn compile_cache_hits_and_rejects_a_tampered_entry() {
    let lab = Lab::new();
    let path = labhost_tests::guest("rust", "probe");
    let first = lab.host.load(&path).unwrap();
    assert_eq!(first.cache, labhost::CacheOutcome::Miss);
    assert_eq!(
        lab.host.load(&path).unwrap().cache,
        labhost::CacheOutcome::Hit
    );
    let cache = lab.host.cache().unwrap();
    let entries = cache.entries().unwrap();
    assert_eq!(entries.len(), 1);
    assert!(entries[0].key.starts_with(&first.digest));
    // Truncated, then altered in place: rejected, recompiled, still runs.
    for tamper in [
        |b: &mut Vec<u8>| b.truncate(b.len() / 2),
        |b: &mut Vec<u8>| {
            let mid = b.len() / 2;
            b[mid] ^= 0xff;
        },
    ] {
        let mut bytes = std::fs::read(&entries[0].path).unwrap();
        tamper(&mut bytes);
        std::fs::write(&entries[0].path, bytes).unwrap();
        let plugin = lab.host.load(&path).unwrap();
        assert_eq!(plugin.cache, labhost::CacheOutcome::Rejected);
        let rec = lab.run(lab.spec(&plugin, json!({"scenario": "fail"})));
        assert_eq!(rec.message.as_deref(), Some("probe failed on purpose"));
        assert_eq!(
            lab.host.load(&path).unwrap().cache,
            labhost::CacheOutcome::Hit
        );
    }
    assert_eq!(cache.clear().unwrap(), 1);
    assert_eq!(
        lab.host.load(&path).unwrap().cache,
        labhost::CacheOutcome::Miss
    );
}
