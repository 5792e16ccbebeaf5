//! The inference engine behind `wasi:nn`: ONNX models run by tract, a
//! pure-Rust engine (no native library to ship, nothing downloaded at build
//! time; see the README for the measurements behind the choice). Pure: bytes
//! in, tensors out, no wasm involved, so it is tested on its own.
//!
//! Every entry point catches panics: a model or input that trips an
//! assertion inside the engine is an error for the guest, never a host crash.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::DimLike;
use tract_onnx::tract_hir::infer::Factoid;

use super::{ErrorCode, NnError, Tensor, TensorType};

/// A loaded, optimised model. Shared (`Arc`) by every execution context of
/// the graph; runs are independent (one state per run), so contexts of one
/// model run in parallel without a lock.
pub struct Model {
    plan: Arc<TypedRunnableModel>,
    inputs: Vec<Port>,
    outputs: Vec<String>,
    /// The largest input (bytes) a run of which took under [`QUICK`].
    quick_bytes: std::sync::atomic::AtomicUsize,
}

/// A run this short may be made on the caller's thread (see
/// [`Model::is_quick`]).
pub const QUICK: std::time::Duration = std::time::Duration::from_millis(1);

/// One model input: its name, element type and dimensions (`None` for a
/// symbolic one such as the batch size).
#[derive(Debug, Clone)]
struct Port {
    name: String,
    ty: DatumType,
    dims: Vec<Option<usize>>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("inputs", &self.inputs)
            .field("outputs", &self.outputs)
            .finish()
    }
}

fn guarded<T>(what: &str, f: impl FnOnce() -> Result<T, NnError>) -> Result<T, NnError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(panic) => {
            let text = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "no message".into());
            Err(NnError::new(
                ErrorCode::RuntimeError,
                format!("{what} failed inside the inference engine: {text}"),
            ))
        }
    }
}

/// Give every input dimension the model leaves unnamed (ONNX `None`, as
/// exporters write a batch size) a symbol of its own, so the model can be
/// optimised for any size there and each run fixes it.
fn name_unknown_dims(model: &mut InferenceModel) -> TractResult<()> {
    for ix in 0..model.input_outlets()?.len() {
        let fact = model.input_fact(ix)?.clone();
        let Some(dt) = fact.datum_type.concretize() else {
            continue;
        };
        if fact.shape.is_open() {
            continue;
        }
        let dims: TVec<TDim> = fact
            .shape
            .dims()
            .map(|d| {
                d.concretize()
                    .unwrap_or_else(|| model.symbols.new_with_prefix("n").into())
            })
            .collect();
        model.set_input_fact(ix, InferenceFact::dt_shape(dt, dims))?;
    }
    Ok(())
}

/// Chain of a tract error, on one line.
fn chain(e: &TractError) -> String {
    format!("{e:#}").replace('\n', " ")
}

impl Model {
    /// Parse and optimise an ONNX model. A file that is not a valid ONNX
    /// model is `invalid-encoding`.
    pub fn load(bytes: &[u8]) -> Result<Model, NnError> {
        guarded("loading the model", || {
            let invalid = |e: TractError| {
                NnError::new(
                    ErrorCode::InvalidEncoding,
                    format!("not a usable ONNX model: {}", chain(&e)),
                )
            };
            let mut model = tract_onnx::onnx()
                .model_for_read(&mut &bytes[..])
                .map_err(invalid)?;
            name_unknown_dims(&mut model).map_err(invalid)?;
            let typed = model.into_optimized().map_err(invalid)?;
            let mut inputs = Vec::new();
            for (ix, outlet) in typed.input_outlets().map_err(invalid)?.iter().enumerate() {
                let fact = typed.input_fact(ix).map_err(invalid)?;
                inputs.push(Port {
                    name: typed.node(outlet.node).name.clone(),
                    ty: fact.datum_type,
                    dims: fact
                        .shape
                        .dims()
                        .iter()
                        .map(|d| d.to_usize().ok())
                        .collect(),
                });
            }
            let outputs = typed
                .output_outlets()
                .map_err(invalid)?
                .iter()
                .map(|o| {
                    typed
                        .outlet_label(*o)
                        .map(str::to_owned)
                        .unwrap_or_else(|| typed.node(o.node).name.clone())
                })
                .collect();
            let plan = typed.into_runnable().map_err(invalid)?;
            Ok(Model {
                plan,
                inputs,
                outputs,
                quick_bytes: Default::default(),
            })
        })
    }

