//! describe() writes to stderr and stdout (describe has no job log to write
//! to), then returns a normal description.

#[path = "../../describe_common.rs"]
mod common;

struct DescribePrint;

impl lab::Plugin for DescribePrint {
    fn describe() -> lab::Describe {
        eprintln!("describing on stderr");
        println!("describing on stdout");
        common::describe("describe-print", "describe() prints to stderr and stdout")
    }
    fn run() -> lab::Result<()> {
        common::run_ok("describe-print")
    }
}

lab::export_plugin!(DescribePrint);
