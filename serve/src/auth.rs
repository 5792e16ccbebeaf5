//! Bearer-token auth: every route but the health check needs
//! `Authorization: Bearer lht_…` of an active token; each route asks for a
//! scope (`read` < `run` < `admin`). With no token configured and the
//! server on loopback, a request without a token gets the `run` scope.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use labhost::tokens::Scope;

use crate::error::ApiError;
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

/// The middleware: resolves the caller, or answers 401.
pub async fn authenticate(
    State(state): State<Arc<AppState>>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let header = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or(""));
    let caller =
        match header {
            None if state.open_loopback => Caller {
                token: None,
                scope: Scope::Run,
            },
            None => return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "missing `Authorization: Bearer <token>` (create one with `labhost token create`)",
            )),
            Some(h) => {
                let Some(text) = h.strip_prefix("Bearer ") else {
                    return Err(ApiError::new(
                        StatusCode::UNAUTHORIZED,
                        "the Authorization header must be `Bearer <token>`",
                    ));
                };
                match state.tokens.verify(text.trim()) {
                    Ok(Some(t)) => Caller {
                        token: Some(t.id),
                        scope: t.scope,
                    },
                    Ok(None) => {
                        return Err(ApiError::new(
                            StatusCode::UNAUTHORIZED,
                            "invalid or revoked token",
                        ))
                    }
                    Err(e) => return Err(ApiError::internal(e)),
                }
            }
        };
    req.extensions_mut().insert(caller);
    Ok(next.run(req).await)
}
