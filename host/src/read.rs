//! The read API every front end shares (the CLI, a server, a Python
//! client): a job's events followed live from any process, its metrics
//! queried by name and step range (and downsampled for charts), its timing
//! and ETA, and waiting for its end.
//!
//! Everything is read from the files the host already writes durably —
//! `output.log`, `metrics.jsonl` (both append-only, read by offset) and
//! `job.json` (progress, stored items, status) — so following a job costs
//! the job nothing, works from any process, and resumes from a
//! [`Cursor`] after a reconnect.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::ops::RangeInclusive;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::events::{JobEvent, LogSource, StoredKind};
use crate::store::{read_json_opt, JobPaths, JobRecord, JobStatus, MetricPoint, Workspace};

/// Where a reader is in a job's streams (serialisable: a client can keep it
/// and resume).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// Bytes of `output.log` read.
    pub log: u64,
    /// Bytes of `metrics.jsonl` read.
    pub metrics: u64,
    /// Stored items seen, per kind.
    pub stored: StoredSeen,
}

/// How many stored items of each kind a reader has seen (each kind's list
/// in the record only grows).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredSeen {
    pub artifacts: u32,
    pub checkpoints: u32,
    pub evals: u32,
    pub models: u32,
    pub datasets: u32,
}

/// One followed event, with its time when the files say it.
#[derive(Debug, Clone, Serialize)]
pub struct Update {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ts: Option<DateTime<Utc>>,
    #[serde(flatten)]
    pub event: JobEvent,
}

/// Follows one job from its files. Call [`Follower::poll`] repeatedly;
/// [`Follower::done`] turns true once the job ended and everything it
/// wrote was read.
pub struct Follower {
    ws: Workspace,
    paths: JobPaths,
    cursor: Cursor,
    progress: Option<(f32, Option<String>)>,
    done: bool,
}

impl Follower {
    pub fn new(ws: &Workspace, paths: JobPaths, from: Cursor) -> Self {
        Follower {
            ws: ws.clone(),
            paths,
            cursor: from,
            progress: None,
            done: false,
        }
    }

    pub fn cursor(&self) -> Cursor {
        self.cursor
    }

    pub fn done(&self) -> bool {
        self.done
    }

    /// Everything new since the last call, in file order per stream: log
    /// lines, then metric points, then progress, stored items and the end.
    /// Only complete lines are returned (a line being written waits).
    pub fn poll(&mut self) -> std::io::Result<Vec<Update>> {
        if self.done {
            return Ok(Vec::new());
        }
        // The record first: once it says the job ended, the host has
        // flushed the log and metrics, so reading them after sees it all.
        let rec = read_json_opt::<JobRecord>(&self.paths.record())
            .map_err(|e| std::io::Error::other(format!("{e:#}")))?;
        let mut out = Vec::new();
        let (bytes, read) = read_lines_from(&self.paths.log(), self.cursor.log)?;
        self.cursor.log += read;
        out.extend(parse_log(&bytes));
        let (bytes, read) = read_lines_from(&self.paths.metrics(), self.cursor.metrics)?;
        self.cursor.metrics += read;
        out.extend(parse_metrics(&bytes).into_iter().map(|p| Update {
            ts: Some(p.ts),
            event: JobEvent::Metric {
                name: p.name,
                value: p.value,
                step: p.step,
            },
        }));
        let Some(rec) = rec else {
            return Ok(out);
        };
        let progress = (rec.progress, rec.stage.clone());
        if self.progress.as_ref() != Some(&progress) {
            out.push(Update {
                ts: None,
                event: JobEvent::Progress {
                    percent: progress.0,
                    stage: progress.1.clone(),
                },
            });
            self.progress = Some(progress);
        }
        for event in stored_since(&self.ws, &rec, &mut self.cursor.stored) {
            out.push(Update { ts: None, event });
        }
        if rec.status.is_terminal() {
            out.push(Update {
                ts: rec.ended_at,
                event: JobEvent::Ended {
                    status: rec.status,
                    message: rec.message.clone().unwrap_or_default(),
                },
            });
            self.done = true;
        }
        Ok(out)
    }
}

/// Follow `paths` until the job ends, calling `each` with every update;
/// `every` is the wait between polls when nothing is new.
pub async fn follow(
    ws: &Workspace,
    paths: JobPaths,
    from: Cursor,
    every: Duration,
    mut each: impl FnMut(&Update),
) -> std::io::Result<Cursor> {
    let mut f = Follower::new(ws, paths, from);
    while !f.done() {
        let batch = f.poll()?;
        if batch.is_empty() {
            tokio::time::sleep(every).await;
        }
        batch.iter().for_each(&mut each);
    }
    Ok(f.cursor())
}

