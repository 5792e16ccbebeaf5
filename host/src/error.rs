//! The error every lab call can end with: a typed refusal the guest sees as
//! `lab-error`, or a trap that ends the job.

use crate::store::StoreError;

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
        StoreError::io(what, e).into()
    }
}

/// The store's refusals reach the guest as the same `lab-error` kinds; a
/// copy interrupted because the job is ending is a trap.
impl From<StoreError> for CallError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Invalid(m) => CallError::Invalid(m),
            StoreError::Denied(m) => CallError::Denied(m),
            StoreError::NotFound(m) => CallError::NotFound(m),
            StoreError::Limit(m) => CallError::Limit(m),
            StoreError::Io(m) => CallError::Io(m),
            StoreError::Interrupted => {
                CallError::Trap(wasmtime::Error::msg(StoreError::Interrupted.to_string()))
            }
        }
    }
}
