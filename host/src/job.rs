//! One running job: its record, grants, log and storage, as seen by the lab
//! API implementations (`api/*`). Lives inside the wasmtime `Store`, on the
//! job's own thread; the only state shared with other threads is
//! [`JobControl`] (cancellation) and the log (guest stdio writes to it).

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::sync::broadcast;

use crate::error::{CallError, CallResult};
use crate::events::{JobEvent, LogSource, StoredKind};
use crate::joblog::SharedLog;
use crate::mounts::{self, Mount};
use crate::names::check_name;
use crate::store::digest;
use crate::store::durable::{self, Pending};
use crate::store::ingest::{self, Quota};
use crate::store::{
    JobPaths, JobRecord, JobStatus, MetricPoint, Registry, StoredRecord, Workspace,
};

/// Snapshots of `job.json` are coalesced to at most one per this interval
/// (start, end and checkpoints write at once). Stored files become durable
/// with the snapshot that first lists them (see [`Pending`]).
const SNAPSHOT_EVERY: Duration = Duration::from_millis(200);

/// Why the host interrupted the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interrupt {
    Timeout,
    Cancelled,
    /// The host ended the job (see [`JobControl::abort`]).
    Aborted,
}

/// The job's clock: its hard deadline, the soft one (`should-stop()` turns
/// true) and the grace a cancelled guest gets.
#[derive(Debug, Clone, Copy)]
pub struct Deadlines {
    pub hard: Instant,
    pub soft: Instant,
    pub grace: Duration,
}

impl Deadlines {
    pub fn new(start: Instant, timeout: Duration, grace: Duration) -> Self {
        let hard = start + timeout;
        Deadlines {
            hard,
            soft: hard.checked_sub(grace).unwrap_or(start),
            grace,
        }
    }
}

/// Coalesced snapshots of a large record are spaced so that rewriting it
/// costs at most this many bytes per second.
const SNAPSHOT_BYTES_PER_SEC: usize = 4 << 20;

/// The coalescing interval after writing a record of `len` bytes.
fn snapshot_interval(len: usize) -> Duration {
    SNAPSHOT_EVERY.max(Duration::from_secs_f64(
        len as f64 / SNAPSHOT_BYTES_PER_SEC as f64,
    ))
}

/// Cancellation state, shared with [`crate::JobHandle`], the watcher
/// thread, the epoch callback and the host's long copies.
#[derive(Debug, Default)]
pub struct JobControl {
    stop: AtomicBool,
    cancel_at: Mutex<Option<Instant>>,
    ended: AtomicBool,
    aborted: AtomicBool,
    abort_reason: Mutex<Option<String>>,
    deadlines: std::sync::OnceLock<Deadlines>,
    fired: Mutex<Option<Interrupt>>,
}