/// Wait (from any process) until the job `id` ended; returns its record.
pub async fn wait_for_end(ws: &Workspace, id: &str, every: Duration) -> anyhow::Result<JobRecord> {
    loop {
        let (rec, _) = ws.find_job(id)?;
        if rec.status.is_terminal() {
            return Ok(rec);
        }
        tokio::time::sleep(every).await;
    }
}

/// Complete lines of `path` from `offset` (and how many bytes they take).
fn read_lines_from(path: &std::path::Path, offset: u64) -> std::io::Result<(Vec<u8>, u64)> {
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(e) => return Err(e),
    };
    f.seek(SeekFrom::Start(offset))?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf)?;
    let complete = buf.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    buf.truncate(complete);
    Ok((buf, complete as u64))
}

/// Column where a log message starts: `<24-char timestamp> <tag:6> `.
const LOG_MESSAGE_COLUMN: usize = 32;
/// Indent of a message's continuation lines in `output.log`.
const LOG_CONTINUATION: &str = "                         ";

/// Parse `output.log` lines (see `joblog.rs` for the format): a line that
/// starts with a timestamp opens an entry, indented lines continue it.
fn parse_log(bytes: &[u8]) -> Vec<Update> {
    let text = String::from_utf8_lossy(bytes);
    let mut out: Vec<Update> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix(LOG_CONTINUATION) {
            if let Some(Update {
                event: JobEvent::Log { message, .. },
                ..
            }) = out.last_mut()
            {
                message.push('\n');
                message.push_str(rest);
                continue;
            }
        }
        let ts = line
            .get(..24)
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc));
        let source = line
            .get(25..31)
            .and_then(|t| LogSource::from_tag(t.trim_end()));
        let (Some(ts), Some(source)) = (ts, source) else {
            continue; // not a line the host wrote (never expected)
        };
        out.push(Update {
            ts: Some(ts),
            event: JobEvent::Log {
                source,
                message: line.get(LOG_MESSAGE_COLUMN..).unwrap_or("").to_owned(),
            },
        });
    }
    out
}

