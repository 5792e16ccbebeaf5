//! Write [labhost](https://example.invalid/labhost) plugins in Rust.
//!
//! A plugin implements [`Plugin`] and registers it with [`export_plugin!`]:
//!
//! ```ignore
//! struct Hello;
//! impl lab::Plugin for Hello {
//!     fn describe() -> lab::Describe {
//!         lab::Describe::new("hello", lab::Kind::Other, "Says hello")
//!             .param("who", lab::ParamType::Text, Some("world"), "Whom to greet")
//!     }
//!     fn run() -> lab::Result<()> {
//!         let config = lab::config();
//!         lab::info(&format!("hello, {}", config["who"].as_str().unwrap_or("?")));
//!         lab::finish("greeted", &[])
//!     }
//! }
//! lab::export_plugin!(Hello);
//! ```
//!
//! Every function is a thin, typed wrapper over one call of the `lab:api`
//! WIT package (see `wit/lab.wit`); errors come back as [`Error`].

use std::fmt;
use std::path::{Path, PathBuf};

#[doc(hidden)]
#[cfg(not(any(feature = "api-0-1", feature = "predictor")))]
pub mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "lab:api/plugin",
        // The world also imports wasi:nn (a second package in lab.wit).
        generate_all,
        pub_export_macro: true,
        export_macro_name: "__export_plugin_world",
        default_bindings_module: "lab::bindings",
    });
}

/// The `predictor` world (feature `predictor`): a plugin served as an app.
#[doc(hidden)]
#[cfg(all(feature = "predictor", not(feature = "api-0-1")))]
pub mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "lab:api/predictor",
        generate_all,
        pub_export_macro: true,
        export_macro_name: "__export_predictor_world",
        default_bindings_module: "lab::bindings",
    });
}

#[cfg(all(feature = "predictor", not(feature = "api-0-1")))]
pub mod predictor;
#[cfg(all(feature = "predictor", not(feature = "api-0-1")))]
pub use predictor::Predictor;

/// The frozen `lab:api@0.1.0` (feature `api-0-1`).
#[doc(hidden)]
#[cfg(feature = "api-0-1")]
pub mod bindings {
    wit_bindgen::generate!({
        path: "wit-0.1.0",
        world: "lab:api/plugin",
        pub_export_macro: true,
        export_macro_name: "__export_plugin_world",
        default_bindings_module: "lab::bindings",
    });
}

#[cfg(not(feature = "api-0-1"))]
pub mod http;
#[cfg(not(feature = "api-0-1"))]
pub mod nn;
#[cfg(not(feature = "api-0-1"))]
mod v0_2;
#[cfg(not(feature = "api-0-1"))]
pub use v0_2::*;

use bindings::lab::api as wit;

pub use wit::checkpoints::ResumePoint;
pub use wit::datasets::DatasetInfo;
pub use wit::evals::{EvalRow, EvalSummary, TableFormat};
pub use wit::log::Level;
pub use wit::models::{ModelInfo, ModelMeta};
pub use wit::plugin_types::{Param, ParamType, PluginInfo, PluginKind as Kind};
pub use wit::types::{LabError, Stored};

/// What a plugin's `run` returns.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A plugin: its self-description and its job body.
pub trait Plugin {
    /// Name, version, kind and parameters. Called before any job.
    fn describe() -> Describe;
    /// The job. Call [`finish`] (or [`fail`]) before returning `Ok`.
    fn run() -> Result<()>;
}

/// Export a [`Plugin`] implementation as the component's `describe`/`run`.
#[cfg(not(feature = "predictor"))]
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        #[doc(hidden)]
        pub struct __LabhostPlugin;
        impl $crate::bindings::Guest for __LabhostPlugin {
            fn describe() -> $crate::PluginInfo {
                <$plugin as $crate::Plugin>::describe().into_info()
            }
            fn run() -> ::std::result::Result<(), ::std::string::String> {
                <$plugin as $crate::Plugin>::run().map_err(|e| e.to_string())
            }
        }
        $crate::bindings::__export_plugin_world!(__LabhostPlugin with_types_in $crate::bindings);
    };
}

