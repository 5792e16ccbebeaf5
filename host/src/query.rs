//! Job queries: filters, sorting and paging over the workspace's jobs
//! (`labhost jobs --status failed --plugin trainer --since 1h --sort -created`).
//!
//! [`JobQuery::run`] answers from the job index ([`index`]): the fields
//! queries look at, for every job, kept in memory and in a cache file, so a
//! page of 50 reads 50 records however many jobs the workspace holds. The
//! records stay the source of truth; `LABHOST_JOB_INDEX=off` reads them all
//! instead.

pub mod index;

use std::cmp::Ordering;
use std::str::FromStr;

use anyhow::{bail, Context};
use chrono::{DateTime, NaiveDate, Utc};

use crate::store::{read_json_opt, JobRecord, JobStatus, Unreadable, Workspace};
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

/// A query as a front end receives it (a URL's query string, keyword
/// arguments): the same fields as [`JobQuery`], as text. [`Self::parse`]
/// checks them all the way `labhost jobs` does.
#[derive(Debug, Clone, Default)]
pub struct JobQueryText {
    /// Statuses, each `running`, `failed`...; a part may hold several,
    /// comma-separated.
    pub statuses: Vec<String>,
    pub experiment: Option<String>,
    pub plugin: Option<String>,
    pub pipeline: Option<String>,
    /// RFC 3339, YYYY-MM-DD or an age (`2h`).
    pub since: Option<String>,
    pub until: Option<String>,
    /// `created`, `-duration`...
    pub sort: Option<String>,
    pub offset: usize,
    pub limit: Option<usize>,
}

impl JobQueryText {
    pub fn parse(self) -> anyhow::Result<JobQuery> {
        let statuses = self
            .statuses
            .iter()
            .flat_map(|s| s.split(','))
            .filter(|s| !s.is_empty())
            .map(parse_status)
            .collect::<anyhow::Result<_>>()?;
        Ok(JobQuery {
            statuses,
            experiment: self.experiment,
            plugin: self.plugin,
            pipeline: self.pipeline,
            since: self.since.as_deref().map(parse_time).transpose()?,
            until: self.until.as_deref().map(parse_time).transpose()?,
            sort: self
                .sort
                .as_deref()
                .map(str::parse)
                .transpose()?
                .unwrap_or_default(),
            offset: self.offset,
            limit: self.limit,
        })
    }
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

/// What a query looks at in a job: a whole record, or its index key.
pub trait JobFields {
    fn id(&self) -> &str;
    /// The experiment the record names.
    fn experiment(&self) -> &str;
    fn status(&self) -> JobStatus;
    fn plugin_name(&self) -> &str;
    fn plugin_path(&self) -> &str;
    fn pipeline_run(&self) -> Option<&str>;
    fn created_at(&self) -> DateTime<Utc>;
    fn started_at(&self) -> Option<DateTime<Utc>>;
    fn ended_at(&self) -> Option<DateTime<Utc>>;
    fn progress(&self) -> f32;
}

impl JobFields for JobRecord {
    fn id(&self) -> &str {
        &self.id
    }
    fn experiment(&self) -> &str {
        &self.experiment
    }
    fn status(&self) -> JobStatus {
        self.status
    }
    fn plugin_name(&self) -> &str {
        &self.plugin.name
    }
    fn plugin_path(&self) -> &str {
        &self.plugin.path
    }
    fn pipeline_run(&self) -> Option<&str> {
        self.pipeline.as_ref().map(|p| p.run.as_str())
    }
    fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }
    fn started_at(&self) -> Option<DateTime<Utc>> {
        self.started_at
    }
    fn ended_at(&self) -> Option<DateTime<Utc>> {
        self.ended_at
    }
    fn progress(&self) -> f32 {
        self.progress
    }
}

/// Whether `LABHOST_JOB_INDEX` leaves the job index on (anything but
/// `off`, `0` or `false`).
pub fn index_enabled() -> bool {
    !matches!(
        std::env::var("LABHOST_JOB_INDEX").as_deref(),
        Ok("off" | "0" | "false")
    )
}

