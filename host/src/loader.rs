//! Loading a plugin: reading the file (bounded, regular files only),
//! compiling it through the compile cache, pre-instantiating it against
//! the linker, and calling `describe()` in an empty sandbox on its own
//! thread and runtime, within a time and memory limit.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use wasmtime::component::{types::ComponentItem, Component, Linker};
use wasmtime::{Engine, Store, UpdateDeadline};
use wasmtime_wasi::WasiCtxBuilder;

use crate::bindings::predictor::PredictorPre;
use crate::bindings::PluginPre;
use crate::cache::{CacheOutcome, CompileCache};
use crate::engine::root_cause;
use crate::plugin::Entry;
use crate::plugin::{Plugin, PluginInfo};
use crate::state::{HostState, MemoryLimiter};
use crate::units::human_bytes;

/// Time and memory allowed to `describe()`.
const DESCRIBE_TIMEOUT: Duration = Duration::from_secs(10);
const DESCRIBE_MEMORY: u64 = 256 << 20;

/// Compile, link and describe a plugin (see [`crate::Host::load`]).
pub(crate) fn load(
    engine: &Engine,
    linker: &Linker<HostState>,
    cache: Option<&CompileCache>,
    path: &Path,
) -> anyhow::Result<Arc<Plugin>> {
    let shown = path.display();
    let bytes = read_plugin_file(path)?;
    let digest = blake3::hash(&bytes).to_hex().to_string();
    if wasmparser_is_core_module(&bytes) {
        bail!("{shown} is a core WebAssembly module, not a component (build for wasm32-wasip2 or wrap it with `wasm-tools component new`)");
    }
    let compiled = match cache {
        Some(cache) => cache.load(engine, &bytes, &digest),
        None => Component::new(engine, &bytes).map(|c| (c, CacheOutcome::Disabled)),
    };
    let (component, cache_outcome) = compiled.map_err(|e| {
        anyhow::anyhow!(
            "{shown} is not a valid WebAssembly component: {}",
            root_cause(&e)
        )
    })?;
    let ty = component.component_type();
    let imports: Vec<String> = ty
        .imports(engine)
        .filter(|(_, item)| matches!(item.ty, ComponentItem::ComponentInstance(_)))
        .map(|(name, _)| name.to_owned())
        .collect();
    let pre = linker
        .instantiate_pre(&component)
        .map_err(|e| anyhow::anyhow!("{shown} cannot be linked: {}", root_cause(&e)))?;
    let pre = match PluginPre::new(pre.clone()) {
        Ok(p) => Entry::Plugin(p),
        Err(plugin_err) => match PredictorPre::new(pre) {
            Ok(p) => Entry::Predictor(p),
            Err(_) => bail!(
                "{shown} is not a labhost plugin (world lab:api/plugin) or predictor (world lab:api/predictor): {}",
                root_cause(&plugin_err)
            ),
        },
    };
    let info = describe(engine, &pre).map_err(|e| anyhow::anyhow!("{shown}: {e}"))?;
    Ok(Arc::new(Plugin {
        path: path.to_owned(),
        digest,
        info,
        imports,
        pre,
        component,
        cache: cache_outcome,
    }))
}

/// See [`crate::Host::instantiate_once`].
pub(crate) fn instantiate_once(engine: &Engine, plugin: &Plugin) -> anyhow::Result<Duration> {
    let store = empty_store(engine);
    let pre = plugin.pre.clone();
    on_own_runtime(async move {
        let mut store = store;
        let t = Instant::now();
        pre.instance_pre()
            .instantiate_async(&mut store)
            .await
            .map_err(|e| anyhow::anyhow!("instantiation failed: {}", root_cause(&e)))?;
        let took = t.elapsed();
        drop(store); // frees the instance (and its pool slot)
        Ok(took)
    })
}

