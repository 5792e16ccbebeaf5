//! The conformance probe: one plugin whose `scenario` parameter picks what
//! it does, so tests can drive every lab call and every misbehaviour (trap,
//! error, no finish, escapes, limits) through the real host. Each outcome
//! it observes is logged as `probe: <key> <value>` for tests to assert on.

use lab::{Describe, Error, EvalRow, Kind, LabError, ModelDesc, ParamType, Plugin, TableFormat};
use serde_json::json;

#[path = "../../cpu_kernel.rs"]
mod cpu_kernel;

struct Probe;

fn report(key: &str, value: impl std::fmt::Display) {
    lab::info(&format!("probe: {key} {value}"));
}

/// Name of the lab error variant, or `ok`.
fn outcome<T>(r: &lab::Result<T>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(Error::Lab(e)) => match e {
            LabError::InvalidArgument(_) => "invalid-argument",
            LabError::Denied(_) => "denied",
            LabError::NotFound(_) => "not-found",
            LabError::LimitExceeded(_) => "limit-exceeded",
            LabError::Io(_) => "io",
            #[cfg(not(feature = "api-0-1"))]
            LabError::Network(_) => "network",
        }
        .into(),
        Err(Error::Other(m)) => format!("other({m})"),
    }
}

fn text(name: &str) -> String {
    lab::config()
        .get(name)
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_owned()
}

impl Plugin for Probe {
    fn describe() -> Describe {
        Describe::new(
            "probe",
            Kind::Other,
            "Conformance probe: exercises the lab API per scenario",
        )
        .param(
            "scenario",
            ParamType::Text,
            Some("\"all-api\""),
            "What to do",
        )
        .param(
            "count",
            ParamType::Integer,
            Some("3"),
            "A number some scenarios use",
        )
        .param("ratio", ParamType::Number, Some("0.5"), "A number")
        .param("flag", ParamType::Boolean, Some("false"), "A boolean")
        .param("extra", ParamType::Json, Some("{}"), "Free JSON")
        .param(
            "target",
            ParamType::Text,
            Some("\"\""),
            "A path, id or name some scenarios use",
        )
    }

