//! describe() declares a text parameter `blob` whose default is a 100 KiB
//! JSON string; run() reports its length (`blob-len <n>`).

#[path = "../../describe_common.rs"]
mod common;

struct DescribeBigDefault;

impl lab::Plugin for DescribeBigDefault {
    fn describe() -> lab::Describe {
        let default = format!("\"{}\"", "x".repeat(100 << 10));
        common::describe("describe-bigdefault", "a parameter with a 100 KiB default").param(
            "blob",
            lab::ParamType::Text,
            Some(&default),
            "A big text",
        )
    }
    fn run() -> lab::Result<()> {
        let len = lab::config()["blob"].as_str().map_or(0, str::len);
        common::report("blob-len", len);
        lab::finish("ok", &[])
    }
}

lab::export_plugin!(DescribeBigDefault);
