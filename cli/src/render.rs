//! Rendering of a running job: a live progress bar with the log streaming
//! above it on a terminal, plain lines otherwise, or JSON lines.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use labhost::text::{for_terminal, for_terminal_line as t};
use labhost::{JobEvent, JobRecord, LogSource, Workspace};
use tokio::sync::broadcast::{self, error::RecvError};

pub enum Renderer {
    Json,
    Human { bar: Option<ProgressBar> },
}

impl Renderer {
    pub fn json() -> Self {
        Renderer::Json
    }

    pub fn human() -> Self {
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
        Renderer::Human { bar }
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
                Renderer::Human { bar: Some(bar), .. } => {
                    bar.set_position((percent * 10.0).round() as u64);
                    bar.set_message(t(&stage.unwrap_or_default()).into_owned());
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
                let step = step.map(|s| format!(" step {s}")).unwrap_or_default();
                self.line(&format!("metric {name} = {value}{step}"));
            }
            // The host's own log line already says what was stored where.
            JobEvent::Stored { .. } => {}
            JobEvent::Ended { .. } => {}
        }
    }
}

/// The end-of-job summary: status, scores and where everything landed.
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
    let dir = ws.job_paths(&rec.experiment, &rec.id).dir;
    println!("  job         {}", path(dir));
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
