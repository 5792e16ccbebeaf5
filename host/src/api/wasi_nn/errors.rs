//! `wasi:nn/errors`: the error handles other calls return.

use wasmtime::component::Resource;

use crate::bindings::wasi::nn::errors::{ErrorCode, Host, HostError};
use crate::nn::{self, NnError};
use crate::state::HostState;

impl Host for HostState {}

impl HostError for HostState {
    fn code(&mut self, err: Resource<NnError>) -> wasmtime::Result<ErrorCode> {
        Ok(match self.table.get(&err)?.code {
            nn::ErrorCode::InvalidArgument => ErrorCode::InvalidArgument,
            nn::ErrorCode::InvalidEncoding => ErrorCode::InvalidEncoding,
            nn::ErrorCode::Timeout => ErrorCode::Timeout,
            nn::ErrorCode::RuntimeError => ErrorCode::RuntimeError,
            nn::ErrorCode::UnsupportedOperation => ErrorCode::UnsupportedOperation,
            nn::ErrorCode::TooLarge => ErrorCode::TooLarge,
            nn::ErrorCode::NotFound => ErrorCode::NotFound,
            nn::ErrorCode::Security => ErrorCode::Security,
            nn::ErrorCode::Unknown => ErrorCode::Unknown,
        })
    }

    fn data(&mut self, err: Resource<NnError>) -> wasmtime::Result<String> {
        Ok(self.table.get(&err)?.message.clone())
    }

    fn drop(&mut self, err: Resource<NnError>) -> wasmtime::Result<()> {
        self.table.delete(err)?;
        Ok(())
    }
}
