use chrono::Utc;

use super::json_object;
use crate::bindings::wit::datasets::{DatasetInfo, Host};
use crate::error::{CallError, CallResult};
use crate::events::StoredKind;
use crate::state::HostState;
use crate::store::ingest;
use crate::store::{DatasetRecord, Registry, StoredRecord, SCHEMA};

/// Longest dataset description, in bytes.
const MAX_DESCRIPTION: usize = 4096;

/// File name of a dataset saved from rows.
pub const ROWS_FILE: &str = "data.jsonl";

impl Host for HostState {
    fn save_rows(
        &mut self,
        name: String,
        rows: Vec<String>,
        description: Option<String>,
        metadata: String,
    ) -> CallResult<DatasetInfo> {
        let job = self.job()?;
        check_description(&description)?;
        let metadata = super::metadata(job, "dataset metadata", &metadata)?;
        let mut data = Vec::with_capacity(rows.iter().map(|r| r.len() + 1).sum());
        for (i, row) in rows.iter().enumerate() {
            // Re-serialise: one compact object per line, whatever the guest sent.
            let v = json_object(&format!("row {i}"), row)?;
            serde_json::to_writer(&mut data, &v).map_err(|e| CallError::Trap(e.into()))?;
            data.push(b'\n');
        }
        let count = rows.len() as u64;
        save(
            job,
            &name,
            description,
            metadata,
            Some(count),
            |job, files| {
                std::fs::create_dir(files)
                    .map_err(|e| CallError::Io(format!("creating {}: {e}", files.display())))?;
                let mut entry = ingest::store_bytes(&data, &files.join(ROWS_FILE), &mut job.quota)?;
                entry.path = ROWS_FILE.into();
                Ok((vec![entry], true))
            },
        )
    }

    fn save_file(
        &mut self,
        path: String,
        name: String,
        description: Option<String>,
        metadata: String,
    ) -> CallResult<DatasetInfo> {
        let job = self.job()?;
        check_description(&description)?;
        let metadata = super::metadata(job, "dataset metadata", &metadata)?;
        save(job, &name, description, metadata, None, |job, files| {
            job.fill_from_guest(&path, files)
        })
    }

    fn list(&mut self) -> wasmtime::Result<Vec<DatasetInfo>> {
        let Some(job) = &self.job else {
            return Ok(Vec::new());
        };
        Ok(visible(job)?.iter().map(dataset_info).collect())
    }

    fn open(&mut self, id: String) -> CallResult<String> {
        self.job()?.granted_path(Registry::Datasets, &id)
    }

    fn get(&mut self, id: String) -> CallResult<DatasetInfo> {
        let all = visible(self.job()?)?;
        super::find_entry(&all, "dataset", &id, |d| &d.id, |d| &d.name).map(dataset_info)
    }
}

/// The datasets a job sees: those of completed jobs, and its own.
fn visible(job: &crate::job::JobCtx) -> wasmtime::Result<Vec<DatasetRecord>> {
    let ws = &job.ws;
    let all = ws
        .datasets()
        .map_err(|e| wasmtime::Error::msg(format!("{e:#}")))?;
    let mut published = super::Published::new(&job.record.id);
    Ok(all
        .into_iter()
        .filter(|d| published.check(ws, &d.experiment, &d.job_id))
        .collect())
}

fn check_description(d: &Option<String>) -> CallResult<()> {
    match d {
        Some(d) => crate::names::check_text("dataset description", d, MAX_DESCRIPTION)
            .map_err(CallError::Invalid),
        None => Ok(()),
    }
}

fn save(
    job: &mut crate::job::JobCtx,
    name: &str,
    description: Option<String>,
    metadata: serde_json::Value,
    rows: Option<u64>,
    fill: impl FnOnce(
        &mut crate::job::JobCtx,
        &std::path::Path,
    ) -> CallResult<(Vec<crate::store::FileEntry>, bool)>,
) -> CallResult<DatasetInfo> {
    let (id, rec) = job.store_registry_entry(
        Registry::Datasets,
        name,
        fill,
        |job, id, files: StoredRecord| DatasetRecord {
            schema: SCHEMA,
            id,
            name: name.to_owned(),
            job_id: job.record.id.clone(),
            experiment: job.record.experiment.clone(),
            created_at: Utc::now(),
            rows,
            description,
            metadata,
            files,
            supersedes: None,
        },
    )?;
    job.record.datasets.push(id);
    job.stored(StoredKind::Dataset, &rec.files)?;
    Ok(dataset_info(&rec))
}

fn dataset_info(r: &DatasetRecord) -> DatasetInfo {
    DatasetInfo {
        id: r.id.clone(),
        name: r.name.clone(),
        job_id: r.job_id.clone(),
        rows: r.rows,
        description: r.description.clone(),
        metadata: r.metadata.to_string(),
        files: (&r.files).into(),
    }
}
