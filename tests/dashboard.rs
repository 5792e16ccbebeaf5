//! The web dashboard of `labhost serve` in a real browser: Debian's
//! headless Chromium driven by `playwright-core` (tests/e2e/dashboard.mjs)
//! against the real binary on 127.0.0.1, in the open-loopback mode (no
//! token configured). The browser launches a training job from the form
//! and watches its chart and log fill live, shows a log line and config
//! holding an XSS payload as text, downloads an artifact, filters the runs
//! table, compares two runs in one chart and cancels a running job with
//! the button. Screenshots go to target/e2e-screenshots/.
//!
//! Needs `node`/`npm` and `/usr/bin/chromium` (`apt-get install chromium`;
//! override with `CHROMIUM=`). `npm ci` is run in tests/e2e when its
//! node_modules is missing.

use std::io::{BufReader, Read};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use labhost_tests::{guest, repo_root, Lab, Server};
use reqwest::blocking::Client;
use reqwest::StatusCode;
use serde_json::{json, Value};

fn json_of(resp: reqwest::blocking::Response) -> (StatusCode, Value) {
    let status = resp.status();
    let text = resp.text().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}")),
    )
}

#[test]
fn the_dashboard_launches_watches_compares_and_cancels_in_chromium() {
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

    let lab = Lab::new();
    let server = Server::start(&lab);
    let http = Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();

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

    let shots = repo_root().join("target/e2e-screenshots");
    let start = Instant::now();
    let out = Command::new("node")
        .arg("dashboard.mjs")
        .current_dir(&e2e)
        .env("LABHOST_URL", &server.base)
        .env("SCREENSHOT_DIR", &shots)
        .env("CHROMIUM", &chromium)
        .output()
        .expect("node is needed for the dashboard's end-to-end test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    println!("e2e run time: {:.1} s", start.elapsed().as_secs_f64());
    assert!(
        out.status.success() && stdout.contains("E2E OK"),
        "the end-to-end test failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    for name in [
        "1-run-live",
        "2-run-complete",
        "3-xss-as-text",
        "4-runs-table",
        "5-compare",
        "6-cancelled",
    ] {
        assert!(shots.join(format!("{name}.png")).is_file(), "{name}.png");
    }

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
}
