//! Models and datasets over HTTP: list, show, download, upload (a dataset
//! from a CSV/JSONL/Parquet body, Refuel `upload_dataset`; a model file),
//! append rows as a new version (Refuel `add_items`), export a whole
//! dataset in any format, and query rows (Refuel `get_items`: filters,
//! several order-by keys, `max_items`/`offset`).

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, RawQuery, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use futures_util::StreamExt;
use labhost::store::import::ModelImport;
use labhost::store::{DatasetRecord, ModelRecord, Registry};
use labhost::tokens::Scope;
use labhost_datasets::{AddOptions, AppendOptions, Filter, Format, OrderBy, RowPage, RowQuery};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tower::ServiceExt;
use utoipa::{IntoParams, OpenApi};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::routes::blocking;
use crate::AppState;

#[derive(OpenApi)]
#[openapi(paths(
    list_models,
    get_model,
    upload_model,
    model_file,
    list_datasets,
    get_dataset,
    upload_dataset,
    append_rows,
    dataset_rows,
    query_rows,
    dataset_file,
    export_dataset
))]
pub struct RegistryApi;

/// The routes (behind the API's authentication layer).
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/models", get(list_models).post(upload_model))
        .route("/api/v1/models/{id}", get(get_model))
        .route("/api/v1/models/{id}/files/{*path}", get(model_file))
        .route("/api/v1/datasets", get(list_datasets).post(upload_dataset))
        .route("/api/v1/datasets/{id}", get(get_dataset))
        .route(
            "/api/v1/datasets/{id}/rows",
            get(dataset_rows).post(append_rows),
        )
        .route("/api/v1/datasets/{id}/query", post(query_rows))
        .route("/api/v1/datasets/{id}/files/{*path}", get(dataset_file))
        .route("/api/v1/datasets/{id}/export", get(export_dataset))
}

fn resolve(state: &AppState, reg: Registry, reference: &str) -> ApiResult<String> {
    state
        .ws()
        .resolve(reg, reference)
        .map(|e| e.id)
        .map_err(|e| ApiError::from_anyhow(StatusCode::NOT_FOUND, &e))
}

fn record<T: serde::de::DeserializeOwned>(
    state: &AppState,
    reg: Registry,
    id: &str,
) -> ApiResult<T> {
    let path = state
        .ws()
        .registry_dir(reg)
        .join(id)
        .join(reg.record_name());
    labhost::store::read_json_opt(&path)
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found(format!("no {} `{id}`", reg.noun())))
}

// ---- models ----------------------------------------------------------------

