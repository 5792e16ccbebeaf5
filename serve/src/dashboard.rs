//! The web dashboard: static files embedded in the binary (it works
//! offline: no CDN, no build step), served at `/` and `/assets/…`. The
//! pages are plain JavaScript modules that call the REST API under
//! `/api/v1` from the browser; every guest-controlled string is put into
//! the page as text (`textContent`), never as markup, and the
//! Content-Security-Policy allows only this server's own scripts.
//!
//! The assets themselves need no token: they hold no workspace data.
//! The API calls they make are authenticated like any other (for now the
//! dashboard works in the open-loopback mode only: logging in with a token
//! is left to a later change).

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

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
    (
        "js/compare.js",
        JS,
        include_bytes!("../assets/js/compare.js"),
    ),
    ("js/launch.js", JS, include_bytes!("../assets/js/launch.js")),
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

const HTML: &str = "text/html; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";

/// Only this origin's scripts, styles and connections; no inline script,
/// no plugins, no framing. (uPlot sets element styles from script, which
/// `style-src 'self'` allows.)
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// `/` (the single page) and `/assets/*`, stateless: merged into the API
/// router by [`crate::routes::router`].
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(index))
        .route("/assets/{*path}", get(asset))
}

async fn index() -> Response {
    file("index.html")
}

async fn asset(Path(path): Path<String>) -> Response {
    file(&path)
}

fn file(path: &str) -> Response {
    let Some((_, mime, bytes)) = ASSETS.iter().find(|(p, _, _)| *p == path) else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    let mut resp = (*bytes).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
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
    resp
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
}
