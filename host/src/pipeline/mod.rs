//! Pipelines: stages that run alone or chained, fanned out and in, on a
//! bounded number of workers, with retries and resume.
//!
//! ```text
//!  pipeline.toml ──parse (file.rs)──▶ stages ──expand (plan.rs)──▶ instances
//!        │                                                         │
//!        └────────── PipelineRun::create: load + pin every plugin, validate
//!                    configs and inputs, write pipelines/<run>/run.json
//!                                                                  ▼
//!  PipelineRun::execute (runner.rs): scheduler::next_actions (scheduler.rs,
//!        │   pure: ready set, worker bound, backoff, blocking) ─▶ JobRequest
//!        │   ─▶ Executor::submit (LocalExecutor: Host::start), ≤ workers at once
//!        ▲   ◀── Executor::wait: scheduler::on_job_end: complete / retry / block
//!        └── PipelineRun::resume: keep COMPLETE, queue the rest again
//! ```
//!
//! Every instance's job is an ordinary job (`labhost show`, `labhost rerun`)
//! whose record names the run and instance.

pub mod file;
pub mod plan;
pub mod record;
pub mod runner;
pub mod scheduler;
pub mod status;

pub use file::{PipelineFile, RetryPolicy};
pub use record::{
    find_run, list_runs, request_cancel, Attempt, Input, Instance, InstanceStatus, RunPaths,
    RunRecord, RunStatus,
};
pub use runner::{PipelineRun, RunCanceller};
pub use scheduler::PipelineEvent;
pub use status::{live, LiveJob};
