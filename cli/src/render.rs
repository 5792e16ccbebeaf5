//! Rendering of a running job: a live progress bar with the log streaming
//! above it on a terminal (the stage and the latest value of each metric in
//! the bar's message), plain lines otherwise, or JSON lines. Metric points
//! are printed one per line only with `--verbose` (a trainer reports
//! thousands); the summary gives each metric's final value.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use labhost::text::{for_terminal, for_terminal_line as t};
use labhost::{JobEvent, JobRecord, LogSource, Workspace};
use tokio::sync::broadcast::{self, error::RecvError};

pub enum Renderer {
    Json,
    Human {
        bar: Option<ProgressBar>,
        /// Print every metric point.
        verbose: bool,
        /// The stage text and latest metric values shown in the bar.
        stage: String,
        metrics: BTreeMap<String, f64>,
    },
}

/// Characters of metrics shown in the bar's message.
const BAR_METRICS: usize = 80;

impl Renderer {
    pub fn json() -> Self {
        Renderer::Json
    }

    pub fn human(verbose: bool) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(Some(1000), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] [{bar:32}] {percent:>3}% eta {eta} {msg}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Renderer::Human {
            bar,
            verbose,
            stage: String::new(),
            metrics: BTreeMap::new(),
        }
    }

    /// The bar's message: the stage, then `name=value` of each metric.
    fn refresh_bar(&self) {
        if let Renderer::Human {
            bar: Some(bar),
            stage,
            metrics,
            ..
        } = self
        {
            let mut msg = t(stage).into_owned();
            let mut shown = String::new();
            for (k, v) in metrics {
                let item = format!("{}={}", t(k), crate::pipeline::short_num(*v));
                if shown.chars().count() + item.chars().count() > BAR_METRICS {
                    shown.push_str(" …");
                    break;
                }
                if !shown.is_empty() {
                    shown.push(' ');
                }
                shown.push_str(&item);
            }
            if !shown.is_empty() {
                if !msg.is_empty() {
                    msg.push_str(" | ");
                }
                msg.push_str(&shown);
            }
            bar.set_message(msg);
        }
    }

    /// Render events until the job ends (or the channel closes).
    pub async fn run(mut self, mut events: broadcast::Receiver<JobEvent>) {
        let mut last_plain: Option<(u32, Option<String>)> = None;
        loop {
            let event = match events.recv().await {
                Ok(e) => e,
                Err(RecvError::Lagged(n)) => {
                    self.line(&format!(
                        "({n} events skipped: the renderer fell behind; see `labhost logs`)"
                    ));
                    continue;
                }
                Err(RecvError::Closed) => break,
            };
            let ended = matches!(event, JobEvent::Ended { .. });
            self.event(event, &mut last_plain);
            if ended {
                break;
            }
        }
        if let Renderer::Human { bar: Some(bar), .. } = &self {
            bar.finish_and_clear();
        }
    }

    /// Print a line above the bar. Every line passes here escaped: they
    /// hold guest text (log lines, names).
    fn line(&self, text: &str) {
        let text = for_terminal(text);
        let text = text.as_ref();
        match self {
            Renderer::Human { bar: Some(bar), .. } => bar.println(text),
            _ => eprintln!("{text}"),
        }
    }

    fn event(&mut self, event: JobEvent, last_plain: &mut Option<(u32, Option<String>)>) {
        match self {
            Renderer::Json => {
                let mut out = std::io::stdout().lock();
                let _ = serde_json::to_writer(&mut out, &event);
                let _ = writeln!(out);
                return;
            }
            Renderer::Human { .. } => {}
        }
        match event {
            JobEvent::Started {
                job_id,
                experiment,
                plugin,
            } => {
                self.line(&format!("job {job_id} ({plugin}, experiment {experiment})"));
            }
            JobEvent::Log { source, message } => {
                let tag = match source {
                    LogSource::Stdout => "out",
                    LogSource::Stderr => "err",
                    other => return self.line(&format!("{:<5} {message}", other.tag())),
                };
                self.line(&format!("{tag:<5} {message}"));
            }
            JobEvent::Progress { percent, stage } => match self {
                Renderer::Human {
                    bar: Some(bar),
                    stage: shown,
                    ..
                } => {
                    bar.set_position((percent * 10.0).round() as u64);
                    *shown = stage.unwrap_or_default();
                    self.refresh_bar();
                }
                _ => {
                    // Plain output: a line per 5% step or stage change.
                    let bucket = (percent / 5.0).floor() as u32;
                    let key = (bucket, stage.clone());
                    if last_plain.as_ref() != Some(&key) {
                        *last_plain = Some(key);
                        let stage = stage.map(|s| format!(" {s}")).unwrap_or_default();
                        self.line(&format!("progress {percent:.0}%{stage}"));
                    }
                }
            },
            JobEvent::Metric { name, value, step } => {
                if matches!(self, Renderer::Human { verbose: true, .. }) {
                    let step = step.map(|s| format!(" step {s}")).unwrap_or_default();
                    self.line(&format!("metric {name} = {value}{step}"));
                }
                if let Renderer::Human {
                    bar: Some(_),
                    metrics,
                    ..
                } = self
                {
                    metrics.insert(name, value);
                    self.refresh_bar();
                }
            }
            // The host's own log lines already say what was stored where
            // and which status stage the plugin reported.
            JobEvent::Stored { .. } | JobEvent::Status { .. } => {}
            JobEvent::Ended { .. } => {}
        }
    }
}

