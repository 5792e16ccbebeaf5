//! Plugins that call a model: the LLM-backed data generator (Python,
//! `llm-datagen`) and the LLM judge (Rust, `llm-judge`) against a real
//! OpenAI-compatible HTTP server on 127.0.0.1 (tests/support/httpd.rs),
//! through the CLI as a user runs them: `--allow-http`, a key injected by
//! the host with `--http-header` from `--secret`-style resolution (the
//! environment), alone and as a pipeline. And the Transformer Lab SDK's
//! complete example (`tlab-train`), run with only the sandbox's changes.

use std::process::{Command, Output};

use labhost_tests::httpd::{TestServer, OPENAI_KEY};
use labhost_tests::{guest, labhost_bin, stderr, stdout, Lab};
use serde_json::{json, Value};

/// The CLI on `lab`'s workspace with `OPENAI_API_KEY` set as the user's
/// shell would have it.
fn cli_with_key(lab: &Lab, args: &[&str]) -> Output {
    Command::new(labhost_bin())
        .arg("--workspace")
        .arg(lab.root())
        .args(args)
        .env("OPENAI_API_KEY", OPENAI_KEY)
        .output()
        .unwrap()
}

/// The only job of the workspace whose plugin is `plugin`.
fn job_of(lab: &Lab, plugin: &str) -> labhost::JobRecord {
    let jobs: Vec<_> = lab
        .ws()
        .jobs(None)
        .unwrap()
        .into_iter()
        .filter(|j| j.plugin.name == plugin)
        .collect();
    assert_eq!(jobs.len(), 1, "jobs of {plugin}");
    jobs.into_iter().next().unwrap()
}

fn rows(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn an_llm_generator_and_an_llm_judge_run_against_a_chat_completions_server() {
    let server = TestServer::start();
    let lab = Lab::new();
    let v1 = server.url("/v1");
    let gen = guest("python", "llm_datagen");
    let judge = guest("rust", "llm_judge");
    let grant = [
        "--allow-http",
        &v1,
        "--http-header",
        "Authorization: Bearer {secret:OPENAI_API_KEY}",
    ];

    // Generate: two topics answer, `broken` gets a reply that is not JSON.
    let mut args = vec!["run", gen.to_str().unwrap()];
    args.extend(grant);
    let endpoint = format!("endpoint={v1}");
    args.extend([
        "-c",
        &endpoint,
        "-c",
        r#"topics=["gradient descent","attention","broken"]"#,
        "-c",
        "pairs_per_topic=1",
    ]);
    let out = cli_with_key(&lab, &args);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let rec = job_of(&lab, "llm-datagen");
    assert_eq!(
        rec.scores,
        [("pairs".to_owned(), 2.0), ("rejected".to_owned(), 1.0)].into(),
        "{}",
        lab.log(&rec)
    );
    assert_eq!(rec.http.requests, 3);
    let ds = lab.ws().datasets().unwrap();
    assert_eq!(ds.len(), 1);
    assert_eq!(ds[0].name, "qa");
    assert_eq!(
        ds[0].metadata,
        json!({"generator": "llm-datagen", "model": "teacher", "endpoint": v1, "temperature": 0.0, "prompt_version": 1})
    );
    let data = lab.root().join(&ds[0].files.location).join("data.jsonl");
    assert_eq!(
        rows(&data),
        [
            json!({"topic": "gradient descent", "question": "What is gradient descent (1)?", "answer": "gradient descent explained, part 1."}),
            json!({"topic": "attention", "question": "What is attention (1)?", "answer": "attention explained, part 1."}),
        ]
    );
    let log = lab.log(&rec);
    assert!(
        log.contains(&format!("http POST {v1}/chat/completions → 200 in ")),
        "{log}"
    );

    // Judge the pairs (the fake judge rates 1 + (answer length mod 10)),
    // with the grant from a workspace settings profile instead of flags.
    std::fs::write(
        lab.root().join("labhost.toml"),
        format!(
            "[profiles.llm.grants]\nallow-http = [{{ url = \"{v1}\", headers = [\"Authorization: Bearer {{secret:OPENAI_API_KEY}}\"] }}]\n"
        ),
    )
    .unwrap();
    let settings = lab.cli(&["--profile", "llm", "config", "show"]);
    let text = stdout(&settings);
    let row: Vec<&str> = text
        .lines()
        .find(|l| l.starts_with("grants.allow-http "))
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        row,
        [
            "grants.allow-http",
            &v1,
            "(host",
            "adds",
            "Authorization)",
            "profile",
            "llm"
        ],
        "{text}"
    );
    let out = cli_with_key(
        &lab,
        &[
            "--profile",
            "llm",
            "run",
            judge.to_str().unwrap(),
            "--dataset",
            "qa",
            "-c",
            &endpoint,
        ],
    );
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let rec = job_of(&lab, "llm-judge");
    // "gradient descent explained, part 1." is 35 characters: 6/10;
    // "attention explained, part 1." is 28: 9/10.
    assert_eq!(
        rec.scores,
        [
            ("mean_score".to_owned(), 0.75),
            ("unparsed".to_owned(), 0.0)
        ]
        .into(),
        "{}",
        lab.log(&rec)
    );
    assert_eq!(rec.evals.len(), 1);
    assert_eq!(
        (rec.evals[0].name.as_str(), rec.evals[0].count),
        ("judgement", 2)
    );
    let stage = rec.status_stage.as_ref().unwrap();
    assert_eq!(stage.status, "saving");
    assert_eq!(rec.metadata["judge_model"], "judge");
    // `labhost show` lists the grant with the header name, never its value.
    let show = lab.cli(&["show", &rec.id]);
    let text = stdout(&show);
    assert!(
        text.contains(&format!("grant       http {v1} (host adds Authorization)")),
        "{text}"
    );
    assert!(text.contains("status      saving"), "{text}");
    assert!(
        text.contains("http        2 request(s), 0 denied, "),
        "{text}"
    );

    // The key is in no file of the workspace.
    labhost_tests::assert_nowhere(lab.root(), OPENAI_KEY);
    assert_eq!(server.hits(), 5);
}

