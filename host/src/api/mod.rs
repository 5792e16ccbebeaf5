//! The lab API, one file per WIT interface (`wit/lab.wit`). Each file
//! implements the generated `Host` trait of its interface on [`HostState`].

mod artifacts;
mod checkpoints;
mod config;
mod datasets;
mod evals;
mod job;
mod log;
mod metrics;
mod models;
mod progress;

use crate::bindings::wit::types::{self, LabError, Stored};
use crate::error::CallError;
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

/// Parse a guest-supplied JSON object.
fn json_object(what: &str, text: &str) -> Result<serde_json::Value, CallError> {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(v @ serde_json::Value::Object(_)) => Ok(v),
        Ok(_) => Err(CallError::Invalid(format!("{what} must be a JSON object"))),
        Err(e) => Err(CallError::Invalid(format!("{what} is not valid JSON: {e}"))),
    }
}
