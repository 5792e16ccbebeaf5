//! Outbound HTTP to the job's granted endpoints (see `crate::egress` for
//! which URLs, `Limits::http_*` for how much). The request runs on the
//! job's runtime; the job's deadline drops it mid-flight like any guest
//! wait.

use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use crate::bindings::wit::http::{Host, Request, Response};
use crate::egress::{check_header, check_url, shown_text, shown_url};
use crate::error::{CallError, CallResult};
use crate::job::JobCtx;
use crate::state::HostState;
use crate::units::{human_bytes, human_duration};

/// Redirects followed per request.
const MAX_REDIRECTS: usize = 5;
/// Headers a guest may send with one request.
const MAX_HEADERS: usize = 64;

impl Host for HostState {
    async fn send(&mut self, request: Request) -> CallResult<Response> {
        let job = self.job()?;
        send(job, request).await
    }
}

async fn send(job: &mut JobCtx, request: Request) -> CallResult<Response> {
    let mut method = match request.method.to_ascii_uppercase().as_str() {
        m @ ("GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD") => {
            reqwest::Method::from_bytes(m.as_bytes()).expect("a standard method")
        }
        _ => {
            return Err(CallError::Invalid(format!(
                "HTTP method `{}` is not allowed (GET, POST, PUT, PATCH, DELETE, HEAD)",
                crate::text::for_terminal_line(&request.method)
            )))
        }
    };
    if request.headers.len() > MAX_HEADERS {
        return Err(CallError::Invalid(format!(
            "at most {MAX_HEADERS} request headers, got {}",
            request.headers.len()
        )));
    }
    let mut guest_headers = HeaderMap::new();
    let mut header_bytes = 0u64;
    for (name, value) in &request.headers {
        check_header(name, value).map_err(CallError::Invalid)?;
        header_bytes += (name.len() + value.len() + 4) as u64;
        guest_headers.append(
            HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| CallError::Invalid(e.to_string()))?,
            HeaderValue::from_str(value)
                .map_err(|e| CallError::Invalid(format!("header `{name}`: {e}")))?,
        );
    }
    let limits = job.record.sandbox.limits.clone();
    let per_request = match request.timeout_ms {
        Some(ms) => limits.http_timeout.min(Duration::from_millis(ms.into())),
        None => limits.http_timeout,
    };
    let mut body = request.body;
    let mut url_text = request.url;
    let mut from: Option<String> = None;
    for _hop in 0..=MAX_REDIRECTS {
        let grants = &job.record.sandbox.grants.http;
        let (url, grant) = match check_url(&url_text, grants) {
            Ok(v) => v,
            Err(why) => {
                job.record.http.denied += 1;
                let why = match &from {
                    Some(f) => format!("redirect from `{f}` refused: {why}"),
                    None => why,
                };
                job.host_log(&format!(
                    "http {method} {} denied: {why}",
                    shown_text(&url_text)
                ));
                return Err(CallError::Denied(why));
            }
        };
        let shown = shown_url(&url);
        // Limits, before anything is sent.
        let usage = &job.record.http;
        if usage.requests >= limits.http_requests {
            return Err(CallError::Limit(format!(
                "the job sent its {} HTTP requests (limit max-http-requests)",
                limits.http_requests
            )));
        }
        let out = body.len() as u64 + header_bytes;
        if usage.bytes_out + out > limits.http_bytes_out {
            return Err(CallError::Limit(format!(
                "sending {} to `{shown}` would exceed the {} the job may send over HTTP (limit max-http-out)",
                human_bytes(out),
                human_bytes(limits.http_bytes_out)
            )));
        }
        let spent = Duration::from_millis(usage.millis);
        let Some(left) = limits.http_time.checked_sub(spent).filter(|d| !d.is_zero()) else {
            return Err(CallError::Limit(format!(
                "the job spent its {} of HTTP time (limit max-http-time)",
                human_duration(limits.http_time)
            )));
        };
        let budget_in = limits.http_bytes_in.saturating_sub(usage.bytes_in);
        let timeout = per_request.min(left);

        // The grant's headers replace the guest's of the same name.
        let mut headers = guest_headers.clone();
        for (name, template) in &job.record.sandbox.grants.http[grant].headers {
            let value = job
                .secrets
                .fill(template)
                .map_err(|e| CallError::Trap(wasmtime::format_err!("{e}")))?;
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| CallError::Trap(wasmtime::format_err!("grant header: {e}")))?;
            let mut value = HeaderValue::from_str(&value)
                .map_err(|e| CallError::Trap(wasmtime::format_err!("grant header: {e}")))?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        let client = client(job)?;
        let req = client
            .request(method.clone(), url.clone())
            .headers(headers)
            .body(body.clone());
        let start = Instant::now();
        let result = tokio::time::timeout(timeout, exchange(req, budget_in)).await;
        let millis = start.elapsed().as_millis() as u64;
        let usage = &mut job.record.http;
        usage.requests += 1;
        usage.bytes_out += out;
        usage.millis += millis;
        let (status, resp_headers, resp_body) = match result {
            Err(_) => {
                job.host_log(&format!(
                    "http {method} {shown} timed out after {millis} ms ({} out)",
                    human_bytes(out)
                ));
                return Err(CallError::Network(format!(
                    "`{shown}` did not answer within {} (limit http-timeout {}, max-http-time {})",
                    human_duration(timeout),
                    human_duration(limits.http_timeout),
                    human_duration(limits.http_time)
                )));
            }
            Ok(Err(Failure::TooBig(read))) => {
                usage.bytes_in += read;
                job.host_log(&format!(
                    "http {method} {shown} response cut after {} ({millis} ms)",
                    human_bytes(read)
                ));
                return Err(CallError::Limit(format!(
                    "the response from `{shown}` is larger than the {} the job may still receive over HTTP (limit max-http-in {})",
                    human_bytes(budget_in),
                    human_bytes(limits.http_bytes_in)
                )));
            }
            Ok(Err(Failure::Network(why))) => {
                job.host_log(&format!(
                    "http {method} {shown} failed after {millis} ms: {why}"
                ));
                return Err(CallError::Network(format!("`{shown}`: {why}")));
            }
            Ok(Ok(v)) => v,
        };
        usage.bytes_in += resp_body.len() as u64;
        job.host_log(&format!(
            "http {method} {shown} → {} in {millis} ms ({} out, {} in)",
            status.as_u16(),
            human_bytes(out),
            human_bytes(resp_body.len() as u64)
        ));
        let location = resp_headers
            .get(reqwest::header::LOCATION)
            .and_then(|l| l.to_str().ok());
        if status.is_redirection() {
            if let Some(location) = location {
                let next = url.join(location).map_err(|e| {
                    CallError::Network(format!("`{shown}` redirected to a bad location: {e}"))
                })?;
                // 303, and 301/302 after POST, continue as GET without a body.
                if status == reqwest::StatusCode::SEE_OTHER
                    || (method == reqwest::Method::POST && status.as_u16() <= 302)
                {
                    method = reqwest::Method::GET;
                    body = Vec::new();
                }
                from = Some(shown);
                url_text = next.to_string();
                continue;
            }
        }
        return Ok(Response {
            status: status.as_u16(),
            headers: resp_headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: resp_body,
            url: url.to_string(),
        });
    }
    Err(CallError::Network(format!(
        "more than {MAX_REDIRECTS} redirects, last to `{}`",
        shown_text(&url_text)
    )))
}

