//! Workspace settings: `<workspace>/labhost.toml`, read by every command.
//!
//! ```toml
//! workers = 2                 # jobs a pipeline runs at once
//!
//! [limits]                    # defaults for every job (see `LimitOverrides`)
//! timeout = "30m"
//! memory = "2GiB"
//!
//! [paths]
//! plugins = "plugins"         # where `labhost run NAME` and pipeline stages find NAME.wasm
//!
//! [grants]                    # granted to every job (`run` and pipeline stages), besides their own
//! allow-http = [{ url = "https://api.openai.com/v1", headers = ["Authorization: Bearer {secret:OPENAI_API_KEY}"] }]
//! secrets = []
//!
//! [profiles.quick]            # `--profile quick`: overrides the values above
//! limits = { timeout = "1m" }
//!
//! [executor.slurm]            # `--executor slurm`: sbatch options (all optional)
//! partition = "gpu"
//! account = "lab"
//! sbatch-args = ["--constraint=a100"]
//!
//! [[webhooks]]                # `labhost serve` POSTs job and run events here
//! url = "https://example.com/labhost-events"
//! secret = "HOOK_SECRET"      # the NAME of a secret (whsec_<base64>), see `secrets`
//! events = ["job.completed", "job.failed"]   # default: every event
//! ```
//!
//! Precedence, lowest first: built-in defaults, the file's top level, the
//! chosen profile, then a pipeline's `[defaults]`, its stage, and flags.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

use crate::sandbox::{LimitOverrides, Limits};
use crate::store::durable::write_atomic;

pub const FILE_NAME: &str = "labhost.toml";

/// The contents of `labhost.toml`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workers: Option<usize>,
    #[serde(default)]
    pub limits: LimitOverrides,
    #[serde(default)]
    pub paths: Paths,
    #[serde(default, skip_serializing_if = "SettingsGrants::is_empty")]
    pub grants: SettingsGrants,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub profiles: BTreeMap<String, Profile>,
    /// Where `labhost serve` sends lifecycle events (top level only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub webhooks: Vec<Webhook>,
    /// Executors other than this machine (top level only).
    #[serde(default, skip_serializing_if = "Executors::is_empty")]
    pub executor: Executors,
}

/// `[executor.*]`: how jobs are placed on a cluster (`--executor NAME`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Executors {
    /// `[executor.slurm]`: `sbatch` options for `--executor slurm`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slurm: Option<crate::slurm::SlurmSettings>,
}

impl Executors {
    pub fn is_empty(&self) -> bool {
        self.slurm.is_none()
    }
}

/// One `[[webhooks]]` entry: a URL that receives lifecycle events
/// ([`crate::lifecycle_events`]), signed the Standard Webhooks way with the secret
/// named `secret` (resolved by [`crate::secrets`] when `labhost serve`
/// starts, never written in this file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    pub url: String,
    /// The name of the secret holding the signing key (`whsec_<base64>`).
    pub secret: String,
    /// Event types sent (default: all of them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<String>>,
    /// Deliveries tried before an event is moved to `outbox/<hook>/dead/`.
    #[serde(
        default,
        rename = "max-attempts",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_attempts: Option<u32>,
    /// How long one delivery may take (`10s`, `500ms`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

impl Webhook {
    pub const DEFAULT_MAX_ATTEMPTS: u32 = 20;
    pub const MAX_MAX_ATTEMPTS: u32 = 100;
    pub const DEFAULT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

    /// The URL, checked: absolute `http` or `https` with a host, no
    /// credentials in it.
    pub fn parsed_url(&self) -> anyhow::Result<url::Url> {
        let shown = crate::text::for_terminal_line(&self.url);
        let u = url::Url::parse(&self.url)
            .map_err(|e| anyhow::anyhow!("invalid url `{shown}`: {e}"))?;
        if !matches!(u.scheme(), "http" | "https") {
            bail!("invalid url `{shown}`: only http and https URLs can receive webhooks");
        }
        if u.host_str().is_none_or(str::is_empty) {
            bail!("invalid url `{shown}`: no host");
        }
        if !u.username().is_empty() || u.password().is_some() {
            bail!("invalid url: credentials in a webhook URL are not allowed (the receiver checks the signature)");
        }
        Ok(u)
    }

