//! Which URLs a job may reach over HTTP: [`HttpGrant`] (one granted
//! endpoint: scheme, host, port, path prefix, and headers the host adds)
//! and [`check_url`], the one decision, a pure function tested without a
//! guest or a network.
//!
//! A URL is compared with the grants after WHATWG parsing (the `url`
//! crate, as browsers and HTTP clients parse), and refused outright when
//! its text could mean something else to another parser: user info
//! (`http://granted@evil/`), a host not written in its canonical form
//! (decimal, octal or hex IPv4, `[::ffff:127.0.0.1]`, percent-encoding,
//! upper case, a trailing dot), control characters or backslashes.

use std::str::FromStr;

use anyhow::bail;
use serde::{Deserialize, Serialize};

/// Request headers a grant or a guest may not set: the host and the HTTP
/// client own them (framing, routing, proxies).
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
    "te",
    "trailer",
    "keep-alive",
    "proxy-authorization",
    "proxy-connection",
    "expect",
];

/// An HTTP endpoint granted to a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpGrant {
    /// As the user gave it, e.g. `https://api.example.com/v1`.
    pub url: String,
    /// Headers the host adds to every request to this endpoint (replacing
    /// the guest's), as templates: `{secret:NAME}` is filled on the host,
    /// so the record and the guest never hold the value.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<(String, String)>,
}

/// An HTTP grant as a settings or pipeline file writes it: a URL, or a
/// table `{ url = "...", headers = ["Name: value", ...] }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum HttpGrantSpec {
    Url(String),
    WithHeaders {
        url: String,
        #[serde(default)]
        headers: Vec<String>,
    },
}

impl HttpGrantSpec {
    pub fn to_grant(&self) -> anyhow::Result<HttpGrant> {
        match self {
            HttpGrantSpec::Url(u) => u.parse(),
            HttpGrantSpec::WithHeaders { url, headers } => {
                let mut g: HttpGrant = url.parse()?;
                for h in headers {
                    g = g.with_header(h)?;
                }
                Ok(g)
            }
        }
    }
}

/// HTTP grants from command-line flags in order: each header flag belongs
/// to the URL flag before it. Arguments are `(position, text)`.
pub fn grants_from_flags(
    urls: &[(usize, String)],
    headers: &[(usize, String)],
) -> anyhow::Result<Vec<HttpGrant>> {
    let mut grants: Vec<(usize, HttpGrant)> = Vec::new();
    for (at, u) in urls {
        grants.push((*at, u.parse()?));
    }
    grants.sort_by_key(|(at, _)| *at);
    for (at, h) in headers {
        let Some((_, g)) = grants.iter_mut().rev().find(|(g_at, _)| g_at < at) else {
            bail!(
                "--http-header `{}` comes before any --allow-http: put it after the endpoint it is for",
                crate::text::for_terminal_line(h)
            );
        };
        *g = g.clone().with_header(h)?;
    }
    Ok(grants.into_iter().map(|(_, g)| g).collect())
}

/// The parsed form of a grant.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Endpoint {
    scheme: String,
    host: String,
    port: u16,
    /// `/` or a prefix without a trailing `/`.
    prefix: String,
}

impl FromStr for HttpGrant {
    type Err = anyhow::Error;

    /// `http[s]://HOST[:PORT][/PATH-PREFIX]`: no user info, query or
    /// fragment; the host in canonical form.
    fn from_str(spec: &str) -> anyhow::Result<Self> {
        let grant = HttpGrant {
            url: spec.to_owned(),
            headers: Vec::new(),
        };
        grant.endpoint()?;
        Ok(grant)
    }
}

impl HttpGrant {
    /// Add a header (`Name: value`) the host sends with every request to
    /// this endpoint; the value may hold `{secret:NAME}` placeholders.
    pub fn with_header(mut self, spec: &str) -> anyhow::Result<Self> {
        let shown = crate::text::for_terminal_line(spec);
        let Some((name, value)) = spec.split_once(':') else {
            bail!("invalid header `{shown}`: expected `Name: value`");
        };
        let name = name.trim();
        check_header(name, value.trim())
            .map_err(|e| anyhow::anyhow!("invalid header `{shown}`: {e}"))?;
        self.headers
            .push((name.to_owned(), value.trim().to_owned()));
        Ok(self)
    }

    /// Check the grant as a record or a file holds it.
    pub fn check(&self) -> anyhow::Result<()> {
        self.endpoint()?;
        for (name, value) in &self.headers {
            check_header(name, value).map_err(|e| {
                anyhow::anyhow!(
                    "invalid header `{}` of grant {}: {e}",
                    crate::text::for_terminal_line(name),
                    self.url
                )
            })?;
        }
        Ok(())
    }

