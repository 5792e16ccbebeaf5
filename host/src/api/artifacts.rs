use crate::bindings::wit::artifacts::Host;
use crate::bindings::wit::types::Stored;
use crate::error::{CallError, CallResult};
use crate::events::StoredKind;
use crate::state::HostState;

impl Host for HostState {
    fn save(&mut self, path: String, name: Option<String>) -> CallResult<Stored> {
        let job = self.job()?;
        let name = match name {
            Some(n) => n,
            None => path
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .filter(|n| !n.is_empty())
                .ok_or_else(|| {
                    CallError::Invalid(format!(
                        "cannot name an artifact after `{path}`; pass a name"
                    ))
                })?
                .to_owned(),
        };
        let dest = job.paths.artifacts();
        let stored = job.store_guest(StoredKind::Artifact, &path, &name, &dest)?;
        job.record.artifacts.push(stored.clone());
        job.stored(StoredKind::Artifact, &stored)?;
        Ok((&stored).into())
    }

    fn list(&mut self) -> wasmtime::Result<Vec<Stored>> {
        Ok(self
            .job
            .as_ref()
            .map(|j| j.record.artifacts.iter().map(Into::into).collect())
            .unwrap_or_default())
    }
}
