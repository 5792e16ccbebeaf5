use crate::bindings::wit::log::{Host, Level};
use crate::events::LogSource;
use crate::state::HostState;

impl Host for HostState {
    fn write(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        let source = match level {
            Level::Trace => LogSource::Trace,
            Level::Debug => LogSource::Debug,
            Level::Info => LogSource::Info,
            Level::Warn => LogSource::Warn,
            Level::Error => LogSource::Error,
        };
        if let Some(job) = &mut self.job {
            job.log
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .line(source, &message);
            // Coalesced: flushes the log for `labhost logs -f` readers.
            let _ = job.snapshot(false);
        }
        Ok(())
    }
}
