//! The store's own error: the refusal kinds a lab call passes on to the
//! guest (see [`crate::error::CallError`], which converts from this at the
//! API boundary), plus [`StoreError::Interrupted`] for a copy stopped
//! because the job is being ended. Nothing here knows of wasm.

/// Why a store operation (ingesting a guest file, charging the quota)
/// failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("invalid argument: {0}")]
    Invalid(String),
    #[error("denied: {0}")]
    Denied(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("limit exceeded: {0}")]
    Limit(String),
    #[error("io: {0}")]
    Io(String),
    /// The job must stop (deadline, cancel or abort) while a long copy ran:
    /// not the guest's business, the job is being ended.
    #[error("interrupted during a host copy")]
    Interrupted,
}

pub type StoreResult<T> = Result<T, StoreError>;

impl StoreError {
    /// Map a host I/O error met while serving `what`.
    pub fn io(what: &str, e: std::io::Error) -> Self {
        use std::io::ErrorKind::*;
        match e.kind() {
            NotFound => StoreError::NotFound(format!("{what} does not exist")),
            // cap-std reports escapes (`..`, symlinks out of a grant) this way.
            PermissionDenied => StoreError::Denied(format!("{what} is outside this job's grants")),
            NotADirectory => {
                StoreError::NotFound(format!("{what}: a path component is not a directory"))
            }
            InvalidInput | InvalidFilename => StoreError::Invalid(format!("{what}: {e}")),
            _ => StoreError::Io(format!("{what}: {e}")),
        }
    }
}
