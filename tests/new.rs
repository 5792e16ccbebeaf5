//! `labhost new`: a scaffolded plugin in each language builds with its own
//! build.sh and runs to COMPLETE.

use std::process::Command;

use labhost::JobStatus;
use labhost_tests::{labhost_bin, repo_root, stderr, stdout, Lab};

#[test]
fn scaffolded_plugins_build_and_run_in_every_language() {
    let lab = Lab::new();
    let projects = lab.dir.path().join("projects");
    std::fs::create_dir_all(&projects).unwrap();
    for lang in ["rust", "python", "js", "c"] {
        let name = format!("hello-{lang}");
        let o = Command::new(labhost_bin())
            .args(["new", &name, "--lang", lang, "--kind", "generator", "--dir"])
            .arg(&projects)
            .output()
            .unwrap();
        assert!(o.status.success(), "{lang}: {}", stderr(&o));
        let dir = projects.join(&name);
        // The Rust template shares the guests' target dir: no rebuild of the SDK.
        let build = Command::new(dir.join("build.sh"))
            .env("CARGO_TARGET_DIR", repo_root().join("guests/rust/target"))
            .output()
            .unwrap();
        assert!(
            build.status.success(),
            "{lang}: {}{}",
            stdout(&build),
            stderr(&build)
        );
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
