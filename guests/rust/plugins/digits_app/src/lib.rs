//! `digits-app`: the demo's digit classifier served online (a predictor:
//! `labhost serve`, `POST /api/v1/apps/NAME/predict`). Each instance loads
//! the granted ONNX model once (through `wasi:nn`); a request is a batch of
//! `{"pixels": [64 numbers 0-16]}` and gets one
//! `{"label": digit, "confidence": p}` per input, from one inference call.

use std::cell::RefCell;

use serde_json::{json, Value};

pub struct DigitsApp;

lab::export_predictor!(DigitsApp);

const PIXELS: usize = 64;
const CLASSES: usize = 10;

thread_local! {
    static MODEL: RefCell<Option<lab::nn::Model>> = const { RefCell::new(None) };
}

impl lab::Predictor for DigitsApp {
    fn describe() -> lab::Describe {
        lab::Describe::new(
            "digits-app",
            lab::Kind::Other,
            "Classifies 8x8 digit images with an ONNX model run through wasi:nn",
        )
        .param(
            "model",
            lab::ParamType::Text,
            Some("\"digits-mlp\""),
            "ONNX model granted to the app (name or id)",
        )
    }

    fn load() -> lab::Result<()> {
        let name = lab::config()["model"]
            .as_str()
            .unwrap_or("digits-mlp")
            .to_owned();
        let model = lab::nn::Model::load(&name)?;
        lab::info(&format!("digits-app: model {name} loaded"));
        MODEL.with(|m| *m.borrow_mut() = Some(model));
        Ok(())
    }

    fn predict(inputs: Vec<Value>) -> lab::Result<Vec<Value>> {
        let mut pixels = Vec::with_capacity(inputs.len() * PIXELS);
        for (i, input) in inputs.iter().enumerate() {
            let row = input["pixels"]
                .as_array()
                .filter(|a| a.len() == PIXELS)
                .ok_or_else(|| {
                    lab::Error::msg(format!(
                        "input {i}: expected {{\"pixels\": [{PIXELS} numbers]}}"
                    ))
                })?;
            for v in row {
                pixels.push(
                    v.as_f64().ok_or_else(|| {
                        lab::Error::msg(format!("input {i}: pixels must be numbers"))
                    })? as f32,
                );
            }
        }
        MODEL.with(|m| {
            let m = m.borrow();
            let model = m.as_ref().ok_or_else(|| lab::Error::msg("predict before load"))?;
            let out = model.run_f32("input", &[inputs.len() as u32, PIXELS as u32], &pixels)?;
            let labels = out.get("label")?.to_i64()?;
            let probabilities = out.get("probabilities")?.to_f32()?;
            Ok(labels
                .iter()
                .enumerate()
                .map(|(i, l)| json!({"label": l, "confidence": probabilities[i * CLASSES + (*l).clamp(0, 9) as usize]}))
                .collect())
        })
    }
}
