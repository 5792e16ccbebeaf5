//! Embedding labhost in another Rust program: load a plugin, start a job
//! with a config and grants, follow its events, and read the final record.
//!
//! ```sh
//! scripts/build-guests.sh
//! cargo run -p labhost --example embed -- guests/dist/rust/datagen.wasm
//! ```

use std::time::Duration;

use labhost::{Host, JobEvent, JobSpec, JobStatus, Workspace};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let plugin_path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "guests/dist/rust/datagen.wasm".into());
    let workspace = Workspace::open(std::env::temp_dir().join("labhost-embed-example"))?;
    let host = Host::new(workspace)?;

    // Compiled, linked and described once; reusable for many jobs.
    let plugin = host.load(plugin_path.as_ref())?;
    println!(
        "loaded {} {} ({})",
        plugin.info.name,
        plugin.info.version,
        plugin.info.kind.as_str()
    );

    let mut spec = JobSpec::new(plugin.clone());
    spec.experiment = "embedded".into();
    // Only parameters the plugin declares are accepted; the rest get defaults.
    if plugin.info.params.iter().any(|p| p.name == "rows") {
        spec.config.insert("rows".into(), 100.into());
    }
    spec.sandbox.limits.timeout = Duration::from_secs(60);
    spec.sandbox.limits.memory_bytes = 256 << 20;

    let mut job = host.start(spec)?;
    let mut events = job.events();
    let follow = tokio::spawn(async move {
        while let Ok(event) = events.recv().await {
            match event {
                JobEvent::Progress { percent, stage } => {
                    println!("  {percent:5.1}% {}", stage.unwrap_or_default())
                }
                JobEvent::Metric { name, value, step } => {
                    println!("  metric {name}={value} step={step:?}")
                }
                JobEvent::Stored {
                    kind,
                    name,
                    location,
                    ..
                } => println!("  stored {kind:?} {name} at {location}"),
                JobEvent::Ended { status, message } => {
                    println!("  ended {status}: {message}");
                    break;
                }
                _ => {}
            }
        }
    });
    let record = job.wait().await?;
    follow.await?;
    println!("job {} in {}", record.id, host.workspace().root().display());
    anyhow::ensure!(record.status == JobStatus::Complete, "job did not complete");
    Ok(())
}
