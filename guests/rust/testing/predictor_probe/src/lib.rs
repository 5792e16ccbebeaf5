//! A predictor for the host's tests: each input says what to do.
//! `{"echo": V}` → V; `{"fail": "m"}` → the request fails with m;
//! `{"trap": true}` → panic (the instance is replaced); `{"sleep_ms": N}`
//! → sleeps N ms, then answers `"slept"`; `{"spin": true}` → computes
//! forever; `{"instance": true}` → an id of this instance (its load time).
//! Config `fail_load` (text): `load` fails with it.

use std::cell::Cell;

use serde_json::{json, Value};

pub struct PredictorProbe;

lab::export_predictor!(PredictorProbe);

thread_local! {
    static LOADED_AT: Cell<u128> = const { Cell::new(0) };
}

impl lab::Predictor for PredictorProbe {
    fn describe() -> lab::Describe {
        lab::Describe::new(
            "predictor-probe",
            lab::Kind::Other,
            "Test predictor: each input says what to do",
        )
        .param(
            "fail_load",
            lab::ParamType::Text,
            Some("\"\""),
            "If set, load fails with this message",
        )
    }

    fn load() -> lab::Result<()> {
        let fail = lab::config()["fail_load"].as_str().unwrap_or("").to_owned();
        if !fail.is_empty() {
            return Err(lab::Error::msg(fail));
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        LOADED_AT.with(|c| c.set(now));
        lab::info("predictor-probe loaded");
        Ok(())
    }

    fn predict(inputs: Vec<Value>) -> lab::Result<Vec<Value>> {
        let mut out = Vec::with_capacity(inputs.len());
        for input in inputs {
            if let Some(m) = input["fail"].as_str() {
                return Err(lab::Error::msg(m));
            }
            if input["trap"] == json!(true) {
                panic!("predictor-probe trapped on purpose");
            }
            if let Some(ms) = input["sleep_ms"].as_u64() {
                std::thread::sleep(std::time::Duration::from_millis(ms));
                out.push(json!("slept"));
                continue;
            }
            if input["spin"] == json!(true) {
                let mut x = 0u64;
                loop {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            }
            if input["instance"] == json!(true) {
                out.push(json!(LOADED_AT.with(|c| c.get()).to_string()));
                continue;
            }
            out.push(input["echo"].clone());
        }
        lab::metric("batch", out.len() as f64, None)?;
        Ok(out)
    }
}
