//! Dashboard sessions: a browser logs in once with an API token
//! (`POST /login`) and then carries an `HttpOnly; SameSite=Strict` cookie
//! instead of the token.
//!
//! - The session id is 32 bytes from the OS CSPRNG (64 hex characters in
//!   the cookie); the server keeps sessions in memory only, keyed by the
//!   blake3 of the id (a lookup never compares the secret itself), each
//!   with its token's id and scope, a CSRF token (another 32 random bytes)
//!   and an absolute expiry ([`DEFAULT_TTL`], `LABHOST_SESSION_TTL`). A
//!   restart ends every session.
//! - A cookie is sent by the browser on its own, so a state-changing
//!   request (anything but GET, HEAD, OPTIONS, TRACE) made with it must
//!   also (1) come from this origin: `Sec-Fetch-Site: same-origin`, or
//!   failing that an `Origin` equal to the request's `Host` — one of them
//!   must be present, as browsers always send them — and (2) carry the
//!   session's CSRF token in `x-csrf-token`, compared in constant time.
//!   `SameSite=Strict` alone is not enough: another port of the same host
//!   is the same *site* and gets the cookie.
//!
//! The rules are pure functions here, used by [`crate::auth`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap, Method};
use chrono::{DateTime, Utc};
use labhost::tokens::Scope;
use subtle::ConstantTimeEq;

/// How long a session lasts from login (absolute, not sliding).
pub const DEFAULT_TTL: Duration = Duration::from_secs(12 * 3600);

/// The request header carrying a session's CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Most sessions kept at once; past it the one expiring soonest goes.
const MAX_SESSIONS: usize = 10_000;

/// One logged-in browser.
#[derive(Debug, Clone)]
pub struct Session {
    /// The id of the token it logged in with.
    pub token_id: String,
    pub scope: Scope,
    /// The CSRF token (64 hex characters) its state-changing requests carry.
    pub csrf: String,
    pub expires_at: DateTime<Utc>,
    expires: Instant,
}

/// What a cookie's session id is.
#[derive(Debug, Clone)]
pub enum Lookup {
    Active(Session),
    /// It was a session, now past its expiry (and is forgotten).
    Expired,
    /// Not a session of this server (ended, or from before a restart).
    Unknown,
}

/// The server's sessions, in memory.
pub struct Sessions {
    ttl: Duration,
    cookie: String,
    map: Mutex<HashMap<[u8; 32], Session>>,
}

impl Sessions {
    /// Sessions lasting `ttl`, carried in the cookie named `cookie`.
    pub fn new(ttl: Duration, cookie: impl Into<String>) -> Sessions {
        Sessions {
            ttl,
            cookie: cookie.into(),
            map: Mutex::new(HashMap::new()),
        }
    }

    /// The cookie's name.
    pub fn cookie_name(&self) -> &str {
        &self.cookie
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Start a session for this token: `(the cookie's value, the session)`.
    pub fn create(&self, token_id: &str, scope: Scope) -> anyhow::Result<(String, Session)> {
        let id = random_hex()?;
        let now = Instant::now();
        let session = Session {
            token_id: token_id.to_owned(),
            scope,
            csrf: random_hex()?,
            expires_at: Utc::now()
                + chrono::Duration::from_std(self.ttl).unwrap_or(chrono::Duration::MAX),
            expires: now.checked_add(self.ttl).unwrap_or(now),
        };
        let mut map = self.map.lock().unwrap();
        map.retain(|_, s| s.expires > now);
        while map.len() >= MAX_SESSIONS {
            let Some(first) = map.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| *k) else {
                break;
            };
            map.remove(&first);
        }
        map.insert(key(&id), session.clone());
        Ok((id, session))
    }

    /// The session a cookie value names. An expired one is forgotten.
    pub fn lookup(&self, id: &str) -> Lookup {
        if !is_id(id) {
            return Lookup::Unknown;
        }
        let k = key(id);
        let mut map = self.map.lock().unwrap();
        match map.get(&k) {
            None => Lookup::Unknown,
            Some(s) if s.expires <= Instant::now() => {
                map.remove(&k);
                Lookup::Expired
            }
            Some(s) => Lookup::Active(s.clone()),
        }
    }

