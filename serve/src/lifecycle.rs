//! Lifecycle routes: delete a job or pipeline run, export one as a bundle
//! (streamed), import a bundle. Argument parsing and rendering over
//! `labhost::lifecycle`; the library decides and refuses.
//!
//! Scopes: deleting and importing need `admin` — a deletion destroys
//! results (and the models and datasets others may build on) beyond undo,
//! and an import adds records and registry entries that other jobs then
//! resolve by name, so neither belongs to a `run` token handed to CI to
//! launch and cancel jobs. Exporting needs `read`: a bundle holds what the
//! read routes already serve (records, logs, metrics, listed files).

use std::io::{self, Write};
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router};
use futures_util::StreamExt;
use labhost::lifecycle::{bundle, remove, BadBundle, NotFound, Refused};
use labhost::tokens::Scope;
use serde::Serialize;
use tokio::sync::mpsc;
use utoipa::{OpenApi, ToSchema};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::routes::blocking;
use crate::AppState;

/// Largest bundle `POST /api/v1/import` takes.
pub const MAX_IMPORT: u64 = 64 << 30;

#[derive(OpenApi)]
#[openapi(
    paths(delete_job, export_job, import_bundle),
    components(schemas(RemovedView, ImportedView))
)]
pub struct LifecycleApi;

/// The lifecycle routes (behind the API's authentication).
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/jobs/{id}", delete(delete_job))
        .route("/api/v1/jobs/{id}/export", get(export_job))
        .route("/api/v1/import", post(import_bundle))
}

/// A library error as its status: refused 409, unknown 404, a bad bundle
/// 400, anything else 500.
fn api_error(e: anyhow::Error) -> ApiError {
    let status = if e.downcast_ref::<Refused>().is_some() {
        StatusCode::CONFLICT
    } else if e.downcast_ref::<NotFound>().is_some() {
        StatusCode::NOT_FOUND
    } else if e.downcast_ref::<BadBundle>().is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    };
    ApiError::from_anyhow(status, &e)
}

/// What a deletion removed.
#[derive(Serialize, ToSchema)]
struct RemovedView {
    /// The pipeline run, when the id named a run.
    run: Option<String>,
    jobs: Vec<String>,
    models: Vec<String>,
    datasets: Vec<String>,
    /// Disk space freed.
    bytes: u64,
}

/// Delete a job — or a pipeline run with its jobs — with the models and
/// datasets it saved. 409 (with the reason) while it runs, while a model or
/// dataset it saved is granted to a running job, while a running job
/// resumes from its checkpoint, or for a job of an existing pipeline run.
#[utoipa::path(delete, path = "/api/v1/jobs/{id}", params(("id" = String, Path, description = "a job or pipeline run id")), responses((status = 200, body = RemovedView), (status = 403), (status = 404), (status = 409)))]
async fn delete_job(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<RemovedView>> {
    caller.need(Scope::Admin, "deleting a job")?;
    blocking(move || {
        let r = remove::remove(state.ws(), &id).map_err(api_error)?;
        Ok(Json(RemovedView {
            run: r.run,
            jobs: r.jobs,
            models: r.models,
            datasets: r.datasets,
            bytes: r.bytes,
        }))
    })
    .await
}

/// A writer that hands what it is given to the response body, in chunks.
struct ChannelWriter {
    tx: mpsc::Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
}

const CHUNK: usize = 256 << 10;

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buf));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }
}

