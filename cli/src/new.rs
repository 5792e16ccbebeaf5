//! `labhost new`: scaffold a plugin in any guest language from the templates
//! in `cli/templates/<lang>/` (embedded in the binary). The projects depend
//! on the installed/packaged SDKs, never on a labhost checkout:
//! - Rust: `labhost-sdk = "0.2.0"` (crates.io); with an SDK path, a
//!   `[patch.crates-io]` to the unpacked crate `<sdk>/rust/labhost-sdk-0.2.0`.
//! - Python: the `labhost-lab` wheel installed with componentize-py (build.sh
//!   asks `python -m lab_wit` for the WIT).
//! - JavaScript: the npm package `@labhost/lab` (package.json dependency).
//! - C: the C SDK (`cli/sdk/c/`: lab.h, lab.c, the WIT, lab-c-tool's sources)
//!   is written into the project as `lab-sdk/`.
//!
//! The SDK path is a directory as written by `scripts/package-sdks.sh`
//! (`guests/dist/sdk/`), or a labhost checkout holding one.

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

macro_rules! c_sdk {
    ($($path:literal),* $(,)?) => {
        &[$((concat!("c/lab-sdk/", $path), include_str!(concat!("../sdk/c/", $path)))),*]
    };
}

/// The SDK version the templates depend on (= the lab:api version).
pub const SDK_VERSION: &str = "0.2.0";

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
    "js/package.json",
];

/// The C SDK, written into C projects as `lab-sdk/` (checked copies of
/// guests/c/lab.{h,c}, host/wit and guests/c/tool: scripts/package-sdks.sh
/// fails if they differ, `--sync` refreshes them).
const C_SDK: &[(&str, &str)] = c_sdk![
    "README.md",
    "lab.h",
    "lab.c",
    "wit/lab.wit",
    "tool/Cargo.toml",
    "tool/Cargo.lock",
    "tool/src/main.rs",
];

/// The directory of packaged SDKs: `sdk` itself, or `<sdk>/guests/dist/sdk`
/// when `sdk` is a labhost checkout.
fn sdk_dir(sdk: &Path) -> PathBuf {
    let dist = sdk.join("guests/dist/sdk");
    if dist.is_dir() {
        dist
    } else {
        sdk.to_owned()
    }
}

/// Create `<parent>/<name>/` with the plugin's sources and `build.sh`. With
/// `sdk` (packaged SDKs, see the module doc), a Rust project uses the crate
/// found there instead of crates.io.
pub fn scaffold(
    name: &str,
    lang: Lang,
    kind: Kind,
    parent: &Path,
    sdk: Option<PathBuf>,
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
    let mut rust_patch = String::new();
    if let (Some(sdk), Lang::Rust) = (&sdk, lang) {
        let krate = sdk_dir(sdk).join(format!("rust/labhost-sdk-{SDK_VERSION}"));
        if !krate.join("Cargo.toml").is_file() {
            bail!(
                "{} has no labhost-sdk {SDK_VERSION} crate (rust/labhost-sdk-{SDK_VERSION}/): \
                 run scripts/package-sdks.sh in a labhost checkout",
                sdk.display()
            );
        }
        let krate = krate.canonicalize()?;
        // A TOML basic string: escape what would end or break it.
        let path = krate
            .display()
            .to_string()
            .replace('\\', "\\\\")
            .replace('"', "\\\"");
        rust_patch = format!(
            "\n# The labhost SDK from a local package instead of crates.io.\n\
             [patch.crates-io]\nlabhost-sdk = {{ path = \"{path}\" }}\n"
        );
    }
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
            .replace("{{rust_patch}}", &rust_patch)
    };
    let files = TEMPLATES.iter().chain(C_SDK.iter());
    for (path, content) in files.filter(|(p, _)| p.starts_with(lang_dir)) {
        let dest = dir.join(&path[lang_dir.len()..]);
        std::fs::create_dir_all(dest.parent().unwrap())
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let content = if path.starts_with("c/lab-sdk/") {
            content.to_string()
        } else {
            fill(content)
        };
        std::fs::write(&dest, content)
            .with_context(|| format!("cannot write {}", dest.display()))?;
        if path.ends_with(".sh") {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o755))?;
        }
    }
    Ok(dir)
}