/// Metrics named in the run summary (the rest: `labhost metrics JOB`).
const MAX_SUMMARY_METRICS: usize = 50;

/// The end-of-job summary: status, scores, each metric's final value and
/// where everything landed.
pub fn summary(ws: &Workspace, rec: &JobRecord) {
    let root = ws.root();
    let path = |p: std::path::PathBuf| t(&p.display().to_string()).into_owned();
    println!(
        "{} {}: {}",
        rec.status,
        rec.id,
        t(rec.message.as_deref().unwrap_or(""))
    );
    if !rec.scores.is_empty() {
        let scores: Vec<String> = rec
            .scores
            .iter()
            .map(|(k, v)| format!("{}={v:.4}", t(k)))
            .collect();
        println!("  scores      {}", scores.join(" "));
    }
    for line in crate::show::grant_use_lines(rec) {
        println!("  {line}");
    }
    let paths = ws.job_paths(&rec.experiment, &rec.id);
    // Each metric's final value (the stream: `labhost metrics`, `--verbose`).
    match labhost::read::final_metrics(&paths) {
        Ok(points) => {
            for p in points.iter().take(MAX_SUMMARY_METRICS) {
                let step = p.step.map(|s| format!(" (step {s})")).unwrap_or_default();
                println!("  metric      {} = {}{step}", t(&p.name), p.value);
            }
            if points.len() > MAX_SUMMARY_METRICS {
                println!(
                    "  metric      … and {} more (labhost metrics {})",
                    points.len() - MAX_SUMMARY_METRICS,
                    rec.id
                );
            }
        }
        Err(e) => println!("  metric      (cannot read {}: {e})", path(paths.metrics())),
    }
    println!("  job         {}", path(paths.dir));
    for a in &rec.artifacts {
        println!(
            "  artifact    {} → {}",
            t(&a.name),
            path(root.join(&a.location))
        );
    }
    for c in &rec.checkpoints {
        println!(
            "  checkpoint  {} → {}",
            t(&c.name),
            path(root.join(&c.location))
        );
    }
    for m in &rec.models {
        println!(
            "  model       {} → {}",
            t(m),
            path(root.join("models").join(m))
        );
    }
    for d in &rec.datasets {
        println!(
            "  dataset     {} → {}",
            t(d),
            path(root.join("datasets").join(d))
        );
    }
    for e in &rec.evals {
        println!(
            "  eval        {} ({} rows, mean score {:.4}) → {}",
            t(&e.name),
            e.count,
            e.mean_score,
            path(root.join(&e.file.location))
        );
    }
}
