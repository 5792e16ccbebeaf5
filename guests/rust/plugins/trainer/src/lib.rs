//! `sentiment-trainer`: train a bag-of-words logistic regression.
//!
//! The second stage of the example pipeline
//! (`sentiment-datagen` → trainer → `sentiment-evaluator`).
//!
//! It reads the `"train"` rows of a dataset's `data.jsonl`
//! (`{"text", "label", "split"}` per line), tokenizes each text (lowercase,
//! split on non-alphanumeric characters), and fits
//! `p(positive) = sigmoid(bias + Σ weight[token] · count[token])` with
//! mini-batch gradient descent and L2 regularisation.
//!
//! Along the way it shows the lab features a trainer usually needs:
//!
//! * metrics: `loss` per step (global batch index), `train_loss` and
//!   `train_accuracy` per epoch;
//! * progress with an `epoch i/N` stage;
//! * a checkpoint after every epoch (`checkpoint-epoch-{i}.json`, saved as
//!   checkpoint `epoch-{i}`), and resuming from one with `--resume`;
//! * stopping cleanly when the job is asked to stop;
//! * saving the model (`model.json` + `README.txt`) to the model registry
//!   and a training summary as an artifact.
//!
//! The model format, `labhost-logreg-v1`, keys weights by word so that any
//! language can evaluate it; the `README` constant below describes it.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::json;

/// The plugin type registered with [`lab::export_plugin!`].
pub struct SentimentTrainer;

lab::export_plugin!(SentimentTrainer);

impl lab::Plugin for SentimentTrainer {
    fn describe() -> lab::Describe {
        use lab::ParamType::{Integer, Number, Text};
        lab::Describe::new(
            "sentiment-trainer",
            lab::Kind::Trainer,
            "Trains a bag-of-words logistic regression sentiment classifier",
        )
        .param(
            "dataset",
            Text,
            Some("\"sentiment\""),
            "Dataset to train on (its \"train\" split)",
        )
        .param(
            "epochs",
            Integer,
            Some("8"),
            "Number of passes over the training data",
        )
        .param("lr", Number, Some("0.5"), "Learning rate")
        .param("l2", Number, Some("0.0001"), "L2 regularisation strength")
        .param(
            "batch_size",
            Integer,
            Some("16"),
            "Examples per gradient step",
        )
        .param(
            "model_name",
            Text,
            Some("\"sentiment-logreg\""),
            "Name of the model to save",
        )
    }

    fn run() -> lab::Result<()> {
        let params = Params::load()?;
        lab::progress_stage(0.0, "loading data")?;
        let train = load_split(&params.dataset, "train")?;
        if train.is_empty() {
            return Err(format!("dataset {} has no \"train\" rows", params.dataset).into());
        }
        lab::info(&format!(
            "{} training rows from dataset {}",
            train.len(),
            params.dataset
        ));

        let mut state = TrainState::start(&train)?;
        let samples = encode(&train, &state.vocab);
        let history = match train_epochs(&mut state, &samples, &params)? {
            Outcome::Completed(history) => history,
            Outcome::Stopped { after_epoch } => {
                lab::warn("stop requested; the last checkpoint holds the progress so far");
                lab::fail(&format!("stopped by request after epoch {after_epoch}"))?;
                return Ok(());
            }
        };

        lab::progress_stage(95.0, "saving model")?;
        let (final_loss, accuracy) = state.model.evaluate(&samples);
        let model = save_model(&state, &params, final_loss, accuracy)?;
        let summary = json!({
            "model": model.id,
            "dataset": params.dataset,
            "train_rows": train.len(),
            "vocab_size": state.vocab.len(),
            "params": { "epochs": params.epochs, "lr": params.lr, "l2": params.l2, "batch_size": params.batch_size },
            "resumed_from": state.resumed_from,
            "history": history,
            "final_loss": final_loss,
            "train_accuracy": accuracy,
        });
        save_summary(&summary)?;
        lab::progress_stage(100.0, "done")?;

        lab::finish(
            &format!("trained model {} (train accuracy {accuracy:.3})", model.id),
            &[("final_loss", final_loss), ("train_accuracy", accuracy)],
        )
    }
}

// ---- parameters and data ---------------------------------------------------

/// The job's parameters (the host fills in the defaults from `describe`).
#[derive(Deserialize)]
struct Params {
    dataset: String,
    epochs: u32,
    lr: f64,
    l2: f64,
    batch_size: usize,
    model_name: String,
}

