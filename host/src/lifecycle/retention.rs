//! Checkpoint retention: keep the newest N checkpoints of a job and the
//! best one by a named metric (`keep-checkpoints`, `keep-best` in the
//! limits table), deleting the others as new ones are saved.
//!
//! A checkpoint's score is the latest value of the `keep-best` metric when
//! it was saved. [`select`] is the pure decision; [`apply`] runs it in the
//! job after each save: under the workspace's exclusive lifecycle lock (so
//! no job can be starting from a checkpoint it removes), never deleting a
//! checkpoint a running job resumes from (its pin, see [`super::pins`]),
//! the record rewritten first, then the checkpoints moved to the trash and
//! removed, and their bytes and files given back to the job's quota.

use std::collections::{BTreeSet, HashMap};
use std::str::FromStr;

use anyhow::bail;
use serde::{Deserialize, Serialize};

use crate::error::{CallError, CallResult};
use crate::job::JobCtx;
use crate::store::ingest::ENTRY_BYTES;
use crate::store::StoredRecord;

/// Which way is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Goal {
    Min,
    Max,
}

/// `keep-best`: a metric name and whether lower or higher is better.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeepBest {
    pub metric: String,
    pub goal: Goal,
}

impl KeepBest {
    /// A setting's text: `METRIC:min`, `METRIC:max`, or `none` (unset).
    pub fn parse_setting(s: &str) -> anyhow::Result<Option<KeepBest>> {
        let t = s.trim();
        if t.is_empty() || t == "none" {
            return Ok(None);
        }
        t.parse().map(Some)
    }
    /// Whether `a` is better than `b` (ties are not better).
    fn better(&self, a: f64, b: f64) -> bool {
        match self.goal {
            Goal::Min => a < b,
            Goal::Max => a > b,
        }
    }
}

impl FromStr for KeepBest {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        let shown = crate::text::for_terminal_line(s);
        let Some((metric, goal)) = s.trim().rsplit_once(':') else {
            bail!("invalid keep-best `{shown}`: expected METRIC:min or METRIC:max");
        };
        let goal = match goal {
            "min" => Goal::Min,
            "max" => Goal::Max,
            _ => bail!("invalid keep-best `{shown}`: expected METRIC:min or METRIC:max"),
        };
        crate::names::check_name("metric", metric)
            .map_err(|e| anyhow::anyhow!("invalid keep-best `{shown}`: {e}"))?;
        Ok(KeepBest {
            metric: metric.to_owned(),
            goal,
        })
    }
}

impl std::fmt::Display for KeepBest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let goal = match self.goal {
            Goal::Min => "min",
            Goal::Max => "max",
        };
        write!(f, "{}:{goal}", self.metric)
    }
}

/// `Option<KeepBest>` in records: its text, or null.
pub mod keep_best_plain {
    use super::KeepBest;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<KeepBest>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(k) => s.serialize_str(&k.to_string()),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<KeepBest>, D::Error> {
        match Option::<String>::deserialize(d)? {
            Some(t) => KeepBest::parse_setting(&t).map_err(serde::de::Error::custom),
            None => Ok(None),
        }
    }
}

/// `keep-best` in settings and pipeline files: `"METRIC:min"`, or
/// `"none"` to unset one a lower layer set.
pub mod keep_best_opt {
    use super::KeepBest;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Option<KeepBest>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(Some(k)) => s.serialize_str(&k.to_string()),
            Some(None) => s.serialize_str("none"),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<KeepBest>>, D::Error> {
        let t = String::deserialize(d)?;
        KeepBest::parse_setting(&t)
            .map(Some)
            .map_err(serde::de::Error::custom)
    }
}

/// One checkpoint as retention sees it: its name and its score (the
/// metric's latest value when it was saved; `None`: no value yet).
#[derive(Debug, Clone, PartialEq)]
pub struct Scored<'a> {
    pub name: &'a str,
    pub score: Option<f64>,
}