fn parse_metrics(bytes: &[u8]) -> Vec<MetricPoint> {
    // A torn last line (host killed mid-write) never reaches here: only
    // complete lines are read; an unparsable one is skipped.
    String::from_utf8_lossy(bytes)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The job's stored items not yet in `seen`, as events (by kind, each in
/// the order stored); `seen` is advanced past them.
fn stored_since(ws: &Workspace, rec: &JobRecord, seen: &mut StoredSeen) -> Vec<JobEvent> {
    use crate::store::{Registry, StoredRecord};
    let ev = |kind, s: &StoredRecord| JobEvent::Stored {
        kind,
        name: s.name.clone(),
        location: s.location.clone(),
        size: s.size,
        blake3: s.blake3.clone(),
    };
    let mut out: Vec<JobEvent> = Vec::new();
    let mut take = |count: &mut u32, items: Vec<JobEvent>| {
        out.extend(
            items
                .into_iter()
                .skip(*count as usize)
                .inspect(|_| *count += 1),
        );
    };
    take(
        &mut seen.artifacts,
        rec.artifacts
            .iter()
            .map(|s| ev(StoredKind::Artifact, s))
            .collect(),
    );
    take(
        &mut seen.checkpoints,
        rec.checkpoints
            .iter()
            .map(|s| ev(StoredKind::Checkpoint, s))
            .collect(),
    );
    take(
        &mut seen.evals,
        rec.evals
            .iter()
            .map(|e| ev(StoredKind::Eval, &e.file))
            .collect(),
    );
    let registry = |kind, reg: Registry, ids: &[String], from: u32| -> Vec<JobEvent> {
        ids.iter()
            .enumerate()
            .map(|(i, id)| {
                if (i as u32) < from {
                    // Skipped by `take`: not read.
                    return JobEvent::Stored {
                        kind,
                        name: String::new(),
                        location: String::new(),
                        size: 0,
                        blake3: String::new(),
                    };
                }
                match ws.registry_files(reg, id) {
                    Some(s) => JobEvent::Stored {
                        kind,
                        name: id.clone(),
                        location: s.location,
                        size: s.size,
                        blake3: s.blake3,
                    },
                    None => JobEvent::Stored {
                        kind,
                        name: id.clone(),
                        location: format!("{}/{id}/files", reg.dir_name()),
                        size: 0,
                        blake3: String::new(),
                    },
                }
            })
            .collect()
    };
    let models = registry(
        StoredKind::Model,
        Registry::Models,
        &rec.models,
        seen.models,
    );
    take(&mut seen.models, models);
    let datasets = registry(
        StoredKind::Dataset,
        Registry::Datasets,
        &rec.datasets,
        seen.datasets,
    );
    take(&mut seen.datasets, datasets);
    out
}

/// Which metric points [`metrics`] returns.
#[derive(Debug, Clone, Default)]
pub struct MetricQuery {
    /// Only these names (all if empty).
    pub names: Vec<String>,
    /// Only points whose step is in this range (points without a step are
    /// left out when a range is given).
    pub steps: Option<RangeInclusive<u64>>,
    /// At most this many points per name (downsampled, see [`downsample`]).
    pub max_points: Option<usize>,
}

/// The job's metric points matching `q`, in the order they were recorded.
pub fn metrics(paths: &JobPaths, q: &MetricQuery) -> std::io::Result<Vec<MetricPoint>> {
    let (bytes, _) = read_lines_from(&paths.metrics(), 0)?;
    let points = parse_metrics(&bytes).into_iter().filter(|p| {
        (q.names.is_empty() || q.names.contains(&p.name))
            && q.steps
                .as_ref()
                .is_none_or(|r| p.step.is_some_and(|s| r.contains(&s)))
    });
    Ok(match q.max_points {
        Some(max) => downsample(points.collect(), max),
        None => points.collect(),
    })
}

/// The last point of each metric, sorted by name (a missing file: none;
/// an unparsable or torn line is skipped).
pub fn final_metrics(paths: &JobPaths) -> std::io::Result<Vec<MetricPoint>> {
    let (bytes, _) = read_lines_from(&paths.metrics(), 0)?;
    let last: BTreeMap<String, MetricPoint> = parse_metrics(&bytes)
        .into_iter()
        .map(|p| (p.name.clone(), p))
        .collect();
    Ok(last.into_values().collect())
}

/// At most `max` points per metric name for a chart: each name's series is
/// cut into `max / 2` buckets and each bucket keeps its lowest and highest
/// point (in order), so spikes survive; the first and last points are
/// always kept. Series already short enough are returned whole.
pub fn downsample(points: Vec<MetricPoint>, max: usize) -> Vec<MetricPoint> {
    let max = max.max(2);
    let mut by_name: BTreeMap<String, Vec<(usize, MetricPoint)>> = BTreeMap::new();
    for (i, p) in points.into_iter().enumerate() {
        by_name.entry(p.name.clone()).or_default().push((i, p));
    }
    let mut kept: Vec<(usize, MetricPoint)> = Vec::new();
    for (_, series) in by_name {
        if series.len() <= max {
            kept.extend(series);
            continue;
        }
        let buckets = max / 2;
        let per = series.len().div_ceil(buckets);
        for chunk in series.chunks(per) {
            let lo = chunk
                .iter()
                .min_by(|a, b| a.1.value.total_cmp(&b.1.value))
                .expect("non-empty");
            let hi = chunk
                .iter()
                .max_by(|a, b| a.1.value.total_cmp(&b.1.value))
                .expect("non-empty");
            let (first, second) = if lo.0 <= hi.0 { (lo, hi) } else { (hi, lo) };
            kept.push(first.clone());
            if second.0 != first.0 {
                kept.push(second.clone());
            }
        }
        let (first, last) = (series.first().expect("long"), series.last().expect("long"));
        for end in [first, last] {
            if !kept.iter().any(|(i, _)| *i == end.0) {
                kept.push(end.clone());
            }
        }
    }
    kept.sort_by_key(|(i, _)| *i);
    kept.into_iter().map(|(_, p)| p).collect()
}

/// How long a job has run and, while it runs, when it should end judging
/// by its progress so far.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Timing {
    #[serde(with = "secs")]
    pub elapsed: Duration,
    #[serde(with = "opt_secs", skip_serializing_if = "Option::is_none")]
    pub eta: Option<Duration>,
}

/// [`Timing`] of `rec` at `now`.
pub fn timing(rec: &JobRecord, now: DateTime<Utc>) -> Timing {
    let start = rec.started_at.unwrap_or(rec.created_at);
    let end = rec.ended_at.unwrap_or(now);
    let elapsed = (end - start).to_std().unwrap_or_default();
    let eta = (rec.status == JobStatus::Running && rec.progress > 0.0 && rec.progress < 100.0)
        .then(|| elapsed.mul_f64(f64::from(100.0 - rec.progress) / f64::from(rec.progress)));
    Timing { elapsed, eta }
}

