//! The demo pipeline with a C generator: guests/c/plugins/datagen
//! (`sentiment-datagen-c`, written against the C SDK guests/c/lab.h) feeds
//! the Rust trainer, whose model the Rust evaluator scores on the C data.
//!
//! Besides the records, the test checks the data itself: every row is a
//! `{"text", "label", "split"}` object, the splits follow `test_fraction`,
//! and the labels disagree with the sentence's vocabulary on exactly the
//! rows the generator reports as flipped by the label noise.

use labhost::store::verify::{verify_stored, Problem};
use labhost::{JobEvent, JobRecord, JobStatus, Plugin};
use labhost_tests::{blake3_file, Lab};
use serde_json::{json, Value};

fn complete(rec: &JobRecord) {
    assert_eq!(rec.status, JobStatus::Complete, "{:?}", rec.message);
}

/// What `describe()` says, minus the name and description.
fn params(p: &Plugin) -> Value {
    json!({
        "kind": p.info.kind.as_str(),
        "params": p.info.params.iter()
            .map(|p| json!([p.name, p.ty.as_str(), p.default, p.description]))
            .collect::<Vec<_>>(),
    })
}

/// The positive adjectives of the generators (guests/*/plugins/datagen):
/// a sentence is truly positive iff it holds one of them.
const POSITIVE: &[&str] = &[
    "great",
    "fun",
    "wonderful",
    "brilliant",
    "moving",
    "charming",
    "excellent",
    "delightful",
    "clever",
    "beautiful",
    "gripping",
    "superb",
];

