//! N jobs of one plugin, one after another, each started and waited for:
//! the Rust side of the Python package's overhead figure
//! (`python/bench/run_overhead.py` runs the same loop through `host.run`
//! and prints both side by side). Prints one JSON line: every job's time,
//! start to end, in µs.
//!
//! ```sh
//! cargo run -p labhost --example job_loop -- PLUGIN.wasm N '{"scenario":"bench","target":"log","count":1}' WORKSPACE
//! ```

use std::time::Instant;

use anyhow::Context;
use labhost::{CompileCache, Host, JobSpec, JobStatus, Workspace};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [plugin, n, config, root] = args.as_slice() else {
        anyhow::bail!("usage: job_loop PLUGIN N CONFIG_JSON WORKSPACE");
    };
    let n: usize = n.parse().context("N")?;
    let config: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(config).context("CONFIG_JSON")?;
    // As the Python package's Host does: the workspace's compile cache.
    let cache = CompileCache::for_workspace(root.as_ref());
    let host = Host::with_cache(Workspace::open(root)?, Some(cache))?;
    let plugin = host.load(plugin.as_ref())?;
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let mut spec = JobSpec::new(plugin.clone());
        spec.config = config.clone();
        let t = Instant::now();
        let rec = host.start(spec)?.wait().await?;
        times.push(t.elapsed().as_secs_f64() * 1e6);
        anyhow::ensure!(
            rec.status == JobStatus::Complete,
            "job {} ended {}",
            rec.id,
            rec.status
        );
    }
    println!("{}", serde_json::json!({ "times_us": times }));
    Ok(())
}
