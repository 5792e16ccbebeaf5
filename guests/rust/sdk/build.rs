//! The WIT this crate builds against is vendored (`wit/`, `wit-0.1.0/`) so the
//! packaged crate is self-contained. In a labhost checkout the copies must be
//! identical to the host's WIT (`host/wit/`, `host/wit-versions/0.1.0/`): the
//! build fails if they differ (`scripts/package-sdks.sh --sync` copies them).
//! Outside a checkout (the packaged crate) there is nothing to compare.

use std::path::Path;

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let host = dir.join("../../../host");
    for (vendored, source) in [
        ("wit/lab.wit", "wit/lab.wit"),
        ("wit-0.1.0/lab.wit", "wit-versions/0.1.0/lab.wit"),
    ] {
        let vendored = dir.join(vendored);
        let source = host.join(source);
        println!("cargo:rerun-if-changed={}", vendored.display());
        if !host.join("wit/lab.wit").is_file() {
            continue;
        }
        println!("cargo:rerun-if-changed={}", source.display());
        let a = std::fs::read(&vendored).unwrap_or_default();
        let b = std::fs::read(&source).unwrap_or_default();
        if a != b {
            panic!(
                "{} differs from {}: run scripts/package-sdks.sh --sync",
                vendored.display(),
                source.display()
            );
        }
    }
}
