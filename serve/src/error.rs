//! API errors: a status code and `{"error": "<one line>"}`.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// One line saying what is wrong.
    pub error: String,
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
    pub fn not_found(message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::NOT_FOUND, message)
    }
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::FORBIDDEN, message)
    }
    pub fn internal(e: impl std::fmt::Display) -> ApiError {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
    /// A library error (anyhow chain) as one line with this status.
    pub fn from_anyhow(status: StatusCode, e: &anyhow::Error) -> ApiError {
        Self::new(status, labhost::text::error_line(e))
    }
}

/// Middleware: an error response under `/api/` or `/webhooks/` that is not
/// already JSON (axum's own rejections of a bad query string, path, method
/// or body size; an unsatisfiable `Range`) becomes `{"error": …}` with the
/// same status and headers, its text as the message.
pub async fn json_errors(req: Request, next: Next) -> Response {
    let api = {
        let path = req.uri().path();
        path.starts_with("/api/") || path.starts_with("/webhooks/")
    };
    let res = next.run(req).await;
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !api || is_json || !(res.status().is_client_error() || res.status().is_server_error()) {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    // Error bodies are short; a longer one is cut (it is a message).
    let bytes = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes);
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let message = if text.is_empty() {
        parts
            .status
            .canonical_reason()
            .unwrap_or("error")
            .to_lowercase()
    } else {
        text
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let body = serde_json::to_vec(&ErrorBody { error: message }).unwrap_or_default();
    Response::from_parts(parts, Body::from(body))
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(ErrorBody {
                error: self.message,
            }),
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::extract::Query;
    use axum::routing::get;
    use axum::Router;
    use tower::ServiceExt;

    #[derive(serde::Deserialize)]
    struct N {
        n: u32,
    }

    async fn call(method: &str, uri: &str) -> (StatusCode, String, String) {
        let app = Router::new()
            .route(
                "/api/n",
                get(|Query(q): Query<N>| async move { q.n.to_string() }),
            )
            .route(
                "/page",
                get(|Query(q): Query<N>| async move { q.n.to_string() }),
            )
            .route(
                "/api/err",
                get(|| async { ApiError::bad_request("already json") }),
            )
            .layer(axum::middleware::from_fn(json_errors));
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .body(Body::empty())
            .unwrap();
        let res = app.oneshot(req).await.unwrap();
        let status = res.status();
        let ct = res
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, ct, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn rejections_under_the_api_become_json_errors() {
        assert_eq!(
            call("GET", "/api/n?n=x").await,
            (
                StatusCode::BAD_REQUEST,
                "application/json".into(),
                r#"{"error":"Failed to deserialize query string: n: invalid digit found in string"}"#
                    .into()
            )
        );
        assert_eq!(
            call("POST", "/api/n?n=1").await,
            (
                StatusCode::METHOD_NOT_ALLOWED,
                "application/json".into(),
                r#"{"error":"method not allowed"}"#.into()
            )
        );
        // Left alone: successes, JSON errors, and pages outside the API.
        assert_eq!(
            call("GET", "/api/n?n=7").await,
            (
                StatusCode::OK,
                "text/plain; charset=utf-8".into(),
                "7".into()
            )
        );
        assert_eq!(
            call("GET", "/api/err").await,
            (
                StatusCode::BAD_REQUEST,
                "application/json".into(),
                r#"{"error":"already json"}"#.into()
            )
        );
        assert_eq!(
            call("GET", "/page?n=x").await.1,
            "text/plain; charset=utf-8"
        );
    }
}
