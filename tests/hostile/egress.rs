//! HTTP egress and secret attacks. Each runs the evil guest (with a
//! well-behaved probe job beside it, see `Arena::attack`) against real HTTP
//! servers on 127.0.0.1 and asserts the exact refusal, what reached the
//! servers, and that nothing leaked.

use labhost::{HttpGrant, Secrets};
use labhost_tests::httpd::{TestServer, BIG};

use crate::*;

fn grant(url: &str) -> HttpGrant {
    url.parse().unwrap()
}

/// Ungranted hosts, ports, paths and spellings are refused before a byte
/// is sent: only the granted echo endpoint and the granted redirect to it
/// reach the server; the second server (another port) sees nothing.
#[test]
fn only_granted_urls_are_reachable() {
    let a = arena();
    let server = TestServer::start();
    let other = TestServer::start();
    let port = server.addr.port();
    let echo = server.url("/echo");
    let to_other = format!("{}?to={}", server.url("/redirect"), other.url("/echo"));
    let to_echo = format!("{}?to={}", server.url("/redirect"), echo);
    let urls = [
        echo.clone(),
        other.url("/echo"),
        format!("http://localhost:{port}/echo"),
        server.url("/count"),
        server.url("/echo/../count"),
        format!("http://127.0.0.1:{port}@evil.example/echo"),
        format!("http://evil.example@127.0.0.1:{port}/echo"),
        format!("http://2130706433:{port}/echo"),
        format!("http://0x7f000001:{port}/echo"),
        format!("http://[::ffff:127.0.0.1]:{port}/echo"),
        format!("http://[::1]:{port}/echo"),
        "http://xn--80ak6aa92e.com/".to_owned(),
        "http://аpple.com/".to_owned(),
        format!("https://127.0.0.1:{port}/echo"),
        "file:///etc/passwd".to_owned(),
        to_other.clone(),
        to_echo.clone(),
    ];
    let rec = a.attack("http-urls", json!({"target": urls.join(" ")}), |spec| {
        spec.sandbox.grants.http = vec![grant(&echo), grant(&server.url("/redirect"))];
    });
    a.ended(&rec, JobStatus::Complete, "probed");
    let not_granted = |u: &str| {
        format!(
            "`{u}` is not granted to this job (granted: {echo}, {})",
            server.url("/redirect")
        )
    };
    let expected = vec![
        format!("{echo} ok 200"),
        format!("{} denied {}", other.url("/echo"), not_granted(&other.url("/echo"))),
        format!("http://localhost:{port}/echo denied {}", not_granted(&format!("http://localhost:{port}/echo"))),
        format!("{} denied {}", server.url("/count"), not_granted(&server.url("/count"))),
        format!("{} denied {}", server.url("/echo/../count"), not_granted(&server.url("/count"))),
        format!("http://127.0.0.1:{port}@evil.example/echo denied `http://127.0.0.1:{port}@evil.example/echo`: URLs with user info (`user@host`) are refused"),
        format!("http://evil.example@127.0.0.1:{port}/echo denied `http://evil.example@127.0.0.1:{port}/echo`: URLs with user info (`user@host`) are refused"),
        format!("http://2130706433:{port}/echo denied `http://2130706433:{port}/echo`: host `2130706433` is not in canonical form (it means `127.0.0.1`): write the host as granted"),
        format!("http://0x7f000001:{port}/echo denied `http://0x7f000001:{port}/echo`: host `0x7f000001` is not in canonical form (it means `127.0.0.1`): write the host as granted"),
        format!("http://[::ffff:127.0.0.1]:{port}/echo denied `http://[::ffff:127.0.0.1]:{port}/echo`: host `[::ffff:127.0.0.1]` is not in canonical form (it means `[::ffff:7f00:1]`): write the host as granted"),
        format!("http://[::1]:{port}/echo denied {}", not_granted(&format!("http://[::1]:{port}/echo"))),
        format!("http://xn--80ak6aa92e.com/ denied {}", not_granted("http://xn--80ak6aa92e.com/")),
        "http://аpple.com/ denied `http://аpple.com/`: host `аpple.com` is not in canonical form (it means `xn--pple-43d.com`): write the host as granted".to_owned(),
        format!("https://127.0.0.1:{port}/echo denied {}", not_granted(&format!("https://127.0.0.1:{port}/echo"))),
        "file:///etc/passwd denied `file:///etc/passwd`: scheme `file` is not HTTP: only http:// and https:// URLs".to_owned(),
        format!(
            "{to_other} denied redirect from `{}` refused: {}",
            server.url("/redirect"),
            not_granted(&other.url("/echo"))
        ),
        format!("{to_echo} ok 200"),
    ];
    assert_eq!(a.reports(&rec, "http"), expected, "{}", a.tail(&rec));
    // The echo, the two redirects, and the echo after the granted one.
    assert_eq!(server.hits(), 4);
    assert_eq!(other.hits(), 0, "nothing reached the ungranted server");
    assert_eq!((rec.http.requests, rec.http.denied), (4, 15));
    // Each request and refusal is logged, without queries.
    let log = a.lab.log(&rec);
    assert!(log.contains(&format!("http GET {echo} → 200 in ")), "{log}");
    assert!(
        log.contains(&format!("http GET {} → 302 in ", server.url("/redirect"))),
        "{log}"
    );
    for line in log.lines().filter(|l| l.contains(" HOST ")) {
        assert!(!line.contains("?to="), "the host logs no query: {line}");
    }
}

