//! Apps over HTTP (Refuel's "applications", InstructLab's `Model.serve`):
//! deploy a predictor plugin as a warm pool of instances, predict
//! synchronously or asynchronously, and send feedback on its outputs.
//! The pool, queue and timeouts are `labhost::app`; this file is argument
//! parsing and status codes.
//!
//! A deployment is kept in `<ws>/apps/<name>.json` and redeployed when the
//! server starts again. Feedback is appended to the dataset
//! `<name>-feedback` (created by the first feedback), one row per item.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use labhost::app::{App, AppSpec, AppView, AsyncResult, PredictError};
use labhost::tokens::Scope;
use labhost::LimitOverrides;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use utoipa::{OpenApi, ToSchema};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::routes::{blocking, check_size};
use crate::AppState;

#[derive(OpenApi)]
#[openapi(
    paths(
        list_apps, deploy, get_app, undeploy, predict, submit, prediction, feedback
    ),
    components(schemas(
        DeployRequest,
        PredictRequest,
        PredictResponse,
        Submitted,
        FeedbackRequest,
        FeedbackItem
    ))
)]
pub struct AppsApi;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/apps", get(list_apps).post(deploy))
        .route("/api/v1/apps/{name}", get(get_app).delete(undeploy))
        .route("/api/v1/apps/{name}/predict", post(predict))
        .route("/api/v1/apps/{name}/predictions", post(submit))
        .route("/api/v1/apps/{name}/predictions/{id}", get(prediction))
        .route("/api/v1/apps/{name}/feedback", post(feedback))
}

/// Deploy a predictor plugin.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeployRequest {
    /// The app's name (a single path component): its URL is `/api/v1/apps/NAME`.
    pub name: String,
    /// blake3 of an uploaded plugin, or the name of one in `paths.plugins`.
    pub plugin: String,
    /// Parameters (checked against the plugin's `describe()`).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub config: Map<String, Value>,
    /// Models to grant every instance, by id or name.
    #[serde(default)]
    pub models: Vec<String>,
    /// Warm instances: requests served at once (default 1).
    #[serde(default = "one")]
    pub instances: usize,
    /// Requests that may wait; more are refused with 429 (default 64).
    #[serde(default = "default_queue")]
    pub queue: usize,
    /// Per request (default `30s`).
    #[serde(default = "default_timeout")]
    pub timeout: String,
    /// Limits of every instance (`{"memory": "512MiB"}`); the time limit is
    /// the app's lifetime.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub limits: LimitOverrides,
}

fn one() -> usize {
    1
}
fn default_queue() -> usize {
    64
}
fn default_timeout() -> String {
    "30s".into()
}

/// A batch to predict: each input any JSON value the predictor takes.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PredictRequest {
    #[schema(value_type = Vec<Object>)]
    inputs: Vec<Value>,
}

#[derive(Serialize, ToSchema)]
pub struct PredictResponse {
    /// One per input, in order.
    #[schema(value_type = Vec<Object>)]
    outputs: Vec<Value>,
    /// Time in the server, queue included.
    latency_ms: f64,
}

#[derive(Serialize, ToSchema)]
pub struct Submitted {
    /// Fetch the result at `/api/v1/apps/NAME/predictions/ID`.
    id: String,
    status: String,
}

/// Feedback on outputs, stored as a labelled dataset.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeedbackRequest {
    items: Vec<FeedbackItem>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeedbackItem {
    /// What was predicted on.
    #[schema(value_type = Object)]
    input: Value,
    /// What the app answered.
    #[serde(default)]
    #[schema(value_type = Object)]
    output: Value,
    /// The right answer.
    #[schema(value_type = Object)]
    label: Value,
    /// The async prediction it is about, if any.
    #[serde(default)]
    prediction: Option<String>,
}

/// Most inputs in one request.
const MAX_BATCH: usize = 10_000;
/// Most feedback items in one request.
const MAX_FEEDBACK: usize = 10_000;

fn deployments_dir(state: &AppState) -> std::path::PathBuf {
    state.ws().root().join("apps")
}

