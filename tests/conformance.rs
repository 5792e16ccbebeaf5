//! Cross-language conformance: the probe exists in every guest language
//! (guests/rust/testing/probe, guests/python/probe, guests/js/probe,
//! guests/c/probe) with the same
//! description, scenarios and `probe: KEY VALUE` reports. Each test runs the
//! same scenarios against every language and holds them to one set of
//! expectations; where a language genuinely differs it says so explicitly
//! (see `Lang`).
//!
//! Each test loads each probe once. The labs share one compile cache under
//! the cargo target dir, so only the first load of a component after it
//! changed pays Cranelift (~8 s for the 18 MB Python component).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use labhost::store::StoredRecord;
use labhost::{DirGrant, JobRecord, JobStatus, Plugin};
use labhost_tests::{blake3_file, Lab};
use serde_json::json;

/// Every guest language with a probe.
const LANGS: [Lang; 4] = [Lang::Rust, Lang::Python, Lang::C, Lang::Js];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lang {
    Rust,
    Python,
    C,
    Js,
}

impl Lang {
    fn dir(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::Python => "python",
            Lang::C => "c",
            Lang::Js => "js",
        }
    }

    /// What a crash (Rust panic, uncaught Python exception) leaves in the
    /// log besides the message: the language's own report of it.
    fn crash_report(self) -> &'static [&'static str] {
        match self {
            Lang::Rust => &["panicked at", "probe panicked on purpose"],
            Lang::Python => &[
                "Traceback (most recent call last):",
                "RuntimeError: probe panicked on purpose",
            ],
            // C has no panic report: the probe prints its message to stderr
            // before `__builtin_trap()`.
            Lang::C => &["probe panicked on purpose"],
            // JS: the SDK reports the uncaught exception, then the engine
            // aborts (a thrown Error cannot be lowered as the `err` string).
            Lang::Js => &["Uncaught Error: probe panicked on purpose"],
        }
    }

    /// Output printed without a final newline: Rust's line-buffered stdout
    /// keeps it in the guest (a component never exits, so it is never
    /// flushed); Python writes it through and the host logs the partial line
    /// when the job ends.
    fn unterminated_stdout_reaches_the_log(self) -> bool {
        match self {
            Lang::Rust => false,
            Lang::Python => true,
            // The C SDK flushes stdout when run() returns.
            Lang::C => true,
            // The JS SDK's `lab.print` writes straight to wasi:cli/stdout.
            Lang::Js => true,
        }
    }
}

/// Run `test` once per language, each with its own lab and the probe loaded once.
fn for_each_lang(mut test: impl FnMut(Lang, &Lab, &Arc<Plugin>)) {
    for lang in LANGS {
        let lab = Lab::with_shared_cache();
        let probe = lab.load(lang.dir(), "probe");
        test(lang, &lab, &probe);
    }
}

/// The reports of a job with its id replaced by `JOB`.
fn reports(lab: &Lab, rec: &JobRecord) -> Vec<String> {
    lab.reports(rec)
        .into_iter()
        .map(|(k, v)| format!("{k} {v}").replace(&rec.id, "JOB"))
        .collect()
}

/// A stored record as one comparable line, after checking every digest
/// against the bytes on disk.
fn stored(lab: &Lab, s: &StoredRecord, job_id: &str) -> String {
    let at = lab.root().join(&s.location);
    if s.is_dir {
        assert_eq!(
            s.files.iter().map(|f| f.size).sum::<u64>(),
            s.size,
            "{}",
            s.name
        );
        for f in &s.files {
            assert_eq!(
                f.blake3,
                blake3_file(&at.join(&f.path)),
                "{} {}",
                s.name,
                f.path
            );
        }
    } else {
        assert_eq!(s.blake3, blake3_file(&at), "{}", s.name);
        assert_eq!(std::fs::metadata(&at).unwrap().len(), s.size, "{}", s.name);
    }
    let mut files: Vec<String> = s
        .files
        .iter()
        .map(|f| format!("{}:{}:{}", f.path, f.size, f.blake3))
        .collect();
    files.sort();
    format!(
        "{} {} {} dir={} {} [{}]",
        s.name,
        s.size,
        s.blake3,
        s.is_dir,
        s.location.replace(job_id, "JOB"),
        files.join(" ")
    )
}

