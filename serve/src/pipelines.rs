//! Pipelines over HTTP: run a pipeline file, list runs, show one (the run
//! record, and a Refuel task-run view of it), cancel, resume. Runs started
//! here are ordinary workspace runs (`labhost pipeline status` sees them)
//! and are executed by this server's host, plugins loaded once.
//!
//! A pipeline sent over HTTP is stored in the uploaded-plugins directory
//! (`<ws>/plugins/pipeline-<blake3>.toml`), so a stage's `plugin` is the
//! blake3 of an uploaded plugin (`"<blake3>.wasm"`) or the name of one in
//! `paths.plugins` — never a path. Host directories cannot be granted
//! through the API; HTTP endpoints and secrets need the `admin` scope.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use chrono::Utc;
use labhost::pipeline::{InstanceStatus, PipelineFile, PipelineRun, RunRecord, RunStatus};
use labhost::tokens::Scope;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::{OpenApi, ToSchema};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::routes::blocking;
use crate::AppState;

#[derive(OpenApi)]
#[openapi(
    paths(run_pipeline, list_runs, get_run, cancel_run, resume_run),
    components(schemas(RunRequest, ResumeRequest, TaskRun, TaskRunMetric))
)]
pub struct PipelinesApi;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/pipelines", get(list_runs).post(run_pipeline))
        .route("/api/v1/pipelines/{id}", get(get_run))
        .route("/api/v1/pipelines/{id}/cancel", post(cancel_run))
        .route("/api/v1/pipelines/{id}/resume", post(resume_run))
}

/// Start a pipeline run.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    /// The pipeline file's TOML text (the format `labhost pipeline run` reads).
    pipeline: String,
    /// Jobs at once (default: the file's `workers`, else the settings').
    workers: Option<usize>,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct ResumeRequest {
    workers: Option<usize>,
}

/// A run in Refuel's task-run shape.
#[derive(Serialize, ToSchema)]
pub struct TaskRun {
    id: String,
    /// `not_started`, `active`, `paused` (cancelled or interrupted: it can
    /// be resumed), `failed` or `completed`.
    status: String,
    metrics: Vec<TaskRunMetric>,
}

#[derive(Serialize, ToSchema)]
pub struct TaskRunMetric {
    /// `num_labeled` (instances complete), `num_remaining`,
    /// `time_elapsed_seconds`, `time_remaining_seconds` (the last two only
    /// while active).
    name: String,
    value: f64,
}

/// The Refuel view of a run record (a pure function of it and `now`).
pub fn task_run(rec: &RunRecord, now: chrono::DateTime<Utc>) -> TaskRun {
    let total = rec.instances.len();
    let done = rec.count(InstanceStatus::Complete);
    let started = rec
        .instances
        .iter()
        .any(|i| !matches!(i.status, InstanceStatus::Waiting | InstanceStatus::Queued));
    let status = match rec.status {
        RunStatus::Running if !started && done == 0 => "not_started",
        RunStatus::Running => "active",
        RunStatus::Complete => "completed",
        RunStatus::Failed => "failed",
        RunStatus::Cancelled | RunStatus::Interrupted => "paused",
    };
    let mut metrics = vec![
        TaskRunMetric {
            name: "num_labeled".into(),
            value: done as f64,
        },
        TaskRunMetric {
            name: "num_remaining".into(),
            value: (total - done) as f64,
        },
    ];
    if status == "active" {
        let elapsed = (now - rec.created_at).num_milliseconds().max(0) as f64 / 1000.0;
        metrics.push(TaskRunMetric {
            name: "time_elapsed_seconds".into(),
            value: elapsed,
        });
        if done > 0 {
            metrics.push(TaskRunMetric {
                name: "time_remaining_seconds".into(),
                value: elapsed / done as f64 * (total - done) as f64,
            });
        }
    }
    TaskRun {
        id: rec.id.clone(),
        status: status.into(),
        metrics,
    }
}

/// Refuse what a caller may not ask of a pipeline sent over HTTP.
fn check_submitted(file: &PipelineFile, caller: &Caller) -> ApiResult<()> {
    for (name, value) in &file.stages {
        let Some(t) = value.as_table() else { continue };
        let ctx = |m: &str| ApiError::bad_request(format!("stage `{name}`: {m}"));
        if let Some(p) = t.get("plugin").and_then(|p| p.as_str()) {
            let path = std::path::Path::new(p);
            if path.components().count() != 1 || p.starts_with('.') {
                return Err(ctx(
                    "plugin: give `<blake3>.wasm` of an uploaded plugin or the name of one in paths.plugins (not a path)",
                ));
            }
        }
        if t.get("dirs")
            .and_then(|d| d.as_array())
            .is_some_and(|d| !d.is_empty())
        {
            return Err(ApiError::forbidden(format!(
                "stage `{name}`: host directories cannot be granted through the API"
            )));
        }
        let grants = |k: &str| {
            t.get(k)
                .and_then(|d| d.as_array())
                .is_some_and(|d| !d.is_empty())
        };
        if grants("allow-http") || grants("secrets") {
            caller.need(Scope::Admin, "granting HTTP endpoints or secrets")?;
        }
    }
    Ok(())
}