fn app(state: &AppState, name: &str) -> ApiResult<App> {
    state
        .apps
        .lock()
        .unwrap()
        .get(name)
        .cloned()
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no app `{}`",
                labhost::text::for_terminal_line(name)
            ))
        })
}

fn predict_error(e: PredictError) -> ApiError {
    let status = match &e {
        PredictError::Overloaded { .. } => StatusCode::TOO_MANY_REQUESTS,
        PredictError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
        PredictError::Failed(_) => StatusCode::UNPROCESSABLE_ENTITY,
        PredictError::Crashed(_) => StatusCode::BAD_GATEWAY,
        PredictError::Undeployed(_) => StatusCode::SERVICE_UNAVAILABLE,
    };
    ApiError::new(status, e.to_string())
}

fn error_response(e: PredictError) -> Response {
    let overloaded = matches!(e, PredictError::Overloaded { .. });
    let mut r = predict_error(e).into_response();
    if overloaded {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    r
}

/// Build and start the app `req` describes (not yet listed).
pub(crate) async fn start_app(state: &Arc<AppState>, req: &DeployRequest) -> ApiResult<App> {
    let plugin = crate::routes::resolve_plugin(state, &req.plugin).await?;
    let timeout = labhost::units::parse_duration(&req.timeout)
        .map_err(|e| ApiError::bad_request(format!("timeout: {e}")))?;
    let settings = crate::routes::effective(state)?;
    let mut sandbox = labhost::Sandbox::default();
    sandbox.grants.models = req.models.clone();
    sandbox.limits = settings.limits.clone();
    req.limits.apply(&mut sandbox.limits);
    let spec = AppSpec {
        name: req.name.clone(),
        plugin,
        config: req.config.clone(),
        sandbox,
        instances: req.instances,
        queue: req.queue,
        timeout,
    };
    let host = state.host.clone();
    let app =
        App::deploy(&host, spec).map_err(|e| ApiError::from_anyhow(StatusCode::BAD_REQUEST, &e))?;
    // Every instance loads before the deployment answers: a predictor
    // whose load fails (a malformed model, say) is refused now, not left
    // restarting behind the API.
    if let Err(e) = app.wait_ready(Duration::from_secs(120)).await {
        app.undeploy().await;
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("app `{}` did not start: {e}", req.name),
        ));
    }
    Ok(app)
}

/// The deployed apps, with their pools and request figures.
#[utoipa::path(get, path = "/api/v1/apps", responses((status = 200, description = "every app", body = Vec<Object>)))]
async fn list_apps(State(state): State<Arc<AppState>>) -> Json<Vec<AppView>> {
    let apps: Vec<App> = state.apps.lock().unwrap().values().cloned().collect();
    let mut views: Vec<AppView> = apps.iter().map(App::view).collect();
    views.sort_by(|a, b| a.name.cmp(&b.name));
    Json(views)
}

/// Deploy a predictor plugin as an app; 201 once every instance has loaded.
#[utoipa::path(post, path = "/api/v1/apps", request_body = DeployRequest, responses((status = 201, description = "the app", body = Object), (status = 404), (status = 409, description = "an app of that name is deployed"), (status = 422, description = "an instance failed to load")))]
async fn deploy(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> ApiResult<Response> {
    caller.need(Scope::Run, "deploying an app")?;
    check_size(&body, "a deploy request")?;
    let req: DeployRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid deploy request: {e}")))?;
    labhost::names::check_name("app", &req.name).map_err(ApiError::bad_request)?;
    {
        let apps = state.apps.lock().unwrap();
        let mut deploying = state.deploying.lock().unwrap();
        if apps.contains_key(&req.name) || !deploying.insert(req.name.clone()) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!("app `{}` is already deployed", req.name),
            ));
        }
    }
    let started = start_app(&state, &req).await;
    state.deploying.lock().unwrap().remove(&req.name);
    let app = started?;
    let file = deployments_dir(&state).join(format!("{}.json", req.name));
    let text = serde_json::to_vec_pretty(&req).map_err(ApiError::internal)?;
    let saved = blocking(move || {
        std::fs::create_dir_all(file.parent().expect("a parent")).map_err(ApiError::internal)?;
        labhost::store::durable::write_atomic(&file, &text).map_err(ApiError::internal)
    })
    .await;
    if let Err(e) = saved {
        app.undeploy().await;
        return Err(e);
    }
    state
        .apps
        .lock()
        .unwrap()
        .insert(req.name.clone(), app.clone());
    Ok((StatusCode::CREATED, Json(app.view())).into_response())
}

