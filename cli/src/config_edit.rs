//! `labhost config set|unset`: edit one key of the workspace's
//! `labhost.toml` with toml_edit, keeping the user's comments and layout.
//! (The library reads settings; editing them is the CLI's business.)

use std::path::Path;

use anyhow::{bail, Context};
use labhost::settings::{known_keys, Settings};
use labhost::store::durable::write_atomic;

/// Set (`Some`) or reset (`None`) one key, in the top level or a profile,
/// keeping the rest of the file (comments too). The new file is validated
/// before it replaces the old one.
pub fn set(
    workspace: &Path,
    profile: Option<&str>,
    key: &str,
    value: Option<&str>,
) -> anyhow::Result<()> {
    if !known_keys().iter().any(|k| k == key) {
        bail!(
            "unknown setting `{key}` (known: {})",
            known_keys().join(", ")
        );
    }
    if let Some(p) = profile {
        labhost::names::check_name("profile", p).map_err(anyhow::Error::msg)?;
    }
    let path = Settings::path(workspace);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .with_context(|| format!("{} is not valid TOML", path.display()))?;
    let mut table = doc.as_table_mut();
    if let Some(p) = profile {
        table = table
            .entry("profiles")
            .or_insert_with(implicit_table)
            .as_table_mut()
            .context("`profiles` is not a table")?
            .entry(p)
            .or_insert_with(|| toml_edit::Item::Table(toml_edit::Table::new()))
            .as_table_mut()
            .with_context(|| format!("`profiles.{p}` is not a table"))?;
    }
    let (section, leaf) = match key.split_once('.') {
        Some((s, l)) => (Some(s), l),
        None => (None, key),
    };
    if let Some(s) = section {
        table = table
            .entry(s)
            .or_insert_with(|| toml_edit::Item::Table(toml_edit::Table::new()))
            .as_table_mut()
            .with_context(|| format!("`{s}` is not a table"))?;
    }
    match value {
        None => {
            table.remove(leaf);
        }
        Some(v) => {
            let item = match key {
                "workers" | "limits.max-files" | "limits.max-handles" => {
                    let n: i64 = v.parse().ok().filter(|n| *n >= 1).with_context(|| {
                        format!("invalid {key} `{v}`: expected a positive integer")
                    })?;
                    toml_edit::value(n)
                }
                _ => toml_edit::value(v),
            };
            table.insert(leaf, item);
        }
    }
    let new = doc.to_string();
    Settings::parse(&new).with_context(|| format!("invalid {key} `{}`", value.unwrap_or("")))?;
    write_atomic(&path, new.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

fn implicit_table() -> toml_edit::Item {
    let mut t = toml_edit::Table::new();
    t.set_implicit(true);
    toml_edit::Item::Table(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use labhost::settings::init;

    #[test]
    fn set_keeps_comments_and_validates() {
        let dir = tempfile::tempdir().unwrap();
        init(dir.path()).unwrap();
        set(dir.path(), None, "limits.timeout", Some("5m")).unwrap();
        set(dir.path(), Some("big"), "limits.memory", Some("4GiB")).unwrap();
        set(dir.path(), None, "workers", Some("4")).unwrap();
        let text = std::fs::read_to_string(Settings::path(dir.path())).unwrap();
        assert!(text.contains("# labhost workspace settings"), "{text}");
        assert!(text.contains("# max-files = 10000"), "{text}");
        let s = Settings::load(dir.path()).unwrap();
        assert_eq!(s.workers, Some(4));
        assert_eq!(s.profiles["big"].limits.memory, Some(4 << 30));
        assert!(set(dir.path(), None, "limits.timeout", Some("soon")).is_err());
        assert!(set(dir.path(), None, "workers", Some("0")).is_err());
        assert!(set(dir.path(), None, "limits.speed", Some("1")).is_err());
        // Refused values left the file as it was.
        assert_eq!(Settings::load(dir.path()).unwrap(), s);
        set(dir.path(), None, "limits.timeout", None).unwrap();
        assert_eq!(Settings::load(dir.path()).unwrap().limits.timeout, None);
        assert!(init(dir.path()).is_err());
    }
}