/// Run a pipeline (TOML in the body's `pipeline`): the run is created
/// (every plugin loaded, configs and inputs checked) before the answer,
/// then executed by the server. 201 with the run record.
#[utoipa::path(post, path = "/api/v1/pipelines", request_body = RunRequest, responses((status = 201, description = "the run record"), (status = 400), (status = 403)))]
async fn run_pipeline(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    caller.need(Scope::Run, "running a pipeline")?;
    crate::routes::check_size(&body, "a pipeline request")?;
    let req: RunRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("the request is not valid: {e}")))?;
    let file = PipelineFile::parse(&req.pipeline)
        .map_err(|e| ApiError::from_anyhow(StatusCode::BAD_REQUEST, &e))?;
    check_submitted(&file, &caller)?;
    let st = state.clone();
    let run = blocking(move || {
        let dir = st.uploads();
        std::fs::create_dir_all(&dir).map_err(ApiError::internal)?;
        let digest = blake3::hash(req.pipeline.as_bytes()).to_hex().to_string();
        let path = dir.join(format!("pipeline-{digest}.toml"));
        if !path.is_file() {
            labhost::store::durable::write_atomic(&path, req.pipeline.as_bytes())
                .map_err(ApiError::internal)?;
        }
        let settings = crate::routes::effective(&st)?;
        PipelineRun::create(&st.host, &path, &settings, req.workers)
            .map_err(|e| ApiError::from_anyhow(StatusCode::BAD_REQUEST, &e))
    })
    .await?;
    Ok((StatusCode::CREATED, Json(start(&state, run))).into_response())
}

/// Execute `run` on the server's runtime (its jobs through Slurm with
/// `--executor slurm`); its record as created.
fn start(state: &AppState, mut run: PipelineRun) -> RunRecord {
    if let Some(slurm) = &state.slurm {
        run = run.with_executor(slurm.clone());
    }
    let rec = run.record().clone();
    tokio::spawn(async move {
        if let Err(e) = run.execute(None).await {
            eprintln!("labhost serve: pipeline run ended with an error: {e:#}");
        }
    });
    rec
}

/// Every run, newest first, each with its task-run view.
#[utoipa::path(get, path = "/api/v1/pipelines", responses((status = 200, description = "{runs: [{run, task_run}]}")))]
async fn list_runs(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<Value>> {
    caller.need(Scope::Read, "listing pipeline runs")?;
    blocking(move || {
        let mut runs = labhost::pipeline::list_runs(state.ws()).map_err(ApiError::internal)?;
        runs.sort_by_key(|r| std::cmp::Reverse(r.created_at));
        let now = Utc::now();
        let runs: Vec<Value> = runs
            .iter()
            .map(|r| json!({ "run": r, "task_run": task_run(r, now) }))
            .collect();
        Ok(Json(json!({ "runs": runs })))
    })
    .await
}

/// One run: `{run, task_run}`.
#[utoipa::path(get, path = "/api/v1/pipelines/{id}", params(("id" = String, Path, description = "run id or a unique prefix")), responses((status = 200, description = "{run, task_run}"), (status = 404)))]
async fn get_run(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.need(Scope::Read, "reading a pipeline run")?;
    blocking(move || {
        let (rec, _) = labhost::pipeline::find_run(state.ws(), &id)
            .map_err(|e| ApiError::from_anyhow(StatusCode::NOT_FOUND, &e))?;
        Ok(Json(
            json!({ "run": rec, "task_run": task_run(&rec, Utc::now()) }),
        ))
    })
    .await
}

/// Cancel a run (whichever process runs it): running jobs get should-stop,
/// nothing new starts; it can be resumed. 202, or 409 if it already ended.
#[utoipa::path(post, path = "/api/v1/pipelines/{id}/cancel", params(("id" = String, Path)), responses((status = 202), (status = 404), (status = 409)))]
async fn cancel_run(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    caller.need(Scope::Run, "cancelling a pipeline run")?;
    blocking(move || {
        let (rec, _) = labhost::pipeline::find_run(state.ws(), &id)
            .map_err(|e| ApiError::from_anyhow(StatusCode::NOT_FOUND, &e))?;
        let rec = labhost::pipeline::request_cancel(state.ws(), &rec.id)
            .map_err(|e| ApiError::from_anyhow(StatusCode::CONFLICT, &e))?;
        Ok((StatusCode::ACCEPTED, Json(json!({ "run": rec }))).into_response())
    })
    .await
}

/// Resume a run that is not running: what completed is kept, the rest runs
/// again on this server. 202 with the run record.
#[utoipa::path(post, path = "/api/v1/pipelines/{id}/resume", params(("id" = String, Path)), request_body = ResumeRequest, responses((status = 202), (status = 404), (status = 409)))]
async fn resume_run(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    caller.need(Scope::Run, "resuming a pipeline run")?;
    crate::routes::check_size(&body, "a resume request")?;
    let req: ResumeRequest = if body.is_empty() {
        ResumeRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("the request is not valid: {e}")))?
    };
    let st = state.clone();
    let run = blocking(move || {
        let (rec, _) = labhost::pipeline::find_run(st.ws(), &id)
            .map_err(|e| ApiError::from_anyhow(StatusCode::NOT_FOUND, &e))?;
        PipelineRun::resume(&st.host, &rec.id, req.workers)
            .map_err(|e| ApiError::from_anyhow(StatusCode::CONFLICT, &e))
    })
    .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "run": start(&state, run) })),
    )
        .into_response())
}