/// One app: its pool and request figures (p50/p99 latency, throughput).
#[utoipa::path(get, path = "/api/v1/apps/{name}", params(("name" = String, Path)), responses((status = 200, description = "the app", body = Object), (status = 404)))]
async fn get_app(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> ApiResult<Json<AppView>> {
    Ok(Json(app(&state, &name)?.view()))
}

/// Undeploy: queued requests are answered, then every instance ends.
#[utoipa::path(delete, path = "/api/v1/apps/{name}", params(("name" = String, Path)), responses((status = 200, description = "the app as it ended", body = Object), (status = 404)))]
async fn undeploy(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> ApiResult<Json<AppView>> {
    caller.need(Scope::Run, "undeploying an app")?;
    let app = state.apps.lock().unwrap().remove(&name).ok_or_else(|| {
        ApiError::not_found(format!(
            "no app `{}`",
            labhost::text::for_terminal_line(&name)
        ))
    })?;
    let file = deployments_dir(&state).join(format!("{name}.json"));
    blocking(move || match std::fs::remove_file(&file) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ApiError::internal(e)),
    })
    .await?;
    app.undeploy().await;
    Ok(Json(app.view()))
}

fn inputs(body: &Bytes) -> ApiResult<Vec<String>> {
    check_size(body, "a prediction request")?;
    let req: PredictRequest = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid prediction request: {e}")))?;
    if req.inputs.is_empty() || req.inputs.len() > MAX_BATCH {
        return Err(ApiError::bad_request(format!(
            "inputs: 1 to {MAX_BATCH} per request, not {}",
            req.inputs.len()
        )));
    }
    Ok(req.inputs.iter().map(Value::to_string).collect())
}

