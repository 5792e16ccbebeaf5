//! `sentiment-datagen`: generate a small synthetic sentiment dataset.
//!
//! The first stage of the example pipeline
//! (datagen → `sentiment-trainer` → `sentiment-evaluator`).
//!
//! Each row is a short sentence about a film built from word lists, e.g.
//! `"the movie was great and fun"` (label 1) or `"a dull boring plot"`
//! (label 0), with neutral filler words mixed in. A `noise` fraction of the
//! labels is flipped so the task is not perfectly separable. Rows are split
//! into `"train"` and `"test"` and stored as a workspace dataset whose
//! `data.jsonl` holds one `{"text", "label", "split"}` object per line.
//!
//! Everything is derived from `seed` with a tiny built-in PRNG
//! (splitmix64), so the same parameters always give the same dataset.

use serde::{Deserialize, Serialize};
use serde_json::json;

/// The plugin type registered with [`lab::export_plugin!`].
pub struct SentimentDatagen;

lab::export_plugin!(SentimentDatagen);

impl lab::Plugin for SentimentDatagen {
    fn describe() -> lab::Describe {
        use lab::ParamType::{Integer, Number, Text};
        lab::Describe::new(
            "sentiment-datagen",
            lab::Kind::Generator,
            "Generates a synthetic binary sentiment dataset of short film reviews",
        )
        .param("rows", Integer, Some("400"), "Number of rows to generate")
        .param("seed", Integer, Some("7"), "Seed of the random generator")
        .param(
            "noise",
            Number,
            Some("0.1"),
            "Fraction of labels flipped at random (0 to 0.5)",
        )
        .param(
            "test_fraction",
            Number,
            Some("0.25"),
            "Fraction of rows in the test split",
        )
        .param(
            "dataset_name",
            Text,
            Some("\"sentiment\""),
            "Name of the dataset to save",
        )
    }

    fn run() -> lab::Result<()> {
        let params = Params::load()?;
        lab::info(&format!(
            "generating {} rows (seed {}, noise {}, test fraction {})",
            params.rows, params.seed, params.noise, params.test_fraction
        ));

        lab::progress_stage(0.0, "generating")?;
        let (rows, stats) = generate(&params);
        lab::info(&format!(
            "{} train / {} test rows, {} positive, {} labels flipped",
            stats.train, stats.test, stats.positive, stats.flipped
        ));
        let positive_fraction = stats.positive as f64 / rows.len() as f64;
        lab::metric("positive_fraction", positive_fraction, None)?;
        lab::metric("flipped_labels", stats.flipped as f64, None)?;

        lab::progress_stage(80.0, "saving")?;
        let description = format!(
            "Synthetic film-review sentiment: {} rows, label 1 = positive",
            rows.len()
        );
        let metadata = json!({
            "generator": "sentiment-datagen",
            "seed": params.seed,
            "rows": params.rows,
            "noise": params.noise,
            "test_fraction": params.test_fraction,
            "train_rows": stats.train,
            "test_rows": stats.test,
            "positive_fraction": positive_fraction,
        });
        let info = lab::save_dataset(&params.dataset_name, &rows, Some(&description), metadata)?;
        lab::info(&format!(
            "saved dataset {} ({} bytes)",
            info.id, info.files.size
        ));
        lab::progress_stage(100.0, "done")?;

        lab::finish(
            &format!("generated {} rows as dataset {}", rows.len(), info.id),
            &[
                ("rows", rows.len() as f64),
                ("train", stats.train as f64),
                ("test", stats.test as f64),
            ],
        )
    }
}

/// The job's parameters (the host fills in the defaults from `describe`).
#[derive(Deserialize)]
struct Params {
    rows: u64,
    seed: u64,
    noise: f64,
    test_fraction: f64,
    dataset_name: String,
}

impl Params {
    /// Read and sanity-check the parameters.
    fn load() -> lab::Result<Self> {
        let params: Params = lab::config_as()?;
        if !(1..=1_000_000).contains(&params.rows) {
            return Err("rows must be between 1 and 1000000".into());
        }
        if !(0.0..=0.5).contains(&params.noise) {
            return Err("noise must be between 0 and 0.5".into());
        }
        if !(0.0..1.0).contains(&params.test_fraction) {
            return Err("test_fraction must be at least 0 and below 1".into());
        }
        if params.test_rows() >= params.rows {
            return Err("test_fraction leaves no rows for the train split".into());
        }
        Ok(params)
    }

