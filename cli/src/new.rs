//! `labhost new`: scaffold a plugin in any guest language from the templates
//! in `cli/templates/<lang>/` (embedded in the binary). The generated
//! build script uses the SDKs of the labhost checkout this binary was built
//! from (or `--labhost-root` / `$LABHOST_ROOT`).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Lang {
    Rust,
    Python,
    Js,
    C,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Kind {
    Generator,
    Trainer,
    Evaluator,
    Other,
}

macro_rules! template {
    ($($path:literal),* $(,)?) => {
        &[$(($path, include_str!(concat!("../templates/", $path)))),*]
    };
}

/// (path under cli/templates/, content)
const TEMPLATES: &[(&str, &str)] = template![
    "rust/Cargo.toml",
    "rust/src/lib.rs",
    "rust/build.sh",
    "python/app.py",
    "python/build.sh",
    "js/plugin.js",
    "js/build.sh",
    "c/plugin.c",
    "c/build.sh",
];

/// The labhost checkout this binary was built from.
fn default_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_owned)
        .unwrap_or_default()
}

/// Create `<parent>/<name>/` with the plugin's sources and `build.sh`.
pub fn scaffold(
    name: &str,
    lang: Lang,
    kind: Kind,
    parent: &Path,
    root: Option<PathBuf>,
) -> anyhow::Result<PathBuf> {
    if name.is_empty()
        || name.len() > 64
        || !name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        bail!("invalid plugin name `{name}`: use lowercase letters, digits and `-`, starting with a letter");
    }
    let root = root.unwrap_or_else(default_root);
    if !root.join("wit/lab.wit").is_file() {
        bail!(
            "{} is not a labhost checkout (no wit/lab.wit); pass --labhost-root",
            root.display()
        );
    }
    let root = root.canonicalize()?;
    let dir = parent.join(name);
    if dir.exists() {
        bail!("{} already exists", dir.display());
    }
    let lang_dir = match lang {
        Lang::Rust => "rust/",
        Lang::Python => "python/",
        Lang::Js => "js/",
        Lang::C => "c/",
    };
    let (kind_wit, kind_rust, kind_c) = match kind {
        Kind::Generator => ("generator", "Generator", "LAB_KIND_GENERATOR"),
        Kind::Trainer => ("trainer", "Trainer", "LAB_KIND_TRAINER"),
        Kind::Evaluator => ("evaluator", "Evaluator", "LAB_KIND_EVALUATOR"),
        Kind::Other => ("other", "Other", "LAB_KIND_OTHER"),
    };
    let type_name: String = name
        .split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect();
    let fill = |text: &str| {
        text.replace("{{name}}", name)
            .replace("{{crate}}", &name.replace('-', "_"))
            .replace("{{type}}", &type_name)
            .replace("{{kind}}", kind_wit)
            .replace("{{kind_rust}}", kind_rust)
            .replace("{{kind_c}}", kind_c)
            .replace("{{labhost}}", &root.display().to_string())
    };
    for (path, content) in TEMPLATES.iter().filter(|(p, _)| p.starts_with(lang_dir)) {
        let dest = dir.join(&path[lang_dir.len()..]);
        std::fs::create_dir_all(dest.parent().unwrap())
            .with_context(|| format!("cannot create {}", dir.display()))?;
        std::fs::write(&dest, fill(content))
            .with_context(|| format!("cannot write {}", dest.display()))?;
        if path.ends_with(".sh") {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o755))?;
        }
    }
    Ok(dir)
}
