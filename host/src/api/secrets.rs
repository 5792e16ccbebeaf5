use crate::bindings::wit::secrets::Host;
use crate::error::{CallError, CallResult};
use crate::state::HostState;

impl Host for HostState {
    fn get(&mut self, name: String) -> CallResult<String> {
        let job = self.job()?;
        crate::secrets::check_secret_name(&name).map_err(CallError::Invalid)?;
        if !job.record.sandbox.grants.secrets.contains(&name) {
            return Err(CallError::Denied(format!(
                "secret `{name}` is not granted to this job (grant it with --secret {name})"
            )));
        }
        match job.secrets.get(&name) {
            Some(v) => Ok(v.to_owned()),
            // Resolved at start for every granted name: unreachable unless
            // the record was changed under the job.
            None => Err(CallError::NotFound(format!("secret `{name}` has no value"))),
        }
    }
}
