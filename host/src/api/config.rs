use crate::bindings::wit::config::{Host, JobInfo};
use crate::state::HostState;

impl Host for HostState {
    fn get(&mut self) -> wasmtime::Result<String> {
        Ok(self
            .job
            .as_ref()
            .map(|j| j.config_json.clone())
            .unwrap_or_else(|| "{}".into()))
    }

    fn info(&mut self) -> wasmtime::Result<JobInfo> {
        Ok(match &self.job {
            Some(j) => JobInfo {
                job_id: j.record.id.clone(),
                experiment: j.record.experiment.clone(),
                work_dir: "/work".into(),
            },
            None => JobInfo {
                job_id: String::new(),
                experiment: String::new(),
                work_dir: "/work".into(),
            },
        })
    }
}