/// An error from a lab call or from the plugin itself.
#[derive(Debug)]
pub enum Error {
    /// The host refused or failed a lab call.
    Lab(LabError),
    /// Anything else, as a message.
    Other(String),
}

impl Error {
    /// An error with a message.
    pub fn msg(message: impl Into<String>) -> Self {
        Error::Other(message.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Lab(e) => match e {
                LabError::InvalidArgument(m) => write!(f, "invalid argument: {m}"),
                LabError::Denied(m) => write!(f, "denied: {m}"),
                LabError::NotFound(m) => write!(f, "not found: {m}"),
                LabError::LimitExceeded(m) => write!(f, "limit exceeded: {m}"),
                LabError::Io(m) => write!(f, "io: {m}"),
                #[cfg(not(feature = "api-0-1"))]
                LabError::Network(m) => write!(f, "network: {m}"),
            },
            Error::Other(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {}

impl From<LabError> for Error {
    fn from(e: LabError) -> Self {
        Error::Lab(e)
    }
}
impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Other(format!("i/o error: {e}"))
    }
}
impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Other(format!("json error: {e}"))
    }
}
impl From<String> for Error {
    fn from(e: String) -> Self {
        Error::Other(e)
    }
}
impl From<&str> for Error {
    fn from(e: &str) -> Self {
        Error::Other(e.to_owned())
    }
}

/// Builder for [`PluginInfo`].
pub struct Describe(PluginInfo);

impl Describe {
    pub fn new(name: &str, kind: Kind, description: &str) -> Self {
        Describe(PluginInfo {
            name: name.into(),
            version: "0.1.0".into(),
            kind,
            description: description.into(),
            params: Vec::new(),
        })
    }
    pub fn version(mut self, version: &str) -> Self {
        self.0.version = version.into();
        self
    }
    /// Declare a parameter; `default` is JSON text (`None`: required).
    pub fn param(
        mut self,
        name: &str,
        ty: ParamType,
        default: Option<&str>,
        description: &str,
    ) -> Self {
        self.0.params.push(Param {
            name: name.into(),
            type_: ty,
            default: default.map(Into::into),
            description: description.into(),
        });
        self
    }
    pub fn into_info(self) -> PluginInfo {
        self.0
    }
}

// ---- log ----------------------------------------------------------------

/// Append a message to the job log.
pub fn log(level: Level, message: &str) {
    wit::log::write(level, message)
}
pub fn debug(message: &str) {
    log(Level::Debug, message)
}
pub fn info(message: &str) {
    log(Level::Info, message)
}
pub fn warn(message: &str) {
    log(Level::Warn, message)
}

// ---- progress, metrics ---------------------------------------------------

/// Report progress in percent (0–100).
pub fn progress(percent: f32) -> Result<()> {
    Ok(wit::progress::update(percent, None)?)
}
/// Report progress with a stage text.
pub fn progress_stage(percent: f32, stage: &str) -> Result<()> {
    Ok(wit::progress::update(percent, Some(stage))?)
}
/// Record a metric value, optionally at a step.
pub fn metric(name: &str, value: f64, step: Option<u64>) -> Result<()> {
    Ok(wit::metrics::record_metric(name, value, step)?)
}

// ---- config --------------------------------------------------------------

/// The job's parameters (defaults filled in) as a JSON object.
pub fn config() -> serde_json::Value {
    serde_json::from_str(&wit::config::get()).unwrap_or(serde_json::Value::Null)
}
/// The job's parameters deserialised into `T`.
pub fn config_as<T: serde::de::DeserializeOwned>() -> Result<T> {
    Ok(serde_json::from_str(&wit::config::get())?)
}
/// Job id, experiment and work directory.
pub fn job_info() -> wit::config::JobInfo {
    wit::config::info()
}
/// The job's private read-write scratch directory.
pub fn work_dir() -> PathBuf {
    PathBuf::from(wit::config::info().work_dir)
}

fn guest_path(path: &Path) -> Result<&str> {
    path.to_str()
        .ok_or_else(|| Error::msg(format!("path is not UTF-8: {}", path.display())))
}

