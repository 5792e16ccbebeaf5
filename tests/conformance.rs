//! Cross-language conformance: the probe exists in every guest language
//! (guests/rust/testing/probe, guests/python/probe, guests/js/probe,
//! guests/c/probe) with the same
//! description, scenarios and `probe: KEY VALUE` reports. Each test runs the
//! same scenarios against every language and holds them to one set of
//! expectations; where a language genuinely differs it says so explicitly
//! (see `Lang`).
//!
//! Each scenario is a function of the language; `per_lang!` makes one
//! `#[test]` per (scenario, language) pair, `<scenario>::<lang>`, so one
//! language failing does not hide another's result (`cargo test --test
//! conformance python` runs the Python ones). Cross-language agreement is
//! checked against fixed expectations (the same for every language) rather
//! than against another language's run.
//!
//! Each test loads its probe once. The labs share one compile cache under
//! the cargo target dir, so only the first load of a component after it
//! changed pays Cranelift (~8 s for the 18 MB Python component).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use labhost::store::StoredRecord;
use labhost::{DirGrant, JobRecord, JobStatus, Plugin};
use labhost_tests::{blake3_file, Lab};
use serde_json::json;

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

/// One `#[test]` per language for each scenario function `fn(Lang, &Lab,
/// &Arc<Plugin>)`: `mod <scenario> { fn rust() fn python() fn c() fn js() }`,
/// each with its own lab and the probe loaded once.
macro_rules! per_lang {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            use super::Lang;
            #[test]
            fn rust() {
                super::in_lab(Lang::Rust, super::$scenario)
            }
            #[test]
            fn python() {
                super::in_lab(Lang::Python, super::$scenario)
            }
            #[test]
            fn c() {
                super::in_lab(Lang::C, super::$scenario)
            }
            #[test]
            fn js() {
                super::in_lab(Lang::Js, super::$scenario)
            }
        }
    )*};
}

per_lang!(
    describe_is_the_same_in_every_language,
    every_call_of_the_lab_api,
    the_calls_of_lab_api_0_2,
    job_outcomes_of_misbehaving_plugins,
    names_paths_and_stdio,
    inference_through_wasi_nn,
);

/// Run `scenario` for `lang` in a fresh lab (sharing the compile cache).
fn in_lab(lang: Lang, scenario: fn(Lang, &Lab, &Arc<Plugin>)) {
    let lab = Lab::with_shared_cache();
    let probe = lab.load(lang.dir(), "probe");
    scenario(lang, &lab, &probe);
}

