//! The calls lab:api@0.2.0 added: progress with metrics, status stages,
//! job metadata, registry lookups and secrets (HTTP is in [`crate::http`]).

use crate::{wit, DatasetInfo, ModelInfo, Result};

/// Progress, an optional stage text and metric values at `step`, in one
/// call (Transformer Lab's `update_progress(progress, metrics, step)`).
pub fn report(percent: f32, stage: Option<&str>, metrics: &[(&str, f64)], step: Option<u64>) -> Result<()> {
    let metrics: Vec<(String, f64)> = metrics.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    Ok(wit::progress::report(percent, stage, &metrics, step)?)
}

/// Report a status stage ("preparing", "training"...), merging `metadata`
/// into the job's metadata, with an optional error message.
pub fn update_status(status: &str, metadata: Option<&serde_json::Value>, error_message: Option<&str>) -> Result<()> {
    let metadata = metadata.map(|m| m.to_string());
    Ok(wit::job::update_status(status, metadata.as_deref(), error_message)?)
}

/// The job's metadata (a JSON object; `{}` until set).
pub fn metadata() -> serde_json::Value {
    serde_json::from_str(&wit::metadata::get()).unwrap_or_else(|_| serde_json::json!({}))
}

/// The job's metadata as the host's JSON text.
pub fn metadata_text() -> String {
    wit::metadata::get()
}

/// Merge `patch` into the job's metadata (JSON Merge Patch: `null`
/// removes a key); returns the merged metadata as JSON text.
pub fn update_metadata_text(patch: &str) -> Result<String> {
    Ok(wit::metadata::update(patch)?)
}

/// Merge `patch` into the job's metadata; returns the merged metadata.
pub fn update_metadata(patch: &serde_json::Value) -> Result<serde_json::Value> {
    Ok(serde_json::from_str(&update_metadata_text(&patch.to_string())?)?)
}

/// Replace the job's metadata.
pub fn reset_metadata(value: &serde_json::Value) -> Result<()> {
    Ok(wit::metadata::reset(&value.to_string())?)
}

/// A model of the registry by id or name.
pub fn get_model(id_or_name: &str) -> Result<ModelInfo> {
    Ok(wit::models::get(id_or_name)?)
}

/// A dataset of the registry by id or name.
pub fn get_dataset(id_or_name: &str) -> Result<DatasetInfo> {
    Ok(wit::datasets::get(id_or_name)?)
}

/// The value of a secret granted to the job (`--secret NAME`). Prefer a
/// header the host injects (`--http-header`), which keeps it out of the
/// plugin altogether.
pub fn secret(name: &str) -> Result<String> {
    Ok(wit::secrets::get(name)?)
}
