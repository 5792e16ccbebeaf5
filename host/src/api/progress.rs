use crate::bindings::wit::progress::Host;
use crate::error::{CallError, CallResult};
use crate::events::JobEvent;
use crate::state::HostState;

/// Longest stage text kept, in bytes.
const MAX_STAGE: usize = 256;

/// Most metric values one `report` call records.
const MAX_REPORT_METRICS: usize = 256;

impl Host for HostState {
    fn update(&mut self, percent: f32, stage: Option<String>) -> CallResult<()> {
        update(self.job()?, percent, stage)
    }

    fn report(
        &mut self,
        percent: f32,
        stage: Option<String>,
        metrics: Vec<(String, f64)>,
        step: Option<u64>,
    ) -> CallResult<()> {
        let job = self.job()?;
        if metrics.len() > MAX_REPORT_METRICS {
            return Err(CallError::Limit(format!(
                "report() takes at most {MAX_REPORT_METRICS} metrics, got {}",
                metrics.len()
            )));
        }
        check(percent, &stage)?;
        // All or nothing: every value is checked before any is recorded.
        for (name, value) in &metrics {
            job.check_name("metric", name)?;
            if !value.is_finite() {
                return Err(CallError::Invalid(format!(
                    "metric `{name}`: value must be finite, got {value}"
                )));
            }
        }
        for (name, value) in metrics {
            job.record_metric(&name, value, step)?;
        }
        update(job, percent, stage)
    }
}

fn check(percent: f32, stage: &Option<String>) -> CallResult<()> {
    if !(0.0..=100.0).contains(&percent) {
        return Err(CallError::Invalid(format!(
            "progress must be within 0..=100, got {percent}"
        )));
    }
    if let Some(s) = stage {
        if s.len() > MAX_STAGE || s.chars().any(char::is_control) {
            return Err(CallError::Invalid(format!(
                "stage text must be one line of at most {MAX_STAGE} bytes"
            )));
        }
    }
    Ok(())
}

fn update(job: &mut crate::job::JobCtx, percent: f32, stage: Option<String>) -> CallResult<()> {
    check(percent, &stage)?;
    let stage = stage.map(|s| job.redact(s));
    job.record.progress = percent;
    if stage.is_some() {
        job.record.stage = stage.clone();
    }
    job.emit(JobEvent::Progress { percent, stage });
    job.snapshot(false)
}
