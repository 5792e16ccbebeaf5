use crate::bindings::wit::checkpoints::{Host, ResumePoint};
use crate::bindings::wit::types::Stored;
use crate::error::CallResult;
use crate::events::StoredKind;
use crate::state::HostState;

impl Host for HostState {
    fn save(&mut self, path: String, name: String) -> CallResult<Stored> {
        let job = self.job()?;
        let dest = job.paths.checkpoints();
        let stored = job.store_guest(StoredKind::Checkpoint, &path, &name, &dest)?;
        job.record.checkpoints.push(stored.clone());
        job.retention.saved(&stored.name);
        job.stored(StoredKind::Checkpoint, &stored)?;
        // The checkpoint is saved: a retention failure is reported, not
        // returned (the next save tries again).
        if let Err(e) = crate::lifecycle::retention::apply(job) {
            job.host_log(&format!("checkpoint retention failed: {e}"));
        }
        Ok((&stored).into())
    }

    fn list(&mut self) -> wasmtime::Result<Vec<Stored>> {
        Ok(self
            .job
            .as_ref()
            .map(|j| j.record.checkpoints.iter().map(Into::into).collect())
            .unwrap_or_default())
    }

    fn resume_from(&mut self) -> wasmtime::Result<Option<ResumePoint>> {
        Ok(self
            .job
            .as_ref()
            .and_then(|j| j.resume.as_ref())
            .map(|r| ResumePoint {
                job_id: r.job_id.clone(),
                name: r.name.clone(),
                path: r.guest_path.clone(),
            }))
    }
}