mod secs {
    pub fn serialize<S: serde::Serializer>(
        d: &std::time::Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
}

mod opt_secs {
    pub fn serialize<S: serde::Serializer>(
        d: &Option<std::time::Duration>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_f64(d.as_secs_f64()),
            None => s.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(name: &str, step: u64, value: f64) -> MetricPoint {
        MetricPoint {
            name: name.into(),
            value,
            step: Some(step),
            ts: Utc::now(),
        }
    }

    #[test]
    fn final_metrics_keeps_each_names_last_point_and_skips_torn_lines() {
        let t = tempfile::tempdir().unwrap();
        let paths = JobPaths {
            dir: t.path().to_owned(),
        };
        assert!(final_metrics(&paths).unwrap().is_empty(), "no file: none");
        let line = |name: &str, value: f64, step: u64| {
            serde_json::to_string(&MetricPoint {
                name: name.into(),
                value,
                step: Some(step),
                ts: Utc::now(),
            })
            .unwrap()
        };
        let text = [
            line("loss", 0.9, 1),
            line("acc", 0.5, 1),
            line("loss", 0.4, 2),
            "{\"name\":\"loss\",\"va".to_owned(),
        ]
        .join("\n");
        std::fs::write(paths.metrics(), text).unwrap();
        let got: Vec<(String, f64, Option<u64>)> = final_metrics(&paths)
            .unwrap()
            .into_iter()
            .map(|p| (p.name, p.value, p.step))
            .collect();
        assert_eq!(
            got,
            [("acc".into(), 0.5, Some(1)), ("loss".into(), 0.4, Some(2))]
        );
    }

    #[test]
    fn log_lines_are_parsed_back_with_their_continuations() {
        let log = "2026-12-02T09:05:26.147Z INFO   hello\n\
                   2026-12-02T09:05:26.148Z STDOUT two\n                         lines\n\
                   2026-12-02T09:05:26.149Z HOST   job ended COMPLETE: done\n";
        let u = parse_log(log.as_bytes());
        let msgs: Vec<(String, String)> = u
            .iter()
            .map(|u| match &u.event {
                JobEvent::Log { source, message } => (source.tag().to_owned(), message.clone()),
                e => panic!("{e:?}"),
            })
            .collect();
        assert_eq!(
            msgs,
            [
                ("INFO".into(), "hello".into()),
                ("STDOUT".into(), "two\nlines".into()),
                ("HOST".into(), "job ended COMPLETE: done".into())
            ]
        );
        assert_eq!(
            u[0].ts
                .unwrap()
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "2026-12-02T09:05:26.147Z"
        );
    }

    #[test]
    fn only_complete_lines_are_read_and_the_cursor_resumes() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("m.jsonl");
        std::fs::write(&p, "{\"a\":1}\n{\"b\":").unwrap();
        let (bytes, n) = read_lines_from(&p, 0).unwrap();
        assert_eq!((bytes.as_slice(), n), (&b"{\"a\":1}\n"[..], 8));
        let (bytes, n) = read_lines_from(&p, 8).unwrap();
        assert_eq!((bytes.len(), n), (0, 0));
        assert_eq!(read_lines_from(&t.path().join("none"), 0).unwrap().1, 0);
    }

    #[test]
    fn downsampling_keeps_the_ends_and_the_spikes() {
        let mut pts: Vec<MetricPoint> = (0..1000).map(|i| point("loss", i, 1.0)).collect();
        pts[500].value = 9.0;
        pts.push(point("acc", 0, 0.5));
        let d = downsample(pts, 20);
        let loss: Vec<&MetricPoint> = d.iter().filter(|p| p.name == "loss").collect();
        assert!(loss.len() <= 22, "{}", loss.len());
        assert_eq!(loss.first().unwrap().step, Some(0));
        assert_eq!(loss.last().unwrap().step, Some(999));
        assert!(loss.iter().any(|p| p.value == 9.0));
        assert!(loss.windows(2).all(|w| w[0].step < w[1].step));
        assert_eq!(d.iter().filter(|p| p.name == "acc").count(), 1);
    }

