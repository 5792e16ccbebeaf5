//! Apps on `labhost serve`: predictor plugins deployed as warm pools and
//! called over real HTTP on 127.0.0.1 — the demo's digit classifier (a
//! real network through wasi:nn) sync, async and with feedback; and the
//! test predictor for a trap, a timeout, overload (429) and refusals.

use std::time::{Duration, Instant};

use labhost_tests::{repo_root, stderr, stdout, Lab, Server};
use reqwest::blocking::Client;
use reqwest::StatusCode;
use serde_json::{json, Value};

fn client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// A lab whose `paths.plugins` is the built Rust guests.
fn lab() -> Lab {
    let lab = Lab::new();
    let dist = repo_root().join("guests/dist/rust");
    let out = lab.cli(&["config", "set", "paths.plugins", dist.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    lab
}

fn json_of(resp: reqwest::blocking::Response) -> (StatusCode, Value) {
    let status = resp.status();
    let text = resp.text().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn post(s: &Server, path: &str, body: Value) -> (StatusCode, Value) {
    json_of(client().post(s.url(path)).json(&body).send().unwrap())
}

fn get(s: &Server, path: &str) -> (StatusCode, Value) {
    json_of(client().get(s.url(path)).send().unwrap())
}

fn deploy(s: &Server, body: Value) -> Value {
    let (status, v) = post(s, "/api/v1/apps", body);
    assert_eq!(status, StatusCode::CREATED, "{v}\n{}", s.log());
    v
}

fn job(lab: &Lab, id: &str) -> labhost::JobRecord {
    lab.ws().find_job(id).unwrap().0
}

#[test]
fn a_model_backed_app_predicts_sync_and_async_and_keeps_feedback_as_a_dataset() {
    let build = repo_root().join("examples/models/build");
    assert!(
        build.join("digits-mlp.onnx").is_file(),
        "run scripts/build-models.sh"
    );
    let lab = lab();
    let model = build.join("digits-mlp.onnx");
    assert!(lab
        .cli(&["models", "add", "digits-mlp", model.to_str().unwrap()])
        .status
        .success());
    let rows: Vec<Value> = std::fs::read_to_string(build.join("digits.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|r: &Value| r["split"] == "test")
        .collect();
    let expected: Value =
        serde_json::from_slice(&std::fs::read(build.join("digits.json")).unwrap()).unwrap();
    let s = Server::start(&lab);
    let app = deploy(
        &s,
        json!({"name": "digits", "plugin": "digits_app", "models": ["digits-mlp"], "instances": 2}),
    );
    assert_eq!(app["pool"].as_array().unwrap().len(), 2);
    assert!(
        app["pool"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["state"] == "ready"),
        "{app}"
    );

    // Synchronous: the 450 test images in one batch, one output each, in
    // order, as right as scikit-learn's own run of the network (float32
    // kernels may flip one near-tie).
    let inputs: Vec<Value> = rows
        .iter()
        .map(|r| json!({"pixels": r["pixels"]}))
        .collect();
    let (status, v) = post(&s, "/api/v1/apps/digits/predict", json!({"inputs": inputs}));
    assert_eq!(status, StatusCode::OK, "{v}");
    let outputs = v["outputs"].as_array().unwrap();
    assert_eq!(outputs.len(), 450);
    let right = outputs
        .iter()
        .zip(&rows)
        .filter(|(o, r)| o["label"] == r["label"])
        .count();
    let sklearn = expected["sklearn_test_accuracy"].as_f64().unwrap();
    assert!(
        (right as f64 / 450.0 - sklearn).abs() <= 1.0 / 450.0 + 1e-12,
        "{right} of 450 right, scikit-learn {sklearn}"
    );
    assert!(outputs
        .iter()
        .all(|o| o["confidence"].as_f64().unwrap() > 0.0));

    // Asynchronous: an id at once, the same outputs later.
    let (status, v) = post(
        &s,
        "/api/v1/apps/digits/predictions",
        json!({"inputs": inputs[..3]}),
    );
    assert_eq!(
        (status, &v["status"]),
        (StatusCode::ACCEPTED, &json!("pending")),
        "{v}"
    );
    let id = v["id"].as_str().unwrap().to_owned();
    let done = loop {
        let (status, v) = get(&s, &format!("/api/v1/apps/digits/predictions/{id}"));
        assert_eq!(status, StatusCode::OK, "{v}");
        if v["status"] != "pending" {
            break v;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(done, json!({"status": "done", "outputs": outputs[..3]}));
    let (status, v) = get(&s, "/api/v1/apps/digits/predictions/nosuch");
    assert_eq!(
        (status, v["error"].as_str().unwrap()),
        (
            StatusCode::NOT_FOUND,
            "app `digits` has no prediction `nosuch`"
        )
    );

    // Feedback: a labelled dataset, one more version per request.
    let item = |i: usize| json!({"input": inputs[i], "output": outputs[i], "label": rows[i]["label"], "prediction": id});
    let (status, v) = post(
        &s,
        "/api/v1/apps/digits/feedback",
        json!({"items": [item(0), item(1)]}),
    );
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(
        (v["name"].as_str().unwrap(), v["rows"].as_u64().unwrap()),
        ("digits-feedback", 2)
    );
    let (status, v) = post(
        &s,
        "/api/v1/apps/digits/feedback",
        json!({"items": [item(2)]}),
    );
    assert_eq!(
        (status, v["rows"].as_u64().unwrap()),
        (StatusCode::CREATED, 3)
    );
    let out = lab.cli(&["datasets", "rows", "digits-feedback", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains(&rows[2]["label"].to_string()) && text.contains(&id),
        "{text}"
    );

    // The figures the API shows.
    let (_, v) = get(&s, "/api/v1/apps/digits");
    assert_eq!(
        (
            v["stats"]["requests_ok"].as_u64(),
            v["stats"]["predictions"].as_u64()
        ),
        (Some(2), Some(453)),
        "{v}"
    );
    assert!(v["stats"]["latency_p50_ms"].as_f64().unwrap() > 0.0);
    assert!(
        v["stats"]["latency_p99_ms"].as_f64().unwrap()
            >= v["stats"]["latency_p50_ms"].as_f64().unwrap()
    );
    let (_, list) = get(&s, "/api/v1/apps");
    assert_eq!(list.as_array().unwrap().len(), 1);

    // Undeploy: every instance job ends COMPLETE; the app is gone.
    let jobs: Vec<String> = v["pool"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["job"].as_str().unwrap().to_owned())
        .collect();
    let (status, _) = json_of(
        client()
            .delete(s.url("/api/v1/apps/digits"))
            .send()
            .unwrap(),
    );
    assert_eq!(status, StatusCode::OK);
    for j in &jobs {
        let rec = job(&lab, j);
        assert_eq!(rec.status, labhost::JobStatus::Complete);
        assert!(rec
            .message
            .unwrap()
            .starts_with("undeployed after answering "));
        assert_eq!(rec.metadata["app"], "digits");
    }
    let (status, v) = post(&s, "/api/v1/apps/digits/predict", json!({"inputs": [1]}));
    assert_eq!(
        (status, v["error"].as_str().unwrap()),
        (StatusCode::NOT_FOUND, "no app `digits`")
    );
}

/// The predictor_probe app: one instance, `queue` waiting requests.
fn probe_app(s: &Server, name: &str, queue: usize, timeout: &str) {
    deploy(
        s,
        json!({"name": name, "plugin": "predictor_probe", "instances": 1, "queue": queue, "timeout": timeout}),
    );
}

fn instance_id(s: &Server, app: &str) -> String {
    let (status, v) = post(
        s,
        &format!("/api/v1/apps/{app}/predict"),
        json!({"inputs": [{"instance": true}]}),
    );
    assert_eq!(status, StatusCode::OK, "{v}");
    v["outputs"][0].as_str().unwrap().to_owned()
}

#[test]
fn a_trapping_predictor_is_replaced_and_no_other_request_is_dropped() {
    let lab = lab();
    let s = Server::start(&lab);
    probe_app(&s, "p", 64, "30s");
    let before = instance_id(&s, "p");
    // A trap among eight echo requests sent at once.
    let base = s.base.clone();
    let threads: Vec<_> = (0..9)
        .map(|i| {
            let url = format!("{base}/api/v1/apps/p/predict");
            std::thread::spawn(move || {
                let input = if i == 4 {
                    json!({"trap": true})
                } else {
                    json!({"echo": i})
                };
                json_of(
                    client()
                        .post(url)
                        .json(&json!({"inputs": [input]}))
                        .send()
                        .unwrap(),
                )
            })
        })
        .collect();
    for (i, t) in threads.into_iter().enumerate() {
        let (status, v) = t.join().unwrap();
        if i == 4 {
            assert_eq!(status, StatusCode::BAD_GATEWAY, "{v}");
            assert_eq!(
                v["error"].as_str().unwrap(),
                "the predictor crashed (wasm trap: wasm `unreachable` instruction executed); its instance is being replaced"
            );
        } else {
            assert_eq!(
                (status, &v["outputs"]),
                (StatusCode::OK, &json!([i])),
                "{v}"
            );
        }
    }
    let after = instance_id(&s, "p");
    assert_ne!(before, after, "a new instance serves after the trap");
    let (_, v) = get(&s, "/api/v1/apps/p");
    assert_eq!(
        (
            v["stats"]["crashes"].as_u64(),
            v["pool"][0]["restarts"].as_u64()
        ),
        (Some(1), Some(1)),
        "{v}"
    );
    let ended = v["pool"][0]["last_end"].as_str().unwrap();
    assert!(ended.contains(" ended FAILED: "), "{ended}");
    // The trapped instance's job has the panic in its log.
    let trapped = ended.split_whitespace().nth(1).unwrap();
    let log = std::fs::read_to_string(lab.job_dir(&job(&lab, trapped)).join("output.log")).unwrap();
    assert!(log.contains("predictor-probe trapped on purpose"), "{log}");
}

#[test]
fn slow_predictors_time_out_and_a_full_queue_is_refused_with_429() {
    let lab = lab();
    let s = Server::start(&lab);
    probe_app(&s, "slow", 1, "1s");
    // A predictor waiting (sleep) and one computing (spin) are both
    // stopped at the timeout; the next request is served by a new instance.
    for input in [json!({"sleep_ms": 5000}), json!({"spin": true})] {
        let t = Instant::now();
        let (status, v) = post(&s, "/api/v1/apps/slow/predict", json!({"inputs": [input]}));
        assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{v}");
        assert_eq!(
            v["error"].as_str().unwrap(),
            "the prediction took longer than the app's timeout of 1s; its instance is being replaced"
        );
        assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
        let (status, v) = post(
            &s,
            "/api/v1/apps/slow/predict",
            json!({"inputs": [{"echo": "next"}]}),
        );
        assert_eq!(
            (status, &v["outputs"]),
            (StatusCode::OK, &json!(["next"])),
            "{v}"
        );
    }
    let (_, v) = get(&s, "/api/v1/apps/slow");
    assert_eq!(v["stats"]["timeouts"].as_u64(), Some(2), "{v}");

    // Overload: one request being served, one waiting; the third is 429.
    probe_app(&s, "busy", 1, "30s");
    let state = |key: &str| get(&s, "/api/v1/apps/busy").1[key].clone();
    let send = |ms: u64| {
        let url = s.url("/api/v1/apps/busy/predict");
        std::thread::spawn(move || {
            json_of(
                client()
                    .post(url)
                    .json(&json!({"inputs": [{"sleep_ms": ms}]}))
                    .send()
                    .unwrap(),
            )
        })
    };
    let first = send(1500);
    wait_until(|| state("serving") == json!(1) && state("queued") == json!(0));
    let second = send(10);
    wait_until(|| state("queued") == json!(1));
    let resp = client()
        .post(s.url("/api/v1/apps/busy/predict"))
        .json(&json!({"inputs": [{"echo": 3}]}))
        .send()
        .unwrap();
    assert_eq!(
        resp.headers()
            .get("retry-after")
            .map(|h| h.to_str().unwrap().to_owned()),
        Some("1".into())
    );
    let (status, v) = json_of(resp);
    assert_eq!(
        (status, v["error"].as_str().unwrap()),
        (
            StatusCode::TOO_MANY_REQUESTS,
            "app `busy` is at capacity: its queue of 1 requests is full"
        )
    );
    assert_eq!(first.join().unwrap().0, StatusCode::OK);
    assert_eq!(second.join().unwrap().0, StatusCode::OK);
    assert_eq!(state("stats")["rejected"], json!(1));
}

/// Poll the server's own state (not a guess at timing) until `f` holds.
fn wait_until(f: impl Fn() -> bool) {
    let until = Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(
            Instant::now() < until,
            "the state was not reached within 30 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn bad_deployments_and_callers_are_refused_in_one_line() {
    let lab = lab();
    lab.add_model("broken", "model.onnx", b"not an onnx model");
    let read = {
        let out = lab.cli(&["token", "create", "reader", "--scope", "read"]);
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out).trim().to_owned()
    };
    let run = stdout(&lab.cli(&["token", "create", "runner", "--scope", "run"]))
        .trim()
        .to_owned();
    let s = Server::start(&lab);
    let call = |token: &str, body: Value| {
        json_of(
            client()
                .post(s.url("/api/v1/apps"))
                .bearer_auth(token)
                .json(&body)
                .send()
                .unwrap(),
        )
    };
    let refused = |token: &str, body: Value, status: StatusCode, message: &str| {
        let (got, v) = call(token, body);
        assert_eq!(
            (got, v["error"].as_str().unwrap_or_default()),
            (status, message),
            "{v}"
        );
    };
    let app = |extra: Value| {
        let mut b = json!({"name": "a", "plugin": "predictor_probe"});
        b.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        b
    };
    refused(
        &read,
        app(json!({})),
        StatusCode::FORBIDDEN,
        "deploying an app needs a token with the `run` scope (this one has `read`)",
    );
    refused(&run, json!({"name": "a", "plugin": "probe"}), StatusCode::BAD_REQUEST, &format!(
        "{} is not a predictor (world lab:api/predictor exports load and predict); plugins run as jobs",
        repo_root().join("guests/dist/rust/probe.wasm").display()
    ));
    refused(
        &run,
        app(json!({"instances": 0})),
        StatusCode::BAD_REQUEST,
        "instances must be 1 to 64, not 0",
    );
    refused(
        &run,
        app(json!({"name": "../x"})),
        StatusCode::BAD_REQUEST,
        "invalid app name \"../x\": must not start with `.` (reserved for the host)",
    );
    refused(
        &run,
        app(json!({"timeout": "soon"})),
        StatusCode::BAD_REQUEST,
        "timeout: invalid duration `soon`: expected e.g. 90s, 15m, 2h",
    );
    refused(
        &run,
        app(json!({"models": ["nosuch"]})),
        StatusCode::BAD_REQUEST,
        &format!("no model `nosuch` in workspace {}", lab.root().display()),
    );
    // A load that fails (here on purpose; a malformed model fails the same
    // way, see below) is refused with the instance's own reason.
    let (status, v) = call(&run, app(json!({"config": {"fail_load": "no weights"}})));
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let m = v["error"].as_str().unwrap();
    assert!(
        m.starts_with("app `a` did not start: job ")
            && m.ends_with(" ended FAILED: plugin returned an error: load failed: no weights"),
        "{m}"
    );
    let (status, v) = call(
        &run,
        json!({"name": "d", "plugin": "digits_app", "models": ["broken"], "config": {"model": "broken"}}),
    );
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let m = v["error"].as_str().unwrap();
    assert!(m.contains(" ended FAILED: plugin returned an error: load failed: invalid-encoding: not a usable ONNX model: "), "{m}");

    // A good deployment; the same name again is a conflict.
    let (status, _) = call(&run, app(json!({})));
    assert_eq!(status, StatusCode::CREATED);
    refused(
        &run,
        app(json!({})),
        StatusCode::CONFLICT,
        "app `a` is already deployed",
    );
    // A read token sees the app but cannot call it.
    let (status, v) = json_of(
        client()
            .post(s.url("/api/v1/apps/a/predict"))
            .bearer_auth(&read)
            .json(&json!({"inputs": [1]}))
            .send()
            .unwrap(),
    );
    assert_eq!(
        (status, v["error"].as_str().unwrap()),
        (
            StatusCode::FORBIDDEN,
            "predicting needs a token with the `run` scope (this one has `read`)"
        )
    );
    let (status, _) = json_of(
        client()
            .get(s.url("/api/v1/apps/a"))
            .bearer_auth(&read)
            .send()
            .unwrap(),
    );
    assert_eq!(status, StatusCode::OK);
    // Bad batches.
    let (status, v) = json_of(
        client()
            .post(s.url("/api/v1/apps/a/predict"))
            .bearer_auth(&run)
            .json(&json!({"inputs": []}))
            .send()
            .unwrap(),
    );
    assert_eq!(
        (status, v["error"].as_str().unwrap()),
        (
            StatusCode::BAD_REQUEST,
            "inputs: 1 to 10000 per request, not 0"
        )
    );
    let (status, v) = json_of(
        client()
            .post(s.url("/api/v1/apps/a/predict"))
            .bearer_auth(&run)
            .json(&json!({"inputs": [{"fail": "bad input"}]}))
            .send()
            .unwrap(),
    );
    assert_eq!(
        (status, v["error"].as_str().unwrap()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "the predictor failed: bad input"
        )
    );
    // A predictor is not a job.
    let out = lab.cli(&[
        "run",
        repo_root()
            .join("guests/dist/rust/predictor_probe.wasm")
            .to_str()
            .unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.trim().ends_with("is a predictor (world lab:api/predictor): deploy it as an app (`labhost app deploy`), it does not run as a job"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
fn the_cli_deploys_lists_and_undeploys_and_a_restarted_server_redeploys() {
    let lab = lab();
    let s = Server::start(&lab);
    let cli = |args: &[&str]| {
        let mut all = vec!["app", "--server", s.base.as_str()];
        all.extend_from_slice(args);
        lab.cli(&all)
    };
    // A file is uploaded first, then deployed by its blake3.
    let wasm = repo_root().join("guests/dist/rust/predictor_probe.wasm");
    let out = cli(&[
        "deploy",
        "echo",
        wasm.to_str().unwrap(),
        "--instances",
        "2",
        "--timeout",
        "5s",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).trim(),
        format!("deployed app echo (2 instances, queue 64, timeout 5s): POST {}/api/v1/apps/echo/predict", s.base)
    );
    let out = cli(&["deploy", "echo", "predictor_probe"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out).trim(),
        "error: app `echo` is already deployed (409 Conflict)"
    );
    let (status, v) = post(
        &s,
        "/api/v1/apps/echo/predict",
        json!({"inputs": [{"echo": "hi"}]}),
    );
    assert_eq!((status, &v["outputs"]), (StatusCode::OK, &json!(["hi"])));
    let out = cli(&["list"]);
    let text = stdout(&out);
    let row = text
        .lines()
        .find(|l| l.starts_with("echo "))
        .unwrap_or_else(|| panic!("{text}"));
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        (cols[1], cols[2], cols[3], cols[4]),
        ("predictor-probe", "2", "0", "1"),
        "{row}"
    );

    // Killed and started again: the saved deployment comes back.
    s.kill();
    let s = Server::start(&lab);
    let mut back = None;
    for _ in 0..600 {
        let (status, v) = post(
            &s,
            "/api/v1/apps/echo/predict",
            json!({"inputs": [{"echo": "again"}]}),
        );
        if status == StatusCode::OK {
            back = Some(v);
            break;
        }
        assert_eq!(status, StatusCode::NOT_FOUND, "{v}");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        back.expect("redeployed within 30 s")["outputs"],
        json!(["again"]),
        "{}",
        s.log()
    );
    assert!(
        s.log()
            .contains("labhost serve: app echo redeployed (2 instances)"),
        "{}",
        s.log()
    );
    let out = lab.cli(&["app", "--server", s.base.as_str(), "undeploy", "echo"]);
    assert_eq!(stdout(&out).trim(), "undeployed app echo after 1 request");
    let out = lab.cli(&["app", "--server", s.base.as_str(), "undeploy", "echo"]);
    assert_eq!(stderr(&out).trim(), "error: no app `echo` (404 Not Found)");
    assert!(!lab.root().join("apps/echo.json").exists());
}
