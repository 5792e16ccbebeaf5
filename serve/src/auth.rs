//! Who is calling, for every route but the health check (and the
//! dashboard's static files):
//!
//! - `Authorization: Bearer lht_…` of an active token: that token's scope;
//! - else the dashboard's session cookie ([`crate::session`]): the scope of
//!   the token it logged in with, while the session is unexpired and its
//!   token unrevoked; a state-changing request with the cookie must come
//!   from this origin and carry the session's CSRF token (else 403);
//! - else, with no token configured and the server on loopback, the `run`
//!   scope, for requests addressed to a loopback host name (not a DNS name
//!   rebound to 127.0.0.1) whose state-changing ones come from this origin
//!   or from no browser at all.
//!
//! Each route then asks for a scope (`read` < `run` < `admin`).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use labhost::tokens::Scope;

use crate::error::ApiError;
use crate::session::{self, Lookup, Session};
use crate::AppState;

/// Who is calling: the token's id (none when anonymous) and its scope.
#[derive(Debug, Clone)]
pub struct Caller {
    pub token: Option<String>,
    pub scope: Scope,
}

impl Caller {
    /// Refuse (403) unless the caller has `scope`.
    pub fn need(&self, scope: Scope, what: &str) -> Result<(), ApiError> {
        if self.scope >= scope {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "{what} needs a token with the `{scope}` scope (this one has `{}`)",
                self.scope
            )))
        }
    }
}

/// How the caller was authenticated (a request extension beside
/// [`Caller`]); the session and its cookie value when by cookie.
#[derive(Debug, Clone)]
pub enum AuthBy {
    Bearer,
    Session {
        id: String,
        session: Session,
    },
    /// No token configured, loopback.
    Open,
}

/// The middleware: resolves the caller, or answers 401/403.
pub async fn authenticate(
    State(state): State<Arc<AppState>>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let (caller, by) = resolve(&state, req.method(), req.headers())?;
    req.extensions_mut().insert(caller);
    req.extensions_mut().insert(by);
    Ok(next.run(req).await)
}

/// The caller of a request with this method and these headers.
pub fn resolve(
    state: &AppState,
    method: &axum::http::Method,
    headers: &HeaderMap,
) -> Result<(Caller, AuthBy), ApiError> {
    if let Some(h) = headers.get(header::AUTHORIZATION) {
        let Some(text) = h.to_str().unwrap_or("").strip_prefix("Bearer ") else {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "the Authorization header must be `Bearer <token>`",
            ));
        };
        return match state.tokens.verify(text.trim()) {
            Ok(Some(t)) => Ok((
                Caller {
                    token: Some(t.id),
                    scope: t.scope,
                },
                AuthBy::Bearer,
            )),
            Ok(None) => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid or revoked token",
            )),
            Err(e) => Err(ApiError::internal(e)),
        };
    }
    if let Some(id) = state.sessions.cookie_in(headers) {
        match session_of(state, id) {
            Ok(session) => {
                if !session::is_safe(method) {
                    session::check_origin(headers, true).map_err(ApiError::forbidden)?;
                    session::check_csrf(headers, &session).map_err(ApiError::forbidden)?;
                }
                let caller = Caller {
                    token: Some(session.token_id.clone()),
                    scope: session.scope,
                };
                return Ok((
                    caller,
                    AuthBy::Session {
                        id: id.to_owned(),
                        session,
                    },
                ));
            }
            // A stale cookie (another server's, or from before a restart)
            // does not stand in the way of the open mode.
            Err(_) if state.open_loopback => {}
            Err(e) => return Err(e),
        }
    }
    if state.open_loopback {
        let host = headers
            .get(header::HOST)
            .map(|v| v.to_str().unwrap_or(""))
            .unwrap_or("");
        if !session::is_loopback_host(host) {
            return Err(ApiError::forbidden(format!(
                "this server has no API tokens and answers only requests addressed to a loopback name (127.0.0.1, localhost), not Host `{}`",
                labhost::text::for_terminal_line(host)
            )));
        }
        if !session::is_safe(method) {
            session::check_origin(headers, false).map_err(ApiError::forbidden)?;
        }
        return Ok((
            Caller {
                token: None,
                scope: Scope::Run,
            },
            AuthBy::Open,
        ));
    }
    Err(ApiError::new(
        StatusCode::UNAUTHORIZED,
        "missing `Authorization: Bearer <token>` (create one with `labhost token create`)",
    ))
}

/// The active session a cookie value names, its token still active;
/// else 401 saying why (and the session of a revoked token ends).
pub fn session_of(state: &AppState, id: &str) -> Result<Session, ApiError> {
    let unauthorized = |m: &str| ApiError::new(StatusCode::UNAUTHORIZED, m);
    let session = match state.sessions.lookup(id) {
        Lookup::Active(s) => s,
        Lookup::Expired => return Err(unauthorized("the session expired: log in again")),
        Lookup::Unknown => {
            return Err(unauthorized(
                "no such session (logged out, or the server restarted): log in again",
            ))
        }
    };
    let active = state
        .tokens
        .list()
        .map_err(ApiError::internal)?
        .iter()
        .any(|t| t.id == session.token_id && t.is_active());
    if !active {
        state.sessions.end_token(&session.token_id);
        return Err(unauthorized(
            "the session's token was revoked: log in again",
        ));
    }
    Ok(session)
}
