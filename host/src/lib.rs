//! labhost: run ML-lab plugins (WebAssembly components) in a sandbox.
//!
//! ```text
//!  CLI (main.rs) / embedder
//!        │  JobSpec { plugin, config, Sandbox { grants, limits }, resume }
//!        ▼
//!  Host ── Engine + Linker (built once) ── Host::load → Plugin (compiled,
//!        │                                  pre-instantiated, described)
//!        │ start(spec): check config, resolve grants, create job dir
//!        ▼
//!  job thread: Store<HostState> = WASI ctx (only the grants as preopens,
//!        │     no network, no env) + memory limiter + epoch deadline
//!        ▼
//!  guest `run()` ──calls──▶ lab API impls (api/*.rs, one per interface)
//!                              │ paths resolved in the grants (mounts.rs, cap-std)
//!                              ▼
//!                          Workspace store (store/): job.json snapshots,
//!                          output.log, metrics.jsonl, artifacts, registry
//!                              │
//!                              └──▶ JobEvent broadcast → CLI renderer / embedder
//! ```
//!
//! Embedding:
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let host = labhost::Host::new(labhost::Workspace::open("ws")?)?;
//! let plugin = host.load("plugin.wasm".as_ref())?;
//! let mut spec = labhost::JobSpec::new(plugin);
//! spec.config.insert("epochs".into(), 3.into());
//! let record = host.run(spec).await?;
//! println!("{} {}", record.id, record.status);
//! # Ok(()) }
//! ```

mod api;
pub mod app;
mod bindings;
pub mod cache;
pub mod config;
pub mod egress;
mod engine;
pub mod error;
pub mod events;
pub mod executor;
mod fds;
pub mod heartbeat;
mod host;
mod job;
mod joblog;
mod launch;
pub mod lifecycle;
pub mod lifecycle_events;
mod loader;
mod mounts;
pub mod names;
pub mod nn;
mod outcome;
pub mod pipeline;
pub mod plugin;
pub mod query;
pub mod read;
pub mod sandbox;
pub mod secrets;
pub mod settings;
pub mod slurm;
mod state;
pub mod store;
pub mod text;
pub mod tokens;
pub mod units;
mod watcher;
pub mod wit_versions;

pub use cache::{CacheOutcome, CompileCache};
pub use egress::HttpGrant;
pub use engine::{HostOptions, Pooling};
pub use events::{JobEvent, LogSource, StoredKind};
pub use executor::{Executor, JobRequest, LocalExecutor, ResumePoint};
pub use host::{Adopt, Host, JobHandle, JobSpec};
pub use job::JobControl;
pub use plugin::{Plugin, PluginInfo, PluginKind};
pub use sandbox::{DirGrant, Grants, LimitOverrides, Limits, Sandbox};
pub use secrets::Secrets;
pub use settings::Settings;
pub use store::{FailureKind, JobRecord, JobStatus, PipelineRef, Workspace};