#[test]
fn describe_is_the_same_in_every_language() {
    let mut seen = Vec::new();
    for_each_lang(|lang, _lab, probe| {
        let info = &probe.info;
        assert_eq!(
            (
                info.name.as_str(),
                info.version.as_str(),
                info.kind.as_str()
            ),
            ("probe", "0.1.0", "other"),
            "{lang:?}"
        );
        assert_eq!(
            info.description,
            "Conformance probe: exercises the lab API per scenario"
        );
        let params: Vec<(String, &str, Option<serde_json::Value>, String)> = info
            .params
            .iter()
            .map(|p| {
                (
                    p.name.clone(),
                    p.ty.as_str(),
                    p.default.clone(),
                    p.description.clone(),
                )
            })
            .collect();
        let expected = vec![
            ("scenario", "text", Some(json!("all-api")), "What to do"),
            (
                "count",
                "integer",
                Some(json!(3)),
                "A number some scenarios use",
            ),
            ("ratio", "number", Some(json!(0.5)), "A number"),
            ("flag", "boolean", Some(json!(false)), "A boolean"),
            ("extra", "json", Some(json!({})), "Free JSON"),
            (
                "target",
                "text",
                Some(json!("")),
                "A path, id or name some scenarios use",
            ),
        ];
        let expected: Vec<_> = expected
            .into_iter()
            .map(|(n, t, d, s)| (n.to_owned(), t, d, s.to_owned()))
            .collect();
        assert_eq!(params, expected, "{lang:?}");
        let imports: Vec<&str> = probe
            .imports
            .iter()
            .filter(|i| i.starts_with("lab:api/"))
            .map(String::as_str)
            .collect();
        seen.push((
            lang,
            imports.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        ));
    });
    // Both probes import every lab interface.
    for (lang, imports) in &seen {
        assert_eq!(
            imports, &seen[0].1,
            "{lang:?} imports the same lab interfaces"
        );
    }
}