#[test]
fn c_datagen_rust_trainer_rust_evaluator() {
    let lab = Lab::new();
    let root = lab.root().to_owned();
    let datagen = lab.load("c", "datagen");
    let trainer = lab.load("rust", "trainer");
    let evaluator = lab.load("rust", "evaluator");

    // The port declares the Rust generator's kind and parameters.
    assert_eq!(datagen.info.name, "sentiment-datagen-c");
    assert_eq!(params(&datagen), params(&lab.load("rust", "datagen")));

    // 1. The C generator saves dataset "sentiment": 300 rows, 20% test.
    let (rows_n, test_n, train_n) = (300, 60, 240);
    // Started by hand to watch its progress events.
    let spec = lab.spec(
        &datagen,
        json!({"rows": rows_n, "seed": 11, "test_fraction": 0.2}),
    );
    let (gen, mut events) = {
        let _guard = lab.rt.enter();
        let mut handle = lab.host.start(spec).unwrap();
        let events = handle.events();
        (lab.rt.block_on(handle.wait()).unwrap(), events)
    };
    complete(&gen);
    let mut progress = Vec::new();
    while let Ok(event) = events.try_recv() {
        if let JobEvent::Progress { percent, stage } = event {
            progress.push((percent, stage.unwrap_or_default()));
        }
    }
    assert!(
        progress.windows(2).all(|w| w[0].0 <= w[1].0),
        "{progress:?}"
    );
    let mut stages: Vec<&str> = progress.iter().map(|(_, s)| s.as_str()).collect();
    stages.dedup();
    assert_eq!(stages, ["generating", "saving", "done"], "{progress:?}");
    assert!(
        progress.len() > 3,
        "progress reported while generating: {progress:?}"
    );
    assert_eq!(progress.last().unwrap().0, 100.0);
    assert_eq!(gen.plugin.name, "sentiment-datagen-c");
    assert_eq!(gen.plugin.kind, "generator");
    assert_eq!(
        gen.scores
            .iter()
            .map(|(k, v)| (k.as_str(), *v))
            .collect::<Vec<_>>(),
        [("rows", 300.0), ("test", 60.0), ("train", 240.0)]
    );
    assert_eq!((gen.progress, gen.stage.as_deref()), (100.0, Some("done")));

    assert_eq!(gen.datasets.len(), 1);
    let datasets = lab.ws().datasets().unwrap();
    assert_eq!(datasets.len(), 1);
    let ds = &datasets[0];
    assert_eq!(ds.name, "sentiment");
    assert_eq!(ds.id, gen.datasets[0]);
    assert_eq!(ds.job_id, gen.id);
    assert_eq!(ds.rows, Some(rows_n));
    assert_eq!(
        ds.description.as_deref(),
        Some("Synthetic film-review sentiment: 300 rows, label 1 = positive")
    );
    assert_eq!(ds.metadata["generator"], "sentiment-datagen-c");
    assert_eq!(ds.metadata["seed"], 11);
    assert_eq!(ds.metadata["rows"], 300);
    assert_eq!(ds.metadata["noise"], 0.1);
    assert_eq!(ds.metadata["test_fraction"], 0.2);
    assert_eq!(
        (
            ds.metadata["train_rows"].as_u64(),
            ds.metadata["test_rows"].as_u64()
        ),
        (Some(train_n), Some(test_n))
    );
    assert_eq!(verify_stored(&root, &ds.files), Vec::<Problem>::new());

    // The file on disk is the one recorded, and holds the rows.
    let data_path = root.join(&ds.files.location).join("data.jsonl");
    let entry = ds
        .files
        .files
        .iter()
        .find(|f| f.path == "data.jsonl")
        .expect("data.jsonl");
    assert_eq!(entry.blake3, blake3_file(&data_path));
    let data = std::fs::read_to_string(&data_path).unwrap();
    assert_eq!(data.len() as u64, entry.size);
    let rows: Vec<Value> = data
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len() as u64, rows_n);
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
        assert!(row["split"] == "train" || row["split"] == "test", "{row}");
        assert!(!row["text"].as_str().unwrap().is_empty(), "{row}");
    }
    let split = |s: &str| rows.iter().filter(|r| r["split"] == s).count() as u64;
    assert_eq!((split("train"), split("test")), (train_n, test_n));
    // Train rows first, then the test rows (as the Rust generator).
    assert!(rows[..train_n as usize]
        .iter()
        .all(|r| r["split"] == "train"));

    // Labels follow the vocabulary except on the rows flipped by the noise.
    let metrics = std::fs::read_to_string(lab.job_dir(&gen).join("metrics.jsonl")).unwrap();
    let metric = |name: &str| -> f64 {
        metrics
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("no metric {name} in {metrics}"))["value"]
            .as_f64()
            .unwrap()
    };
    let disagreeing = rows
        .iter()
        .filter(|r| {
            let positive = r["text"]
                .as_str()
                .unwrap()
                .split(' ')
                .any(|w| POSITIVE.contains(&w));
            (r["label"] == 1) != positive
        })
        .count();
    assert_eq!(disagreeing as f64, metric("flipped_labels"));
    assert!(
        (10..=60).contains(&disagreeing),
        "noise 0.1 of 300 rows flipped {disagreeing}"
    );
    let positive = rows.iter().filter(|r| r["label"] == 1).count();
    assert_eq!(positive as f64 / rows_n as f64, metric("positive_fraction"));

    // 2. The Rust trainer learns from the C dataset.
    let mut spec = lab.spec(&trainer, json!({"epochs": 3}));
    spec.sandbox.grants.datasets = vec!["sentiment".into()];
    let train = lab.run(spec);
    complete(&train);
    assert!(train.scores["train_accuracy"] > 0.75, "{:?}", train.scores);
    assert_eq!(train.models.len(), 1);
    let models = lab.ws().models().unwrap();
    assert_eq!(models.len(), 1);
    assert_eq!(models[0].name, "sentiment-logreg");
    assert_eq!(models[0].id, train.models[0]);

    // 3. The Rust evaluator scores that model on the C test split.
    let mut spec = lab.spec(&evaluator, json!({}));
    spec.sandbox.grants.datasets = vec!["sentiment".into()];
    spec.sandbox.grants.models = vec!["sentiment-logreg".into()];
    let eval = lab.run(spec);
    complete(&eval);
    assert_eq!(eval.evals.len(), 1);
    let table = &eval.evals[0];
    assert_eq!(table.name, "predictions");
    assert_eq!(table.count, test_n, "one prediction per test row");
    assert_eq!(
        table.file.blake3,
        blake3_file(&root.join(&table.file.location))
    );
    assert!(eval.scores["accuracy"] > 0.7, "{:?}", eval.scores);
    assert!((table.mean_score - eval.scores["accuracy"]).abs() < 1e-9);
}

/// Same parameters, same draws: the C port writes the Rust generator's
/// dataset byte for byte (not promised by the port, but a regression here
/// means its generator drifted).
#[test]
fn c_datagen_matches_rust_datagen() {
    let lab = Lab::new();
    let config = json!({"rows": 120, "seed": 3, "noise": 0.2, "test_fraction": 0.3});
    let with_name = |name: &str| {
        let mut c = config.clone();
        c["dataset_name"] = name.into();
        c
    };
    let c = lab.run(lab.spec(&lab.load("c", "datagen"), with_name("from-c")));
    let rust = lab.run(lab.spec(&lab.load("rust", "datagen"), with_name("from-rust")));
    complete(&c);
    complete(&rust);
    assert_eq!(c.scores, rust.scores);
    let datasets = lab.ws().datasets().unwrap();
    let ds = |name: &str| datasets.iter().find(|d| d.name == name).unwrap().clone();
    let (dc, dr) = (ds("from-c"), ds("from-rust"));
    assert_eq!(
        dc.files.blake3, dr.files.blake3,
        "data.jsonl differs from the Rust generator's"
    );
    assert_eq!(dc.description, dr.description);
    let mut mc = dc.metadata.clone();
    mc["generator"] = dr.metadata["generator"].clone();
    assert_eq!(mc, dr.metadata);
}
