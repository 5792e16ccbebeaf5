//! Inference for plugins (`wasi:nn`): the models granted to a job, loaded
//! by the host and run at native speed. The WIT side is `api/wasi_nn/`;
//! this module holds what is independent of wasm: the tensor and error
//! types, the engine ([`onnx`]) and the choice of a model file inside a
//! granted registry entry.
//!
//! Limits: a loaded model (its file size), every live tensor and every
//! output count against the job's memory limit together with the plugin's
//! linear memory ([`crate::state::MemoryLimiter`]); inference runs off the
//! job's thread, within the job's time limit.

pub mod fixture;
pub mod onnx;

use std::sync::Arc;

/// Element type of a tensor (the WIT's `tensor-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TensorType {
    Fp16,
    Fp32,
    Fp64,
    Bf16,
    U8,
    I32,
    I64,
}

impl TensorType {
    pub fn size(self) -> usize {
        match self {
            TensorType::U8 => 1,
            TensorType::Fp16 | TensorType::Bf16 => 2,
            TensorType::Fp32 | TensorType::I32 => 4,
            TensorType::Fp64 | TensorType::I64 => 8,
        }
    }
}

/// A tensor held for the guest (resource `wasi:nn/tensor.tensor`).
#[derive(Debug, Clone)]
pub struct Tensor {
    pub dims: Vec<u32>,
    pub ty: TensorType,
    pub data: Vec<u8>,
}

impl Tensor {
    /// An f32 tensor of `values` (row-major).
    pub fn f32(dims: &[u32], values: &[f32]) -> Tensor {
        Tensor {
            dims: dims.to_vec(),
            ty: TensorType::Fp32,
            data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }

    /// The values of an f32 tensor (`None` for another type).
    pub fn to_f32(&self) -> Option<Vec<f32>> {
        (self.ty == TensorType::Fp32).then(|| {
            self.data
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
                .collect()
        })
    }

    /// The values of an i64 tensor (`None` for another type).
    pub fn to_i64(&self) -> Option<Vec<i64>> {
        (self.ty == TensorType::I64).then(|| {
            self.data
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")))
                .collect()
        })
    }

    /// Bytes the dimensions call for; `None` if that overflows.
    pub fn expected_len(&self) -> Option<usize> {
        self.dims
            .iter()
            .try_fold(self.ty.size(), |acc, d| acc.checked_mul(*d as usize))
    }

    /// Bytes charged to the job's memory while the tensor lives.
    pub fn charge(&self) -> u64 {
        self.data.len() as u64
    }
}

/// The WIT's `error-code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidArgument,
    InvalidEncoding,
    Timeout,
    RuntimeError,
    UnsupportedOperation,
    TooLarge,
    NotFound,
    Security,
    Unknown,
}

/// An error for the guest (resource `wasi:nn/errors.error`): a code and a
/// one-line message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NnError {
    pub code: ErrorCode,
    pub message: String,
}

impl NnError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        NnError {
            code,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for NnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}: {}", self.code, self.message)
    }
}

/// A loaded model (resource `wasi:nn/graph.graph`).
#[derive(Debug, Clone)]
pub struct Graph {
    pub model: Arc<onnx::Model>,
    /// The registry model it came from.
    pub model_id: String,
    /// Bytes charged to the job's memory while the graph lives.
    pub bytes: u64,
}

/// An execution context (resource `wasi:nn/inference.graph-execution-context`).
#[derive(Debug, Clone)]
pub struct ExecutionContext {
    pub model: Arc<onnx::Model>,
    pub model_id: String,
}

/// Which file of a granted model entry `load-by-name` loads: `file` if the
/// name gave one (`id/file.onnx`), else `model.onnx`, else the entry's only
/// `.onnx` file. `files` are the entry's relative paths.
pub fn pick_model_file(
    model: &str,
    files: &[String],
    file: Option<&str>,
) -> Result<String, NnError> {
    if let Some(f) = file {
        return if files.iter().any(|x| x == f) {
            Ok(f.to_owned())
        } else {
            Err(NnError::new(
                ErrorCode::NotFound,
                format!(
                    "model `{model}` has no file `{}`",
                    crate::text::for_terminal_line(f)
                ),
            ))
        };
    }
    if files.iter().any(|f| f == "model.onnx") {
        return Ok("model.onnx".into());
    }
    let onnx: Vec<&String> = files.iter().filter(|f| f.ends_with(".onnx")).collect();
    match onnx.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(NnError::new(
            ErrorCode::InvalidEncoding,
            format!("model `{model}` holds no .onnx file"),
        )),
        several => Err(NnError::new(
            ErrorCode::InvalidArgument,
            format!(
                "model `{model}` holds {} .onnx files ({}): load `{model}/FILE`",
                several.len(),
                several
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_model_file_is_named_or_the_only_onnx_file() {
        assert_eq!(
            pick_model_file("m", &files(&["a.onnx", "model.onnx"]), None).unwrap(),
            "model.onnx"
        );
        assert_eq!(
            pick_model_file("m", &files(&["README", "net.onnx"]), None).unwrap(),
            "net.onnx"
        );
        assert_eq!(
            pick_model_file("m", &files(&["a.onnx", "b.onnx"]), Some("b.onnx")).unwrap(),
            "b.onnx"
        );
        let e = pick_model_file("m", &files(&["a.onnx", "b.onnx"]), None).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidArgument);
        assert_eq!(
            e.message,
            "model `m` holds 2 .onnx files (a.onnx, b.onnx): load `m/FILE`"
        );
        let e = pick_model_file("m", &files(&["weights.bin"]), None).unwrap_err();
        assert_eq!(
            e,
            NnError::new(ErrorCode::InvalidEncoding, "model `m` holds no .onnx file")
        );
        let e = pick_model_file("m", &files(&["a.onnx"]), Some("../x.onnx")).unwrap_err();
        assert_eq!(e.code, ErrorCode::NotFound);
    }

    #[test]
    fn tensor_lengths_come_from_dimensions_without_overflow() {
        let t = Tensor {
            dims: vec![2, 64],
            ty: TensorType::Fp32,
            data: vec![],
        };
        assert_eq!(t.expected_len(), Some(512));
        let huge = Tensor {
            dims: vec![u32::MAX, u32::MAX, u32::MAX],
            ty: TensorType::I64,
            data: vec![],
        };
        assert_eq!(huge.expected_len(), None);
    }
}
