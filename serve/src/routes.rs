//! The REST API under `/api/v1`. Every handler is argument parsing and a
//! call into the `labhost` library; records are returned as the library
//! serialises them (the same JSON as `labhost show --json`).

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use labhost::egress::HttpGrantSpec;
use labhost::read::{Cursor, Follower, MetricQuery};
use labhost::tokens::Scope;
use labhost::{JobRecord, JobSpec, LimitOverrides};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tower::ServiceExt;
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::auth::{authenticate, Caller};
use crate::error::{ApiError, ApiResult};
use crate::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "labhost", description = "Run ML-lab plugins as sandboxed WebAssembly components: the REST API of `labhost serve`."),
    paths(health, list_plugins, upload_plugin, get_plugin, list_jobs, launch, get_job, cancel_job, rerun_job, job_logs, job_events, job_metrics, job_file, eval_rows, crate::dashboard::session_info),
    components(schemas(PluginView, LaunchRequest, LogChunk, Health, crate::error::ErrorBody)),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
pub struct ApiDoc;

struct BearerAuth;
impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Describes the errors every operation can answer, as `{"error": …}`
/// ([`crate::error::ErrorBody`]): 401 and 403 on every route behind a
/// token (no or a bad token; a scope too low or a refused origin, host or
/// CSRF token), 400 on every route taking parameters or a body, 413 on
/// every route taking a body; and gives each documented error response
/// without a body that schema.
struct ErrorResponses;
impl utoipa::Modify for ErrorResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::SecurityRequirement;
        use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
        let content = || {
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build()
        };
        for item in openapi.paths.paths.values_mut() {
            let ops = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for op in ops.into_iter().flatten() {
                let secured = op
                    .security
                    .as_ref()
                    .is_none_or(|reqs| reqs.iter().any(|r| *r != SecurityRequirement::default()));
                let mut add = vec![];
                if secured {
                    add.push(("401", "no token, or an invalid or revoked one"));
                    add.push(("403", "the token's scope is too low, or the request's origin, host or CSRF token is refused"));
                }
                if op.parameters.as_ref().is_some_and(|p| !p.is_empty())
                    || op.request_body.is_some()
                {
                    add.push(("400", "bad input"));
                }
                if op.request_body.is_some() {
                    add.push(("413", "the body is too large"));
                }
                let responses = &mut op.responses.responses;
                for (code, description) in add {
                    responses.entry(code.to_owned()).or_insert_with(|| {
                        RefOr::T(ResponseBuilder::new().description(description).build())
                    });
                }
                for (code, response) in responses.iter_mut() {
                    if let (true, RefOr::T(r)) =
                        (code.starts_with('4') || code.starts_with('5'), response)
                    {
                        if r.content.is_empty() {
                            r.content.insert("application/json".into(), content());
                        }
                    }
                }
            }
        }
    }
}

/// The whole API.
pub fn router(state: Arc<AppState>) -> Router {
    let authed = Router::new()
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/plugins", get(list_plugins).post(upload_plugin))
        .route("/api/v1/plugins/{digest}", get(get_plugin))
        .route("/api/v1/jobs", get(list_jobs).post(launch))
        .route("/api/v1/jobs/{id}", get(get_job))
        .route("/api/v1/jobs/{id}/cancel", post(cancel_job))
        .route("/api/v1/jobs/{id}/rerun", post(rerun_job))
        .route("/api/v1/jobs/{id}/evals/{name}/rows", get(eval_rows))
        .route("/api/v1/jobs/{id}/logs", get(job_logs))
        .route("/api/v1/jobs/{id}/events", get(job_events))
        .route("/api/v1/jobs/{id}/metrics", get(job_metrics))
        .route("/api/v1/jobs/{id}/files/{kind}/{name}", get(job_file))
        .merge(crate::lifecycle::routes())
        .merge(crate::registry::routes())
        .merge(crate::pipelines::routes())
        .merge(crate::apps::routes())
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            authenticate,
        ));
    Router::new()
        .route("/api/v1/health", get(health))
        .merge(authed)
        .merge(crate::webhooks::routes())
        .merge(crate::dashboard::routes(state.clone()))
        .fallback(|| async { ApiError::not_found("no such route") })
        .layer(DefaultBodyLimit::max(crate::MAX_BODY))
        .layer(axum::middleware::from_fn(crate::error::json_errors))
        .with_state(state)
}

#[derive(Serialize, ToSchema)]
struct Health {
    status: String,
    version: String,
}

