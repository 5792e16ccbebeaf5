//! The lab API, one file per WIT interface (`wit/lab.wit`). Each file
//! implements the generated `Host` trait of its interface on [`HostState`].

mod artifacts;
mod checkpoints;
mod config;
mod datasets;
mod evals;
mod http;
mod job;
mod log;
mod metadata;
mod metrics;
mod models;
mod progress;
mod secrets;
mod v0_1_0;
mod wasi_nn;

use crate::bindings::wit::types::{self, LabError, Stored};
use crate::error::{CallError, CallResult};
use crate::state::HostState;
use crate::store::StoredRecord;

impl types::Host for HostState {
    fn convert_lab_error(&mut self, err: CallError) -> wasmtime::Result<LabError> {
        Ok(match err {
            CallError::Invalid(m) => LabError::InvalidArgument(m),
            CallError::Denied(m) => LabError::Denied(m),
            CallError::NotFound(m) => LabError::NotFound(m),
            CallError::Limit(m) => LabError::LimitExceeded(m),
            CallError::Io(m) => LabError::Io(m),
            CallError::Network(m) => LabError::Network(m),
            CallError::Trap(e) => return Err(e),
        })
    }
}

impl crate::bindings::wit::plugin_types::Host for HostState {}

impl From<&StoredRecord> for Stored {
    fn from(s: &StoredRecord) -> Self {
        Stored {
            name: s.name.clone(),
            location: s.location.clone(),
            size: s.size,
            files: s.files.len() as u32,
            digest: s.blake3.clone(),
        }
    }
}

/// Longest model/dataset metadata, in bytes of JSON: it lives in the
/// registry record, which `list()` returns to every job.
pub(crate) const MAX_METADATA: usize = 64 << 10;

/// Parse guest-supplied registry metadata: a JSON object of at most
/// [`MAX_METADATA`] bytes, charged to the job's stored-bytes quota.
fn metadata(
    job: &mut crate::job::JobCtx,
    what: &str,
    text: &str,
) -> Result<serde_json::Value, CallError> {
    if text.len() > MAX_METADATA {
        return Err(CallError::Limit(format!(
            "{what} is {} bytes; at most {} are kept",
            text.len(),
            crate::units::human_bytes(MAX_METADATA as u64)
        )));
    }
    let v = json_object(what, text)?;
    job.quota.charge_record_bytes(text.len() as u64)?;
    Ok(v)
}

/// Parse a guest-supplied JSON object.
fn json_object(what: &str, text: &str) -> Result<serde_json::Value, CallError> {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(v @ serde_json::Value::Object(_)) => Ok(v),
        Ok(_) => Err(CallError::Invalid(format!("{what} must be a JSON object"))),
        Err(e) => Err(CallError::Invalid(format!("{what} is not valid JSON: {e}"))),
    }
}

/// The one entry of `entries` (already filtered to what the job may see)
/// that `reference` names: by id, else by name (refused when several jobs
/// saved that name).
fn find_entry<'a, T>(
    entries: &'a [T],
    what: &str,
    reference: &str,
    id: impl Fn(&T) -> &str,
    name: impl Fn(&T) -> &str,
) -> CallResult<&'a T> {
    if let Some(e) = entries.iter().find(|e| id(e) == reference) {
        return Ok(e);
    }
    let named: Vec<&T> = entries.iter().filter(|e| name(e) == reference).collect();
    match named.as_slice() {
        [one] => Ok(one),
        [] => Err(CallError::NotFound(format!(
            "no {what} `{}` in the registry",
            crate::text::for_terminal_line(reference)
        ))),
        several => Err(CallError::Invalid(format!(
            "{} {what}s are named `{}` ({}): give the id",
            several.len(),
            crate::text::for_terminal_line(reference),
            several.iter().map(|e| id(e)).collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// Which jobs completed (so published their entries), each job read once
/// per `list()`.
struct Published(std::collections::HashMap<String, bool>);

impl Published {
    /// The calling job's own entries are listed too.
    fn new(own_job: &str) -> Self {
        Published([(own_job.to_owned(), true)].into_iter().collect())
    }
    fn check(&mut self, ws: &crate::store::Workspace, experiment: &str, job_id: &str) -> bool {
        *self.0.entry(job_id.to_owned()).or_insert_with(|| {
            ws.job(experiment, job_id)
                .is_ok_and(|(rec, _)| rec.status == crate::store::JobStatus::Complete)
        })
    }
}
