//! The pipeline file (TOML).
//!
//! ```toml
//! name = "sentiment"
//! workers = 2                          # optional (default: workspace setting)
//!
//! [defaults]                           # optional, for every stage
//! limits = { timeout = "10m" }
//! retries = 1
//!
//! [stages.generate]
//! plugin = "../guests/dist/rust/datagen.wasm"   # relative to this file, or a name in paths.plugins
//! config = { rows = 400 }
//!
//! [stages.train]
//! plugin = "trainer"
//! datasets = [{ stage = "generate" }]          # what `generate` saved, granted here
//! matrix = { lr = [0.1, 0.5, 1.0] }            # fan out: one job per value
//! limits = { timeout = "5m" }
//! retries = 2
//! backoff = "1s"
//! retry-on = ["crash", "timeout", "interrupted"]
//!
//! [stages.evaluate]
//! plugin = "evaluator"
//! models = [{ stage = "train" }]               # one evaluator per trainer
//! datasets = [{ stage = "generate" }]
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::names::check_name;
use crate::sandbox::LimitOverrides;
use crate::store::FailureKind;

/// A parsed and checked pipeline file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineFile {
    pub name: String,
    /// Experiment the jobs go to (default: the pipeline's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experiment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workers: Option<usize>,
    #[serde(default)]
    pub defaults: StageOptions,
    /// In file order.
    pub stages: toml::Table,
}

/// Options a stage takes, with defaults from `[defaults]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct StageOptions {
    #[serde(default)]
    pub limits: LimitOverrides,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    /// First wait before a retry; doubled at each further retry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<String>,
    /// Failures worth a retry (default: crash, timeout, interrupted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_on: Option<Vec<FailureKind>>,
}

/// `[stages.NAME]` (unknown keys are refused by [`PipelineFile::stages`]
/// with the list of known ones).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct StageSpec {
    /// A .wasm path (relative to the pipeline file) or a plugin name found
    /// in the workspace's `paths.plugins`.
    pub plugin: String,
    #[serde(default)]
    pub config: toml::Table,
    /// Parameter → values; the stage runs once per combination.
    #[serde(default)]
    pub matrix: toml::Table,
    #[serde(default)]
    pub datasets: Vec<InputRef>,
    #[serde(default)]
    pub models: Vec<InputRef>,
    /// Stages that must complete first (without taking their outputs).
    #[serde(default)]
    pub needs: Vec<String>,
    /// Host directories, `HOST[::GUEST][:ro|:rw]` (HOST relative to the file).
    #[serde(default)]
    pub dirs: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// HTTP endpoints the stage's jobs may reach: URLs, or `{ url, headers }`.
    #[serde(default, rename = "allow-http")]
    pub allow_http: Vec<crate::egress::HttpGrantSpec>,
    /// Secrets the stage's jobs may read (`secrets.get`).
    #[serde(default)]
    pub secrets: Vec<String>,
    #[serde(default)]
    pub limits: Option<LimitOverrides>,
    #[serde(default)]
    pub retries: Option<u32>,
    #[serde(default)]
    pub backoff: Option<String>,
    #[serde(default)]
    pub retry_on: Option<Vec<FailureKind>>,
}

/// A dataset or model a stage is granted: a registry id or name, or what
/// an upstream stage saved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum InputRef {
    Registry(String),
    Stage(StageInput),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageInput {
    pub stage: String,
    /// Only the entry saved under this name (default: all it saved).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Take the outputs of every instance of a fanned-out stage at once
    /// instead of fanning out with it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub all: bool,
}

/// Retry policy of a stage, resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetryPolicy {
    pub retries: u32,
    #[serde(with = "secs")]
    pub backoff: Duration,
    pub retry_on: Vec<FailureKind>,
}

pub const DEFAULT_RETRY_ON: [FailureKind; 3] = [
    FailureKind::Crash,
    FailureKind::Timeout,
    FailureKind::Interrupted,
];

/// A stage with its options resolved.
#[derive(Debug, Clone)]
pub struct Stage {
    pub name: String,
    pub spec: StageSpec,
    pub limits: LimitOverrides,
    pub retry: RetryPolicy,
    pub config: Map<String, Value>,
    /// Parameter → values, in file order.
    pub matrix: Vec<(String, Vec<Value>)>,
    pub dirs: Vec<crate::DirGrant>,
    pub http: Vec<crate::HttpGrant>,
}

