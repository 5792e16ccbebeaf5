//! `labhost serve` over the registries and pipelines: datasets uploaded,
//! appended, queried in Refuel's shape (query string and JSON body),
//! downloaded and exported; a model uploaded and downloaded; a pipeline run
//! started, followed in the task-run shape, cancelled and resumed — and the
//! refusals (scopes, bad queries, traversal, paths and grants a pipeline
//! sent over HTTP may not use), each exact.

use std::time::{Duration, Instant};

use labhost_tests::{guest, stderr, stdout, Lab, Server};
use reqwest::blocking::Client;
use reqwest::StatusCode;
use serde_json::{json, Value};

fn client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

fn json_of(resp: reqwest::blocking::Response) -> (StatusCode, Value) {
    let status = resp.status();
    let text = resp.text().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}")),
    )
}

fn error(resp: reqwest::blocking::Response) -> (StatusCode, String) {
    let (s, v) = json_of(resp);
    (
        s,
        v["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error in {v}"))
            .to_owned(),
    )
}

fn token(lab: &Lab, scope: &str) -> String {
    let out = lab.cli(&["token", "create", &format!("t-{scope}"), "--scope", scope]);
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out).trim().to_owned()
}

const CSV: &str = "id,label,score\n1,pos,0.9\n2,neg,0.2\n3,pos,0.6\n4,neg,\n";