fn empty_store(engine: &Engine) -> Store<HostState> {
    let wasi = WasiCtxBuilder::new().build();
    let state = HostState {
        wasi,
        table: Default::default(),
        limiter: MemoryLimiter::new(DESCRIBE_MEMORY),
        job: None,
    };
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.limiter);
    let deadline = Instant::now() + DESCRIBE_TIMEOUT;
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        if Instant::now() >= deadline {
            wasmtime::bail!("{}", describe_timeout_message());
        }
        Ok(UpdateDeadline::Continue(1))
    });
    store
}

fn describe(engine: &Engine, pre: &Entry) -> anyhow::Result<PluginInfo> {
    let store = empty_store(engine);
    let pre = pre.clone();
    let info = on_own_runtime(async move {
        let mut store = store;
        let call = async {
            let failed =
                |e: wasmtime::Error| anyhow::anyhow!("instantiation failed: {}", root_cause(&e));
            let described = match &pre {
                Entry::Plugin(p) => {
                    p.instantiate_async(&mut store)
                        .await
                        .map_err(failed)?
                        .call_describe(&mut store)
                        .await
                }
                Entry::Predictor(p) => {
                    p.instantiate_async(&mut store)
                        .await
                        .map_err(failed)?
                        .call_describe(&mut store)
                        .await
                }
            };
            described.map_err(|e| anyhow::anyhow!("describe() failed: {}", root_cause(&e)))
        };
        match tokio::time::timeout(DESCRIBE_TIMEOUT, call).await {
            Ok(r) => r,
            Err(_) => bail!("describe() failed: {}", describe_timeout_message()),
        }
    })?;
    PluginInfo::from_wit(info)
}

fn describe_timeout_message() -> String {
    format!(
        "describe() did not return within {}s",
        DESCRIBE_TIMEOUT.as_secs()
    )
}

/// Run `fut` to completion on a new thread with its own current-thread
/// runtime: usable from sync code and from inside another runtime.
fn on_own_runtime<T: Send + 'static>(
    fut: impl std::future::Future<Output = anyhow::Result<T>> + Send + 'static,
) -> anyhow::Result<T> {
    std::thread::Builder::new()
        .name("labhost-describe".into())
        .spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start a runtime")?
                .block_on(fut)
        })
        .context("cannot start a thread")?
        .join()
        .map_err(|_| anyhow::anyhow!("the plugin's describe thread panicked"))?
}

/// Largest plugin file accepted (the Python and JavaScript runtimes make
/// components of 13–19 MB).
pub const MAX_PLUGIN_BYTES: u64 = 512 << 20;

/// Read a plugin file: a regular file of at most [`MAX_PLUGIN_BYTES`]
/// (a device such as `/dev/zero` or a FIFO is refused without reading;
/// the file is opened non-blocking so a FIFO cannot hang the open).
fn read_plugin_file(path: &Path) -> anyhow::Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let shown = path.display();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| anyhow::anyhow!("cannot read plugin {shown}: {e}"))?;
    let meta = file
        .metadata()
        .map_err(|e| anyhow::anyhow!("cannot read plugin {shown}: {e}"))?;
    if !meta.is_file() {
        bail!("cannot read plugin {shown}: not a regular file");
    }
    if meta.len() > MAX_PLUGIN_BYTES {
        bail!(
            "cannot read plugin {shown}: {} is larger than the {} a plugin may have",
            human_bytes(meta.len()),
            human_bytes(MAX_PLUGIN_BYTES)
        );
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_PLUGIN_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| anyhow::anyhow!("cannot read plugin {shown}: {e}"))?;
    if bytes.len() as u64 > MAX_PLUGIN_BYTES {
        bail!(
            "cannot read plugin {shown}: it grew past {}",
            human_bytes(MAX_PLUGIN_BYTES)
        );
    }
    Ok(bytes)
}

/// A core module starts with the wasm magic and version 1; a component
/// with the same magic and layer 1.
fn wasmparser_is_core_module(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes[0..4] == *b"\0asm" && bytes[4..8] == [1, 0, 0, 0]
}
