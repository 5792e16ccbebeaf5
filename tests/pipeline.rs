//! The demo pipeline end to end through the library: generate a dataset,
//! train on it (with checkpoints and a resume), evaluate the model. Asserts
//! on the stored records, files and digests.

use labhost::store::verify::{verify_stored, Problem};
use labhost::JobStatus;
use labhost_tests::{blake3_file, Lab};
use serde_json::json;

#[test]
fn generate_train_evaluate_resume() {
    let lab = Lab::new();
    let root = lab.root().to_owned();

    // 1. The generator saves a dataset in the registry.
    let datagen = lab.load("rust", "datagen");
    let gen = lab.run(lab.spec(&datagen, json!({"rows": 200})));
    assert_eq!(gen.status, JobStatus::Complete, "{:?}", gen.message);
    assert_eq!(gen.datasets.len(), 1);
    let datasets = lab.ws().datasets().unwrap();
    assert_eq!(datasets.len(), 1);
    let ds = &datasets[0];
    assert_eq!(ds.name, "sentiment");
    assert_eq!(ds.id, gen.datasets[0]);
    assert_eq!(ds.job_id, gen.id);
    assert_eq!(ds.rows, Some(200));
    let data = root.join(&ds.files.location).join("data.jsonl");
    assert_eq!(std::fs::read_to_string(&data).unwrap().lines().count(), 200);
    let entry = ds
        .files
        .files
        .iter()
        .find(|f| f.path == "data.jsonl")
        .expect("data.jsonl recorded");
    assert_eq!(entry.blake3, blake3_file(&data));
    assert!(root
        .join("datasets")
        .join(&ds.id)
        .join("dataset.json")
        .is_file());

    // 2. The trainer: metrics per step, a checkpoint per epoch, a model.
    let trainer = lab.load("rust", "trainer");
    let mut spec = lab.spec(&trainer, json!({"epochs": 3}));
    spec.sandbox.grants.datasets = vec!["sentiment".into()];
    let train = lab.run(spec);
    assert_eq!(train.status, JobStatus::Complete, "{:?}", train.message);
    assert_eq!(
        train
            .checkpoints
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        ["epoch-1", "epoch-2", "epoch-3"]
    );
    assert!(train.scores["train_accuracy"] > 0.75, "{:?}", train.scores);
    assert_eq!(train.progress, 100.0);
    let metrics = std::fs::read_to_string(lab.job_dir(&train).join("metrics.jsonl")).unwrap();
    let points: Vec<serde_json::Value> = metrics
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let epoch_losses: Vec<f64> = points
        .iter()
        .filter(|p| p["name"] == "train_loss")
        .map(|p| p["value"].as_f64().unwrap())
        .collect();
    assert_eq!(epoch_losses.len(), 3);
    assert!(
        epoch_losses[2] < epoch_losses[0],
        "loss should fall: {epoch_losses:?}"
    );
    assert!(points.iter().filter(|p| p["name"] == "loss").count() >= 3);
    let models = lab.ws().models().unwrap();
    assert_eq!(models.len(), 1);
    let model = &models[0];
    assert_eq!(model.name, "sentiment-logreg");
    assert_eq!(model.architecture.as_deref(), Some("LogisticRegression"));
    assert_eq!(model.pipeline_tag.as_deref(), Some("text-classification"));
    assert_eq!(train.models, vec![model.id.clone()]);
    assert!(model.files.files.iter().any(|f| f.path == "model.json"));
    // The job's own record on disk matches what run() returned.
    let on_disk = lab.stored_record(&train);
    assert_eq!(on_disk["status"], "COMPLETE");
    assert_eq!(on_disk["checkpoints"].as_array().unwrap().len(), 3);
    // The scratch directory is gone; what was stored remains.
    assert!(!lab.job_dir(&train).join("work").exists());

    // 3. The evaluator: an eval table and final scores.
    let evaluator = lab.load("rust", "evaluator");
    let mut spec = lab.spec(&evaluator, json!({}));
    spec.sandbox.grants.datasets = vec!["sentiment".into()];
    spec.sandbox.grants.models = vec!["sentiment-logreg".into()];
    let eval = lab.run(spec);
    assert_eq!(eval.status, JobStatus::Complete, "{:?}", eval.message);
    assert_eq!(eval.evals.len(), 1);
    let table = &eval.evals[0];
    assert_eq!(table.name, "predictions");
    assert_eq!(table.count, 50, "the test split is 25% of 200 rows");
    assert!((table.mean_score - eval.scores["accuracy"]).abs() < 1e-9);
    assert!(eval.scores["accuracy"] > 0.7, "{:?}", eval.scores);
    let csv_path = root.join(&table.file.location);
    assert_eq!(table.file.blake3, blake3_file(&csv_path));
    let csv = std::fs::read_to_string(&csv_path).unwrap();
    assert_eq!(csv.lines().count(), 51, "header + one row per example");
    assert!(csv
        .lines()
        .next()
        .unwrap()
        .starts_with("input,output,expected_output,score,probability"));

    // 4. Resume training from epoch-2: one more epoch to reach 3.
    let mut spec = lab.spec(&trainer, json!({"epochs": 3}));
    spec.sandbox.grants.datasets = vec!["sentiment".into()];
    spec.resume = Some(labhost::ResumePoint::at(&train.id, "epoch-2"));
    let resumed = lab.run(spec);
    assert_eq!(resumed.status, JobStatus::Complete, "{:?}", resumed.message);
    let r = resumed.resume.as_ref().unwrap();
    assert_eq!(
        (r.job_id.as_str(), r.checkpoint.as_str()),
        (train.id.as_str(), "epoch-2")
    );
    assert_eq!(
        resumed
            .checkpoints
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        ["epoch-3"]
    );
    assert!(
        lab.log(&resumed)
            .contains("resumed from checkpoint epoch-2"),
        "{}",
        lab.log(&resumed)
    );
    // Same data order and state: the resumed epoch-3 equals the original.
    assert_eq!(resumed.checkpoints[0].blake3, train.checkpoints[2].blake3);

    // Every stored file still matches its digest.
    for job in lab.ws().jobs(None).unwrap() {
        for s in job.stored() {
            assert_eq!(verify_stored(&root, s), Vec::<Problem>::new());
        }
    }
    for m in lab.ws().models().unwrap() {
        assert_eq!(verify_stored(&root, &m.files), Vec::<Problem>::new());
    }
}