    /// The model's inputs as `name: type [dims]`, for messages and logs.
    pub fn signature(&self) -> String {
        let ports: Vec<String> = self.inputs.iter().map(describe_port).collect();
        format!(
            "inputs {}; outputs {}",
            ports.join(", "),
            self.outputs.join(", ")
        )
    }

    /// Run the model. `inputs` are matched to the model's inputs by name
    /// (a single unnamed-or-misnamed input is taken for a single-input
    /// model); each must have the input's element type and dimensions.
    /// Returns every output, by name.
    pub fn run(&self, inputs: Vec<(String, Tensor)>) -> Result<Vec<(String, Tensor)>, NnError> {
        let bytes = input_bytes(&inputs);
        let started = std::time::Instant::now();
        let r = self.run_untimed(inputs);
        if r.is_ok() && started.elapsed() < QUICK {
            self.quick_bytes
                .fetch_max(bytes, std::sync::atomic::Ordering::Relaxed);
        }
        r
    }

    /// Whether a run on inputs of `bytes` is known to be quick: one on at
    /// least as many bytes took under [`QUICK`]. Such a run is made on the
    /// job's own thread (a hop to another thread costs more than it); a
    /// longer one elsewhere, so the job's deadline can end the wait.
    pub fn is_quick(&self, bytes: usize) -> bool {
        bytes <= self.quick_bytes.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn run_untimed(&self, inputs: Vec<(String, Tensor)>) -> Result<Vec<(String, Tensor)>, NnError> {
        let ordered = self.order_inputs(inputs)?;
        let mut values: TVec<TValue> = TVec::new();
        for (port, t) in self.inputs.iter().zip(ordered) {
            values.push(to_tract(port, &t)?.into_tvalue());
        }
        let outputs = guarded("inference", || {
            self.plan.run(values).map_err(|e| {
                NnError::new(
                    ErrorCode::RuntimeError,
                    format!("inference failed: {}", chain(&e)),
                )
            })
        })?;
        self.outputs
            .iter()
            .zip(outputs)
            .map(|(name, v)| Ok((name.clone(), from_tract(name, &v)?)))
            .collect()
    }

    fn order_inputs(&self, mut inputs: Vec<(String, Tensor)>) -> Result<Vec<Tensor>, NnError> {
        if self.inputs.len() == 1 && inputs.len() == 1 {
            return Ok(vec![inputs.pop().expect("one input").1]);
        }
        let mut out = Vec::with_capacity(self.inputs.len());
        for port in &self.inputs {
            let ix = inputs
                .iter()
                .position(|(n, _)| *n == port.name)
                .ok_or_else(|| {
                    NnError::new(
                        ErrorCode::InvalidArgument,
                        format!("missing input `{}` ({})", port.name, self.signature()),
                    )
                })?;
            out.push(inputs.swap_remove(ix).1);
        }
        if let Some((extra, _)) = inputs.first() {
            return Err(NnError::new(
                ErrorCode::InvalidArgument,
                format!(
                    "the model has no input `{}` ({})",
                    crate::text::for_terminal_line(extra),
                    self.signature()
                ),
            ));
        }
        Ok(out)
    }
}

/// Bytes of input data of a run.
pub fn input_bytes(inputs: &[(String, Tensor)]) -> usize {
    inputs.iter().map(|(_, t)| t.data.len()).sum()
}

fn describe_port(p: &Port) -> String {
    let dims: Vec<String> = p
        .dims
        .iter()
        .map(|d| d.map_or_else(|| "?".to_owned(), |d| d.to_string()))
        .collect();
    format!("{}: {:?} [{}]", p.name, p.ty, dims.join(", "))
}

fn datum(ty: TensorType) -> Option<DatumType> {
    Some(match ty {
        TensorType::Fp16 => DatumType::F16,
        TensorType::Fp32 => DatumType::F32,
        TensorType::Fp64 => DatumType::F64,
        TensorType::U8 => DatumType::U8,
        TensorType::I32 => DatumType::I32,
        TensorType::I64 => DatumType::I64,
        TensorType::Bf16 => return None,
    })
}

fn tensor_type(dt: DatumType) -> Option<TensorType> {
    Some(match dt {
        DatumType::F16 => TensorType::Fp16,
        DatumType::F32 => TensorType::Fp32,
        DatumType::F64 => TensorType::Fp64,
        DatumType::U8 => TensorType::U8,
        DatumType::I32 => TensorType::I32,
        DatumType::I64 => TensorType::I64,
        _ => return None,
    })
}

/// A guest tensor as a tract tensor, checked against the model input.
fn to_tract(port: &Port, t: &Tensor) -> Result<Tensor_, NnError> {
    let invalid = |m: String| {
        NnError::new(
            ErrorCode::InvalidArgument,
            format!("input `{}`: {m}", port.name),
        )
    };
    let dt = datum(t.ty).ok_or_else(|| {
        NnError::new(
            ErrorCode::UnsupportedOperation,
            format!("input `{}`: BF16 tensors are not supported", port.name),
        )
    })?;
    if dt != port.ty {
        return Err(invalid(format!(
            "a {:?} tensor was given, the model takes {}",
            t.ty,
            describe_port(port)
        )));
    }
    let shape: Vec<usize> = t.dims.iter().map(|d| *d as usize).collect();
    let fits = shape.len() == port.dims.len()
        && shape
            .iter()
            .zip(&port.dims)
            .all(|(s, d)| d.is_none_or(|d| d == *s));
    if !fits {
        return Err(invalid(format!(
            "dimensions {:?} do not fit the model's {}",
            t.dims,
            describe_port(port)
        )));
    }
    // Length checked against the dimensions before anything is allocated.
    let want = t.expected_len();
    if want != Some(t.data.len()) {
        return Err(invalid(format!(
            "{} bytes of data for dimensions {:?} of {:?} ({} expected)",
            t.data.len(),
            t.dims,
            t.ty,
            want.map_or_else(|| "more than addressable".to_owned(), |w| w.to_string())
        )));
    }
    // SAFETY: `dt` is a plain-old-data type (floats, integers) and the
    // length was checked above (from_raw_dt checks it again).
    unsafe { Tensor_::from_raw_dt(dt, &shape, &t.data) }.map_err(|e| invalid(chain(&e)))
}

type Tensor_ = tract_onnx::prelude::Tensor;

fn from_tract(name: &str, v: &TValue) -> Result<Tensor, NnError> {
    // Integers wasi:nn has no type for (the engine's own dimension type,
    // as ArgMax gives, bool, narrow ints) are handed over as I64.
    let widened;
    let v: &Tensor_ = match v.datum_type() {
        DatumType::TDim
        | DatumType::Bool
        | DatumType::I8
        | DatumType::I16
        | DatumType::U16
        | DatumType::U32 => {
            widened = v.cast_to_dt(DatumType::I64).map_err(|e| {
                NnError::new(
                    ErrorCode::UnsupportedOperation,
                    format!("output `{name}`: {}", chain(&e)),
                )
            })?;
            &widened
        }
        _ => v,
    };
    let ty = tensor_type(v.datum_type()).ok_or_else(|| {
        NnError::new(
            ErrorCode::UnsupportedOperation,
            format!(
                "output `{name}` is a {:?} tensor, which wasi:nn cannot carry",
                v.datum_type()
            ),
        )
    })?;
    let dims = v
        .shape()
        .iter()
        .map(|d| u32::try_from(*d))
        .collect::<Result<Vec<u32>, _>>()
        .map_err(|_| {
            NnError::new(
                ErrorCode::TooLarge,
                format!("output `{name}` has a dimension over 2^32"),
            )
        })?;
    Ok(Tensor {
        dims,
        ty,
        data: v.as_bytes().to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(dims: &[u32], values: &[f32]) -> Tensor {
        Tensor::f32(dims, values)
    }

    #[test]
    fn a_model_runs_on_a_batch_and_returns_every_output() {
        let m = Model::load(&super::super::fixture::linear_argmax()).unwrap();
        assert_eq!(m.signature(), "inputs x: F32 [?, 3]; outputs scores, label");
        let out = m
            .run(vec![(
                "x".into(),
                input(&[2, 3], &[1.0, 2.0, 3.0, 0.0, 0.0, -4.0]),
            )])
            .unwrap();
        assert_eq!(out[0].0, "scores");
        assert_eq!(out[0].1.dims, vec![2, 2]);
        // [1+3+0.5, 2-3-0.5] and [-4+0.5, 0+4-0.5]
        assert_eq!(out[0].1.to_f32(), Some(vec![4.5, -1.5, -3.5, 3.5]));
        assert_eq!(out[1].0, "label");
        assert_eq!(out[1].1.ty, TensorType::I64);
        assert_eq!(out[1].1.to_i64(), Some(vec![0, 1]));
    }

    #[test]
    fn bad_models_and_inputs_are_errors_with_their_reason() {
        let e = Model::load(b"this is not a model").unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidEncoding);
        assert!(
            e.message.starts_with("not a usable ONNX model: "),
            "{}",
            e.message
        );
        let mut truncated = super::super::fixture::linear_argmax();
        truncated.truncate(truncated.len() / 2);
        assert_eq!(
            Model::load(&truncated).unwrap_err().code,
            ErrorCode::InvalidEncoding
        );

        let m = Model::load(&super::super::fixture::linear_argmax()).unwrap();
        let run = |name: &str, t: Tensor| m.run(vec![(name.into(), t)]).unwrap_err();
        let e = run("x", input(&[1, 4], &[0.0; 4]));
        assert_eq!(e.code, ErrorCode::InvalidArgument);
        assert_eq!(
            e.message,
            "input `x`: dimensions [1, 4] do not fit the model's x: F32 [?, 3]"
        );
        let e = run(
            "x",
            Tensor {
                dims: vec![1, 3],
                ty: TensorType::Fp32,
                data: vec![0; 11],
            },
        );
        assert_eq!(
            e.message,
            "input `x`: 11 bytes of data for dimensions [1, 3] of Fp32 (12 expected)"
        );
        let e = run(
            "x",
            Tensor {
                dims: vec![1, 3],
                ty: TensorType::I64,
                data: vec![0; 24],
            },
        );
        assert_eq!(
            e.message,
            "input `x`: a I64 tensor was given, the model takes x: F32 [?, 3]"
        );
        let e = run(
            "x",
            Tensor {
                dims: vec![1, 3],
                ty: TensorType::Bf16,
                data: vec![0; 6],
            },
        );
        assert_eq!(e.code, ErrorCode::UnsupportedOperation);
        let e = run(
            "x",
            Tensor {
                dims: vec![u32::MAX, u32::MAX, 3],
                ty: TensorType::Fp32,
                data: vec![],
            },
        );
        assert_eq!(e.code, ErrorCode::InvalidArgument);
        let two = m
            .run(vec![
                ("x".into(), input(&[1, 3], &[0.0; 3])),
                ("y".into(), input(&[1, 3], &[0.0; 3])),
            ])
            .unwrap_err();
        assert_eq!(
            two.message,
            "the model has no input `y` (inputs x: F32 [?, 3]; outputs scores, label)"
        );
    }
}