#[test]
fn without_the_injected_key_the_server_refuses_and_the_job_says_so() {
    let server = TestServer::start();
    let lab = Lab::new();
    let v1 = server.url("/v1");
    let gen = guest("python", "llm_datagen");
    let endpoint = format!("endpoint={v1}");
    let out = cli_with_key(
        &lab,
        &[
            "run",
            gen.to_str().unwrap(),
            "--allow-http",
            &v1,
            "-c",
            &endpoint,
            "-c",
            "pairs_per_topic=1",
        ],
    );
    assert_eq!(out.status.code(), Some(3), "a FAILED job: {}", stderr(&out));
    let rec = job_of(&lab, "llm-datagen");
    let message = rec.message.unwrap();
    assert!(
        message.starts_with(&format!(
            "plugin returned an error: POST {v1}/chat/completions returned HTTP status 401: "
        )),
        "{message}"
    );

    // A header naming a secret that is not set: refused before the job.
    let out = Command::new(labhost_bin())
        .arg("--workspace")
        .arg(lab.root())
        .args(["run", gen.to_str().unwrap(), "--allow-http", &v1])
        .args([
            "--http-header",
            "Authorization: Bearer {secret:NOT_SET_ANYWHERE}",
        ])
        .args(["-c", &endpoint])
        .env_remove("NOT_SET_ANYWHERE")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out).trim(),
        format!(
            "error: secret `NOT_SET_ANYWHERE` is not set: export NOT_SET_ANYWHERE=... in the environment that runs labhost, or add it to {}",
            lab.root().join("secrets.toml").display()
        )
    );
    // A header before any endpoint, and an ungrantable URL: one-line errors.
    let out = lab.cli(&[
        "run",
        gen.to_str().unwrap(),
        "--http-header",
        "X: 1",
        "--allow-http",
        &v1,
    ]);
    assert_eq!(
        stderr(&out).trim(),
        "error: --http-header `X: 1` comes before any --allow-http: put it after the endpoint it is for"
    );
    let out = lab.cli(&[
        "run",
        gen.to_str().unwrap(),
        "--allow-http",
        "http://user@127.0.0.1/",
    ]);
    assert_eq!(
        stderr(&out).trim(),
        "error: invalid HTTP grant `http://user@127.0.0.1/`: URLs with user info (`user@host`) are refused"
    );
    assert_eq!(
        lab.ws().jobs(None).unwrap().len(),
        1,
        "no job for refused command lines"
    );
}