/// Every model, oldest first: `{models: [model record]}`.
#[utoipa::path(get, path = "/api/v1/models", responses((status = 200, description = "{models: [model record]}")))]
async fn list_models(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<Value>> {
    caller.need(Scope::Read, "listing models")?;
    blocking(move || {
        let models = state.ws().models().map_err(ApiError::internal)?;
        Ok(Json(json!({ "models": models })))
    })
    .await
}

/// One model by id, or the one published model with that name.
#[utoipa::path(get, path = "/api/v1/models/{id}", params(("id" = String, Path, description = "id or name")), responses((status = 200, description = "the model record"), (status = 404)))]
async fn get_model(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(reference): Path<String>,
) -> ApiResult<Json<ModelRecord>> {
    caller.need(Scope::Read, "reading a model")?;
    blocking(move || {
        let id = resolve(&state, Registry::Models, &reference)?;
        record(&state, Registry::Models, &id).map(Json)
    })
    .await
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct ModelUpload {
    name: String,
    /// The file name to store it under, e.g. `model.safetensors`.
    filename: String,
    architecture: Option<String>,
    pipeline_tag: Option<String>,
    parent_model: Option<String>,
    /// A JSON object.
    metadata: Option<String>,
    experiment: Option<String>,
}

/// Add a model file (the request body) to the registry. 201 with its record.
#[utoipa::path(post, path = "/api/v1/models", params(ModelUpload), request_body(content = Vec<u8>, content_type = "application/octet-stream"), responses((status = 201, description = "the model record"), (status = 400), (status = 413)))]
async fn upload_model(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<ModelUpload>,
    req: Request,
) -> ApiResult<Response> {
    caller.need(Scope::Run, "adding a model")?;
    labhost::names::check_name("file name", &q.filename).map_err(ApiError::bad_request)?;
    let metadata = json_object("metadata", q.metadata.as_deref())?;
    let upload = Upload::receive(&state, req.into_body(), &q.filename).await?;
    let source = upload_source(&caller);
    let rec = blocking(move || {
        let rec = state
            .ws()
            .add_model(ModelImport {
                name: q.name,
                path: upload.path.clone(),
                architecture: q.architecture,
                pipeline_tag: q.pipeline_tag,
                parent_model: q.parent_model,
                metadata,
                experiment: q.experiment,
                source: Some(source),
            })
            .map_err(|e| ApiError::from_anyhow(StatusCode::BAD_REQUEST, &e));
        drop(upload);
        rec
    })
    .await?;
    Ok((StatusCode::CREATED, Json(rec)).into_response())
}

/// Download one file of a model, by the path its record lists (`Range`
/// answered).
#[utoipa::path(get, path = "/api/v1/models/{id}/files/{path}", params(("id" = String, Path), ("path" = String, Path)), responses((status = 200, description = "the file, its type guessed from its name", content_type = "*/*"), (status = 206, description = "the asked range", content_type = "*/*"), (status = 404)))]
async fn model_file(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path((reference, path)): Path<(String, String)>,
    req: Request,
) -> ApiResult<Response> {
    caller.need(Scope::Read, "downloading a model")?;
    let file = blocking(move || {
        let id = resolve(&state, Registry::Models, &reference)?;
        let rec: ModelRecord = record(&state, Registry::Models, &id)?;
        listed_file(&state, &rec.files, &path, "model", &id)
    })
    .await?;
    serve_file(file, req).await
}

// ---- datasets --------------------------------------------------------------

/// Every dataset, oldest first: `{datasets: [dataset record]}`.
#[utoipa::path(get, path = "/api/v1/datasets", responses((status = 200, description = "{datasets: [dataset record]}")))]
async fn list_datasets(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<Value>> {
    caller.need(Scope::Read, "listing datasets")?;
    blocking(move || {
        let datasets = state.ws().datasets().map_err(ApiError::internal)?;
        Ok(Json(json!({ "datasets": datasets })))
    })
    .await
}

/// One dataset by id, or the newest published version with that name.
#[utoipa::path(get, path = "/api/v1/datasets/{id}", params(("id" = String, Path, description = "id or name")), responses((status = 200, description = "the dataset record"), (status = 404)))]
async fn get_dataset(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(reference): Path<String>,
) -> ApiResult<Json<DatasetRecord>> {
    caller.need(Scope::Read, "reading a dataset")?;
    blocking(move || {
        let id = resolve(&state, Registry::Datasets, &reference)?;
        record(&state, Registry::Datasets, &id).map(Json)
    })
    .await
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct DatasetUpload {
    name: String,
    /// `csv`, `jsonl` or `parquet`: the body's format.
    format: String,
    description: Option<String>,
    /// A JSON object.
    metadata: Option<String>,
    experiment: Option<String>,
}

/// Add a dataset from the request body (CSV with a header row, JSONL or
/// Parquet). The table is read before anything is stored. 201 with its
/// record.
#[utoipa::path(post, path = "/api/v1/datasets", params(DatasetUpload), request_body(content = Vec<u8>, content_type = "application/octet-stream"), responses((status = 201, description = "the dataset record"), (status = 400), (status = 413)))]
async fn upload_dataset(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<DatasetUpload>,
    req: Request,
) -> ApiResult<Response> {
    caller.need(Scope::Run, "adding a dataset")?;
    let format = Format::parse(&q.format).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let metadata = json_object("metadata", q.metadata.as_deref())?;
    let upload = Upload::receive(
        &state,
        req.into_body(),
        &format!("upload.{}", format.extension()),
    )
    .await?;
    let opts = AddOptions {
        name: q.name,
        description: q.description,
        metadata,
        experiment: q.experiment,
        source: Some(upload_source(&caller)),
    };
    let rec = labhost_datasets::add(state.ws(), &upload.path, opts)
        .await
        .map_err(|e| ApiError::from_anyhow(StatusCode::BAD_REQUEST, &e))?;
    Ok((StatusCode::CREATED, Json(rec)).into_response())
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct AppendQuery {
    /// `csv`, `jsonl` or `parquet`: the body's format.
    format: String,
    experiment: Option<String>,
}

/// Append the rows in the body to a dataset, as a new version of it (the
/// name then resolves to the new version). The columns must be among the
/// dataset's. 201 with the new version's record.
#[utoipa::path(post, path = "/api/v1/datasets/{id}/rows", params(("id" = String, Path), AppendQuery), request_body(content = Vec<u8>, content_type = "application/octet-stream"), responses((status = 201, description = "the new version's record"), (status = 400), (status = 404)))]
async fn append_rows(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(reference): Path<String>,
    Query(q): Query<AppendQuery>,
    req: Request,
) -> ApiResult<Response> {
    caller.need(Scope::Run, "appending to a dataset")?;
    let format = Format::parse(&q.format).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let id = {
        let state = state.clone();
        blocking(move || resolve(&state, Registry::Datasets, &reference)).await?
    };
    let upload = Upload::receive(
        &state,
        req.into_body(),
        &format!("rows.{}", format.extension()),
    )
    .await?;
    let opts = AppendOptions {
        experiment: q.experiment,
        source: Some(upload_source(&caller)),
    };
    let rec = labhost_datasets::append(state.ws(), &id, &upload.path, opts)
        .await
        .map_err(|e| ApiError::from_anyhow(StatusCode::BAD_REQUEST, &e))?;
    Ok((StatusCode::CREATED, Json(rec)).into_response())
}

/// The query-string form of a row query: `filter` and `order_by` repeat
/// (`filter=score >= 0.5&filter=label ILIKE pos&order_by=score DESC`).
#[derive(Deserialize, IntoParams)]
#[allow(dead_code)] // documents the parameters; parsed from the raw query
struct RowsParams {
    /// `FIELD OP [VALUE]`; OP: = <> < <= > >= LIKE ILIKE `NOT LIKE` `NOT ILIKE` `IS NULL` `IS NOT NULL`. Repeatable.
    filter: Vec<String>,
    /// `FIELD [ASC|DESC]`. Repeatable.
    order_by: Vec<String>,
    /// Default 20, at most 10,000.
    max_items: Option<usize>,
    offset: Option<usize>,
}

fn parse_rows_query(raw: Option<&str>) -> ApiResult<RowQuery> {
    let mut q = RowQuery::default();
    let bad = |e: anyhow::Error| ApiError::bad_request(e.to_string());
    for (k, v) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "filter" => q.filters.push(v.parse::<Filter>().map_err(bad)?),
            "order_by" => q.order_by.push(v.parse::<OrderBy>().map_err(bad)?),
            "max_items" => {
                q.max_items = v
                    .parse()
                    .map_err(|_| ApiError::bad_request("max_items must be a number"))?
            }
            "offset" => {
                q.offset = v
                    .parse()
                    .map_err(|_| ApiError::bad_request("offset must be a number"))?
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown query parameter `{}` (expected filter, order_by, max_items, offset)",
                    labhost::text::for_terminal_line(other)
                )))
            }
        }
    }
    Ok(q)
}