/// Which checkpoints (oldest first) to delete: all but the newest
/// `keep_last`, the best by `best` (the newest of equal scores), and the
/// `protected` ones. `keep_last` 0 keeps everything.
pub fn select(
    checkpoints: &[Scored<'_>],
    keep_last: u64,
    best: Option<&KeepBest>,
    protected: &BTreeSet<String>,
) -> Vec<usize> {
    if keep_last == 0 {
        return Vec::new();
    }
    let n = checkpoints.len();
    let first_kept = n.saturating_sub(usize::try_from(keep_last).unwrap_or(usize::MAX));
    let mut best_at: Option<(usize, f64)> = None;
    if let Some(b) = best {
        for (i, c) in checkpoints.iter().enumerate() {
            if let Some(s) = c.score {
                if best_at.is_none_or(|(_, top)| !b.better(top, s)) {
                    best_at = Some((i, s));
                }
            }
        }
    }
    (0..first_kept)
        .filter(|&i| best_at.is_none_or(|(b, _)| b != i))
        .filter(|&i| !protected.contains(checkpoints[i].name))
        .collect()
}

/// What a job remembers for retention: the latest value of the
/// `keep-best` metric, and each checkpoint's score when it was saved.
#[derive(Debug, Default)]
pub struct Scores {
    latest: Option<f64>,
    at_save: HashMap<String, f64>,
}

impl Scores {
    /// A metric point was recorded.
    pub fn observe(&mut self, best: Option<&KeepBest>, name: &str, value: f64) {
        if best.is_some_and(|b| b.metric == name) {
            self.latest = Some(value);
        }
    }
    /// A checkpoint was saved: it scores the latest value.
    pub fn saved(&mut self, checkpoint: &str) {
        if let Some(v) = self.latest {
            self.at_save.insert(checkpoint.to_owned(), v);
        }
    }
}

/// Bytes and files a stored item was charged (what its deletion gives back).
fn charged(s: &StoredRecord) -> (u64, u64) {
    let entries: u64 = if s.is_dir {
        s.files
            .iter()
            .map(|f| ENTRY_BYTES + f.path.len() as u64)
            .sum()
    } else {
        0
    };
    (s.size + entries, s.files.len() as u64)
}

/// Apply the job's retention policy after a checkpoint was saved.
pub(crate) fn apply(job: &mut JobCtx) -> CallResult<()> {
    let limits = &job.record.sandbox.limits;
    let keep_last = limits.keep_checkpoints;
    if keep_last == 0 || job.record.checkpoints.len() as u64 <= keep_last {
        return Ok(());
    }
    let best = limits.keep_best.clone();
    let io =
        |what: &str, e: std::io::Error| CallError::Io(format!("checkpoint retention: {what}: {e}"));
    let lock = super::lock(&job.ws, super::LockMode::Exclusive).map_err(|e| io("locking", e))?;
    let protected = super::pins::protected(&job.ws, &job.paths);
    let scored: Vec<Scored<'_>> = job
        .record
        .checkpoints
        .iter()
        .map(|c| Scored {
            name: &c.name,
            score: job.retention.at_save.get(&c.name).copied(),
        })
        .collect();
    let doomed = select(&scored, keep_last, best.as_ref(), &protected);
    if doomed.is_empty() {
        return Ok(());
    }
    let mut removed = Vec::new();
    for i in doomed.into_iter().rev() {
        removed.push(job.record.checkpoints.remove(i));
    }
    removed.reverse();
    // The record first: a crash after it leaves an unlisted directory
    // (`labhost gc` removes it), never a listed checkpoint that is gone.
    job.snapshot(true)?;
    let mut trashed = Vec::new();
    for c in &removed {
        let path = job.ws.root().join(&c.location);
        match job.ws.move_to_trash(&path) {
            Ok(Some(t)) => trashed.push(t),
            Ok(None) => {}
            Err(e) => return Err(io(&format!("moving `{}` to the trash", c.name), e)),
        }
        let (bytes, files) = charged(c);
        let q = &mut job.quota;
        q.bytes_left = q.bytes_left.saturating_add(bytes).min(q.bytes_limit);
        q.files_left = q.files_left.saturating_add(files).min(q.files_limit);
        job.retention.at_save.remove(&c.name);
    }
    drop(lock);
    for t in trashed {
        let _ = crate::store::tree::remove_tree(&t);
    }
    let policy = match &best {
        Some(b) => format!("keep-checkpoints {keep_last}, keep-best {b}"),
        None => format!("keep-checkpoints {keep_last}"),
    };
    let names: Vec<String> = removed.iter().map(|c| format!("`{}`", c.name)).collect();
    job.host_log(&format!(
        "retention ({policy}): deleted checkpoint(s) {} ({} freed)",
        names.join(", "),
        crate::units::human_bytes(removed.iter().map(|c| c.size).sum())
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(all: &[Scored<'_>], picked: Vec<usize>) -> Vec<String> {
        picked.into_iter().map(|i| all[i].name.to_owned()).collect()
    }

    fn run(scores: &[Option<f64>], keep: u64, best: Option<&str>, protect: &[&str]) -> Vec<String> {
        let labels: Vec<String> = (1..=scores.len()).map(|i| format!("c{i}")).collect();
        let all: Vec<Scored<'_>> = labels
            .iter()
            .zip(scores)
            .map(|(n, s)| Scored { name: n, score: *s })
            .collect();
        let best = best.map(|b| b.parse::<KeepBest>().unwrap());
        let protected = protect.iter().map(|s| s.to_string()).collect();
        names(&all, select(&all, keep, best.as_ref(), &protected))
    }

    #[test]
    fn keeps_the_newest_n_and_the_best() {
        let s = [Some(0.9), Some(0.5), Some(0.7), Some(0.6), Some(0.8)];
        assert_eq!(run(&s, 2, None, &[]), ["c1", "c2", "c3"]);
        assert_eq!(run(&s, 2, Some("loss:min"), &[]), ["c1", "c3"]);
        assert_eq!(run(&s, 2, Some("acc:max"), &[]), ["c2", "c3"]);
        // The best among the newest N costs no extra slot.
        assert_eq!(run(&s, 1, Some("loss:max"), &[]), ["c2", "c3", "c4"]);
        assert_eq!(run(&s, 5, Some("loss:min"), &[]), Vec::<String>::new());
        assert_eq!(run(&s, 9, None, &[]), Vec::<String>::new());
    }

    #[test]
    fn zero_keeps_everything_and_protected_ones_stay() {
        let s = [Some(1.0), Some(2.0), Some(3.0)];
        assert_eq!(run(&s, 0, Some("x:min"), &[]), Vec::<String>::new());
        assert_eq!(run(&s, 1, None, &["c2"]), ["c1"]);
        assert_eq!(run(&s, 1, Some("x:min"), &["c2"]), Vec::<String>::new());
    }

    #[test]
    fn unscored_checkpoints_are_never_best_and_ties_keep_the_newest() {
        let s = [None, Some(0.5), Some(0.5), None, None];
        assert_eq!(run(&s, 1, Some("loss:min"), &[]), ["c1", "c2", "c4"]);
        let none = [None, None, None];
        assert_eq!(run(&none, 1, Some("loss:min"), &[]), ["c1", "c2"]);
    }

    #[test]
    fn keep_best_parses_and_refuses_clearly() {
        let k: KeepBest = "eval_loss:min".parse().unwrap();
        assert_eq!((k.metric.as_str(), k.goal), ("eval_loss", Goal::Min));
        assert_eq!(k.to_string(), "eval_loss:min");
        assert_eq!(KeepBest::parse_setting("none").unwrap(), None);
        for bad in ["eval_loss", "eval_loss:best", ":min"] {
            let e = bad.parse::<KeepBest>().unwrap_err().to_string();
            assert!(e.starts_with(&format!("invalid keep-best `{bad}`")), "{e}");
        }
        assert_eq!(
            "loss:avg".parse::<KeepBest>().unwrap_err().to_string(),
            "invalid keep-best `loss:avg`: expected METRIC:min or METRIC:max"
        );
    }

    #[test]
    fn scores_follow_the_named_metric_only() {
        let best: KeepBest = "loss:min".parse().unwrap();
        let mut s = Scores::default();
        s.saved("c0");
        s.observe(Some(&best), "acc", 0.1);
        s.observe(Some(&best), "loss", 0.7);
        s.saved("c1");
        s.observe(Some(&best), "loss", 0.3);
        s.saved("c2");
        assert_eq!(s.at_save.get("c0"), None);
        assert_eq!(s.at_save["c1"], 0.7);
        assert_eq!(s.at_save["c2"], 0.3);
    }
}
