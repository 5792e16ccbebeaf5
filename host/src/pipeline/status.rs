//! What status views show of a run's jobs: each instance's live job
//! (progress, elapsed time, ETA, latest metrics), read from the workspace.

use std::fs::File;
use std::path::PathBuf;
use std::time::Duration;

use chrono::Utc;

use super::record::Instance;
use crate::store::JobRecord;

/// The live state of a running (or ended) instance's job, for status views.
#[derive(Debug, Clone)]
pub struct LiveJob {
    pub job: JobRecord,
    pub elapsed: Duration,
    /// Estimated time left, from progress so far (running jobs with progress > 0).
    pub eta: Option<Duration>,
    /// The latest value of each metric, by name (at most a few recent ones).
    pub latest_metrics: Vec<(String, f64)>,
}

/// Read the job of an instance's last attempt (jobs of a run are in its experiment).
pub fn live(ws: &crate::Workspace, experiment: &str, inst: &Instance) -> Option<LiveJob> {
    let (job, paths) = ws.job(experiment, inst.last_job()?).ok()?;
    let crate::read::Timing { elapsed, eta } = crate::read::timing(&job, Utc::now());
    let latest_metrics = latest_metrics(&paths.metrics(), 4);
    Some(LiveJob {
        job,
        elapsed,
        eta,
        latest_metrics,
    })
}

/// The last value of up to `max` metrics, from the tail of `metrics.jsonl`.
fn latest_metrics(path: &PathBuf, max: usize) -> Vec<(String, f64)> {
    use std::io::{Read, Seek, SeekFrom};
    const TAIL: u64 = 16 << 10;
    let Ok(mut f) = File::open(path) else {
        return vec![];
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(TAIL)));
    let mut buf = String::new();
    if f.take(TAIL).read_to_string(&mut buf).is_err() {
        return vec![];
    }
    let mut out: Vec<(String, f64)> = Vec::new();
    for line in buf.lines().rev() {
        if let Ok(p) = serde_json::from_str::<crate::store::MetricPoint>(line) {
            if !out.iter().any(|(n, _)| *n == p.name) {
                out.push((p.name, p.value));
                if out.len() == max {
                    break;
                }
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}