    #[test]
    fn eta_from_progress() {
        let now = Utc::now();
        let rec: JobRecord = serde_json::from_value(serde_json::json!({
            "schema": 1, "id": "j", "experiment": "e", "status": "RUNNING", "message": null,
            "plugin": {"path": "p", "blake3": "b", "name": "n", "version": "1", "kind": "other"},
            "config": {}, "sandbox": {"grants": {"datasets": [], "models": [], "dirs": [], "env": []},
              "limits": {"timeout": 60.0, "grace": 1.0, "memory_bytes": 1, "log_bytes": 1,
                         "stored_bytes": 1, "stored_files": 1}},
            "resume": null, "created_at": (now - chrono::Duration::seconds(10)).to_rfc3339(),
            "started_at": (now - chrono::Duration::seconds(10)).to_rfc3339(), "ended_at": null,
            "progress": 25.0, "stage": null, "scores": {}, "artifacts": [], "checkpoints": [],
            "models": [], "datasets": [], "evals": [], "log_bytes": 0, "log_truncated": false,
            "host_pid": 1, "host_version": "0"
        }))
        .unwrap();
        let t = timing(&rec, now);
        assert_eq!(t.elapsed.as_secs(), 10);
        assert_eq!(t.eta.unwrap().as_secs(), 30);
    }
}

/// A query over one eval table's rows (`EvalRecord`): a text search, a
/// score range, a sort and a page.
#[derive(Debug, Clone, Default)]
pub struct EvalQuery {
    /// Rows whose input, output or expected output contain this text.
    pub search: Option<String>,
    pub min_score: Option<f64>,
    pub max_score: Option<f64>,
    /// A column to sort by (`score`, `input`, an extra column…), and
    /// whether descending; file order when none.
    pub sort: Option<(String, bool)>,
    pub offset: usize,
    pub limit: usize,
}

/// Rows of an eval table as JSON objects (`input`, `output`,
/// `expected_output`, `score` and the extra columns), filtered, sorted and
/// paged: `(rows matching before paging, the page)`.
pub fn eval_rows(
    ws: &Workspace,
    eval: &crate::store::EvalRecord,
    q: &EvalQuery,
) -> anyhow::Result<(usize, Vec<serde_json::Value>)> {
    use serde_json::Value;
    let path = ws.root().join(&eval.file.location);
    let mut rows: Vec<serde_json::Map<String, Value>> = Vec::new();
    if path.extension().is_some_and(|e| e == "csv") {
        let mut r = csv::Reader::from_path(&path)?;
        let header = r.headers()?.clone();
        for rec in r.records() {
            let rec = rec?;
            let mut obj = serde_json::Map::new();
            for (k, v) in header.iter().zip(rec.iter()) {
                let value = if k == "score" {
                    v.parse::<f64>().map(Value::from).unwrap_or(Value::Null)
                } else if k == "expected_output" && v.is_empty() {
                    Value::Null
                } else {
                    Value::from(v)
                };
                obj.insert(k.to_owned(), value);
            }
            rows.push(obj);
        }
    } else {
        for line in std::fs::read_to_string(&path)?.lines() {
            if let Value::Object(o) = serde_json::from_str(line)? {
                rows.push(o);
            }
        }
    }
    let text = |o: &serde_json::Map<String, Value>, k: &str| {
        o.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let score = |o: &serde_json::Map<String, Value>| o.get("score").and_then(Value::as_f64);
    rows.retain(|o| {
        q.search.as_ref().is_none_or(|s| {
            ["input", "output", "expected_output"]
                .iter()
                .any(|k| text(o, k).contains(s.as_str()))
        }) && q.min_score.is_none_or(|m| score(o).is_some_and(|v| v >= m))
            && q.max_score.is_none_or(|m| score(o).is_some_and(|v| v <= m))
    });
    if let Some((col, desc)) = &q.sort {
        // Missing and empty first, then numbers (also numbers written as
        // text, as CSV has them), then other text: the same order for a
        // table saved as CSV or as JSON lines.
        let key = |o: &serde_json::Map<String, Value>| -> (u8, f64, String) {
            match o.get(col) {
                None | Some(Value::Null) => (0, 0.0, String::new()),
                Some(Value::Number(n)) => (1, n.as_f64().unwrap_or(0.0), String::new()),
                Some(Value::String(s)) if s.is_empty() => (0, 0.0, String::new()),
                Some(Value::String(s)) => match s.parse::<f64>() {
                    Ok(f) => (1, f, String::new()),
                    Err(_) => (2, 0.0, s.clone()),
                },
                Some(other) => (2, 0.0, other.to_string()),
            }
        };
        rows.sort_by(|a, b| {
            let (a, b) = (key(a), key(b));
            let ord = a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)).then(a.2.cmp(&b.2));
            if *desc {
                ord.reverse()
            } else {
                ord
            }
        });
    }
    let total = rows.len();
    let page = rows
        .into_iter()
        .skip(q.offset)
        .take(q.limit)
        .map(Value::Object)
        .collect();
    Ok((total, page))
}
