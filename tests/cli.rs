//! The `labhost` command line: the demo pipeline, the listing commands and
//! their `--json`, exit codes and one-line errors.

use labhost_tests::{guest, stderr, stdout, Lab};
use serde_json::Value;

fn json(o: &std::process::Output) -> Value {
    assert!(o.status.success(), "{}", stderr(o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(o)))
}

fn path(lang: &str, name: &str) -> String {
    guest(lang, name).display().to_string()
}

#[test]
fn demo_pipeline_through_the_cli() {
    let lab = Lab::new();
    let gen = lab.cli(&[
        "run",
        &path("rust", "datagen"),
        "--experiment",
        "demo",
        "-c",
        "rows=120",
    ]);
    assert!(gen.status.success(), "{}{}", stdout(&gen), stderr(&gen));
    // Not a terminal: plain progress lines and the streamed log.
    let err = stderr(&gen);
    assert!(err.contains("progress 100% done"), "{err}");
    assert!(err.contains("INFO  generating 120 rows"), "{err}");
    assert!(stdout(&gen).starts_with("COMPLETE "), "{}", stdout(&gen));

    let train = lab.cli(&[
        "run",
        &path("rust", "trainer"),
        "-e",
        "demo",
        "--dataset",
        "sentiment",
        "-c",
        "epochs=2",
    ]);
    assert!(train.status.success(), "{}", stderr(&train));
    assert!(stderr(&train).contains("metric train_loss = "));
    let eval = lab.cli(&[
        "run",
        &path("rust", "evaluator"),
        "-e",
        "demo",
        "--dataset",
        "sentiment",
        "--model",
        "sentiment-logreg",
    ]);
    assert!(eval.status.success(), "{}", stderr(&eval));
    assert!(
        stdout(&eval).contains("eval        predictions (30 rows"),
        "{}",
        stdout(&eval)
    );

    let jobs = json(&lab.cli(&["jobs", "--json", "--experiment", "demo"]));
    let jobs = jobs.as_array().unwrap();
    assert_eq!(jobs.len(), 3);
    let plugins: Vec<&str> = jobs
        .iter()
        .map(|j| j["plugin"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        plugins,
        [
            "sentiment-datagen",
            "sentiment-trainer",
            "sentiment-evaluator"
        ]
    );
    assert!(jobs.iter().all(|j| j["status"] == "COMPLETE"));
    assert_eq!(
        json(&lab.cli(&["jobs", "--json", "--experiment", "other"])),
        serde_json::json!([])
    );

    let models = json(&lab.cli(&["models", "--json"]));
    assert_eq!(models[0]["name"], "sentiment-logreg");
    assert_eq!(models[0]["job_id"], jobs[1]["id"]);
    let datasets = json(&lab.cli(&["datasets", "--json"]));
    assert_eq!(datasets[0]["rows"], 120);
    let eval_id = jobs[2]["id"].as_str().unwrap();
    let evals = json(&lab.cli(&["evals", eval_id, "--json"]));
    assert_eq!(evals[0]["name"], "predictions");
    assert_eq!(evals[0]["count"], 30);
    let shown = json(&lab.cli(&["show", &eval_id[..eval_id.len() - 2], "--json"]));
    assert_eq!(shown["id"], eval_id, "a unique id prefix finds the job");
    let metrics = json(&lab.cli(&["metrics", jobs[1]["id"].as_str().unwrap(), "--json"]));
    assert!(metrics
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["name"] == "train_accuracy" && m["step"] == 2));

    // Human listings name what they list.
    let table = stdout(&lab.cli(&["jobs"]));
    assert!(
        table.starts_with("JOB")
            && table.contains("sentiment-trainer")
            && table.contains("COMPLETE"),
        "{table}"
    );
    assert!(stdout(&lab.cli(&["models"])).contains("LogisticRegression"));
    assert!(stdout(&lab.cli(&["show", eval_id])).contains("eval        predictions  30 rows"));
    let logs = lab.cli(&["logs", eval_id, "--follow"]);
    assert!(
        stdout(&logs).contains("job ended COMPLETE"),
        "{}",
        stdout(&logs)
    );
    let verify = lab.cli(&["verify"]);
    assert!(
        verify.status.success() && stdout(&verify).starts_with("ok: "),
        "{}",
        stderr(&verify)
    );

    // Tampering with a stored file is caught by verify.
    let csv = lab
        .root()
        .join(evals[0]["file"]["location"].as_str().unwrap());
    std::fs::write(&csv, "tampered").unwrap();
    let verify = lab.cli(&["verify", eval_id]);
    assert_eq!(verify.status.code(), Some(1));
    assert!(
        stderr(&verify).contains("do not match their records"),
        "{}",
        stderr(&verify)
    );
}