pub(crate) mod secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Duration::try_from_secs_f64(f64::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

const STAGE_KEYS: &[&str] = &[
    "plugin",
    "config",
    "matrix",
    "datasets",
    "models",
    "needs",
    "dirs",
    "env",
    "allow-http",
    "secrets",
    "limits",
    "retries",
    "backoff",
    "retry-on",
];

fn toml_to_json(v: &toml::Value) -> anyhow::Result<Value> {
    serde_json::to_value(v).context("cannot convert a TOML value to JSON")
}

impl PipelineFile {
    pub fn parse(text: &str) -> anyhow::Result<PipelineFile> {
        let file: PipelineFile = toml::from_str(text)
            .map_err(|e| anyhow::anyhow!("{}", crate::settings::one_line(&e)))?;
        check_name("pipeline", &file.name).map_err(anyhow::Error::msg)?;
        if let Some(e) = &file.experiment {
            crate::store::check_experiment(e)?;
        }
        if file.workers == Some(0) {
            bail!("workers must be at least 1");
        }
        if file.stages.is_empty() {
            bail!("the pipeline has no stages (add a [stages.NAME] table)");
        }
        Ok(file)
    }

    pub fn read(path: &Path) -> anyhow::Result<(PipelineFile, String)> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read pipeline {}", path.display()))?;
        let file = Self::parse(&text).with_context(|| format!("{}", path.display()))?;
        Ok((file, text))
    }

    pub fn experiment(&self) -> &str {
        self.experiment.as_deref().unwrap_or(&self.name)
    }

    /// The stages with defaults applied, in file order. `base_dir` is the
    /// pipeline file's directory (relative paths are resolved from it).
    pub fn stages(&self, base_dir: &Path) -> anyhow::Result<Vec<Stage>> {
        let mut out = Vec::new();
        for (name, value) in &self.stages {
            check_name("stage", name).map_err(anyhow::Error::msg)?;
            let ctx = || format!("stage `{name}`");
            let table = value
                .as_table()
                .with_context(|| format!("stage `{name}` must be a table ([stages.{name}])"))?;
            if let Some(k) = table.keys().find(|k| !STAGE_KEYS.contains(&k.as_str())) {
                bail!(
                    "stage `{name}`: unknown key `{k}` (expected one of {})",
                    STAGE_KEYS.join(", ")
                );
            }
            let spec: StageSpec = value.clone().try_into().map_err(|e: toml::de::Error| {
                anyhow::anyhow!("stage `{name}`: {}", e.message().trim())
            })?;
            if spec.plugin.trim().is_empty() {
                bail!("stage `{name}`: `plugin` is empty");
            }
            for (k, v) in &spec.env {
                crate::names::check_env(k, v)
                    .map_err(|e| anyhow::anyhow!("stage `{name}`: {e}"))?;
            }
            let d = &self.defaults;
            let o = &spec;
            let limits = match &o.limits {
                Some(l) => d.limits.then(l),
                None => d.limits.clone(),
            };
            let backoff = match o.backoff.as_ref().or(d.backoff.as_ref()) {
                Some(b) => crate::units::parse_duration(b).with_context(ctx)?,
                None => Duration::from_secs(1),
            };
            let retry = RetryPolicy {
                retries: o.retries.or(d.retries).unwrap_or(0),
                backoff,
                retry_on: o
                    .retry_on
                    .clone()
                    .or(d.retry_on.clone())
                    .unwrap_or(DEFAULT_RETRY_ON.to_vec()),
            };
            let mut config = Map::new();
            for (k, v) in &spec.config {
                config.insert(k.clone(), toml_to_json(v)?);
            }
            let mut matrix = Vec::new();
            for (k, v) in &spec.matrix {
                let values = v.as_array().with_context(|| {
                    format!("stage `{name}`: matrix.{k} must be a list of values")
                })?;
                if values.is_empty() {
                    bail!("stage `{name}`: matrix.{k} is empty");
                }
                if config.contains_key(k) {
                    bail!("stage `{name}`: `{k}` is both in config and in matrix");
                }
                let values = values
                    .iter()
                    .map(toml_to_json)
                    .collect::<anyhow::Result<_>>()?;
                matrix.push((k.clone(), values));
            }
            let mut dirs = Vec::new();
            for d in &spec.dirs {
                let mut g: crate::DirGrant = d.parse().with_context(ctx)?;
                if g.host.is_relative() {
                    g.host = base_dir.join(&g.host);
                }
                dirs.push(g);
            }
            let http = spec
                .allow_http
                .iter()
                .map(|g| g.to_grant())
                .collect::<anyhow::Result<Vec<_>>>()
                .with_context(ctx)?;
            for n in &spec.secrets {
                crate::secrets::check_secret_name(n)
                    .map_err(|e| anyhow::anyhow!("stage `{name}`: {e}"))?;
            }
            for r in spec.datasets.iter().chain(&spec.models) {
                if let InputRef::Stage(s) = r {
                    if !self.stages.contains_key(&s.stage) {
                        bail!("stage `{name}` takes outputs of `{}`, which is not a stage of this pipeline", s.stage);
                    }
                    if s.stage == *name {
                        bail!("stage `{name}` takes its own outputs");
                    }
                }
            }
            for n in &spec.needs {
                if !self.stages.contains_key(n) || n == name {
                    bail!(
                        "stage `{name}` needs `{n}`, which is not another stage of this pipeline"
                    );
                }
            }
            out.push(Stage {
                name: name.clone(),
                limits,
                retry,
                config,
                matrix,
                dirs,
                http,
                spec,
            });
        }
        Ok(out)
    }

    /// Where a stage's plugin is: a path relative to the file, else a name
    /// in the plugins directory.
    pub fn plugin_path(
        plugin: &str,
        base_dir: &Path,
        settings: &crate::settings::Effective,
    ) -> PathBuf {
        let p = Path::new(plugin);
        let rel = base_dir.join(p);
        if p.is_absolute() || rel.exists() || p.components().count() != 1 {
            return if p.is_absolute() { p.to_owned() } else { rel };
        }
        let found = settings.resolve_plugin(p);
        if found != p {
            found
        } else {
            rel
        }
    }
}