/// Predict a batch and wait for the outputs. 429 when the app's queue is
/// full (with `Retry-After`), 504 past its timeout, 422 when the predictor
/// refuses the input, 502 when it crashed.
#[utoipa::path(post, path = "/api/v1/apps/{name}/predict", params(("name" = String, Path)), request_body = PredictRequest, responses((status = 200, body = PredictResponse), (status = 404), (status = 422), (status = 429), (status = 502), (status = 504)))]
async fn predict(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    let run = async {
        caller.need(Scope::Run, "predicting")?;
        let app = app(&state, &name)?;
        Ok::<_, ApiError>((app, inputs(&body)?))
    };
    let (app, inputs) = match run.await {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    match app.predict(inputs).await {
        Ok(outputs) => Json(PredictResponse {
            outputs: outputs
                .iter()
                .map(|o| serde_json::from_str(o).unwrap_or_else(|_| Value::String(o.clone())))
                .collect(),
            latency_ms: started.elapsed().as_secs_f64() * 1e3,
        })
        .into_response(),
        Err(e) => error_response(e),
    }
}

/// Queue a batch; 202 with an id at once (`GET …/predictions/ID` for the
/// result). 429 when the app's queue is full.
#[utoipa::path(post, path = "/api/v1/apps/{name}/predictions", params(("name" = String, Path)), request_body = PredictRequest, responses((status = 202, body = Submitted), (status = 404), (status = 429)))]
async fn submit(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let r = (|| {
        caller.need(Scope::Run, "predicting")?;
        Ok::<_, ApiError>((app(&state, &name)?, inputs(&body)?))
    })();
    let (app, inputs) = match r {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    match app.submit(inputs) {
        Ok(id) => (
            StatusCode::ACCEPTED,
            Json(Submitted {
                id,
                status: "pending".into(),
            }),
        )
            .into_response(),
        Err(e) => error_response(e),
    }
}

/// An async prediction: `{"status": "pending"}`, `{"status": "done",
/// "outputs": […]}` or `{"status": "failed", "error": "…"}`.
#[utoipa::path(get, path = "/api/v1/apps/{name}/predictions/{id}", params(("name" = String, Path), ("id" = String, Path)), responses((status = 200, body = Object), (status = 404)))]
async fn prediction(
    State(state): State<Arc<AppState>>,
    Path((name, id)): Path<(String, String)>,
) -> ApiResult<Json<AsyncResult>> {
    app(&state, &name)?.result(&id).map(Json).ok_or_else(|| {
        ApiError::not_found(format!(
            "app `{name}` has no prediction `{}`",
            labhost::text::for_terminal_line(&id)
        ))
    })
}

/// Store feedback on the app's outputs: rows `{input, output, label,
/// prediction}` appended to the dataset `NAME-feedback` (a new version per
/// request). 201 with the dataset record.
#[utoipa::path(post, path = "/api/v1/apps/{name}/feedback", params(("name" = String, Path)), request_body = FeedbackRequest, responses((status = 201, description = "the dataset version", body = Object), (status = 404)))]
async fn feedback(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    caller.need(Scope::Run, "sending feedback")?;
    app(&state, &name)?;
    check_size(&body, "a feedback request")?;
    let req: FeedbackRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid feedback: {e}")))?;
    if req.items.is_empty() || req.items.len() > MAX_FEEDBACK {
        return Err(ApiError::bad_request(format!(
            "items: 1 to {MAX_FEEDBACK} per request, not {}",
            req.items.len()
        )));
    }
    let dir = crate::registry::scratch_dir(&state)?;
    let file = dir.path().join("feedback.jsonl");
    let mut text = String::new();
    let at = chrono::Utc::now().to_rfc3339();
    for item in &req.items {
        // Values are kept as JSON text: every row has the same columns
        // whatever shape the app's inputs and outputs have.
        let row = json!({
            "input": item.input.to_string(),
            "output": item.output.to_string(),
            "label": item.label.to_string(),
            "prediction": item.prediction.clone().unwrap_or_default(),
            "received_at": at,
        });
        text.push_str(&row.to_string());
        text.push('\n');
    }
    std::fs::write(&file, text).map_err(ApiError::internal)?;
    let dataset = format!("{name}-feedback");
    let source = Some(format!("feedback on app {name} through labhost serve"));
    let existing = {
        let ws = state.ws().clone();
        let d = dataset.clone();
        blocking(move || {
            Ok(ws
                .find_entry(labhost::store::Registry::Datasets, &d)
                .map(|e| e.id))
        })
        .await?
    };
    let rec = match existing {
        Some(id) => {
            let opts = labhost_datasets::AppendOptions {
                experiment: None,
                source,
            };
            labhost_datasets::append(state.ws(), &id, &file, opts).await
        }
        None => {
            let opts = labhost_datasets::AddOptions {
                name: dataset,
                description: Some(format!("Feedback on the outputs of app {name}")),
                metadata: json!({"app": name}),
                experiment: None,
                source,
            };
            labhost_datasets::add(state.ws(), &file, opts).await
        }
    }
    .map_err(|e| ApiError::from_anyhow(StatusCode::BAD_REQUEST, &e))?;
    Ok((StatusCode::CREATED, Json(rec)).into_response())
}

/// Redeploy the apps saved in `<ws>/apps/` (at server start); one that
/// cannot start is reported and left saved.
pub async fn redeploy_saved(state: &Arc<AppState>) {
    let dir = deployments_dir(state);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        if path.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let req: DeployRequest = match std::fs::read(&path)
            .map_err(anyhow::Error::from)
            .and_then(|b| Ok(serde_json::from_slice(&b)?))
        {
            Ok(r) => r,
            Err(e) => {
                eprintln!("labhost serve: app {}: {e:#}", path.display());
                continue;
            }
        };
        match start_app(state, &req).await {
            Ok(app) => {
                eprintln!(
                    "labhost serve: app {} redeployed ({} instances)",
                    req.name, req.instances
                );
                state.apps.lock().unwrap().insert(req.name.clone(), app);
            }
            Err(e) => eprintln!(
                "labhost serve: app {} not redeployed: {}",
                req.name, e.message
            ),
        }
    }
}
