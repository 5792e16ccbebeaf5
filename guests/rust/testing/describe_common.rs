//! Shared by the describe() attack crates (`describe-*`): describe() runs
//! before any job, with no config, so each of its attacks needs a component
//! of its own. Included with `#[path = "../../describe_common.rs"] mod common;`.

/// Log one observation as `probe: <key> <value>` (as the evil guest does).
#[allow(dead_code)]
pub fn report(key: &str, value: impl std::fmt::Display) {
    lab::info(&format!("probe: {key} {value}"));
}

/// The ordinary self-description of a describe() attack plugin.
pub fn describe(name: &str, what: &str) -> lab::Describe {
    lab::Describe::new(name, lab::Kind::Other, what)
}

/// A run() that logs and finishes "ok".
#[allow(dead_code)]
pub fn run_ok(name: &str) -> lab::Result<()> {
    lab::info(&format!("{name} ran"));
    lab::finish("ok", &[])
}
