use crate::bindings::wit::metrics::Host;
use crate::error::CallResult;
use crate::state::HostState;

impl Host for HostState {
    fn record_metric(&mut self, name: String, value: f64, step: Option<u64>) -> CallResult<()> {
        self.job()?.record_metric(&name, value, step)
    }
}
