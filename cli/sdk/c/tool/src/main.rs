//! `lab-c-tool`: the two build steps of a labhost C guest that need the
//! component-model tooling, as one small binary (no `wit-bindgen`/`wasm-tools`
//! CLIs to install).
//!
//! ```text
//! lab-c-tool bindgen WIT_DIR WORLD OUT_DIR      # C bindings (wit-bindgen-c 0.63)
//! lab-c-tool componentize CORE.wasm OUT.wasm    # core module -> component
//! ```
//!
//! `bindgen` writes `<world>.h`, `<world>.c` and `<world>_component_type.o`
//! (the component type, linked into the core module). `componentize` wraps a
//! core module built for `wasm32-wasi` (preview1, reactor) into a component
//! with the WASI preview1 reactor adapter of wasmtime 48.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use wit_bindgen_core::wit_parser::Resolve;
use wit_bindgen_core::Files;

const USAGE: &str = "usage:
  lab-c-tool bindgen WIT_DIR WORLD OUT_DIR
  lab-c-tool componentize CORE.wasm OUT.wasm";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["bindgen", wit, world, out] => bindgen(wit.as_ref(), world, out.as_ref()),
        ["componentize", core, out] => componentize(core.as_ref(), out.as_ref()),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lab-c-tool: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn bindgen(wit: &Path, world: &str, out: &Path) -> Result<()> {
    let mut resolve = Resolve::default();
    let (pkg, _) = resolve
        .push_path(wit)
        .with_context(|| format!("cannot read WIT from {}", wit.display()))?;
    let world = resolve.select_world(&[pkg], Some(world))?;
    let mut files = Files::default();
    wit_bindgen_c::Opts::default()
        .build()
        .generate(&mut resolve, world, &mut files)?;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    for (name, contents) in files.iter() {
        let path = out.join(name);
        // Rewrite only what changed, so make-style rebuilds stay incremental.
        if std::fs::read(&path).ok().as_deref() != Some(contents) {
            std::fs::write(&path, contents)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
    }
    Ok(())
}

fn componentize(core: &Path, out: &Path) -> Result<()> {
    let module =
        std::fs::read(core).with_context(|| format!("cannot read {}", core.display()))?;
    if !module.starts_with(b"\0asm\x01\0\0\0") {
        bail!("{} is not a core WebAssembly module", core.display());
    }
    let component = wit_component::ComponentEncoder::default()
        .validate(true)
        .module(&module)?
        .adapter(
            wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME,
            wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
        )?
        .encode()
        .with_context(|| format!("cannot make a component of {}", core.display()))?;
    std::fs::write(out, component).with_context(|| format!("cannot write {}", out.display()))?;
    Ok(())
}
