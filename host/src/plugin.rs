//! A loaded plugin: compiled component, pre-instantiated against the lab
//! linker, and its self-description.

use std::path::{Path, PathBuf};

use serde::Serialize;
use wasmtime::component::Component;

use crate::bindings::predictor::PredictorPre;
use crate::bindings::wit::plugin_types as wit;
use crate::bindings::PluginPre;
use crate::state::HostState;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PluginKind {
    Generator,
    Trainer,
    Evaluator,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamType {
    Text,
    Integer,
    Number,
    Boolean,
    Json,
}

#[derive(Debug, Clone, Serialize)]
pub struct ParamInfo {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: ParamType,
    /// `None`: required.
    pub default: Option<serde_json::Value>,
    pub description: String,
}

/// What a plugin says about itself, checked by the host.
#[derive(Debug, Clone, Serialize)]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    pub kind: PluginKind,
    pub description: String,
    pub params: Vec<ParamInfo>,
}

impl PluginKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PluginKind::Generator => "generator",
            PluginKind::Trainer => "trainer",
            PluginKind::Evaluator => "evaluator",
            PluginKind::Other => "other",
        }
    }
}

impl ParamType {
    pub fn as_str(self) -> &'static str {
        match self {
            ParamType::Text => "text",
            ParamType::Integer => "integer",
            ParamType::Number => "number",
            ParamType::Boolean => "boolean",
            ParamType::Json => "json",
        }
    }
}

/// Bounds on what `describe()` may say: it is recorded with every job
/// (the defaults fill the job's config), so it must stay small.
const MAX_VERSION: usize = 64;
const MAX_DESCRIPTION: usize = 4096;
const MAX_PARAMS: usize = 256;
const MAX_DEFAULT: usize = 256 << 10;
const MAX_DEFAULTS_TOTAL: usize = 1 << 20;

/// A describe() string: at most `max` bytes, no control characters (but
/// newline and tab where `multiline`).
fn bounded(what: &str, s: &str, max: usize, multiline: bool) -> anyhow::Result<()> {
    if s.len() > max {
        anyhow::bail!(
            "describe(): {what} is {} bytes; at most {max} are accepted",
            s.len()
        );
    }
    if let Some(c) = s
        .chars()
        .find(|&c| c.is_control() && !(multiline && (c == '\n' || c == '\t')))
    {
        anyhow::bail!("describe(): {what} contains the control character {c:?}");
    }
    Ok(())
}

impl PluginInfo {
    /// Convert and check the guest's `describe()` answer.
    pub(crate) fn from_wit(info: wit::PluginInfo) -> anyhow::Result<Self> {
        crate::names::check_name("plugin", &info.name).map_err(anyhow::Error::msg)?;
        bounded("version", &info.version, MAX_VERSION, false)?;
        bounded("description", &info.description, MAX_DESCRIPTION, true)?;
        if info.params.len() > MAX_PARAMS {
            anyhow::bail!(
                "describe() declares {} parameters; at most {MAX_PARAMS} are accepted",
                info.params.len()
            );
        }
        let mut defaults_bytes = 0usize;
        let mut params: Vec<ParamInfo> = Vec::new();
        for p in info.params {
            bounded(
                &format!("description of parameter {:?}", p.name),
                &p.description,
                MAX_DESCRIPTION,
                true,
            )?;
            if let Some(d) = &p.default {
                if d.len() > MAX_DEFAULT {
                    anyhow::bail!(
                        "describe(): default of parameter {:?} is {} bytes; at most {MAX_DEFAULT} are accepted",
                        p.name,
                        d.len()
                    );
                }
                defaults_bytes += d.len();
                if defaults_bytes > MAX_DEFAULTS_TOTAL {
                    anyhow::bail!(
                        "describe(): parameter defaults add up to more than {MAX_DEFAULTS_TOTAL} bytes"
                    );
                }
            }
            if p.name.is_empty()
                || p.name.len() > 64
                || !p
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                anyhow::bail!("describe() declares an invalid parameter name {:?}", p.name);
            }
            if params.iter().any(|q| q.name == p.name) {
                anyhow::bail!("describe() declares parameter `{}` twice", p.name);
            }
            let ty = match p.type_ {
                wit::ParamType::Text => ParamType::Text,
                wit::ParamType::Integer => ParamType::Integer,
                wit::ParamType::Number => ParamType::Number,
                wit::ParamType::Boolean => ParamType::Boolean,
                wit::ParamType::Json => ParamType::Json,
            };
            let default = match p.default {
                None => None,
                Some(text) => {
                    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
                        anyhow::anyhow!(
                            "describe(): default of parameter `{}` is not valid JSON: {e}",
                            p.name
                        )
                    })?;
                    crate::config::check_type(&p.name, ty, &v)
                        .map_err(|e| anyhow::anyhow!("describe(): default of parameter {e}"))?;
                    Some(v)
                }
            };
            params.push(ParamInfo {
                name: p.name,
                ty,
                default,
                description: p.description,
            });
        }
        Ok(PluginInfo {
            name: info.name,
            version: info.version,
            kind: match info.kind {
                wit::PluginKind::Generator => PluginKind::Generator,
                wit::PluginKind::Trainer => PluginKind::Trainer,
                wit::PluginKind::Evaluator => PluginKind::Evaluator,
                wit::PluginKind::Other => PluginKind::Other,
            },
            description: info.description,
            params,
        })
    }
}

/// A plugin ready to run jobs (cheap to share: wrap in `Arc`).
pub struct Plugin {
    pub path: PathBuf,
    /// blake3 of the component bytes.
    pub digest: String,
    pub info: PluginInfo,
    /// Interfaces the component imports (e.g. `lab:api/log@0.1.0`).
    pub imports: Vec<String>,
    pub(crate) pre: Entry,
    pub(crate) component: Component,
    /// Whether the compiled code came from the compile cache.
    pub cache: crate::cache::CacheOutcome,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("path", &self.path)
            .field("digest", &self.digest)
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

/// What a component exports: a plugin's `run` (a job) or a predictor's
/// `load`/`predict` (an app, see `crate::app`).
#[derive(Clone)]
pub(crate) enum Entry {
    Plugin(PluginPre<HostState>),
    Predictor(PredictorPre<HostState>),
}

impl Entry {
    pub(crate) fn instance_pre(&self) -> &wasmtime::component::InstancePre<HostState> {
        match self {
            Entry::Plugin(p) => p.instance_pre(),
            Entry::Predictor(p) => p.instance_pre(),
        }
    }
}

impl Plugin {
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// Whether it is a predictor (world `lab:api/predictor`): served as an
    /// app, not run as a job.
    pub fn is_predictor(&self) -> bool {
        matches!(self.pre, Entry::Predictor(_))
    }
    /// The lab interfaces imported, without package and version (`log`, `models`...).
    pub fn lab_imports(&self) -> Vec<String> {
        self.imports
            .iter()
            .filter_map(|i| i.strip_prefix("lab:api/"))
            .map(|i| i.split('@').next().unwrap_or(i).to_owned())
            .collect()
    }
    /// The version of the lab API the plugin was built against (the
    /// version of its `lab:api` imports), if it imports any.
    pub fn api_version(&self) -> Option<String> {
        self.imports
            .iter()
            .filter_map(|i| i.strip_prefix("lab:api/"))
            .find_map(|i| i.split_once('@').map(|(_, v)| v.to_owned()))
    }
    pub fn component(&self) -> &Component {
        &self.component
    }
}
