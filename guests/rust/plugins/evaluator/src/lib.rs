//! `sentiment-evaluator`: score a sentiment model on a dataset split.
//!
//! The last stage of the example pipeline
//! (`sentiment-datagen` → `sentiment-trainer` → evaluator).
//!
//! It opens a `labhost-logreg-v1` model (a directory holding `model.json`:
//! `{"format", "vocab": {word: weight}, "bias", "tokenizer"}`) and a dataset
//! (`data.jsonl`, one `{"text", "label", "split"}` per line), predicts every
//! row of the chosen split, and stores the predictions as the eval table
//! `predictions` (CSV or JSON lines): input text, predicted label, expected
//! label, score 1/0 for right/wrong, and the probability as an extra column.
//! Accuracy, precision, recall and F1 (positive class = 1) become the job's
//! scores.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::json;

/// The plugin type registered with [`lab::export_plugin!`].
pub struct SentimentEvaluator;

lab::export_plugin!(SentimentEvaluator);

impl lab::Plugin for SentimentEvaluator {
    fn describe() -> lab::Describe {
        use lab::ParamType::Text;
        lab::Describe::new(
            "sentiment-evaluator",
            lab::Kind::Evaluator,
            "Evaluates a logistic regression sentiment model on a dataset split",
        )
        .param(
            "model",
            Text,
            Some("\"sentiment-logreg\""),
            "Model to evaluate (name or id)",
        )
        .param(
            "dataset",
            Text,
            Some("\"sentiment\""),
            "Dataset to evaluate on (name or id)",
        )
        .param("split", Text, Some("\"test\""), "Dataset split to evaluate")
        .param(
            "format",
            Text,
            Some("\"csv\""),
            "Format of the predictions table: csv or jsonl",
        )
    }

    fn run() -> lab::Result<()> {
        let params: Params = lab::config_as()?;
        let format = table_format(&params.format)?;

        lab::progress_stage(0.0, "loading")?;
        let model = Model::open(&params.model)?;
        let rows = load_split(&params.dataset, &params.split)?;
        if rows.is_empty() {
            return Err(lab::Error::msg(format!(
                "dataset {} has no rows in split {:?}",
                params.dataset, params.split
            )));
        }
        lab::info(&format!(
            "evaluating model {} ({} words) on {} {:?} rows of dataset {}",
            params.model,
            model.vocab.len(),
            rows.len(),
            params.split,
            params.dataset
        ));

        lab::progress_stage(30.0, "predicting")?;
        let (eval_rows, counts) = predict_all(&model, &rows);

        lab::progress_stage(80.0, "saving predictions")?;
        let summary = lab::save_eval("predictions", &eval_rows, format)?;
        lab::info(&format!(
            "saved {} predictions (mean score {:.3})",
            summary.count, summary.mean_score
        ));

        let scores = counts.scores();
        for (name, value) in scores {
            lab::metric(name, value, None)?;
        }
        lab::progress_stage(100.0, "done")?;
        let [(_, accuracy), ..] = scores;
        lab::finish(
            &format!(
                "accuracy {accuracy:.3} on {} {:?} rows",
                rows.len(),
                params.split
            ),
            &scores,
        )
    }
}

/// The job's parameters (the host fills in the defaults from `describe`).
#[derive(Deserialize)]
struct Params {
    model: String,
    dataset: String,
    split: String,
    format: String,
}

/// The eval table format named by the `format` parameter.
fn table_format(name: &str) -> lab::Result<lab::TableFormat> {
    match name {
        "csv" => Ok(lab::TableFormat::Csv),
        "jsonl" => Ok(lab::TableFormat::Jsonl),
        other => Err(format!("format must be \"csv\" or \"jsonl\", not {other:?}").into()),
    }
}

// ---- model and data ----------------------------------------------------------

/// A `labhost-logreg-v1` model file.
#[derive(Deserialize)]
struct Model {
    format: String,
    /// Weight of each word.
    vocab: HashMap<String, f64>,
    bias: f64,
    tokenizer: String,
}

