//! Signed webhooks in. No bearer token: each request is authenticated by
//! an HMAC of its raw body with a shared secret, resolved per request from
//! the environment or `<workspace>/secrets.toml` (so a secret can be
//! rotated without a restart).
//!
//! - Labelbox's training-service contract, at `/webhooks/labelbox`:
//!   `GET /models` lists the launchable plugins by name; `POST /model_run`
//!   launches the plugin named by `modelType` and records `modelRunId`,
//!   `modelId` and `organizationId` in the job's metadata. Both carry
//!   `X-Hub-Signature: sha1=<hex HMAC-SHA1(secret, raw body)>`; secret
//!   `LABELBOX_WEBHOOK_SECRET`.
//! - A launch endpoint in the Standard Webhooks form, `POST
//!   /webhooks/launch` (body: the REST launch request): `webhook-id`,
//!   `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256(key,
//!   "id.timestamp.body")>` (several, space-separated, accepted); the
//!   timestamp within ±5 minutes; an id used once is refused after (kept in
//!   `<workspace>/webhook-ids.log` for the window, so across restarts too);
//!   secrets `LABHOST_WEBHOOK_SECRET` and, during a rotation,
//!   `LABHOST_WEBHOOK_SECRET_PREVIOUS` (`whsec_<base64 key>`).
//!
//! Every comparison of a signature is constant-time (`Mac::verify_slice`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use labhost::tokens::Scope;
use labhost::Secrets;
use serde_json::{json, Map, Value};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::routes::{blocking, check_size, plugin_files, start_job, LaunchRequest};
use crate::AppState;

/// The secret Labelbox signs with.
pub const LABELBOX_SECRET: &str = "LABELBOX_WEBHOOK_SECRET";
/// The Standard Webhooks secrets: current, and previous during a rotation.
pub const LAUNCH_SECRETS: [&str; 2] = ["LABHOST_WEBHOOK_SECRET", "LABHOST_WEBHOOK_SECRET_PREVIOUS"];
/// How far a `webhook-timestamp` may be from now, in seconds.
pub const TOLERANCE_SECS: i64 = 5 * 60;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/webhooks/labelbox/models", get(labelbox_models))
        .route("/webhooks/labelbox/model_run", post(labelbox_model_run))
        .route("/webhooks/launch", post(launch))
}

/// A secret's value, or `None` if it is not set anywhere.
fn secret(state: &AppState, name: &str) -> ApiResult<Option<String>> {
    Secrets::find(name, |n| std::env::var(n).ok(), state.ws().root())
        .map_err(|e| ApiError::from_anyhow(StatusCode::INTERNAL_SERVER_ERROR, &e))
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, message)
}

