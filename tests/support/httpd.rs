//! A real HTTP server on 127.0.0.1 for the egress tests and the LLM demo
//! (axum on its own thread and runtime): an echo endpoint, redirects, a
//! 1 GiB response, endpoints that never answer or trickle, a hit counter,
//! and a deterministic OpenAI-compatible `/v1/chat/completions`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

/// The API key `/v1/chat/completions` requires (`Authorization: Bearer …`).
pub const OPENAI_KEY: &str = "sk-test-0123456789abcdef";

/// Size of the `/big` response.
pub const BIG: u64 = 1 << 30;

pub struct TestServer {
    pub addr: SocketAddr,
    hits: Arc<AtomicU64>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[derive(Clone)]
struct Shared {
    hits: Arc<AtomicU64>,
}

impl TestServer {
    /// Bind 127.0.0.1 on a free port and serve until dropped.
    pub fn start() -> TestServer {
        let hits = Arc::new(AtomicU64::new(0));
        let shared = Shared { hits: hits.clone() };
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let addr = std_listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
                let app = Router::new()
                    .route("/echo", any(echo))
                    .route("/echo/{*rest}", any(echo))
                    .route("/redirect", get(redirect))
                    .route("/big", get(big))
                    .route("/slow", get(slow))
                    .route("/trickle", get(trickle))
                    .route("/count", get(|| async { "counted" }))
                    .route("/v1/chat/completions", post(chat))
                    .layer(axum::middleware::from_fn_with_state(shared.clone(), count))
                    .with_state(shared);
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = rx.await;
                    })
                    .await
                    .unwrap();
            });
        });
        TestServer {
            addr,
            hits,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Requests received so far.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        // Connections held by endpoints that never answer end with the
        // runtime; do not wait for them.
        drop(self.thread.take());
    }
}

async fn count(
    State(s): State<Shared>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    s.hits.fetch_add(1, Ordering::SeqCst);
    next.run(req).await
}

/// The request as JSON: method, path, `x-probe` and `authorization`
/// headers, the body as text.
async fn echo(method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Json<Value> {
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    Json(json!({
        "method": method.as_str(),
        "path": uri.path(),
        "probe": header("x-probe"),
        "auth": header("authorization"),
        "body": String::from_utf8_lossy(&body),
    }))
}

#[derive(serde::Deserialize)]
struct To {
    to: String,
}

async fn redirect(Query(q): Query<To>) -> Response {
    (StatusCode::FOUND, [("location", q.to)]).into_response()
}

/// 1 GiB of zeros, streamed without a length.
async fn big() -> Response {
    let chunk = Bytes::from(vec![0u8; 64 << 10]);
    let n = BIG / chunk.len() as u64;
    let stream = futures_util::stream::iter(
        (0..n).map(move |_| Ok::<_, std::convert::Infallible>(chunk.clone())),
    );
    Body::from_stream(stream).into_response()
}

/// Never answers.
async fn slow() -> &'static str {
    tokio::time::sleep(Duration::from_secs(3600)).await;
    "too late"
}

/// Headers at once, then one byte a second, forever.
async fn trickle() -> Response {
    let stream = futures_util::stream::unfold((), |()| async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        Some((
            Ok::<_, std::convert::Infallible>(Bytes::from_static(b"x")),
            (),
        ))
    });
    Body::from_stream(stream).into_response()
}

/// A deterministic OpenAI chat-completions endpoint. A generator prompt
/// ("question/answer pair", user text `Topic: T. Pair k of n.`) gets a JSON
/// pair (topic `broken` gets text that is not JSON); a grader prompt gets
/// `Rating: N` with N = 1 + (characters of the answer mod 10).
async fn chat(headers: HeaderMap, Json(req): Json<Value>) -> Response {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
    if auth != Some(&format!("Bearer {OPENAI_KEY}")) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error", "code": "invalid_api_key"}})),
        )
            .into_response();
    }
    let messages = req["messages"].as_array().cloned().unwrap_or_default();
    let text = |role: &str| {
        messages
            .iter()
            .find(|m| m["role"] == role)
            .and_then(|m| m["content"].as_str())
            .unwrap_or_default()
            .to_owned()
    };
    let (system, user) = (text("system"), text("user"));
    let content = if system.contains("question/answer pair") {
        let topic = user
            .strip_prefix("Topic: ")
            .and_then(|r| r.split_once(". Pair "))
            .map(|(t, _)| t.to_owned())
            .unwrap_or_default();
        let k = user
            .split(". Pair ")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .unwrap_or("0");
        if topic == "broken" {
            "Sure! Here is a pair: what is broken?".to_owned()
        } else {
            json!({"question": format!("What is {topic} ({k})?"), "answer": format!("{topic} explained, part {k}.")})
                .to_string()
        }
    } else if system.contains("grader") {
        let answer = user.split("\nAnswer: ").nth(1).unwrap_or_default();
        let rating = 1 + answer.chars().count() % 10;
        format!("Rating: {rating}\nDeterministic grade from the answer's length.")
    } else {
        "I only grade and generate.".to_owned()
    };
    let model = req["model"].as_str().unwrap_or("unknown");
    Json(json!({
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": system.len() + user.len(), "completion_tokens": content.len(), "total_tokens": system.len() + user.len() + content.len()},
    }))
    .into_response()
}
