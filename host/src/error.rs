//! The error every lab call can end with: a typed refusal the guest sees as
//! `lab-error`, or a trap that ends the job.

/// Outcome of a failed lab call.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
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
    /// An HTTP request to a granted endpoint did not complete.
    #[error("network: {0}")]
    Network(String),
    /// Not the guest's business: ends the job with this error.
    #[error(transparent)]
    Trap(#[from] wasmtime::Error),
}

pub type CallResult<T> = Result<T, CallError>;

impl CallError {
    /// Map a host I/O error met while serving `what`.
    pub fn io(what: &str, e: std::io::Error) -> Self {
        use std::io::ErrorKind::*;
        match e.kind() {
            NotFound => CallError::NotFound(format!("{what} does not exist")),
            // cap-std reports escapes (`..`, symlinks out of a grant) this way.
            PermissionDenied => CallError::Denied(format!("{what} is outside this job's grants")),
            NotADirectory => {
                CallError::NotFound(format!("{what}: a path component is not a directory"))
            }
            InvalidInput | InvalidFilename => CallError::Invalid(format!("{what}: {e}")),
            _ => CallError::Io(format!("{what}: {e}")),
        }
    }
}
