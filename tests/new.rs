//! `labhost new`: a scaffolded plugin in each language builds with its own
//! build.sh against the PACKAGED SDKs (scripts/package-sdks.sh:
//! guests/dist/sdk/) and runs to COMPLETE. No project refers to the labhost
//! checkout: Python gets the wheel installed into a fresh venv, JavaScript
//! the npm tarball installed into the project, Rust the unpacked .crate via
//! `[patch.crates-io]`, C the SDK files `labhost new` writes into the project.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use labhost::JobStatus;
use labhost_tests::{labhost_bin, repo_root, stderr, stdout, Lab};

fn ok(what: &str, o: &Output) {
    assert!(o.status.success(), "{what}: {}{}", stdout(o), stderr(o));
}

/// Every file under `dir` (recursively), skipping `skip` directories.
fn files(dir: &Path, skip: &[&str]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            if !skip.iter().any(|s| p.ends_with(s)) {
                out.extend(files(&p, skip));
            }
        } else {
            out.push(p);
        }
    }
    out
}

/// A directory holding only the named toolchain binaries (symlinks), for
/// PATH: the language toolchains a user installs, not the labhost checkout.
fn tool_dir(root: &Path, tools: &[(&str, PathBuf)]) -> PathBuf {
    let dir = root.join("toolchain-bin");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, target) in tools {
        assert!(
            target.is_file(),
            "{} missing: run scripts/build-guests.sh",
            target.display()
        );
        std::os::unix::fs::symlink(target, dir.join(name)).unwrap();
    }
    dir
}

fn path_with(dirs: &[&Path]) -> OsString {
    let mut paths: Vec<PathBuf> = dirs.iter().map(|d| d.to_path_buf()).collect();
    paths.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(paths).unwrap()
}