impl Params {
    /// Read and sanity-check the parameters.
    fn load() -> lab::Result<Self> {
        let params: Params = lab::config_as()?;
        if params.epochs == 0 {
            return Err("epochs must be at least 1".into());
        }
        if !(params.lr.is_finite() && params.lr > 0.0) {
            return Err("lr must be a positive number".into());
        }
        if !(params.l2.is_finite() && params.l2 >= 0.0) {
            return Err("l2 must be a non-negative number".into());
        }
        if params.batch_size == 0 {
            return Err("batch_size must be at least 1".into());
        }
        Ok(params)
    }
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
        let row: Example = serde_json::from_str(line)
            .map_err(|e| format!("{} line {}: {e}", path.display(), i + 1))?;
        if row.label > 1 {
            return Err(format!("{} line {}: label must be 0 or 1", path.display(), i + 1).into());
        }
        if row.split == split {
            rows.push(row);
        }
    }
    Ok(rows)
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

/// The sorted set of tokens in `rows`.
fn build_vocab(rows: &[Example]) -> Vec<String> {
    let mut words: Vec<String> = rows.iter().flat_map(|r| tokenize(&r.text)).collect();
    words.sort_unstable();
    words.dedup();
    words
}

/// An example as sparse token counts over the vocabulary.
struct Sample {
    /// `(vocabulary index, count)`, one entry per distinct known token.
    features: Vec<(usize, f64)>,
    /// 1.0 for positive, 0.0 for negative.
    label: f64,
}

/// Turn rows into samples; tokens outside `vocab` are dropped.
fn encode(rows: &[Example], vocab: &[String]) -> Vec<Sample> {
    let index: HashMap<&str, usize> = vocab
        .iter()
        .enumerate()
        .map(|(i, w)| (w.as_str(), i))
        .collect();
    rows.iter()
        .map(|row| {
            let mut counts: BTreeMap<usize, f64> = BTreeMap::new();
            for token in tokenize(&row.text) {
                if let Some(&i) = index.get(token.as_str()) {
                    *counts.entry(i).or_default() += 1.0;
                }
            }
            Sample {
                features: counts.into_iter().collect(),
                label: f64::from(row.label),
            }
        })
        .collect()
}

// ---- the model ---------------------------------------------------------------

/// Logistic regression weights, aligned with the vocabulary.
struct Model {
    weights: Vec<f64>,
    bias: f64,
}

impl Model {
    fn zeros(features: usize) -> Self {
        Model {
            weights: vec![0.0; features],
            bias: 0.0,
        }
    }

    /// The log-odds of the positive class.
    fn logit(&self, sample: &Sample) -> f64 {
        self.bias
            + sample
                .features
                .iter()
                .map(|&(i, x)| self.weights[i] * x)
                .sum::<f64>()
    }

    /// Half the squared L2 norm of the weights.
    fn half_norm2(&self) -> f64 {
        0.5 * self.weights.iter().map(|w| w * w).sum::<f64>()
    }

    /// One gradient step on `batch`; returns the batch loss before the step
    /// (mean log loss plus the L2 penalty).
    fn step(&mut self, batch: &[&Sample], lr: f64, l2: f64) -> f64 {
        let n = batch.len() as f64;
        let logits: Vec<f64> = batch.iter().map(|s| self.logit(s)).collect();
        let data_loss = batch
            .iter()
            .zip(&logits)
            .map(|(s, &z)| log_loss(z, s.label))
            .sum::<f64>()
            / n;
        let loss = data_loss + l2 * self.half_norm2();

        // Gradient of the loss: mean((p - y) · x) + l2 · w.
        for w in &mut self.weights {
            *w -= lr * l2 * *w;
        }
        for (sample, &z) in batch.iter().zip(&logits) {
            let residual = (sigmoid(z) - sample.label) / n;
            for &(i, x) in &sample.features {
                self.weights[i] -= lr * residual * x;
            }
            self.bias -= lr * residual;
        }
        loss
    }