/// Export a job (or a pipeline run with its jobs) as a bundle: a tar whose
/// first member `labhost-bundle.json` lists every file with its blake3,
/// then the records, logs, metrics, stored files and the registry entries
/// the jobs saved. Streamed. 409 while it runs.
#[utoipa::path(get, path = "/api/v1/jobs/{id}/export", params(("id" = String, Path, description = "a job or pipeline run id")), responses((status = 200, description = "the bundle", content_type = "application/x-tar", body = Vec<u8>), (status = 404), (status = 409)))]
async fn export_job(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    caller.need(Scope::Read, "exporting a job")?;
    let ws = state.ws().clone();
    let plan = blocking(move || bundle::plan_export(&ws, &id).map_err(api_error)).await?;
    let name = match &plan.manifest.run {
        Some(r) => r.clone(),
        None => plan.manifest.jobs[0].id.clone(),
    };
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(8);
    tokio::task::spawn_blocking(move || {
        let mut w = ChannelWriter {
            tx: tx.clone(),
            buf: Vec::with_capacity(CHUNK),
        };
        // A failure mid-stream ends the body with an error (the client
        // sees a cut transfer, never a bundle that looks whole).
        if let Err(e) = plan.write(&mut w).and_then(|()| Ok(w.flush()?)) {
            let _ = tx.blocking_send(Err(io::Error::other(format!("{e:#}"))));
        }
    });
    let stream =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) });
    let mut res = Body::from_stream(stream).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-tar"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Ids are `[0-9a-f-]` and names checked: a plain token in the header.
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}.tar\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(res)
}

/// What an import added.
#[derive(Serialize, ToSchema)]
struct ImportedView {
    run: Option<String>,
    jobs: Vec<String>,
    models: Vec<String>,
    datasets: Vec<String>,
    files: usize,
    bytes: u64,
}

/// A reader over the request body's chunks (for the blocking importer).
struct ChannelReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    cur: Bytes,
}

impl io::Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(chunk) => self.cur = chunk?,
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.cur.len());
        out[..n].copy_from_slice(&self.cur.split_to(n));
        Ok(n)
    }
}

/// Import a bundle (the request body, as `labhost export` writes it).
/// Every file is checked against the manifest's blake3 and every record
/// against its files before anything becomes visible. 201; 400 for a
/// malformed, unsafe or tampered bundle (the file named); 409 when an id
/// in it already exists; 413 past 64 GiB.
#[utoipa::path(post, path = "/api/v1/import", request_body(content = Vec<u8>, content_type = "application/x-tar"), responses((status = 201, body = ImportedView), (status = 400), (status = 403), (status = 409), (status = 413)))]
async fn import_bundle(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    body: Body,
) -> ApiResult<Response> {
    caller.need(Scope::Admin, "importing a bundle")?;
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(8);
    let ws = state.ws().clone();
    let import = tokio::task::spawn_blocking(move || {
        bundle::import(
            &ws,
            io::BufReader::with_capacity(
                1 << 20,
                ChannelReader {
                    rx,
                    cur: Bytes::new(),
                },
            ),
        )
    });
    let mut stream = body.into_data_stream();
    let mut total = 0u64;
    let mut too_large = false;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| io::Error::other(format!("reading the request body: {e}")));
        if let Ok(c) = &chunk {
            total += c.len() as u64;
            if total > MAX_IMPORT {
                too_large = true;
                let _ = tx
                    .send(Err(io::Error::other("the bundle is too large")))
                    .await;
                break;
            }
        }
        let failed = chunk.is_err();
        if tx.send(chunk).await.is_err() || failed {
            break; // the importer stopped (it refused the bundle)
        }
    }
    drop(tx);
    let result = import.await.map_err(ApiError::internal)?;
    if too_large {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "a bundle may be at most {}",
                labhost::units::human_bytes(MAX_IMPORT)
            ),
        ));
    }
    let r = result.map_err(|e| {
        // The body could not be read whole: the client's fault.
        if e.downcast_ref::<io::Error>().is_some() {
            ApiError::from_anyhow(StatusCode::BAD_REQUEST, &e)
        } else {
            api_error(e)
        }
    })?;
    let view = ImportedView {
        run: r.run,
        jobs: r.jobs,
        models: r.models,
        datasets: r.datasets,
        files: r.files,
        bytes: r.bytes,
    };
    Ok((StatusCode::CREATED, Json(view)).into_response())
}
