//! Secrets a job may use: resolved on the host when the job starts, from
//! the host environment or the workspace secrets file, and never written
//! anywhere. The job record holds only their names ([`crate::Grants`]);
//! every text a plugin hands the host for the record, the log or an event
//! passes through [`Secrets::redact`].
//!
//! The secrets file is `<workspace>/secrets.toml`, a table of
//! `NAME = "value"`, and must be readable by its owner only (mode 0600 or
//! stricter): a file others can read is refused, not used.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context};

/// The file name of the workspace secrets file.
pub const SECRETS_FILE: &str = "secrets.toml";

/// What replaces a secret value in logs, records and events.
pub const REDACTED: &str = "[redacted]";

/// Shortest secret value accepted: a shorter one would redact ordinary text.
pub const MIN_SECRET_LEN: usize = 4;

/// Longest secret value, in bytes.
pub const MAX_SECRET_LEN: usize = 16 << 10;

/// Check a secret name: 1–64 bytes of `A-Z`, `a-z`, `0-9`, `_`, not
/// starting with a digit (an environment variable name).
pub fn check_secret_name(name: &str) -> Result<(), String> {
    let shown = crate::text::for_terminal_line(name);
    let valid = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "invalid secret name `{shown}`: use 1-64 letters, digits and `_`, not starting with a digit"
        ))
    }
}

/// Resolved secret values of one job, by name.
#[derive(Default, Clone)]
pub struct Secrets {
    values: BTreeMap<String, String>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Names only, never values.
        f.debug_set().entries(self.values.keys()).finish()
    }
}

impl Secrets {
    /// Resolve `names`: each from the environment variable of that name,
    /// else from the workspace secrets file. A missing, too short or too
    /// long secret is an error naming it (never showing a value).
    pub fn resolve(
        names: impl IntoIterator<Item = impl AsRef<str>>,
        env: impl Fn(&str) -> Option<String>,
        workspace: &Path,
    ) -> anyhow::Result<Secrets> {
        let mut file: Option<BTreeMap<String, String>> = None;
        let mut values = BTreeMap::new();
        for name in names {
            let name = name.as_ref();
            if values.contains_key(name) {
                continue;
            }
            match lookup(name, &env, workspace, &mut file)? {
                Some(value) => values.insert(name.to_owned(), value),
                None => bail!(
                    "secret `{name}` is not set: export {name}=... in the environment that runs labhost, or add it to {}",
                    workspace.join(SECRETS_FILE).display()
                ),
            };
        }
        Ok(Secrets { values })
    }

    /// One secret, or `None` when neither the environment nor the
    /// workspace secrets file sets it (a value that is set but unusable is
    /// still an error).
    pub fn find(
        name: &str,
        env: impl Fn(&str) -> Option<String>,
        workspace: &Path,
    ) -> anyhow::Result<Option<String>> {
        lookup(name, &env, workspace, &mut None)
    }