#[test]
fn scaffolded_plugins_build_and_run_in_every_language() {
    let root = repo_root();
    ok(
        "package-sdks",
        &Command::new(root.join("scripts/package-sdks.sh"))
            .output()
            .unwrap(),
    );
    let sdk = root.join("guests/dist/sdk");
    let wheel = sdk.join("python/labhost_lab-0.2.0-py3-none-any.whl");
    let tgz = sdk.join("js/labhost-lab-0.2.0.tgz");
    let krate = sdk.join("rust/labhost-sdk-0.2.0");
    for p in [&wheel, &tgz, &sdk.join("rust/labhost-sdk-0.2.0.crate")] {
        assert!(p.is_file(), "{} missing", p.display());
    }

    let lab = Lab::new();
    let projects = lab.dir.path().join("projects");
    std::fs::create_dir_all(&projects).unwrap();
    // The toolchains: componentize-py and lab-c-tool as a user installs them
    // (here: the ones scripts/build-guests.sh built), alone on PATH.
    let tools = tool_dir(
        lab.dir.path(),
        &[
            (
                "componentize-py",
                root.join("guests/python/.venv/bin/componentize-py"),
            ),
            (
                "lab-c-tool",
                root.join("guests/c/tool/target/release/lab-c-tool"),
            ),
        ],
    );
    // Python: a fresh venv with only the SDK wheel installed (offline).
    let venv = lab.dir.path().join("venv");
    ok(
        "venv",
        &Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .output()
            .unwrap(),
    );
    ok(
        "pip install wheel",
        &Command::new(venv.join("bin/pip"))
            .args([
                "install",
                "--quiet",
                "--no-index",
                "--disable-pip-version-check",
            ])
            .arg(&wheel)
            .output()
            .unwrap(),
    );
    let wit = Command::new(venv.join("bin/python"))
        .args(["-m", "lab_wit"])
        .output()
        .unwrap();
    ok("python -m lab_wit", &wit);
    let wit = PathBuf::from(stdout(&wit).trim());
    assert!(wit.starts_with(&venv), "{}", wit.display());
    assert_eq!(
        std::fs::read(wit.join("lab.wit")).unwrap(),
        std::fs::read(root.join("host/wit/lab.wit")).unwrap()
    );

    for lang in ["rust", "python", "js", "c"] {
        let name = format!("hello-{lang}");
        let mut new = Command::new(labhost_bin());
        new.args(["new", &name, "--lang", lang, "--kind", "generator", "--dir"])
            .arg(&projects)
            .env_remove("LABHOST_SDK_PATH");
        if lang == "rust" {
            new.arg("--sdk-path").arg(&sdk);
        }
        let o = new.output().unwrap();
        ok(lang, &o);
        let dir = projects.join(&name);
        // Nothing in the project points into the checkout, except the Rust
        // project's [patch] to the packaged crate.
        for f in files(&dir, &[]) {
            let text = std::fs::read_to_string(&f).unwrap();
            let text = text.replace(&krate.canonicalize().unwrap().display().to_string(), "");
            assert!(
                !text.contains(&root.display().to_string()),
                "{} refers to the checkout",
                f.display()
            );
        }
        let mut build = Command::new(dir.join("build.sh"));
        build
            .env_remove("LABHOST_SDK_PATH")
            .env_remove("VIRTUAL_ENV");
        match lang {
            "rust" => {
                let toml = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
                assert!(toml.contains("labhost-sdk = \"0.2.0\"\n"), "{toml}");
                assert!(
                    toml.contains("[patch.crates-io]\nlabhost-sdk = { path = \""),
                    "{toml}"
                );
                // The guests' target dir: dependencies are not rebuilt.
                build.env("CARGO_TARGET_DIR", root.join("guests/rust/target"));
            }
            "python" => {
                build.env("PATH", path_with(&[&venv.join("bin"), &tools]));
            }
            "js" => {
                ok(
                    "npm install",
                    &Command::new("npm")
                        .args(["install", "--prefer-offline", "--no-audit", "--no-fund"])
                        .arg(&tgz)
                        .current_dir(&dir)
                        .output()
                        .unwrap(),
                );
                assert!(dir
                    .join("node_modules/@labhost/lab/wit/deps/lab-api/lab.wit")
                    .is_file());
            }
            "c" => {
                for (f, src) in [
                    ("lab-sdk/lab.h", "guests/c/lab.h"),
                    ("lab-sdk/lab.c", "guests/c/lab.c"),
                    ("lab-sdk/wit/lab.wit", "host/wit/lab.wit"),
                    ("lab-sdk/tool/src/main.rs", "guests/c/tool/src/main.rs"),
                ] {
                    assert_eq!(
                        std::fs::read(dir.join(f)).unwrap(),
                        std::fs::read(root.join(src)).unwrap(),
                        "{f}"
                    );
                }
                build.env("PATH", path_with(&[&tools]));
            }
            _ => unreachable!(),
        }
        let build = build.output().unwrap();
        ok(lang, &build);
        let wasm = dir.join(format!("{name}.wasm"));
        let run = lab.cli(&[
            "run",
            wasm.to_str().unwrap(),
            "-c",
            "greeting=hi",
            "-c",
            "repeat=2",
            "--json",
        ]);
        assert!(run.status.success(), "{lang}: {}", stderr(&run));
        let rec = lab.ws().jobs(None).unwrap().pop().unwrap();
        assert_eq!(
            (
                rec.status,
                rec.plugin.name.as_str(),
                rec.plugin.kind.as_str()
            ),
            (JobStatus::Complete, name.as_str(), "generator")
        );
        assert_eq!(rec.scores.get("lines"), Some(&2.0), "{lang}");
        let out = std::fs::read_to_string(lab.root().join(&rec.artifacts[0].location)).unwrap();
        assert_eq!(out, "hi 0\nhi 1\n", "{lang}");
    }
    // Without an SDK path, a Rust project depends on the crates.io release only.
    let o = Command::new(labhost_bin())
        .args(["new", "plain", "--lang", "rust", "--dir"])
        .arg(&projects)
        .env_remove("LABHOST_SDK_PATH")
        .output()
        .unwrap();
    ok("plain", &o);
    let toml = std::fs::read_to_string(projects.join("plain/Cargo.toml")).unwrap();
    assert!(toml.contains("labhost-sdk = \"0.2.0\"\n"), "{toml}");
    assert!(!toml.contains("path") && !toml.contains("[patch"), "{toml}");
    // An SDK path without the packaged crate is refused.
    let o = Command::new(labhost_bin())
        .args(["new", "nosdk", "--lang", "rust", "--sdk-path"])
        .arg(lab.dir.path())
        .arg("--dir")
        .arg(&projects)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("has no labhost-sdk 0.2.0 crate"),
        "{}",
        stderr(&o)
    );
    // Bad names and existing directories are refused.
    let o = Command::new(labhost_bin())
        .args(["new", "Bad_Name", "--lang", "c", "--dir"])
        .arg(&projects)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("error: invalid plugin name `Bad_Name`"),
        "{}",
        stderr(&o)
    );
    let o = Command::new(labhost_bin())
        .args(["new", "hello-c", "--lang", "c", "--dir"])
        .arg(&projects)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).ends_with("hello-c already exists\n"),
        "{}",
        stderr(&o)
    );
}