#[test]
fn every_call_of_the_lab_api() {
    let mut fingerprints: Vec<(Lang, Vec<String>)> = Vec::new();
    for_each_lang(|lang, lab, probe| {
        let rec = lab.run(lab.spec(probe, json!({"count": 5, "extra": {"k": [1, 2]}})));
        assert_eq!(
            (rec.status, rec.message.as_deref()),
            (JobStatus::Complete, Some("all calls made")),
            "{lang:?}\n{}",
            lab.log(&rec)
        );
        assert_eq!(
            rec.scores,
            BTreeMap::from([("calls".to_owned(), 20.0), ("mean".to_owned(), 0.5)]),
            "{lang:?}"
        );

        // Every report, in order, with the same values.
        let hello = blake3::hash(b"hello artifact\n").to_hex().to_string();
        let bundle = &rec.artifacts[1].blake3;
        let expected = [
            r#"config {"count":5,"extra":{"k":[1,2]},"flag":false,"ratio":0.5,"scenario":"all-api","target":""}"#.to_owned(),
            "job-id JOB".into(),
            "experiment default".into(),
            "work-dir /work".into(),
            "progress-over-100 invalid-argument".into(),
            "progress-nan invalid-argument".into(),
            "metric-nan invalid-argument".into(),
            format!("artifact hello.txt 15 {hello}"),
            format!("artifact bundle-dir 3 {bundle} files=2"),
            "artifact-dup invalid-argument".into(),
            "artifact-missing not-found".into(),
            "artifacts 2".into(),
            "checkpoints step-7".into(),
            "resume none".into(),
            "model probe-model-JOB probe-model files=1".into(),
            "models 1".into(),
            "model-bad-metadata invalid-argument".into(),
            "dataset probe-rows-JOB probe-rows rows=Some(2)".into(),
            "dataset-not-object invalid-argument".into(),
            "dataset-file probe-file-JOB rows=None".into(),
            "datasets 2".into(),
            "open-ungranted denied".into(),
            "eval probe-eval count=3 mean=0.5".into(),
            "eval probe-eval-jsonl count=3 mean=0.5".into(),
            "should-stop false".into(),
        ];
        assert_eq!(reports(lab, &rec), expected, "{lang:?}");

        // log: every level with its tag.
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
                "{lang:?}: {tag} missing:\n{log}"
            );
        }

        // progress and metrics.
        assert_eq!(
            (rec.progress, rec.stage.as_deref()),
            (100.0, Some("done")),
            "{lang:?}"
        );
        let metrics = std::fs::read_to_string(lab.job_dir(&rec).join("metrics.jsonl")).unwrap();
        let points: Vec<(String, f64, Option<u64>)> = metrics
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .map(|p| {
                (
                    p["name"].as_str().unwrap().to_owned(),
                    p["value"].as_f64().unwrap(),
                    p["step"].as_u64(),
                )
            })
            .collect();
        assert_eq!(
            points,
            vec![
                ("loss".into(), 1.0, Some(0)),
                ("loss".into(), 0.5, Some(1)),
                ("loss".into(), 1.0 / 3.0, Some(2)),
                ("lr".into(), 0.1, None),
            ],
            "{lang:?}"
        );

        // Stored records: the job's, the registry's, each digest checked on disk.
        let mut fp = Vec::new();
        for s in rec.artifacts.iter().chain(&rec.checkpoints) {
            fp.push(stored(lab, s, &rec.id));
        }
        for e in &rec.evals {
            fp.push(format!(
                "eval {} {} {} {}",
                e.name,
                e.count,
                e.mean_score,
                stored(lab, &e.file, &rec.id)
            ));
        }
        let models = lab.ws().models().unwrap();
        assert_eq!(models.len(), 1, "{lang:?}");
        for m in &models {
            assert_eq!(m.id, format!("probe-model-{}", rec.id));
            fp.push(format!(
                "model {} {:?} {:?} {:?} {} {}",
                m.name,
                m.architecture,
                m.pipeline_tag,
                m.parent_model,
                m.metadata,
                stored(lab, &m.files, &rec.id)
            ));
        }
        let mut datasets = lab.ws().datasets().unwrap();
        datasets.sort_by(|a, b| a.name.cmp(&b.name));
        for d in &datasets {
            fp.push(format!(
                "dataset {} {:?} {:?} {} {}",
                d.name,
                d.rows,
                d.description,
                d.metadata,
                stored(lab, &d.files, &rec.id)
            ));
        }
        // A few of them spelled out (the rest must match across languages).
        assert_eq!(rec.artifacts[0].blake3, hello);
        assert_eq!(
            (
                rec.artifacts[1].name.as_str(),
                rec.artifacts[1].size,
                rec.artifacts[1].is_dir
            ),
            ("bundle-dir", 3, true)
        );
        assert_eq!(models[0].metadata, json!({"layers": 2}));
        assert_eq!(
            datasets
                .iter()
                .map(|d| (d.name.as_str(), d.rows))
                .collect::<Vec<_>>(),
            [("probe-file", None), ("probe-rows", Some(2))],
            "{lang:?}: no `probe-bad` dataset"
        );
        let rows = std::fs::read_to_string(
            lab.root()
                .join(&datasets[1].files.location)
                .join("data.jsonl"),
        )
        .unwrap();
        assert_eq!(
            rows, "{\"label\":1,\"text\":\"a\"}\n{\"label\":0,\"text\":\"b\"}\n",
            "{lang:?}"
        );
        let csv = std::fs::read_to_string(lab.root().join(&rec.evals[0].file.location)).unwrap();
        assert_eq!(csv.lines().count(), 4, "{lang:?}");
        assert!(csv.contains("\"b, with comma\""), "{lang:?}: {csv}");
        let ckpt = std::fs::read_to_string(lab.root().join(&rec.checkpoints[0].location)).unwrap();
        assert_eq!(ckpt, r#"{"step":7}"#, "{lang:?}");
        fingerprints.push((lang, fp));

        // Resume: the checkpoint is mounted read-only under /resume.
        let mut spec = lab.spec(probe, json!({}));
        spec.resume = Some(labhost::ResumePoint::latest(rec.id.clone()));
        let second = lab.run(spec);
        assert_eq!(
            second.status,
            JobStatus::Complete,
            "{lang:?}: {:?}",
            second.message
        );
        assert_eq!(
            lab.report(&second, "resume"),
            format!("{} step-7 {{\"step\":7}}", rec.id),
            "{lang:?}"
        );
        assert_eq!(lab.report(&second, "resume-write"), "denied", "{lang:?}");

        // Granted datasets and models: readable at their path, not writable.
        for (target, grant_ds, grant_model, path, files) in [
            (
                "dataset:probe-rows".to_owned(),
                vec![datasets[1].id.clone()],
                vec![],
                format!("/datasets/{}", datasets[1].id),
                "data.jsonl",
            ),
            (
                format!("model:{}", models[0].id),
                vec![],
                vec![models[0].id.clone()],
                format!("/models/{}", models[0].id),
                "weights.bin",
            ),
        ] {
            let mut spec = lab.spec(probe, json!({"scenario": "open", "target": target}));
            spec.sandbox.grants.datasets = grant_ds;
            spec.sandbox.grants.models = grant_model;
            let rec = lab.run(spec);
            assert_eq!(
                (rec.status, rec.message.as_deref()),
                (JobStatus::Complete, Some("opened")),
                "{lang:?} {target}"
            );
            assert_eq!(
                reports(lab, &rec),
                [
                    format!("path {path}"),
                    format!("files {files}"),
                    "write denied".into()
                ],
                "{lang:?} {target}"
            );
        }
    });
    // Byte-identical results in every language.
    for (lang, fp) in &fingerprints {
        assert_eq!(
            fp, &fingerprints[0].1,
            "{lang:?} stored the same as {:?}",
            fingerprints[0].0
        );
    }
}