/// Wait until the job has started (its `Started` event), so what follows
/// (a cancel) lands on a running job rather than racing its start.
fn wait_started(lab: &Lab, handle: &mut labhost::JobHandle) {
    let mut events = handle.events();
    lab.rt.block_on(async {
        loop {
            match tokio::time::timeout(Duration::from_secs(60), events.recv()).await {
                Ok(Ok(labhost::JobEvent::Started { .. })) => return,
                Ok(Ok(labhost::JobEvent::Ended { status, message })) => {
                    panic!("the job ended before it was seen starting: {status}: {message}")
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => panic!("job events: {e}"),
                Err(_) => panic!("the job did not start within 60 s"),
            }
        }
    })
}

/// The reports of a job with its id replaced by `JOB`.
fn reports(lab: &Lab, rec: &JobRecord) -> Vec<String> {
    lab.reports(rec)
        .into_iter()
        .map(|(k, v)| format!("{k} {v}").replace(&rec.id, "JOB"))
        .collect()
}

/// The job's metric points as (name, value, step), through the library's
/// reader of `metrics.jsonl`.
fn metric_points(lab: &Lab, rec: &JobRecord) -> Vec<(String, f64, Option<u64>)> {
    let (_, paths) = lab.ws().find_job(&rec.id).unwrap();
    labhost::read::metrics(&paths, &Default::default())
        .unwrap()
        .into_iter()
        .map(|p| (p.name, p.value, p.step))
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

fn describe_is_the_same_in_every_language(lang: Lang, _lab: &Lab, probe: &Arc<Plugin>) {
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
    // Every probe imports every lab interface (and the type interfaces).
    let mut imports: Vec<&str> = probe
        .imports
        .iter()
        .filter(|i| i.starts_with("lab:api/"))
        .map(String::as_str)
        .collect();
    imports.sort();
    assert_eq!(
        imports,
        [
            "artifacts",
            "checkpoints",
            "config",
            "datasets",
            "evals",
            "http",
            "job",
            "log",
            "metadata",
            "metrics",
            "models",
            "plugin-types",
            "progress",
            "secrets",
            "types",
        ]
        .map(|i| format!("lab:api/{i}@0.2.0")),
        "{lang:?} imports every lab interface"
    );
}

/// The value of the secret the 0.2 scenario is granted (16 bytes).
const PROBE_SECRET: &str = "s3cr3t-value-123";

/// Every call lab:api@0.2.0 added: metadata, status stages, progress with
/// metrics, a secret (redacted from the log), HTTP to a granted endpoint
/// with a header the host injects from that secret (the echo server's
/// answer, logged by the probe, is redacted too), an ungranted URL, and
/// registry lookups.
fn the_calls_of_lab_api_0_2(lang: Lang, lab: &Lab, probe: &Arc<Plugin>) {
    let server = labhost_tests::httpd::TestServer::start();
    let mut spec = lab.spec(
        probe,
        json!({"scenario": "api-0-2", "target": server.url("/echo")}),
    );
    spec.sandbox.grants.http = vec![server
        .url("/echo")
        .parse::<labhost::HttpGrant>()
        .unwrap()
        .with_header("Authorization: Bearer {secret:PROBE_SECRET}")
        .unwrap()];
    spec.sandbox.grants.secrets = vec!["PROBE_SECRET".into()];
    spec.secrets = labhost::Secrets::from_values([("PROBE_SECRET".into(), PROBE_SECRET.into())]);
    let rec = lab.run(spec);
    assert_eq!(
        (rec.status, rec.message.as_deref()),
        (JobStatus::Complete, Some("api-0-2 done")),
        "{lang:?}\n{}",
        lab.log(&rec)
    );
    let expected = [
        "meta0 {}",
        r#"meta1 {"a":1,"b":{"c":2}}"#,
        r#"meta2 {"a":1,"d":"x"}"#,
        r#"meta3 {"r":true}"#,
        "meta-err invalid-argument",
        "status ok",
        "status-err invalid-argument",
        "report ok",
        "report-err invalid-argument",
        "secret-len 16",
        "secret-err denied",
        "http-status 200",
        r#"http-body {"auth":"Bearer [redacted]","body":"{\"hello\":\"world\"}","method":"POST","path":"/echo","probe":"1"}"#,
        "http-denied denied",
        "dataset-get qa-JOB 2",
        "model-get-err not-found",
    ];
    assert_eq!(reports(lab, &rec), expected, "{lang:?}\n{}", lab.log(&rec));
    assert_eq!(server.hits(), 1, "{lang:?}: one request reached the server");

    // The record: metadata after reset + the status merge, the last status
    // stage, progress, HTTP use.
    assert_eq!(
        json!(rec.metadata),
        json!({"phase": 1, "r": true}),
        "{lang:?}"
    );
    let stage = rec.status_stage.as_ref().expect("a status stage");
    assert_eq!(
        (stage.status.as_str(), stage.error_message.as_deref()),
        ("training", Some("warming up")),
        "{lang:?}"
    );
    assert_eq!(
        (rec.progress, rec.stage.as_deref()),
        (50.0, Some("half")),
        "{lang:?}"
    );
    assert_eq!(
        (rec.http.requests, rec.http.denied, rec.http.bytes_out),
        (1, 1, 61),
        "{lang:?}"
    );
    let points = metric_points(lab, &rec);
    assert_eq!(
        points,
        [
            ("loss".to_owned(), 0.5, Some(7)),
            ("acc".to_owned(), 0.75, Some(7))
        ],
        "{lang:?}"
    );

    // The secret is nowhere on disk: the probe logged it and the echo
    // server sent it back, and both lines read `[redacted]`.
    let log = lab.log(&rec);
    assert!(log.contains("probe-secret [redacted]"), "{lang:?}\n{log}");
    assert!(
        log.contains(&format!("http POST {} → 200 in ", server.url("/echo"))),
        "{lang:?}\n{log}"
    );
    assert!(
        log.contains("http GET http://example.invalid/ denied: `http://example.invalid/` is not granted to this job (granted: "),
        "{lang:?}\n{log}"
    );
    labhost_tests::assert_nowhere(&lab.job_dir(&rec), PROBE_SECRET);
}

/// A plugin built against the frozen lab:api@0.1.0 (the Rust probe, built
/// with the SDK's `api-0-1` feature) still runs, unchanged, on a host whose
/// live lab API has moved on: every 0.1.0 call behaves as the live one.
#[test]
fn a_plugin_built_against_lab_api_0_1_0_runs_unchanged() {
    let lab = Lab::with_shared_cache();
    let old = lab.load("rust", "probe_v0_1");
    assert_eq!(old.api_version().as_deref(), Some("0.1.0"));
    let mut imports: Vec<&str> = old
        .imports
        .iter()
        .filter(|i| i.starts_with("lab:api/"))
        .map(String::as_str)
        .collect();
    imports.sort();
    assert!(
        imports.iter().all(|i| i.ends_with("@0.1.0")) && imports.contains(&"lab:api/job@0.1.0"),
        "{imports:?}"
    );
    every_call_of_the_lab_api(Lang::Rust, &lab, &old);
    job_outcomes_of_misbehaving_plugins(Lang::Rust, &lab, &old);
    // And what 0.1.0 does not have is refused by the probe itself.
    let rec = lab.run(lab.spec(&old, json!({"scenario": "api-0-2"})));
    assert_eq!(
        rec.message.as_deref(),
        Some("plugin returned an error: unknown scenario `api-0-2`")
    );
}

fn every_call_of_the_lab_api(lang: Lang, lab: &Lab, probe: &Arc<Plugin>) {
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
    let points = metric_points(lab, &rec);
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
    // A few of them spelled out (all of them in EXPECTED_STORED).
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
    assert_eq!(
        (
            models[0].name.as_str(),
            models[0].architecture.as_deref(),
            models[0].parent_model.as_deref()
        ),
        ("probe-model", Some("probe-arch"), Some("base-model")),
        "{lang:?}"
    );
    assert_eq!(
        datasets[1].description.as_deref(),
        Some("two rows"),
        "{lang:?}"
    );
    let mut paths: Vec<&str> = rec.artifacts[1]
        .files
        .iter()
        .map(|f| f.path.as_str())
        .collect();
    paths.sort();
    assert_eq!(paths, ["a.txt", "sub/b.txt"], "{lang:?}");
    let jsonl = std::fs::read_to_string(lab.root().join(&rec.evals[1].file.location)).unwrap();
    let first: serde_json::Value = serde_json::from_str(jsonl.lines().next().unwrap()).unwrap();
    assert_eq!(
        (&first["input"], &first["score"]),
        (&json!("a"), &json!(1.0)),
        "{lang:?}"
    );
    // Byte-identical results in every language.
    assert_eq!(
        fp, EXPECTED_STORED,
        "{lang:?} stored what every language stores"
    );

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

    // Unknown job or checkpoint: refused before a job is created.
    let jobs_before = lab.ws().jobs(None).unwrap().len();
    let mut spec = lab.spec(probe, json!({}));
    spec.resume = Some(labhost::ResumePoint::at(rec.id.clone(), "nope"));
    assert_eq!(
        lab.try_run(spec).unwrap_err().to_string(),
        format!("job {} has no checkpoint `nope`", rec.id),
        "{lang:?}"
    );
    let mut spec = lab.spec(probe, json!({}));
    spec.resume = Some(labhost::ResumePoint::latest("no-such-job"));
    let err = lab.try_run(spec).unwrap_err().to_string();
    assert!(err.starts_with("no job `no-such-job`"), "{lang:?}: {err}");
    assert_eq!(lab.ws().jobs(None).unwrap().len(), jobs_before, "{lang:?}");

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
}

/// What the all-api scenario stores, one line per record (see `stored`),
/// the same in every language.
const EXPECTED_STORED: &[&str] = &[
    r#"hello.txt 15 974fdbcedc97b790d84640d6351458c4087654b248bf5754a2a1a2c5e9f8b5eb dir=false experiments/default/jobs/JOB/artifacts/hello.txt [:15:974fdbcedc97b790d84640d6351458c4087654b248bf5754a2a1a2c5e9f8b5eb]"#,
    r#"bundle-dir 3 7de661f911a476d82c8ebd50ddf0f648d5af0abc2bbe43f837f37902a46ba17a dir=true experiments/default/jobs/JOB/artifacts/bundle-dir [a.txt:1:17762fddd969a453925d65717ac3eea21320b66b54342fde15128d6caf21215f sub/b.txt:2:58293e32b140c28c1debf42045417b312d36a6c2b6a649ec381ebe1350e12a87]"#,
    r#"step-7 10 19c473220ebfa70c95a7f8f18c745c3fa4278f18c732dd06fbfca3222473d6b8 dir=false experiments/default/jobs/JOB/checkpoints/step-7 [:10:19c473220ebfa70c95a7f8f18c745c3fa4278f18c732dd06fbfca3222473d6b8]"#,
    r#"eval probe-eval 3 0.5 probe-eval 85 508bc25c2eb66c5a967f88a4ac261e2c899687a94cdd1a48abaca6ca59dbb510 dir=false experiments/default/jobs/JOB/evals/probe-eval.csv [:85:508bc25c2eb66c5a967f88a4ac261e2c899687a94cdd1a48abaca6ca59dbb510]"#,
    r#"eval probe-eval-jsonl 3 0.5 probe-eval-jsonl 212 1bdd5a5c469c558e61728840efeca474d543573ee5b644bb0d5772ca62e6d57c dir=false experiments/default/jobs/JOB/evals/probe-eval-jsonl.jsonl [:212:1bdd5a5c469c558e61728840efeca474d543573ee5b644bb0d5772ca62e6d57c]"#,
    r#"model probe-model Some("probe-arch") Some("text-classification") Some("base-model") {"layers":2} probe-model 4 1870024e21570cd834b85d5130d38b19fc7c713c4f55b7a422b476a6cb1371fd dir=true models/probe-model-JOB/files [weights.bin:4:63781d171425a36312fa058d8712d5d05135a991ec20351ce9d65cdb19a05432]"#,
    r#"dataset probe-file None None {} probe-file 8 5c6505f522706c9b7435201e3c7fd6aecf259eff51705dbd0543f83f5114b4f3 dir=true datasets/probe-file-JOB/files [data.csv:8:a69a9cf853b37cdfb3f535926f50730c30c09f5df3e0ec71d6f8eb7f010dcf8f]"#,
    r#"dataset probe-rows Some(2) Some("two rows") {"source":"probe"} probe-rows 46 ecb2086cd8ac3344a35e9621acb96a409f4c87e2a1126cc5ce8ae33742a467d5 dir=true datasets/probe-rows-JOB/files [data.jsonl:46:56fab8e2a9275eb4845b8f7f61164619c78e5f28442ce1bda1ead88009be333f]"#,
];

fn job_outcomes_of_misbehaving_plugins(lang: Lang, lab: &Lab, probe: &Arc<Plugin>) {
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
    let mut handle = lab
        .host
        .start(lab.spec(probe, json!({"scenario": "cooperative"})))
        .unwrap();
    wait_started(lab, &mut handle);
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
}

fn names_paths_and_stdio(lang: Lang, lab: &Lab, probe: &Arc<Plugin>) {
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
}

/// `wasi:nn`: the probe runs the host's test model (`scores = x·W + B`,
/// `label = argmax`) on a batch of two, then meets every refusal: wrong
/// dimensions, a granted file that is not a model, a model not granted, a
/// missing one, and model bytes from the guest. Same lines in every language.
fn inference_through_wasi_nn(lang: Lang, lab: &Lab, probe: &Arc<Plugin>) {
    let linear = lab.add_model(
        "linear",
        "model.onnx",
        &labhost::nn::fixture::linear_argmax(),
    );
    let garbage = lab.add_model("garbage", "model.onnx", b"not a model at all");
    lab.add_model(
        "ungranted",
        "model.onnx",
        &labhost::nn::fixture::linear_argmax(),
    );
    let mut spec = lab.spec(probe, json!({"scenario": "nn", "target": "linear"}));
    spec.sandbox.grants.models = vec![linear.clone(), garbage];
    let rec = lab.run(spec);
    assert_eq!(
        (rec.status, rec.message.as_deref()),
        (JobStatus::Complete, Some("nn done")),
        "{lang:?}\n{}",
        lab.log(&rec)
    );
    assert_eq!(
        reports(lab, &rec),
        [
            "nn_outputs scores:FP32:2x2,label:I64:2",
            "nn_scores 4.5,-1.5,-3.5,3.5",
            "nn_labels 0,1",
            "nn_bad_dims invalid-argument",
            "nn_malformed invalid-encoding",
            "nn_ungranted security",
            "nn_missing not-found",
            "nn_load_bytes security",
        ],
        "{lang:?}"
    );
    // The host logs what it loaded, and why a load was refused.
    let log = lab.log(&rec);
    assert!(
        log.contains(&format!("wasi:nn: loaded model `{linear}` (model.onnx, ")),
        "{log}"
    );
    assert!(
        log.contains("inputs x: F32 [?, 3]; outputs scores, label"),
        "{log}"
    );
    assert!(
        log.contains("wasi:nn: load-by-name `garbage` refused: not a usable ONNX model: "),
        "{log}"
    );
    assert!(
        log.contains("wasi:nn: load-by-name `ungranted` refused: model `ungranted-"),
        "{log}"
    );
}
