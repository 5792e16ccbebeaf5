use chrono::Utc;

use crate::bindings::wit::models::{Host, ModelInfo, ModelMeta};
use crate::error::{CallError, CallResult};
use crate::events::StoredKind;
use crate::state::HostState;
use crate::store::{ModelRecord, Registry, SCHEMA};

/// Longest architecture / pipeline tag / parent model string, in bytes.
const MAX_META_FIELD: usize = 256;

impl Host for HostState {
    fn save(&mut self, path: String, name: String, meta: ModelMeta) -> CallResult<ModelInfo> {
        let job = self.job()?;
        let metadata = super::metadata(job, "model metadata", &meta.metadata)?;
        for (field, v) in [
            ("architecture", &meta.architecture),
            ("pipeline-tag", &meta.pipeline_tag),
            ("parent-model", &meta.parent_model),
        ] {
            if v.as_ref()
                .is_some_and(|s| s.len() > MAX_META_FIELD || s.chars().any(char::is_control))
            {
                return Err(CallError::Invalid(format!(
                    "model {field} must be one line of at most {MAX_META_FIELD} bytes"
                )));
            }
        }
        let (id, rec) = job.store_registry_entry(
            Registry::Models,
            &name,
            |job, files| job.fill_from_guest(&path, files),
            |job, id, files| ModelRecord {
                schema: SCHEMA,
                id,
                name: name.clone(),
                job_id: job.record.id.clone(),
                experiment: job.record.experiment.clone(),
                created_at: Utc::now(),
                architecture: meta.architecture.clone(),
                pipeline_tag: meta.pipeline_tag.clone(),
                parent_model: meta.parent_model.clone(),
                metadata,
                files,
            },
        )?;
        job.record.models.push(id);
        job.stored(StoredKind::Model, &rec.files)?;
        Ok(model_info(&rec))
    }

    fn list(&mut self) -> wasmtime::Result<Vec<ModelInfo>> {
        let Some(job) = &self.job else {
            return Ok(Vec::new());
        };
        Ok(visible(job)?.iter().map(model_info).collect())
    }

    fn open(&mut self, id: String) -> CallResult<String> {
        self.job()?.granted_path(Registry::Models, &id)
    }

    fn get(&mut self, id: String) -> CallResult<ModelInfo> {
        let all = visible(self.job()?)?;
        super::find_entry(&all, "model", &id, |m| &m.id, |m| &m.name).map(model_info)
    }
}

/// The models a job sees: those of completed jobs, and its own.
fn visible(job: &crate::job::JobCtx) -> wasmtime::Result<Vec<ModelRecord>> {
    let ws = &job.ws;
    let all = ws
        .models()
        .map_err(|e| wasmtime::Error::msg(format!("{e:#}")))?;
    let mut published = super::Published::new(&job.record.id);
    Ok(all
        .into_iter()
        .filter(|m| published.check(ws, &m.experiment, &m.job_id))
        .collect())
}

fn model_info(r: &ModelRecord) -> ModelInfo {
    ModelInfo {
        id: r.id.clone(),
        name: r.name.clone(),
        job_id: r.job_id.clone(),
        meta: ModelMeta {
            architecture: r.architecture.clone(),
            pipeline_tag: r.pipeline_tag.clone(),
            parent_model: r.parent_model.clone(),
            metadata: r.metadata.to_string(),
        },
        files: (&r.files).into(),
    }
}