/// Liveness; the only route without a token.
#[utoipa::path(get, path = "/api/v1/health", security(()), responses((status = 200, body = Health)))]
async fn health() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    })
}

async fn openapi(
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<utoipa::openapi::OpenApi>> {
    caller.need(Scope::Read, "the API document")?;
    Ok(Json(document()))
}

/// The API document of every part, its error responses described.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi()
        .merge_from(crate::lifecycle::LifecycleApi::openapi())
        .merge_from(crate::registry::RegistryApi::openapi())
        .merge_from(crate::pipelines::PipelinesApi::openapi())
        .merge_from(crate::apps::AppsApi::openapi());
    // After every merge, so it covers every part's operations.
    utoipa::Modify::modify(&ErrorResponses, &mut doc);
    doc
}

// ---- plugins ---------------------------------------------------------------

/// A plugin as the API shows it.
#[derive(Serialize, ToSchema)]
struct PluginView {
    name: String,
    version: String,
    kind: String,
    description: String,
    /// blake3 of the component: the id to launch it by.
    blake3: String,
    /// Typed parameters: name, type, default (JSON), description.
    #[schema(value_type = Vec<Object>)]
    params: Value,
    imports: Vec<String>,
    /// The lab API version it was built against.
    api_version: Option<String>,
}

fn view(p: &labhost::Plugin) -> PluginView {
    PluginView {
        name: p.info.name.clone(),
        version: p.info.version.clone(),
        kind: p.info.kind.as_str().into(),
        description: p.info.description.clone(),
        blake3: p.digest.clone(),
        params: serde_json::to_value(&p.info.params).unwrap_or(Value::Null),
        imports: p.imports.clone(),
        api_version: p.api_version(),
    }
}

/// Every launchable plugin: uploaded ones and those of `paths.plugins`.
pub(crate) fn plugin_files(state: &AppState) -> ApiResult<Vec<PathBuf>> {
    let mut dirs = vec![state.uploads()];
    if let Some(d) = effective(state)?.plugins_dir {
        dirs.push(d);
    }
    let mut files = Vec::new();
    for d in dirs {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "wasm") && p.is_file() {
                files.push(p);
            }
        }
    }
    files.sort();
    Ok(files)
}

pub(crate) fn effective(state: &AppState) -> ApiResult<labhost::settings::Effective> {
    let root = state.ws().root();
    labhost::Settings::load(root)
        .and_then(|s| s.effective(root, state.profile.as_deref()))
        .map_err(|e| ApiError::from_anyhow(StatusCode::INTERNAL_SERVER_ERROR, &e))
}

