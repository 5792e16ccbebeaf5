//! `wasi:nn/tensor`: tensors the host holds for the guest. Each one counts
//! against the job's memory limit while it lives; one that does not fit
//! traps the guest (a constructor has no error to return).

use wasmtime::component::Resource;

use crate::bindings::wasi::nn::tensor::{Host, HostTensor, TensorType};
use crate::nn::{self, Tensor};
use crate::state::HostState;

impl Host for HostState {}

pub(super) fn from_wit(ty: TensorType) -> nn::TensorType {
    match ty {
        TensorType::Fp16 => nn::TensorType::Fp16,
        TensorType::Fp32 => nn::TensorType::Fp32,
        TensorType::Fp64 => nn::TensorType::Fp64,
        TensorType::Bf16 => nn::TensorType::Bf16,
        TensorType::U8 => nn::TensorType::U8,
        TensorType::I32 => nn::TensorType::I32,
        TensorType::I64 => nn::TensorType::I64,
    }
}

fn to_wit(ty: nn::TensorType) -> TensorType {
    match ty {
        nn::TensorType::Fp16 => TensorType::Fp16,
        nn::TensorType::Fp32 => TensorType::Fp32,
        nn::TensorType::Fp64 => TensorType::Fp64,
        nn::TensorType::Bf16 => TensorType::Bf16,
        nn::TensorType::U8 => TensorType::U8,
        nn::TensorType::I32 => TensorType::I32,
        nn::TensorType::I64 => TensorType::I64,
    }
}

impl HostState {
    /// Keep `t` for the guest, counted against its memory limit.
    pub(super) fn hold_tensor(&mut self, t: Tensor) -> Result<Resource<Tensor>, String> {
        self.limiter.reserve(t.charge(), "a wasi:nn tensor")?;
        let charge = t.charge();
        self.table.push(t).map_err(|e| {
            self.limiter.release(charge);
            e.to_string()
        })
    }

    /// Take a tensor handle back from the guest (it was passed by value).
    pub(super) fn take_tensor(&mut self, t: Resource<Tensor>) -> wasmtime::Result<Tensor> {
        let t = self.table.delete(t)?;
        self.limiter.release(t.charge());
        Ok(t)
    }
}

impl HostTensor for HostState {
    fn new(
        &mut self,
        dims: Vec<u32>,
        ty: TensorType,
        data: Vec<u8>,
    ) -> wasmtime::Result<Resource<Tensor>> {
        let t = Tensor {
            dims,
            ty: from_wit(ty),
            data,
        };
        self.hold_tensor(t).map_err(wasmtime::Error::msg)
    }

    fn dimensions(&mut self, t: Resource<Tensor>) -> wasmtime::Result<Vec<u32>> {
        Ok(self.table.get(&t)?.dims.clone())
    }

    fn ty(&mut self, t: Resource<Tensor>) -> wasmtime::Result<TensorType> {
        Ok(to_wit(self.table.get(&t)?.ty))
    }

    fn data(&mut self, t: Resource<Tensor>) -> wasmtime::Result<Vec<u8>> {
        Ok(self.table.get(&t)?.data.clone())
    }

    fn drop(&mut self, t: Resource<Tensor>) -> wasmtime::Result<()> {
        self.take_tensor(t)?;
        Ok(())
    }
}
