//! `labhost serve`: the real binary on 127.0.0.1, driven over HTTP: the
//! REST contract (upload, launch, follow by SSE, read records, logs,
//! metrics and files with Range), the CLI and the server seeing each
//! other's jobs, and the security rules (tokens, scopes, body size, path
//! traversal, non-loopback binds).

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::Duration;

use labhost_tests::{guest, labhost_bin, stderr, stdout, Lab, Server};
use reqwest::blocking::Client;
use reqwest::StatusCode;
use serde_json::{json, Value};

fn token(lab: &Lab, scope: &str) -> String {
    let out = lab.cli(&["token", "create", &format!("t-{scope}"), "--scope", scope]);
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out).trim().to_owned()
}

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
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}")),
    )
}

/// Read an SSE stream to its end; the `data:` payloads.
fn sse(resp: reqwest::blocking::Response) -> Vec<Value> {
    let mut text = String::new();
    BufReader::new(resp).read_to_string(&mut text).unwrap();
    text.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

#[test]
fn the_api_uploads_launches_follows_and_reads_a_job() {
    let lab = Lab::new();
    let admin = token(&lab, "admin");
    let server = Server::start(&lab);
    let http = client();
    let auth = format!("Bearer {admin}");

    let (status, health) = json_of(http.get(server.url("/api/v1/health")).send().unwrap());
    assert_eq!(
        (status, health["status"].as_str()),
        (StatusCode::OK, Some("ok"))
    );

    // Upload the probe: stored by blake3, described.
    let wasm = std::fs::read(guest("rust", "probe")).unwrap();
    let digest = blake3::hash(&wasm).to_hex().to_string();
    let (status, plugin) = json_of(
        http.post(server.url("/api/v1/plugins"))
            .header("authorization", &auth)
            .body(wasm)
            .send()
            .unwrap(),
    );
    assert_eq!(status, StatusCode::CREATED, "{plugin}");
    assert_eq!(
        (
            plugin["name"].as_str(),
            plugin["blake3"].as_str(),
            plugin["api_version"].as_str()
        ),
        (Some("probe"), Some(digest.as_str()), Some("0.2.0"))
    );
    assert!(lab.root().join(format!("plugins/{digest}.wasm")).is_file());
    let (_, list) = json_of(
        http.get(server.url("/api/v1/plugins"))
            .header("authorization", &auth)
            .send()
            .unwrap(),
    );
    assert_eq!(list.as_array().unwrap().len(), 1);

    // Launch, then follow its events live until it ends.
    let (status, rec) = json_of(
        http.post(server.url("/api/v1/jobs"))
            .header("authorization", &auth)
            .json(&json!({"plugin": digest, "config": {"count": 5}, "experiment": "api"}))
            .send()
            .unwrap(),
    );
    assert_eq!(status, StatusCode::CREATED, "{rec}");
    let id = rec["id"].as_str().unwrap().to_owned();
    assert_eq!(rec["experiment"], "api");
    let events = sse(http
        .get(server.url(&format!("/api/v1/jobs/{id}/events")))
        .header("authorization", &auth)
        .send()
        .unwrap());
    let last = events.last().unwrap();
    assert_eq!(
        (last["event"].as_str(), last["status"].as_str()),
        (Some("ended"), Some("COMPLETE")),
        "{events:?}"
    );
    let losses: Vec<&Value> = events
        .iter()
        .filter(|e| e["event"] == "metric" && e["name"] == "loss")
        .collect();
    assert_eq!(losses.len(), 3, "{events:?}");
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "log" && e["message"] == "probe: experiment api"),
        "{events:?}"
    );

    let (status, rec) = json_of(
        http.get(server.url(&format!("/api/v1/jobs/{id}")))
            .header("authorization", &auth)
            .send()
            .unwrap(),
    );
    assert_eq!(
        (status, rec["status"].as_str(), rec["message"].as_str()),
        (StatusCode::OK, Some("COMPLETE"), Some("all calls made"))
    );

    // The CLI sees the server's job; the API's query is the CLI's.
    let cli = lab.cli(&["jobs", "--json"]);
    let cli_jobs: Value = serde_json::from_str(&stdout(&cli)).unwrap();
    assert_eq!(cli_jobs[0]["id"], id.as_str());
    let (_, page) = json_of(
        http.get(server.url("/api/v1/jobs?status=complete,failed&experiment=api&limit=1"))
            .header("authorization", &auth)
            .send()
            .unwrap(),
    );
    assert_eq!(
        (page["total"].as_u64(), page["jobs"][0]["id"].as_str()),
        (Some(1), Some(id.as_str()))
    );
    let (status, err) = json_of(
        http.get(server.url("/api/v1/jobs?sort=size"))
            .header("authorization", &auth)
            .send()
            .unwrap(),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        err["error"]
            .as_str()
            .unwrap()
            .starts_with("invalid sort `size`"),
        "{err}"
    );

    // Metrics by name and step range; logs by byte range.
    let (_, points) = json_of(
        http.get(server.url(&format!("/api/v1/jobs/{id}/metrics?names=loss&steps=1..2")))
            .header("authorization", &auth)
            .send()
            .unwrap(),
    );
    let steps: Vec<u64> = points
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["step"].as_u64().unwrap())
        .collect();
    assert_eq!(steps, [1, 2]);
    let (_, chunk) = json_of(
        http.get(server.url(&format!("/api/v1/jobs/{id}/logs?offset=0&limit=100")))
            .header("authorization", &auth)
            .send()
            .unwrap(),
    );
    assert_eq!(
        (chunk["offset"].as_u64(), chunk["next"].as_u64()),
        (Some(0), Some(100))
    );
    let log = std::fs::read(lab.ws().find_job(&id).unwrap().1.log()).unwrap();
    assert_eq!(chunk["text"].as_str().unwrap().as_bytes(), &log[..100]);

    // Stored files, whole and by Range; a directory's file by its listed path.
    let get = |path: &str, range: Option<&str>| {
        let mut r = http.get(server.url(path)).header("authorization", &auth);
        if let Some(range) = range {
            r = r.header("range", range);
        }
        let resp = r.send().unwrap();
        (resp.status(), resp.text().unwrap())
    };
    let base = format!("/api/v1/jobs/{id}/files");
    assert_eq!(
        get(&format!("{base}/artifacts/hello.txt"), None),
        (StatusCode::OK, "hello artifact\n".into())
    );
    assert_eq!(
        get(&format!("{base}/artifacts/hello.txt"), Some("bytes=0-4")),
        (StatusCode::PARTIAL_CONTENT, "hello".into())
    );
    assert_eq!(
        get(&format!("{base}/artifacts/bundle-dir?path=sub/b.txt"), None),
        (StatusCode::OK, "bb".into())
    );
    // Only what the record lists: traversal and unlisted names are 404.
    for bad in [
        format!("{base}/artifacts/bundle-dir?path=../../job.json"),
        format!("{base}/artifacts/..%2F..%2Fjob.json"),
        format!("{base}/..%2F..%2F/job.json"),
        format!("{base}/records/job.json"),
    ] {
        assert_eq!(get(&bad, None).0, StatusCode::NOT_FOUND, "{bad}");
    }

    // Eval tables, CSV and JSON lines alike: filter, sort, page.
    for table in ["probe-eval", "probe-eval-jsonl"] {
        let rows = |query: &str| {
            let (status, v) = json_of(
                http.get(server.url(&format!("/api/v1/jobs/{id}/evals/{table}/rows{query}")))
                    .header("authorization", &auth)
                    .send()
                    .unwrap(),
            );
            assert_eq!(status, StatusCode::OK, "{v}");
            let inputs: Vec<String> = v["rows"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["input"].as_str().unwrap().to_owned())
                .collect();
            (v["total"].as_u64().unwrap(), inputs)
        };
        assert_eq!(
            rows(""),
            (3, vec!["a".into(), "b, with comma".into(), "c".into()]),
            "{table}"
        );
        assert_eq!(
            rows("?sort=-score"),
            (3, vec!["a".into(), "c".into(), "b, with comma".into()]),
            "{table}"
        );
        assert_eq!(
            rows("?min_score=0.5&sort=score"),
            (2, vec!["c".into(), "a".into()]),
            "{table}"
        );
        assert_eq!(
            rows("?q=comma"),
            (1, vec!["b, with comma".into()]),
            "{table}"
        );
        assert_eq!(
            rows("?sort=p&offset=1&limit=1"),
            (3, vec!["b, with comma".into()]),
            "{table}"
        );
    }
    let missing = http
        .get(server.url(&format!("/api/v1/jobs/{id}/evals/nope/rows")))
        .header("authorization", &auth)
        .send()
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);

    // Rerun: the same plugin, config and grants, a new job.
    let (status, again) = json_of(
        http.post(server.url(&format!("/api/v1/jobs/{id}/rerun")))
            .header("authorization", &auth)
            .send()
            .unwrap(),
    );
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert_ne!(again["id"], id.as_str());
    assert_eq!(
        (
            again["config"]["count"].as_u64(),
            again["experiment"].as_str()
        ),
        (Some(5), Some("api"))
    );

    // The API document is generated from the code.
    let (_, doc) = json_of(
        http.get(server.url("/api/v1/openapi.json"))
            .header("authorization", &auth)
            .send()
            .unwrap(),
    );
    for path in [
        "/api/v1/jobs",
        "/api/v1/jobs/{id}/events",
        "/api/v1/plugins",
    ] {
        assert!(doc["paths"][path].is_object(), "{path}");
    }
}

