//! The web dashboard of `labhost serve` in a real browser: Debian's
//! headless Chromium driven by `playwright-core` (tests/e2e/*.mjs) against
//! the real binary on 127.0.0.1.
//!
//! - In the open-loopback mode (no token configured,
//!   tests/e2e/dashboard.mjs) the browser launches a training job from the
//!   form and watches its chart and log fill live, shows a log line and
//!   config holding an XSS payload as text, downloads an artifact, filters
//!   the runs table, compares two runs in one chart and cancels a running
//!   job with the button.
//! - With tokens configured (tests/e2e/auth.mjs) the dashboard sends the
//!   browser to the login page, refuses a wrong token, logs in with a `run`
//!   token into an HttpOnly, SameSite=Strict session cookie, launches and
//!   cancels from the pages, refuses a fetch without the CSRF token and a
//!   cross-site form post from a page on another port of 127.0.0.1 (no job
//!   started or cancelled), reruns a job, shows an LLM judge's eval table
//!   (XSS payload as text, sorted, paged, filtered, scores coloured), logs
//!   out, and shows a `read` session's launch refused.
//!
//! The same session, cookie and CSRF rules are also checked over plain
//! HTTP with exact statuses and errors (no browser). Screenshots go to
//! target/e2e-screenshots/.
//!
//! Needs `node`/`npm` and `/usr/bin/chromium` (`apt-get install chromium`;
//! override with `CHROMIUM=`). `npm ci` is run in tests/e2e when its
//! node_modules is missing.

use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use labhost_tests::httpd::{TestServer, OPENAI_KEY};
use labhost_tests::{guest, labhost_bin, repo_root, stderr, stdout, Lab, Server};
use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::StatusCode;
use serde_json::{json, Value};

const XSS: &str = "<img src=x onerror=alert(1)>";

fn json_of(resp: Response) -> (StatusCode, Value) {
    let status = resp.status();
    let text = resp.text().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}")),
    )
}

/// A status and the `error` of a JSON error response.
fn error_of(resp: Response) -> (StatusCode, String) {
    let (status, v) = json_of(resp);
    (status, v["error"].as_str().unwrap_or_default().to_owned())
}

/// An HTTP client that shows redirects instead of following them.
fn client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(120))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn token(lab: &Lab, name: &str, scope: &str) -> String {
    let out = lab.cli(&["token", "create", name, "--scope", scope]);
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out).trim().to_owned()
}

/// The id part of a token `lht_<id>_<secret>`.
fn token_id(token: &str) -> String {
    token.split('_').nth(1).unwrap().to_owned()
}

/// The chromium to drive, and tests/e2e with its packages installed.
fn e2e_setup() -> (String, PathBuf) {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).is_file(),
        "{chromium} is missing: install Debian's chromium (apt-get install chromium) or set CHROMIUM"
    );
    let e2e = repo_root().join("tests/e2e");
    if !e2e.join("node_modules/playwright-core").is_dir() {
        let st = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&e2e)
            .status()
            .expect("npm is needed for the dashboard's end-to-end test");
        assert!(st.success(), "npm ci in tests/e2e failed");
    }
    (chromium, e2e)
}

