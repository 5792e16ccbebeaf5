//! Outbound HTTP to the endpoints granted to the job
//! (`labhost run --allow-http URL`), through the host.
//!
//! ```ignore
//! let resp = lab::http::Request::post("http://127.0.0.1:8000/v1/chat/completions")
//!     .json(&serde_json::json!({"model": "judge", "messages": []}))?
//!     .send()?;
//! let answer: serde_json::Value = resp.json()?;
//! ```

use crate::{wit, Error, Result};

/// A request being built.
#[derive(Debug, Clone)]
pub struct Request {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    timeout_ms: Option<u32>,
}

/// A response: any status (a non-2xx status is not an error).
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The URL that answered (after redirects).
    pub url: String,
}

impl Request {
    pub fn new(method: &str, url: &str) -> Self {
        Request {
            method: method.into(),
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
            timeout_ms: None,
        }
    }
    pub fn get(url: &str) -> Self {
        Self::new("GET", url)
    }
    pub fn post(url: &str) -> Self {
        Self::new("POST", url)
    }
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }
    /// A JSON body, with `content-type: application/json`.
    pub fn json<T: serde::Serialize>(self, value: &T) -> Result<Self> {
        let body = serde_json::to_vec(value)?;
        Ok(self.header("content-type", "application/json").body(body))
    }
    /// A timeout shorter than the job's per-request limit.
    pub fn timeout(mut self, timeout: std::time::Duration) -> Self {
        self.timeout_ms = Some(timeout.as_millis().min(u32::MAX as u128) as u32);
        self
    }
    /// Send it and read the whole response.
    pub fn send(self) -> Result<Response> {
        let r = wit::http::send(&wit::http::Request {
            method: self.method,
            url: self.url,
            headers: self.headers,
            body: self.body,
            timeout_ms: self.timeout_ms,
        })?;
        Ok(Response {
            status: r.status,
            headers: r.headers,
            body: r.body,
            url: r.url,
        })
    }
}

impl Response {
    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    /// The body parsed as JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        Ok(serde_json::from_slice(&self.body)?)
    }
    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    /// `Err` unless the status is 2xx.
    pub fn error_for_status(self) -> Result<Self> {
        if (200..300).contains(&self.status) {
            Ok(self)
        } else {
            Err(Error::msg(format!(
                "{} returned HTTP status {}: {}",
                self.url,
                self.status,
                self.text().chars().take(200).collect::<String>()
            )))
        }
    }
}
