//! Webhooks out of `labhost serve` (the real binary) to real receivers on
//! 127.0.0.1: lifecycle events of CLI jobs, server jobs and pipeline runs,
//! signed the Standard Webhooks way (checked here with hmac/sha2 alone),
//! in order per job; retries with the same id; nothing lost across a
//! `kill -9` of the server while the receiver is down; a receiver that
//! hangs does not hold up another; redirects are not followed; bad
//! settings refused with one line.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use labhost_tests::{assert_nowhere, guest, labhost_bin, stderr, Lab, Server};
use serde_json::{json, Value};

/// The signing key, and the secret value that holds it.
const KEY: &[u8] = b"webhooks out: a 32-byte test key";

fn whsec() -> String {
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(KEY)
    )
}

/// One request a receiver got.
#[derive(Debug, Clone)]
struct Got {
    method: String,
    path: String,
    headers: HeaderMap,
    body: String,
    /// What the receiver answered.
    status: u16,
}

impl Got {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
    fn id(&self) -> &str {
        self.header("webhook-id")
    }
}

#[derive(Default)]
struct Shared {
    got: Mutex<Vec<Got>>,
    /// `/flaky` answers 500 this many times, then 204.
    flaky_left: AtomicU32,
}

/// A webhook receiver (axum on its own thread): `/ok` (200), `/flaky`,
/// `/hang` (never answers), `/redirect` (302 to `/ok`), `/echo` (200).
struct Receiver {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

async fn receive(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let (status, resp) = match path.as_str() {
        "/flaky" => {
            let failing = shared
                .flaky_left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            if failing {
                (500, StatusCode::INTERNAL_SERVER_ERROR.into_response())
            } else {
                (204, StatusCode::NO_CONTENT.into_response())
            }
        }
        "/redirect" => (
            302,
            (StatusCode::FOUND, [("location", "/ok")], "").into_response(),
        ),
        "/hang" => (0, StatusCode::OK.into_response()),
        _ => (200, "ok".into_response()),
    };
    shared.got.lock().unwrap().push(Got {
        method: method.to_string(),
        path: path.clone(),
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        status,
    });
    if path == "/hang" {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    resp
}

impl Receiver {
    fn start() -> Receiver {
        Self::start_on(std::net::TcpListener::bind("127.0.0.1:0").unwrap())
    }

    fn start_on(listener: std::net::TcpListener) -> Receiver {
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared::default());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let state = shared.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let app = Router::new().fallback(any(receive)).with_state(state);
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = rx.await;
                    })
                    .await
                    .unwrap();
            });
        });
        Receiver {
            addr,
            shared,
            shutdown: Some(tx),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Requests to `path` so far.
    fn got(&self, path: &str) -> Vec<Got> {
        let all = self.shared.got.lock().unwrap();
        all.iter().filter(|g| g.path == path).cloned().collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Check one delivery as a receiver would, with nothing but hmac and
/// sha2: the signature over `id.timestamp.body`, a fresh timestamp, JSON.
fn verified(g: &Got) -> Value {
    let (id, ts) = (g.id(), g.header("webhook-timestamp"));
    assert!(id.starts_with("msg_"), "{g:?}");
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(KEY).unwrap();
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(g.body.as_bytes());
    let want = format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    );
    assert_eq!(g.header("webhook-signature"), want, "{g:?}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let age = now - ts.parse::<i64>().unwrap();
    assert!((-5..300).contains(&age), "timestamp {ts} is {age}s old");
    assert_eq!(g.header("content-type"), "application/json");
    assert_eq!(g.method, "POST");
    serde_json::from_str(&g.body).unwrap()
}

/// `(job or run id, event type)` of every delivery, in arrival order,
/// each checked; the same id always carries the same body.
fn events(got: &[Got]) -> Vec<(String, String)> {
    let mut bodies: BTreeMap<String, String> = BTreeMap::new();
    got.iter()
        .map(|g| {
            let v = verified(g);
            let prev = bodies.entry(g.id().to_owned()).or_insert(g.body.clone());
            assert_eq!(*prev, g.body, "one id, one body");
            let subject = v["data"]["job_id"]
                .as_str()
                .or(v["data"]["run_id"].as_str())
                .unwrap()
                .to_owned();
            (subject, v["type"].as_str().unwrap().to_owned())
        })
        .collect()
}

/// The types delivered for `subject`, first deliveries only, in order.
fn types_of(events: &[(String, String)], subject: &str) -> Vec<String> {
    let mut seen = BTreeSet::new();
    events
        .iter()
        .filter(|(s, t)| s == subject && seen.insert(t.clone()))
        .map(|(_, t)| t.clone())
        .collect()
}

/// Poll `f` every 50 ms until it gives a value; panic after `secs`.
fn wait_for<T>(
    what: &str,
    secs: u64,
    log: impl Fn() -> String,
    mut f: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; server log:\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Write `labhost.toml` with these `[[webhooks]]` (each: the url, then
/// extra lines).
fn configure(lab: &Lab, hooks: &[(&str, &str)]) {
    let mut toml = String::new();
    for (url, extra) in hooks {
        toml.push_str(&format!(
            "[[webhooks]]\nurl = \"{url}\"\nsecret = \"HOOK_SECRET\"\n{extra}\n"
        ));
    }
    std::fs::write(lab.root().join("labhost.toml"), toml).unwrap();
}

fn probe() -> String {
    guest("rust", "probe").display().to_string()
}

/// `labhost run PROBE ARGS…` to its end; its exit code.
fn cli_run(lab: &Lab, args: &[&str], env: &[(&str, &str)]) -> Option<i32> {
    let o = Command::new(labhost_bin())
        .arg("--workspace")
        .arg(lab.root())
        .arg("run")
        .arg(probe())
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    o.status.code()
}

/// The only job of `lab` whose config has this scenario.
fn job_id(lab: &Lab, scenario: &str) -> String {
    let jobs: Vec<_> = lab
        .ws()
        .jobs(None)
        .unwrap()
        .into_iter()
        .filter(|j| j.config["scenario"] == scenario)
        .collect();
    assert_eq!(jobs.len(), 1, "{scenario}");
    jobs[0].id.clone()
}

/// The queue directory of a webhook, and what waits in it.
fn queue_dir(lab: &Lab, url: &str) -> PathBuf {
    let key = &blake3::hash(url.as_bytes()).to_hex()[..16];
    lab.root().join("outbox").join(key)
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".json"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn jobs_of_the_cli_and_the_server_and_runs_arrive_signed_in_order() {
    let lab = Lab::new();
    let rx = Receiver::start();
    configure(&lab, &[(&rx.url("/ok"), "")]);
    let secret = whsec();
    let server = Server::start_with_env(&lab, &[("HOOK_SECRET", &secret)]);
    let log = || server.log();

    // A CLI job with status stages.
    let echo = rx.url("/echo");
    let code = cli_run(
        &lab,
        &[
            "-c",
            "scenario=api-0-2",
            "-c",
            &format!("target={echo}"),
            "--allow-http",
            &echo,
            "--secret",
            "PROBE_SECRET",
        ],
        &[("PROBE_SECRET", "probe-secret-16b")],
    );
    assert_eq!(code, Some(0));
    let cli_job = job_id(&lab, "api-0-2");

    // A job the server starts, which fails.
    let http = reqwest::blocking::Client::new();
    let wasm = std::fs::read(probe()).unwrap();
    let digest = blake3::hash(&wasm).to_hex().to_string();
    let r = http
        .post(format!("{}/api/v1/plugins", server.base))
        .body(wasm)
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = http
        .post(format!("{}/api/v1/jobs", server.base))
        .json(&json!({"plugin": digest, "config": {"scenario": "fail"}}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    let server_job = r.json::<Value>().unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // A pipeline run of one stage.
    let file = lab.dir.path().join("p.toml");
    std::fs::write(
        &file,
        format!(
            "name = \"p\"\n[stages.a]\nplugin = \"{}\"\nconfig = {{ scenario = \"cpu\", count = 1 }}\n",
            probe()
        ),
    )
    .unwrap();
    let o = lab.cli(&["pipeline", "run", file.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let run = labhost::pipeline::list_runs(lab.ws()).unwrap().remove(0);
    let stage_job = job_id(&lab, "cpu");

    let got = wait_for("every event", 30, log, || {
        let got = rx.got("/ok");
        let ev = events(&got);
        let done = [
            (&cli_job, "job.completed"),
            (&server_job, "job.failed"),
            (&stage_job, "job.completed"),
            (&run.id, "run.completed"),
        ];
        done.iter()
            .all(|(s, t)| ev.iter().any(|(es, et)| es == *s && et == t))
            .then_some(got)
    });
    let ev = events(&got);
    // In order per job; the CLI job's stages as its record showed them.
    let cli = types_of(&ev, &cli_job);
    assert_eq!(
        cli.first().map(String::as_str),
        Some("job.started"),
        "{cli:?}"
    );
    assert_eq!(
        cli.last().map(String::as_str),
        Some("job.completed"),
        "{cli:?}"
    );
    assert!(
        cli[1..cli.len() - 1]
            .iter()
            .all(|t| t == "job.status_stage")
            && cli.len() >= 3,
        "{cli:?}"
    );
    assert_eq!(types_of(&ev, &server_job), ["job.started", "job.failed"]);
    assert_eq!(types_of(&ev, &stage_job), ["job.started", "job.completed"]);
    assert_eq!(types_of(&ev, &run.id), ["run.started", "run.completed"]);

    // The bodies say what happened.
    let body = |subject: &str, t: &str| {
        got.iter()
            .map(verified)
            .find(|v| {
                v["type"] == t && (v["data"]["job_id"] == subject || v["data"]["run_id"] == subject)
            })
            .unwrap()
    };
    let last_stage = got
        .iter()
        .map(verified)
        .rfind(|v| v["type"] == "job.status_stage" && v["data"]["job_id"] == cli_job.as_str())
        .unwrap();
    assert_eq!(last_stage["data"]["status_stage"]["status"], "training");
    assert_eq!(
        last_stage["data"]["status_stage"]["error_message"],
        "warming up"
    );
    let failed = body(&server_job, "job.failed");
    assert_eq!(failed["data"]["status"], "FAILED");
    assert_eq!(failed["data"]["message"], "probe failed on purpose");
    assert_eq!(failed["data"]["failure"], "plugin-error");
    assert_eq!(failed["data"]["plugin"]["name"], "probe");
    assert_eq!(failed["data"]["plugin"]["blake3"], digest.as_str());
    let done = body(&stage_job, "job.completed");
    assert_eq!(done["data"]["pipeline"]["run"], run.id.as_str());
    let run_done = body(&run.id, "run.completed");
    assert_eq!(run_done["data"]["status"], "COMPLETE");
    assert_eq!(run_done["data"]["instances"]["complete"], 1);

    // Delivered: the queue is empty. The key is in no log and no file.
    let queue = queue_dir(&lab, &rx.url("/ok"));
    wait_for("an empty queue", 10, log, || {
        files_in(&queue).is_empty().then_some(())
    });
    let b64 = secret.strip_prefix("whsec_").unwrap();
    assert!(!server.log().contains(b64), "{}", server.log());
    assert_nowhere(&lab.root().join("outbox"), b64);
    assert_nowhere(lab.root(), &secret);
}

#[test]
fn a_failed_delivery_is_retried_with_the_same_id_and_order_is_kept() {
    let lab = Lab::new();
    let rx = Receiver::start();
    rx.shared.flaky_left.store(2, Ordering::SeqCst);
    configure(&lab, &[(&rx.url("/flaky"), "")]);
    let server = Server::start_with_env(&lab, &[("HOOK_SECRET", &whsec())]);
    assert_eq!(cli_run(&lab, &["-c", "scenario=fail"], &[]), Some(3));
    let job = job_id(&lab, "fail");
    let got = wait_for(
        "the retried deliveries",
        30,
        || server.log(),
        || {
            let got = rx.got("/flaky");
            (got.len() >= 4).then_some(got)
        },
    );
    let ev = events(&got);
    let statuses: Vec<u16> = got.iter().map(|g| g.status).collect();
    assert_eq!(statuses, [500, 500, 204, 204]);
    assert_eq!(
        ev,
        [
            (job.clone(), "job.started".to_owned()),
            (job.clone(), "job.started".to_owned()),
            (job.clone(), "job.started".to_owned()),
            (job.clone(), "job.failed".to_owned()),
        ]
    );
    // One id for the three attempts, each signed at its own time.
    let id = got[0].id();
    assert!(got[..3].iter().all(|g| g.id() == id));
    assert_ne!(got[3].id(), id);
    let log = server.log();
    for (n, wait) in [(1, "1s"), (2, "2s")] {
        let line = format!(
            "labhost serve: webhook {}: job.started {id} attempt {n} failed (HTTP 500 Internal Server Error); next try in {wait}\n",
            rx.url("/flaky")
        );
        assert!(log.contains(&line), "{line}\n{log}");
    }
    let queue = queue_dir(&lab, &rx.url("/flaky"));
    wait_for(
        "an empty queue",
        10,
        || server.log(),
        || files_in(&queue).is_empty().then_some(()),
    );
}

#[test]
fn nothing_is_lost_when_the_server_is_killed_while_the_receiver_is_down() {
    let lab = Lab::new();
    // A port with nobody listening: the receiver is down.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/ok");
    configure(&lab, &[(&url, "")]);
    let env = [("HOOK_SECRET", whsec())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = Server::start_with_env(&lab, &env);

    // A CLI job runs; its start is queued and tried (and fails).
    let mut running = Command::new(labhost_bin())
        .arg("--workspace")
        .arg(lab.root())
        .args(["run", &probe(), "-c", "scenario=cooperative"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let queue = queue_dir(&lab, &url);
    wait_for(
        "a failed attempt",
        30,
        || server.log(),
        || {
            server
                .log()
                .contains("job.started msg_")
                .then_some(())
                .filter(|()| server.log().contains("attempt 1 failed (cannot connect"))
        },
    );
    assert_eq!(files_in(&queue).len(), 1);
    server.kill();

    // While the server is down: the job is cancelled, another one runs.
    let job1 = job_id(&lab, "cooperative");
    let o = lab.cli(&["cancel", &job1, "--wait"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(running.wait().unwrap().code(), Some(4));
    assert_eq!(cli_run(&lab, &["-c", "scenario=fail"], &[]), Some(3));
    let job2 = job_id(&lab, "fail");

    // The receiver comes up on its port; the server restarts.
    let rx = Receiver::start_on(std::net::TcpListener::bind(("127.0.0.1", port)).unwrap());
    let server = Server::start_with_env(&lab, &env);
    let want: BTreeSet<(String, String)> = [
        (job1.clone(), "job.started"),
        (job1.clone(), "job.cancelled"),
        (job2.clone(), "job.started"),
        (job2.clone(), "job.failed"),
    ]
    .into_iter()
    .map(|(j, t)| (j, t.to_owned()))
    .collect();
    let got = wait_for(
        "every event",
        60,
        || server.log(),
        || {
            let got = rx.got("/ok");
            let have: BTreeSet<(String, String)> = events(&got).into_iter().collect();
            (have == want).then_some(got)
        },
    );
    // Nothing else came, and a duplicate (if any) has its original id.
    let mut ids: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for (g, e) in got.iter().zip(events(&got)) {
        ids.entry(e).or_default().insert(g.id().to_owned());
    }
    assert!(ids.values().all(|s| s.len() == 1), "{ids:?}");
    assert_eq!(
        types_of(&events(&got), &job1),
        ["job.started", "job.cancelled"]
    );
    assert_eq!(
        types_of(&events(&got), &job2),
        ["job.started", "job.failed"]
    );
    wait_for(
        "an empty queue",
        10,
        || server.log(),
        || files_in(&queue).is_empty().then_some(()),
    );
    assert!(files_in(&queue.join("dead")).is_empty());
}

#[test]
fn a_receiver_that_hangs_does_not_hold_up_another() {
    let lab = Lab::new();
    let rx = Receiver::start();
    configure(
        &lab,
        &[
            (&rx.url("/hang"), "timeout = \"60s\""),
            (&rx.url("/ok"), ""),
        ],
    );
    let server = Server::start_with_env(&lab, &[("HOOK_SECRET", &whsec())]);
    assert_eq!(cli_run(&lab, &["-c", "scenario=fail"], &[]), Some(3));
    let job = job_id(&lab, "fail");
    let got = wait_for(
        "the other receiver's events",
        20,
        || server.log(),
        || {
            let got = rx.got("/ok");
            (got.len() == 2).then_some(got)
        },
    );
    assert_eq!(types_of(&events(&got), &job), ["job.started", "job.failed"]);
    // The hanging one holds its first event, still unanswered.
    let hung = rx.got("/hang");
    assert_eq!(hung.len(), 1);
    assert_eq!(events(&hung), [(job.clone(), "job.started".to_owned())]);
    assert!(
        !server.log().contains("no answer within"),
        "{}",
        server.log()
    );
    assert_eq!(files_in(&queue_dir(&lab, &rx.url("/hang"))).len(), 2);
}

#[test]
fn a_redirect_is_not_followed_and_the_last_attempt_goes_to_dead() {
    let lab = Lab::new();
    let rx = Receiver::start();
    configure(&lab, &[(&rx.url("/redirect"), "max-attempts = 1")]);
    let server = Server::start_with_env(&lab, &[("HOOK_SECRET", &whsec())]);
    assert_eq!(cli_run(&lab, &["-c", "scenario=fail"], &[]), Some(3));
    let queue = queue_dir(&lab, &rx.url("/redirect"));
    let dead = wait_for(
        "two dead events",
        20,
        || server.log(),
        || {
            let d = files_in(&queue.join("dead"));
            (d.len() == 2).then_some(d)
        },
    );
    assert_eq!(rx.got("/redirect").len(), 2);
    assert!(rx.got("/ok").is_empty(), "the redirect was followed");
    assert!(files_in(&queue).is_empty());
    let log = server.log();
    for (name, kind) in dead.iter().zip(["job.started", "job.failed"]) {
        let id = name.trim_end_matches(".json").split_once('-').unwrap().1;
        let line = format!(
            "labhost serve: webhook {}: {kind} {id} given up after 1 attempt (HTTP 302 Found: redirects are not followed); moved to {}\n",
            rx.url("/redirect"),
            queue.join("dead").join(name).display()
        );
        assert!(log.contains(&line), "{line}\n{log}");
    }
}

/// `labhost serve` with this `labhost.toml` and environment: it must exit
/// at once with code 1 and one line on stderr.
fn refused(toml: &str, env: &[(&str, &str)]) -> String {
    let lab = Lab::new();
    std::fs::write(lab.root().join("labhost.toml"), toml).unwrap();
    let mut child = Command::new(labhost_bin())
        .arg("--workspace")
        .arg(lab.root())
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env_remove("HOOK_SECRET")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the server started with {toml}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        o.stdout.is_empty(),
        "it listened: {:?}",
        String::from_utf8_lossy(&o.stdout)
    );
    let err = stderr(&o);
    let root = lab.root().display().to_string();
    err.replace(&root, "WS")
}

#[test]
fn bad_webhook_settings_are_refused_with_one_line() {
    let secret = whsec();
    let ok_env = [("HOOK_SECRET", secret.as_str())];
    let hook = |url: &str, extra: &str| {
        format!("[[webhooks]]\nurl = \"{url}\"\nsecret = \"HOOK_SECRET\"\n{extra}\n")
    };
    assert_eq!(
        refused(&hook("ftp://127.0.0.1/x", ""), &ok_env),
        "error: WS/labhost.toml: [[webhooks]] #1: invalid url `ftp://127.0.0.1/x`: only http and https URLs can receive webhooks\n"
    );
    assert_eq!(
        refused(&hook("http://127.0.0.1:9/x", "events = [\"job.finished\"]"), &ok_env),
        "error: WS/labhost.toml: [[webhooks]] #1: unknown event `job.finished` (events: job.started, job.status_stage, job.completed, job.failed, job.cancelled, job.interrupted, run.started, run.completed, run.failed, run.cancelled, run.interrupted)\n"
    );
    let two = format!(
        "{}{}",
        hook("http://127.0.0.1:9/a", ""),
        hook("http://127.0.0.1:9/b", "")
    );
    assert_eq!(
        refused(&two, &[]),
        "error: WS/labhost.toml: [[webhooks]] #1: secret `HOOK_SECRET` is not set: export HOOK_SECRET=... in the environment that runs labhost, or add it to WS/secrets.toml\n"
    );
    assert_eq!(
        refused(&hook("http://127.0.0.1:9/a", ""), &[("HOOK_SECRET", "not base64 at all!")]),
        "error: WS/labhost.toml: [[webhooks]] #1: secret `HOOK_SECRET` is not a Standard Webhooks key (whsec_<base64>)\n"
    );
    // The value of a secret is never shown.
    let e = refused(
        &hook("http://127.0.0.1:9/a", ""),
        &[("HOOK_SECRET", "hunter2-not-base64!")],
    );
    assert!(!e.contains("hunter2"), "{e}");
}