impl JobControl {
    /// Ask the job to stop: `should-stop()` turns true now; the guest is
    /// interrupted after the grace period.
    pub fn cancel(&self) {
        self.stop.store(true, Ordering::SeqCst);
        let mut at = self.cancel_at.lock().unwrap_or_else(|e| e.into_inner());
        at.get_or_insert_with(Instant::now);
    }
    /// Make `should-stop()` true without a cancel (e.g. timeout approaching).
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }
    pub fn should_stop(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
    pub fn cancel_requested_at(&self) -> Option<Instant> {
        *self.cancel_at.lock().unwrap_or_else(|e| e.into_inner())
    }
    /// True once the job's final record is written.
    pub fn has_ended(&self) -> bool {
        self.ended.load(Ordering::SeqCst)
    }
    /// End the job now (a host-side limit was hit): the guest is
    /// interrupted at once and the job FAILS with `reason`. First reason wins.
    pub fn abort(&self, reason: String) {
        self.abort_reason
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert(reason);
        self.aborted.store(true, Ordering::SeqCst);
    }
    pub fn is_aborted(&self) -> bool {
        self.aborted.load(Ordering::Relaxed)
    }
    pub fn abort_reason(&self) -> Option<String> {
        self.abort_reason
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
    pub(crate) fn mark_ended(&self) {
        self.ended.store(true, Ordering::SeqCst)
    }
    /// Start the job's clock (once).
    pub(crate) fn start_clock(&self, deadlines: Deadlines) {
        let _ = self.deadlines.set(deadlines);
    }
    /// Whether the guest must be interrupted now, and why. Turns
    /// `should-stop()` true from the soft deadline on. The first interrupt
    /// that fires is remembered ([`JobControl::fired`]) and returned by every
    /// later call: one place decides, whichever part of the host asks (the
    /// epoch callback, the wait on a blocked WASI call, a long host copy).
    pub fn interrupt_due(&self, now: Instant) -> Option<Interrupt> {
        let mut fired = self.fired.lock().unwrap_or_else(|e| e.into_inner());
        if fired.is_some() {
            return *fired;
        }
        let d = self.deadlines.get()?;
        let due = decide_interrupt(now, d, self.is_aborted(), self.cancel_requested_at());
        if now >= d.soft {
            self.request_stop();
        }
        *fired = due;
        due
    }
    /// The interrupt that ended the guest, if one did.
    pub fn fired(&self) -> Option<Interrupt> {
        *self.fired.lock().unwrap_or_else(|e| e.into_inner())
    }
    /// Resolves once [`JobControl::interrupt_due`] says so (polled every
    /// [`INTERRUPT_POLL`]): raced against a guest blocked in a WASI call.
    pub async fn interrupted(&self) -> Interrupt {
        loop {
            if let Some(i) = self.interrupt_due(Instant::now()) {
                return i;
            }
            tokio::time::sleep(INTERRUPT_POLL).await;
        }
    }
}

/// How often a job blocked in a WASI call is checked for an interrupt.
const INTERRUPT_POLL: Duration = Duration::from_millis(20);

/// The pure decision: the deadline first, then a host abort, then a cancel
/// whose grace has run out.
pub fn decide_interrupt(
    now: Instant,
    d: &Deadlines,
    aborted: bool,
    cancel_at: Option<Instant>,
) -> Option<Interrupt> {
    if now >= d.hard {
        Some(Interrupt::Timeout)
    } else if aborted {
        Some(Interrupt::Aborted)
    } else if cancel_at.is_some_and(|at| now >= at + d.grace) {
        Some(Interrupt::Cancelled)
    } else {
        None
    }
}

/// A granted model or dataset: (id, name).
#[derive(Debug, Clone)]
pub struct GrantedEntry {
    pub id: String,
    pub name: String,
}

/// The checkpoint a resumed job starts from.
#[derive(Debug, Clone)]
pub struct ResumeInfo {
    pub job_id: String,
    pub name: String,
    pub guest_path: String,
}

pub struct JobCtx {
    pub ws: Workspace,
    pub paths: JobPaths,
    pub record: JobRecord,
    pub mounts: Vec<Mount>,
    pub config_json: String,
    pub models: Vec<GrantedEntry>,
    pub datasets: Vec<GrantedEntry>,
    pub resume: Option<ResumeInfo>,
    pub quota: Quota,
    pub log: SharedLog,
    pub metrics: BufWriter<File>,
    /// Bytes written to `metrics.jsonl`, against `Limits::metrics_bytes`.
    pub metrics_written: u64,
    /// Stored files not yet fsynced; committed before the next `job.json`.
    pub pending: Pending,
    pub events: broadcast::Sender<JobEvent>,
    pub control: Arc<JobControl>,
    /// Set by the first `finish`/`fail`: terminal and final.
    pub outcome: Option<(JobStatus, String)>,
    /// Secret values: the granted ones and those header templates use.
    pub secrets: crate::secrets::Secrets,
    /// The HTTP client, made at the first request.
    pub http: Option<reqwest::Client>,
    /// What checkpoint retention remembers (`keep-best` scores).
    pub retention: crate::lifecycle::retention::Scores,
    last_snapshot: Instant,
    /// Grows with the record (see [`snapshot_interval`]).
    snapshot_every: Duration,
}

impl JobCtx {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        ws: Workspace,
        paths: JobPaths,
        record: JobRecord,
        mounts: Vec<Mount>,
        models: Vec<GrantedEntry>,
        datasets: Vec<GrantedEntry>,
        resume: Option<ResumeInfo>,
        log: SharedLog,
        events: broadcast::Sender<JobEvent>,
        control: Arc<JobControl>,
    ) -> anyhow::Result<Self> {
        let metrics = BufWriter::new(
            fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(paths.metrics())?,
        );
        let mut quota = Quota::new(
            record.sandbox.limits.stored_bytes,
            record.sandbox.limits.stored_files,
        );
        let ctl = control.clone();
        quota.stop = Some(Arc::new(move || {
            ctl.interrupt_due(Instant::now()).is_some()
        }));
        let config_json = record.config.to_string();
        Ok(JobCtx {
            ws,
            paths,
            record,
            mounts,
            config_json,
            models,
            datasets,
            resume,
            quota,
            log,
            metrics,
            metrics_written: 0,
            pending: Pending::default(),
            events,
            control,
            outcome: None,
            secrets: Default::default(),
            http: None,
            retention: Default::default(),
            last_snapshot: Instant::now() - SNAPSHOT_EVERY,
            snapshot_every: SNAPSHOT_EVERY,
        })
    }

    /// `text` with every secret value redacted (for anything a plugin
    /// hands over for the record, the log or an event).
    pub fn redact(&self, text: String) -> String {
        match self.secrets.redact(&text) {
            std::borrow::Cow::Borrowed(_) => text,
            std::borrow::Cow::Owned(r) => r,
        }
    }

    /// Check a name the plugin gives (artifact, metric, score…): the
    /// naming rules, and no secret value in it (a name lands in records,
    /// paths and events, where it could not be redacted without renaming).
    pub fn check_name(&self, what: &str, name: &str) -> CallResult<()> {
        check_name(what, name).map_err(CallError::Invalid)?;
        if matches!(self.secrets.redact(name), std::borrow::Cow::Owned(_)) {
            return Err(CallError::Invalid(format!(
                "the {what} name contains the value of a secret"
            )));
        }
        Ok(())
    }

    pub fn emit(&self, event: JobEvent) {
        let _ = self.events.send(event);
    }

    pub fn host_log(&self, message: &str) {
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .line(LogSource::Host, message);
    }

    /// Flush log and metrics, make the stored files durable, then write
    /// `job.json` (if `force`, or if the last snapshot is older than
    /// [`SNAPSHOT_EVERY`]).
    pub fn snapshot(&mut self, force: bool) -> CallResult<()> {
        if !force && self.last_snapshot.elapsed() < self.snapshot_every {
            return Ok(());
        }
        // Group commit: the record may only list files that are durable.
        self.pending
            .commit()
            .map_err(|e| CallError::Io(format!("making stored files durable: {e}")))?;
        {
            let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
            log.flush();
            self.record.log_bytes = log.written();
            self.record.log_truncated = log.truncated();
        }
        let _ = self.metrics.flush();
        let bytes =
            serde_json::to_vec_pretty(&self.record).map_err(|e| CallError::Trap(e.into()))?;
        durable::write_atomic(&self.paths.record(), &bytes)
            .map_err(|e| CallError::Io(format!("writing job record: {e}")))?;
        self.last_snapshot = Instant::now();
        self.snapshot_every = snapshot_interval(bytes.len());
        Ok(())
    }

    pub fn record_metric(&mut self, name: &str, value: f64, step: Option<u64>) -> CallResult<()> {
        self.check_name("metric", name)?;
        if !value.is_finite() {
            return Err(CallError::Invalid(format!(
                "metric `{name}`: value must be finite, got {value}"
            )));
        }
        let point = MetricPoint {
            name: name.to_owned(),
            value,
            step,
            ts: Utc::now(),
        };
        let mut line = serde_json::to_vec(&point).map_err(|e| CallError::Trap(e.into()))?;
        line.push(b'\n');
        let limit = self.record.sandbox.limits.metrics_bytes;
        if self.metrics_written + line.len() as u64 > limit {
            return Err(CallError::Limit(format!(
                "metrics limit of {} reached; metric `{name}` not recorded",
                crate::units::human_bytes(limit)
            )));
        }
        self.metrics_written += line.len() as u64;
        self.retention
            .observe(self.record.sandbox.limits.keep_best.as_ref(), name, value);
        self.metrics
            .write_all(&line)
            .map_err(|e| CallError::Io(format!("writing metrics: {e}")))?;
        self.emit(JobEvent::Metric {
            name: name.to_owned(),
            value,
            step,
        });
        // Coalesced: flushes the buffered metrics for readers every 200 ms.
        self.snapshot(false)
    }

    /// Store the guest file/dir at `guest_path` as `name` inside the job
    /// directory `dest_dir` (artifacts/ or checkpoints/).
    pub fn store_guest(
        &mut self,
        kind: StoredKind,
        guest_path: &str,
        name: &str,
        dest_dir: &Path,
    ) -> CallResult<StoredRecord> {
        let noun = kind_noun(kind);
        self.check_name(noun, name)?;
        let dest = dest_dir.join(name);
        if dest.symlink_metadata().is_ok() {
            return Err(CallError::Invalid(format!(
                "{noun} `{name}` already exists in this job"
            )));
        }
        let (mount, rel) = mounts::resolve(&self.mounts, guest_path)?;
        let tmp = durable::temp_sibling(&dest);
        // A refused or failed store is refunded: nothing of it was kept.
        let before = self.quota.clone();
        let copied = ingest::store_from_guest(&mount.dir, &rel, guest_path, &tmp, &mut self.quota)
            .map_err(CallError::from)
            .and_then(|v| {
                durable::publish(&tmp, &dest)
                    .map(|()| v)
                    .map_err(|e| CallError::Io(format!("storing {noun} `{name}`: {e}")))
            });
        let (files, is_dir) = match copied {
            Ok(v) => v,
            Err(e) => {
                durable::discard(&tmp);
                self.quota = before;
                return Err(e);
            }
        };
        self.pending.stored(dest_dir, &dest, &files, is_dir);
        Ok(digest::stored_record(
            name,
            self.ws.relative(&dest),
            files,
            is_dir,
        ))
    }

    /// Store a new model/dataset: `fill` writes the content into the given
    /// (not yet existing) `files/` directory; `record` makes the registry
    /// record from the stored files. Published atomically as `<reg>/<id>/`.
    pub fn store_registry_entry<R: serde::Serialize>(
        &mut self,
        reg: Registry,
        name: &str,
        fill: impl FnOnce(&mut Self, &Path) -> CallResult<(Vec<crate::store::FileEntry>, bool)>,
        record: impl FnOnce(&Self, String, StoredRecord) -> R,
    ) -> CallResult<(String, R)> {
        self.check_name(reg.noun(), name)?;
        let id = format!("{name}-{}", self.record.id);
        let dest = self.ws.registry_dir(reg).join(&id);
        if dest.symlink_metadata().is_ok() {
            return Err(CallError::Invalid(format!(
                "{} `{name}` was already saved by this job (id {id})",
                reg.noun()
            )));
        }
        let tmp = durable::temp_sibling(&dest);
        let before = self.quota.clone();
        let result = (|| {
            fs::create_dir(&tmp)
                .map_err(|e| CallError::Io(format!("creating {}: {e}", tmp.display())))?;
            let (files, is_dir) = fill(self, &tmp.join("files"))?;
            let (stored_files, files_are_dir) = (files.clone(), is_dir);
            let location = format!("{}/{id}/files", reg.dir_name());
            let stored = digest::stored_record(name, location, files, is_dir);
            let rec = record(self, id.clone(), stored);
            let bytes = serde_json::to_vec_pretty(&rec).map_err(|e| CallError::Trap(e.into()))?;
            durable::write_atomic(&tmp.join(reg.record_name()), &bytes)
                .map_err(|e| CallError::Io(format!("writing {}: {e}", reg.record_name())))?;
            // Other jobs see a registry entry as soon as it is renamed into
            // place, so its files are made durable first (not group-committed).
            let mut durable = Pending::default();
            durable.stored(&tmp, &tmp.join("files"), &stored_files, files_are_dir);
            durable
                .commit()
                .map_err(|e| CallError::Io(format!("storing {} `{name}`: {e}", reg.noun())))?;
            durable::publish(&tmp, &dest)
                .map_err(|e| CallError::Io(format!("storing {} `{name}`: {e}", reg.noun())))?;
            // The rename itself is committed with the next job snapshot.
            self.pending.dir(&self.ws.registry_dir(reg));
            Ok(rec)
        })();
        match result {
            Ok(rec) => Ok((id, rec)),
            Err(e) => {
                durable::discard(&tmp);
                self.quota = before;
                Err(e)
            }
        }
    }

    /// Copy a guest file or directory into a new registry `files/` dir: a
    /// directory becomes `files/`, a file becomes `files/<basename>`.
    pub fn fill_from_guest(
        &mut self,
        guest_path: &str,
        files_dir: &Path,
    ) -> CallResult<(Vec<crate::store::FileEntry>, bool)> {
        let (mount, rel) = mounts::resolve(&self.mounts, guest_path)?;
        let what = format!("`{guest_path}`");
        let is_dir = if rel.as_os_str().is_empty() {
            true
        } else {
            mount
                .dir
                .metadata(&rel)
                .map_err(|e| CallError::io(&what, e))?
                .is_dir()
        };
        if is_dir {
            Ok(ingest::store_from_guest(
                &mount.dir,
                &rel,
                guest_path,
                files_dir,
                &mut self.quota,
            )?)
        } else {
            fs::create_dir(files_dir)
                .map_err(|e| CallError::Io(format!("creating {}: {e}", files_dir.display())))?;
            let base: PathBuf = rel.file_name().map(PathBuf::from).unwrap_or_default();
            let (mut files, _) = ingest::store_from_guest(
                &mount.dir,
                &rel,
                guest_path,
                &files_dir.join(&base),
                &mut self.quota,
            )?;
            files[0].path = base.to_string_lossy().into_owned();
            Ok((files, true))
        }
    }

    /// Announce a stored item. The record is persisted at once for a
    /// checkpoint (what `--resume` after a crash relies on), else with the
    /// next coalesced snapshot, which first fsyncs the stored files: a crash
    /// in between leaves the stored file unlisted, never a listed file that
    /// is not complete and durable.
    pub fn stored(&mut self, kind: StoredKind, stored: &StoredRecord) -> CallResult<()> {
        self.host_log(&format!(
            "stored {} `{}` ({} bytes, {} file(s)) at {}",
            kind_noun(kind),
            stored.name,
            stored.size,
            stored.files.len(),
            stored.location
        ));
        self.emit(JobEvent::Stored {
            kind,
            name: stored.name.clone(),
            location: stored.location.clone(),
            size: stored.size,
            blake3: stored.blake3.clone(),
        });
        self.snapshot(kind == StoredKind::Checkpoint)
    }

    /// Set the terminal outcome (first call wins).
    pub fn end(&mut self, status: JobStatus, message: String) -> CallResult<()> {
        if let Some((prev, _)) = &self.outcome {
            return Err(CallError::Invalid(format!(
                "the job already ended ({prev}); its status is final"
            )));
        }
        let message = self.redact(message);
        self.outcome = Some((status, message));
        Ok(())
    }

    pub fn granted_path(&self, reg: Registry, reference: &str) -> CallResult<String> {
        let list = match reg {
            Registry::Models => &self.models,
            Registry::Datasets => &self.datasets,
        };
        if let Some(e) = list
            .iter()
            .find(|e| e.id == reference)
            .or_else(|| list.iter().rev().find(|e| e.name == reference))
        {
            return Ok(format!("/{}/{}", reg.dir_name(), e.id));
        }
        let noun = reg.noun();
        match self.ws.find_entry(reg, reference).map(|e| e.id) {
            Some(id) => Err(CallError::Denied(format!(
                "{noun} `{id}` exists but was not granted to this job (grant it to the job to use it)"
            ))),
            None => Err(CallError::NotFound(format!("no {noun} `{reference}` in the workspace"))),
        }
    }
}

