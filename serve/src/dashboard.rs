//! The web dashboard: static files embedded in the binary (it works
//! offline: no CDN, no build step), served at `/` and `/assets/…`, and its
//! login. The pages are plain JavaScript modules that call the REST API
//! under `/api/v1` from the browser; every guest-controlled string is put
//! into the page as text (`textContent`), never as markup, and the
//! Content-Security-Policy allows only this server's own scripts.
//!
//! Logging in ([`crate::session`]): `GET /login` is a plain form (no
//! script) where the user pastes an API token; `POST /login` checks it and
//! answers with the session cookie and a redirect to `/`, or the form again
//! with the reason (401 for a wrong token). `GET /api/v1/session` tells the
//! pages their scope and CSRF token; `POST /logout` ends the session. With
//! tokens configured, `/` without a live session redirects to `/login`;
//! in the open-loopback mode (no token) no login is needed.
//!
//! The assets themselves need no token: they hold no workspace data.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{authenticate, session_of, AuthBy, Caller};
use crate::session;
use crate::AppState;

/// Every embedded file: its path under `/assets/`, content type, bytes.
const ASSETS: &[(&str, &str, &[u8])] = &[
    ("index.html", HTML, include_bytes!("../assets/index.html")),
    (
        "dashboard.css",
        CSS,
        include_bytes!("../assets/dashboard.css"),
    ),
    ("js/app.js", JS, include_bytes!("../assets/js/app.js")),
    ("js/api.js", JS, include_bytes!("../assets/js/api.js")),
    ("js/dom.js", JS, include_bytes!("../assets/js/dom.js")),
    ("js/chart.js", JS, include_bytes!("../assets/js/chart.js")),
    ("js/runs.js", JS, include_bytes!("../assets/js/runs.js")),
    ("js/run.js", JS, include_bytes!("../assets/js/run.js")),
    ("js/evals.js", JS, include_bytes!("../assets/js/evals.js")),
    (
        "js/compare.js",
        JS,
        include_bytes!("../assets/js/compare.js"),
    ),
    ("js/launch.js", JS, include_bytes!("../assets/js/launch.js")),
    ("js/apps.js", JS, include_bytes!("../assets/js/apps.js")),
    (
        "js/pipelines.js",
        JS,
        include_bytes!("../assets/js/pipelines.js"),
    ),
    (
        "js/registry.js",
        JS,
        include_bytes!("../assets/js/registry.js"),
    ),
    (
        "vendor/uPlot.iife.min.js",
        JS,
        include_bytes!("../assets/vendor/uPlot.iife.min.js"),
    ),
    (
        "vendor/uPlot.min.css",
        CSS,
        include_bytes!("../assets/vendor/uPlot.min.css"),
    ),
    (
        "vendor/uPlot.LICENSE",
        TEXT,
        include_bytes!("../assets/vendor/uPlot.LICENSE"),
    ),
];

/// The login page; `<!--MESSAGE-->` becomes the (escaped) message.
const LOGIN_PAGE: &str = include_str!("../assets/login.html");

const HTML: &str = "text/html; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";

/// Largest login form body.
const MAX_LOGIN_BODY: usize = 8 << 10;

/// Only this origin's scripts, styles and connections; no inline script,
/// no plugins, no framing. (uPlot sets element styles from script, which
/// `style-src 'self'` allows.)
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// `/`, `/login`, `/logout`, `/api/v1/session` and `/assets/*`: merged
/// into the API router by [`crate::routes::router`].
pub fn routes(state: Arc<AppState>) -> Router<Arc<AppState>> {
    let authed = Router::new()
        .route("/api/v1/session", get(session_info))
        .route("/logout", post(logout))
        .route_layer(axum::middleware::from_fn_with_state(state, authenticate));
    Router::new()
        .route("/", get(index))
        .route("/login", get(login_page).post(login))
        .route("/assets/{*path}", get(asset))
        .merge(authed)
}

/// The dashboard, or a redirect to `/login` when tokens are configured
/// and this browser has no live session.
async fn index(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if !state.open_loopback {
        let live = state
            .sessions
            .cookie_in(&headers)
            .is_some_and(|id| session_of(&state, id).is_ok());
        if !live {
            return see_other("/login", None);
        }
    }
    file("index.html")
}

async fn asset(Path(path): Path<String>) -> Response {
    file(&path)
}

async fn login_page(State(state): State<Arc<AppState>>) -> Response {
    let note = state.open_loopback.then_some(
        "This server has no API tokens: the dashboard works without logging in on this machine.",
    );
    page(StatusCode::OK, note.map(|n| ("note", n)))
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    token: String,
}

