//! wasi:nn inference from a guest vs the same model run natively by the
//! same engine (tract, `labhost::nn::onnx`), side by side in one run.
//!
//! For each batch size, the Rust probe (`scenario = nn-bench`) runs N
//! inferences of the model on one input tensor, timed inside the guest
//! (tensor handed over, inference, outputs read back); then this process
//! runs the same model on the same input N times. Prints µs per inference
//! for both and the ratio native/guest (1.0 = no overhead), and checks the
//! outputs agree.
//!
//! ```sh
//! scripts/build-models.sh && scripts/build-guests.sh rust
//! cargo run --release -p labhost --example bench_nn -- examples/models/build/digits-mlp.onnx
//! ```

use std::time::Instant;

use anyhow::Context;
use labhost::nn::{onnx::Model, Tensor};
use labhost::store::import::ModelImport;
use labhost::{Host, JobSpec, JobStatus, Workspace};

const INPUT: &str = "input";
const FEATURES: u32 = 64;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let model_path = args.first().context("usage: bench_nn MODEL.onnx [N]")?;
    let n: u64 = args.get(1).map_or(Ok(2000), |s| s.parse()).context("N")?;
    let dir = tempfile::tempdir()?;
    let host = Host::new(Workspace::open(dir.path().join("ws"))?)?;
    let id = host
        .workspace()
        .add_model(ModelImport::new("bench-model", model_path))?
        .id;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let probe = host.load(&root.join("guests/dist/rust/probe.wasm"))?;
    let native = Model::load(&std::fs::read(model_path)?).map_err(|e| anyhow::anyhow!("{e}"))?;

    println!("wasi:nn inference, {n} runs per batch size ({model_path})");
    println!("| batch | guest through wasi:nn | native, same engine | ratio native/guest |");
    println!("|---|---|---|---|");
    for batch in [1u32, 16, 64] {
        // The guest.
        let mut spec = JobSpec::new(probe.clone());
        spec.config = serde_json::from_value(serde_json::json!({
            "scenario": "nn-bench", "target": id, "count": n,
            "extra": {"input": INPUT, "dims": [batch, FEATURES]},
        }))?;
        spec.sandbox.grants.models = vec![id.clone()];
        let rec = host.run(spec).await?;
        anyhow::ensure!(
            rec.status == JobStatus::Complete,
            "guest job ended {}: {:?}",
            rec.status,
            rec.message
        );
        let log = std::fs::read_to_string(
            host.workspace()
                .job_paths(&rec.experiment, &rec.id)
                .dir
                .join("output.log"),
        )?;
        let report = |key: &str| -> anyhow::Result<i64> {
            log.lines()
                .find_map(|l| {
                    l.split_once(&format!("probe: {key} "))
                        .map(|(_, v)| v.trim().to_owned())
                })
                .context(key.to_owned())?
                .parse::<i64>()
                .context("a number")
        };
        let guest_ns = report("nn_bench_ns")? as f64;
        let guest_sum = report("nn_checksum")?;

        // The same model, input and count, natively.
        let len = (batch * FEATURES) as usize;
        let values: Vec<f32> = (0..len).map(|i| (i % 17) as f32).collect();
        let t = Tensor::f32(&[batch, FEATURES], &values);
        let started = Instant::now();
        let mut sum = 0i64;
        for _ in 0..n {
            let out = native
                .run(vec![(INPUT.into(), t.clone())])
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            sum = out[0].1.data.iter().map(|b| *b as i64).sum();
        }
        let native_ns = started.elapsed().as_nanos() as f64;
        anyhow::ensure!(
            sum == guest_sum,
            "outputs differ: guest checksum {guest_sum}, native {sum}"
        );
        println!(
            "| {batch} | {:.1} µs | {:.1} µs | {:.2} |",
            guest_ns / n as f64 / 1e3,
            native_ns / n as f64 / 1e3,
            native_ns / guest_ns
        );
    }
    Ok(())
}
