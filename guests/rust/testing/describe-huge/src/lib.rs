//! describe() returns an 8 MiB version string.

#[path = "../../describe_common.rs"]
mod common;

struct DescribeHuge;

impl lab::Plugin for DescribeHuge {
    fn describe() -> lab::Describe {
        common::describe("describe-huge", "describe() returns an 8 MiB version")
            .version(&"9".repeat(8 << 20))
    }
    fn run() -> lab::Result<()> {
        common::run_ok("describe-huge")
    }
}

lab::export_plugin!(DescribeHuge);
