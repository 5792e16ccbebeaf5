//! HTTP and secret attacks: reach ungranted URLs (other hosts and ports,
//! IP-literal, userinfo and IDN spellings, redirects), exhaust the HTTP
//! limits (request floods, a huge response, a server that never answers),
//! smuggle headers, and leak a granted secret into the log, the record,
//! the status and the job's error.

use lab::http::Request;
use serde_json::json;

use crate::{count, message, outcome, report, text};

/// GET each URL of `target` (whitespace-separated); report
/// `http <url> <outcome> <status or message>` for each.
pub fn http_urls() -> lab::Result<()> {
    for url in text("target").split_whitespace() {
        let r = Request::get(url).send();
        let detail = match &r {
            Ok(resp) => resp.status.to_string(),
            Err(_) => message(&r),
        };
        report("http", format!("{url} {} {detail}", outcome(&r)));
    }
    lab::finish("probed", &[])
}

/// GET `target` `count` times; report how many succeeded and how the first
/// failure read.
pub fn http_flood() -> lab::Result<()> {
    let mut ok = 0u64;
    for _ in 0..count() {
        let r = Request::get(&text("target")).send();
        if r.is_err() {
            report("flood-stopped", format!("{} {}", outcome(&r), message(&r)));
            break;
        }
        ok += 1;
    }
    report("flood-ok", ok);
    lab::finish("flooded", &[])
}

/// One GET of `target`, reported (a huge or never-ending response).
pub fn http_once() -> lab::Result<()> {
    let r = Request::get(&text("target")).send();
    let detail = match &r {
        Ok(resp) => format!("{} {} bytes", resp.status, resp.body.len()),
        Err(_) => message(&r),
    };
    report("http", format!("{} {detail}", outcome(&r)));
    lab::finish("requested", &[])
}

/// Headers a plugin may not set or smuggle.
pub fn http_headers() -> lab::Result<()> {
    let url = text("target");
    for (name, value) in [
        ("Host", "evil.example"),
        ("X-A", "a\r\nInjected: 1"),
        ("Bad Name", "x"),
        ("Content-Length", "0"),
        ("Proxy-Authorization", "x"),
    ] {
        let r = Request::get(&url).header(name, value).send();
        report("header", format!("{name} {} {}", outcome(&r), message(&r)));
    }
    let r = Request::new("CONNECT", &url).send();
    report("method", format!("CONNECT {}", outcome(&r)));
    lab::finish("headers tried", &[])
}

/// Put a granted secret everywhere the host records text; GET `target`
/// (a server that echoes the request headers) and log what comes back.
pub fn secret_leaks() -> lab::Result<()> {
    let secret = lab::secret("PROBE_SECRET")?;
    lab::info(&format!("the secret is {secret}"));
    println!("stdout secret {secret}");
    lab::update_metadata(&json!({"key": secret, secret.clone(): "as a key"}))?;
    lab::update_status(&format!("status {secret}"), None, Some(&format!("error {secret}")))?;
    lab::progress_stage(10.0, &format!("stage {secret}"))?;
    crate::report("metric-named", outcome(&lab::metric(&format!("m-{secret}"), 1.0, None)));
    std::fs::write(lab::work_dir().join("f"), "x")?;
    crate::report(
        "artifact-named",
        outcome(&lab::save_artifact("/work/f", Some(&format!("a-{secret}")))),
    );
    let echoed = Request::get(&text("target")).send()?;
    lab::info(&format!("echoed: {}", echoed.text()));
    Err(lab::Error::msg(format!("failing with {secret}")))
}