    /// End the session a cookie value names (no error if there is none).
    pub fn remove(&self, id: &str) {
        if is_id(id) {
            self.map.lock().unwrap().remove(&key(id));
        }
    }

    /// End every session of this token.
    pub fn end_token(&self, token_id: &str) {
        self.map
            .lock()
            .unwrap()
            .retain(|_, s| s.token_id != token_id);
    }

    /// The session cookie's value in these request headers, if any.
    pub fn cookie_in<'a>(&self, headers: &'a HeaderMap) -> Option<&'a str> {
        cookie_value(headers, &self.cookie)
    }

    /// `Set-Cookie` for a new session. `secure` adds `Secure` (the page
    /// was served over HTTPS, e.g. behind a TLS proxy).
    pub fn set_cookie(&self, id: &str, secure: bool) -> String {
        format!(
            "{}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
            self.cookie,
            self.ttl.as_secs().max(1),
            if secure { "; Secure" } else { "" }
        )
    }

    /// `Set-Cookie` that removes the session cookie.
    pub fn clear_cookie(&self) -> String {
        format!(
            "{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0",
            self.cookie
        )
    }
}

fn key(id: &str) -> [u8; 32] {
    *blake3::hash(id.as_bytes()).as_bytes()
}

fn is_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// 32 bytes from the OS CSPRNG, as 64 lowercase hex characters.
fn random_hex() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness from the OS: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The value of cookie `name` in the `Cookie` header(s).
pub fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
}

/// True for the methods that change nothing (no CSRF check).
pub fn is_safe(method: &Method) -> bool {
    method.is_safe()
}

/// The CSRF rule: the header is present and equals the session's token
/// (compared in constant time). The error is the one-line reason.
pub fn check_csrf(headers: &HeaderMap, session: &Session) -> Result<(), String> {
    let Some(given) = headers.get(CSRF_HEADER) else {
        return Err(format!(
            "missing {CSRF_HEADER} header: a session's state-changing request carries the CSRF token from GET /api/v1/session"
        ));
    };
    if bool::from(given.as_bytes().ct_eq(session.csrf.as_bytes())) {
        Ok(())
    } else {
        Err(format!("wrong {CSRF_HEADER} for this session"))
    }
}

/// The same-origin rule for a state-changing request: `Sec-Fetch-Site`
/// must be `same-origin` when present, else `Origin` must name this
/// server (the `Host` header). With neither header, `required` decides
/// (true for a session cookie: browsers send one of them on every POST).
pub fn check_origin(headers: &HeaderMap, required: bool) -> Result<(), String> {
    let all = |name: header::HeaderName| -> Vec<&str> {
        headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap_or("(not text)"))
            .collect()
    };
    // Every value must pass (a browser sends one of each).
    let sites = all(header::HeaderName::from_static("sec-fetch-site"));
    if !sites.is_empty() {
        return match sites
            .iter()
            .find(|s| !s.eq_ignore_ascii_case("same-origin"))
        {
            None => Ok(()),
            Some(site) => Err(format!(
                "cross-origin request refused (Sec-Fetch-Site: {})",
                labhost::text::for_terminal_line(site)
            )),
        };
    }
    let origins = all(header::ORIGIN);
    if !origins.is_empty() {
        let hosts = all(header::HOST);
        let host = match hosts.as_slice() {
            [one] => *one,
            _ => "",
        };
        let this = |origin: &str| {
            let authority = origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"));
            authority.is_some_and(|a| !host.is_empty() && a.eq_ignore_ascii_case(host))
        };
        return match origins.iter().find(|o| !this(o)) {
            None => Ok(()),
            Some(origin) => Err(format!(
                "cross-origin request refused (Origin {} is not this server)",
                labhost::text::for_terminal_line(origin)
            )),
        };
    }
    if required {
        return Err(
            "a state-changing request with a session cookie needs an Origin or Sec-Fetch-Site header"
                .into(),
        );
    }
    Ok(())
}

