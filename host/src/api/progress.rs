use crate::bindings::wit::progress::Host;
use crate::error::{CallError, CallResult};
use crate::events::JobEvent;
use crate::state::HostState;

/// Longest stage text kept, in bytes.
const MAX_STAGE: usize = 256;

impl Host for HostState {
    fn update(&mut self, percent: f32, stage: Option<String>) -> CallResult<()> {
        let job = self.job()?;
        if !(0.0..=100.0).contains(&percent) {
            return Err(CallError::Invalid(format!(
                "progress must be within 0..=100, got {percent}"
            )));
        }
        if let Some(s) = &stage {
            if s.len() > MAX_STAGE || s.chars().any(char::is_control) {
                return Err(CallError::Invalid(format!(
                    "stage text must be one line of at most {MAX_STAGE} bytes"
                )));
            }
        }
        job.record.progress = percent;
        if stage.is_some() {
            job.record.stage = stage.clone();
        }
        job.emit(JobEvent::Progress { percent, stage });
        job.snapshot(false)
    }
}