/// The launchable plugins.
#[utoipa::path(get, path = "/api/v1/plugins", responses((status = 200, body = [PluginView])))]
async fn list_plugins(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<Vec<PluginView>>> {
    caller.need(Scope::Read, "listing plugins")?;
    let files = plugin_files(&state)?;
    let views = blocking(move || {
        let mut out = Vec::new();
        for f in files {
            // A file that is not a plugin is skipped (it says so in `get`).
            if let Ok(p) = state.plugin(&f) {
                out.push(view(&p));
            }
        }
        Ok(out)
    })
    .await?;
    Ok(Json(views))
}

/// The plugin with this blake3 (from `GET /plugins`).
fn find_plugin(state: &AppState, digest: &str) -> ApiResult<Arc<labhost::Plugin>> {
    for f in plugin_files(state)? {
        if let Ok(p) = state.plugin(&f) {
            if p.digest == digest {
                return Ok(p);
            }
        }
    }
    Err(ApiError::not_found(format!(
        "no plugin with blake3 `{}`",
        labhost::text::for_terminal_line(digest)
    )))
}

/// Describe one plugin.
#[utoipa::path(get, path = "/api/v1/plugins/{digest}", params(("digest" = String, Path, description = "blake3 of the component")), responses((status = 200, body = PluginView), (status = 404)))]
async fn get_plugin(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(digest): Path<String>,
) -> ApiResult<Json<PluginView>> {
    caller.need(Scope::Read, "reading a plugin")?;
    blocking(move || find_plugin(&state, &digest).map(|p| view(&p)))
        .await
        .map(Json)
}

/// Upload a component (the request body is the `.wasm`); it is stored by
/// its blake3, compiled and described. 201 with its description.
#[utoipa::path(post, path = "/api/v1/plugins", request_body(content((Vec<u8> = "application/wasm"), (Vec<u8> = "application/octet-stream"))), responses((status = 201, body = PluginView), (status = 400), (status = 413)))]
async fn upload_plugin(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> ApiResult<Response> {
    caller.need(Scope::Run, "uploading a plugin")?;
    let view = blocking(move || {
        let digest = blake3::hash(&body).to_hex().to_string();
        let dir = state.uploads();
        std::fs::create_dir_all(&dir).map_err(ApiError::internal)?;
        let path = dir.join(format!("{digest}.wasm"));
        if !path.is_file() {
            let tmp = dir.join(format!(".{digest}.tmp"));
            std::fs::write(&tmp, &body).map_err(ApiError::internal)?;
            // Checked before it is kept: a bad component is not stored.
            if let Err(e) = state.host.load(&tmp) {
                let _ = std::fs::remove_file(&tmp);
                let mut err = ApiError::from_anyhow(StatusCode::BAD_REQUEST, &e);
                err.message = err
                    .message
                    .replace(&tmp.display().to_string(), "the upload");
                return Err(without_root(&state, err));
            }
            std::fs::rename(&tmp, &path).map_err(ApiError::internal)?;
        }
        state
            .plugin(&path)
            .map(|p| view(&p))
            .map_err(|e| ApiError::from_anyhow(StatusCode::BAD_REQUEST, &e))
    })
    .await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

// ---- jobs ------------------------------------------------------------------

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct JobsQuery {
    /// Comma-separated statuses (`running,failed`).
    status: Option<String>,
    experiment: Option<String>,
    plugin: Option<String>,
    pipeline: Option<String>,
    /// RFC 3339, YYYY-MM-DD or an age (`2h`).
    since: Option<String>,
    until: Option<String>,
    /// `created`, `-created` (default), `ended`, `duration`, `status`, `plugin`, `progress`.
    sort: Option<String>,
    #[serde(default)]
    offset: usize,
    limit: Option<usize>,
}

/// Jobs, filtered, sorted and paged as `labhost jobs` does; `total` is the
/// number matching before paging.
#[utoipa::path(get, path = "/api/v1/jobs", params(JobsQuery), responses((status = 200, body = JobsPage), (status = 400)))]
async fn list_jobs(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<JobsQuery>,
) -> ApiResult<Json<JobsPage>> {
    caller.need(Scope::Read, "listing jobs")?;
    let query = labhost::query::JobQueryText {
        statuses: q.status.into_iter().collect(),
        experiment: q.experiment,
        plugin: q.plugin,
        pipeline: q.pipeline,
        since: q.since,
        until: q.until,
        sort: q.sort,
        offset: q.offset,
        limit: q.limit,
    }
    .parse()
    .map_err(|e| ApiError::from_anyhow(StatusCode::BAD_REQUEST, &e))?;
    let page = blocking(move || {
        query
            .run(state.ws())
            .map_err(|e| ApiError::from_anyhow(StatusCode::INTERNAL_SERVER_ERROR, &e))
    })
    .await?;
    Ok(Json(JobsPage {
        total: page.total,
        jobs: page.jobs,
    }))
}

/// A page of jobs.
#[derive(Serialize, ToSchema)]
struct JobsPage {
    /// Jobs matching the filters, before paging.
    total: usize,
    /// Job records (as `labhost show --json`).
    #[schema(value_type = Vec<Object>)]
    jobs: Vec<JobRecord>,
}

/// What to launch.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LaunchRequest {
    /// blake3 of an uploaded plugin, or the name of one in `paths.plugins`.
    pub(crate) plugin: String,
    #[serde(default)]
    pub(crate) experiment: Option<String>,
    /// Parameters (checked against the plugin's `describe()`).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub(crate) config: Map<String, Value>,
    /// Datasets and models to grant, by id or name.
    #[serde(default)]
    pub(crate) datasets: Vec<String>,
    #[serde(default)]
    pub(crate) models: Vec<String>,
    /// HTTP endpoints to grant (`admin` scope): URLs or `{url, headers}`.
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub(crate) allow_http: Vec<HttpGrantSpec>,
    /// Secrets to grant by name (`admin` scope).
    #[serde(default)]
    pub(crate) secrets: Vec<String>,
    /// Limits as in settings files (`{"timeout": "10m", "memory": "512MiB"}`).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub(crate) limits: LimitOverrides,
    /// `JOB` or `JOB:CHECKPOINT` to resume from.
    #[serde(default)]
    pub(crate) resume: Option<String>,
}

/// Launch a job; 201 with its record (RUNNING). Host directories cannot be
/// granted through the API.
#[utoipa::path(post, path = "/api/v1/jobs", request_body = LaunchRequest, responses((status = 201, description = "the job record", body = Object), (status = 400), (status = 403), (status = 404)))]
async fn launch(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> ApiResult<Response> {
    caller.need(Scope::Run, "launching a job")?;
    check_size(&body, "a launch request")?;
    let req: LaunchRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid launch request: {e}")))?;
    let rec = start_job(&state, req, &caller, Map::new()).await?;
    Ok((StatusCode::CREATED, Json(rec)).into_response())
}

/// Launch `req` for `caller` with this initial job metadata; the record
/// as it is once the job started.
pub(crate) async fn start_job(
    state: &Arc<AppState>,
    req: LaunchRequest,
    caller: &Caller,
    metadata: Map<String, Value>,
) -> ApiResult<JobRecord> {
    if !req.allow_http.is_empty() || !req.secrets.is_empty() {
        // A run token that could grant itself an endpoint and a secret could
        // send the secret anywhere.
        caller.need(Scope::Admin, "granting HTTP endpoints or secrets")?;
    }
    let settings = effective(state)?;
    let plugin = resolve_plugin(state, &req.plugin).await?;
    let bad = |e: anyhow::Error| ApiError::from_anyhow(StatusCode::BAD_REQUEST, &e);
    let mut spec = JobSpec::new(plugin);
    if let Some(e) = req.experiment {
        spec.experiment = e;
    }
    spec.config = req.config;
    spec.metadata = metadata;
    let g = &mut spec.sandbox.grants;
    g.datasets = req.datasets;
    g.models = req.models;
    g.http = settings.http.clone();
    for h in &req.allow_http {
        g.http.push(h.to_grant().map_err(bad)?);
    }
    g.secrets = settings.secrets.clone();
    g.secrets.extend(req.secrets);
    spec.sandbox.limits = settings.limits.clone();
    req.limits.apply(&mut spec.sandbox.limits);
    spec.resume = req.resume.map(|r| match r.split_once(':') {
        Some((job, ckpt)) => labhost::ResumePoint::at(job, ckpt),
        None => labhost::ResumePoint::latest(r),
    });
    if let Some(slurm) = state.slurm.clone() {
        return submit_to_slurm(state, &slurm, &spec).await;
    }
    // Starting writes the job's directory and first record (fsynced):
    // blocking I/O, kept off the async workers like every other file access.
    let state = state.clone();
    blocking(move || {
        let handle = state.host.start(spec).map_err(bad)?;
        detach(&state, handle)
    })
    .await
}

/// The plugin a request names: the blake3 of an uploaded plugin, or the
/// name of one in `paths.plugins` (never a path); loaded once per server.
pub(crate) async fn resolve_plugin(
    state: &Arc<AppState>,
    reference: &str,
) -> ApiResult<Arc<labhost::Plugin>> {
    let settings = effective(state)?;
    let state = state.clone();
    let reference = reference.to_owned();
    let dir = settings.plugins_dir.clone();
    blocking(move || {
        if reference.len() == 64 && reference.bytes().all(|b| b.is_ascii_hexdigit()) {
            return find_plugin(&state, &reference);
        }
        let named = std::path::Path::new(&reference);
        if named.components().count() != 1 || reference.starts_with('.') {
            return Err(ApiError::bad_request(
                "plugin: give the blake3 of an uploaded plugin or the name of one in paths.plugins (not a path)",
            ));
        }
        let file = dir
            .map(|d| d.join(&reference).with_extension("wasm"))
            .filter(|f| f.is_file())
            .ok_or_else(|| {
                ApiError::not_found(format!(
                    "no plugin `{}` in paths.plugins",
                    labhost::text::for_terminal_line(&reference)
                ))
            })?;
        state
            .plugin(&file)
            .map_err(|e| ApiError::from_anyhow(StatusCode::BAD_REQUEST, &e))
    })
    .await
}

/// `--executor slurm`: queue the job and `sbatch` it; a task waits for its
/// end (that wait is what finds a lost node's job INTERRUPTED).
async fn submit_to_slurm(
    state: &Arc<AppState>,
    slurm: &Arc<labhost::slurm::SlurmExecutor>,
    spec: &JobSpec,
) -> ApiResult<JobRecord> {
    use labhost::executor::{Executor, JobRequest};
    let id = slurm
        .submit(JobRequest::from_spec(spec))
        .await
        .map_err(|e| ApiError::from_anyhow(StatusCode::BAD_REQUEST, &e))?;
    let waiter = slurm.clone();
    let job = id.clone();
    tokio::spawn(async move {
        if let Err(e) = waiter.wait(&job).await {
            eprintln!("labhost serve: waiting for Slurm job of {job}: {e:#}");
        }
    });
    let state = state.clone();
    blocking(move || find_job(&state, &id).map(|(rec, _)| rec)).await
}

fn find_job(state: &AppState, id: &str) -> ApiResult<(JobRecord, labhost::store::JobPaths)> {
    state
        .ws()
        .find_job(id)
        .map_err(|e| without_root(state, ApiError::from_anyhow(StatusCode::NOT_FOUND, &e)))
}

/// `err` without the server's workspace path (library messages name it
/// for the terminal; a client has no use for it).
fn without_root(state: &AppState, mut err: ApiError) -> ApiError {
    let root = state.ws().root().display().to_string();
    err.message = err
        .message
        .replace(&format!(" in workspace {root}"), "")
        .replace(&root, "<workspace>");
    err
}

/// One job's record (the same JSON as `labhost show --json`).
#[utoipa::path(get, path = "/api/v1/jobs/{id}", params(("id" = String, Path, description = "job id or a unique prefix")), responses((status = 200, description = "the job record", body = Object), (status = 404)))]
async fn get_job(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<JobRecord>> {
    caller.need(Scope::Read, "reading a job")?;
    blocking(move || find_job(&state, &id).map(|(r, _)| Json(r))).await
}

/// Ask a job to stop (should-stop, then interrupt after its grace), from
/// whichever process runs it. 202.
#[utoipa::path(post, path = "/api/v1/jobs/{id}/cancel", params(("id" = String, Path)), responses((status = 202, body = CancelView), (status = 404), (status = 409)))]
async fn cancel_job(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    caller.need(Scope::Run, "cancelling a job")?;
    let slurm = state.slurm.clone();
    let st = state.clone();
    let job = blocking(move || find_job(&st, &id)).await?.0;
    if let (Some(slurm), Some(e)) = (slurm, &job.executor) {
        if e.kind == labhost::slurm::KIND && !job.status.is_terminal() {
            // The cancel request, and scancel after the grace period (by
            // the task waiting for the job): the executor's cancel.
            use labhost::executor::Executor;
            slurm
                .cancel(&job.id)
                .await
                .map_err(|e| ApiError::from_anyhow(StatusCode::CONFLICT, &e))?;
            let view = CancelView {
                id: job.id,
                cancel: "requested".into(),
            };
            return Ok((StatusCode::ACCEPTED, Json(view)).into_response());
        }
    }
    let id = job.id;
    blocking(move || {
        let (rec, _) = find_job(&state, &id)?;
        if rec.status.is_terminal() {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!("job {} already ended ({})", rec.id, rec.status),
            ));
        }
        state
            .ws()
            .request_cancel(&rec.id)
            .map_err(|e| ApiError::from_anyhow(StatusCode::CONFLICT, &e))?;
        let view = CancelView {
            id: rec.id,
            cancel: "requested".into(),
        };
        Ok((StatusCode::ACCEPTED, Json(view)).into_response())
    })
    .await
}

/// A cancel request taken.
#[derive(Serialize, ToSchema)]
struct CancelView {
    id: String,
    /// `requested`.
    cancel: String,
}

/// Run a recorded job again: the same plugin (digest checked), config,
/// grants, limits and resume point. 201 with the new record. A job that
/// was granted host directories, HTTP endpoints or secrets needs `admin`.
#[utoipa::path(post, path = "/api/v1/jobs/{id}/rerun", params(("id" = String, Path)), responses((status = 201, description = "the new job's record", body = Object), (status = 403), (status = 404), (status = 409)))]
async fn rerun_job(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    caller.need(Scope::Run, "rerunning a job")?;
    let st = state.clone();
    let (rec, _) = blocking(move || find_job(&st, &id)).await?;
    let g = &rec.sandbox.grants;
    if !g.dirs.is_empty() || !g.http.is_empty() || !g.secrets.is_empty() {
        caller.need(
            Scope::Admin,
            "rerunning a job granted host directories, HTTP endpoints or secrets",
        )?;
    }
    if let Some(slurm) = state.slurm.clone() {
        let st = state.clone();
        let spec = blocking(move || {
            st.host
                .spec_from_record(&rec)
                .map_err(|e| ApiError::from_anyhow(StatusCode::CONFLICT, &e))
        })
        .await?;
        let new = submit_to_slurm(&state, &slurm, &spec).await?;
        return Ok((StatusCode::CREATED, Json(new)).into_response());
    }
    let new = blocking(move || {
        let spec = state
            .host
            .spec_from_record(&rec)
            .map_err(|e| ApiError::from_anyhow(StatusCode::CONFLICT, &e))?;
        let handle = state
            .host
            .start(spec)
            .map_err(|e| ApiError::from_anyhow(StatusCode::BAD_REQUEST, &e))?;
        detach(&state, handle)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(new)).into_response())
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct EvalRowsQuery {
    /// Rows whose input, output or expected output contain this text.
    q: Option<String>,
    min_score: Option<f64>,
    max_score: Option<f64>,
    /// A column (`score`, `input`, an extra column), `-` for descending.
    sort: Option<String>,
    #[serde(default)]
    offset: usize,
    /// Rows per page (default 100, at most 1000).
    limit: Option<usize>,
}

/// A page of an eval table's rows.
#[derive(Serialize, ToSchema)]
struct EvalRowsPage {
    /// Rows matching, before paging.
    total: usize,
    /// Rows: `input`, `output`, `expected`, `score` and any other column.
    #[schema(value_type = Vec<Object>)]
    rows: Vec<Value>,
}

/// Rows of an eval table, filtered, sorted and paged: `{total, rows}`.
#[utoipa::path(get, path = "/api/v1/jobs/{id}/evals/{name}/rows", params(("id" = String, Path), ("name" = String, Path), EvalRowsQuery), responses((status = 200, body = EvalRowsPage), (status = 404)))]
async fn eval_rows(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path((id, name)): Path<(String, String)>,
    Query(q): Query<EvalRowsQuery>,
) -> ApiResult<Json<EvalRowsPage>> {
    caller.need(Scope::Read, "reading an eval table")?;
    blocking(move || {
        let (rec, _) = find_job(&state, &id)?;
        let eval = rec.evals.iter().find(|e| e.name == name).ok_or_else(|| {
            ApiError::not_found(format!(
                "job {} has no eval table `{}`",
                rec.id,
                labhost::text::for_terminal_line(&name)
            ))
        })?;
        let query = labhost::read::EvalQuery {
            search: q.q,
            min_score: q.min_score,
            max_score: q.max_score,
            sort: q.sort.map(|s| match s.strip_prefix('-') {
                Some(c) => (c.to_owned(), true),
                None => (s, false),
            }),
            offset: q.offset,
            limit: q.limit.unwrap_or(100).min(1000),
        };
        let (total, rows) = labhost::read::eval_rows(state.ws(), eval, &query)
            .map_err(|e| ApiError::from_anyhow(StatusCode::INTERNAL_SERVER_ERROR, &e))?;
        Ok(Json(EvalRowsPage { total, rows }))
    })
    .await
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct LogRange {
    /// Byte offset in the log (default 0).
    #[serde(default)]
    offset: u64,
    /// Bytes to return (default and maximum 1 MiB).
    limit: Option<u64>,
}

/// A byte range of a job's log.
#[derive(Serialize, ToSchema)]
struct LogChunk {
    offset: u64,
    /// Where the next range starts.
    next: u64,
    /// The log's size now.
    size: u64,
    /// The bytes as text (invalid UTF-8 replaced).
    text: String,
}

const MAX_LOG_CHUNK: u64 = 1 << 20;

/// Largest JSON request body.
const MAX_JSON: usize = 1 << 20;

/// Refuse (413) a JSON body larger than [`MAX_JSON`].
pub(crate) fn check_size(body: &[u8], what: &str) -> ApiResult<()> {
    if body.len() > MAX_JSON {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("{what} is at most {MAX_JSON} bytes"),
        ));
    }
    Ok(())
}

/// Let a started job run on (its record is the workspace's) and return
/// its record as it is now. Called on a blocking thread (`tokio::spawn`
/// needs only the runtime's context, which those threads have).
fn detach(state: &AppState, handle: labhost::JobHandle) -> ApiResult<JobRecord> {
    let id = handle.id.clone();
    tokio::spawn(async move {
        let _ = handle.wait().await;
    });
    find_job(state, &id).map(|(rec, _)| rec)
}

/// A byte range of the job log (`offset`, `limit`).
#[utoipa::path(get, path = "/api/v1/jobs/{id}/logs", params(("id" = String, Path), LogRange), responses((status = 200, body = LogChunk), (status = 404)))]
async fn job_logs(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Query(r): Query<LogRange>,
) -> ApiResult<Json<LogChunk>> {
    caller.need(Scope::Read, "reading a log")?;
    blocking(move || {
        use std::io::{Read, Seek, SeekFrom};
        let (_, paths) = find_job(&state, &id)?;
        let mut f = std::fs::File::open(paths.log()).map_err(ApiError::internal)?;
        let size = f.metadata().map_err(ApiError::internal)?.len();
        let offset = r.offset.min(size);
        let limit = r.limit.unwrap_or(MAX_LOG_CHUNK).min(MAX_LOG_CHUNK);
        f.seek(SeekFrom::Start(offset))
            .map_err(ApiError::internal)?;
        let mut buf = Vec::new();
        f.take(limit)
            .read_to_end(&mut buf)
            .map_err(ApiError::internal)?;
        Ok(Json(LogChunk {
            offset,
            next: offset + buf.len() as u64,
            size,
            text: String::from_utf8_lossy(&buf).into_owned(),
        }))
    })
    .await
}

/// The job's events, live, as Server-Sent Events: log lines, metric
/// points, progress, stored items and the end (each `data:` a JSON event,
/// as `labhost run --json` prints them), read from the job's files, so
/// a job run by any process can be followed. The stream ends with the job.
#[utoipa::path(get, path = "/api/v1/jobs/{id}/events", params(("id" = String, Path)), responses((status = 200, content_type = "text/event-stream"), (status = 404)))]
async fn job_events(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Sse<impl futures_util::Stream<Item = Result<Event, Infallible>>>> {
    caller.need(Scope::Read, "following a job")?;
    let st = state.clone();
    let (_, paths) = blocking(move || find_job(&st, &id)).await?;
    let follower = Follower::new(state.ws(), paths, Cursor::default());
    let stream = futures_util::stream::unfold(
        (Some(follower), std::collections::VecDeque::<Event>::new()),
        |(mut follower, mut queue)| async move {
            loop {
                if let Some(e) = queue.pop_front() {
                    return Some((Ok(e), (follower, queue)));
                }
                let mut f = follower.take()?;
                let (f, updates) = tokio::task::spawn_blocking(move || {
                    let u = f.poll();
                    (f, u)
                })
                .await
                .ok()?;
                let done = f.done();
                for u in updates.unwrap_or_default() {
                    let data = serde_json::to_string(&u).unwrap_or_default();
                    queue.push_back(Event::default().data(data));
                }
                if done {
                    // Nothing more after what is queued.
                    if queue.is_empty() {
                        return None;
                    }
                    follower = None;
                    continue;
                }
                follower = Some(f);
                if queue.is_empty() {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// One metric point (`labhost::store::MetricPoint`, as stored); only
/// describes it in the API document.
#[derive(ToSchema)]
#[allow(dead_code)]
struct MetricPointView {
    name: String,
    value: f64,
    step: Option<u64>,
    /// RFC 3339.
    ts: String,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct MetricsQuery {
    /// Comma-separated metric names (default: all).
    names: Option<String>,
    /// Steps `FIRST..LAST` (inclusive).
    steps: Option<String>,
    /// At most this many points per name (downsampled for charts).
    max_points: Option<usize>,
}

/// Metric points by name and step range, optionally downsampled.
#[utoipa::path(get, path = "/api/v1/jobs/{id}/metrics", params(("id" = String, Path), MetricsQuery), responses((status = 200, body = [MetricPointView]), (status = 400), (status = 404)))]
async fn job_metrics(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Query(q): Query<MetricsQuery>,
) -> ApiResult<Json<Value>> {
    caller.need(Scope::Read, "reading metrics")?;
    let steps = match q.steps {
        None => None,
        Some(s) => {
            let (a, b) = s.split_once("..").ok_or_else(|| {
                ApiError::bad_request(format!("steps `{s}`: expected FIRST..LAST"))
            })?;
            let n = |t: &str| {
                t.trim().parse::<u64>().map_err(|_| {
                    ApiError::bad_request(format!("steps `{s}`: expected FIRST..LAST"))
                })
            };
            Some(n(a)?..=n(b)?)
        }
    };
    let query = MetricQuery {
        names: q
            .names
            .map(|n| {
                n.split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
        steps,
        max_points: q.max_points,
    };
    blocking(move || {
        let (_, paths) = find_job(&state, &id)?;
        let points = labhost::read::metrics(&paths, &query).map_err(ApiError::internal)?;
        Ok(Json(
            serde_json::to_value(points).map_err(ApiError::internal)?,
        ))
    })
    .await
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct FileQuery {
    /// For a stored directory: the file inside it, as its record lists it.
    path: Option<String>,
}

/// Download a stored file: `kind` is `artifacts`, `checkpoints` or `evals`,
/// `name` as the record names it. Only files the record lists can be
/// reached; `Range` requests are answered (206).
#[utoipa::path(get, path = "/api/v1/jobs/{id}/files/{kind}/{name}", params(("id" = String, Path), ("kind" = String, Path), ("name" = String, Path), FileQuery), responses((status = 200, description = "the file, its type guessed from its name", content_type = "*/*"), (status = 206, description = "the asked range", content_type = "*/*"), (status = 404)))]
async fn job_file(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path((id, kind, name)): Path<(String, String, String)>,
    Query(q): Query<FileQuery>,
    req: Request,
) -> ApiResult<Response> {
    caller.need(Scope::Read, "downloading a file")?;
    let file = blocking(move || {
        let (rec, _) = find_job(&state, &id)?;
        let list: Vec<&labhost::store::StoredRecord> = match kind.as_str() {
            "artifacts" => rec.artifacts.iter().collect(),
            "checkpoints" => rec.checkpoints.iter().collect(),
            "evals" => rec.evals.iter().map(|e| &e.file).collect(),
            _ => {
                return Err(ApiError::not_found(
                    "kind must be artifacts, checkpoints or evals",
                ))
            }
        };
        let stored = list.into_iter().find(|s| s.name == name).ok_or_else(|| {
            ApiError::not_found(format!(
                "job {} has no {kind} entry `{}`",
                rec.id,
                labhost::text::for_terminal_line(&name)
            ))
        })?;
        let base = state.ws().root().join(&stored.location);
        match (stored.is_dir, q.path) {
            (false, None) => Ok(base),
            (true, Some(p)) => stored
                .files
                .iter()
                .find(|f| f.path == p)
                .map(|f| base.join(&f.path))
                .ok_or_else(|| {
                    ApiError::not_found(format!(
                        "`{}` is not a file of {kind} `{}`",
                        labhost::text::for_terminal_line(&p),
                        stored.name
                    ))
                }),
            (true, None) => Err(ApiError::bad_request(format!(
                "{kind} `{}` is a directory: give ?path= one of its files",
                stored.name
            ))),
            (false, Some(_)) => Err(ApiError::bad_request(format!(
                "{kind} `{}` is a file: no ?path=",
                stored.name
            ))),
        }
    })
    .await?;
    download(file, req).await
}

/// Answer `req` (`Range` too) with the bytes of `file`, a stored file a
/// guest named and filled: always `application/octet-stream`, never
/// sniffed, an attachment, and sandboxed if opened anyway, so a stored
/// `x.html` cannot run script in the dashboard's origin.
pub(crate) async fn download(file: PathBuf, req: Request) -> ApiResult<Response> {
    use axum::http::{header, HeaderValue};
    let mut res = tower_http::services::ServeFile::new(file)
        .oneshot(req)
        .await
        .map(IntoResponse::into_response)
        .map_err(ApiError::internal)?;
    if res.status().is_success() {
        let h = res.headers_mut();
        for (name, value) in [
            (header::CONTENT_TYPE, "application/octet-stream"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CONTENT_DISPOSITION, "attachment"),
            (header::CONTENT_SECURITY_POLICY, "sandbox"),
        ] {
            h.insert(name, HeaderValue::from_static(value));
        }
    }
    Ok(res)
}

/// Run blocking library work off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(ApiError::internal)?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_response_is_described_as_the_json_error() {
        let doc = serde_json::to_value(document()).unwrap();
        let error = serde_json::json!({"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}});
        let mut operations = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                operations += 1;
                let responses = op["responses"].as_object().unwrap();
                for (code, r) in responses {
                    if code.starts_with('4') || code.starts_with('5') {
                        assert_eq!(r["content"], error, "{method} {path} {code}");
                    }
                }
                let open = path == "/api/v1/health";
                for code in ["401", "403"] {
                    assert_eq!(
                        responses.contains_key(code),
                        !open,
                        "{method} {path} {code}"
                    );
                }
                if op.get("parameters").is_some() || op.get("requestBody").is_some() {
                    assert!(responses.contains_key("400"), "{method} {path} 400");
                }
            }
        }
        assert!(operations > 10);
    }
}