    fn run() -> lab::Result<()> {
        let scenario = text("scenario");
        match scenario.as_str() {
            "all-api" => all_api(),
            "open" => open(),
            "bad-names" => bad_names(),
            "escape" => escape(),
            "read" => read(),
            "trap" => panic!("probe panicked on purpose"),
            "return-error" => Err(Error::msg("probe returned an error on purpose")),
            "no-finish" => Ok(()),
            "fail" => lab::fail("probe failed on purpose"),
            "finish-twice" => {
                lab::finish("first finish", &[("first", 1.0)])?;
                report("second-finish", outcome(&lab::finish("second finish", &[])));
                Ok(())
            }
            "cooperative" => {
                // Wait for should-stop, then end by itself.
                while !lab::should_stop() {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                lab::fail("stopped on request")
            }
            "checkpoint-wait" => {
                // Resumed: done, saying from where. Else save a checkpoint
                // and wait for should-stop (a job to kill or cancel).
                if let Some(r) = lab::resume_from() {
                    let content = std::fs::read_to_string(&r.path)?;
                    return lab::finish(
                        &format!("resumed from {} of {}: {content}", r.name, r.job_id),
                        &[],
                    );
                }
                let ck = lab::work_dir().join("step.txt");
                std::fs::write(&ck, "step 1 done")?;
                lab::save_checkpoint(&ck, "step-1")?;
                lab::info("checkpoint step-1 saved; waiting for should-stop");
                while !lab::should_stop() {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                lab::fail("stopped on request")
            }
            "spin" => loop {
                std::hint::black_box(0u64);
            },
            "alloc" => {
                let mib = lab::config()["count"].as_u64().unwrap_or(0) as usize;
                let mut chunks = Vec::new();
                for _ in 0..mib {
                    chunks.push(vec![1u8; 1 << 20]);
                }
                lab::finish(&format!("allocated {} MiB", chunks.len()), &[])
            }
            "stdio" => {
                println!("hello from stdout");
                eprintln!("hello from stderr");
                print!("unterminated");
                lab::finish("printed", &[])
            }
            "log-flood" => {
                let line = "x".repeat(1000);
                for _ in 0..lab::config()["count"].as_u64().unwrap_or(0) {
                    lab::info(&line);
                }
                lab::finish("flooded", &[])
            }
            "cpu" => {
                // `count` SGD steps of the benchmark's CPU kernel, timed inside.
                let steps = lab::config()["count"].as_u64().unwrap_or(0);
                let start = std::time::Instant::now();
                let loss = cpu_kernel::train(steps, 4096, 64);
                report("elapsed-ns", start.elapsed().as_nanos());
                report("loss", loss);
                lab::finish("cpu done", &[("loss", loss)])
            }
            "save-big" => {
                // Save the file at `target` as checkpoint `big`, timed inside.
                let start = std::time::Instant::now();
                lab::save_checkpoint(text("target"), "big")?;
                report("elapsed-ns", start.elapsed().as_nanos());
                lab::finish("saved", &[])
            }
            "bench" => bench(),
            "workload" => workload(),
            "flaky" => flaky(),
            #[cfg(not(feature = "api-0-1"))]
            "nn" => nn(),
            #[cfg(not(feature = "api-0-1"))]
            "nn-bench" => nn_bench(),
            #[cfg(not(feature = "api-0-1"))]
            "nn-big" => {
                // A tensor of `count` MiB: counted against the memory limit
                // (a constructor cannot return an error: over it, a trap).
                let bytes =
                    vec![0u8; (lab::config()["count"].as_u64().unwrap_or(1) as usize) << 20];
                let t = lab::nn::Tensor {
                    name: "x".into(),
                    dims: vec![(bytes.len() / 4) as u32],
                    ty: lab::nn::TensorType::Fp32,
                    data: bytes,
                };
                let model = lab::nn::Model::load(&text("target"))?;
                let r = model.run(&[t]);
                report(
                    "nn_big",
                    r.err().map_or("ok", |e| lab::nn::code_name(e.code)),
                );
                lab::finish("nn-big done", &[])
            }
            #[cfg(not(feature = "api-0-1"))]
            "api-0-2" => api_0_2(),
            other => Err(Error::msg(format!("unknown scenario `{other}`"))),
        }
    }
}

/// The calls lab:api@0.2.0 added, each reported (the same in every
/// language's probe).
#[cfg(not(feature = "api-0-1"))]
fn api_0_2() -> lab::Result<()> {
    report("meta0", lab::metadata_text());
    report(
        "meta1",
        lab::update_metadata_text(r#"{"a":1,"b":{"c":2}}"#)?,
    );
    report("meta2", lab::update_metadata_text(r#"{"b":null,"d":"x"}"#)?);
    lab::reset_metadata(&json!({"r": true}))?;
    report("meta3", lab::metadata_text());
    report("meta-err", outcome(&lab::update_metadata_text("[1]")));
    lab::update_status("preparing", Some(&json!({"phase": 1})), None)?;
    report(
        "status",
        outcome(&lab::update_status("training", None, Some("warming up"))),
    );
    report("status-err", outcome(&lab::update_status("", None, None)));
    report(
        "report",
        outcome(&lab::report(
            50.0,
            Some("half"),
            &[("loss", 0.5), ("acc", 0.75)],
            Some(7),
        )),
    );
    report("report-err", outcome(&lab::report(150.0, None, &[], None)));
    let secret = lab::secret("PROBE_SECRET")?;
    report("secret-len", secret.len());
    lab::info(&format!("probe-secret {secret}"));
    report("secret-err", outcome(&lab::secret("NOT_GRANTED")));
    let resp = lab::http::Request::post(&text("target"))
        .header("content-type", "application/json")
        .header("x-probe", "1")
        .body(r#"{"hello":"world"}"#)
        .send()?;
    report("http-status", resp.status);
    report("http-body", resp.text());
    report(
        "http-denied",
        outcome(&lab::http::Request::get("http://example.invalid/").send()),
    );
    lab::save_dataset(
        "qa",
        &[json!({"q": "1"}), json!({"q": "2"})],
        None,
        json!({}),
    )?;
    let d = lab::get_dataset("qa")?;
    report(
        "dataset-get",
        format!(
            "{} {}",
            d.id,
            d.rows.map_or("none".into(), |r| r.to_string())
        ),
    );
    report("model-get-err", outcome(&lab::get_model("no-such-model")));
    lab::finish("api-0-2 done", &[])
}

/// Fail until the `count`-th attempt: attempts are counted in the file
/// `target` (in a writable granted dir), so retries and resumes can be
/// tested without timing. Saves a checkpoint at each attempt.
fn flaky() -> lab::Result<()> {
    let counter = text("target");
    let needed = lab::config()["count"].as_u64().unwrap_or(1);
    let seen: u64 = std::fs::read_to_string(&counter)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    let attempt = seen + 1;
    std::fs::write(&counter, attempt.to_string())?;
    let ck = lab::work_dir().join("attempt.txt");
    std::fs::write(&ck, attempt.to_string())?;
    lab::save_checkpoint(&ck, &format!("attempt-{attempt}"))?;
    if attempt < needed {
        return lab::fail(&format!("flaky: attempt {attempt} of {needed}"));
    }
    lab::finish(
        &format!("succeeded at attempt {attempt}"),
        &[("attempt", attempt as f64)],
    )
}

/// Every lab call, with the results reported.
fn all_api() -> lab::Result<()> {
    for level in [
        lab::Level::Trace,
        lab::Level::Debug,
        lab::Level::Info,
        lab::Level::Warn,
        lab::Level::Error,
    ] {
        lab::log(level, &format!("level {level:?}"));
    }
    let config = lab::config();
    report("config", &config);
    let info = lab::job_info();
    report("job-id", &info.job_id);
    report("experiment", &info.experiment);
    report("work-dir", &info.work_dir);
    lab::progress_stage(10.0, "writing")?;
    report("progress-over-100", outcome(&lab::progress(150.0)));
    report("progress-nan", outcome(&lab::progress(f32::NAN)));
    for step in 0..3u64 {
        lab::metric("loss", 1.0 / (step + 1) as f64, Some(step))?;
    }
    lab::metric("lr", 0.1, None)?;
    report(
        "metric-nan",
        outcome(&lab::metric("loss", f64::NAN, Some(9))),
    );

    let work = lab::work_dir();
    std::fs::write(work.join("hello.txt"), "hello artifact\n")?;
    std::fs::create_dir_all(work.join("bundle/sub"))?;
    std::fs::write(work.join("bundle/a.txt"), "a")?;
    std::fs::write(work.join("bundle/sub/b.txt"), "bb")?;
    let a = lab::save_artifact("/work/hello.txt", None)?;
    report("artifact", format!("{} {} {}", a.name, a.size, a.digest));
    let b = lab::save_artifact("bundle", Some("bundle-dir"))?;
    report(
        "artifact",
        format!("{} {} {} files={}", b.name, b.size, b.digest, b.files),
    );
    report(
        "artifact-dup",
        outcome(&lab::save_artifact("/work/hello.txt", None)),
    );
    report(
        "artifact-missing",
        outcome(&lab::save_artifact("/work/nope.txt", None)),
    );
    report("artifacts", lab::artifacts().len());
    lab::progress_stage(40.0, "checkpoints")?;

    std::fs::write(work.join("ckpt.json"), json!({"step": 7}).to_string())?;
    lab::save_checkpoint("/work/ckpt.json", "step-7")?;
    report(
        "checkpoints",
        lab::checkpoints()
            .iter()
            .map(|c| c.name.clone())
            .collect::<Vec<_>>()
            .join(","),
    );
    match lab::resume_from() {
        Some(r) => {
            let content = std::fs::read_to_string(&r.path)?;
            report("resume", format!("{} {} {}", r.job_id, r.name, content));
            report(
                "resume-write",
                if std::fs::write(&r.path, "x").is_err() {
                    "denied"
                } else {
                    "allowed"
                },
            );
        }
        None => report("resume", "none"),
    }

    std::fs::create_dir_all(work.join("model"))?;
    std::fs::write(work.join("model/weights.bin"), [1u8, 2, 3, 4])?;
    let m = lab::save_model(
        "/work/model",
        "probe-model",
        ModelDesc {
            architecture: Some("probe-arch"),
            pipeline_tag: Some("text-classification"),
            parent_model: Some("base-model"),
            metadata: Some(json!({"layers": 2})),
        },
    )?;
    report(
        "model",
        format!("{} {} files={}", m.id, m.name, m.files.files),
    );
    report("models", lab::models().len());
    report(
        "model-bad-metadata",
        outcome(&save_model_raw_metadata("[1,2]")),
    );

    let rows = vec![
        json!({"text": "a", "label": 1}),
        json!({"text": "b", "label": 0}),
    ];
    let d = lab::save_dataset(
        "probe-rows",
        &rows,
        Some("two rows"),
        json!({"source": "probe"}),
    )?;
    report("dataset", format!("{} {} rows={:?}", d.id, d.name, d.rows));
    report(
        "dataset-not-object",
        outcome(&lab::save_dataset(
            "probe-bad",
            &[json!([1])],
            None,
            json!({}),
        )),
    );
    std::fs::write(work.join("data.csv"), "x,y\n1,2\n")?;
    let f = lab::save_dataset_file("/work/data.csv", "probe-file", None, json!({}))?;
    report("dataset-file", format!("{} rows={:?}", f.id, f.rows));
    report("datasets", lab::datasets().len());
    report("open-ungranted", outcome(&lab::open_dataset("probe-rows")));

    let eval_rows = vec![
        EvalRow {
            input: "a".into(),
            output: "1".into(),
            expected: Some("1".into()),
            score: 1.0,
            extra: json!({"p": 0.9}).to_string(),
        },
        EvalRow {
            input: "b, with comma".into(),
            output: "1".into(),
            expected: Some("0".into()),
            score: 0.0,
            extra: json!({"p": 0.6}).to_string(),
        },
        EvalRow {
            input: "c".into(),
            output: "0".into(),
            expected: None,
            score: 0.5,
            extra: "{}".into(),
        },
    ];
    let s = lab::save_eval("probe-eval", &eval_rows, TableFormat::Csv)?;
    report(
        "eval",
        format!("{} count={} mean={}", s.name, s.count, s.mean_score),
    );
    let s = lab::save_eval("probe-eval-jsonl", &eval_rows, TableFormat::Jsonl)?;
    report(
        "eval",
        format!("{} count={} mean={}", s.name, s.count, s.mean_score),
    );
    report("should-stop", lab::should_stop());
    lab::progress_stage(100.0, "done")?;
    lab::finish("all calls made", &[("calls", 20.0), ("mean", 0.5)])
}

/// `models.save` with metadata that is not a JSON object.
fn save_model_raw_metadata(metadata: &str) -> lab::Result<lab::ModelInfo> {
    let meta = lab::ModelMeta {
        architecture: None,
        pipeline_tag: None,
        parent_model: None,
        metadata: metadata.into(),
    };
    lab::bindings::lab::api::models::save("/work/model", "probe-model-2", &meta).map_err(Error::Lab)
}

/// Open the granted dataset/model named by `target` and report a file.
fn open() -> lab::Result<()> {
    let target = text("target");
    let (kind, id) = target
        .split_once(':')
        .ok_or_else(|| Error::msg("target must be dataset:ID or model:ID"))?;
    let path = match kind {
        "dataset" => lab::open_dataset(id)?,
        "model" => lab::open_model(id)?,
        _ => return Err(Error::msg("target must be dataset:ID or model:ID")),
    };
    report("path", path.display());
    let mut names: Vec<String> = std::fs::read_dir(&path)?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    names.sort();
    report("files", names.join(","));
    report(
        "write",
        if std::fs::write(path.join("new.txt"), "x").is_err() {
            "denied"
        } else {
            "allowed"
        },
    );
    lab::finish("opened", &[])
}

/// Names that must be refused with invalid-argument.
fn bad_names() -> lab::Result<()> {
    std::fs::write(lab::work_dir().join("f.txt"), "x")?;
    let long = "n".repeat(300);
    for name in [
        "../x",
        "a/b",
        "",
        "nul\0byte",
        "..",
        ".",
        long.as_str(),
        "/abs",
    ] {
        report(
            &format!("artifact-name {name:?}"),
            outcome(&lab::save_artifact("/work/f.txt", Some(name))),
        );
    }
    report(
        "checkpoint-name",
        outcome(&lab::save_checkpoint("/work/f.txt", "../up")),
    );
    report(
        "model-name",
        outcome(&lab::save_model("/work/f.txt", "a/b", ModelDesc::default())),
    );
    report(
        "dataset-name",
        outcome(&lab::save_dataset("..", &[json!({})], None, json!({}))),
    );
    report(
        "eval-name",
        outcome(&lab::save_eval("x/y", &[], TableFormat::Csv)),
    );
    report("metric-name", outcome(&lab::metric("", 1.0, None)));
    report("artifacts", lab::artifacts().len());
    lab::finish("bad names tried", &[])
}

/// Paths that leave the grants, directly or through symlinks.
fn escape() -> lab::Result<()> {
    let work = lab::work_dir();
    report(
        "etc-passwd",
        outcome(&lab::save_artifact("/etc/passwd", None)),
    );
    report(
        "dotdot",
        outcome(&lab::save_artifact("/work/../../etc/passwd", None)),
    );
    report(
        "relative-dotdot",
        outcome(&lab::save_artifact("../etc/passwd", None)),
    );
    report(
        "open-etc",
        if std::fs::read("/etc/passwd").is_ok() {
            "readable"
        } else {
            "unreadable"
        },
    );
    // Symlinks out of a grant (`target` is a granted directory holding
    // `link` -> /etc/passwd and `dir/up` -> /etc): never followed.
    let target = text("target");
    if !target.is_empty() {
        report(
            "symlink-file",
            outcome(&lab::save_artifact(format!("{target}/link"), Some("link"))),
        );
        report(
            "symlink-in-dir",
            outcome(&lab::save_artifact(format!("{target}/dir"), Some("dir"))),
        );
        report(
            "symlink-read",
            if std::fs::read(format!("{target}/link")).is_ok() {
                "readable"
            } else {
                "unreadable"
            },
        );
    }
    let _ = work;
    report("artifacts", lab::artifacts().len());
    lab::finish("escapes tried", &[])
}

/// Read a file at `target` and report its content.
fn read() -> lab::Result<()> {
    let target = text("target");
    match std::fs::read_to_string(&target) {
        Ok(c) => report("content", c.trim()),
        Err(e) => report("read-error", e.kind()),
    }
    report(
        "write",
        if std::fs::write(format!("{target}.new"), "x").is_ok() {
            "allowed"
        } else {
            "denied"
        },
    );
    lab::finish("read", &[])
}

/// `count` calls of the lab call named by `target`, timed inside the guest
/// (so instantiation is not counted); reports `elapsed-ns`.
fn bench() -> lab::Result<()> {
    let n = lab::config()["count"].as_u64().unwrap_or(0);
    let op = text("target");
    let kib = vec![b'x'; 1024];
    if op == "artifact" {
        for i in 0..n {
            std::fs::write(lab::work_dir().join(format!("a{i}")), &kib)?;
        }
    }
    let start = std::time::Instant::now();
    for i in 0..n {
        match op.as_str() {
            "log" => lab::info("a log line of typical length for a training loop"),
            "progress" => lab::progress((i % 100) as f32)?,
            "metric" => lab::metric("loss", 1.0 / (i + 1) as f64, Some(i))?,
            "artifact" => {
                lab::save_artifact(format!("/work/a{i}"), None)?;
            }
            other => return Err(Error::msg(format!("unknown bench op `{other}`"))),
        }
    }
    report("elapsed-ns", start.elapsed().as_nanos());
    lab::finish("bench done", &[])
}

/// The Transformer-Lab-shaped workload of issue 5: 10,000 logs, 200
/// progress updates, 100 artifacts of 1 KiB, 10 checkpoints, a model, a
/// dataset, an eval table and finish.
fn workload() -> lab::Result<()> {
    let work = lab::work_dir();
    for i in 0..10_000u32 {
        lab::info(&format!("step {i}: loss {:.4}", 1.0 / f64::from(i + 1)));
        if i % 50 == 0 {
            lab::progress(i as f32 / 100.0)?;
        }
    }
    let kib = vec![b'x'; 1024];
    for i in 0..100 {
        let p = work.join(format!("artifact-{i}.bin"));
        std::fs::write(&p, &kib)?;
        lab::save_artifact(&p, None)?;
    }
    for i in 0..10 {
        let p = work.join(format!("ckpt-{i}.bin"));
        std::fs::write(&p, &kib)?;
        lab::save_checkpoint(&p, &format!("ckpt-{i}"))?;
    }
    std::fs::create_dir_all(work.join("model"))?;
    std::fs::write(work.join("model/weights.bin"), vec![0u8; 64 << 10])?;
    lab::save_model("/work/model", "bench-model", ModelDesc::default())?;
    let rows: Vec<_> = (0..100)
        .map(|i| json!({"text": format!("row {i}"), "label": i % 2}))
        .collect();
    lab::save_dataset("bench-rows", &rows, None, json!({}))?;
    let eval_rows: Vec<EvalRow> = (0..100)
        .map(|i| EvalRow {
            input: format!("in {i}"),
            output: "1".into(),
            expected: Some("1".into()),
            score: 1.0,
            extra: "{}".into(),
        })
        .collect();
    lab::save_eval("bench-eval", &eval_rows, TableFormat::Csv)?;
    lab::finish("workload done", &[("steps", 10_000.0)])
}

lab::export_plugin!(Probe);

/// `nn`: inference through wasi:nn on the granted model `target` (the
/// host's test model: scores = x·W + B, label = argmax), then the refusals.
#[cfg(not(feature = "api-0-1"))]
fn nn() -> lab::Result<()> {
    use lab::bindings::wasi::nn::graph;
    use lab::nn::{code_name, Model, Tensor};
    let model = Model::load(&text("target"))?;
    let out = model.run(&[Tensor::f32("x", &[2, 3], &[1.0, 2.0, 3.0, 0.0, 0.0, -4.0])])?;
    let shapes: Vec<String> = out
        .0
        .iter()
        .map(|t| {
            let dims: Vec<String> = t.dims.iter().map(u32::to_string).collect();
            format!("{}:{}:{}", t.name, lab::nn::type_name(t.ty), dims.join("x"))
        })
        .collect();
    report("nn_outputs", shapes.join(","));
    let scores: Vec<String> = out
        .get("scores")?
        .to_f32()?
        .iter()
        .map(f32::to_string)
        .collect();
    report("nn_scores", scores.join(","));
    let labels: Vec<String> = out
        .get("label")?
        .to_i64()?
        .iter()
        .map(i64::to_string)
        .collect();
    report("nn_labels", labels.join(","));
    let code =
        |r: Result<lab::nn::Outputs, lab::nn::NnError>| r.err().map_or("ok", |e| code_name(e.code));
    report(
        "nn_bad_dims",
        code(model.run(&[Tensor::f32("x", &[1, 4], &[0.0; 4])])),
    );
    for (key, name) in [
        ("nn_malformed", "garbage"),
        ("nn_ungranted", "ungranted"),
        ("nn_missing", "nosuch"),
    ] {
        report(
            key,
            Model::load(name).err().map_or("ok", |e| code_name(e.code)),
        );
    }
    let bytes = graph::load(
        &[vec![1, 2, 3]],
        graph::GraphEncoding::Onnx,
        graph::ExecutionTarget::Cpu,
    );
    report(
        "nn_load_bytes",
        bytes.err().map_or("ok", |e| code_name(e.code())),
    );
    lab::finish("nn done", &[])
}

/// `nn-bench`: `count` inferences of model `target` on one input
/// (`extra`: `{"input": NAME, "dims": [..]}`, values `(i % 17) as f32`),
/// timed inside the guest: reports `nn_bench_ns` (total) and a checksum of
/// the first output (so the host's run of the same model can be compared).
#[cfg(not(feature = "api-0-1"))]
fn nn_bench() -> lab::Result<()> {
    let cfg = lab::config();
    let count = cfg["count"].as_u64().unwrap_or(1);
    let input = cfg["extra"]["input"].as_str().unwrap_or("x").to_owned();
    let dims: Vec<u32> = cfg["extra"]["dims"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|d| d.as_u64())
                .map(|d| d as u32)
                .collect()
        })
        .unwrap_or_default();
    let n: usize = dims.iter().map(|d| *d as usize).product();
    let values: Vec<f32> = (0..n).map(|i| (i % 17) as f32).collect();
    let model = lab::nn::Model::load(&text("target"))?;
    let t = lab::nn::Tensor::f32(&input, &dims, &values);
    let started = std::time::Instant::now();
    let mut checksum = 0i64;
    for _ in 0..count {
        let out = model.run(std::slice::from_ref(&t))?;
        checksum = out.0[0].data.iter().map(|b| *b as i64).sum();
    }
    report("nn_bench_ns", started.elapsed().as_nanos());
    report("nn_checksum", checksum);
    lab::finish("nn-bench done", &[])
}
