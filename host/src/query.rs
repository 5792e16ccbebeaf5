//! Job queries: filters, sorting and paging over the workspace's jobs
//! (`labhost jobs --status failed --plugin trainer --since 1h --sort -created`).

use std::str::FromStr;

use anyhow::{bail, Context};
use chrono::{DateTime, NaiveDate, Utc};

use crate::store::{JobRecord, JobStatus, Workspace};
use crate::units::parse_duration;

/// Which jobs, in which order, which page.
#[derive(Debug, Clone, Default)]
pub struct JobQuery {
    /// Any of these statuses (empty: all).
    pub statuses: Vec<JobStatus>,
    pub experiment: Option<String>,
    /// Plugin name as it describes itself, or a part of its path.
    pub plugin: Option<String>,
    /// Jobs of this pipeline run (id or unique prefix).
    pub pipeline: Option<String>,
    /// Created at or after.
    pub since: Option<DateTime<Utc>>,
    /// Created before.
    pub until: Option<DateTime<Utc>>,
    /// Default: newest first.
    pub sort: Sort,
    pub offset: usize,
    pub limit: Option<usize>,
}

/// A sort key and direction (`created`, `-duration`...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    pub key: SortKey,
    pub descending: bool,
}

/// Newest first (`-created`), like `docker ps` and `gh run list`.
impl Default for Sort {
    fn default() -> Self {
        Sort {
            key: SortKey::Created,
            descending: true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Created,
    Ended,
    Duration,
    Status,
    Plugin,
    Progress,
}

impl FromStr for Sort {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Sort> {
        let (descending, name) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let key = match name {
            "created" => SortKey::Created,
            "ended" => SortKey::Ended,
            "duration" => SortKey::Duration,
            "status" => SortKey::Status,
            "plugin" => SortKey::Plugin,
            "progress" => SortKey::Progress,
            _ => bail!(
                "invalid sort `{s}`: use created, ended, duration, status, plugin or progress (prefix - for descending)"
            ),
        };
        Ok(Sort { key, descending })
    }
}

/// A status name, any case.
pub fn parse_status(s: &str) -> anyhow::Result<JobStatus> {
    let all = [
        JobStatus::Queued,
        JobStatus::Running,
        JobStatus::Complete,
        JobStatus::Failed,
        JobStatus::Cancelled,
        JobStatus::Interrupted,
    ];
    all.into_iter()
        .find(|st| st.as_str().eq_ignore_ascii_case(s))
        .with_context(|| {
            format!("invalid status `{s}`: use queued, running, complete, failed, cancelled or interrupted")
        })
}

/// A point in time: RFC 3339 (`2026-11-23T18:00:00Z`), a date
/// (`2026-11-23`, midnight UTC), or an age (`90m`, `2h`: that long ago).
pub fn parse_time(s: &str) -> anyhow::Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).expect("midnight").and_utc());
    }
    match parse_duration(s) {
        Ok(age) => Ok(Utc::now() - chrono::Duration::from_std(age)?),
        Err(_) => bail!("invalid time `{s}`: expected RFC 3339, YYYY-MM-DD or an age like 2h"),
    }
}

/// One page of a query's results.
#[derive(Debug, Clone)]
pub struct Page {
    /// Jobs matching the filters, before paging.
    pub total: usize,
    pub jobs: Vec<JobRecord>,
}

impl JobQuery {
    pub fn matches(&self, j: &JobRecord) -> bool {
        (self.statuses.is_empty() || self.statuses.contains(&j.status))
            && self.experiment.as_ref().is_none_or(|e| &j.experiment == e)
            && self
                .plugin
                .as_ref()
                .is_none_or(|p| &j.plugin.name == p || j.plugin.path.contains(p.as_str()))
            && self.pipeline.as_ref().is_none_or(|p| {
                j.pipeline
                    .as_ref()
                    .is_some_and(|r| r.run == *p || r.run.starts_with(p.as_str()))
            })
            && self.since.is_none_or(|t| j.created_at >= t)
            && self.until.is_none_or(|t| j.created_at < t)
    }

    /// Filter, sort and page `jobs`.
    pub fn apply(&self, jobs: Vec<JobRecord>) -> Page {
        let mut jobs: Vec<JobRecord> = jobs.into_iter().filter(|j| self.matches(j)).collect();
        let now = Utc::now();
        let duration = |j: &JobRecord| {
            let start = j.started_at.unwrap_or(j.created_at);
            (j.ended_at.unwrap_or(now) - start).num_milliseconds()
        };
        jobs.sort_by(|a, b| {
            let ord = match self.sort.key {
                SortKey::Created => a.created_at.cmp(&b.created_at),
                SortKey::Ended => a.ended_at.cmp(&b.ended_at),
                SortKey::Duration => duration(a).cmp(&duration(b)),
                SortKey::Status => a.status.as_str().cmp(b.status.as_str()),
                SortKey::Plugin => a.plugin.name.cmp(&b.plugin.name),
                SortKey::Progress => a.progress.total_cmp(&b.progress),
            };
            let ord = ord
                .then(a.created_at.cmp(&b.created_at))
                .then(a.id.cmp(&b.id));
            if self.sort.descending {
                ord.reverse()
            } else {
                ord
            }
        });
        let total = jobs.len();
        let jobs = jobs
            .into_iter()
            .skip(self.offset)
            .take(self.limit.unwrap_or(usize::MAX))
            .collect();
        Page { total, jobs }
    }

    /// Run the query over the workspace.
    pub fn run(&self, ws: &Workspace) -> anyhow::Result<Page> {
        Ok(self.apply(ws.jobs(self.experiment.as_deref())?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        assert_eq!(
            "-duration".parse::<Sort>().unwrap(),
            Sort {
                key: SortKey::Duration,
                descending: true
            }
        );
        assert!("size".parse::<Sort>().is_err());
        assert_eq!(Sort::default(), "-created".parse::<Sort>().unwrap());
        assert!(!"created".parse::<Sort>().unwrap().descending);
        assert_eq!(parse_status("failed").unwrap(), JobStatus::Failed);
        assert!(parse_status("broken").is_err());
        let t = parse_time("2026-11-23").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-23T00:00:00+00:00");
        let ago = parse_time("2h").unwrap();
        assert!((Utc::now() - ago).num_minutes() >= 119);
        assert!(parse_time("yesterday").is_err());
    }
}
