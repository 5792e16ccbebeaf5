//! `digits-evaluator`: score a real trained network, run by the host
//! through `wasi:nn`, next to a model written by hand, on the same images.
//!
//! The model is an ONNX classifier granted to the job (the demo's is an MLP
//! trained by scikit-learn on its bundled 8x8 digits and exported with
//! skl2onnx: input `input` float32 [N, 64], outputs `label` int64 [N] and
//! `probabilities` float32 [N, 10]). The dataset holds one
//! `{"pixels": [64 numbers], "label": digit, "split": "train" | "test"}`
//! per line. The hand-written model is a nearest-centroid classifier fitted
//! here on the train split. Both predict every test image; the eval table
//! `digits` has a row per image (network's prediction, expected digit,
//! score 1/0, and the centroid model's prediction as an extra column), and
//! the job's scores are both accuracies.

use std::fs;
use std::time::Instant;

use serde::Deserialize;
use serde_json::json;

pub struct DigitsEvaluator;

lab::export_plugin!(DigitsEvaluator);

#[derive(Deserialize)]
struct Params {
    model: String,
    dataset: String,
    batch: u32,
}

#[derive(Deserialize)]
struct Row {
    pixels: Vec<f32>,
    label: i64,
    split: String,
}

const PIXELS: usize = 64;
const CLASSES: usize = 10;

impl lab::Plugin for DigitsEvaluator {
    fn describe() -> lab::Describe {
        use lab::ParamType::{Integer, Text};
        lab::Describe::new(
            "digits-evaluator",
            lab::Kind::Evaluator,
            "Scores an ONNX digit classifier (run through wasi:nn) next to a hand-written nearest-centroid model",
        )
        .param("model", Text, Some("\"digits-mlp\""), "ONNX model granted to the job (name or id)")
        .param("dataset", Text, Some("\"digits\""), "Dataset of 8x8 digit images (name or id)")
        .param("batch", Integer, Some("64"), "Images per inference call")
    }

    fn run() -> lab::Result<()> {
        let p: Params = lab::config_as()?;
        if p.batch == 0 {
            return Err(lab::Error::msg("batch must be at least 1"));
        }
        lab::progress_stage(0.0, "loading")?;
        let rows = load_rows(&p.dataset)?;
        let (train, test): (Vec<&Row>, Vec<&Row>) = rows.iter().partition(|r| r.split == "train");
        if train.is_empty() || test.is_empty() {
            return Err(lab::Error::msg(format!(
                "dataset {} needs train and test rows (has {} and {})",
                p.dataset,
                train.len(),
                test.len()
            )));
        }
        let started = Instant::now();
        let model = lab::nn::Model::load(&p.model)?;
        lab::info(&format!(
            "loaded model {} through wasi:nn in {} ms",
            p.model,
            started.elapsed().as_millis()
        ));

        lab::progress_stage(10.0, "fitting the centroid model")?;
        let centroids = fit_centroids(&train);

        lab::progress_stage(20.0, "predicting")?;
        let mut table = Vec::with_capacity(test.len());
        let (mut right_net, mut right_centroid) = (0usize, 0usize);
        let mut infer_ms = 0.0;
        for (b, chunk) in test.chunks(p.batch as usize).enumerate() {
            if lab::should_stop() {
                return Err(lab::Error::msg("stopped on request"));
            }
            let pixels: Vec<f32> = chunk
                .iter()
                .flat_map(|r| r.pixels.iter().copied())
                .collect();
            let t = Instant::now();
            let out = model.run_f32("input", &[chunk.len() as u32, PIXELS as u32], &pixels)?;
            let ms = t.elapsed().as_secs_f64() * 1e3;
            infer_ms += ms;
            lab::metric("batch_inference_ms", ms, Some(b as u64))?;
            let labels = out.get("label")?.to_i64()?;
            let probabilities = out.get("probabilities")?.to_f32()?;
            if labels.len() != chunk.len() || probabilities.len() != chunk.len() * CLASSES {
                return Err(lab::Error::msg(format!(
                    "the model returned {} labels and {} probabilities for {} images",
                    labels.len(),
                    probabilities.len(),
                    chunk.len()
                )));
            }
            for (i, row) in chunk.iter().enumerate() {
                let net = labels[i];
                let confidence = probabilities[i * CLASSES + net.clamp(0, 9) as usize];
                let centroid = nearest(&centroids, &row.pixels);
                right_net += usize::from(net == row.label);
                right_centroid += usize::from(centroid == row.label);
                table.push(lab::EvalRow {
                    input: format!("image {}", table.len()),
                    output: net.to_string(),
                    expected: Some(row.label.to_string()),
                    score: if net == row.label { 1.0 } else { 0.0 },
                    extra: json!({
                        "confidence": confidence,
                        "centroid_output": centroid,
                        "centroid_score": if centroid == row.label { 1.0 } else { 0.0 },
                    })
                    .to_string(),
                });
            }
            lab::progress(20.0 + 70.0 * table.len() as f32 / test.len() as f32)?;
        }
        let n = test.len() as f64;
        let (acc_net, acc_centroid) = (right_net as f64 / n, right_centroid as f64 / n);
        lab::save_eval("digits", &table, lab::TableFormat::Csv)?;
        lab::metric("accuracy", acc_net, None)?;
        lab::metric("centroid_accuracy", acc_centroid, None)?;
        lab::finish(
            &format!(
                "{} (wasi:nn) accuracy {acc_net:.4}, nearest centroid {acc_centroid:.4} on {} test images ({infer_ms:.1} ms of inference)",
                p.model,
                test.len()
            ),
            &[("accuracy", acc_net), ("centroid_accuracy", acc_centroid)],
        )
    }
}