/// Query a dataset's rows: filters (all must hold), order, page.
/// `{dataset, total, offset, columns: [{name, type}], rows: [object]}`.
#[utoipa::path(get, path = "/api/v1/datasets/{id}/rows", params(("id" = String, Path), RowsParams), responses((status = 200, description = "a page of rows"), (status = 400), (status = 404)))]
async fn dataset_rows(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(reference): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<RowPage>> {
    caller.need(Scope::Read, "querying a dataset")?;
    let q = parse_rows_query(raw.as_deref())?;
    run_query(state, reference, q).await
}

/// The same query as a JSON body in Refuel's shape:
/// `{filters: [{field, operator, value}], order_by: [{field, direction}], max_items, offset}`.
#[utoipa::path(post, path = "/api/v1/datasets/{id}/query", params(("id" = String, Path)), request_body(content = Object, description = "a row query"), responses((status = 200, description = "a page of rows"), (status = 400), (status = 404)))]
async fn query_rows(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(reference): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<RowPage>> {
    caller.need(Scope::Read, "querying a dataset")?;
    crate::routes::check_size(&body, "a row query")?;
    let q: RowQuery = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("the query is not valid: {e}")))?;
    run_query(state, reference, q).await
}

async fn run_query(
    state: Arc<AppState>,
    reference: String,
    q: RowQuery,
) -> ApiResult<Json<RowPage>> {
    let id = {
        let state = state.clone();
        blocking(move || resolve(&state, Registry::Datasets, &reference)).await?
    };
    labhost_datasets::rows(state.ws(), &id, &q)
        .await
        .map(Json)
        .map_err(|e| ApiError::from_anyhow(StatusCode::BAD_REQUEST, &e))
}

