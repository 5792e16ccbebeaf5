//! `wasi:nn/inference`: running a loaded model. Inference runs on a
//! blocking-pool thread while the job's thread awaits it, so the job's
//! deadline or a cancel ends the call like any other wait; only a run
//! known to take under a millisecond (`onnx::Model::is_quick`) is made on
//! the job's thread. The outputs count against the job's memory limit.

use wasmtime::component::Resource;

use crate::bindings::wasi::nn::inference::{Host, HostGraphExecutionContext};
use crate::nn::{ErrorCode, ExecutionContext, NnError, Tensor};
use crate::state::HostState;

type Named = (String, Resource<Tensor>);

impl Host for HostState {}

impl HostGraphExecutionContext for HostState {
    async fn compute(
        &mut self,
        ctx: Resource<ExecutionContext>,
        inputs: Vec<Named>,
    ) -> wasmtime::Result<Result<Vec<Named>, Resource<NnError>>> {
        let model = self.table.get(&ctx)?.model.clone();
        let mut owned = Vec::with_capacity(inputs.len());
        for (name, t) in inputs {
            owned.push((name, self.take_tensor(t)?));
        }
        let outputs = if model.is_quick(crate::nn::onnx::input_bytes(&owned)) {
            model.run(owned)
        } else {
            tokio::task::spawn_blocking(move || model.run(owned))
                .await
                .unwrap_or_else(|e| {
                    Err(NnError::new(
                        ErrorCode::RuntimeError,
                        format!("inference stopped: {e}"),
                    ))
                })
        };
        let outputs = match outputs {
            Ok(o) => o,
            Err(e) => return Ok(Err(self.table.push(e)?)),
        };
        let mut held: Vec<Named> = Vec::with_capacity(outputs.len());
        for (name, t) in outputs {
            match self.hold_tensor(t) {
                Ok(h) => held.push((name, h)),
                Err(m) => {
                    for (_, h) in held {
                        self.take_tensor(h)?;
                    }
                    let e = NnError::new(ErrorCode::TooLarge, format!("output `{name}`: {m}"));
                    return Ok(Err(self.table.push(e)?));
                }
            }
        }
        Ok(Ok(held))
    }

    fn drop(&mut self, ctx: Resource<ExecutionContext>) -> wasmtime::Result<()> {
        self.table.delete(ctx)?;
        Ok(())
    }
}
