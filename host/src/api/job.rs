use std::collections::BTreeMap;

use crate::bindings::wit::job::Host;
use crate::error::{CallError, CallResult};
use crate::events::JobEvent;
use crate::state::HostState;
use crate::store::{JobStatus, StatusStage};

/// Longest finish/fail message kept, in bytes.
const MAX_MESSAGE: usize = 4096;
/// Longest status name, in bytes.
const MAX_STATUS: usize = 64;
/// Most scores `finish()` records (they live in the job record).
const MAX_SCORES: usize = 1024;

fn clip(message: String) -> String {
    if message.len() <= MAX_MESSAGE {
        return message;
    }
    let mut end = MAX_MESSAGE;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &message[..end])
}

impl Host for HostState {
    fn finish(&mut self, message: String, scores: Vec<(String, f64)>) -> CallResult<()> {
        let job = self.job()?;
        if scores.len() > MAX_SCORES {
            return Err(CallError::Limit(format!(
                "finish() takes at most {MAX_SCORES} scores, got {}",
                scores.len()
            )));
        }
        let mut map = BTreeMap::new();
        for (k, v) in scores {
            job.check_name("score", &k)?;
            if !v.is_finite() {
                return Err(CallError::Invalid(format!(
                    "score `{k}` must be finite, got {v}"
                )));
            }
            map.insert(k, v);
        }
        job.end(JobStatus::Complete, clip(message))?;
        job.record.scores = map;
        job.snapshot(true)
    }

    fn fail(&mut self, message: String) -> CallResult<()> {
        let job = self.job()?;
        job.end(JobStatus::Failed, clip(message))?;
        job.snapshot(true)
    }

    fn should_stop(&mut self) -> wasmtime::Result<bool> {
        Ok(self.job.as_ref().is_some_and(|j| j.control.should_stop()))
    }

    fn update_status(
        &mut self,
        status: String,
        metadata: Option<String>,
        error_message: Option<String>,
    ) -> CallResult<()> {
        let job = self.job()?;
        if status.is_empty() || status.len() > MAX_STATUS || status.chars().any(char::is_control) {
            return Err(CallError::Invalid(format!(
                "a status is one line of 1 to {MAX_STATUS} bytes"
            )));
        }
        if let Some(m) = &error_message {
            crate::names::check_text("error message", m, MAX_MESSAGE)
                .map_err(CallError::Invalid)?;
        }
        // Checked whole before anything changes.
        let merged = match &metadata {
            Some(text) => {
                let patch = super::metadata::parse(job, "status metadata", text)?;
                Some(super::metadata::merged(&job.record.metadata, &patch))
            }
            None => None,
        };
        let status = job.redact(status);
        let error_message = error_message.map(|m| job.redact(m));
        if let Some(m) = merged {
            super::metadata::set(job, m)?;
        }
        job.host_log(&match &error_message {
            Some(e) => format!("status: {status} ({e})"),
            None => format!("status: {status}"),
        });
        job.record.status_stage = Some(StatusStage {
            status: status.clone(),
            error_message: error_message.clone(),
            at: chrono::Utc::now(),
        });
        job.emit(JobEvent::Status {
            status,
            error_message,
        });
        job.snapshot(false)
    }
}