/// Download one stored file of a dataset, by the path its record lists
/// (`Range` answered).
#[utoipa::path(get, path = "/api/v1/datasets/{id}/files/{path}", params(("id" = String, Path), ("path" = String, Path)), responses((status = 200, description = "the file, its type guessed from its name", content_type = "*/*"), (status = 206, description = "the asked range", content_type = "*/*"), (status = 404)))]
async fn dataset_file(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path((reference, path)): Path<(String, String)>,
    req: Request,
) -> ApiResult<Response> {
    caller.need(Scope::Read, "downloading a dataset")?;
    let file = blocking(move || {
        let id = resolve(&state, Registry::Datasets, &reference)?;
        let rec: DatasetRecord = record(&state, Registry::Datasets, &id)?;
        listed_file(&state, &rec.files, &path, "dataset", &id)
    })
    .await?;
    serve_file(file, req).await
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct ExportQuery {
    /// `csv`, `jsonl` (default) or `parquet`.
    format: Option<String>,
}

/// The whole dataset (every version part) as one file.
#[utoipa::path(get, path = "/api/v1/datasets/{id}/export", params(("id" = String, Path), ExportQuery), responses((status = 200, description = "the rows in the asked format", content((Vec<u8> = "text/csv"), (Vec<u8> = "application/x-ndjson"), (Vec<u8> = "application/vnd.apache.parquet"))), (status = 404)))]
async fn export_dataset(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(reference): Path<String>,
    Query(q): Query<ExportQuery>,
) -> ApiResult<Response> {
    caller.need(Scope::Read, "exporting a dataset")?;
    let format = Format::parse(q.format.as_deref().unwrap_or("jsonl"))
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let id = {
        let state = state.clone();
        blocking(move || resolve(&state, Registry::Datasets, &reference)).await?
    };
    let scratch = scratch_dir(&state)?;
    let out = scratch.path().join(format!("{id}.{}", format.extension()));
    labhost_datasets::export(state.ws(), &id, &out, Some(format))
        .await
        .map_err(|e| ApiError::from_anyhow(StatusCode::BAD_REQUEST, &e))?;
    let file = tokio::fs::File::open(&out)
        .await
        .map_err(ApiError::internal)?;
    // The open file outlives its directory: unlinked now, read by the stream.
    drop(scratch);
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(file));
    let content_type = match format {
        Format::Csv => "text/csv",
        Format::Jsonl => "application/x-ndjson",
        Format::Parquet => "application/vnd.apache.parquet",
    };
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{id}.{}\"", format.extension()),
            ),
        ],
        body,
    )
        .into_response())
}

// ---- helpers ---------------------------------------------------------------

fn json_object(what: &str, text: Option<&str>) -> ApiResult<Value> {
    let Some(text) = text else {
        return Ok(json!({}));
    };
    match serde_json::from_str::<Value>(text) {
        Ok(v) if v.is_object() => Ok(v),
        _ => Err(ApiError::bad_request(format!(
            "{what} must be a JSON object"
        ))),
    }
}

fn upload_source(caller: &Caller) -> String {
    match &caller.token {
        Some(t) => format!("upload through labhost serve (token {t})"),
        None => "upload through labhost serve".into(),
    }
}

pub(crate) fn scratch_dir(state: &AppState) -> ApiResult<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix(".upload-")
        .tempdir_in(state.ws().root())
        .map_err(ApiError::internal)
}

/// A request body received into a scratch file in the workspace (removed
/// when dropped).
struct Upload {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Upload {
    /// Stream `body` to `<scratch>/<name>`, refusing (413) past
    /// [`crate::MAX_BODY`] bytes and an empty body (400).
    async fn receive(state: &AppState, body: Body, name: &str) -> ApiResult<Upload> {
        let dir = scratch_dir(state)?;
        let path = dir.path().join(name);
        let mut file = tokio::fs::File::create(&path)
            .await
            .map_err(ApiError::internal)?;
        let mut stream = body.into_data_stream();
        let mut size = 0usize;
        while let Some(chunk) = stream.next().await {
            let chunk =
                chunk.map_err(|e| ApiError::bad_request(format!("reading the body: {e}")))?;
            size += chunk.len();
            if size > crate::MAX_BODY {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("an upload is at most {} bytes", crate::MAX_BODY),
                ));
            }
            file.write_all(&chunk).await.map_err(ApiError::internal)?;
        }
        file.flush().await.map_err(ApiError::internal)?;
        if size == 0 {
            return Err(ApiError::bad_request("the request body is empty"));
        }
        Ok(Upload { _dir: dir, path })
    }
}

/// The path of a file the stored record lists, or 404.
fn listed_file(
    state: &AppState,
    files: &labhost::store::StoredRecord,
    path: &str,
    noun: &str,
    id: &str,
) -> ApiResult<PathBuf> {
    files
        .files
        .iter()
        .find(|f| f.path == path)
        .map(|f| state.ws().root().join(&files.location).join(&f.path))
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "`{}` is not a file of {noun} `{id}`",
                labhost::text::for_terminal_line(path)
            ))
        })
}

async fn serve_file(file: PathBuf, req: Request) -> ApiResult<Response> {
    tower_http::services::ServeFile::new(file)
        .oneshot(req)
        .await
        .map(IntoResponse::into_response)
        .map_err(ApiError::internal)
}
