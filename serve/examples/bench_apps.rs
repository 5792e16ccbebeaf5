//! Apps benchmark (issue 17, item 6): predictions per second and latency of
//! the demo's digit classifier (a Rust predictor running an ONNX MLP through
//! wasi:nn) deployed on the real `labhost serve` binary, against the same
//! computation — the same model run by the same engine
//! (`labhost::nn::onnx`), the same JSON in and out — in a plain native axum
//! handler, in the same run, under the same load: CLIENTS concurrent
//! clients, one image per request, both sides serving 2 at a time.
//!
//! ```sh
//! scripts/build-models.sh && scripts/build-guests.sh rust && cargo build -p labhost-cli
//! cargo run -p labhost-serve --example bench_apps [-- SECONDS CLIENTS]
//! ```

#[path = "../../host/examples/support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::post;
use axum::{Json, Router};
use labhost::nn::{onnx::Model, Tensor};
use serde_json::{json, Value};
use support::{machine, percentile};

const INSTANCES: usize = 2;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let seconds: u64 = args.first().map_or(Ok(10), |s| s.parse())?;
    let clients: usize = args.get(1).map_or(Ok(8), |s| s.parse())?;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    let bin = root.join("target").join(profile).join("labhost");
    let model_path = root.join("examples/models/build/digits-mlp.onnx");
    anyhow::ensure!(model_path.is_file(), "run scripts/build-models.sh first");
    let images: Vec<Value> =
        std::fs::read_to_string(root.join("examples/models/build/digits.jsonl"))?
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).map(|r| json!({"pixels": r["pixels"]})))
            .collect::<Result<_, _>>()?;
    let images = Arc::new(images);

    // labhost serve with the app deployed.
    let dir = tempfile::tempdir()?;
    let ws = dir.path().join("ws");
    let cli = |a: &[&str]| -> anyhow::Result<()> {
        let st = Command::new(&bin)
            .arg("--workspace")
            .arg(&ws)
            .args(a)
            .stdout(Stdio::null())
            .status()?;
        anyhow::ensure!(st.success(), "labhost {a:?} failed");
        Ok(())
    };
    cli(&["models", "add", "digits-mlp", model_path.to_str().unwrap()])?;
    cli(&[
        "config",
        "set",
        "paths.plugins",
        root.join("guests/dist/rust").to_str().unwrap(),
    ])?;
    let mut child = Command::new(&bin)
        .arg("--workspace")
        .arg(&ws)
        .args(["serve", "--bind", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line)?;
    let base = line
        .trim()
        .trim_start_matches("labhost serve: listening on ")
        .to_owned();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let http = reqwest::Client::new();
    let result = rt.block_on(async {
        let r = http
            .post(format!("{base}/api/v1/apps"))
            .json(
                &json!({"name": "digits", "plugin": "digits_app", "models": ["digits-mlp"],
                          "instances": INSTANCES, "queue": 4096, "timeout": "30s"}),
            )
            .send()
            .await?;
        anyhow::ensure!(r.status().is_success(), "deploy: {}", r.text().await?);

        // The anchor: the same model and JSON in a plain axum handler.
        let model = Arc::new(
            Model::load(&std::fs::read(&model_path)?).map_err(|e| anyhow::anyhow!("{e}"))?,
        );
        let permits = Arc::new(tokio::sync::Semaphore::new(INSTANCES));
        let app = Router::new().route(
            "/predict",
            post(move |Json(body): Json<Value>| {
                let model = model.clone();
                let permits = permits.clone();
                async move {
                    let _permit = permits.acquire_owned().await.expect("open semaphore");
                    let out = tokio::task::spawn_blocking(move || native_predict(&model, &body))
                        .await
                        .expect("no panic");
                    Json(out)
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let native = format!("http://{}", listener.local_addr()?);
        tokio::spawn(async move { axum::serve(listener, app).await });

        let lab = load(
            &http,
            &format!("{base}/api/v1/apps/digits/predict"),
            &images,
            clients,
            seconds,
        )
        .await?;
        let nat = load(
            &http,
            &format!("{native}/predict"),
            &images,
            clients,
            seconds,
        )
        .await?;
        Ok::<_, anyhow::Error>((lab, nat))
    });
    let _ = child.kill();
    let ((lab_n, mut lab_lat), (nat_n, mut nat_lat)) = result?;
    let rate = |n: usize| n as f64 / seconds as f64;
    println!("apps: the digits MLP, 1 image per request, {clients} clients, {seconds} s per side, {INSTANCES} at a time ({})", machine());
    println!("| | predictions/s | p50 | p99 |");
    println!("|---|---|---|---|");
    println!(
        "| labhost serve, app (wasm predictor, wasi:nn) | {:.0} | {:.2} ms | {:.2} ms |",
        rate(lab_n),
        percentile(&mut lab_lat, 0.5),
        percentile(&mut lab_lat, 0.99)
    );
    println!(
        "| plain axum handler, same model and engine | {:.0} | {:.2} ms | {:.2} ms |",
        rate(nat_n),
        percentile(&mut nat_lat, 0.5),
        percentile(&mut nat_lat, 0.99)
    );
    println!(
        "| ratio labhost/native | **{:.2}** | | p99 ×{:.2} |",
        rate(lab_n) / rate(nat_n),
        percentile(&mut lab_lat, 0.99) / percentile(&mut nat_lat, 0.99)
    );
    Ok(())
}

/// The handler's work: JSON pixels → one inference → JSON outputs, as the
/// predictor does it.
fn native_predict(model: &Model, body: &Value) -> Value {
    let inputs = body["inputs"].as_array().cloned().unwrap_or_default();
    let pixels: Vec<f32> = inputs
        .iter()
        .flat_map(|i| i["pixels"].as_array().cloned().unwrap_or_default())
        .map(|v| v.as_f64().unwrap_or(0.0) as f32)
        .collect();
    let t = Tensor::f32(&[inputs.len() as u32, 64], &pixels);
    let out = model.run(vec![("input".into(), t)]).expect("inference");
    let labels = out[0].1.to_i64().expect("int64 labels");
    let probs = out[1].1.to_f32().expect("float32 probabilities");
    let outputs: Vec<Value> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| json!({"label": l, "confidence": probs[i * 10 + (*l).clamp(0, 9) as usize]}))
        .collect();
    json!({"outputs": outputs})
}

/// `clients` loops posting one image each for `seconds`: requests answered
/// and each one's latency in ms.
async fn load(
    http: &reqwest::Client,
    url: &str,
    images: &Arc<Vec<Value>>,
    clients: usize,
    seconds: u64,
) -> anyhow::Result<(usize, Vec<f64>)> {
    let until = Instant::now() + Duration::from_secs(seconds);
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let (http, url, images) = (http.clone(), url.to_owned(), images.clone());
            tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut i = c;
                while Instant::now() < until {
                    let t = Instant::now();
                    let r = http
                        .post(&url)
                        .json(&json!({"inputs": [images[i % images.len()]]}))
                        .send()
                        .await?;
                    anyhow::ensure!(r.status().is_success(), "{url}: {}", r.status());
                    let _: Value = r.json().await?;
                    lat.push(t.elapsed().as_secs_f64() * 1e3);
                    i += clients;
                }
                Ok(lat)
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    Ok((all.len(), all))
}