// ---- artifacts, checkpoints ----------------------------------------------

/// Store a file or directory as an artifact.
pub fn save_artifact(path: impl AsRef<Path>, name: Option<&str>) -> Result<Stored> {
    Ok(wit::artifacts::save(guest_path(path.as_ref())?, name)?)
}
pub fn artifacts() -> Vec<Stored> {
    wit::artifacts::list()
}
/// Store a file or directory as a checkpoint.
pub fn save_checkpoint(path: impl AsRef<Path>, name: &str) -> Result<Stored> {
    Ok(wit::checkpoints::save(guest_path(path.as_ref())?, name)?)
}
pub fn checkpoints() -> Vec<Stored> {
    wit::checkpoints::list()
}
/// The checkpoint to resume from, if the job was started with `--resume`.
pub fn resume_from() -> Option<ResumePoint> {
    wit::checkpoints::resume_from()
}

// ---- models, datasets ----------------------------------------------------

/// Model metadata for [`save_model`].
#[derive(Default)]
pub struct ModelDesc<'a> {
    pub architecture: Option<&'a str>,
    pub pipeline_tag: Option<&'a str>,
    pub parent_model: Option<&'a str>,
    pub metadata: Option<serde_json::Value>,
}

/// Store a file or directory in the workspace model registry.
pub fn save_model(path: impl AsRef<Path>, name: &str, desc: ModelDesc<'_>) -> Result<ModelInfo> {
    let meta = ModelMeta {
        architecture: desc.architecture.map(Into::into),
        pipeline_tag: desc.pipeline_tag.map(Into::into),
        parent_model: desc.parent_model.map(Into::into),
        metadata: desc
            .metadata
            .unwrap_or_else(|| serde_json::json!({}))
            .to_string(),
    };
    Ok(wit::models::save(guest_path(path.as_ref())?, name, &meta)?)
}
pub fn models() -> Vec<ModelInfo> {
    wit::models::list()
}
/// The read-only path of a model granted to this job.
pub fn open_model(id_or_name: &str) -> Result<PathBuf> {
    Ok(PathBuf::from(wit::models::open(id_or_name)?))
}

/// Store rows (anything serialisable to JSON objects) as a dataset.
pub fn save_dataset<T: serde::Serialize>(
    name: &str,
    rows: &[T],
    description: Option<&str>,
    metadata: serde_json::Value,
) -> Result<DatasetInfo> {
    let rows = rows
        .iter()
        .map(serde_json::to_string)
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(wit::datasets::save_rows(
        name,
        &rows,
        description,
        &metadata.to_string(),
    )?)
}
/// Store a file or directory as a dataset.
pub fn save_dataset_file(
    path: impl AsRef<Path>,
    name: &str,
    description: Option<&str>,
    metadata: serde_json::Value,
) -> Result<DatasetInfo> {
    Ok(wit::datasets::save_file(
        guest_path(path.as_ref())?,
        name,
        description,
        &metadata.to_string(),
    )?)
}
pub fn datasets() -> Vec<DatasetInfo> {
    wit::datasets::list()
}
/// The read-only path of a dataset granted to this job.
pub fn open_dataset(id_or_name: &str) -> Result<PathBuf> {
    Ok(PathBuf::from(wit::datasets::open(id_or_name)?))
}

// ---- evals ---------------------------------------------------------------

/// Store an eval table.
pub fn save_eval(name: &str, rows: &[EvalRow], format: TableFormat) -> Result<EvalSummary> {
    Ok(wit::evals::save(name, rows, format)?)
}

// ---- job end -------------------------------------------------------------

/// End the job successfully.
pub fn finish(message: &str, scores: &[(&str, f64)]) -> Result<()> {
    let scores: Vec<(String, f64)> = scores.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    Ok(wit::job::finish(message, &scores)?)
}
/// End the job as failed.
pub fn fail(message: &str) -> Result<()> {
    Ok(wit::job::fail(message)?)
}
/// True once the job was asked to stop.
pub fn should_stop() -> bool {
    wit::job::should_stop()
}