pub fn kind_noun(kind: StoredKind) -> &'static str {
    match kind {
        StoredKind::Artifact => "artifact",
        StoredKind::Checkpoint => "checkpoint",
        StoredKind::Model => "model",
        StoredKind::Dataset => "dataset",
        StoredKind::Eval => "eval",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_records_are_rewritten_less_often() {
        assert_eq!(snapshot_interval(50_000), SNAPSHOT_EVERY);
        assert_eq!(snapshot_interval(40 << 20), Duration::from_secs(10));
    }

    #[test]
    fn interrupts_are_decided_in_order() {
        let t0 = Instant::now();
        let d = Deadlines::new(t0, Duration::from_secs(10), Duration::from_secs(2));
        assert_eq!(d.soft, t0 + Duration::from_secs(8));
        let s = Duration::from_secs;
        assert_eq!(decide_interrupt(t0, &d, false, None), None);
        assert_eq!(
            decide_interrupt(t0 + s(10), &d, true, Some(t0)),
            Some(Interrupt::Timeout)
        );
        assert_eq!(
            decide_interrupt(t0 + s(1), &d, true, None),
            Some(Interrupt::Aborted)
        );
        assert_eq!(decide_interrupt(t0 + s(1), &d, false, Some(t0)), None);
        assert_eq!(
            decide_interrupt(t0 + s(2), &d, false, Some(t0)),
            Some(Interrupt::Cancelled)
        );
    }

    #[test]
    fn the_first_interrupt_is_kept_and_should_stop_turns_true_at_the_soft_deadline() {
        let c = JobControl::default();
        let t0 = Instant::now();
        assert_eq!(c.interrupt_due(t0), None, "no clock yet");
        c.start_clock(Deadlines::new(
            t0,
            Duration::from_secs(10),
            Duration::from_secs(2),
        ));
        assert_eq!(c.interrupt_due(t0 + Duration::from_secs(8)), None);
        assert!(c.should_stop());
        c.abort("scratch".into());
        assert_eq!(
            c.interrupt_due(t0 + Duration::from_secs(9)),
            Some(Interrupt::Aborted)
        );
        assert_eq!(
            c.interrupt_due(t0 + Duration::from_secs(11)),
            Some(Interrupt::Aborted)
        );
        assert_eq!(c.fired(), Some(Interrupt::Aborted));
    }
}