    fn endpoint(&self) -> anyhow::Result<Endpoint> {
        let shown = crate::text::for_terminal_line(&self.url);
        let url = parse_strict(&self.url)
            .map_err(|e| anyhow::anyhow!("invalid HTTP grant `{shown}`: {e}"))?;
        if url.query().is_some() || url.fragment().is_some() {
            bail!("invalid HTTP grant `{shown}`: a grant has no query or fragment");
        }
        let mut prefix = url.path().to_owned();
        while prefix.len() > 1 && prefix.ends_with('/') {
            prefix.pop();
        }
        Ok(Endpoint {
            scheme: url.scheme().to_owned(),
            host: url.host_str().unwrap_or_default().to_owned(),
            port: url.port_or_known_default().unwrap_or_default(),
            prefix,
        })
    }
}

/// A header name (an HTTP token) and value (no CR, LF or NUL) a grant or
/// a guest may set.
pub fn check_header(name: &str, value: &str) -> Result<(), String> {
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() || !name.chars().all(token) {
        return Err(format!(
            "`{}` is not a valid header name",
            crate::text::for_terminal_line(name)
        ));
    }
    if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
        return Err(format!(
            "header `{name}` is set by the host, not by plugins"
        ));
    }
    if value.chars().any(|c| c == '\r' || c == '\n' || c == '\0') {
        return Err(format!(
            "the value of header `{name}` contains CR, LF or NUL"
        ));
    }
    Ok(())
}

/// Parse an absolute `http`/`https` URL, refusing every spelling that
/// another parser could read differently (see the module doc).
fn parse_strict(text: &str) -> Result<url::Url, String> {
    if text.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("URLs must not contain spaces or control characters".into());
    }
    if text.contains('\\') {
        return Err("URLs must not contain `\\`".into());
    }
    let url = url::Url::parse(text).map_err(|e| format!("not an absolute URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "scheme `{}` is not HTTP: only http:// and https:// URLs",
            url.scheme()
        ));
    }
    // The authority as written: between `scheme://` and the first `/?#`.
    let after = text
        .split_once("://")
        .map(|(_, rest)| rest)
        .ok_or("not an absolute URL (expected scheme://host)")?;
    let authority = &after[..after.find(['/', '?', '#']).unwrap_or(after.len())];
    if authority.contains('@') || !url.username().is_empty() || url.password().is_some() {
        return Err("URLs with user info (`user@host`) are refused".into());
    }
    let written_host = if authority.starts_with('[') {
        &authority[..authority.find(']').map_or(authority.len(), |i| i + 1)]
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    };
    let host = url.host_str().ok_or("the URL has no host")?;
    if written_host != host {
        return Err(format!(
            "host `{}` is not in canonical form (it means `{host}`): write the host as granted",
            crate::text::for_terminal_line(written_host)
        ));
    }
    if host.ends_with('.') {
        return Err(format!(
            "host `{host}` ends with `.`: write the host as granted"
        ));
    }
    Ok(url)
}

/// The URL as logged and shown: scheme, host, port and path, without user
/// info, query or fragment (which may hold secrets).
pub fn shown_url(url: &url::Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.set_fragment(None);
    let _ = u.set_username("");
    let _ = u.set_password(None);
    crate::text::for_terminal_line(u.as_str()).into_owned()
}