/// Every row of the dataset's `.jsonl` files.
fn load_rows(dataset: &str) -> lab::Result<Vec<Row>> {
    let dir = lab::open_dataset(dataset)?;
    let mut files: Vec<_> = fs::read_dir(&dir)
        .map_err(|e| lab::Error::msg(format!("cannot list {}: {e}", dir.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    let mut rows = Vec::new();
    for path in files {
        let text = fs::read_to_string(&path)
            .map_err(|e| lab::Error::msg(format!("cannot read {}: {e}", path.display())))?;
        for (i, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let row: Row = serde_json::from_str(line)
                .map_err(|e| lab::Error::msg(format!("{} line {}: {e}", path.display(), i + 1)))?;
            if row.pixels.len() != PIXELS {
                return Err(lab::Error::msg(format!(
                    "{} line {}: {} pixels, expected {PIXELS}",
                    path.display(),
                    i + 1,
                    row.pixels.len()
                )));
            }
            rows.push(row);
        }
    }
    Ok(rows)
}

/// The mean image of each digit.
fn fit_centroids(train: &[&Row]) -> Vec<[f32; PIXELS]> {
    let mut sums = vec![[0f32; PIXELS]; CLASSES];
    let mut counts = [0f32; CLASSES];
    for r in train {
        let d = r.label.clamp(0, 9) as usize;
        counts[d] += 1.0;
        for (s, v) in sums[d].iter_mut().zip(&r.pixels) {
            *s += v;
        }
    }
    for (s, c) in sums.iter_mut().zip(counts) {
        s.iter_mut().for_each(|v| *v /= c.max(1.0));
    }
    sums
}

fn nearest(centroids: &[[f32; PIXELS]], pixels: &[f32]) -> i64 {
    let dist = |c: &[f32; PIXELS]| {
        c.iter()
            .zip(pixels)
            .map(|(a, b)| (a - b) * (a - b))
            .sum::<f32>()
    };
    (0..centroids.len())
        .min_by(|a, b| dist(&centroids[*a]).total_cmp(&dist(&centroids[*b])))
        .unwrap_or(0) as i64
}