enum Failure {
    /// The body passed the budget after this many bytes.
    TooBig(u64),
    Network(String),
}

/// Send and read the whole response, at most `budget` body bytes.
async fn exchange(
    req: reqwest::RequestBuilder,
    budget: u64,
) -> Result<(reqwest::StatusCode, HeaderMap, Vec<u8>), Failure> {
    let mut resp = req.send().await.map_err(network)?;
    let status = resp.status();
    let headers = std::mem::take(resp.headers_mut());
    if resp.content_length().is_some_and(|n| n > budget) {
        return Err(Failure::TooBig(0));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(network)? {
        if body.len() as u64 + chunk.len() as u64 > budget {
            return Err(Failure::TooBig(body.len() as u64 + chunk.len() as u64));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((status, headers, body))
}

/// A client error as one line, without the URL (reqwest's text holds it,
/// query included).
fn network(e: reqwest::Error) -> Failure {
    let mut cause: &dyn std::error::Error = &e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    let what = if e.is_connect() {
        "cannot connect"
    } else if e.is_body() || e.is_decode() {
        "reading the response failed"
    } else {
        "the request failed"
    };
    Failure::Network(format!("{what}: {cause}"))
}

/// The job's HTTP client: no proxy from the environment, no redirects of
/// its own (each hop is checked against the grants), no cookies.
fn client(job: &mut JobCtx) -> CallResult<reqwest::Client> {
    if let Some(c) = &job.http {
        return Ok(c.clone());
    }
    let c = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("labhost/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| {
            CallError::Trap(wasmtime::format_err!("cannot create the HTTP client: {e}"))
        })?;
    job.http = Some(c.clone());
    Ok(c)
}