/// Run one end-to-end script; asserts it printed `E2E OK` and left these
/// screenshots.
fn run_e2e(script: &str, env: &[(&str, &str)], screenshots: &[&str]) {
    let (chromium, e2e) = e2e_setup();
    let shots = repo_root().join("target/e2e-screenshots");
    let start = Instant::now();
    let out = Command::new("node")
        .arg(script)
        .current_dir(&e2e)
        .env("SCREENSHOT_DIR", &shots)
        .env("CHROMIUM", &chromium)
        .envs(env.iter().copied())
        .output()
        .expect("node is needed for the dashboard's end-to-end test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    println!("{script} run time: {:.1} s", start.elapsed().as_secs_f64());
    assert!(
        out.status.success() && stdout.contains("E2E OK"),
        "the end-to-end test {script} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    for name in screenshots {
        assert!(shots.join(format!("{name}.png")).is_file(), "{name}.png");
    }
}

/// A request with this bearer token (none: the open-loopback mode).
fn with_auth(r: RequestBuilder, auth: Option<&str>) -> RequestBuilder {
    match auth {
        Some(t) => r.bearer_auth(t),
        None => r,
    }
}

/// Poll `GET /api/v1/jobs/{id}` until its status is `want` (60 s).
fn wait_status(http: &Client, server: &Server, auth: Option<&str>, id: &str, want: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, rec) = json_of(
            with_auth(http.get(server.url(&format!("/api/v1/jobs/{id}"))), auth)
                .send()
                .unwrap(),
        );
        assert_eq!(status, StatusCode::OK, "{rec}");
        if rec["status"] == want {
            return rec;
        }
        assert!(
            Instant::now() < deadline,
            "job {id} is {} after 60 s, not {want}",
            rec["status"]
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The jobs of an experiment, through the API.
fn jobs_of(http: &Client, server: &Server, auth: Option<&str>, experiment: &str) -> Vec<Value> {
    let (status, page) = json_of(
        with_auth(
            http.get(server.url(&format!("/api/v1/jobs?experiment={experiment}&limit=1000"))),
            auth,
        )
        .send()
        .unwrap(),
    );
    assert_eq!(status, StatusCode::OK, "{page}");
    page["jobs"].as_array().unwrap().clone()
}

/// The body of a cross-site JSON launch: a `text/plain` form whose one
/// field's name and value join into this JSON (`name=value`), so a plain
/// HTML form can post it. tests/e2e/auth.mjs builds the same.
fn forged_launch(digest: &str, experiment: &str) -> String {
    format!(
        r#"{{"plugin":"{digest}","experiment":"{experiment}","config":{{"scenario":"all-api","target":"="}}}}"#
    ) + "\r\n"
}
#[test]
fn the_dashboard_launches_watches_compares_and_cancels_in_chromium() {
    let lab = Lab::new();
    let server = Server::start(&lab);
    let http = client();

    // The page itself: embedded, with a strict CSP.
    let page = http.get(server.url("/")).send().unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(page.text().unwrap().contains("/assets/js/app.js"));
    assert_eq!(
        http.get(server.url("/assets/../Cargo.toml"))
            .send()
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );

    // The plugins the browser launches, uploaded through the API.
    let mut digests = std::collections::HashMap::new();
    for name in ["probe", "datagen", "trainer"] {
        let (status, p) = json_of(
            http.post(server.url("/api/v1/plugins"))
                .body(std::fs::read(guest("rust", name)).unwrap())
                .send()
                .unwrap(),
        );
        assert_eq!(status, StatusCode::CREATED, "{p}");
        digests.insert(name, p["blake3"].as_str().unwrap().to_owned());
    }
    // The `sentiment` dataset the trainer reads, generated and waited for.
    let (status, rec) = json_of(
        http.post(server.url("/api/v1/jobs"))
            .json(&json!({"plugin": digests["datagen"], "config": {"rows": 20000}, "experiment": "data"}))
            .send()
            .unwrap(),
    );
    assert_eq!(status, StatusCode::CREATED, "{rec}");
    let mut events = String::new();
    BufReader::new(
        http.get(server.url(&format!(
            "/api/v1/jobs/{}/events",
            rec["id"].as_str().unwrap()
        )))
        .send()
        .unwrap(),
    )
    .read_to_string(&mut events)
    .unwrap();
    assert!(
        events.contains(r#""event":"ended","status":"COMPLETE""#),
        "{events}"
    );

    // A pipeline run the browser watches, cancels and resumes: `wait`
    // runs until it is cancelled (the probe's cooperative scenario). Its
    // dataset has its own name (the form's launches above grant
    // `sentiment` by name), and no stage runs the trainer (the runs table
    // step counts the trainer's runs).
    let pipeline = format!(
        r#"name = "e2e"
experiment = "e2e-pipeline"
workers = 3
[stages.generate]
plugin = "{}.wasm"
config = {{ rows = 200, dataset_name = "e2e-pipeline-data" }}
[stages.score]
plugin = "{}.wasm"
needs = ["generate"]
config = {{ scenario = "bench", target = "log", count = 1 }}
matrix = {{ ratio = [0.1, 0.5] }}
[stages.wait]
plugin = "{}.wasm"
needs = ["generate"]
config = {{ scenario = "cooperative" }}
"#,
        digests["datagen"], digests["probe"], digests["probe"]
    );
    let (status, run) = json_of(
        http.post(server.url("/api/v1/pipelines"))
            .json(&json!({ "pipeline": pipeline }))
            .send()
            .unwrap(),
    );
    assert_eq!(status, StatusCode::CREATED, "{run}");
    let run_id = run["id"].as_str().unwrap().to_owned();

    // An app the Apps page shows: three answers, one predictor error.
    let (status, p) = json_of(
        http.post(server.url("/api/v1/plugins"))
            .body(std::fs::read(guest("rust", "predictor_probe")).unwrap())
            .send()
            .unwrap(),
    );
    assert_eq!(status, StatusCode::CREATED, "{p}");
    let (status, app) = json_of(
        http.post(server.url("/api/v1/apps"))
            .json(&json!({"name": "echo-app", "plugin": p["blake3"], "instances": 2}))
            .send()
            .unwrap(),
    );
    assert_eq!(status, StatusCode::CREATED, "{app}");
    for input in [
        json!({"echo": 1}),
        json!({"echo": 2}),
        json!({"echo": 3}),
        json!({"fail": "no"}),
    ] {
        let resp = http
            .post(server.url("/api/v1/apps/echo-app/predict"))
            .json(&json!({ "inputs": [input] }))
            .send()
            .unwrap();
        assert!(
            matches!(resp.status().as_u16(), 200 | 422),
            "{:?}",
            resp.status()
        );
    }

    run_e2e(
        "dashboard.mjs",
        &[("LABHOST_URL", &server.base), ("PIPELINE_RUN", &run_id)],
        &[
            "1-run-live",
            "2-run-complete",
            "3-xss-as-text",
            "4-runs-table",
            "5-compare",
            "6-datasets",
            "7-pipeline",
            "8-cancelled",
            "9-apps",
        ],
    );

    // What the browser did is in the workspace: two trainer runs, the XSS
    // probe run complete, the cooperative one cancelled.
    let (_, page) = json_of(
        http.get(server.url("/api/v1/jobs?limit=100"))
            .send()
            .unwrap(),
    );
    let jobs = page["jobs"].as_array().unwrap();
    let count = |experiment: &str, status: &str| {
        jobs.iter()
            .filter(|j| j["experiment"] == experiment && j["status"] == status)
            .count()
    };
    assert_eq!(count("e2e-train", "COMPLETE"), 2, "{page}");
    assert_eq!(count("e2e-xss", "COMPLETE"), 1, "{page}");
    assert_eq!(count("e2e-cancel", "CANCELLED"), 1, "{page}");
    // The pipeline the browser cancelled, resumed and cancelled again:
    // `generate` ran once, `wait` twice, both of its jobs cancelled.
    let (_, v) = json_of(
        http.get(server.url(&format!("/api/v1/pipelines/{run_id}")))
            .send()
            .unwrap(),
    );
    assert_eq!(v["run"]["status"], "CANCELLED", "{v}");
    assert_eq!(v["run"]["resumes"], 1, "{v}");
    let attempts = |name: &str| -> Vec<String> {
        let inst = v["run"]["instances"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["name"] == name)
            .unwrap_or_else(|| panic!("no instance {name}: {v}"));
        inst["attempts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["status"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(attempts("generate"), ["COMPLETE"]);
    assert_eq!(attempts("wait"), ["CANCELLED", "CANCELLED"]);
}

#[test]
fn the_dashboard_logs_in_and_refuses_cross_site_requests_in_chromium() {
    let lab = Lab::new();
    let run = token(&lab, "browser", "run");
    let read = token(&lab, "viewer", "read");

    // An eval table from an LLM judge (through the CLI, with a fake
    // chat-completions server): one topic is an XSS payload, so questions
    // and answers of the judged rows hold it.
    let llm = TestServer::start();
    let v1 = llm.url("/v1");
    let endpoint = format!("endpoint={v1}");
    let cli_with_key = |args: &[&str]| {
        let mut all = vec!["--allow-http", &v1, "--http-header"];
        all.push("Authorization: Bearer {secret:OPENAI_API_KEY}");
        let out = Command::new(labhost_bin())
            .arg("--workspace")
            .arg(lab.root())
            .arg("run")
            .args(args)
            .args(&all)
            .env("OPENAI_API_KEY", OPENAI_KEY)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    };
    let topics = [
        XSS,
        "attention",
        "bias",
        "calibration",
        "dropout",
        "embeddings",
        "fine-tuning",
        "gradients",
        "hyperparameters",
        "inference",
        "kernels",
        "learning rate schedules",
    ];
    let topics = format!("topics={}", serde_json::to_string(&topics).unwrap());
    let gen = guest("python", "llm_datagen");
    let judge = guest("rust", "llm_judge");
    cli_with_key(&[
        gen.to_str().unwrap(),
        "-c",
        &endpoint,
        "-c",
        &topics,
        "-c",
        "pairs_per_topic=2",
    ]);
    cli_with_key(&[judge.to_str().unwrap(), "--dataset", "qa", "-c", &endpoint]);
    let judged = lab
        .ws()
        .jobs(None)
        .unwrap()
        .into_iter()
        .find(|j| j.plugin.name == "llm-judge")
        .unwrap();
    assert_eq!(
        (judged.evals.len(), judged.evals[0].count),
        (1, 24),
        "{}",
        lab.log(&judged)
    );

    let server = Server::start(&lab);
    let http = client();
    let (status, probe) = json_of(
        http.post(server.url("/api/v1/plugins"))
            .bearer_auth(&run)
            .body(std::fs::read(guest("rust", "probe")).unwrap())
            .send()
            .unwrap(),
    );
    assert_eq!(status, StatusCode::CREATED, "{probe}");

    run_e2e(
        "auth.mjs",
        &[
            ("LABHOST_URL", &server.base),
            ("RUN_TOKEN", &run),
            ("READ_TOKEN", &read),
            ("JUDGE_JOB", &judged.id),
            ("EVAL_ROWS", "24"),
        ],
        &[
            "auth-1-login",
            "auth-2-login-refused",
            "auth-3-cross-site-refused",
            "auth-4-eval-xss-as-text",
            "auth-5-eval-table",
            "auth-6-dataset-xss-as-text",
            "auth-7-read-refused",
        ],
    );

    // What the browser did and did not do, as the API tells it.
    let auth = Some(run.as_str());
    assert_eq!(jobs_of(&http, &server, auth, "evil").len(), 0);
    assert_eq!(jobs_of(&http, &server, auth, "e2e-read").len(), 0);
    let coop = jobs_of(&http, &server, auth, "e2e-auth-coop");
    assert_eq!(
        coop.iter()
            .map(|j| j["status"].as_str())
            .collect::<Vec<_>>(),
        [Some("CANCELLED")]
    );
    let runs = jobs_of(&http, &server, auth, "e2e-auth");
    assert_eq!(runs.len(), 2);
    for j in &runs {
        assert_eq!(
            (j["status"].as_str(), j["config"]["scenario"].as_str()),
            (Some("COMPLETE"), Some("all-api"))
        );
    }
    assert_eq!(
        jobs_of(&http, &server, auth, "default")
            .iter()
            .filter(|j| j["plugin"]["name"] == "llm-judge")
            .count(),
        1,
        "the judge was not rerun"
    );
}

/// A logged-in browser, as the server sees it: its cookie and CSRF token.
struct Login {
    cookie: String,
    csrf: String,
}

impl Login {
    /// `POST /login` with `token` from this server's own page.
    fn new(http: &Client, server: &Server, token: &str) -> (Login, String) {
        let resp = http
            .post(server.url("/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("origin", &server.base)
            .body(format!("token={token}"))
            .send()
            .unwrap();
        assert_eq!(resp.status(), StatusCode::SEE_OTHER);
        assert_eq!(resp.headers()["location"], "/");
        let set = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
        let cookie = set.split(';').next().unwrap().to_owned();
        let (status, v) = json_of(
            http.get(server.url("/api/v1/session"))
                .header("cookie", &cookie)
                .send()
                .unwrap(),
        );
        assert_eq!(status, StatusCode::OK, "{v}");
        let csrf = v["csrf"].as_str().unwrap().to_owned();
        (Login { cookie, csrf }, set)
    }

    /// A request carrying the session cookie (and nothing else).
    fn bare(&self, r: RequestBuilder) -> RequestBuilder {
        r.header("cookie", &self.cookie)
    }

    /// A request as the dashboard's own page makes it: cookie, this
    /// origin, the CSRF token.
    fn page(&self, server: &Server, r: RequestBuilder) -> RequestBuilder {
        self.bare(r)
            .header("origin", &server.base)
            .header("x-csrf-token", &self.csrf)
    }
}

#[test]
fn sessions_cookies_csrf_and_origins_are_checked_exactly() {
    let lab = Lab::new();
    let run = token(&lab, "browser", "run");
    let read = token(&lab, "viewer", "read");
    let doomed = token(&lab, "doomed", "run");
    let server = Server::start(&lab);
    let port = server.base.rsplit(':').next().unwrap().to_owned();
    let http = client();
    let jobs = server.url("/api/v1/jobs");
    const MISSING_CSRF: &str = "missing x-csrf-token header: a session's state-changing request carries the CSRF token from GET /api/v1/session";
    const WRONG_CSRF: &str = "wrong x-csrf-token for this session";
    const NO_SESSION: &str = "no such session (logged out, or the server restarted): log in again";

    // The probe, uploaded with the bearer token; a good job that keeps
    // running beside every attack below.
    let (status, probe) = json_of(
        http.post(server.url("/api/v1/plugins"))
            .bearer_auth(&run)
            .body(std::fs::read(guest("rust", "probe")).unwrap())
            .send()
            .unwrap(),
    );
    assert_eq!(status, StatusCode::CREATED, "{probe}");
    let digest = probe["blake3"].as_str().unwrap().to_owned();

    // No session: the dashboard sends the browser to the login form.
    let resp = http.get(server.url("/")).send().unwrap();
    assert_eq!(
        (resp.status(), resp.headers()["location"].to_str().unwrap()),
        (StatusCode::SEE_OTHER, "/login")
    );
    let resp = http.get(server.url("/login")).send().unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("form-action 'self'"));
    assert!(resp
        .text()
        .unwrap()
        .contains(r#"<form method="post" action="/login""#));

    // Refused logins: the form again with the reason, and no cookie.
    let login = |body: &str, origin: &str| {
        let resp = http
            .post(server.url("/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("origin", origin)
            .body(body.to_owned())
            .send()
            .unwrap();
        assert!(resp.headers().get("set-cookie").is_none());
        let status = resp.status();
        (status, resp.text().unwrap())
    };
    let refused = [
        (
            "token=lht_00000000_0000".to_owned(),
            server.base.clone(),
            StatusCode::UNAUTHORIZED,
            "That token is not valid (wrong, or revoked).",
        ),
        (
            "token=".into(),
            server.base.clone(),
            StatusCode::BAD_REQUEST,
            "Paste an API token to log in.",
        ),
        (
            format!("token={run}"),
            "http://127.0.0.1:1".into(),
            StatusCode::FORBIDDEN,
            "Cross-origin login refused: log in from this server&#39;s own page.",
        ),
        (
            format!("token={}", "x".repeat(9000)),
            server.base.clone(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "The login form is too large.",
        ),
    ];
    for (body, origin, status, message) in &refused {
        let (got, html) = login(body, origin);
        assert_eq!(got, *status, "{html}");
        assert!(
            html.contains(&format!(
                r#"<p class="error" id="login-error" role="alert">{message}</p>"#
            )),
            "{html}"
        );
    }

    // A run token logs in: the cookie's flags, the session's view.
    let (me, set_cookie) = Login::new(&http, &server, &run);
    let value = me
        .cookie
        .strip_prefix(&format!("labhost_session_{port}="))
        .unwrap();
    assert!(value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(
        set_cookie,
        format!(
            "{}; Path=/; HttpOnly; SameSite=Strict; Max-Age=43200",
            me.cookie
        )
    );
    let (status, view) = json_of(
        me.bare(http.get(server.url("/api/v1/session")))
            .send()
            .unwrap(),
    );
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (
            view["auth"].as_str(),
            view["scope"].as_str(),
            view["token"].as_str(),
            view["csrf"].as_str().map(str::len)
        ),
        (
            Some("session"),
            Some("run"),
            Some(token_id(&run).as_str()),
            Some(64)
        )
    );
    assert_ne!(view["csrf"].as_str(), Some(value));
    let resp = me.bare(http.get(server.url("/"))).send().unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    // Reading needs no CSRF token.
    assert_eq!(
        me.bare(http.get(&jobs)).send().unwrap().status(),
        StatusCode::OK
    );

    // The good job, launched as the page does.
    let (status, good) = json_of(
        me.page(&server, http.post(&jobs))
            .json(&json!({"plugin": digest, "config": {"scenario": "cooperative"}, "experiment": "good"}))
            .send()
            .unwrap(),
    );
    assert_eq!(status, StatusCode::CREATED, "{good}");
    let good = good["id"].as_str().unwrap().to_owned();
    wait_status(&http, &server, Some(&run), &good, "RUNNING");

    // A second session of the same token has its own CSRF token.
    let (other, _) = Login::new(&http, &server, &run);
    assert_ne!(other.csrf, me.csrf);
    assert_ne!(other.cookie, me.cookie);

    // State-changing requests with the cookie but without this origin or
    // the session's own CSRF token: launch (the forged text/plain body of a
    // cross-site form) and cancel of the good job.
    let forged = forged_launch(&digest, "evil");
    let cancel = server.url(&format!("/api/v1/jobs/{good}/cancel"));
    let origin = server.base.as_str();
    type Tweak<'a> = Box<dyn Fn(RequestBuilder) -> RequestBuilder + 'a>;
    let attacks: Vec<(&str, Tweak, &str)> = vec![
        (
            "no CSRF token",
            Box::new(|r| me.bare(r).header("origin", origin)),
            MISSING_CSRF,
        ),
        (
            "a wrong CSRF token",
            Box::new(|r| {
                me.bare(r)
                    .header("origin", origin)
                    .header("x-csrf-token", "0".repeat(64))
            }),
            WRONG_CSRF,
        ),
        (
            "another session's CSRF token",
            Box::new(|r| {
                me.bare(r)
                    .header("origin", origin)
                    .header("x-csrf-token", &other.csrf)
            }),
            WRONG_CSRF,
        ),
        (
            "the CSRF token from another origin",
            Box::new(|r| {
                me.bare(r)
                    .header("origin", "http://127.0.0.1:1")
                    .header("x-csrf-token", &me.csrf)
            }),
            "cross-origin request refused (Origin http://127.0.0.1:1 is not this server)",
        ),
        (
            "a same-site (another port) page",
            Box::new(|r| {
                me.bare(r)
                    .header("origin", "http://127.0.0.1:1")
                    .header("sec-fetch-site", "same-site")
                    .header("x-csrf-token", &me.csrf)
            }),
            "cross-origin request refused (Sec-Fetch-Site: same-site)",
        ),
        (
            "neither Origin nor Sec-Fetch-Site",
            Box::new(|r| me.bare(r).header("x-csrf-token", &me.csrf)),
            "a state-changing request with a session cookie needs an Origin or Sec-Fetch-Site header",
        ),
    ];
    for (what, tweak, message) in &attacks {
        let launch = tweak(http.post(&jobs))
            .header("content-type", "text/plain")
            .body(forged.clone());
        assert_eq!(
            error_of(launch.send().unwrap()),
            (StatusCode::FORBIDDEN, message.to_string()),
            "launch with {what}"
        );
        assert_eq!(
            error_of(tweak(http.post(&cancel)).send().unwrap()),
            (StatusCode::FORBIDDEN, message.to_string()),
            "cancel with {what}"
        );
    }
    assert_eq!(jobs_of(&http, &server, Some(&run), "evil").len(), 0);
    wait_status(&http, &server, Some(&run), &good, "RUNNING");
    // The forged body is a real launch request: a bearer token (which no
    // browser attaches by itself) launches it.
    let (status, control) = json_of(
        http.post(&jobs)
            .bearer_auth(&run)
            .header("content-type", "text/plain")
            .body(forged_launch(&digest, "control"))
            .send()
            .unwrap(),
    );
    assert_eq!(status, StatusCode::CREATED, "{control}");

    // A read session reads, and may not launch.
    let (viewer, _) = Login::new(&http, &server, &read);
    assert_eq!(
        viewer.bare(http.get(&jobs)).send().unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        error_of(
            viewer
                .page(&server, http.post(&jobs))
                .json(&json!({"plugin": digest, "experiment": "viewer"}))
                .send()
                .unwrap()
        ),
        (
            StatusCode::FORBIDDEN,
            "launching a job needs a token with the `run` scope (this one has `read`)".into()
        )
    );
    assert_eq!(jobs_of(&http, &server, Some(&run), "viewer").len(), 0);

    // The page's own cancel works, and the job ends.
    let resp = me.page(&server, http.post(&cancel)).send().unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    wait_status(&http, &server, Some(&run), &good, "CANCELLED");

    // Log out: needs the CSRF token too; then the cookie is dead.
    let logout = server.url("/logout");
    assert_eq!(
        error_of(
            me.bare(http.post(&logout))
                .header("origin", origin)
                .send()
                .unwrap()
        ),
        (StatusCode::FORBIDDEN, MISSING_CSRF.into())
    );
    let resp = me.page(&server, http.post(&logout)).send().unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        resp.headers()["set-cookie"],
        format!("labhost_session_{port}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0").as_str()
    );
    assert_eq!(
        error_of(me.bare(http.get(&jobs)).send().unwrap()),
        (StatusCode::UNAUTHORIZED, NO_SESSION.into())
    );
    let resp = me.bare(http.get(server.url("/"))).send().unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    // The other session of the same token lives on.
    assert_eq!(
        other.bare(http.get(&jobs)).send().unwrap().status(),
        StatusCode::OK
    );
    // A made-up cookie is no session.
    assert_eq!(
        error_of(
            http.get(&jobs)
                .header(
                    "cookie",
                    format!("labhost_session_{port}={}", "ab".repeat(32))
                )
                .send()
                .unwrap()
        ),
        (StatusCode::UNAUTHORIZED, NO_SESSION.into())
    );

    // Revoking the token ends its sessions at their next request.
    let (revoked, _) = Login::new(&http, &server, &doomed);
    assert_eq!(
        revoked.bare(http.get(&jobs)).send().unwrap().status(),
        StatusCode::OK
    );
    let out = lab.cli(&["token", "revoke", &token_id(&doomed)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        error_of(revoked.bare(http.get(&jobs)).send().unwrap()),
        (
            StatusCode::UNAUTHORIZED,
            "the session's token was revoked: log in again".into()
        )
    );
    assert_eq!(
        error_of(revoked.bare(http.get(&jobs)).send().unwrap()),
        (StatusCode::UNAUTHORIZED, NO_SESSION.into())
    );
    let (status, html) = login(&format!("token={doomed}"), origin);
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{html}");

    // Sessions expire: a second server with a 2 s lifetime. The first
    // server's cookie means nothing to it (another port, another name).
    let short = Server::start_with_env(&lab, &[("LABHOST_SESSION_TTL", "2s")]);
    let (brief, set_cookie) = Login::new(&http, &short, &read);
    assert!(set_cookie.ends_with("; Max-Age=2"), "{set_cookie}");
    assert_eq!(
        error_of(
            other
                .bare(http.get(short.url("/api/v1/jobs")))
                .send()
                .unwrap()
        )
        .0,
        StatusCode::UNAUTHORIZED
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let expired = loop {
        let resp = brief
            .bare(http.get(short.url("/api/v1/jobs")))
            .send()
            .unwrap();
        if resp.status() != StatusCode::OK {
            break error_of(resp);
        }
        assert!(Instant::now() < deadline, "the session did not expire");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        expired,
        (
            StatusCode::UNAUTHORIZED,
            "the session expired: log in again".into()
        )
    );
    assert_eq!(
        error_of(
            brief
                .bare(http.get(short.url("/api/v1/jobs")))
                .send()
                .unwrap()
        ),
        (StatusCode::UNAUTHORIZED, NO_SESSION.into())
    );
    drop(short);
    let bad = Command::new(labhost_bin())
        .arg("--workspace")
        .arg(lab.root())
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env("LABHOST_SESSION_TTL", "soon")
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert_eq!(
        stderr(&bad).trim(),
        "error: LABHOST_SESSION_TTL: invalid duration `soon`: expected e.g. 90s, 15m, 2h"
    );

    // Bearer tokens are unaffected: no cookie, no CSRF token needed.
    let (status, v) = json_of(
        http.post(server.url(&format!(
            "/api/v1/jobs/{}/rerun",
            control["id"].as_str().unwrap()
        )))
        .bearer_auth(&run)
        .send()
        .unwrap(),
    );
    assert_eq!(status, StatusCode::CREATED, "{v}");
}

#[test]
fn the_open_loopback_mode_refuses_other_origins_and_hosts() {
    let lab = Lab::new();
    let server = Server::start(&lab);
    let http = client();
    let jobs = server.url("/api/v1/jobs");
    let port = server.base.rsplit(':').next().unwrap().to_owned();

    // As before: no login, and a client that is no browser needs nothing.
    let resp = http.get(server.url("/")).send().unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = http.get(server.url("/login")).send().unwrap();
    assert!(resp.text().unwrap().contains(
        "This server has no API tokens: the dashboard works without logging in on this machine."
    ));
    let (status, probe) = json_of(
        http.post(server.url("/api/v1/plugins"))
            .body(std::fs::read(guest("rust", "probe")).unwrap())
            .send()
            .unwrap(),
    );
    assert_eq!(status, StatusCode::CREATED, "{probe}");
    let digest = probe["blake3"].as_str().unwrap().to_owned();
    let (status, view) = json_of(http.get(server.url("/api/v1/session")).send().unwrap());
    assert_eq!(
        (status, view),
        (
            StatusCode::OK,
            json!({"auth": "open", "scope": "run", "token": null, "csrf": null, "expires_at": null})
        )
    );
    // The dashboard's own page (same origin) launches.
    let (status, good) = json_of(
        http.post(&jobs)
            .header("origin", &server.base)
            .header("sec-fetch-site", "same-origin")
            .json(&json!({"plugin": digest, "config": {"scenario": "cooperative"}, "experiment": "good"}))
            .send()
            .unwrap(),
    );
    assert_eq!(status, StatusCode::CREATED, "{good}");
    let good = good["id"].as_str().unwrap().to_owned();

    // Another site's page (another port, another name) may not, even
    // with the form's text/plain JSON; nor a name rebound to 127.0.0.1.
    let forged = forged_launch(&digest, "evil");
    let cancel = server.url(&format!("/api/v1/jobs/{good}/cancel"));
    for (header, value, message) in [
        (
            "origin",
            "http://127.0.0.1:1".to_owned(),
            "cross-origin request refused (Origin http://127.0.0.1:1 is not this server)".to_owned(),
        ),
        (
            "sec-fetch-site",
            "cross-site".into(),
            "cross-origin request refused (Sec-Fetch-Site: cross-site)".into(),
        ),
        (
            "host",
            format!("rebound.example:{port}"),
            format!("this server has no API tokens and answers only requests addressed to a loopback name (127.0.0.1, localhost), not Host `rebound.example:{port}`"),
        ),
    ] {
        let launch = http
            .post(&jobs)
            .header(header, &value)
            .header("content-type", "text/plain")
            .body(forged.clone());
        assert_eq!(
            error_of(launch.send().unwrap()),
            (StatusCode::FORBIDDEN, message.clone()),
            "{header}: {value}"
        );
        assert_eq!(
            error_of(http.post(&cancel).header(header, &value).send().unwrap()),
            (StatusCode::FORBIDDEN, message.clone()),
            "{header}: {value}"
        );
    }
    // A rebound name cannot read either.
    assert_eq!(
        error_of(
            http.get(&jobs)
                .header("host", format!("rebound.example:{port}"))
                .send()
                .unwrap()
        )
        .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(jobs_of(&http, &server, None, "evil").len(), 0);
    // A stale session cookie (another server's) does not get in the way.
    let resp = http
        .get(&jobs)
        .header(
            "cookie",
            format!("labhost_session_{port}={}", "ab".repeat(32)),
        )
        .send()
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = http
        .post(&cancel)
        .header("origin", &server.base)
        .send()
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    wait_status(&http, &server, None, &good, "CANCELLED");
}