impl JobQuery {
    pub fn matches(&self, j: &(impl JobFields + ?Sized)) -> bool {
        (self.statuses.is_empty() || self.statuses.contains(&j.status()))
            && self.experiment.as_ref().is_none_or(|e| j.experiment() == e)
            && self
                .plugin
                .as_ref()
                .is_none_or(|p| j.plugin_name() == p || j.plugin_path().contains(p.as_str()))
            && self.pipeline.as_ref().is_none_or(|p| {
                j.pipeline_run()
                    .is_some_and(|r| r == p || r.starts_with(p.as_str()))
            })
            && self.since.is_none_or(|t| j.created_at() >= t)
            && self.until.is_none_or(|t| j.created_at() < t)
    }

    /// The order of the results: the sort key, then creation time and id,
    /// reversed when descending; `now` ends the duration of unended jobs.
    pub fn compare(
        &self,
        a: &(impl JobFields + ?Sized),
        b: &(impl JobFields + ?Sized),
        now: DateTime<Utc>,
    ) -> Ordering {
        let duration = |start: DateTime<Utc>, end: Option<DateTime<Utc>>| {
            (end.unwrap_or(now) - start).num_milliseconds()
        };
        let ord = match self.sort.key {
            SortKey::Created => a.created_at().cmp(&b.created_at()),
            SortKey::Ended => a.ended_at().cmp(&b.ended_at()),
            SortKey::Duration => duration(a.started_at().unwrap_or(a.created_at()), a.ended_at())
                .cmp(&duration(
                    b.started_at().unwrap_or(b.created_at()),
                    b.ended_at(),
                )),
            SortKey::Status => a.status().as_str().cmp(b.status().as_str()),
            SortKey::Plugin => a.plugin_name().cmp(b.plugin_name()),
            SortKey::Progress => a.progress().total_cmp(&b.progress()),
        };
        let ord = ord
            .then_with(|| a.created_at().cmp(&b.created_at()))
            .then_with(|| a.id().cmp(b.id()));
        if self.sort.descending {
            ord.reverse()
        } else {
            ord
        }
    }

    /// Filter, sort and page `jobs` (in the order [`Workspace::jobs`]
    /// gives them: ties keep it).
    pub fn apply(&self, jobs: Vec<JobRecord>) -> Page {
        let mut jobs: Vec<JobRecord> = jobs.into_iter().filter(|j| self.matches(j)).collect();
        let now = Utc::now();
        jobs.sort_by(|a, b| self.compare(a, b, now));
        let total = jobs.len();
        let jobs = jobs
            .into_iter()
            .skip(self.offset)
            .take(self.limit.unwrap_or(usize::MAX))
            .collect();
        Page { total, jobs }
    }

    /// Run the query over the workspace: from the job index (the page's
    /// records read from their files), or, with `LABHOST_JOB_INDEX=off`,
    /// over every record.
    pub fn run(&self, ws: &Workspace) -> anyhow::Result<Page> {
        if !index_enabled() {
            return Ok(self.apply(ws.jobs(self.experiment.as_deref())?));
        }
        let (total, page) = index::with(ws, |idx| {
            let (total, keys) = idx.select(self);
            let page: Vec<(String, String)> = keys
                .iter()
                .map(|k| (k.dir().to_owned(), k.id.clone()))
                .collect();
            (total, page)
        })?;
        let mut jobs = Vec::with_capacity(page.len());
        let mut gone = Vec::new();
        for (dir, id) in page {
            // The record is the truth: read now, not from the index.
            match read_json_opt::<JobRecord>(&ws.job_paths(&dir, &id).record()) {
                Ok(Some(rec)) => jobs.push(rec),
                // Removed or broken since the index read it: left out of
                // this page; the index reads it again next time.
                _ => gone.push((dir, id)),
            }
        }
        if !gone.is_empty() {
            index::with_cached(ws, |idx| {
                for (dir, id) in &gone {
                    idx.forget(dir, id);
                }
            });
        }
        Ok(Page { total, jobs })
    }
}

/// The job records that exist but cannot be read (queries skip them), in
/// workspace order.
pub fn unreadable_jobs(ws: &Workspace) -> anyhow::Result<Vec<Unreadable>> {
    if !index_enabled() {
        return Ok(ws.scan_jobs(None)?.unreadable);
    }
    index::with(ws, |idx| idx.unreadable())
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