#[test]
fn a_cli_job_is_live_in_the_server_and_cancelled_through_it() {
    let lab = Lab::new();
    let run = token(&lab, "run");
    let server = Server::start(&lab);
    let http = client();
    let auth = format!("Bearer {run}");
    let probe = guest("rust", "probe");
    let mut cli = Command::new(labhost_bin())
        .arg("--workspace")
        .arg(lab.root())
        .args([
            "run",
            probe.to_str().unwrap(),
            "-c",
            "scenario=cooperative",
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The CLI prints its `started` event once the job exists.
    let mut events = BufReader::new(cli.stdout.take().unwrap());
    let mut first = String::new();
    events.read_line(&mut first).unwrap();
    // Keep reading (the CLI must not meet a closed pipe).
    let rest = std::thread::spawn(move || {
        let mut all = String::new();
        events.read_to_string(&mut all).unwrap();
        all
    });
    let started: Value = serde_json::from_str(&first).unwrap();
    let id = started["job_id"].as_str().unwrap().to_owned();
    let (_, rec) = json_of(
        http.get(server.url(&format!("/api/v1/jobs/{id}")))
            .header("authorization", &auth)
            .send()
            .unwrap(),
    );
    assert_eq!(rec["status"], "RUNNING");
    let resp = http
        .post(server.url(&format!("/api/v1/jobs/{id}/cancel")))
        .header("authorization", &auth)
        .send()
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let status = cli.wait().unwrap();
    let rest = rest.join().unwrap();
    assert_eq!(
        status.code(),
        Some(4),
        "the CLI's job ended CANCELLED: {rest}"
    );
    let (status, err) = json_of(
        http.post(server.url(&format!("/api/v1/jobs/{id}/cancel")))
            .header("authorization", &auth)
            .send()
            .unwrap(),
    );
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(err["error"], format!("job {id} already ended (CANCELLED)"));
}

#[test]
fn tokens_scopes_and_bad_requests_are_refused_exactly() {
    let lab = Lab::new();
    let read = token(&lab, "read");
    let run = token(&lab, "run");
    let revoked = token(&lab, "admin");
    let revoked_id = revoked.split('_').nth(1).unwrap().to_owned();
    let server = Server::start(&lab);
    let http = client();
    let jobs = server.url("/api/v1/jobs");
    let error = |resp: reqwest::blocking::Response| {
        let (status, v) = json_of(resp);
        (status, v["error"].as_str().unwrap_or_default().to_owned())
    };

    assert_eq!(
        error(http.get(&jobs).send().unwrap()),
        (
            StatusCode::UNAUTHORIZED,
            "missing `Authorization: Bearer <token>` (create one with `labhost token create`)"
                .into()
        )
    );
    assert_eq!(
        error(
            http.get(&jobs)
                .header("authorization", "Bearer lht_00000000_00")
                .send()
                .unwrap()
        ),
        (StatusCode::UNAUTHORIZED, "invalid or revoked token".into())
    );
    assert_eq!(
        error(
            http.get(&jobs)
                .header("authorization", format!("Basic {read}"))
                .send()
                .unwrap()
        ),
        (
            StatusCode::UNAUTHORIZED,
            "the Authorization header must be `Bearer <token>`".into()
        )
    );
    // Revoked while the server runs: refused from the next request on.
    assert_eq!(
        http.get(&jobs)
            .bearer_auth(&revoked)
            .send()
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let out = lab.cli(&["token", "revoke", &revoked_id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        error(http.get(&jobs).bearer_auth(&revoked).send().unwrap()),
        (StatusCode::UNAUTHORIZED, "invalid or revoked token".into())
    );
    // Under-scoped.
    let launch = json!({"plugin": "0".repeat(64)});
    assert_eq!(
        error(
            http.post(&jobs)
                .bearer_auth(&read)
                .json(&launch)
                .send()
                .unwrap()
        ),
        (
            StatusCode::FORBIDDEN,
            "launching a job needs a token with the `run` scope (this one has `read`)".into()
        )
    );
    let exfiltrate = json!({"plugin": "0".repeat(64), "allow_http": ["http://127.0.0.1:9/"], "secrets": ["HOME"]});
    assert_eq!(
        error(http.post(&jobs).bearer_auth(&run).json(&exfiltrate).send().unwrap()),
        (StatusCode::FORBIDDEN, "granting HTTP endpoints or secrets needs a token with the `admin` scope (this one has `run`)".into())
    );
    // Bad bodies: unknown fields, a path as plugin, oversized.
    let (status, msg) = error(
        http.post(&jobs)
            .bearer_auth(&run)
            .json(&json!({"plugin": "x", "dirs": ["/"]}))
            .send()
            .unwrap(),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        msg.starts_with("invalid launch request: unknown field `dirs`"),
        "{msg}"
    );
    assert_eq!(
        error(http.post(&jobs).bearer_auth(&run).json(&json!({"plugin": "../../etc/passwd"})).send().unwrap()),
        (StatusCode::BAD_REQUEST, "plugin: give the blake3 of an uploaded plugin or the name of one in paths.plugins (not a path)".into())
    );
    let big = json!({"plugin": "x", "config": {"pad": "x".repeat(2 << 20)}});
    assert_eq!(
        error(
            http.post(&jobs)
                .bearer_auth(&run)
                .json(&big)
                .send()
                .unwrap()
        ),
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            "a launch request is at most 1048576 bytes".into()
        )
    );
    let (status, msg) = error(
        http.post(server.url("/api/v1/plugins"))
            .bearer_auth(&run)
            .body(b"not wasm".to_vec())
            .send()
            .unwrap(),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        msg.contains("is not a valid WebAssembly component"),
        "{msg}"
    );
    assert!(!lab.root().join("plugins").read_dir().unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .ends_with(".wasm")));
    assert_eq!(
        error(
            http.get(server.url("/api/v1/jobs/nope"))
                .bearer_auth(&read)
                .send()
                .unwrap()
        )
        .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        error(
            http.get(server.url("/api/v2/anything"))
                .bearer_auth(&read)
                .send()
                .unwrap()
        ),
        (StatusCode::NOT_FOUND, "no such route".into())
    );
    // Tokens are listed without secrets.
    let ls = stdout(&lab.cli(&["token", "ls", "--json"]));
    for t in [&read, &run, &revoked] {
        assert!(!ls.contains(t.rsplit('_').next().unwrap()));
    }
}

#[test]
fn a_non_loopback_bind_needs_a_token() {
    let lab = Lab::new();
    let out = lab.cli(&["serve", "--bind", "0.0.0.0:0"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out).trim(),
        "error: refusing to serve on 0.0.0.0:0 without API tokens: create one with `labhost token create NAME --scope read`, or bind to 127.0.0.1"
    );
}