#[test]
fn datasets_and_models_over_http() {
    let lab = Lab::new();
    let read = token(&lab, "read");
    let run = token(&lab, "run");
    let server = Server::start(&lab);
    let http = client();

    // Upload a CSV as a dataset (run scope); a read token cannot.
    let up = server.url("/api/v1/datasets?name=scores&format=csv&description=demo");
    assert_eq!(
        error(http.post(&up).bearer_auth(&read).body(CSV).send().unwrap()),
        (
            StatusCode::FORBIDDEN,
            "adding a dataset needs a token with the `run` scope (this one has `read`)".into()
        )
    );
    let (s, ds) = json_of(http.post(&up).bearer_auth(&run).body(CSV).send().unwrap());
    assert_eq!(s, StatusCode::CREATED, "{ds}");
    assert_eq!(
        (ds["name"].clone(), ds["rows"].clone()),
        (json!("scores"), json!(4))
    );
    let id = ds["id"].as_str().unwrap().to_owned();
    assert_eq!(
        lab.ws().datasets().unwrap()[0].id,
        id,
        "the CLI's workspace sees it"
    );

    // Query: the query-string form and Refuel's JSON body form agree.
    let (s, page) = json_of(
        http.get(server.url("/api/v1/datasets/scores/rows?filter=label%20%3D%20pos&order_by=score%20DESC&max_items=1"))
            .bearer_auth(&read)
            .send()
            .unwrap(),
    );
    assert_eq!(s, StatusCode::OK, "{page}");
    assert_eq!(
        (page["total"].clone(), page["rows"].clone()),
        (json!(2), json!([{"id": 1, "label": "pos", "score": 0.9}]))
    );
    let body = json!({"filters": [{"field": "label", "operator": "=", "value": "pos"}], "order_by": [{"field": "score", "direction": "DESC"}], "max_items": 1});
    let (_, page2) = json_of(
        http.post(server.url("/api/v1/datasets/scores/query"))
            .bearer_auth(&read)
            .json(&body)
            .send()
            .unwrap(),
    );
    assert_eq!(page2, page);
    let (_, nulls) = json_of(
        http.post(server.url("/api/v1/datasets/scores/query"))
            .bearer_auth(&read)
            .json(&json!({"filters": [{"field": "score", "operator": "IS NULL"}]}))
            .send()
            .unwrap(),
    );
    assert_eq!(
        nulls["rows"],
        json!([{"id": 4, "label": "neg", "score": null}])
    );
    // Bad queries: 400 with the reason; unknown datasets: 404.
    for (q, want) in [
        (
            "filter=nope%20%3D%201",
            "no column `nope` (columns: id, label, score)",
        ),
        (
            "filter=score%20%3E%20high",
            "filter on `score`: `high` is not a valid number value",
        ),
        (
            "filter=score",
            "filter `score` is not `FIELD OPERATOR [VALUE]` (e.g. `score >= 0.5`, `note IS NULL`)",
        ),
        ("max_items=x", "max_items must be a number"),
        (
            "sort=id",
            "unknown query parameter `sort` (expected filter, order_by, max_items, offset)",
        ),
    ] {
        assert_eq!(
            error(
                http.get(server.url(&format!("/api/v1/datasets/scores/rows?{q}")))
                    .bearer_auth(&read)
                    .send()
                    .unwrap()
            ),
            (StatusCode::BAD_REQUEST, want.to_owned()),
            "{q}"
        );
    }
    let (s, e) = error(
        http.post(server.url("/api/v1/datasets/scores/query"))
            .bearer_auth(&read)
            .json(&json!({"filters": [{"field": "a", "operator": "~"}]}))
            .send()
            .unwrap(),
    );
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        e.starts_with("the query is not valid: unknown operator `~`"),
        "{e}"
    );
    assert_eq!(
        error(
            http.get(server.url("/api/v1/datasets/nope/rows"))
                .bearer_auth(&read)
                .send()
                .unwrap()
        ),
        (
            StatusCode::NOT_FOUND,
            format!("no dataset `nope` in workspace {}", lab.root().display())
        )
    );

    // Append JSONL rows: a new version; the name resolves to it.
    let (s, v2) = json_of(
        http.post(server.url("/api/v1/datasets/scores/rows?format=jsonl"))
            .bearer_auth(&run)
            .body("{\"id\": 5, \"label\": \"pos\", \"score\": 0.95}\n")
            .send()
            .unwrap(),
    );
    assert_eq!(s, StatusCode::CREATED, "{v2}");
    assert_eq!(
        (v2["rows"].clone(), v2["supersedes"].clone()),
        (json!(5), json!(id))
    );
    let (_, got) = json_of(
        http.get(server.url("/api/v1/datasets/scores"))
            .bearer_auth(&read)
            .send()
            .unwrap(),
    );
    assert_eq!(got["id"], v2["id"]);
    // A bad upload stores nothing.
    assert_eq!(
        error(
            http.post(server.url("/api/v1/datasets?name=bad&format=xlsx"))
                .bearer_auth(&run)
                .body("x")
                .send()
                .unwrap()
        ),
        (
            StatusCode::BAD_REQUEST,
            "unknown format `xlsx` (expected csv, jsonl or parquet)".into()
        )
    );
    let (s, e) = error(
        http.post(server.url("/api/v1/datasets?name=bad&format=jsonl"))
            .bearer_auth(&run)
            .body("{oops")
            .send()
            .unwrap(),
    );
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(e.contains("is not a readable jsonl table"), "{e}");
    assert_eq!(
        error(
            http.post(server.url("/api/v1/datasets?name=bad&format=csv"))
                .bearer_auth(&run)
                .send()
                .unwrap()
        ),
        (StatusCode::BAD_REQUEST, "the request body is empty".into())
    );
    assert_eq!(lab.ws().datasets().unwrap().len(), 2);
    let leftovers: Vec<_> = std::fs::read_dir(lab.root())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".upload-"))
        .collect();
    assert!(leftovers.is_empty(), "scratch uploads removed");

    // Download a stored file (Range answered), export the whole table.
    let v2id = v2["id"].as_str().unwrap();
    let r = http
        .get(server.url(&format!("/api/v1/datasets/{v2id}/files/data.csv")))
        .bearer_auth(&read)
        .header("range", "bytes=0-7")
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.text().unwrap(), "id,label");
    for bad in [
        "..%2F..%2Fjob.json",
        "..%2Fdataset.json",
        "%2Fetc%2Fpasswd",
        "data.csv%00",
    ] {
        let r = http
            .get(server.url(&format!("/api/v1/datasets/{v2id}/files/{bad}")))
            .bearer_auth(&read)
            .send()
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{bad}");
    }
    let r = http
        .get(server.url("/api/v1/datasets/scores/export?format=jsonl"))
        .bearer_auth(&read)
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/x-ndjson");
    let lines: Vec<Value> = r
        .text()
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut got_ids: Vec<i64> = lines.iter().map(|l| l["id"].as_i64().unwrap()).collect();
    got_ids.sort();
    assert_eq!(got_ids, [1, 2, 3, 4, 5]);

    // A model file: uploaded, listed, downloaded byte for byte.
    let weights: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let (s, m) = json_of(
        http.post(server.url("/api/v1/models?name=tiny&filename=model.safetensors&architecture=MLP&metadata=%7B%22epochs%22%3A3%7D"))
            .bearer_auth(&run)
            .body(weights.clone())
            .send()
            .unwrap(),
    );
    assert_eq!(s, StatusCode::CREATED, "{m}");
    assert_eq!(
        (m["architecture"].clone(), m["metadata"].clone()),
        (json!("MLP"), json!({"epochs": 3}))
    );
    let (_, list) = json_of(
        http.get(server.url("/api/v1/models"))
            .bearer_auth(&read)
            .send()
            .unwrap(),
    );
    assert_eq!(list["models"].as_array().unwrap().len(), 1);
    let r = http
        .get(server.url("/api/v1/models/tiny/files/model.safetensors"))
        .bearer_auth(&read)
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().unwrap().to_vec(), weights);
    assert_eq!(
        error(
            http.post(server.url("/api/v1/models?name=x&filename=..%2Fescape"))
                .bearer_auth(&run)
                .body("x")
                .send()
                .unwrap()
        ),
        (
            StatusCode::BAD_REQUEST,
            "invalid file name name \"../escape\": must not start with `.` (reserved for the host)"
                .into()
        )
    );
    let out = lab.cli(&["verify"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
}

fn wait_run(http: &Client, server: &Server, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (s, v) = json_of(
            http.get(server.url(&format!("/api/v1/pipelines/{id}")))
                .send()
                .unwrap(),
        );
        assert_eq!(s, StatusCode::OK, "{v}");
        if done(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "run {id} did not get there: {v}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn pipelines_over_http() {
    let lab = Lab::new();
    let server = Server::start(&lab);
    let http = client();
    // Upload the plugins; stages name them by blake3.
    let mut digests = Vec::new();
    for name in ["datagen", "trainer", "probe"] {
        let (s, p) = json_of(
            http.post(server.url("/api/v1/plugins"))
                .body(std::fs::read(guest("rust", name)).unwrap())
                .send()
                .unwrap(),
        );
        assert_eq!(s, StatusCode::CREATED, "{p}");
        digests.push(p["blake3"].as_str().unwrap().to_owned());
    }
    let pipeline = format!(
        "name = \"api\"\nworkers = 2\n[stages.generate]\nplugin = \"{}.wasm\"\nconfig = {{ rows = 200 }}\n[stages.train]\nplugin = \"{}.wasm\"\ndatasets = [{{ stage = \"generate\" }}]\nconfig = {{ epochs = 2 }}\nmatrix = {{ lr = [0.1, 0.5] }}\n",
        digests[0], digests[1]
    );
    let (s, created) = json_of(
        http.post(server.url("/api/v1/pipelines"))
            .json(&json!({"pipeline": pipeline}))
            .send()
            .unwrap(),
    );
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["instances"].as_array().unwrap().len(), 3);
    let v = wait_run(&http, &server, &id, |v| v["run"]["status"] != "RUNNING");
    assert_eq!(v["run"]["status"], "COMPLETE", "{v}");
    assert_eq!(
        v["task_run"],
        json!({"id": id, "status": "completed", "metrics": [{"name": "num_labeled", "value": 3.0}, {"name": "num_remaining", "value": 0.0}]})
    );
    // The CLI sees the run the server ran.
    let out = lab.cli(&["pipeline", "status", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("COMPLETE"), "{}", stdout(&out));
    let (_, list) = json_of(http.get(server.url("/api/v1/pipelines")).send().unwrap());
    assert_eq!(list["runs"][0]["run"]["id"], json!(id));

    // A run whose second stage runs until it is cancelled (the probe's
    // cooperative scenario): cancelled, it is `paused`; resumed, the first
    // stage is not run again.
    let slow = format!(
        "name = \"slow\"\n[stages.first]\nplugin = \"{}.wasm\"\nconfig = {{ rows = 10 }}\n[stages.wait]\nplugin = \"{}.wasm\"\nneeds = [\"first\"]\nconfig = {{ scenario = \"cooperative\" }}\n",
        digests[0], digests[2]
    );
    let (s, created) = json_of(
        http.post(server.url("/api/v1/pipelines"))
            .json(&json!({"pipeline": slow}))
            .send()
            .unwrap(),
    );
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let slow_id = created["id"].as_str().unwrap().to_owned();
    let running = |v: &Value| v["run"]["instances"][1]["status"] == "RUNNING";
    let v = wait_run(&http, &server, &slow_id, running);
    assert_eq!(v["task_run"]["status"], "active");
    assert_eq!(
        v["task_run"]["metrics"][0],
        json!({"name": "num_labeled", "value": 1.0})
    );
    let names: Vec<&str> = v["task_run"]["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "num_labeled",
            "num_remaining",
            "time_elapsed_seconds",
            "time_remaining_seconds"
        ]
    );
    let (s, _) = json_of(
        http.post(server.url(&format!("/api/v1/pipelines/{slow_id}/cancel")))
            .send()
            .unwrap(),
    );
    assert_eq!(s, StatusCode::ACCEPTED);
    let v = wait_run(&http, &server, &slow_id, |v| {
        v["run"]["status"] != "RUNNING"
    });
    assert_eq!(v["run"]["status"], "CANCELLED", "{v}");
    assert_eq!(
        v["task_run"],
        json!({"id": slow_id, "status": "paused", "metrics": [{"name": "num_labeled", "value": 1.0}, {"name": "num_remaining", "value": 1.0}]})
    );
    let (s, e) = error(
        http.post(server.url(&format!("/api/v1/pipelines/{slow_id}/cancel")))
            .send()
            .unwrap(),
    );
    assert_eq!(s, StatusCode::CONFLICT, "{e}");

    // Refusals: paths, host directories, grants a run token may not give,
    // bad TOML; none creates a run.
    let runs_before = list_len(&http, &server);
    for (body, status, want) in [
        (json!({"pipeline": "name = \"x\"\n[stages.a]\nplugin = \"../../guests/dist/rust/datagen.wasm\"\n"}), StatusCode::BAD_REQUEST,
         "stage `a`: plugin: give `<blake3>.wasm` of an uploaded plugin or the name of one in paths.plugins (not a path)".to_owned()),
        (json!({"pipeline": "name = \"x\"\n[stages.a]\nplugin = \"/etc/passwd\"\n"}), StatusCode::BAD_REQUEST,
         "stage `a`: plugin: give `<blake3>.wasm` of an uploaded plugin or the name of one in paths.plugins (not a path)".to_owned()),
        (json!({"pipeline": format!("name = \"x\"\n[stages.a]\nplugin = \"{}.wasm\"\ndirs = [\"/etc\"]\n", digests[0])}), StatusCode::FORBIDDEN,
         "stage `a`: host directories cannot be granted through the API".to_owned()),
        (json!({"pipeline": format!("name = \"x\"\n[stages.a]\nplugin = \"{}.wasm\"\nsecrets = [\"OPENAI_API_KEY\"]\n", digests[0])}), StatusCode::FORBIDDEN,
         "granting HTTP endpoints or secrets needs a token with the `admin` scope (this one has `run`)".to_owned()),
        (json!({"pipeline": format!("name = \"x\"\n[stages.a]\nplugin = \"{}.wasm\"\nallow-http = [\"http://127.0.0.1:1/\"]\n", digests[0])}), StatusCode::FORBIDDEN,
         "granting HTTP endpoints or secrets needs a token with the `admin` scope (this one has `run`)".to_owned()),
        (json!({"pipeline": "name = \"x\"\n[stages]\n"}), StatusCode::BAD_REQUEST,
         "the pipeline has no stages (add a [stages.NAME] table)".to_owned()),
        (json!({"pipe": "x"}), StatusCode::BAD_REQUEST, "the request is not valid: unknown field `pipe`, expected `pipeline` or `workers` at line 1 column 7".to_owned()),
    ] {
        assert_eq!(error(http.post(server.url("/api/v1/pipelines")).json(&body).send().unwrap()), (status, want), "{body}");
    }
    assert_eq!(list_len(&http, &server), runs_before);

    // Resume: only the cancelled stage runs again.
    let first_job = v["run"]["instances"][0]["attempts"].clone();
    let (s, resumed) = json_of(
        http.post(server.url(&format!("/api/v1/pipelines/{slow_id}/resume")))
            .send()
            .unwrap(),
    );
    assert_eq!(s, StatusCode::ACCEPTED, "{resumed}");
    let v = wait_run(&http, &server, &slow_id, running);
    assert_eq!(v["run"]["resumes"], 1);
    assert_eq!(
        v["run"]["instances"][0]["attempts"], first_job,
        "the complete stage is not run again"
    );
    assert_eq!(
        error(
            http.post(server.url(&format!("/api/v1/pipelines/{slow_id}/resume")))
                .send()
                .unwrap()
        )
        .0,
        StatusCode::CONFLICT,
        "a running run cannot be resumed"
    );
    let (s, _) = json_of(
        http.post(server.url(&format!("/api/v1/pipelines/{slow_id}/cancel")))
            .send()
            .unwrap(),
    );
    assert_eq!(s, StatusCode::ACCEPTED);
    wait_run(&http, &server, &slow_id, |v| {
        v["run"]["status"] == "CANCELLED"
    });
    assert_eq!(
        error(
            http.get(server.url("/api/v1/pipelines/nope"))
                .send()
                .unwrap()
        )
        .0,
        StatusCode::NOT_FOUND
    );
}

fn list_len(http: &Client, server: &Server) -> usize {
    let (_, list) = json_of(http.get(server.url("/api/v1/pipelines")).send().unwrap());
    list["runs"].as_array().unwrap().len()
}