impl Model {
    /// Open the granted model `name` (a name or id) and read its `model.json`.
    fn open(name: &str) -> lab::Result<Self> {
        let path = model_file(lab::open_model(name)?);
        let text = fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let model: Model = serde_json::from_str(&text)
            .map_err(|e| format!("{} is not a logistic regression model: {e}", path.display()))?;
        if model.format != "labhost-logreg-v1" {
            return Err(format!("unsupported model format {:?}", model.format).into());
        }
        if model.tokenizer != "lowercase-alnum" {
            return Err(format!("unsupported tokenizer {:?}", model.tokenizer).into());
        }
        Ok(model)
    }

    /// The probability that `text` is positive: the sigmoid of the bias plus
    /// the weight of every token occurrence (unknown tokens weigh 0).
    fn probability(&self, text: &str) -> f64 {
        let score = self.bias
            + tokenize(text)
                .iter()
                .filter_map(|t| self.vocab.get(t))
                .sum::<f64>();
        1.0 / (1.0 + (-score).exp())
    }
}

/// `model.json` inside a model directory (or the path itself, should the
/// model have been saved as a single file).
fn model_file(path: PathBuf) -> PathBuf {
    if path.is_dir() {
        path.join("model.json")
    } else {
        path
    }
}

/// Lowercase, then split on anything that is not alphanumeric
/// (the `lowercase-alnum` tokenizer of the model format).
fn tokenize(text: &str) -> Vec<String> {
    text.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

/// One row of a dataset's `data.jsonl` (other fields are ignored).
#[derive(Deserialize)]
struct Example {
    text: String,
    label: u8,
    split: String,
}

/// The rows of `split` in dataset `name` (a name or id).
fn load_split(name: &str, split: &str) -> lab::Result<Vec<Example>> {
    let path = lab::open_dataset(name)?.join("data.jsonl");
    let text =
        fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut rows = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let row: Example = serde_json::from_str(line).map_err(|e| line_error(&path, i, e))?;
        if row.label > 1 {
            return Err(line_error(&path, i, "label must be 0 or 1"));
        }
        if row.split == split {
            rows.push(row);
        }
    }
    Ok(rows)
}

fn line_error(path: &Path, index: usize, error: impl std::fmt::Display) -> lab::Error {
    lab::Error::msg(format!("{} line {}: {error}", path.display(), index + 1))
}

// ---- predictions and scores --------------------------------------------------

/// Predict every row: the eval table and the confusion counts.
fn predict_all(model: &Model, rows: &[Example]) -> (Vec<lab::EvalRow>, Confusion) {
    let mut counts = Confusion::default();
    let eval_rows = rows
        .iter()
        .map(|row| {
            let probability = model.probability(&row.text);
            let predicted = u8::from(probability >= 0.5);
            counts.add(predicted, row.label);
            lab::EvalRow {
                input: row.text.clone(),
                output: predicted.to_string(),
                expected: Some(row.label.to_string()),
                score: if predicted == row.label { 1.0 } else { 0.0 },
                extra: json!({ "probability": probability }).to_string(),
            }
        })
        .collect();
    (eval_rows, counts)
}

/// Confusion-matrix counts, with label 1 as the positive class.
#[derive(Default)]
struct Confusion {
    true_pos: u64,
    false_pos: u64,
    true_neg: u64,
    false_neg: u64,
}

impl Confusion {
    fn add(&mut self, predicted: u8, expected: u8) {
        match (predicted, expected) {
            (1, 1) => self.true_pos += 1,
            (1, _) => self.false_pos += 1,
            (_, 1) => self.false_neg += 1,
            _ => self.true_neg += 1,
        }
    }

    /// Accuracy, precision, recall and F1, in that order. A ratio with an
    /// empty denominator (e.g. precision with no positive prediction) is 0.
    fn scores(&self) -> [(&'static str, f64); 4] {
        let total = self.true_pos + self.false_pos + self.true_neg + self.false_neg;
        let accuracy = ratio(self.true_pos + self.true_neg, total);
        let precision = ratio(self.true_pos, self.true_pos + self.false_pos);
        let recall = ratio(self.true_pos, self.true_pos + self.false_neg);
        let f1 = if precision + recall > 0.0 {
            2.0 * precision * recall / (precision + recall)
        } else {
            0.0
        };
        [
            ("accuracy", accuracy),
            ("precision", precision),
            ("recall", recall),
            ("f1", f1),
        ]
    }
}

fn ratio(numerator: u64, denominator: u64) -> f64 {
    if denominator == 0 {
        0.0
    } else {
        numerator as f64 / denominator as f64
    }
}