#[test]
fn the_llm_pipeline_grants_each_stage_its_endpoint_and_key_from_the_secrets_file() {
    use std::os::unix::fs::PermissionsExt;
    let server = TestServer::start();
    let lab = Lab::new();
    let v1 = server.url("/v1");
    let secrets = lab.root().join("secrets.toml");
    std::fs::write(&secrets, format!("LLM_KEY = \"{OPENAI_KEY}\"\n")).unwrap();
    std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o600)).unwrap();
    let file = lab.dir.path().join("llm.toml");
    let grant = format!(
        r#"allow-http = [{{ url = "{v1}", headers = ["Authorization: Bearer {{secret:LLM_KEY}}"] }}]"#
    );
    std::fs::write(
        &file,
        format!(
            r#"name = "llm"
[stages.generate]
plugin = "{gen}"
config = {{ endpoint = "{v1}", topics = ["attention", "overfitting"], pairs_per_topic = 2 }}
{grant}

[stages.judge]
plugin = "{judge}"
datasets = [{{ stage = "generate" }}]
config = {{ endpoint = "{v1}" }}
{grant}
"#,
            gen = guest("python", "llm_datagen").display(),
            judge = guest("rust", "llm_judge").display(),
        ),
    )
    .unwrap();
    let out = lab.cli(&["pipeline", "run", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let judge = job_of(&lab, "llm-judge");
    assert_eq!(judge.evals[0].count, 4);
    // attention (28 chars: 9/10) twice, "overfitting explained, part k." (30: 1/10) twice.
    assert_eq!(judge.scores["mean_score"], 0.5, "{}", lab.log(&judge));

    // Others may not read the secrets file: it is refused, not used.
    std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = lab.cli(&["pipeline", "run", file.to_str().unwrap()]);
    assert_ne!(out.status.code(), Some(0));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "{} is readable by others (mode 644): run `chmod 600 {}`",
            secrets.display(),
            secrets.display()
        )),
        "{err}"
    );
}

/// The Transformer Lab SDK documentation's complete example, with only
/// the changes the sandbox forces (see the plugin's docstring), plus the
/// undocumented calls real scripts use.
#[test]
fn the_transformer_lab_complete_example_runs() {
    let lab = Lab::new();
    let plugin = guest("python", "tlab_train");
    let out = Command::new(labhost_bin())
        .arg("--workspace")
        .arg(lab.root())
        .args(["run", plugin.to_str().unwrap(), "--secret", "HF_TOKEN"])
        .env("HF_TOKEN", "hf_abcdefghijklmnop")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let rec = job_of(&lab, "tlab-train");
    assert_eq!(
        rec.message.as_deref(),
        Some("Training completed successfully")
    );
    assert_eq!(
        rec.scores,
        [
            ("accuracy".to_owned(), 0.92),
            ("final_loss".to_owned(), 0.15)
        ]
        .into()
    );
    // set_config → the job's metadata.
    assert_eq!(
        json!(rec.metadata),
        json!({"model_name": "gpt2", "dataset": "my_dataset", "learning_rate": 2e-5, "num_epochs": 3, "batch_size": 8, "experiment_name": "default"})
    );
    assert_eq!(
        rec.checkpoints
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        ["epoch_2"]
    );
    assert_eq!(
        rec.artifacts
            .iter()
            .map(|a| a.name.as_str())
            .collect::<Vec<_>>(),
        ["training_summary.json"]
    );
    assert_eq!(
        (
            rec.evals[0].name.as_str(),
            rec.evals[0].count,
            rec.evals[0].mean_score
        ),
        ("eval_results", 2, 0.9)
    );
    let models = lab.ws().models().unwrap();
    assert_eq!(
        (
            models[0].name.as_str(),
            models[0].architecture.as_deref(),
            models[0].parent_model.as_deref()
        ),
        ("trained_model", Some("GPT2LMHeadModel"), Some("gpt2"))
    );
    // update_progress(progress, metrics=..., step=...) → metric points.
    let metrics = lab.cli(&["metrics", &rec.id, "--json"]);
    let points: Vec<Value> = serde_json::from_str(&stdout(&metrics)).unwrap();
    let losses: Vec<(f64, u64)> = points
        .iter()
        .filter(|p| p["name"] == "loss")
        .map(|p| (p["value"].as_f64().unwrap(), p["step"].as_u64().unwrap()))
        .collect();
    assert_eq!(losses, [(1.0, 1), (0.5, 2), (0.25, 3)]);
    let log = lab.log(&rec);
    assert!(
        log.contains(&format!("Job {} in experiment default", rec.id)),
        "{log}"
    );
    assert!(
        log.contains("No local model gpt2: starting from scratch"),
        "{log}"
    );
    // The script logs the token it read: the log holds it redacted.
    assert!(
        log.contains("Hub token loaded (19 characters): [redacted]"),
        "{log}"
    );
    labhost_tests::assert_nowhere(lab.root(), "hf_abcdefghijklmnop");
}