    /// The event types sent, checked (every type when `events` is unset).
    pub fn event_types(&self) -> anyhow::Result<Vec<crate::lifecycle_events::EventType>> {
        use crate::lifecycle_events::EventType;
        let Some(names) = &self.events else {
            return Ok(EventType::ALL.to_vec());
        };
        if names.is_empty() {
            bail!("events is empty: leave it out to send every event");
        }
        let mut out = Vec::new();
        for n in names {
            let t = EventType::parse(n).ok_or_else(|| {
                let known: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
                anyhow::anyhow!(
                    "unknown event `{}` (events: {})",
                    crate::text::for_terminal_line(n),
                    known.join(", ")
                )
            })?;
            if !out.contains(&t) {
                out.push(t);
            }
        }
        Ok(out)
    }

    pub fn max_attempts(&self) -> u32 {
        self.max_attempts.unwrap_or(Self::DEFAULT_MAX_ATTEMPTS)
    }

    pub fn timeout(&self) -> anyhow::Result<std::time::Duration> {
        match &self.timeout {
            Some(t) => crate::units::parse_duration(t),
            None => Ok(Self::DEFAULT_TIMEOUT),
        }
    }

    fn check(&self) -> anyhow::Result<()> {
        self.parsed_url()?;
        crate::secrets::check_secret_name(&self.secret).map_err(anyhow::Error::msg)?;
        self.event_types()?;
        let max = self.max_attempts();
        if !(1..=Self::MAX_MAX_ATTEMPTS).contains(&max) {
            bail!(
                "max-attempts must be 1 to {}, not {max}",
                Self::MAX_MAX_ATTEMPTS
            );
        }
        self.timeout()?;
        Ok(())
    }
}

/// Grants every job of the workspace (or profile) gets, added to its own:
/// HTTP endpoints (with injected headers) and secret names.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsGrants {
    #[serde(default, rename = "allow-http", skip_serializing_if = "Vec::is_empty")]
    pub allow_http: Vec<crate::egress::HttpGrantSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
}

impl SettingsGrants {
    pub fn is_empty(&self) -> bool {
        self.allow_http.is_empty() && self.secrets.is_empty()
    }

    fn check(&self) -> anyhow::Result<()> {
        for g in &self.allow_http {
            g.to_grant()?;
        }
        for n in &self.secrets {
            crate::secrets::check_secret_name(n).map_err(anyhow::Error::msg)?;
        }
        Ok(())
    }
}

/// The top level of the file, or one `[profiles.NAME]` table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workers: Option<usize>,
    #[serde(default)]
    pub limits: LimitOverrides,
    #[serde(default)]
    pub paths: Paths,
    #[serde(default, skip_serializing_if = "SettingsGrants::is_empty")]
    pub grants: SettingsGrants,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Paths {
    /// Directory of plugins named without a path (relative to the workspace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugins: Option<PathBuf>,
}

/// Settings in effect for one command: every value filled in.
#[derive(Debug, Clone)]
pub struct Effective {
    pub profile: Option<String>,
    pub workers: usize,
    pub limits: Limits,
    /// The layered overrides behind `limits` (for pipelines to layer on).
    pub limit_overrides: LimitOverrides,
    /// Absolute.
    pub plugins_dir: Option<PathBuf>,
    /// HTTP endpoints granted to every job (the file's, then the profile's).
    pub http: Vec<crate::HttpGrant>,
    /// Secret names granted to every job.
    pub secrets: Vec<String>,
    /// Where each value came from: key → "default" | "workspace" | "profile NAME".
    pub sources: BTreeMap<String, String>,
    /// `[executor.slurm]` (defaults if absent).
    pub slurm: crate::slurm::SlurmSettings,
}

/// Jobs run at once when nothing says otherwise: one per core.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

impl Settings {
    pub fn path(workspace: &Path) -> PathBuf {
        workspace.join(FILE_NAME)
    }