/// 10,000 requests against a limit of 50: the 51st is refused and the
/// server saw exactly 50.
#[test]
fn a_request_flood_stops_at_the_request_limit() {
    let a = arena();
    let server = TestServer::start();
    let url = server.url("/count");
    let rec = a.attack(
        "http-flood",
        json!({"target": url, "count": 10_000}),
        |spec| {
            spec.sandbox.grants.http = vec![grant(&url)];
            spec.sandbox.limits.http_requests = 50;
        },
    );
    a.ended(&rec, JobStatus::Complete, "flooded");
    a.expect_reports(
        &rec,
        &[
            ("flood-ok", "50"),
            (
                "flood-stopped",
                "limit-exceeded the job sent its 50 HTTP requests (limit max-http-requests)",
            ),
        ],
    );
    assert_eq!(server.hits(), 50);
    assert_eq!(rec.http.requests, 50);
}

/// A 1 GiB response is cut at the bytes-in limit; the job goes on.
#[test]
fn a_huge_response_is_cut_at_the_bytes_in_limit() {
    let a = arena();
    let server = TestServer::start();
    let url = server.url("/big");
    let rec = a.attack("http-once", json!({"target": url}), |spec| {
        spec.sandbox.grants.http = vec![grant(&url)];
        spec.sandbox.limits.http_bytes_in = 8 << 20;
    });
    a.ended(&rec, JobStatus::Complete, "requested");
    a.expect_reports(
        &rec,
        &[(
            "http",
            &format!("limit-exceeded the response from `{url}` is larger than the 8 MiB the job may still receive over HTTP (limit max-http-in 8 MiB)"),
        )],
    );
    // Reading stopped at the limit (plus at most one chunk), far from 1 GiB.
    assert!(
        rec.http.bytes_in > 8 << 20 && rec.http.bytes_in < (8 << 20) + (1 << 20),
        "{}",
        rec.http.bytes_in
    );
    assert!(rec.http.bytes_in < BIG);
}

/// A server that never answers, and one that trickles a byte a second,
/// are both ended by the per-request timeout.
#[test]
fn a_server_that_never_answers_is_timed_out() {
    let a = arena();
    let server = TestServer::start();
    for path in ["/slow", "/trickle"] {
        let url = server.url(path);
        let rec = a.attack("http-once", json!({"target": url}), |spec| {
            spec.sandbox.grants.http = vec![grant(&url)];
            spec.sandbox.limits.http_timeout = Duration::from_secs(1);
        });
        a.ended(&rec, JobStatus::Complete, "requested");
        a.expect_reports(
            &rec,
            &[(
                "http",
                &format!("network `{url}` did not answer within 1s (limit http-timeout 1s, max-http-time 30m)"),
            )],
        );
    }
    // And the job's own deadline ends a request in flight.
    let url = server.url("/slow");
    let rec = a.attack("http-once", json!({"target": url}), |spec| {
        spec.sandbox.grants.http = vec![grant(&url)];
        spec.sandbox.limits.timeout = Duration::from_secs(2);
    });
    a.ended(&rec, JobStatus::Failed, "time limit of 2s exceeded");
}