impl StageInput {
    pub fn fans_out(&self) -> bool {
        !self.all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stages(text: &str) -> anyhow::Result<Vec<Stage>> {
        PipelineFile::parse(text)?.stages(Path::new("/p"))
    }

    #[test]
    fn parses_a_fan_out() {
        let s = stages(
            r#"
name = "demo"
[defaults]
retries = 1
limits = { timeout = "10m" }
[stages.gen]
plugin = "gen.wasm"
config = { rows = 10 }
[stages.train]
plugin = "train"
datasets = [{ stage = "gen" }, "imdb"]
matrix = { lr = [0.1, 0.5] }
limits = { memory = "64MiB" }
retry-on = ["plugin-error"]
"#,
        )
        .unwrap();
        assert_eq!(s[0].name, "gen");
        assert_eq!(s[0].config["rows"], 10);
        assert_eq!(s[1].matrix[0].1.len(), 2);
        assert_eq!(s[1].limits.timeout, Some(Duration::from_secs(600)));
        assert_eq!(s[1].limits.memory, Some(64 << 20));
        assert_eq!(s[1].retry.retries, 1);
        assert_eq!(s[1].retry.retry_on, vec![FailureKind::PluginError]);
        assert_eq!(s[1].spec.datasets[1], InputRef::Registry("imdb".into()));
    }

    #[test]
    fn refuses_bad_files() {
        for (text, want) in [
            ("name = \"x\"\n", "missing field `stages`"),
            ("name = \"x\"\n[stages]\n", "has no stages"),
            ("name = \"x\"\n[stages.a]\nplugin = \"a\"\nretrys = 2\n", "unknown key `retrys`"),
            ("name = \"x\"\n[stages.a]\nplugin = \"a\"\nneeds = [\"b\"]\n", "needs `b`"),
            ("name = \"x\"\n[stages.a]\nplugin = \"a\"\nmodels = [{ stage = \"zz\" }]\n", "`zz`, which is not a stage"),
            ("name = \"x\"\n[stages.a]\nplugin = \"a\"\nmatrix = { lr = [] }\n", "matrix.lr is empty"),
            ("name = \"x\"\n[stages.a]\nplugin = \"a\"\nbackoff = \"soon\"\n", "invalid duration `soon`"),
            ("name = \"x\"\n[stages.a]\nplugin = \"a\"\nretry-on = [\"flaky\"]\n", "unknown variant `flaky`"),
            ("name = \"x\"\nworkers = 0\n[stages.a]\nplugin = \"a\"\n", "workers must be at least 1"),
            ("name = \"x\"\n[stages.a]\nplugin = \"a\"\nlimits = { timeout = \"1m\", speed = 1 }\n", "unknown field `speed`"),
            ("name = \"x\"\n[stages.a]\nplugin = \"a\"\nenv = 3\n", "invalid type: integer `3`, expected a map"),
        ] {
            let err = format!("{:#}", stages(text).unwrap_err());
            assert!(err.contains(want), "{text:?}: {err}");
        }
    }

    #[test]
    fn checks_stage_env() {
        let env = |table: &str| {
            stages(&format!(
                "name = \"x\"\n[stages.a]\nplugin = \"a\"\nenv = {table}\n"
            ))
        };
        let s = env(r#"{ K = "v", PATH = "/bin:/usr/bin", EMPTY = "", "with space" = "a=b" }"#)
            .unwrap();
        assert_eq!(s[0].spec.env["PATH"], "/bin:/usr/bin");
        assert_eq!(s[0].spec.env["EMPTY"], "");
        assert_eq!(s[0].spec.env["with space"], "a=b");
        for (table, want) in [
            (
                r#"{ K = "a\u0000b" }"#,
                "stage `a`: invalid value of environment variable `K`: must not contain NUL",
            ),
            (
                r#"{ "K\u0000" = "v" }"#,
                "stage `a`: invalid environment variable name `K\\x00`: must not contain NUL",
            ),
            (
                r#"{ "A=B" = "v" }"#,
                "stage `a`: invalid environment variable name `A=B`: must not contain `=`",
            ),
            (
                r#"{ "" = "v" }"#,
                "stage `a`: invalid environment variable: the name is empty",
            ),
        ] {
            let err = env(table).unwrap_err();
            assert_eq!(format!("{err:#}"), want, "{table}");
        }
    }
}