    /// Read `labhost.toml` (missing: all defaults).
    pub fn load(workspace: &Path) -> anyhow::Result<Settings> {
        let path = Self::path(workspace);
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::parse(&text).with_context(|| format!("{}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Settings::default()),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    pub fn parse(text: &str) -> anyhow::Result<Settings> {
        let s: Settings = toml::from_str(text).map_err(|e| anyhow::anyhow!("{}", one_line(&e)))?;
        s.grants.check().context("[grants]")?;
        if let Some(slurm) = &s.executor.slurm {
            slurm.check().context("[executor.slurm]")?;
        }
        for (i, w) in s.webhooks.iter().enumerate() {
            w.check()
                .with_context(|| format!("[[webhooks]] #{}", i + 1))?;
            if let Some(j) = s.webhooks[..i].iter().position(|o| o.url == w.url) {
                bail!(
                    "[[webhooks]] #{}: the same url as [[webhooks]] #{}",
                    i + 1,
                    j + 1
                );
            }
        }
        for (name, p) in &s.profiles {
            p.grants
                .check()
                .with_context(|| format!("[profiles.{name}.grants]"))?;
        }
        let top = std::iter::once(("", s.workers));
        for (name, workers) in top.chain(s.profiles.iter().map(|(n, p)| (n.as_str(), p.workers))) {
            if workers == Some(0) {
                bail!(
                    "workers must be at least 1{}",
                    if name.is_empty() {
                        String::new()
                    } else {
                        format!(" (profile {name})")
                    }
                );
            }
        }
        Ok(s)
    }

    /// The values in effect with `profile` (which must exist if given).
    pub fn effective(&self, workspace: &Path, profile: Option<&str>) -> anyhow::Result<Effective> {
        let chosen = match profile {
            None => None,
            Some(name) => Some((
                name,
                self.profiles.get(name).with_context(|| {
                    let known: Vec<_> = self.profiles.keys().cloned().collect();
                    format!(
                        "no profile `{name}` in {} (profiles: {})",
                        Self::path(workspace).display(),
                        if known.is_empty() {
                            "none".into()
                        } else {
                            known.join(", ")
                        }
                    )
                })?,
            )),
        };
        let mut sources = BTreeMap::new();
        let mut note = |key: &str, base: bool, prof: bool| {
            let src = match (prof, base, chosen) {
                (true, _, Some((n, _))) => format!("profile {n}"),
                (_, true, _) => "workspace".into(),
                _ => "default".into(),
            };
            sources.insert(key.to_owned(), src);
        };
        let prof = chosen.map(|(_, p)| p);
        let workers = prof
            .and_then(|p| p.workers)
            .or(self.workers)
            .unwrap_or_else(default_workers);
        note(
            "workers",
            self.workers.is_some(),
            prof.is_some_and(|p| p.workers.is_some()),
        );
        let overrides = match prof {
            Some(p) => self.limits.then(&p.limits),
            None => self.limits.clone(),
        };
        let base_keys = set_keys(&self.limits);
        let prof_keys = prof.map(|p| set_keys(&p.limits)).unwrap_or_default();
        for key in LimitOverrides::KEYS {
            note(
                &format!("limits.{key}"),
                base_keys.contains(key),
                prof_keys.contains(key),
            );
        }
        let plugins = prof
            .and_then(|p| p.paths.plugins.clone())
            .or(self.paths.plugins.clone());
        note(
            "paths.plugins",
            self.paths.plugins.is_some(),
            prof.is_some_and(|p| p.paths.plugins.is_some()),
        );
        let grants = std::iter::once(&self.grants).chain(prof.map(|p| &p.grants));
        let mut http = Vec::new();
        let mut secrets = Vec::new();
        for g in grants {
            for h in &g.allow_http {
                http.push(h.to_grant()?);
            }
            secrets.extend(g.secrets.iter().cloned());
        }
        for key in ["grants.allow-http", "grants.secrets"] {
            note(
                key,
                !self.grants.is_empty(),
                prof.is_some_and(|p| !p.grants.is_empty()),
            );
        }
        Ok(Effective {
            profile: profile.map(str::to_owned),
            workers,
            limits: overrides.to_limits(),
            limit_overrides: overrides,
            plugins_dir: plugins.map(|p| workspace.join(p)),
            http,
            secrets,
            sources,
            slurm: self.executor.slurm.clone().unwrap_or_default(),
        })
    }
}

/// Keys set in `o`.
fn set_keys(o: &LimitOverrides) -> Vec<&'static str> {
    let v = toml::Table::try_from(o).unwrap_or_default();
    LimitOverrides::KEYS
        .iter()
        .copied()
        .filter(|k| v.contains_key(*k))
        .collect()
}

impl Effective {
    /// Find a plugin: an existing path as is; else a bare name in the
    /// plugins directory (`NAME.wasm` or `NAME`).
    pub fn resolve_plugin(&self, given: &Path) -> PathBuf {
        if given.exists() || given.components().count() != 1 {
            return given.to_owned();
        }
        if let Some(dir) = &self.plugins_dir {
            for candidate in [dir.join(given).with_extension("wasm"), dir.join(given)] {
                if candidate.is_file() {
                    return candidate;
                }
            }
        }
        given.to_owned()
    }
}

/// The keys `labhost config set|unset` accepts.
pub fn known_keys() -> Vec<String> {
    let mut keys = vec!["workers".to_owned(), "paths.plugins".to_owned()];
    keys.extend(LimitOverrides::KEYS.iter().map(|k| format!("limits.{k}")));
    keys
}

/// The file `labhost config init` writes: every key, commented out at its default.
pub fn template() -> String {
    let mut out = String::from(
        "# labhost workspace settings. Precedence, lowest first: built-in defaults,\n\
         # this file's top level, a [profiles.NAME] chosen with --profile,\n\
         # a pipeline's [defaults], its stage, command-line flags.\n\n",
    );
    out.push_str(&format!("# workers = {}\n\n[limits]\n", default_workers()));
    for (k, v) in Limits::default().describe() {
        if v.chars().all(|c| c.is_ascii_digit()) {
            out.push_str(&format!("# {k} = {v}\n"));
        } else {
            out.push_str(&format!("# {k} = \"{v}\"\n"));
        }
    }
    out.push_str("\n[paths]\n# plugins = \"plugins\"\n");
    out.push_str(
        "\n# [executor.slurm]           # --executor slurm (README: Running on a Slurm cluster)\n\
         # partition = \"gpu\"\n# account = \"lab\"\n# qos = \"normal\"\n# cpus-per-task = 1\n\
         # sbatch-args = [\"--constraint=a100\"]\n# labhost = \"/shared/bin/labhost\"\n",
    );
    out.push_str("\n# [profiles.quick]\n# limits = { timeout = \"1m\" }\n");
    out
}

/// Write the template unless the file exists.
pub fn init(workspace: &Path) -> anyhow::Result<PathBuf> {
    let path = Settings::path(workspace);
    if path.exists() {
        bail!("{} already exists", path.display());
    }
    write_atomic(&path, template().as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// A TOML error on one line (they span several, with a caret diagram).
pub(crate) fn one_line(e: &toml::de::Error) -> String {
    let msg = e.message().trim().to_owned();
    match e.span() {
        Some(span) => format!("{msg} (at byte {})", span.start),
        None => msg,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn executor_slurm_settings_parse_check_and_reach_effective() {
        let dir = tempfile::tempdir().unwrap();
        // The template's commented section, uncommented, is valid.
        let section: String = template()
            .lines()
            .skip_while(|l| !l.starts_with("# [executor.slurm]"))
            .take_while(|l| !l.is_empty())
            .map(|l| format!("{}\n", l.trim_start_matches("# ")))
            .collect();
        let s = Settings::parse(&section).unwrap();
        let e = s.effective(dir.path(), None).unwrap();
        assert_eq!(e.slurm.partition.as_deref(), Some("gpu"));
        assert_eq!(e.slurm.sbatch_args, ["--constraint=a100"]);
        assert_eq!(e.slurm.cpus_per_task, Some(1));
        // Absent: defaults.
        let e = Settings::parse("")
            .unwrap()
            .effective(dir.path(), None)
            .unwrap();
        assert_eq!(e.slurm, crate::slurm::SlurmSettings::default());
        let err = |text: &str| format!("{:#}", Settings::parse(text).unwrap_err());
        assert_eq!(
            err("[executor.slurm]\ncpus-per-task = 0\n"),
            "[executor.slurm]: cpus-per-task must be at least 1"
        );
        assert!(
            err("[executor.slurm]\nnodes = 4\n").starts_with("unknown field `nodes`"),
            "{}",
            err("[executor.slurm]\nnodes = 4\n")
        );
    }

    #[test]
    fn layering_and_sources() {
        let dir = tempfile::tempdir().unwrap();
        let s = Settings::parse(
            "workers = 3\n[limits]\ntimeout = \"10m\"\n[profiles.quick]\nlimits = { timeout = \"1m\", memory = \"64MiB\" }\n",
        )
        .unwrap();
        let e = s.effective(dir.path(), None).unwrap();
        assert_eq!((e.workers, e.limits.timeout.as_secs()), (3, 600));
        assert_eq!(e.sources["limits.timeout"], "workspace");
        assert_eq!(e.sources["limits.memory"], "default");
        let q = s.effective(dir.path(), Some("quick")).unwrap();
        assert_eq!(
            (q.limits.timeout.as_secs(), q.limits.memory_bytes),
            (60, 64 << 20)
        );
        assert_eq!(q.sources["limits.timeout"], "profile quick");
        let err = s.effective(dir.path(), Some("slow")).unwrap_err();
        assert!(err.to_string().contains("no profile `slow`"), "{err}");
    }

    #[test]
    fn webhooks_are_checked_when_read() {
        let ok = Settings::parse(
            "[[webhooks]]\nurl = \"http://127.0.0.1:9/h\"\nsecret = \"HOOK\"\nevents = [\"job.failed\", \"run.completed\"]\nmax-attempts = 3\ntimeout = \"2s\"\n",
        )
        .unwrap();
        let w = &ok.webhooks[0];
        use crate::lifecycle_events::EventType;
        assert_eq!(
            w.event_types().unwrap(),
            vec![EventType::JobFailed, EventType::RunCompleted]
        );
        assert_eq!((w.max_attempts(), w.timeout().unwrap().as_secs()), (3, 2));
        let all = Settings::parse("[[webhooks]]\nurl = \"https://x.example/\"\nsecret = \"S\"\n")
            .unwrap();
        assert_eq!(
            all.webhooks[0].event_types().unwrap(),
            EventType::ALL.to_vec()
        );
        let err = |toml: &str| format!("{:#}", Settings::parse(toml).unwrap_err());
        let hook = |rest: &str| format!("[[webhooks]]\nsecret = \"S\"\n{rest}\n");
        assert_eq!(
            err(&hook("url = \"ftp://x/\"")),
            "[[webhooks]] #1: invalid url `ftp://x/`: only http and https URLs can receive webhooks"
        );
        assert_eq!(
            err(&hook("url = \"/relative\"")),
            "[[webhooks]] #1: invalid url `/relative`: relative URL without a base"
        );
        assert_eq!(
            err(&hook("url = \"http://u:p@x/\"")),
            "[[webhooks]] #1: invalid url: credentials in a webhook URL are not allowed (the receiver checks the signature)"
        );
        assert!(err(&hook("url = \"http://x/\"\nevents = [\"job.finish\"]"))
            .starts_with("[[webhooks]] #1: unknown event `job.finish` (events: job.started, "));
        assert_eq!(
            err(&hook("url = \"http://x/\"\nmax-attempts = 0")),
            "[[webhooks]] #1: max-attempts must be 1 to 100, not 0"
        );
        assert_eq!(
            err("[[webhooks]]\nurl = \"http://x/\"\nsecret = \"not a name\"\n"),
            "[[webhooks]] #1: invalid secret name `not a name`: use 1-64 letters, digits and `_`, not starting with a digit"
        );
        assert_eq!(
            err(&format!(
                "{}{}",
                hook("url = \"http://x/\""),
                hook("url = \"http://x/\"")
            )),
            "[[webhooks]] #2: the same url as [[webhooks]] #1"
        );
    }
}