/// True if the page making this request was served over HTTPS (its
/// `Origin` says so): the session cookie then gets `Secure`.
pub fn from_https(headers: &HeaderMap) -> bool {
    headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|o| o.starts_with("https://"))
}

/// True if `host` (a `Host` header) names the loopback interface:
/// `localhost`, `127.x.x.x` or `[::1]`, with or without a port.
pub fn is_loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        match rest.split_once(']') {
            Some((ip, port)) if port.is_empty() || port.starts_with(':') => ip,
            _ => return false,
        }
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            Some(_) => return false,
            None => host,
        }
    };
    if name.eq_ignore_ascii_case("localhost") {
        return true;
    }
    name.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn a_session_is_found_by_its_cookie_and_ends() {
        let s = Sessions::new(DEFAULT_TTL, "labhost_session_1");
        let (id, session) = s.create("tok1", Scope::Run).unwrap();
        assert!(is_id(&id) && is_id(&session.csrf));
        assert_ne!(id, session.csrf);
        let (id2, session2) = s.create("tok1", Scope::Run).unwrap();
        assert_ne!(id, id2);
        assert_ne!(session.csrf, session2.csrf);
        match s.lookup(&id) {
            Lookup::Active(found) => {
                assert_eq!(
                    (found.token_id.as_str(), found.scope, found.csrf),
                    ("tok1", Scope::Run, session.csrf.clone())
                )
            }
            other => panic!("{other:?}"),
        }
        // Not hex, wrong length, another case of a real id: unknown.
        for bad in ["", "x", &id[..63], &id.to_uppercase(), &format!("{id}0")] {
            assert!(matches!(s.lookup(bad), Lookup::Unknown), "{bad}");
        }
        s.remove(&id);
        assert!(matches!(s.lookup(&id), Lookup::Unknown));
        assert!(matches!(s.lookup(&id2), Lookup::Active(_)));
        s.end_token("tok1");
        assert!(matches!(s.lookup(&id2), Lookup::Unknown));
    }

    #[test]
    fn an_expired_session_says_so_once_and_is_forgotten() {
        let s = Sessions::new(Duration::ZERO, "c");
        let (id, _) = s.create("t", Scope::Read).unwrap();
        assert!(matches!(s.lookup(&id), Lookup::Expired));
        assert!(matches!(s.lookup(&id), Lookup::Unknown));
        // Expired sessions are dropped when another one starts.
        let (a, _) = s.create("t", Scope::Read).unwrap();
        s.create("t", Scope::Read).unwrap();
        assert!(matches!(s.lookup(&a), Lookup::Unknown));
    }

    #[test]
    fn cookies_are_set_with_their_flags_and_read_back() {
        let s = Sessions::new(DEFAULT_TTL, "labhost_session_8080");
        assert_eq!(
            s.set_cookie("abc", false),
            "labhost_session_8080=abc; Path=/; HttpOnly; SameSite=Strict; Max-Age=43200"
        );
        assert!(s.set_cookie("abc", true).ends_with("; Secure"));
        assert_eq!(
            s.clear_cookie(),
            "labhost_session_8080=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"
        );
        let h = headers(&[
            ("cookie", "a=1; labhost_session_8081=other"),
            ("cookie", "labhost_session_8080=mine ; b=2"),
        ]);
        assert_eq!(s.cookie_in(&h), Some("mine"));
        assert_eq!(cookie_value(&h, "labhost_session"), None);
        assert_eq!(s.cookie_in(&HeaderMap::new()), None);
    }

    #[test]
    fn the_csrf_token_must_be_the_sessions_own() {
        let s = Sessions::new(DEFAULT_TTL, "c");
        let (_, mine) = s.create("t", Scope::Run).unwrap();
        let (_, other) = s.create("t", Scope::Run).unwrap();
        assert_eq!(
            check_csrf(&headers(&[(CSRF_HEADER, &mine.csrf)]), &mine),
            Ok(())
        );
        assert_eq!(
            check_csrf(&HeaderMap::new(), &mine),
            Err("missing x-csrf-token header: a session's state-changing request carries the CSRF token from GET /api/v1/session".into())
        );
        for wrong in [
            other.csrf.as_str(),
            "",
            &mine.csrf[..63],
            &mine.csrf.to_uppercase(),
        ] {
            assert_eq!(
                check_csrf(&headers(&[(CSRF_HEADER, wrong)]), &mine),
                Err("wrong x-csrf-token for this session".into()),
                "{wrong}"
            );
        }
    }

    #[test]
    fn only_this_origin_may_change_state() {
        let host = ("host", "127.0.0.1:8080");
        let ok = [
            headers(&[host, ("sec-fetch-site", "same-origin")]),
            headers(&[host, ("origin", "http://127.0.0.1:8080")]),
            headers(&[host, ("origin", "https://127.0.0.1:8080")]),
            // The browser's word wins over a Host a proxy rewrote.
            headers(&[
                ("host", "backend:1"),
                ("sec-fetch-site", "same-origin"),
                ("origin", "https://lab.example"),
            ]),
        ];
        for h in &ok {
            assert_eq!(check_origin(h, true), Ok(()), "{h:?}");
        }
        let refused = [
            (
                headers(&[host, ("sec-fetch-site", "same-site"), ("origin", "http://127.0.0.1:8080")]),
                "cross-origin request refused (Sec-Fetch-Site: same-site)",
            ),
            (
                headers(&[host, ("sec-fetch-site", "cross-site")]),
                "cross-origin request refused (Sec-Fetch-Site: cross-site)",
            ),
            (
                headers(&[host, ("origin", "http://127.0.0.1:9999")]),
                "cross-origin request refused (Origin http://127.0.0.1:9999 is not this server)",
            ),
            (
                headers(&[host, ("origin", "null")]),
                "cross-origin request refused (Origin null is not this server)",
            ),
            (
                headers(&[("origin", "http://127.0.0.1:8080")]),
                "cross-origin request refused (Origin http://127.0.0.1:8080 is not this server)",
            ),
            (
                headers(&[host, ("origin", "http://127.0.0.1:8080.evil.example")]),
                "cross-origin request refused (Origin http://127.0.0.1:8080.evil.example is not this server)",
            ),
            // Two of a header: each must pass.
            (
                headers(&[host, ("origin", "http://127.0.0.1:8080"), ("origin", "http://127.0.0.1:1")]),
                "cross-origin request refused (Origin http://127.0.0.1:1 is not this server)",
            ),
            (
                headers(&[host, ("sec-fetch-site", "same-origin"), ("sec-fetch-site", "same-site")]),
                "cross-origin request refused (Sec-Fetch-Site: same-site)",
            ),
            (
                headers(&[host, ("host", "127.0.0.1:1"), ("origin", "http://127.0.0.1:8080")]),
                "cross-origin request refused (Origin http://127.0.0.1:8080 is not this server)",
            ),
        ];
        for (h, why) in &refused {
            assert_eq!(check_origin(h, true), Err(why.to_string()), "{h:?}");
            assert_eq!(check_origin(h, false), Err(why.to_string()), "{h:?}");
        }
        let neither = headers(&[host]);
        assert_eq!(
            check_origin(&neither, true),
            Err("a state-changing request with a session cookie needs an Origin or Sec-Fetch-Site header".into())
        );
        assert_eq!(check_origin(&neither, false), Ok(()));
    }

    #[test]
    fn loopback_host_names() {
        for h in [
            "localhost",
            "LOCALHOST:80",
            "127.0.0.1",
            "127.0.0.1:8080",
            "127.9.9.9:1",
            "[::1]",
            "[::1]:8080",
        ] {
            assert!(is_loopback_host(h), "{h}");
        }
        for h in [
            "",
            "evil.example",
            "evil.example:8080",
            "localhost.evil.example",
            "10.0.0.1:80",
            "[::2]:1",
            "127.0.0.1:80x",
            "[::1]x",
            "0.0.0.0:8080",
        ] {
            assert!(!is_loopback_host(h), "{h}");
        }
    }
}
