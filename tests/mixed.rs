//! The demo pipeline with guests in mixed languages: the Python generator
//! (guests/python/plugins/datagen) feeds the Rust trainer, and the Python
//! evaluator (guests/python/plugins/evaluator) scores the Rust trainer's
//! model. The Python plugins are ports of the Rust ones written against the
//! Transformer-Lab-shaped `lab` SDK; they must read and write exactly the
//! same formats, so the test also runs the Rust generator and evaluator on
//! the same inputs and compares the bytes.
//!
//! The host shares its compile cache with tests/conformance.rs (under the
//! cargo target dir): only the first load of a component after it changed
//! pays Cranelift (~8 s for an 18 MB Python component).

use std::sync::Arc;

use labhost::store::verify::{verify_stored, Problem};
use labhost::{JobRecord, JobStatus, Plugin};
use labhost_tests::{blake3_file, Lab};
use serde_json::{json, Value};

/// What `describe()` says, minus the name: kind, version, description and
/// parameters (name, type, default, description).
fn shape(p: &Plugin) -> Value {
    let i = &p.info;
    json!({
        "kind": i.kind.as_str(),
        "version": i.version,
        "description": i.description,
        "params": i.params.iter().map(|p| json!([p.name, p.ty.as_str(), p.default, p.description]))
            .collect::<Vec<_>>(),
    })
}

fn complete(rec: &JobRecord) {
    assert_eq!(rec.status, JobStatus::Complete, "{:?}", rec.message);
}

/// The one eval table of a job: its record and the bytes of its file,
/// checked against the recorded digest and size.
fn table(lab: &Lab, rec: &JobRecord) -> (labhost::store::EvalRecord, String) {
    assert_eq!(rec.evals.len(), 1, "{:?}", rec.evals);
    let t = rec.evals[0].clone();
    let path = lab.root().join(&t.file.location);
    assert_eq!(t.file.blake3, blake3_file(&path));
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.len() as u64, t.file.size);
    (t, text)
}

/// Run an evaluator with the dataset and the model named "sentiment*" granted.
fn evaluate(lab: &Lab, plugin: &Arc<Plugin>, config: Value) -> JobRecord {
    let mut spec = lab.spec(plugin, config);
    spec.sandbox.grants.datasets = vec!["sentiment".into()];
    spec.sandbox.grants.models = vec!["sentiment-logreg".into()];
    lab.run(spec)
}

/// The checks every evaluator's default run on 200 generated rows passes;
/// returns its predictions table and the CSV text.
fn predictions(lab: &Lab, eval: &JobRecord) -> (labhost::store::EvalRecord, String) {
    complete(eval);
    assert_eq!(eval.plugin.kind, "evaluator");
    let (t, csv) = table(lab, eval);
    assert_eq!(t.name, "predictions");
    assert!(
        t.file.location.ends_with("predictions.csv"),
        "{}",
        t.file.location
    );
    assert_eq!(t.count, 50, "the test split is 25% of 200 rows");
    assert_eq!(csv.lines().count(), 51, "header + one row per example");
    assert_eq!(
        csv.lines().next().unwrap(),
        "input,output,expected_output,score,probability"
    );
    let accuracy = eval.scores["accuracy"];
    assert!(accuracy > 0.7, "{:?}", eval.scores);
    assert!((t.mean_score - accuracy).abs() < 1e-9);
    (t, csv)
}

