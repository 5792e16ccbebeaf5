//! `wasi:nn/graph`: loading models. Only models granted to the job load,
//! by registry id or name (`load-by-name`); model bytes from the guest are
//! refused (`load`), so no guest-made file reaches the model parser. The
//! file is read through the job's read-only mount of the model (cap-std:
//! no symlink leaves it), counted against the job's memory limit, and
//! parsed off the job's thread.

use std::io::Read;
use std::sync::Arc;
use std::time::Instant;

use wasmtime::component::Resource;

use crate::bindings::wasi::nn::graph::{
    ExecutionTarget, GraphBuilder, GraphEncoding, Host, HostGraph,
};
use crate::error::CallError;
use crate::nn::{onnx, pick_model_file, ErrorCode, ExecutionContext, Graph, NnError};
use crate::state::HostState;
use crate::store::Registry;

use super::NnResult;

impl Host for HostState {
    fn load(
        &mut self,
        _builder: Vec<GraphBuilder>,
        _encoding: GraphEncoding,
        _target: ExecutionTarget,
    ) -> NnResult<Graph> {
        let e = NnError::new(
            ErrorCode::Security,
            "loading model bytes from the plugin is not allowed: grant the model to the job and use load-by-name",
        );
        self.nn_handle(Err(e))
    }

    async fn load_by_name(&mut self, name: String) -> NnResult<Graph> {
        let r = self.load_granted(&name).await;
        if let Err(e) = &r {
            let line = format!(
                "load-by-name `{}` refused: {}",
                crate::text::for_terminal_line(&name),
                e.message
            );
            self.nn_log(&line);
        }
        self.nn_handle(r)
    }
}

impl HostState {
    async fn load_granted(&mut self, name: &str) -> Result<Graph, NnError> {
        let started = Instant::now();
        let (model_ref, file) = match name.split_once('/') {
            Some((m, f)) => (m, Some(f)),
            None => (name, None),
        };
        let job = self.job.as_mut().ok_or_else(|| {
            NnError::new(
                ErrorCode::Security,
                "wasi:nn is not available during describe()",
            )
        })?;
        let guest = job
            .granted_path(Registry::Models, model_ref)
            .map_err(|e| match e {
                CallError::Denied(m) => NnError::new(ErrorCode::Security, m),
                CallError::NotFound(m) => NnError::new(ErrorCode::NotFound, m),
                other => NnError::new(ErrorCode::InvalidArgument, other.to_string()),
            })?;
        let model_id = guest.trim_start_matches("/models/").to_owned();
        let mount = job
            .mounts
            .iter()
            .find(|m| m.guest == guest)
            .ok_or_else(|| {
                NnError::new(
                    ErrorCode::NotFound,
                    format!("model `{model_id}` is not mounted"),
                )
            })?;
        let io = |e: std::io::Error| {
            NnError::new(ErrorCode::NotFound, format!("model `{model_id}`: {e}"))
        };
        let mut files = Vec::new();
        for entry in mount.dir.entries().map_err(io)? {
            let entry = entry.map_err(io)?;
            if entry.file_type().map_err(io)?.is_file() {
                files.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        let path = pick_model_file(&model_id, &files, file)?;
        let mut f = mount.dir.open(&path).map_err(io)?;
        let size = f.metadata().map_err(io)?.len();
        self.limiter
            .reserve(size, &format!("model `{model_id}`"))
            .map_err(|m| NnError::new(ErrorCode::TooLarge, m))?;
        let loaded = async {
            let mut bytes = Vec::with_capacity(size as usize);
            f.read_to_end(&mut bytes).map_err(io)?;
            let model = tokio::task::spawn_blocking(move || onnx::Model::load(&bytes))
                .await
                .map_err(|e| {
                    NnError::new(
                        ErrorCode::RuntimeError,
                        format!("loading the model stopped: {e}"),
                    )
                })??;
            Ok::<_, NnError>(model)
        }
        .await;
        let model = match loaded {
            Ok(m) => m,
            Err(e) => {
                self.limiter.release(size);
                return Err(e);
            }
        };
        let line = format!(
            "loaded model `{model_id}` ({path}, {}) in {} ms: {}",
            crate::units::human_bytes(size),
            started.elapsed().as_millis(),
            model.signature()
        );
        self.nn_log(&line);
        Ok(Graph {
            model: Arc::new(model),
            model_id,
            bytes: size,
        })
    }
}

impl HostGraph for HostState {
    fn init_execution_context(&mut self, graph: Resource<Graph>) -> NnResult<ExecutionContext> {
        let g = self.table.get(&graph)?;
        let ctx = ExecutionContext {
            model: g.model.clone(),
            model_id: g.model_id.clone(),
        };
        self.nn_handle(Ok(ctx))
    }

    fn drop(&mut self, graph: Resource<Graph>) -> wasmtime::Result<()> {
        let g = self.table.delete(graph)?;
        self.limiter.release(g.bytes);
        Ok(())
    }
}
