//! Library errors as Python exceptions. The classes live in
//! `labhost.errors` (Python, so they can also derive from the built-in
//! `LookupError`, `ValueError`, `TimeoutError`...); this maps an error to
//! one of them by its type where the library has one, else by what the
//! call was doing.

use pyo3::prelude::*;
use pyo3::types::PyType;

/// Which exception class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// No job, run, plugin file or registry entry by that name.
    NotFound,
    /// A bad argument, config value, grant or limit; nothing started.
    Invalid,
    /// The file is not a plugin this host can run.
    Plugin,
    /// What it would change is in use, or has ended.
    Conflict,
    /// `wait(timeout=...)` ran out.
    Timeout,
    /// Reading or writing the workspace failed.
    Io,
    /// A job did not end COMPLETE (`raise_for_status`).
    JobFailed,
}

impl Kind {
    fn class(self) -> &'static str {
        match self {
            Kind::NotFound => "NotFoundError",
            Kind::Invalid => "InvalidArgumentError",
            Kind::Plugin => "PluginError",
            Kind::Conflict => "ConflictError",
            Kind::Timeout => "WaitTimeoutError",
            Kind::Io => "WorkspaceError",
            Kind::JobFailed => "JobFailedError",
        }
    }
}

/// The kind the library's own error types say, if any.
fn typed(e: &anyhow::Error) -> Option<Kind> {
    use labhost::lifecycle::{BadBundle, NotFound, Refused};
    e.chain().find_map(|c| {
        if c.is::<NotFound>() {
            Some(Kind::NotFound)
        } else if c.is::<Refused>() {
            Some(Kind::Conflict)
        } else if c.is::<BadBundle>() {
            Some(Kind::Invalid)
        } else if c.is::<std::io::Error>() {
            Some(Kind::Io)
        } else {
            None
        }
    })
}

/// The exception for `e`, raised by a call whose errors are `default`
/// unless the error's type says otherwise.
pub fn to_py(default: Kind, e: &anyhow::Error) -> PyErr {
    let kind = typed(e).unwrap_or(default);
    // "No such job" from a lookup by id is a NotFound whatever its type.
    let kind = match (kind, e.to_string()) {
        (Kind::Invalid | Kind::Io, m)
            if m.starts_with("no job") || m.starts_with("no pipeline run") =>
        {
            Kind::NotFound
        }
        (k, _) => k,
    };
    raise(kind, labhost::text::error_line(e))
}

/// An exception of class `kind` with `message`.
pub fn raise(kind: Kind, message: String) -> PyErr {
    Python::attach(|py| {
        let class = py
            .import("labhost.errors")
            .and_then(|m| m.getattr(kind.class()))
            .and_then(|c| c.cast_into::<PyType>().map_err(PyErr::from));
        match class {
            Ok(class) => PyErr::from_type(class, message),
            Err(e) => e,
        }
    })
}

/// `map_err` helper: `.map_err(err(Kind::Invalid))`.
pub fn err(default: Kind) -> impl Fn(anyhow::Error) -> PyErr {
    move |e| to_py(default, &e)
}