    /// Secrets from explicit values (for embedders and tests).
    pub fn from_values(values: impl IntoIterator<Item = (String, String)>) -> Secrets {
        Secrets {
            values: values.into_iter().collect(),
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// `text` with every secret value replaced by [`REDACTED`] (longest
    /// values first, so a secret that contains another is redacted whole).
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        if self.values.is_empty() || !self.values.values().any(|v| text.contains(v.as_str())) {
            return Cow::Borrowed(text);
        }
        let mut by_len: Vec<&String> = self.values.values().collect();
        by_len.sort_by_key(|v| std::cmp::Reverse(v.len()));
        let mut out = text.to_owned();
        for v in by_len {
            if out.contains(v.as_str()) {
                out = out.replace(v.as_str(), REDACTED);
            }
        }
        Cow::Owned(out)
    }

    /// Redact every string (keys and values) of a JSON document.
    pub fn redact_json(&self, value: &mut serde_json::Value) {
        use serde_json::Value;
        if self.values.is_empty() {
            return;
        }
        match value {
            Value::String(s) => {
                if let Cow::Owned(r) = self.redact(s) {
                    *s = r;
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|v| self.redact_json(v)),
            Value::Object(m) => {
                let old = std::mem::take(m);
                for (k, mut v) in old {
                    self.redact_json(&mut v);
                    m.insert(self.redact(&k).into_owned(), v);
                }
            }
            _ => {}
        }
    }

    /// Fill `{secret:NAME}` placeholders of a header template.
    pub fn fill(&self, template: &str) -> anyhow::Result<String> {
        let mut out = String::with_capacity(template.len());
        let mut rest = template;
        while let Some(at) = rest.find("{secret:") {
            out.push_str(&rest[..at]);
            let after = &rest[at + "{secret:".len()..];
            let end = after
                .find('}')
                .with_context(|| format!("unclosed `{{secret:` in header `{template}`"))?;
            let name = &after[..end];
            let value = self.get(name).with_context(|| {
                format!("header `{template}` names secret `{name}`, which is not resolved")
            })?;
            out.push_str(value);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

/// Look `name` up (environment first, then the secrets file, read once
/// into `file`) and check its value.
fn lookup(
    name: &str,
    env: &impl Fn(&str) -> Option<String>,
    workspace: &Path,
    file: &mut Option<BTreeMap<String, String>>,
) -> anyhow::Result<Option<String>> {
    check_secret_name(name).map_err(anyhow::Error::msg)?;
    let value = match env(name) {
        Some(v) => v,
        None => {
            if file.is_none() {
                *file = Some(read_secrets_file(&workspace.join(SECRETS_FILE))?);
            }
            match file.as_ref().and_then(|f| f.get(name)) {
                Some(v) => v.clone(),
                None => return Ok(None),
            }
        }
    };
    if value.len() < MIN_SECRET_LEN || value.len() > MAX_SECRET_LEN {
        bail!(
            "secret `{name}` is {} bytes: a secret must have {MIN_SECRET_LEN} to {MAX_SECRET_LEN} bytes",
            value.len()
        );
    }
    if value.chars().any(|c| c.is_control()) {
        bail!("secret `{name}` contains a control character (a newline?)");
    }
    Ok(Some(value))
}

/// Every secret a job with these grants needs resolved: the ones granted
/// to the plugin and the ones its HTTP grants' header templates name.
pub fn needed<'a>(
    granted: impl IntoIterator<Item = &'a String>,
    http: impl IntoIterator<Item = &'a crate::HttpGrant>,
) -> Vec<&'a str> {
    let mut names: Vec<&str> = granted.into_iter().map(String::as_str).collect();
    for g in http {
        for (_, v) in &g.headers {
            names.extend(placeholders(v));
        }
    }
    names
}

/// The secret names a header template refers to (`{secret:NAME}`).
pub fn placeholders(template: &str) -> Vec<&str> {
    let mut names = Vec::new();
    let mut rest = template;
    while let Some(at) = rest.find("{secret:") {
        let after = &rest[at + "{secret:".len()..];
        match after.find('}') {
            Some(end) => {
                names.push(&after[..end]);
                rest = &after[end + 1..];
            }
            None => break,
        }
    }
    names
}

/// Read the secrets file, refusing one that others may read. A missing
/// file is empty.
fn read_secrets_file(path: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    use std::os::unix::fs::MetadataExt;
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => bail!("cannot read {}: {e}", path.display()),
    };
    if meta.mode() & 0o077 != 0 {
        bail!(
            "{} is readable by others (mode {:o}): run `chmod 600 {}`",
            path.display(),
            meta.mode() & 0o777,
            path.display()
        );
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    // A parse error could quote a value: say only where it is.
    let table: toml::Table = toml::from_str(&text).map_err(|e| {
        let at = e
            .span()
            .map(|s| format!(" at byte {}", s.start))
            .unwrap_or_default();
        anyhow::anyhow!("{} is not valid TOML{at}", path.display())
    })?;
    let mut out = BTreeMap::new();
    for (k, v) in table {
        match v {
            toml::Value::String(s) => {
                out.insert(k, s);
            }
            _ => bail!("{}: `{k}` must be a string", path.display()),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn secrets() -> Secrets {
        Secrets::from_values([
            ("A".into(), "s3cr3t".into()),
            ("B".into(), "s3cr3t-longer".into()),
        ])
    }

    #[test]
    fn redacts_every_occurrence_longest_first() {
        let s = secrets();
        assert_eq!(
            s.redact("key=s3cr3t-longer and s3cr3t, s3cr3t"),
            "key=[redacted] and [redacted], [redacted]"
        );
        assert!(matches!(
            s.redact("nothing here"),
            Cow::Borrowed("nothing here")
        ));
    }

    #[test]
    fn redacts_json_keys_and_values() {
        let s = secrets();
        let mut v = serde_json::json!({"k": "x s3cr3t", "s3cr3t": [1, "s3cr3t"], "n": 3});
        s.redact_json(&mut v);
        assert_eq!(
            v,
            serde_json::json!({"k": "x [redacted]", "[redacted]": [1, "[redacted]"], "n": 3})
        );
    }

    #[test]
    fn fills_placeholders() {
        let s = secrets();
        assert_eq!(s.fill("Bearer {secret:A}").unwrap(), "Bearer s3cr3t");
        assert_eq!(s.fill("plain").unwrap(), "plain");
        assert!(s
            .fill("Bearer {secret:C}")
            .unwrap_err()
            .to_string()
            .contains("`C`"));
        assert!(s.fill("Bearer {secret:A").is_err());
        assert_eq!(placeholders("{secret:A} x {secret:B}"), vec!["A", "B"]);
    }

    #[test]
    fn resolves_from_env_then_file_and_refuses_an_open_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(SECRETS_FILE);
        std::fs::write(&file, "FROM_FILE = \"file-value\"\nBOTH = \"file\"\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let env = |n: &str| (n == "BOTH").then(|| "env-value".to_string());
        let s = Secrets::resolve(["FROM_FILE", "BOTH"], env, dir.path()).unwrap();
        assert_eq!(s.get("FROM_FILE"), Some("file-value"));
        assert_eq!(s.get("BOTH"), Some("env-value"));
        assert_eq!(format!("{s:?}"), r#"{"BOTH", "FROM_FILE"}"#);

        let err = Secrets::resolve(["MISSING"], env, dir.path())
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("secret `MISSING` is not set: export MISSING=..."),
            "{err}"
        );

        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = Secrets::resolve(["FROM_FILE"], env, dir.path())
            .unwrap_err()
            .to_string();
        assert!(
            err.ends_with(&format!(
                "is readable by others (mode 644): run `chmod 600 {}`",
                file.display()
            )),
            "{err}"
        );

        let short = |_: &str| Some("abc".to_string());
        let err = Secrets::resolve(["X"], short, dir.path())
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "secret `X` is 3 bytes: a secret must have 4 to 16384 bytes"
        );
        assert!(Secrets::resolve(["1X"], env, dir.path()).is_err());
    }
}