/// Check `X-Hub-Signature: sha1=<hex>` over `body`.
fn check_labelbox(state: &AppState, headers: &HeaderMap, body: &[u8]) -> ApiResult<()> {
    let Some(key) = secret(state, LABELBOX_SECRET)? else {
        return Err(ApiError::not_found(format!(
            "the Labelbox webhook is not configured (set {LABELBOX_SECRET} in the environment or the workspace secrets file)"
        )));
    };
    let given = headers
        .get("x-hub-signature")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("sha1="))
        .ok_or_else(|| unauthorized("missing X-Hub-Signature: sha1=<hex>"))?;
    let given = decode_hex(given).ok_or_else(|| unauthorized("X-Hub-Signature is not hex"))?;
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(key.as_bytes()).map_err(ApiError::internal)?;
    mac.update(body);
    mac.verify_slice(&given)
        .map_err(|_| unauthorized("X-Hub-Signature does not match the body"))
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The launchable plugins by name (`{"name": {}}`), as Labelbox asks.
async fn labelbox_models(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<Map<String, Value>>> {
    check_labelbox(&state, &headers, &body)?;
    blocking(move || {
        let mut out = Map::new();
        for f in plugin_files(&state)? {
            if let Ok(p) = state.plugin(&f) {
                out.insert(p.info.name.clone(), json!({}));
            }
        }
        Ok(Json(out))
    })
    .await
}

/// Launch the plugin named `modelType` with its defaults; the Labelbox ids
/// go into the job's metadata. 201 `{"job_id": …}`.
async fn labelbox_model_run(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    check_size(&body, "a webhook body")?;
    check_labelbox(&state, &headers, &body)?;
    let req: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid model_run body: {e}")))?;
    let field = |k: &str| req.get(k).and_then(Value::as_str).map(str::to_owned);
    let model_type = field("modelType")
        .ok_or_else(|| ApiError::bad_request("model_run: `modelType` (a string) is required"))?;
    let run_id = field("modelRunId")
        .ok_or_else(|| ApiError::bad_request("model_run: `modelRunId` (a string) is required"))?;
    let plugin = {
        let state = state.clone();
        let name = model_type.clone();
        blocking(move || {
            let mut found = Vec::new();
            for f in plugin_files(&state)? {
                if let Ok(p) = state.plugin(&f) {
                    if p.info.name == name {
                        found.push(p.digest.clone());
                    }
                }
            }
            match found.as_slice() {
                [one] => Ok(one.clone()),
                [] => Err(ApiError::not_found(format!(
                    "no plugin named `{}` (GET /models lists them)",
                    labhost::text::for_terminal_line(&name)
                ))),
                _ => Err(ApiError::new(
                    StatusCode::CONFLICT,
                    format!("{} plugins are named `{name}`", found.len()),
                )),
            }
        })
        .await?
    };
    let mut metadata = Map::new();
    metadata.insert("source".into(), json!("labelbox"));
    metadata.insert("modelRunId".into(), json!(run_id));
    for k in ["modelId", "organizationId", "modelType"] {
        if let Some(v) = field(k) {
            metadata.insert(k.into(), json!(v));
        }
    }
    let launch = LaunchRequest {
        plugin,
        experiment: None,
        config: Map::new(),
        datasets: vec![],
        models: vec![],
        allow_http: vec![],
        secrets: vec![],
        limits: Default::default(),
        resume: None,
    };
    let webhook = Caller {
        token: None,
        scope: Scope::Run,
    };
    let rec = start_job(&state, launch, &webhook, metadata).await?;
    Ok((StatusCode::CREATED, Json(json!({ "job_id": rec.id }))).into_response())
}

/// Verify a Standard Webhooks request against any of the `keys`.
pub fn verify_standard(
    keys: &[Vec<u8>],
    id: &str,
    timestamp: &str,
    signatures: &str,
    body: &[u8],
    now: i64,
) -> Result<(), String> {
    let ts: i64 = timestamp
        .parse()
        .map_err(|_| "webhook-timestamp is not a number of seconds".to_owned())?;
    if (now - ts).abs() > TOLERANCE_SECS {
        return Err(format!(
            "webhook-timestamp is outside the {} minute window",
            TOLERANCE_SECS / 60
        ));
    }
    for sig in signatures.split(' ') {
        let Some(b64) = sig.strip_prefix("v1,") else {
            continue;
        };
        let Ok(given) = base64::engine::general_purpose::STANDARD.decode(b64) else {
            continue;
        };
        for key in keys {
            if standard_mac(key, id, timestamp, body)
                .verify_slice(&given)
                .is_ok()
            {
                return Ok(());
            }
        }
    }
    Err("webhook-signature does not match".into())
}

/// The Standard Webhooks MAC of one message: HMAC-SHA256(key,
/// "id.timestamp.body"). Verified above, signed by [`sign_standard`].
fn standard_mac(key: &[u8], id: &str, timestamp: &str, body: &[u8]) -> Hmac<sha2::Sha256> {
    let mut mac =
        Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `webhook-signature` value a sender puts on one message:
/// `v1,<base64 HMAC-SHA256(key, "id.timestamp.body")>` (webhooks out).
pub fn sign_standard(key: &[u8], id: &str, timestamp: &str, body: &[u8]) -> String {
    let tag = standard_mac(key, id, timestamp, body)
        .finalize()
        .into_bytes();
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(tag)
    )
}

/// The key of a Standard Webhooks secret value: `whsec_<base64>` (the
/// prefix may be left out); `None` if it is not base64.
pub fn standard_key(value: &str) -> Option<Vec<u8>> {
    let b64 = value.strip_prefix("whsec_").unwrap_or(value);
    base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()
        .filter(|k| !k.is_empty())
}

/// Record `id` as used; false if it already was within the window.
fn first_use(state: &AppState, id: &str, now: i64) -> ApiResult<bool> {
    let _guard = state.webhook_ids.lock().unwrap();
    let path = state.ws().root().join("webhook-ids.log");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let mut live: Vec<(i64, &str)> = text
        .lines()
        .filter_map(|l| l.split_once(' '))
        .filter_map(|(t, i)| Some((t.parse().ok()?, i)))
        .filter(|(t, _)| now - t <= 2 * TOLERANCE_SECS)
        .collect();
    if live.iter().any(|(_, i)| *i == id) {
        return Ok(false);
    }
    live.push((now, id));
    let mut out = String::new();
    for (t, i) in live {
        out.push_str(&format!("{t} {i}\n"));
    }
    labhost::store::durable::write_atomic(&path, out.as_bytes()).map_err(ApiError::internal)?;
    Ok(true)
}

/// Launch a job from a Standard Webhooks request (body: the REST launch
/// request, without HTTP or secret grants). 201 with the record.
async fn launch(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    check_size(&body, "a webhook body")?;
    let mut keys = Vec::new();
    for name in LAUNCH_SECRETS {
        if let Some(v) = secret(&state, name)? {
            let key = standard_key(&v)
                .ok_or_else(|| ApiError::internal(format!("{name} is not whsec_<base64>")))?;
            keys.push(key);
        }
    }
    if keys.is_empty() {
        return Err(ApiError::not_found(format!(
            "the launch webhook is not configured (set {} in the environment or the workspace secrets file)",
            LAUNCH_SECRETS[0]
        )));
    }
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| unauthorized(&format!("missing {n}")))
    };
    let (id, ts, sigs) = (
        header("webhook-id")?,
        header("webhook-timestamp")?,
        header("webhook-signature")?,
    );
    let now = chrono::Utc::now().timestamp();
    verify_standard(&keys, id, ts, sigs, &body, now).map_err(|e| unauthorized(&e))?;
    if id.is_empty() || id.len() > 256 || id.contains(char::is_whitespace) {
        return Err(ApiError::bad_request(
            "webhook-id must be 1-256 characters without spaces",
        ));
    }
    if !first_use(&state, id, now)? {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("webhook id `{id}` was already used"),
        ));
    }
    let req: LaunchRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid launch request: {e}")))?;
    let webhook = Caller {
        token: None,
        scope: Scope::Run,
    };
    let mut metadata = Map::new();
    metadata.insert("source".into(), json!("webhook"));
    metadata.insert("webhook_id".into(), json!(id));
    let rec = start_job(&state, req, &webhook, metadata).await?;
    Ok((StatusCode::CREATED, Json(rec)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(key: &[u8], id: &str, ts: &str, body: &[u8]) -> String {
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
        mac.update(format!("{id}.{ts}.").as_bytes());
        mac.update(body);
        format!(
            "v1,{}",
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
        )
    }

    #[test]
    fn standard_webhooks_signatures_windows_and_rotation() {
        let (old, new) = (b"old-key".to_vec(), b"new-key".to_vec());
        let body = br#"{"plugin":"x"}"#;
        let now = 1_700_000_000;
        let ts = now.to_string();
        let good = sign(&new, "msg_1", &ts, body);
        assert_eq!(
            verify_standard(std::slice::from_ref(&new), "msg_1", &ts, &good, body, now),
            Ok(())
        );
        // Rotation: signed with the old key, both configured.
        let by_old = sign(&old, "msg_1", &ts, body);
        assert_eq!(
            verify_standard(
                &[new.clone(), old.clone()],
                "msg_1",
                &ts,
                &by_old,
                body,
                now
            ),
            Ok(())
        );
        // Several signatures, one valid.
        let both = format!("v1,AAAA {good}");
        assert_eq!(
            verify_standard(std::slice::from_ref(&new), "msg_1", &ts, &both, body, now),
            Ok(())
        );
        let refused = |sigs: &str, id: &str, body: &[u8], now: i64| {
            verify_standard(std::slice::from_ref(&new), id, &ts, sigs, body, now).unwrap_err()
        };
        assert_eq!(
            refused(&by_old, "msg_1", body, now),
            "webhook-signature does not match"
        );
        assert_eq!(
            refused(&good, "msg_2", body, now),
            "webhook-signature does not match"
        );
        assert_eq!(
            refused(&good, "msg_1", b"{}", now),
            "webhook-signature does not match"
        );
        assert_eq!(
            refused(&good, "msg_1", body, now + 301),
            "webhook-timestamp is outside the 5 minute window"
        );
        assert_eq!(
            refused(&good, "msg_1", body, now - 301),
            "webhook-timestamp is outside the 5 minute window"
        );
    }

    #[test]
    fn signing_matches_the_standard_webhooks_reference() {
        // The example of the Standard Webhooks reference libraries.
        let key = standard_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let (id, ts, body) = (
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            "1614265330",
            br#"{"test": 2432232314}"#,
        );
        let sig = sign_standard(&key, id, ts, body);
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert_eq!(sig, sign(&key, id, ts, body));
        assert_eq!(
            verify_standard(&[key], id, ts, &sig, body, 1614265330),
            Ok(())
        );
        assert_eq!(standard_key("whsec_not base64!"), None);
        assert_eq!(standard_key("whsec_"), None);
    }

    #[test]
    fn hex_decoding() {
        assert_eq!(decode_hex("00ff10"), Some(vec![0, 255, 16]));
        assert_eq!(decode_hex("0"), None);
        assert_eq!(decode_hex("zz"), None);
    }
}
