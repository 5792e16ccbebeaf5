//! Inference on a model granted to the job, through `wasi:nn`: the host
//! runs the model at native speed.
//!
//! ```ignore
//! let model = lab::nn::Model::load("digits-mlp")?;        // id or name
//! let out = model.run_f32("input", &[1, 64], &pixels)?;   // every output
//! let probabilities = out.get("probabilities")?.to_f32()?;
//! ```

use crate::bindings::wasi::nn::{errors, graph, inference, tensor};

pub use tensor::TensorType;

/// A failed `wasi:nn` call: its code and the host's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NnError {
    pub code: errors::ErrorCode,
    pub message: String,
}

impl std::fmt::Display for NnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", code_name(self.code), self.message)
    }
}

impl std::error::Error for NnError {}

impl From<NnError> for crate::Error {
    fn from(e: NnError) -> Self {
        crate::Error::msg(e.to_string())
    }
}

/// The code as the WIT spells it (`invalid-argument`, `too-large`, ...).
pub fn code_name(code: errors::ErrorCode) -> &'static str {
    use errors::ErrorCode as C;
    match code {
        C::InvalidArgument => "invalid-argument",
        C::InvalidEncoding => "invalid-encoding",
        C::Timeout => "timeout",
        C::RuntimeError => "runtime-error",
        C::UnsupportedOperation => "unsupported-operation",
        C::TooLarge => "too-large",
        C::NotFound => "not-found",
        C::Security => "security",
        C::Unknown => "unknown",
    }
}

/// The element type as the WIT spells it (`FP32`, `I64`, ...).
pub fn type_name(ty: TensorType) -> &'static str {
    match ty {
        TensorType::Fp16 => "FP16",
        TensorType::Fp32 => "FP32",
        TensorType::Fp64 => "FP64",
        TensorType::Bf16 => "BF16",
        TensorType::U8 => "U8",
        TensorType::I32 => "I32",
        TensorType::I64 => "I64",
    }
}

fn err(e: errors::Error) -> NnError {
    NnError {
        code: e.code(),
        message: e.data(),
    }
}

/// A loaded model with its execution context.
pub struct Model {
    _graph: graph::Graph,
    ctx: inference::GraphExecutionContext,
}

/// One tensor: dimensions, element type, little-endian bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub name: String,
    pub dims: Vec<u32>,
    pub ty: TensorType,
    pub data: Vec<u8>,
}

impl Tensor {
    /// An f32 tensor from values (row-major).
    pub fn f32(name: &str, dims: &[u32], values: &[f32]) -> Tensor {
        Tensor {
            name: name.into(),
            dims: dims.to_vec(),
            ty: TensorType::Fp32,
            data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }

    /// The values of an f32 tensor.
    pub fn to_f32(&self) -> Result<Vec<f32>, NnError> {
        self.expect(TensorType::Fp32)?;
        Ok(self
            .data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }

    /// The values of an i64 tensor (class labels, token ids).
    pub fn to_i64(&self) -> Result<Vec<i64>, NnError> {
        self.expect(TensorType::I64)?;
        Ok(self
            .data
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect())
    }

    fn expect(&self, ty: TensorType) -> Result<(), NnError> {
        if self.ty == ty {
            Ok(())
        } else {
            Err(NnError {
                code: errors::ErrorCode::InvalidArgument,
                message: format!("tensor `{}` is {:?}, not {:?}", self.name, self.ty, ty),
            })
        }
    }
}

/// The outputs of one run, by name.
#[derive(Debug, Clone)]
pub struct Outputs(pub Vec<Tensor>);

impl Outputs {
    pub fn get(&self, name: &str) -> Result<&Tensor, NnError> {
        self.0
            .iter()
            .find(|t| t.name == name)
            .ok_or_else(|| NnError {
                code: errors::ErrorCode::NotFound,
                message: format!(
                    "no output `{name}` (outputs: {})",
                    self.0
                        .iter()
                        .map(|t| t.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })
    }
}

impl Model {
    /// Load a model granted to the job, by registry id or name (or
    /// `ID/FILE.onnx` for one file of a model holding several).
    pub fn load(name: &str) -> Result<Model, NnError> {
        let g = graph::load_by_name(name).map_err(err)?;
        let ctx = g.init_execution_context().map_err(err)?;
        Ok(Model { _graph: g, ctx })
    }

    /// Run the model on named inputs; returns every output.
    pub fn run(&self, inputs: &[Tensor]) -> Result<Outputs, NnError> {
        let named = inputs
            .iter()
            .map(|t| (t.name.clone(), tensor::Tensor::new(&t.dims, t.ty, &t.data)))
            .collect::<Vec<_>>();
        let out = self.ctx.compute(named).map_err(err)?;
        Ok(Outputs(
            out.into_iter()
                .map(|(name, t)| Tensor {
                    name,
                    dims: t.dimensions(),
                    ty: t.ty(),
                    data: t.data(),
                })
                .collect(),
        ))
    }

    /// Run a single-input model on an f32 tensor.
    pub fn run_f32(&self, input: &str, dims: &[u32], values: &[f32]) -> Result<Outputs, NnError> {
        self.run(&[Tensor::f32(input, dims, values)])
    }
}