/// Headers a plugin may not set, and methods outside the list.
#[test]
fn smuggled_headers_and_methods_are_refused() {
    let a = arena();
    let server = TestServer::start();
    let url = server.url("/echo");
    let rec = a.attack("http-headers", json!({"target": url}), |spec| {
        spec.sandbox.grants.http = vec![grant(&url)];
    });
    a.ended(&rec, JobStatus::Complete, "headers tried");
    assert_eq!(
        a.reports(&rec, "header"),
        [
            "Host invalid-argument header `Host` is set by the host, not by plugins",
            "X-A invalid-argument the value of header `X-A` contains CR, LF or NUL",
            "Bad Name invalid-argument `Bad Name` is not a valid header name",
            "Content-Length invalid-argument header `Content-Length` is set by the host, not by plugins",
            "Proxy-Authorization invalid-argument header `Proxy-Authorization` is set by the host, not by plugins",
        ]
    );
    a.expect_reports(&rec, &[("method", "CONNECT invalid-argument")]);
    assert_eq!(server.hits(), 0);
}

/// A granted secret put in the log, stdout, the metadata (as value and
/// key), the status, the stage, the job's error, and echoed back by the
/// server from the injected header: redacted everywhere, on disk and in
/// the events.
#[test]
fn a_secret_never_reaches_the_record_the_log_or_the_events() {
    const SECRET: &str = "tok-9f8e7d6c5b4a";
    let a = arena();
    let server = TestServer::start();
    let url = server.url("/echo");
    let lab = &a.lab;
    let mut spec = lab.spec(&a.evil, json!({"attack": "secret-leaks", "target": url}));
    spec.sandbox.grants.http = vec![grant(&url)
        .with_header("Authorization: Bearer {secret:PROBE_SECRET}")
        .unwrap()];
    spec.sandbox.grants.secrets = vec!["PROBE_SECRET".into()];
    spec.secrets = Secrets::from_values([("PROBE_SECRET".into(), SECRET.into())]);
    let _guard = lab.rt.enter();
    let mut handle = lab.host.start(spec).unwrap();
    let mut events = handle.events();
    let rec = lab.rt.block_on(handle.wait()).unwrap();
    let mut seen = Vec::new();
    while let Ok(e) = events.try_recv() {
        seen.push(serde_json::to_string(&e).unwrap());
    }
    assert!(seen.len() > 5, "{seen:?}");
    for e in &seen {
        assert!(!e.contains(SECRET), "an event holds the secret: {e}");
    }
    a.ended(
        &rec,
        JobStatus::Failed,
        "plugin returned an error: failing with [redacted]",
    );
    // Names land in paths and records: one holding a secret is refused.
    a.expect_reports(
        &rec,
        &[
            ("metric-named", "invalid-argument"),
            ("artifact-named", "invalid-argument"),
        ],
    );
    assert!(rec.artifacts.is_empty());
    let log = lab.log(&rec);
    for line in [
        "the secret is [redacted]",
        "stdout secret [redacted]",
        r#"echoed: {"auth":"Bearer [redacted]""#,
    ] {
        assert!(log.contains(line), "{line}: {log}");
    }
    assert_eq!(
        json!(rec.metadata),
        json!({"key": "[redacted]", "[redacted]": "as a key"})
    );
    let stage = rec.status_stage.clone().unwrap();
    assert_eq!(
        (stage.status.as_str(), stage.error_message.as_deref()),
        ("status [redacted]", Some("error [redacted]"))
    );
    assert_eq!(rec.stage.as_deref(), Some("stage [redacted]"));
    assert!(!std::fs::read_to_string(lab.job_dir(&rec).join("job.json"))
        .unwrap()
        .contains(SECRET));
    let out = lab.cli(&["show", &rec.id, "--json"]);
    assert!(!labhost_tests::stdout(&out).contains(SECRET));
    let dump = lab.cli(&["logs", &rec.id]);
    assert!(!labhost_tests::stdout(&dump).contains(SECRET));

    // A secret the job was not granted is refused by name; nothing leaks
    // through the refusal.
    let mut spec = lab.spec(&a.evil, json!({"attack": "secret-leaks", "target": url}));
    spec.secrets = Secrets::from_values([("PROBE_SECRET".into(), SECRET.into())]);
    let rec = lab.run(spec);
    assert_eq!(
        rec.message.as_deref(),
        Some("plugin returned an error: denied: secret `PROBE_SECRET` is not granted to this job (grant it with --secret PROBE_SECRET)")
    );
}