/// Check the pasted token; start a session (303 to `/` with the cookie).
async fn login(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    let refuse = |status, message| page(status, Some(("error", message)));
    if body.len() > MAX_LOGIN_BODY {
        return refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            "The login form is too large.",
        );
    }
    // No login from another site's page (it would log this browser into
    // the attacker's session).
    if session::check_origin(&headers, false).is_err() {
        return refuse(
            StatusCode::FORBIDDEN,
            "Cross-origin login refused: log in from this server's own page.",
        );
    }
    let Ok(form) = serde_urlencoded::from_bytes::<LoginForm>(&body) else {
        return refuse(StatusCode::BAD_REQUEST, "The login form could not be read.");
    };
    let token = form.token.trim();
    if token.is_empty() {
        return refuse(StatusCode::BAD_REQUEST, "Paste an API token to log in.");
    }
    let info = match state.tokens.verify(token) {
        Ok(Some(info)) => info,
        Ok(None) => {
            return refuse(
                StatusCode::UNAUTHORIZED,
                "That token is not valid (wrong, or revoked).",
            )
        }
        Err(e) => {
            eprintln!("labhost serve: login: {e:#}");
            return refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                "The server could not read its tokens.",
            );
        }
    };
    match state.sessions.create(&info.id, info.scope) {
        Ok((id, _)) => {
            let cookie = state
                .sessions
                .set_cookie(&id, session::from_https(&headers));
            see_other("/", Some(cookie))
        }
        Err(e) => {
            eprintln!("labhost serve: login: {e:#}");
            refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                "The server could not start a session.",
            )
        }
    }
}

/// End this browser's session (a state-changing request: with the cookie
/// it needs the CSRF token). 204, and the cookie is removed.
async fn logout(State(state): State<Arc<AppState>>, Extension(by): Extension<AuthBy>) -> Response {
    if let AuthBy::Session { id, .. } = &by {
        state.sessions.remove(id);
    }
    let mut resp = StatusCode::NO_CONTENT.into_response();
    if let Ok(v) = HeaderValue::from_str(&state.sessions.clear_cookie()) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

/// How the caller is authenticated, as the dashboard needs it.
#[derive(Serialize, ToSchema)]
pub struct SessionView {
    /// `session` (the dashboard's cookie), `bearer` or `open` (no token
    /// configured, loopback).
    auth: String,
    /// `read`, `run` or `admin`.
    scope: String,
    /// The token's id (none in the open mode).
    token: Option<String>,
    /// With a session: the CSRF token every state-changing request must
    /// carry in `x-csrf-token`.
    csrf: Option<String>,
    /// With a session: when it ends (RFC 3339).
    expires_at: Option<String>,
}

/// The caller's scope and, for a dashboard session, its CSRF token.
#[utoipa::path(get, path = "/api/v1/session", responses((status = 200, body = SessionView), (status = 401)))]
pub async fn session_info(
    Extension(caller): Extension<Caller>,
    Extension(by): Extension<AuthBy>,
) -> Json<SessionView> {
    let (auth, csrf, expires_at) = match by {
        AuthBy::Bearer => ("bearer", None, None),
        AuthBy::Open => ("open", None, None),
        AuthBy::Session { session, .. } => (
            "session",
            Some(session.csrf),
            Some(session.expires_at.to_rfc3339()),
        ),
    };
    Json(SessionView {
        auth: auth.into(),
        scope: caller.scope.to_string(),
        token: caller.token,
        csrf,
        expires_at,
    })
}

/// 303 See Other to `to`, optionally setting a cookie.
fn see_other(to: &'static str, cookie: Option<String>) -> Response {
    let mut resp = StatusCode::SEE_OTHER.into_response();
    let h = resp.headers_mut();
    h.insert(header::LOCATION, HeaderValue::from_static(to));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(v) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        h.insert(header::SET_COOKIE, v);
    }
    resp
}

/// The login page with an optional `(class, message)`.
fn page(status: StatusCode, message: Option<(&str, &str)>) -> Response {
    let html = match message {
        None => LOGIN_PAGE.replace("<!--MESSAGE-->", ""),
        Some((class, text)) => {
            let role = if class == "error" {
                " role=\"alert\""
            } else {
                ""
            };
            LOGIN_PAGE.replace(
                "<!--MESSAGE-->",
                &format!(
                    "<p class=\"{class}\" id=\"login-{class}\"{role}>{}</p>",
                    escape_html(text)
                ),
            )
        }
    };
    let mut resp = (status, html).into_response();
    secure_headers(resp.headers_mut(), HTML);
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn file(path: &str) -> Response {
    let Some((_, mime, bytes)) = ASSETS.iter().find(|(p, _, _)| *p == path) else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    let mut resp = (*bytes).into_response();
    secure_headers(resp.headers_mut(), mime);
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

fn secure_headers(h: &mut HeaderMap, mime: &'static str) {
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_is_served_with_its_type_and_unknown_ones_are_not() {
        for (path, mime, _) in ASSETS {
            let r = file(path);
            assert_eq!(r.status(), StatusCode::OK, "{path}");
            assert_eq!(r.headers()[header::CONTENT_TYPE], *mime);
        }
        for bad in ["../Cargo.toml", "js/../index.html", "nope.js", ""] {
            assert_eq!(file(bad).status(), StatusCode::NOT_FOUND, "{bad}");
        }
    }

    #[test]
    fn the_login_page_shows_its_message_as_text() {
        assert_eq!(
            escape_html(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        let r = page(StatusCode::UNAUTHORIZED, Some(("error", "bad <b>")));
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(r.headers()[header::CACHE_CONTROL], "no-store");
        assert!(LOGIN_PAGE.contains("<!--MESSAGE-->"));
    }
}
