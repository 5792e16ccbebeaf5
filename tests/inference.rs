//! Inference inside plugins through `wasi:nn`: the demo's real network
//! scored end to end, and the limits (a tensor or a model that does not fit
//! the job's memory) with a good job running beside the one refused.
//! The refusals every language meets are in `conformance.rs`
//! (`inference_through_wasi_nn`).

use std::path::PathBuf;

use labhost::{JobStatus, Limits};
use labhost_tests::{repo_root, Lab};
use serde_json::{json, Value};

/// The model and data `scripts/build-models.sh` builds.
fn digits_build() -> PathBuf {
    let dir = repo_root().join("examples/models/build");
    assert!(
        dir.join("digits-mlp.onnx").is_file() && dir.join("digits.jsonl").is_file(),
        "{} is missing the digits model: run scripts/build-models.sh",
        dir.display()
    );
    dir
}

#[test]
fn the_digits_network_runs_through_wasi_nn_next_to_the_hand_written_model() {
    let build = digits_build();
    let expected: Value =
        serde_json::from_slice(&std::fs::read(build.join("digits.json")).unwrap()).unwrap();
    let lab = Lab::new();
    let model = build.join("digits-mlp.onnx");
    let data = build.join("digits.jsonl");
    let out = lab.cli(&["models", "add", "digits-mlp", model.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let out = lab.cli(&["datasets", "add", "digits", data.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");

    let plugin = lab.load("rust", "digits_eval");
    let mut spec = lab.spec(&plugin, json!({"batch": 100}));
    spec.sandbox.grants.models = vec!["digits-mlp".into()];
    spec.sandbox.grants.datasets = vec!["digits".into()];
    let rec = lab.run(spec);
    assert_eq!(rec.status, JobStatus::Complete, "{}", lab.log(&rec));

    // The network's accuracy is the one scikit-learn measured on the same
    // 450 test images (float32 kernels may flip at most one near-tie).
    let sklearn = expected["sklearn_test_accuracy"].as_f64().unwrap();
    let score = |name: &str| rec.scores[name];
    let (net, centroid) = (score("accuracy"), score("centroid_accuracy"));
    assert!(
        (net - sklearn).abs() <= 1.0 / 450.0 + 1e-12,
        "network {net} vs scikit-learn {sklearn}"
    );
    assert!(net > 0.95, "{net}");
    assert!(
        centroid > 0.85 && centroid < net,
        "centroid {centroid}, network {net}"
    );
    let message = rec.message.as_deref().unwrap();
    assert!(
        message.starts_with(&format!("digits-mlp (wasi:nn) accuracy {net:.4}, nearest centroid {centroid:.4} on 450 test images (")),
        "{message}"
    );

    // The eval table: one row per test image, both models side by side.
    assert_eq!(rec.evals.len(), 1);
    assert_eq!(
        (rec.evals[0].name.as_str(), rec.evals[0].count),
        ("digits", 450)
    );
    assert!((rec.evals[0].mean_score - net).abs() < 1e-9);
    let csv = std::fs::read_to_string(lab.root().join(&rec.evals[0].file.location)).unwrap();
    let header = csv.lines().next().unwrap();
    for col in [
        "input",
        "output",
        "expected_output",
        "score",
        "confidence",
        "centroid_output",
        "centroid_score",
    ] {
        assert!(
            header.split(',').any(|c| c == col),
            "no column {col} in {header}"
        );
    }
    assert_eq!(csv.lines().count(), 451);
    // The host logged the model it loaded and its signature.
    assert!(
        lab.log(&rec)
            .contains("inputs input: F32 [?, 64]; outputs label, probabilities"),
        "{}",
        lab.log(&rec)
    );
}

#[test]
fn tensors_and_models_count_against_the_memory_limit_and_a_job_beside_runs_on() {
    let lab = Lab::new();
    let linear = lab.add_model(
        "linear",
        "model.onnx",
        &labhost::nn::fixture::linear_argmax(),
    );
    // 40 MiB that would have to be read and parsed: refused before reading.
    let big = lab.add_model("big", "model.onnx", &vec![0u8; 40 << 20]);
    let probe = lab.load("rust", "probe");
    let limited = |scenario: &str, target: &str, model: &str, memory_mib: u64, count: u64| {
        let mut spec = lab.spec(
            &probe,
            json!({"scenario": scenario, "target": target, "count": count}),
        );
        spec.sandbox.grants.models = vec![model.to_owned()];
        spec.sandbox.limits = Limits {
            memory_bytes: memory_mib << 20,
            ..Limits::default()
        };
        spec
    };
    let _rt = lab.rt.enter();
    let tensor = lab
        .host
        .start(limited("nn-big", "linear", &linear, 64, 48))
        .unwrap();
    let model = lab.host.start(limited("nn", "big", &big, 32, 0)).unwrap();
    let good = lab
        .host
        .start(limited("nn", "linear", &linear, 64, 0))
        .unwrap();
    let (tensor, model, good) = lab.rt.block_on(async {
        (
            tensor.wait().await.unwrap(),
            model.wait().await.unwrap(),
            good.wait().await.unwrap(),
        )
    });

    assert_eq!(tensor.status, JobStatus::Failed, "{}", lab.log(&tensor));
    let m = tensor.message.as_deref().unwrap();
    assert!(
        m.contains("a wasi:nn tensor (48 MiB) would take the job past its memory limit of 64 MiB (plugin memory "),
        "{m}"
    );
    assert_eq!(model.status, JobStatus::Failed, "{}", lab.log(&model));
    let m = model.message.as_deref().unwrap();
    assert!(
        m.contains(&format!(
            "too-large: model `{big}` (40 MiB) would take the job past its memory limit of 32 MiB (plugin memory "
        )),
        "{m}"
    );
    assert_eq!(
        (good.status, good.message.as_deref()),
        (JobStatus::Complete, Some("nn done")),
        "{}",
        lab.log(&good)
    );
    assert_eq!(lab.report(&good, "nn_scores"), "4.5,-1.5,-3.5,3.5");
}