/// The URL as logged when it did not parse: up to the first `?` or `#`.
pub fn shown_text(text: &str) -> String {
    let cut = text.find(['?', '#']).unwrap_or(text.len());
    let mut s = crate::text::for_terminal_line(&text[..cut]).into_owned();
    if s.len() > 200 {
        let mut end = 200;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

/// Decide whether `text` may be requested under `grants`: the parsed URL
/// and the index of the grant it falls under, or why not (one line).
pub fn check_url(text: &str, grants: &[HttpGrant]) -> Result<(url::Url, usize), String> {
    let url = parse_strict(text).map_err(|e| format!("`{}`: {e}", shown_text(text)))?;
    let scheme = url.scheme();
    let host = url.host_str().unwrap_or_default();
    let port = url.port_or_known_default().unwrap_or_default();
    let path = url.path();
    for (i, g) in grants.iter().enumerate() {
        let Ok(e) = g.endpoint() else { continue };
        let under = e.prefix == "/"
            || path == e.prefix
            || path
                .strip_prefix(e.prefix.as_str())
                .is_some_and(|rest| rest.starts_with('/'));
        if e.scheme == scheme && e.host == host && e.port == port && under {
            return Ok((url, i));
        }
    }
    let granted: Vec<&str> = grants.iter().map(|g| g.url.as_str()).collect();
    Err(format!(
        "`{}` is not granted to this job (granted: {})",
        shown_url(&url),
        if granted.is_empty() {
            "none; grant endpoints with --allow-http URL".into()
        } else {
            granted.join(", ")
        }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grants() -> Vec<HttpGrant> {
        vec![
            "http://127.0.0.1:8080".parse().unwrap(),
            "https://api.example.com/v1/".parse().unwrap(),
        ]
    }

    fn allowed(url: &str) -> Result<usize, String> {
        check_url(url, &grants()).map(|(_, i)| i)
    }

    #[test]
    fn grants_parse_and_refuse_bad_specs() {
        for bad in [
            "ftp://x/",
            "http://user@x/",
            "http://x/?q=1",
            "http://x/#f",
            "api.example.com",
            "http://2130706433/",
            "http://EXAMPLE.com/",
            "http://x\\y/",
        ] {
            assert!(bad.parse::<HttpGrant>().is_err(), "{bad}");
        }
        let g: HttpGrant = "https://api.example.com/v1/".parse().unwrap();
        assert_eq!(g.endpoint().unwrap().prefix, "/v1");
        assert_eq!(g.endpoint().unwrap().port, 443);
    }

    #[test]
    fn exactly_the_granted_endpoints_are_allowed() {
        assert_eq!(allowed("http://127.0.0.1:8080/anything?x=1"), Ok(0));
        assert_eq!(allowed("https://api.example.com/v1"), Ok(1));
        assert_eq!(
            allowed("https://api.example.com/v1/chat/completions"),
            Ok(1)
        );
        assert_eq!(allowed("https://api.example.com:443/v1/models"), Ok(1));
    }

    #[test]
    fn everything_else_is_refused_with_the_reason() {
        let cases = [
            ("http://127.0.0.1:8081/", "is not granted"),
            ("https://127.0.0.1:8080/", "is not granted"),
            ("http://localhost:8080/", "is not granted"),
            ("https://api.example.com/v2/x", "is not granted"),
            ("https://api.example.com/v1x", "is not granted"),
            ("https://api.example.com/v1/../admin", "is not granted"),
            ("http://api.example.com/v1/", "is not granted"),
            ("https://api.example.com.evil.com/v1/", "is not granted"),
            ("http://127.0.0.1:8080@evil.com/", "user info"),
            ("http://evil.com@127.0.0.1:8080/", "user info"),
            (
                "http://2130706433:8080/",
                "not in canonical form (it means `127.0.0.1`)",
            ),
            ("http://0x7f.0.0.1:8080/", "not in canonical form"),
            ("http://0177.0.0.1:8080/", "not in canonical form"),
            ("http://127.1:8080/", "not in canonical form"),
            ("http://[::ffff:127.0.0.1]:8080/", "not in canonical form"),
            ("http://%31%32%37.0.0.1:8080/", "not in canonical form"),
            ("https://API.example.com/v1/", "not in canonical form"),
            ("https://api.example.com./v1/", "ends with `.`"),
            ("https://аpi.example.com/v1/", "not in canonical form"),
            ("http://127.0.0.1:8080\\@evil.com/", "`\\`"),
            ("http://127.0.0.1:80\t80/", "control characters"),
            ("file:///etc/passwd", "is not HTTP"),
            ("/relative", "not an absolute URL"),
        ];
        for (url, why) in cases {
            let err = allowed(url).unwrap_err();
            assert!(err.contains(why), "{url}: {err}");
        }
        // The refusal never shows a query (it may hold a key).
        let err = allowed("http://evil.com/?key=abc").unwrap_err();
        assert!(!err.contains("abc"), "{err}");
        assert!(
            err.starts_with("`http://evil.com/` is not granted to this job (granted: "),
            "{err}"
        );
    }

    #[test]
    fn header_flags_belong_to_the_url_flag_before_them() {
        let urls = [(1, "http://a".to_owned()), (5, "http://b".to_owned())];
        let headers = [
            (3, "X-A: 1".to_owned()),
            (7, "X-B: 2".to_owned()),
            (9, "X-C: 3".to_owned()),
        ];
        let g = grants_from_flags(&urls, &headers).unwrap();
        assert_eq!(g[0].headers, [("X-A".to_owned(), "1".to_owned())]);
        assert_eq!(
            g[1].headers,
            [
                ("X-B".to_owned(), "2".to_owned()),
                ("X-C".to_owned(), "3".to_owned())
            ]
        );
        let err = grants_from_flags(&urls, &[(0, "X: 1".into())]).unwrap_err();
        assert!(
            err.to_string().contains("comes before any --allow-http"),
            "{err}"
        );
    }

    #[test]
    fn headers_are_checked() {
        let g: HttpGrant = "http://x".parse().unwrap();
        let g = g.with_header("Authorization: Bearer {secret:KEY}").unwrap();
        assert_eq!(
            g.headers,
            [("Authorization".to_owned(), "Bearer {secret:KEY}".to_owned())]
        );
        for bad in ["Host: evil", "no colon", "Bad Name: x", "Content-Length: 5"] {
            assert!(g.clone().with_header(bad).is_err(), "{bad}");
        }
        assert!(check_header("X-A", "a\r\nInjected: 1").is_err());
    }
}