    /// How many of the rows go to the test split.
    fn test_rows(&self) -> u64 {
        (self.rows as f64 * self.test_fraction).round() as u64
    }
}

/// One dataset row, as stored in `data.jsonl`.
#[derive(Serialize)]
struct Row {
    text: String,
    /// 1 = positive, 0 = negative (after label noise).
    label: u8,
    split: &'static str,
}

/// Counts reported at the end of the job.
#[derive(Default)]
struct Stats {
    train: u64,
    test: u64,
    positive: u64,
    flipped: u64,
}

/// Generate all rows. Rows are independent draws, so the last
/// `test_rows()` of them simply form the test split.
fn generate(params: &Params) -> (Vec<Row>, Stats) {
    let mut rng = SplitMix64::new(params.seed);
    let mut stats = Stats {
        train: params.rows - params.test_rows(),
        test: params.test_rows(),
        ..Stats::default()
    };
    let mut rows = Vec::with_capacity(params.rows as usize);
    for i in 0..params.rows {
        let positive = rng.chance(0.5);
        let text = sentence(&mut rng, positive);
        let flip = rng.chance(params.noise);
        let label = u8::from(positive != flip);
        let split = if i < stats.train { "train" } else { "test" };

        stats.flipped += u64::from(flip);
        stats.positive += u64::from(label);
        rows.push(Row { text, label, split });
    }
    (rows, stats)
}

const SUBJECTS: &[&str] = &[
    "the movie",
    "this film",
    "the plot",
    "the acting",
    "the story",
    "the soundtrack",
    "the ending",
    "the cast",
    "the script",
    "the director",
];
const NOUNS: &[&str] = &[
    "movie",
    "film",
    "plot",
    "story",
    "performance",
    "script",
    "ending",
];
const VERBS: &[&str] = &["was", "is", "felt", "seemed", "looked"];
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
const NEGATIVE: &[&str] = &[
    "dull",
    "boring",
    "awful",
    "terrible",
    "bland",
    "clumsy",
    "tedious",
    "weak",
    "predictable",
    "painful",
    "messy",
    "forgettable",
];
/// Sentiment-free words, so that not every token carries signal.
const OPENERS: &[&str] = &[
    "honestly",
    "overall",
    "i think",
    "to be fair",
    "in the end",
    "well",
];
const INTENSIFIERS: &[&str] = &["really", "quite", "very", "rather", "so"];

/// One short review sentence with the given true sentiment.
fn sentence(rng: &mut SplitMix64, positive: bool) -> String {
    let adjectives = if positive { POSITIVE } else { NEGATIVE };
    let mut words: Vec<&str> = Vec::new();
    if rng.chance(0.3) {
        words.push(rng.pick(OPENERS));
    }
    match rng.below(3) {
        // "the movie was great and fun"
        0 => {
            words.extend([rng.pick(SUBJECTS), rng.pick(VERBS), rng.pick(adjectives)]);
            words.extend(["and", rng.pick(adjectives)]);
        }
        // "the plot felt really clever"
        1 => {
            words.extend([rng.pick(SUBJECTS), rng.pick(VERBS)]);
            words.extend([rng.pick(INTENSIFIERS), rng.pick(adjectives)]);
        }
        // "a dull boring plot"
        _ => words.extend([
            "a",
            rng.pick(adjectives),
            rng.pick(adjectives),
            rng.pick(NOUNS),
        ]),
    }
    words.join(" ")
}

/// The splitmix64 generator: tiny, fast and good enough for test data.
struct SplitMix64(u64);

impl SplitMix64 {
    fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform float in [0, 1).
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with probability `p`.
    fn chance(&mut self, p: f64) -> bool {
        self.next_f64() < p
    }

    /// A uniform integer in `0..n` (`n > 0`; the modulo bias is negligible here).
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// A uniformly chosen element of a non-empty list.
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}