#[test]
fn job_outcomes_of_misbehaving_plugins() {
    for_each_lang(|lang, lab, probe| {
        let run = |scenario: &str| lab.run(lab.spec(probe, json!({"scenario": scenario})));
        let cases = [
            (
                "trap",
                JobStatus::Failed,
                "plugin crashed: wasm trap: wasm `unreachable` instruction executed",
            ),
            (
                "return-error",
                JobStatus::Failed,
                "plugin returned an error: probe returned an error on purpose",
            ),
            (
                "unknown",
                JobStatus::Failed,
                "plugin returned an error: unknown scenario `unknown`",
            ),
            (
                "no-finish",
                JobStatus::Failed,
                "plugin returned without calling finish() or fail()",
            ),
            ("fail", JobStatus::Failed, "probe failed on purpose"),
            ("finish-twice", JobStatus::Complete, "first finish"),
        ];
        for (scenario, status, message) in cases {
            let rec = run(scenario);
            assert_eq!(
                (rec.status, rec.message.as_deref()),
                (status, Some(message)),
                "{lang:?} {scenario}\n{}",
                lab.log(&rec)
            );
            let disk = lab.stored_record(&rec);
            assert_eq!(disk["status"], status.as_str(), "{lang:?} {scenario}");
            assert_eq!(disk["message"], message, "{lang:?} {scenario}");
            assert!(disk["ended_at"].is_string(), "{lang:?} {scenario}");
            let log = lab.log(&rec);
            assert!(
                log.trim_end()
                    .ends_with(&format!("job ended {status}: {message}")),
                "{lang:?} {scenario}: {log}"
            );
            match scenario {
                "trap" => {
                    for text in lang.crash_report() {
                        assert!(log.contains(text), "{lang:?}: `{text}` missing from\n{log}");
                    }
                }
                "finish-twice" => {
                    assert_eq!(
                        reports(lab, &rec),
                        ["second-finish invalid-argument"],
                        "{lang:?}"
                    );
                    assert_eq!(
                        rec.scores,
                        BTreeMap::from([("first".to_owned(), 1.0)]),
                        "{lang:?}"
                    );
                }
                _ => assert_eq!(
                    reports(lab, &rec),
                    Vec::<String>::new(),
                    "{lang:?} {scenario}"
                ),
            }
        }

        // Cancel: a plugin watching should-stop ends by itself.
        let _guard = lab.rt.enter();
        let handle = lab
            .host
            .start(lab.spec(probe, json!({"scenario": "cooperative"})))
            .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        handle.cancel();
        let rec = lab.rt.block_on(handle.wait()).unwrap();
        assert_eq!(
            (rec.status, rec.message.as_deref()),
            (JobStatus::Cancelled, Some("cancelled: stopped on request")),
            "{lang:?}"
        );

        // Limits: time and memory end the job the same way.
        let mut spec = lab.spec(probe, json!({"scenario": "spin"}));
        spec.sandbox.limits.timeout = Duration::from_millis(1500);
        spec.sandbox.limits.grace = Duration::from_millis(500);
        let rec = lab.run(spec);
        assert_eq!(
            (rec.status, rec.message.as_deref()),
            (JobStatus::Failed, Some("time limit of 1.5s exceeded")),
            "{lang:?}"
        );
        let mut spec = lab.spec(probe, json!({"scenario": "alloc", "count": 64}));
        spec.sandbox.limits.memory_bytes = 32 << 20;
        let rec = lab.run(spec);
        assert_eq!(rec.status, JobStatus::Failed, "{lang:?}");
        let msg = rec.message.unwrap();
        assert!(
            msg.starts_with("memory limit of 32 MiB exceeded"),
            "{lang:?}: {msg}"
        );
        let mut spec = lab.spec(probe, json!({"scenario": "alloc", "count": 8}));
        spec.sandbox.limits.memory_bytes = 64 << 20;
        let rec = lab.run(spec);
        assert_eq!(
            (rec.status, rec.message.as_deref()),
            (JobStatus::Complete, Some("allocated 8 MiB")),
            "{lang:?}"
        );

        // limit-exceeded: a store over the stored-files limit is refused,
        // and the SDK's error, returned from run(), names it.
        let mut spec = lab.spec(probe, json!({}));
        spec.sandbox.limits.stored_files = 1;
        let rec = lab.run(spec);
        assert_eq!(
            (rec.status, rec.message.as_deref()),
            (
                JobStatus::Failed,
                Some("plugin returned an error: limit exceeded: stored-files limit of 1 reached")
            ),
            "{lang:?}\n{}",
            lab.log(&rec)
        );
        assert_eq!(rec.artifacts.len(), 1, "{lang:?}");

        // Config is checked against describe() before the guest starts.
        let err = lab
            .try_run(lab.spec(probe, json!({"count": "three", "nope": 1})))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "invalid config: `probe` has no parameter `nope` (parameters: scenario, count, ratio, flag, extra, target); `count` must be an integer, got \"three\"",
            "{lang:?}"
        );
    });
}

