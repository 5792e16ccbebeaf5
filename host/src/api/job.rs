use std::collections::BTreeMap;

use crate::bindings::wit::job::Host;
use crate::error::{CallError, CallResult};
use crate::names::check_name;
use crate::state::HostState;
use crate::store::JobStatus;

/// Longest finish/fail message kept, in bytes.
const MAX_MESSAGE: usize = 4096;
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
            check_name("score", &k).map_err(CallError::Invalid)?;
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
}
