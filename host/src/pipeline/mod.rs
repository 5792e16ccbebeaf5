//! Pipelines: stages that run alone or chained, fanned out and in, on a
//! bounded number of workers, with retries and resume.
//!
//! ```text
//!  pipeline.toml ──parse (file.rs)──▶ stages ──expand (plan.rs)──▶ instances
//!        │                                                         │
//!        └────────── PipelineRun::create: load + pin every plugin, validate
//!                    configs and inputs, write pipelines/<run>/run.json
//!                                                                  ▼
//!  PipelineRun::execute (runner.rs): queue ready instances ─▶ Host::start
//!        ▲   (≤ workers at once)   ◀── job ends: complete / retry / block
//!        └── PipelineRun::resume: keep COMPLETE, queue the rest again
//! ```
//!
//! Every instance's job is an ordinary job (`labhost show`, `labhost rerun`)
//! whose record names the run and instance.

pub mod file;
pub mod plan;
pub mod record;
pub mod runner;

pub use file::{PipelineFile, RetryPolicy};
pub use record::{
    find_run, list_runs, Attempt, Input, Instance, InstanceStatus, RunPaths, RunRecord, RunStatus,
};
pub use runner::{live, LiveJob, PipelineEvent, PipelineRun, RunCanceller};