#[test]
fn python_datagen_rust_trainer_python_evaluator() {
    let lab = Lab::with_shared_cache();
    let root = lab.root().to_owned();
    let py_datagen = lab.load("python", "datagen");
    let rs_datagen = lab.load("rust", "datagen");
    let trainer = lab.load("rust", "trainer");
    let py_evaluator = lab.load("python", "evaluator");
    let rs_evaluator = lab.load("rust", "evaluator");

    // The ports describe themselves like the originals, under their own names.
    assert_eq!(py_datagen.info.name, "sentiment-datagen-py");
    assert_eq!(py_evaluator.info.name, "sentiment-evaluator-py");
    assert_eq!(shape(&py_datagen), shape(&rs_datagen));
    assert_eq!(shape(&py_evaluator), shape(&rs_evaluator));

    // 1. The Python generator saves dataset "sentiment".
    let gen = lab.run(lab.spec(&py_datagen, json!({"rows": 200})));
    complete(&gen);
    assert_eq!(gen.plugin.name, "sentiment-datagen-py");
    assert_eq!(gen.plugin.kind, "generator");
    assert_eq!(
        gen.scores
            .iter()
            .map(|(k, v)| (k.as_str(), *v))
            .collect::<Vec<_>>(),
        [("rows", 200.0), ("test", 50.0), ("train", 150.0)]
    );
    assert_eq!(gen.progress, 100.0);
    assert_eq!(gen.datasets.len(), 1);
    let datasets = lab.ws().datasets().unwrap();
    assert_eq!(datasets.len(), 1);
    let ds = datasets[0].clone();
    assert_eq!(ds.name, "sentiment");
    assert_eq!(ds.id, gen.datasets[0]);
    assert_eq!(ds.job_id, gen.id);
    assert_eq!(ds.rows, Some(200));
    assert_eq!(
        ds.description.as_deref(),
        Some("Synthetic film-review sentiment: 200 rows, label 1 = positive")
    );
    let data_path = root.join(&ds.files.location).join("data.jsonl");
    let data = std::fs::read_to_string(&data_path).unwrap();
    let entry = ds
        .files
        .files
        .iter()
        .find(|f| f.path == "data.jsonl")
        .expect("data.jsonl");
    assert_eq!(entry.blake3, blake3_file(&data_path));
    let rows: Vec<Value> = data
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 200);
    for row in &rows {
        let mut keys: Vec<&str> = row
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort();
        assert_eq!(keys, ["label", "split", "text"], "{row}");
        assert!(row["label"] == 0 || row["label"] == 1, "{row}");
        assert!(!row["text"].as_str().unwrap().is_empty());
    }
    let splits = |s: &str| rows.iter().filter(|r| r["split"] == s).count();
    assert_eq!((splits("train"), splits("test")), (150, 50));
    // The logged metrics are those of the Rust generator.
    let metrics = std::fs::read_to_string(lab.job_dir(&gen).join("metrics.jsonl")).unwrap();
    let names: Vec<String> = metrics
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["name"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(names, ["positive_fraction", "flipped_labels"]);

    // Same parameters, same dataset, byte for byte, as the Rust generator.
    let rs_gen = lab.run(lab.spec(
        &rs_datagen,
        json!({"rows": 200, "dataset_name": "sentiment-rust"}),
    ));
    complete(&rs_gen);
    let rs_ds = lab
        .ws()
        .datasets()
        .unwrap()
        .into_iter()
        .find(|d| d.name == "sentiment-rust")
        .unwrap();
    assert_eq!(
        rs_ds.files.blake3, ds.files.blake3,
        "data.jsonl differs from the Rust generator's"
    );
    assert_eq!(rs_gen.scores, gen.scores);
    assert_eq!(rs_ds.description, ds.description);
    let without_generator = |m: &Value| {
        let mut m = m.clone();
        m.as_object_mut().unwrap().remove("generator");
        m
    };
    assert_eq!(ds.metadata["generator"], "sentiment-datagen-py");
    assert_eq!(
        without_generator(&ds.metadata),
        without_generator(&rs_ds.metadata)
    );

    // 2. The Rust trainer learns from the Python dataset.
    let mut spec = lab.spec(&trainer, json!({"epochs": 3}));
    spec.sandbox.grants.datasets = vec!["sentiment".into()];
    let train = lab.run(spec);
    complete(&train);
    assert!(train.scores["train_accuracy"] > 0.75, "{:?}", train.scores);
    assert_eq!(train.models.len(), 1);
    let model = lab
        .ws()
        .models()
        .unwrap()
        .into_iter()
        .find(|m| m.id == train.models[0])
        .unwrap();
    assert_eq!(model.name, "sentiment-logreg");
    let model_json: Value = serde_json::from_slice(
        &std::fs::read(root.join(&model.files.location).join("model.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(model_json["format"], "labhost-logreg-v1");

    // 3. The Python evaluator scores the Rust model on the Python data.
    let eval = evaluate(&lab, &py_evaluator, json!({}));
    let (t, csv) = predictions(&lab, &eval);
    let accuracy = eval.scores["accuracy"];
    assert_eq!(
        eval.scores.keys().map(String::as_str).collect::<Vec<_>>(),
        ["accuracy", "f1", "precision", "recall"]
    );
    assert!(
        eval.scores.values().all(|v| (0.0..=1.0).contains(v)),
        "{:?}",
        eval.scores
    );
    assert_eq!(
        eval.message.as_deref(),
        Some(format!("accuracy {accuracy:.3} on 50 \"test\" rows").as_str())
    );

    // The Rust evaluator on the same model and data: the same table, byte
    // for byte, and the same scores.
    let rs_eval = evaluate(&lab, &rs_evaluator, json!({}));
    complete(&rs_eval);
    let (rs_t, rs_csv) = table(&lab, &rs_eval);
    assert_eq!(rs_csv, csv);
    assert_eq!(rs_t.file.blake3, t.file.blake3);
    assert_eq!(rs_eval.scores, eval.scores);
    assert_eq!(rs_eval.message, eval.message);

    // The format parameter picks a JSON-lines table, as in Rust.
    let jsonl = evaluate(
        &lab,
        &py_evaluator,
        json!({"format": "jsonl", "split": "train"}),
    );
    complete(&jsonl);
    let (jt, text) = table(&lab, &jsonl);
    assert_eq!(jt.name, "predictions");
    assert!(
        jt.file.location.ends_with("predictions.jsonl"),
        "{}",
        jt.file.location
    );
    assert_eq!((jt.count, text.lines().count()), (150, 150));
    let rs_jsonl = evaluate(
        &lab,
        &rs_evaluator,
        json!({"format": "jsonl", "split": "train"}),
    );
    complete(&rs_jsonl);
    assert_eq!(table(&lab, &rs_jsonl).1, text);

    // A lab error surfaces as the job's error: the model was not granted.
    let mut spec = lab.spec(&py_evaluator, json!({}));
    spec.sandbox.grants.datasets = vec!["sentiment".into()];
    let denied = lab.run(spec);
    assert_eq!(denied.status, JobStatus::Failed);
    let message = denied.message.unwrap_or_default();
    assert!(
        message.starts_with("plugin returned an error: denied: "),
        "{message}"
    );
    // A parameter the plugin rejects itself, like the Rust one.
    let bad = evaluate(&lab, &py_evaluator, json!({"format": "xml"}));
    assert_eq!(bad.status, JobStatus::Failed);
    assert_eq!(
        bad.message.as_deref(),
        Some("plugin returned an error: format must be \"csv\" or \"jsonl\", not \"xml\"")
    );

    // Every stored file still matches its digest.
    for job in lab.ws().jobs(None).unwrap() {
        for s in job.stored() {
            assert_eq!(verify_stored(&root, s), Vec::<Problem>::new());
        }
    }
    for m in lab.ws().models().unwrap() {
        assert_eq!(verify_stored(&root, &m.files), Vec::<Problem>::new());
    }
    for d in lab.ws().datasets().unwrap() {
        assert_eq!(verify_stored(&root, &d.files), Vec::<Problem>::new());
    }
}

/// The mix the issue asks for: the Python generator feeds the Rust trainer,
/// and the JavaScript evaluator (guests/js/evaluator) scores the Rust model;
/// its predictions table must be byte-identical to the Rust evaluator's.
#[test]
fn python_generator_rust_trainer_js_evaluator() {
    let lab = Lab::with_shared_cache();
    let py_datagen = lab.load("python", "datagen");
    let trainer = lab.load("rust", "trainer");
    let js_evaluator = lab.load("js", "evaluator");
    let rs_evaluator = lab.load("rust", "evaluator");

    // The port describes itself like the original, under its own name.
    assert_eq!(js_evaluator.info.name, "sentiment-evaluator-js");
    assert_eq!(shape(&js_evaluator), shape(&rs_evaluator));

    // 1. Python: dataset "sentiment", 200 rows (150 train, 50 test).
    let gen = lab.run(lab.spec(&py_datagen, json!({"rows": 200})));
    complete(&gen);
    assert_eq!(gen.plugin.name, "sentiment-datagen-py");
    assert_eq!(gen.scores["test"], 50.0);

    // 2. Rust: model "sentiment-logreg".
    let mut spec = lab.spec(&trainer, json!({"epochs": 3}));
    spec.sandbox.grants.datasets = vec!["sentiment".into()];
    let train = lab.run(spec);
    complete(&train);
    assert_eq!(train.models.len(), 1);

    // 3. JavaScript: the evaluator scores the Rust model on the Python data.
    let eval = evaluate(&lab, &js_evaluator, json!({}));
    assert_eq!(eval.plugin.name, "sentiment-evaluator-js");
    let (t, csv) = predictions(&lab, &eval);
    let accuracy = eval.scores["accuracy"];
    assert_eq!(t.mean_score, accuracy);
    assert_eq!(
        eval.scores.keys().map(String::as_str).collect::<Vec<_>>(),
        ["accuracy", "f1", "precision", "recall"]
    );
    assert_eq!(
        eval.message.as_deref(),
        Some(format!("accuracy {accuracy:.3} on 50 \"test\" rows").as_str())
    );

    // The Rust evaluator on the same model and data: the same table, byte
    // for byte, and the same scores and message.
    let rs_eval = evaluate(&lab, &rs_evaluator, json!({}));
    complete(&rs_eval);
    let (rs_t, rs_csv) = table(&lab, &rs_eval);
    assert_eq!(rs_csv, csv);
    assert_eq!(rs_t.file.blake3, t.file.blake3);
    assert_eq!(rs_eval.scores, eval.scores);
    assert_eq!(rs_eval.message, eval.message);

    // JSON lines on the train split: the same bytes as Rust's too.
    let jsonl = evaluate(
        &lab,
        &js_evaluator,
        json!({"format": "jsonl", "split": "train"}),
    );
    complete(&jsonl);
    let (jt, text) = table(&lab, &jsonl);
    assert!(
        jt.file.location.ends_with("predictions.jsonl"),
        "{}",
        jt.file.location
    );
    assert_eq!((jt.count, text.lines().count()), (150, 150));
    let rs_jsonl = evaluate(
        &lab,
        &rs_evaluator,
        json!({"format": "jsonl", "split": "train"}),
    );
    complete(&rs_jsonl);
    assert_eq!(table(&lab, &rs_jsonl).1, text);
    assert_eq!(rs_jsonl.scores, jsonl.scores);

    // Its own errors fail the job with the Rust plugin's messages.
    let bad = evaluate(&lab, &js_evaluator, json!({"format": "xml"}));
    assert_eq!(bad.status, JobStatus::Failed);
    assert_eq!(
        bad.message.as_deref(),
        Some("plugin returned an error: format must be \"csv\" or \"jsonl\", not \"xml\"")
    );
    let mut spec = lab.spec(&js_evaluator, json!({}));
    spec.sandbox.grants.datasets = vec!["sentiment".into()];
    let denied = lab.run(spec);
    assert_eq!(denied.status, JobStatus::Failed);
    let message = denied.message.unwrap_or_default();
    assert!(
        message.starts_with("plugin returned an error: denied: "),
        "{message}"
    );
}
