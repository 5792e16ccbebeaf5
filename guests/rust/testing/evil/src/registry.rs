//! Registry attacks: oversized names, and the workspace's shared model and
//! dataset registries (entries left by failed jobs, what every job can list).

use lab::{EvalRow, TableFormat};
use serde_json::json;

use crate::{outcome, report, text};

pub fn long_names() -> lab::Result<()> {
    let long = "n".repeat(10_000);
    std::fs::write(lab::work_dir().join("f"), "f")?;
    report(
        "artifact",
        outcome(&lab::save_artifact("/work/f", Some(&long))),
    );
    report(
        "artifact-default-name",
        outcome(&lab::save_artifact(format!("/work/{long}"), None)),
    );
    report(
        "checkpoint",
        outcome(&lab::save_checkpoint("/work/f", &long)),
    );
    report(
        "model",
        outcome(&lab::save_model(
            "/work/f",
            &long,
            lab::ModelDesc::default(),
        )),
    );
    report(
        "dataset",
        outcome(&lab::save_dataset(
            &long,
            &[json!({"a": 1})],
            None,
            json!({}),
        )),
    );
    report(
        "dataset-file",
        outcome(&lab::save_dataset_file("/work/f", &long, None, json!({}))),
    );
    report(
        "eval",
        outcome(&lab::save_eval(
            &long,
            &[EvalRow {
                input: "i".into(),
                output: "o".into(),
                expected: None,
                score: 1.0,
                extra: "{}".into(),
            }],
            TableFormat::Csv,
        )),
    );
    report("metric", outcome(&lab::metric(&long, 1.0, None)));
    report("stage", outcome(&lab::progress_stage(1.0, &long)));
    report("score", outcome(&lab::finish("x", &[(long.as_str(), 1.0)])));
    report("artifacts", lab::artifacts().len());
    lab::finish(&"m".repeat(10_000), &[])
}

/// Save a one-row dataset named `target`; report its id.
fn save_target_dataset() -> lab::Result<()> {
    let info = lab::save_dataset(
        &text("target"),
        &[json!({"text": "poison", "label": 1})],
        None,
        json!({}),
    )?;
    report("saved", info.id);
    Ok(())
}

/// Save a dataset, then fail: the registry must not keep (or must mark)
/// what a failed job saved.
pub fn poison() -> lab::Result<()> {
    save_target_dataset()?;
    lab::fail("poisoner fails on purpose")
}

pub fn publish() -> lab::Result<()> {
    save_target_dataset()?;
    lab::finish("published", &[])
}

/// What any job can see of the dataset registry.
pub fn list_registry() -> lab::Result<()> {
    let all = lab::datasets();
    report("datasets", all.len());
    report(
        "metadata-bytes",
        all.iter().map(|d| d.metadata.len()).sum::<usize>(),
    );
    lab::finish("listed", &[])
}
