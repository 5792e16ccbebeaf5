//! API tokens for `labhost serve`: created by `labhost token create`,
//! stored hashed in `<workspace>/tokens.json` (mode 600), revocable, listed
//! without their secret.
//!
//! A token reads `lht_<id>_<secret>`: the id finds the entry, the secret
//! (32 random bytes from the OS) is checked against its stored blake3 hash
//! in constant time (`blake3::Hash` compares so). The secret is shown once,
//! at creation.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The file, in the workspace root.
pub const TOKENS_FILE: &str = "tokens.json";

/// What a token may do; each scope includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Read jobs, runs, logs, metrics, files, registries.
    Read,
    /// Also launch, cancel and rerun jobs and pipelines, upload plugins and data.
    Run,
    /// Also manage tokens, delete, and grant host directories.
    Admin,
}

impl std::str::FromStr for Scope {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Scope> {
        Ok(match s {
            "read" => Scope::Read,
            "run" => Scope::Run,
            "admin" => Scope::Admin,
            _ => bail!(
                "unknown scope `{}` (read, run, admin)",
                crate::text::for_terminal_line(s)
            ),
        })
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Scope::Read => "read",
            Scope::Run => "run",
            Scope::Admin => "admin",
        })
    }
}

/// A token as stored and listed (never with its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    pub id: String,
    pub name: String,
    pub scope: Scope,
    pub created_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<DateTime<Utc>>,
    /// blake3 of the secret, hex.
    hash: String,
}

impl TokenInfo {
    pub fn is_active(&self) -> bool {
        self.revoked_at.is_none()
    }
}

/// The workspace's token store.
#[derive(Debug, Clone)]
pub struct Tokens {
    path: PathBuf,
}

impl Tokens {
    pub fn new(workspace_root: &Path) -> Tokens {
        Tokens {
            path: workspace_root.join(TOKENS_FILE),
        }
    }

    fn read(&self) -> anyhow::Result<Vec<TokenInfo>> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is not a token list", self.path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", self.path.display())),
        }
    }

    fn write(&self, tokens: &[TokenInfo]) -> anyhow::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let bytes = serde_json::to_vec_pretty(tokens)?;
        let tmp = self.path.with_extension("json.tmp");
        {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp)
                .with_context(|| format!("cannot write {}", tmp.display()))?;
            f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
            f.write_all(&bytes)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &self.path)
            .with_context(|| format!("cannot write {}", self.path.display()))?;
        Ok(())
    }

    /// Create a token; returns its record and the token text (shown once).
    pub fn create(&self, name: &str, scope: Scope) -> anyhow::Result<(TokenInfo, String)> {
        crate::names::check_text("token name", name, 128).map_err(anyhow::Error::msg)?;
        let mut all = self.read()?;
        let mut id_bytes = [0u8; 4];
        let mut secret_bytes = [0u8; 32];
        getrandom::fill(&mut id_bytes)
            .map_err(|e| anyhow::anyhow!("no randomness from the OS: {e}"))?;
        getrandom::fill(&mut secret_bytes)
            .map_err(|e| anyhow::anyhow!("no randomness from the OS: {e}"))?;
        let id = hex(&id_bytes);
        let secret = hex(&secret_bytes);
        let info = TokenInfo {
            id: id.clone(),
            name: name.to_owned(),
            scope,
            created_at: Utc::now(),
            revoked_at: None,
            hash: blake3::hash(secret.as_bytes()).to_hex().to_string(),
        };
        all.push(info.clone());
        self.write(&all)?;
        Ok((info, format!("lht_{id}_{secret}")))
    }

    /// Every token, newest last, without secrets.
    pub fn list(&self) -> anyhow::Result<Vec<TokenInfo>> {
        self.read()
    }

    /// True if at least one token is active.
    pub fn any_active(&self) -> anyhow::Result<bool> {
        Ok(self.read()?.iter().any(TokenInfo::is_active))
    }

    /// Revoke the token with this id (already revoked: an error).
    pub fn revoke(&self, id: &str) -> anyhow::Result<TokenInfo> {
        let mut all = self.read()?;
        let Some(t) = all.iter_mut().find(|t| t.id == id) else {
            bail!("no token `{}`", crate::text::for_terminal_line(id));
        };
        if t.revoked_at.is_some() {
            bail!("token {id} is already revoked");
        }
        t.revoked_at = Some(Utc::now());
        let out = t.clone();
        self.write(&all)?;
        Ok(out)
    }

    /// The active token `text` is, if any.
    pub fn verify(&self, text: &str) -> anyhow::Result<Option<TokenInfo>> {
        let Some((id, secret)) = text.strip_prefix("lht_").and_then(|r| r.split_once('_')) else {
            return Ok(None);
        };
        let given = blake3::hash(secret.as_bytes());
        for t in self.read()? {
            if t.id == id && t.is_active() {
                let Ok(stored) = blake3::Hash::from_hex(&t.hash) else {
                    continue;
                };
                // `blake3::Hash` equality is constant-time.
                if stored == given {
                    return Ok(Some(t));
                }
            }
        }
        Ok(None)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn create_verify_revoke() {
        let dir = tempfile::tempdir().unwrap();
        let tokens = Tokens::new(dir.path());
        assert!(!tokens.any_active().unwrap());
        let (info, text) = tokens.create("ci", Scope::Run).unwrap();
        assert!(text.starts_with(&format!("lht_{}_", info.id)));
        assert_eq!(text.len(), 4 + 8 + 1 + 64);
        assert_eq!(tokens.verify(&text).unwrap().unwrap().scope, Scope::Run);
        // The file holds no secret and is the owner's only.
        let file = std::fs::read_to_string(dir.path().join(TOKENS_FILE)).unwrap();
        assert!(!file.contains(text.rsplit('_').next().unwrap()));
        let mode = std::fs::metadata(dir.path().join(TOKENS_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // Wrong secret, wrong id, garbage.
        let mut wrong = text.clone();
        wrong.pop();
        wrong.push(if text.ends_with('0') { '1' } else { '0' });
        assert!(tokens.verify(&wrong).unwrap().is_none());
        assert!(tokens
            .verify(&text.replacen(&info.id, "00000000", 1))
            .unwrap()
            .is_none());
        assert!(tokens.verify("Bearer x").unwrap().is_none());
        tokens.revoke(&info.id).unwrap();
        assert!(tokens.verify(&text).unwrap().is_none());
        assert!(tokens.revoke(&info.id).is_err());
        assert!(Scope::Admin > Scope::Run && Scope::Run > Scope::Read);
    }
}