#[test]
fn exit_codes_and_one_line_errors() {
    let lab = Lab::new();
    let probe = path("rust", "probe");
    let failed = lab.cli(&["run", &probe, "-c", "scenario=trap"]);
    assert_eq!(failed.status.code(), Some(3));
    assert!(
        stdout(&failed).starts_with("FAILED "),
        "{}",
        stdout(&failed)
    );

    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "run".into(),
                probe.clone(),
                "-c".into(),
                "count=lots".into(),
            ],
            "error: invalid config: `count` must be an integer, got `lots`\n",
        ),
        (
            vec!["run".into(), probe.clone(), "-c".into(), "nokey".into()],
            "error: invalid config override `nokey`: expected key=value\n",
        ),
        (
            vec![
                "run".into(),
                probe.clone(),
                "--dataset".into(),
                "ghost".into(),
            ],
            "error: no dataset `ghost` in workspace",
        ),
        (
            vec![
                "run".into(),
                probe.clone(),
                "--experiment".into(),
                "../x".into(),
            ],
            "error: invalid experiment",
        ),
        (
            vec!["run".into(), "/nonexistent.wasm".into()],
            "error: cannot read plugin /nonexistent.wasm: ",
        ),
        (
            vec!["show".into(), "nope".into()],
            "error: no job `nope` in workspace",
        ),
        (
            vec!["evals".into(), "nope".into()],
            "error: no job `nope` in workspace",
        ),
    ];
    for (args, expected) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = lab.cli(&args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(err.starts_with(expected), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    }
    // Bad flags are usage errors (clap), exit 2.
    let o = lab.cli(&["run", &probe, "--timeout", "soon"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = lab.cli(&["run", &probe, "--dir", "/tmp::relative"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    // Only the failed run made a job; nothing else was stored.
    assert_eq!(
        json(&lab.cli(&["jobs", "--json"]))
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn inspect_describes_a_plugin() {
    let lab = Lab::new();
    let trainer = path("rust", "trainer");
    let info = json(&lab.cli(&["inspect", &trainer, "--json"]));
    assert_eq!(info["name"], "sentiment-trainer");
    assert_eq!(info["kind"], "trainer");
    assert_eq!(info["version"], "0.1.0");
    let epochs = info["params"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "epochs")
        .unwrap();
    assert_eq!(
        (epochs["type"].as_str(), epochs["default"].as_i64()),
        (Some("integer"), Some(8))
    );
    let imports: Vec<&str> = info["imports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        imports.contains(&"lab:api/checkpoints@0.1.0"),
        "{imports:?}"
    );
    let text = stdout(&lab.cli(&["inspect", &trainer]));
    assert!(
        text.starts_with("sentiment-trainer 0.1.0 (trainer)"),
        "{text}"
    );
    assert!(
        text.contains("lab interfaces: ") && text.contains("checkpoints"),
        "{text}"
    );
    let o = lab.cli(&["inspect", "Cargo.toml"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("is not a valid WebAssembly component"),
        "{}",
        stderr(&o)
    );
}
