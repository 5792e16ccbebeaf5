//! `lab:api@0.1.0`, served by delegation: each call of the frozen version
//! converts its arguments to the live version's types, calls the live
//! implementation, and converts the result back. Nothing here decides
//! anything; a 0.1.0 plugin gets exactly the live behaviour of the calls
//! it knows.

use crate::bindings::v0_1_0::wit as old;
use crate::bindings::wit as new;
use crate::error::{CallError, CallResult};
use crate::state::HostState;

/// Field-by-field conversion between a record of 0.1.0 and the same
/// record of the live version, both ways.
macro_rules! same_record {
    ($old:ty, $new:ty { $($field:ident),* $(,)? }) => {
        impl From<$new> for $old {
            fn from(v: $new) -> Self {
                Self { $($field: v.$field.into()),* }
            }
        }
        impl From<$old> for $new {
            fn from(v: $old) -> Self {
                Self { $($field: v.$field.into()),* }
            }
        }
    };
}

/// Case-by-case conversion of an enum, both ways.
macro_rules! same_enum {
    ($old:ty, $new:ty { $($case:ident),* $(,)? }) => {
        impl From<$new> for $old {
            fn from(v: $new) -> Self {
                match v { $(<$new>::$case => Self::$case),* }
            }
        }
        impl From<$old> for $new {
            fn from(v: $old) -> Self {
                match v { $(<$old>::$case => Self::$case),* }
            }
        }
    };
}

same_record!(
    old::types::Stored,
    new::types::Stored {
        name,
        location,
        size,
        files,
        digest
    }
);
same_record!(
    old::config::JobInfo,
    new::config::JobInfo {
        job_id,
        experiment,
        work_dir
    }
);
same_record!(
    old::checkpoints::ResumePoint,
    new::checkpoints::ResumePoint { job_id, name, path }
);
same_record!(
    old::models::ModelMeta,
    new::models::ModelMeta {
        architecture,
        pipeline_tag,
        parent_model,
        metadata
    }
);
same_record!(
    old::models::ModelInfo,
    new::models::ModelInfo {
        id,
        name,
        job_id,
        meta,
        files
    }
);
same_record!(
    old::datasets::DatasetInfo,
    new::datasets::DatasetInfo {
        id,
        name,
        job_id,
        rows,
        description,
        metadata,
        files
    }
);
same_record!(
    old::evals::EvalRow,
    new::evals::EvalRow {
        input,
        output,
        expected,
        score,
        extra
    }
);
same_record!(
    old::evals::EvalSummary,
    new::evals::EvalSummary {
        name,
        count,
        mean_score,
        file
    }
);
same_enum!(
    old::log::Level,
    new::log::Level {
        Trace,
        Debug,
        Info,
        Warn,
        Error
    }
);
same_enum!(
    old::evals::TableFormat,
    new::evals::TableFormat { Csv, Jsonl }
);

fn list<A, B: From<A>>(v: Vec<A>) -> Vec<B> {
    v.into_iter().map(B::from).collect()
}

impl old::types::Host for HostState {
    fn convert_lab_error(&mut self, err: CallError) -> wasmtime::Result<old::types::LabError> {
        use old::types::LabError as E;
        Ok(match err {
            CallError::Invalid(m) => E::InvalidArgument(m),
            CallError::Denied(m) => E::Denied(m),
            CallError::NotFound(m) => E::NotFound(m),
            CallError::Limit(m) => E::LimitExceeded(m),
            // 0.1.0 has no network calls; its nearest case.
            CallError::Io(m) | CallError::Network(m) => E::Io(m),
            CallError::Trap(e) => return Err(e),
        })
    }
}

impl old::plugin_types::Host for HostState {}

impl old::log::Host for HostState {
    fn write(&mut self, level: old::log::Level, message: String) -> wasmtime::Result<()> {
        new::log::Host::write(self, level.into(), message)
    }
}

impl old::progress::Host for HostState {
    fn update(&mut self, percent: f32, stage: Option<String>) -> CallResult<()> {
        new::progress::Host::update(self, percent, stage)
    }
}

impl old::config::Host for HostState {
    fn get(&mut self) -> wasmtime::Result<String> {
        new::config::Host::get(self)
    }
    fn info(&mut self) -> wasmtime::Result<old::config::JobInfo> {
        new::config::Host::info(self).map(Into::into)
    }
}

impl old::metrics::Host for HostState {
    fn record_metric(&mut self, name: String, value: f64, step: Option<u64>) -> CallResult<()> {
        new::metrics::Host::record_metric(self, name, value, step)
    }
}

impl old::artifacts::Host for HostState {
    fn save(&mut self, path: String, name: Option<String>) -> CallResult<old::types::Stored> {
        new::artifacts::Host::save(self, path, name).map(Into::into)
    }
    fn list(&mut self) -> wasmtime::Result<Vec<old::types::Stored>> {
        new::artifacts::Host::list(self).map(list)
    }
}

impl old::checkpoints::Host for HostState {
    fn save(&mut self, path: String, name: String) -> CallResult<old::types::Stored> {
        new::checkpoints::Host::save(self, path, name).map(Into::into)
    }
    fn list(&mut self) -> wasmtime::Result<Vec<old::types::Stored>> {
        new::checkpoints::Host::list(self).map(list)
    }
    fn resume_from(&mut self) -> wasmtime::Result<Option<old::checkpoints::ResumePoint>> {
        new::checkpoints::Host::resume_from(self).map(|r| r.map(Into::into))
    }
}

impl old::models::Host for HostState {
    fn save(
        &mut self,
        path: String,
        name: String,
        meta: old::models::ModelMeta,
    ) -> CallResult<old::models::ModelInfo> {
        new::models::Host::save(self, path, name, meta.into()).map(Into::into)
    }
    fn list(&mut self) -> wasmtime::Result<Vec<old::models::ModelInfo>> {
        new::models::Host::list(self).map(list)
    }
    fn open(&mut self, id: String) -> CallResult<String> {
        new::models::Host::open(self, id)
    }
}

impl old::datasets::Host for HostState {
    fn save_rows(
        &mut self,
        name: String,
        rows: Vec<String>,
        description: Option<String>,
        metadata: String,
    ) -> CallResult<old::datasets::DatasetInfo> {
        new::datasets::Host::save_rows(self, name, rows, description, metadata).map(Into::into)
    }
    fn save_file(
        &mut self,
        path: String,
        name: String,
        description: Option<String>,
        metadata: String,
    ) -> CallResult<old::datasets::DatasetInfo> {
        new::datasets::Host::save_file(self, path, name, description, metadata).map(Into::into)
    }
    fn list(&mut self) -> wasmtime::Result<Vec<old::datasets::DatasetInfo>> {
        new::datasets::Host::list(self).map(list)
    }
    fn open(&mut self, id: String) -> CallResult<String> {
        new::datasets::Host::open(self, id)
    }
}

impl old::evals::Host for HostState {
    fn save(
        &mut self,
        name: String,
        rows: Vec<old::evals::EvalRow>,
        format: old::evals::TableFormat,
    ) -> CallResult<old::evals::EvalSummary> {
        new::evals::Host::save(self, name, list(rows), format.into()).map(Into::into)
    }
}

impl old::job::Host for HostState {
    fn finish(&mut self, message: String, scores: Vec<(String, f64)>) -> CallResult<()> {
        new::job::Host::finish(self, message, scores)
    }
    fn fail(&mut self, message: String) -> CallResult<()> {
        new::job::Host::fail(self, message)
    }
    fn should_stop(&mut self) -> wasmtime::Result<bool> {
        new::job::Host::should_stop(self)
    }
}