#[test]
fn names_paths_and_stdio() {
    for_each_lang(|lang, lab, probe| {
        // Bad names: every one refused, nothing written.
        let rec = lab.run(lab.spec(probe, json!({"scenario": "bad-names"})));
        assert_eq!(
            (rec.status, rec.message.as_deref()),
            (JobStatus::Complete, Some("bad names tried")),
            "{lang:?}\n{}",
            lab.log(&rec)
        );
        let long = format!("\"{}\"", "n".repeat(300));
        let mut expected: Vec<String> = [
            "\"../x\"",
            "\"a/b\"",
            "\"\"",
            "\"nul\\0byte\"",
            "\"..\"",
            "\".\"",
            &long,
            "\"/abs\"",
        ]
        .iter()
        .map(|n| format!("artifact-name {n} invalid-argument"))
        .collect();
        for k in [
            "checkpoint-name",
            "model-name",
            "dataset-name",
            "eval-name",
            "metric-name",
        ] {
            expected.push(format!("{k} invalid-argument"));
        }
        expected.push("artifacts 0".into());
        assert_eq!(reports(lab, &rec), expected, "{lang:?}");
        assert!(rec.artifacts.is_empty() && rec.checkpoints.is_empty() && rec.evals.is_empty());
        assert_eq!(
            std::fs::read_dir(lab.job_dir(&rec).join("artifacts"))
                .unwrap()
                .count(),
            0
        );
        assert!(lab.ws().models().unwrap().is_empty(), "{lang:?}");
        assert!(lab.ws().datasets().unwrap().is_empty(), "{lang:?}");

        // Escapes out of the grants, directly or through symlinks.
        let evil = lab.dir.path().join("evil");
        std::fs::create_dir_all(evil.join("dir")).unwrap();
        std::fs::write(evil.join("dir/ok.txt"), "ok").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", evil.join("link")).unwrap();
        std::os::unix::fs::symlink("../../../../../../../../etc", evil.join("dir/up")).unwrap();
        let mut spec = lab.spec(probe, json!({"scenario": "escape", "target": "/mnt/evil"}));
        spec.sandbox.grants.dirs = vec![DirGrant {
            host: evil.clone(),
            guest: "/mnt/evil".into(),
            writable: false,
        }];
        let rec = lab.run(spec);
        assert_eq!(
            rec.status,
            JobStatus::Complete,
            "{lang:?}: {:?}\n{}",
            rec.message,
            lab.log(&rec)
        );
        assert_eq!(
            reports(lab, &rec),
            [
                "etc-passwd denied",
                "dotdot denied",
                "relative-dotdot denied",
                "open-etc unreadable",
                "symlink-file denied",
                "symlink-in-dir denied",
                "symlink-read unreadable",
                "artifacts 0",
            ],
            "{lang:?}"
        );

        // Directory grants: read-only unless :rw; ungranted host files do not exist.
        let data = lab.dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(data.join("in.txt"), "host data\n").unwrap();
        for (grant, write) in [
            (format!("{}", data.display()), "denied"),
            (format!("{}:rw", data.display()), "allowed"),
        ] {
            let mut spec = lab.spec(
                probe,
                json!({"scenario": "read", "target": "/mnt/data/in.txt"}),
            );
            spec.sandbox.grants.dirs = vec![grant.parse().unwrap()];
            let rec = lab.run(spec);
            assert_eq!(rec.status, JobStatus::Complete, "{lang:?} {grant}");
            assert_eq!(
                reports(lab, &rec),
                ["content host data".to_owned(), format!("write {write}")],
                "{lang:?} {grant}"
            );
            assert_eq!(
                data.join("in.txt.new").exists(),
                write == "allowed",
                "{lang:?} {grant}"
            );
            let _ = std::fs::remove_file(data.join("in.txt.new"));
        }
        let target = data.join("in.txt");
        let rec = lab.run(lab.spec(
            probe,
            json!({"scenario": "read", "target": target.to_str().unwrap()}),
        ));
        assert_eq!(
            reports(lab, &rec),
            ["read-error entity not found", "write denied"],
            "{lang:?}"
        );

        // stdout and stderr go to the log, tagged.
        let rec = lab.run(lab.spec(probe, json!({"scenario": "stdio"})));
        assert_eq!(
            (rec.status, rec.message.as_deref()),
            (JobStatus::Complete, Some("printed")),
            "{lang:?}"
        );
        let log = lab.log(&rec);
        assert!(
            log.contains(" STDOUT hello from stdout\n"),
            "{lang:?}: {log}"
        );
        assert!(
            log.contains(" STDERR hello from stderr\n"),
            "{lang:?}: {log}"
        );
        assert_eq!(
            log.contains(" STDOUT unterminated\n"),
            lang.unterminated_stdout_reaches_the_log(),
            "{lang:?}: {log}"
        );
    });
}
