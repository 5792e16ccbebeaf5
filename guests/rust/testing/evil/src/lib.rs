//! The hostile guest: one plugin whose `attack` parameter picks a way to
//! abuse the host (spin, sleep, exhaust memory/stack/handles/disk, flood
//! the log or the store, escape the grants through paths and symlinks,
//! forge terminal output, poison the registries, look for the network, the
//! environment and host files). Everything it observes is logged as
//! `probe: <key> <value>` (same format as the probe), so the tests in
//! `tests/hostile.rs` can assert on it.
//!
//! The attacks live in one module per category:
//! - [`filesystem`]: paths, symlinks, host files, handles, scratch space;
//! - [`limits`]: CPU, memory, stack, stored bytes, record sizes, the
//!   sandbox's capabilities (threads, network, environment, exit);
//! - [`time`]: sleeping, polling, and what a job does after it ends;
//! - [`output`]: the log, stdout/stderr, progress, terminal escapes;
//! - [`registry`]: names and the shared model/dataset registries;
//! - [`egress`]: HTTP to ungranted URLs, HTTP limits, secret leaks.

use lab::{Describe, Error, Kind, LabError, ParamType, Plugin};

mod egress;
mod filesystem;
mod limits;
mod output;
mod registry;
mod time;

struct Evil;

/// Log one observation as `probe: <key> <value>`.
pub(crate) fn report(key: &str, value: impl std::fmt::Display) {
    lab::info(&format!("probe: {key} {value}"));
}

/// Log a bare observation as `probe: <key>`.
pub(crate) fn flag(key: &str) {
    lab::info(&format!("probe: {key}"));
}

/// Name of the lab error variant, or `ok`.
pub(crate) fn outcome<T>(r: &lab::Result<T>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(Error::Lab(e)) => match e {
            LabError::InvalidArgument(_) => "invalid-argument",
            LabError::Denied(_) => "denied",
            LabError::NotFound(_) => "not-found",
            LabError::LimitExceeded(_) => "limit-exceeded",
            LabError::Io(_) => "io",
            LabError::Network(_) => "network",
        }
        .into(),
        Err(Error::Other(m)) => format!("other({m})"),
    }
}

/// The error message of a lab call, or `ok`.
pub(crate) fn message<T>(r: &lab::Result<T>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(Error::Lab(e)) => match e {
            LabError::InvalidArgument(m)
            | LabError::Denied(m)
            | LabError::NotFound(m)
            | LabError::LimitExceeded(m)
            | LabError::Io(m)
            | LabError::Network(m) => m.clone(),
        },
        Err(Error::Other(m)) => m.clone(),
    }
}

/// `ok` or the std I/O error kind.
pub(crate) fn io_outcome<T>(r: &std::io::Result<T>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(e) => format!("{:?}", e.kind()),
    }
}

/// `ok` or the WASI filesystem error code (`no-entry`, `name-too-long`...).
pub(crate) fn wasi_outcome<T>(r: &Result<T, wasi::filesystem::types::ErrorCode>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(e) => e.name().into(),
    }
}

pub(crate) fn readable(path: &str) -> String {
    match std::fs::read(path) {
        Ok(_) => "readable".into(),
        Err(e) => format!("unreadable({:?})", e.kind()),
    }
}

/// A text parameter ("" when unset).
pub(crate) fn text(name: &str) -> String {
    lab::config()
        .get(name)
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_owned()
}

/// The `count` parameter (0: the attack's default, often "forever").
pub(crate) fn count() -> u64 {
    lab::config()["count"].as_u64().unwrap_or(0)
}

impl Plugin for Evil {
    fn describe() -> Describe {
        Describe::new(
            "evil",
            Kind::Other,
            "Hostile guest: abuses the host per `attack`",
        )
        .param("attack", ParamType::Text, None, "Which attack to run")
        .param(
            "count",
            ParamType::Integer,
            Some("0"),
            "How many (0: forever) for the flood attacks",
        )
        .param(
            "target",
            ParamType::Text,
            Some("\"\""),
            "A guest path some attacks use",
        )
        .param(
            "link",
            ParamType::Text,
            Some("\"\""),
            "Symlink text for `plant-symlink`",
        )
    }

    fn run() -> lab::Result<()> {
        let attack = text("attack");
        report("attack", &attack);
        match attack.as_str() {
            // filesystem
            "path-escapes" => filesystem::path_escapes(),
            "symlinks" => filesystem::symlinks(),
            "host-files" => filesystem::host_files(),
            "resource-bomb" => filesystem::resource_bomb(),
            "disk-fill" => filesystem::disk_fill(),
            "deep-tree" => filesystem::deep_tree(),
            "long-path-scratch" => filesystem::long_path_scratch(),
            "unlinked-scratch" => filesystem::unlinked_scratch(),
            "sparse-store" => filesystem::sparse_store(),
            "plant-symlink" => filesystem::plant_symlink(),
            "write-grant" => filesystem::write_grant(),
            "fd-hog" => filesystem::fd_hog(),
            // limits
            "loop" => limits::spin(),
            "call-storm" => limits::call_storm(),
            "memory-bomb" => limits::memory_bomb(),
            "stack-overflow" => limits::stack_overflow(),
            "deep-recursion" => limits::deep_recursion(),
            "huge-alloc" => limits::huge_alloc(),
            "big-store" => limits::big_store(),
            "metric-flood" => limits::metric_flood(),
            "many-artifacts" => limits::many_artifacts(),
            "eval-overflow" => limits::eval_overflow(),
            "metadata-flood" => limits::metadata_flood(),
            "record-bloat" => limits::record_bloat(),
            "threads" => limits::threads(),
            "env" => limits::env(),
            "network" => limits::network(),
            "exit" => limits::exit(),
            // time and the job's end
            "sleep" => time::sleep(),
            "poll-forever" => time::poll_forever(),
            "after-finish" => time::after_finish(),
            "finish-then-spin" => time::finish_then_spin(),
            "finish-then-scratch" => time::finish_then_scratch(),
            // output
            "huge-log-line" => output::huge_log_line(),
            "log-flood" => output::log_flood(),
            "stdout-flood" => output::stdout_flood(),
            "bad-progress" => output::bad_progress(),
            "terminal-escapes" => output::terminal_escapes(),
            "stdout-long" => output::stdout_long(),
            // registry
            "long-names" => registry::long_names(),
            "poison" => registry::poison(),
            "publish" => registry::publish(),
            "list-registry" => registry::list_registry(),
            // egress
            "http-urls" => egress::http_urls(),
            "http-flood" => egress::http_flood(),
            "http-once" => egress::http_once(),
            "http-headers" => egress::http_headers(),
            "secret-leaks" => egress::secret_leaks(),
            other => Err(Error::msg(format!("unknown attack `{other}`"))),
        }
    }
}

lab::export_plugin!(Evil);
