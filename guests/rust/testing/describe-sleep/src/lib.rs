//! describe() sleeps 60 s (through WASI's monotonic clock) before returning.

#[path = "../../describe_common.rs"]
mod common;

struct DescribeSleep;

impl lab::Plugin for DescribeSleep {
    fn describe() -> lab::Describe {
        std::thread::sleep(std::time::Duration::from_secs(60));
        common::describe("describe-sleep", "describe() sleeps 60 s")
    }
    fn run() -> lab::Result<()> {
        common::run_ok("describe-sleep")
    }
}

lab::export_plugin!(DescribeSleep);