    /// Mean log loss (without the penalty) and accuracy over `samples`.
    fn evaluate(&self, samples: &[Sample]) -> (f64, f64) {
        let n = samples.len().max(1) as f64;
        let (mut loss, mut correct) = (0.0, 0usize);
        for sample in samples {
            let z = self.logit(sample);
            loss += log_loss(z, sample.label);
            correct += usize::from((z >= 0.0) == (sample.label == 1.0));
        }
        (loss / n, correct as f64 / n)
    }
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// Binary cross-entropy of logit `z` against label `y`, computed stably.
fn log_loss(z: f64, y: f64) -> f64 {
    z.max(0.0) - z * y + (-z.abs()).exp().ln_1p()
}

/// Per-epoch numbers, kept for the training summary.
#[derive(Serialize)]
struct EpochStats {
    epoch: u32,
    loss: f64,
    accuracy: f64,
}

/// How the epoch loop ended.
enum Outcome {
    Completed(Vec<EpochStats>),
    /// The job was asked to stop; a checkpoint of this epoch was saved.
    Stopped {
        after_epoch: u32,
    },
}

/// Train from the epoch after `state.epoch` up to `params.epochs`, saving a
/// checkpoint after each epoch and stopping early when asked to.
fn train_epochs(
    state: &mut TrainState,
    samples: &[Sample],
    params: &Params,
) -> lab::Result<Outcome> {
    if state.epoch >= params.epochs {
        lab::warn(&format!(
            "already trained for {} epochs (epochs = {}); nothing left to train",
            state.epoch, params.epochs
        ));
    }
    let mut history = Vec::new();
    for epoch in state.epoch + 1..=params.epochs {
        let percent = 95.0 * (epoch - 1) as f32 / params.epochs as f32;
        lab::progress_stage(percent, &format!("epoch {epoch}/{}", params.epochs))?;
        run_epoch(&mut state.model, samples, params, epoch)?;
        state.epoch = epoch;

        let (loss, accuracy) = state.model.evaluate(samples);
        ensure_finite(loss, epoch)?;
        lab::metric("train_loss", loss, Some(epoch.into()))?;
        lab::metric("train_accuracy", accuracy, Some(epoch.into()))?;
        lab::info(&format!(
            "epoch {epoch}: loss {loss:.4}, train accuracy {accuracy:.3}"
        ));
        history.push(EpochStats {
            epoch,
            loss,
            accuracy,
        });

        state.save_checkpoint()?;
        if epoch < params.epochs && lab::should_stop() {
            return Ok(Outcome::Stopped { after_epoch: epoch });
        }
    }
    Ok(Outcome::Completed(history))
}

/// Fail clearly instead of saving NaN weights when the learning rate is too high.
fn ensure_finite(loss: f64, epoch: u32) -> lab::Result<()> {
    if loss.is_finite() {
        Ok(())
    } else {
        Err(format!("training diverged in epoch {epoch}; try a smaller lr").into())
    }
}

/// One pass over `samples` in a per-epoch shuffled order, recording `loss`
/// at each step (the global batch index).
fn run_epoch(
    model: &mut Model,
    samples: &[Sample],
    params: &Params,
    epoch: u32,
) -> lab::Result<()> {
    let mut order: Vec<usize> = (0..samples.len()).collect();
    shuffle(&mut order, u64::from(epoch));
    let batches_per_epoch = samples.len().div_ceil(params.batch_size) as u64;
    let first_step = u64::from(epoch - 1) * batches_per_epoch;
    for (b, chunk) in order.chunks(params.batch_size).enumerate() {
        let batch: Vec<&Sample> = chunk.iter().map(|&i| &samples[i]).collect();
        let loss = model.step(&batch, params.lr, params.l2);
        ensure_finite(loss, epoch)?;
        lab::metric("loss", loss, Some(first_step + b as u64))?;
    }
    Ok(())
}

/// Fisher–Yates shuffle driven by splitmix64, seeded by the epoch so that a
/// resumed run visits the data in the same order as an uninterrupted one.
fn shuffle(items: &mut [usize], seed: u64) {
    let mut state = seed ^ 0x5EED_5EED_5EED_5EED;
    let mut next = || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    for i in (1..items.len()).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

// ---- checkpoints and resuming --------------------------------------------------

/// What is being trained: vocabulary, weights and the last finished epoch.
struct TrainState {
    vocab: Vec<String>,
    model: Model,
    /// The last completed epoch (0 before the first).
    epoch: u32,
    /// `job:checkpoint` when resumed.
    resumed_from: Option<String>,
}

/// The checkpoint file: everything needed to continue training.
#[derive(Serialize, Deserialize)]
struct Checkpoint {
    epoch: u32,
    vocab: Vec<String>,
    weights: Vec<f64>,
    bias: f64,
}

impl TrainState {
    /// A fresh state from the training rows, or the resumed checkpoint when
    /// the job was started with `--resume`. A resumed run keeps the
    /// checkpoint's vocabulary so that the weights stay aligned.
    fn start(train: &[Example]) -> lab::Result<Self> {
        let Some(point) = lab::resume_from() else {
            let vocab = build_vocab(train);
            lab::info(&format!("fresh start, vocabulary of {} words", vocab.len()));
            let model = Model::zeros(vocab.len());
            return Ok(TrainState {
                vocab,
                model,
                epoch: 0,
                resumed_from: None,
            });
        };
        let checkpoint = read_checkpoint(Path::new(&point.path))?;
        lab::info(&format!(
            "resumed from checkpoint {} of job {} (epoch {}); continuing at epoch {}",
            point.name,
            point.job_id,
            checkpoint.epoch,
            checkpoint.epoch + 1
        ));
        Ok(TrainState {
            vocab: checkpoint.vocab,
            model: Model {
                weights: checkpoint.weights,
                bias: checkpoint.bias,
            },
            epoch: checkpoint.epoch,
            resumed_from: Some(format!("{}:{}", point.job_id, point.name)),
        })
    }

    /// Write `/work/checkpoint-epoch-{i}.json` and store it as `epoch-{i}`.
    fn save_checkpoint(&self) -> lab::Result<()> {
        let path = PathBuf::from(format!("/work/checkpoint-epoch-{}.json", self.epoch));
        let checkpoint = Checkpoint {
            epoch: self.epoch,
            vocab: self.vocab.clone(),
            weights: self.model.weights.clone(),
            bias: self.model.bias,
        };
        fs::write(&path, serde_json::to_vec(&checkpoint)?)?;
        let stored = lab::save_checkpoint(&path, &format!("epoch-{}", self.epoch))?;
        lab::debug(&format!(
            "checkpoint {} saved ({} bytes)",
            stored.name, stored.size
        ));
        Ok(())
    }
}

/// Read and check a checkpoint file.
fn read_checkpoint(path: &Path) -> lab::Result<Checkpoint> {
    let text = fs::read_to_string(path)
        .map_err(|e| format!("cannot read checkpoint {}: {e}", path.display()))?;
    let checkpoint: Checkpoint = serde_json::from_str(&text).map_err(|e| {
        format!(
            "checkpoint {} is not a trainer checkpoint: {e}",
            path.display()
        )
    })?;
    if checkpoint.weights.len() != checkpoint.vocab.len() {
        return Err("checkpoint has different numbers of words and weights".into());
    }
    Ok(checkpoint)
}

// ---- outputs ---------------------------------------------------------------------

/// The `labhost-logreg-v1` model file.
#[derive(Serialize)]
struct ModelFile<'a> {
    format: &'static str,
    /// Weight of each word.
    vocab: BTreeMap<&'a str, f64>,
    bias: f64,
    tokenizer: &'static str,
}

/// Shipped next to `model.json`, for whoever opens the model directory.
const README: &str = "\
Sentiment classifier trained by the labhost example plugin sentiment-trainer.

model.json (format labhost-logreg-v1) is a logistic regression over words:
  - tokenizer \"lowercase-alnum\": lowercase the text, then split it on every
    character that is not alphanumeric and drop empty tokens;
  - score = bias + sum of vocab[token] over the tokens (each occurrence
    counts; unknown tokens weigh 0);
  - p(positive) = 1 / (1 + exp(-score)); predict 1 iff p >= 0.5.
";

/// Write `/work/model` and store it in the model registry.
fn save_model(
    state: &TrainState,
    params: &Params,
    loss: f64,
    accuracy: f64,
) -> lab::Result<lab::ModelInfo> {
    let dir = Path::new("/work/model");
    fs::create_dir_all(dir)?;
    let file = ModelFile {
        format: "labhost-logreg-v1",
        vocab: state
            .vocab
            .iter()
            .map(String::as_str)
            .zip(state.model.weights.iter().copied())
            .collect(),
        bias: state.model.bias,
        tokenizer: "lowercase-alnum",
    };
    fs::write(dir.join("model.json"), serde_json::to_string_pretty(&file)?)?;
    fs::write(dir.join("README.txt"), README)?;

    let metadata = json!({
        "dataset": params.dataset,
        "epochs": state.epoch,
        "lr": params.lr,
        "l2": params.l2,
        "batch_size": params.batch_size,
        "vocab_size": state.vocab.len(),
        "final_loss": loss,
        "train_accuracy": accuracy,
    });
    let desc = lab::ModelDesc {
        architecture: Some("LogisticRegression"),
        pipeline_tag: Some("text-classification"),
        parent_model: None,
        metadata: Some(metadata),
    };
    let info = lab::save_model(dir, &params.model_name, desc)?;
    lab::info(&format!(
        "saved model {} ({} files)",
        info.id, info.files.files
    ));
    Ok(info)
}

/// Store the training summary as artifact `training-summary.json`.
fn save_summary(summary: &serde_json::Value) -> lab::Result<()> {
    let path = Path::new("/work/training-summary.json");
    fs::write(path, serde_json::to_string_pretty(summary)?)?;
    lab::save_artifact(path, None)?;
    Ok(())
}
