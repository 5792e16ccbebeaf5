//! Export a job or a pipeline run as a self-contained bundle, and import
//! one into another workspace with every digest verified first.
//!
//! A bundle is a tar archive. Its first member is `labhost-bundle.json`, the
//! manifest: what it holds (the jobs, the run, the models and datasets the
//! jobs saved) and every file with its size and blake3. The files follow
//! at their workspace-relative paths (`experiments/<exp>/jobs/<id>/job.json`,
//! `…/output.log`, `…/metrics.jsonl`, `…/artifacts/…`, `datasets/<id>/…`,
//! `pipelines/<run>/run.json`), so a bundle unpacks into the same layout.
//! Only what the records list is exported: no locks, markers, temp files
//! or scratch directories.
//!
//! An import refuses, before anything becomes visible: a member that is not
//! a regular file (symlinks, hard links, devices, FIFOs), a path that is
//! absolute, has `..`/`.`/empty parts or lies outside what the manifest
//! declares, a member the manifest does not list (or lists with another
//! size), a file whose blake3 is not the manifest's, a missing file, a
//! record that does not verify against its stored files, a job that has not
//! ended, and an id that already exists in the workspace. Files are
//! unpacked into a hidden staging directory (`<ws>/.import-*`), verified,
//! made durable, then renamed into place under the exclusive lifecycle lock
//! (registry entries, then jobs, then the run).
//!
//! The manifest guards against corruption and tampering in transit, not
//! against someone who rewrites the manifest too: bundles are not signed.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{BadBundle, LockMode, Refused, Target};
use crate::pipeline::RunRecord;
use crate::store::dirs::is_locked;
use crate::store::durable::Pending;
use crate::store::verify::verify_stored;
use crate::store::{
    read_json_opt, EntryRef, FileEntry, JobRecord, Registry, StoredRecord, Workspace,
};

/// The manifest's member name (always the first).
pub const MANIFEST: &str = "labhost-bundle.json";
/// Staging directories of imports in progress: `<ws>/.import-<random>`.
pub const STAGING_PREFIX: &str = ".import-";
const FORMAT: &str = "labhost-bundle";
const VERSION: u32 = 1;
/// Largest manifest read.
const MAX_MANIFEST: u64 = 64 << 20;

/// One job in a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleJob {
    pub id: String,
    pub experiment: String,
}

/// `labhost-bundle.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    pub created_at: DateTime<Utc>,
    pub host_version: String,
    /// The pipeline run, when a run was exported (else one job).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    pub jobs: Vec<BundleJob>,
    pub models: Vec<String>,
    pub datasets: Vec<String>,
    /// Every other member: workspace-relative path, size, blake3.
    pub files: Vec<FileEntry>,
}

impl Manifest {
    /// What the bundle holds, in words: `job X` or `pipeline run R`.
    pub fn title(&self) -> String {
        match &self.run {
            Some(r) => format!("pipeline run {r}"),
            None => format!(
                "job {}",
                self.jobs.first().map(|j| j.id.as_str()).unwrap_or("?")
            ),
        }
    }
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

/// An export decided and hashed, ready to be written.
#[derive(Debug, Clone)]
pub struct ExportPlan {
    pub manifest: Manifest,
    root: PathBuf,
}

/// Decide what exporting job or run `id` writes, and hash it. Refused
/// while the job or run is running.
pub fn plan_export(ws: &Workspace, id: &str) -> anyhow::Result<ExportPlan> {
    let target = super::find(ws, id)?;
    let mut paths: Vec<String> = Vec::new();
    let mut jobs = Vec::new();
    let (mut models, mut datasets) = (Vec::new(), Vec::new());
    let run = match &target {
        Target::Job(rec, p) => {
            jobs.push(((**rec).clone(), p.clone()));
            None
        }
        Target::Run(rec, p) => {
            if p.is_locked() {
                return Err(Refused(format!(
                    "pipeline run {} is running; export it when it has ended",
                    rec.id
                ))
                .into());
            }
            jobs = super::remove::run_jobs(ws, rec);
            let dir = format!("pipelines/{}", rec.id);
            paths.push(format!("{dir}/run.json"));
            if p.pipeline().is_file() {
                paths.push(format!("{dir}/pipeline.toml"));
            }
            Some(rec.id.clone())
        }
    };
    let mut bundle_jobs = Vec::new();
    for (rec, p) in &jobs {
        if !rec.status.is_terminal() && is_locked(&p.lock()) {
            return Err(Refused(format!(
                "job {} is running; export it when it has ended",
                rec.id
            ))
            .into());
        }
        let dir = ws.relative(&p.dir);
        paths.push(format!("{dir}/job.json"));
        for f in ["output.log", "metrics.jsonl"] {
            if p.dir.join(f).is_file() {
                paths.push(format!("{dir}/{f}"));
            }
        }
        for s in rec.stored() {
            if !s.location.starts_with(&format!("{dir}/")) {
                bail!(
                    "job {}'s record lists `{}`, outside its directory",
                    rec.id,
                    s.location
                );
            }
            paths.extend(stored_paths(s));
        }
        for (reg, listed, out) in [
            (Registry::Models, &rec.models, &mut models),
            (Registry::Datasets, &rec.datasets, &mut datasets),
        ] {
            for eid in listed {
                let edir = ws.registry_dir(reg).join(eid);
                if !edir.is_dir() {
                    continue;
                }
                let files = ws
                    .registry_files(reg, eid)
                    .with_context(|| format!("cannot read the record of {} {eid}", reg.noun()))?;
                paths.push(format!("{}/{eid}/{}", reg.dir_name(), reg.record_name()));
                paths.extend(stored_paths(&files));
                out.push(eid.clone());
            }
        }
        bundle_jobs.push(BundleJob {
            id: rec.id.clone(),
            experiment: rec.experiment.clone(),
        });
    }
    let mut files = Vec::with_capacity(paths.len());
    for rel in paths {
        let (size, blake3) =
            hash_path(&ws.root().join(&rel)).with_context(|| format!("cannot export {rel}"))?;
        files.push(FileEntry {
            path: rel,
            size,
            blake3,
        });
    }
    Ok(ExportPlan {
        manifest: Manifest {
            format: FORMAT.into(),
            version: VERSION,
            created_at: Utc::now(),
            host_version: env!("CARGO_PKG_VERSION").into(),
            run,
            jobs: bundle_jobs,
            models,
            datasets,
            files,
        },
        root: ws.root().to_owned(),
    })
}

/// The workspace-relative paths of a stored item's files.
fn stored_paths(s: &StoredRecord) -> Vec<String> {
    if s.is_dir {
        s.files
            .iter()
            .map(|f| format!("{}/{}", s.location, f.path))
            .collect()
    } else {
        vec![s.location.clone()]
    }
}

/// Size and blake3 of a regular file (never following a symlink).
fn hash_path(p: &Path) -> io::Result<(u64, String)> {
    let f = open_regular(p)?;
    let mut h = blake3::Hasher::new();
    let n = io::copy(&mut io::BufReader::with_capacity(1 << 20, f), &mut h)?;
    Ok((n, h.finalize().to_hex().to_string()))
}

fn open_regular(p: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(p)?;
    if !f.metadata()?.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    Ok(f)
}

impl ExportPlan {
    /// Write the bundle to `out`. A file that changed since it was planned
    /// fails the export (the bundle would not verify).
    pub fn write(&self, out: impl Write) -> anyhow::Result<()> {
        let mut tar = tar::Builder::new(out);
        tar.mode(tar::HeaderMode::Deterministic);
        let manifest = serde_json::to_vec_pretty(&self.manifest)?;
        append(&mut tar, MANIFEST, manifest.len() as u64, &manifest[..])?;
        for f in &self.manifest.files {
            let file = open_regular(&self.root.join(&f.path))
                .with_context(|| format!("cannot export {}", f.path))?;
            let mut reader = Checked {
                inner: file,
                left: f.size,
                hasher: blake3::Hasher::new(),
                expect: &f.blake3,
                path: &f.path,
            };
            append(&mut tar, &f.path, f.size, &mut reader)?;
        }
        tar.into_inner()?.flush()?;
        Ok(())
    }

    /// Write the bundle to the file `out` (through a temp file: a failed
    /// export leaves nothing at `out`).
    pub fn write_file(&self, out: &Path) -> anyhow::Result<()> {
        let tmp = crate::store::durable::temp_sibling(out);
        let result = (|| {
            let f = File::create_new(&tmp)
                .with_context(|| format!("cannot create {}", tmp.display()))?;
            let mut w = io::BufWriter::with_capacity(1 << 20, f);
            self.write(&mut w)?;
            let f = w.into_inner().map_err(|e| e.into_error())?;
            f.sync_all()?;
            std::fs::rename(&tmp, out).with_context(|| format!("cannot write {}", out.display()))
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }
}

fn append<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &str,
    size: u64,
    data: impl Read,
) -> anyhow::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(size);
    h.set_mode(0o644);
    tar.append_data(&mut h, path, data)
        .with_context(|| format!("cannot write {path} into the bundle"))
}

/// A reader that yields exactly `left` bytes of `inner` and checks their
/// digest at the end.
struct Checked<'a, R> {
    inner: R,
    left: u64,
    hasher: blake3::Hasher,
    expect: &'a str,
    path: &'a str,
}

impl<R: Read> Read for Checked<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            if self.hasher.finalize().to_hex().as_str() != self.expect {
                return Err(io::Error::other(format!(
                    "{} changed during the export",
                    self.path
                )));
            }
            return Ok(0);
        }
        let max = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..max])?;
        if n == 0 {
            return Err(io::Error::other(format!(
                "{} shrank during the export",
                self.path
            )));
        }
        self.hasher.update(&buf[..n]);
        self.left -= n as u64;
        Ok(n)
    }
}

// ---- import ------------------------------------------------------------------

/// What an import added.
#[derive(Debug, Clone, Serialize)]
pub struct Imported {
    pub run: Option<String>,
    pub jobs: Vec<String>,
    pub models: Vec<String>,
    pub datasets: Vec<String>,
    pub files: usize,
    pub bytes: u64,
}

/// Import the bundle read from `reader` into `ws`.
pub fn import(ws: &Workspace, reader: impl Read) -> anyhow::Result<Imported> {
    let staging = Staging::create(ws)?;
    let tree = staging.dir.join("tree");
    std::fs::create_dir(&tree)?;
    let mut archive = tar::Archive::new(reader);
    let mut entries = archive.entries().context("cannot read the bundle")?;
    let bad = |m: String| anyhow::Error::from(BadBundle(m));

    // The manifest first.
    let mut first = entries
        .next()
        .ok_or_else(|| bad("the bundle is empty".into()))?
        .map_err(|e| bad(format!("the bundle is not a readable tar archive: {e}")))?;
    if first.path_bytes().as_ref() != MANIFEST.as_bytes()
        || first.header().entry_type() != tar::EntryType::Regular
    {
        return Err(bad(format!(
            "the bundle does not start with its manifest `{MANIFEST}`"
        )));
    }
    if first.header().size().unwrap_or(u64::MAX) > MAX_MANIFEST {
        return Err(bad("the bundle's manifest is too large".into()));
    }
    let mut text = Vec::new();
    (&mut first).take(MAX_MANIFEST).read_to_end(&mut text)?;
    drop(first);
    let manifest: Manifest = serde_json::from_slice(&text)
        .map_err(|e| bad(format!("the bundle's manifest is not valid: {e}")))?;
    let layout = Layout::check(&manifest).map_err(bad)?;
    conflicts(ws, &manifest)?;

    // Every member: a declared regular file, its bytes as declared.
    let mut expected: BTreeMap<&str, &FileEntry> = manifest
        .files
        .iter()
        .map(|f| (f.path.as_str(), f))
        .collect();
    let mut pending = Pending::default();
    for entry in entries {
        let mut entry =
            entry.map_err(|e| bad(format!("the bundle is not a readable tar archive: {e}")))?;
        let raw = entry.path_bytes().into_owned();
        let shown = crate::text::for_terminal_line(&String::from_utf8_lossy(&raw)).into_owned();
        let Ok(path) = String::from_utf8(raw) else {
            return Err(bad(format!(
                "bundle member `{shown}` has a path that is not UTF-8"
            )));
        };
        let kind = entry.header().entry_type();
        let plain = path.trim_end_matches('/');
        if !safe_relative(plain) {
            return Err(bad(format!(
                "bundle member `{shown}` has an unsafe path (absolute, or with `..`, `.` or empty parts)"
            )));
        }
        match kind {
            tar::EntryType::Regular | tar::EntryType::Continuous => {}
            tar::EntryType::Directory => continue,
            other => {
                return Err(bad(format!(
                    "bundle member `{shown}` is a {}; only regular files are accepted",
                    type_name(other)
                )))
            }
        }
        let Some(want) = expected.remove(plain) else {
            return Err(bad(if manifest.files.iter().any(|f| f.path == plain) {
                format!("bundle member `{shown}` appears twice")
            } else {
                format!("bundle member `{shown}` is not in its manifest")
            }));
        };
        let size = entry.header().size().unwrap_or(u64::MAX);
        if size != want.size {
            return Err(bad(format!(
                "bundle file `{shown}` is {size} bytes; its manifest says {}",
                want.size
            )));
        }
        let dest = tree.join(plain);
        let parent = dest.parent().expect("a relative path below tree");
        std::fs::create_dir_all(parent)?;
        let mut out =
            File::create_new(&dest).with_context(|| format!("cannot create {}", dest.display()))?;
        let mut h = blake3::Hasher::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut got = 0u64;
        loop {
            let n = entry
                .read(&mut buf)
                .map_err(|e| bad(format!("bundle file `{shown}` cannot be read: {e}")))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            out.write_all(&buf[..n])?;
            got += n as u64;
        }
        let digest = h.finalize().to_hex().to_string();
        if got != want.size || digest != want.blake3 {
            return Err(bad(format!(
                "bundle file `{shown}` does not match its manifest (blake3 {digest}, manifest {})",
                want.blake3
            )));
        }
        pending.file(dest.clone());
        let mut d = dest.parent();
        while let Some(dir) = d.filter(|d| d.starts_with(&tree)) {
            pending.dir(dir);
            d = dir.parent();
        }
    }
    if let Some(missing) = expected.keys().next() {
        return Err(bad(format!(
            "the bundle is missing `{}` (listed in its manifest)",
            crate::text::for_terminal_line(missing)
        )));
    }
    check_records(&tree, &manifest, &layout).map_err(bad)?;
    for j in &manifest.jobs {
        let dir = tree.join(format!("experiments/{}/jobs/{}", j.experiment, j.id));
        for sub in ["artifacts", "checkpoints", "evals"] {
            std::fs::create_dir_all(dir.join(sub))?;
            pending.dir(&dir.join(sub));
        }
        pending.dir(&dir);
    }
    pending
        .commit()
        .context("cannot make the imported files durable")?;

    // Visible all at once, as far as renames go.
    let lock = super::lock(ws, LockMode::Exclusive).context("cannot take the lifecycle lock")?;
    conflicts(ws, &manifest)?;
    let mut moves: Vec<(PathBuf, PathBuf)> = Vec::new();
    for (reg, ids) in [
        (Registry::Models, &manifest.models),
        (Registry::Datasets, &manifest.datasets),
    ] {
        for id in ids {
            let rel = format!("{}/{id}", reg.dir_name());
            moves.push((tree.join(&rel), ws.root().join(&rel)));
        }
    }
    for j in &manifest.jobs {
        let rel = format!("experiments/{}/jobs/{}", j.experiment, j.id);
        moves.push((tree.join(&rel), ws.root().join(&rel)));
    }
    if let Some(r) = &manifest.run {
        let rel = format!("pipelines/{r}");
        moves.push((tree.join(&rel), ws.root().join(&rel)));
    }
    let mut done: Vec<&(PathBuf, PathBuf)> = Vec::new();
    let mut failed = None;
    for m in &moves {
        let moved =
            m.1.parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| crate::store::durable::publish(&m.0, &m.1));
        match moved {
            Ok(()) => done.push(m),
            Err(e) => {
                failed = Some(anyhow::anyhow!("cannot import into {}: {e}", m.1.display()));
                break;
            }
        }
    }
    if let Some(e) = failed {
        for (from, to) in done.into_iter().rev() {
            let _ = std::fs::rename(to, from);
        }
        return Err(e);
    }
    let mut parents = Pending::default();
    for (_, to) in &moves {
        if let Some(p) = to.parent() {
            parents.dir(p);
        }
    }
    let _ = parents.commit();
    for j in &manifest.jobs {
        ws.job_paths(&j.experiment, &j.id).mark_ended();
    }
    drop(lock);
    Ok(Imported {
        run: manifest.run.clone(),
        jobs: manifest.jobs.iter().map(|j| j.id.clone()).collect(),
        models: manifest.models.clone(),
        datasets: manifest.datasets.clone(),
        files: manifest.files.len(),
        bytes: manifest.bytes(),
    })
}

/// Import the bundle file at `path`.
pub fn import_file(ws: &Workspace, path: &Path) -> anyhow::Result<Imported> {
    let f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    import(ws, io::BufReader::with_capacity(1 << 20, f))
}

fn type_name(t: tar::EntryType) -> &'static str {
    match t {
        tar::EntryType::Symlink => "symlink",
        tar::EntryType::Link => "hard link",
        tar::EntryType::Char => "character device",
        tar::EntryType::Block => "block device",
        tar::EntryType::Fifo => "FIFO",
        tar::EntryType::GNUSparse => "sparse file",
        _ => "special member",
    }
}

/// A relative path of plain `/`-separated parts: no root, no `.`, `..` or
/// empty part, no NUL or backslash.
pub fn safe_relative(p: &str) -> bool {
    !p.is_empty()
        && !p.contains(['\0', '\\'])
        && p.split('/').all(|c| !c.is_empty() && c != "." && c != "..")
        && Path::new(p)
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
}

/// Refused if anything the bundle would add already exists.
fn conflicts(ws: &Workspace, m: &Manifest) -> anyhow::Result<()> {
    let existing: BTreeSet<String> = ws.job_dirs()?.into_iter().map(|(_, id, _)| id).collect();
    for j in &m.jobs {
        if existing.contains(&j.id) {
            return Err(Refused(format!("job {} already exists in this workspace", j.id)).into());
        }
    }
    for (reg, ids) in [
        (Registry::Models, &m.models),
        (Registry::Datasets, &m.datasets),
    ] {
        for id in ids {
            if ws.registry_dir(reg).join(id).symlink_metadata().is_ok() {
                return Err(Refused(format!(
                    "{} {id} already exists in this workspace",
                    reg.noun()
                ))
                .into());
            }
        }
    }
    if let Some(r) = &m.run {
        if crate::pipeline::record::runs_dir(ws)
            .join(r)
            .symlink_metadata()
            .is_ok()
        {
            return Err(
                Refused(format!("pipeline run {r} already exists in this workspace")).into(),
            );
        }
    }
    Ok(())
}

/// Where each declared file belongs.
#[derive(Debug, Default)]
struct Layout {
    /// Job id → its files (relative to the job directory).
    jobs: BTreeMap<String, BTreeSet<String>>,
    entries: BTreeMap<(&'static str, String), BTreeSet<String>>,
}

impl Layout {
    /// Check the manifest: format, names, and that every file lies in a
    /// place the bundle declares (a job's directory, an entry's, the run's).
    fn check(m: &Manifest) -> Result<Layout, String> {
        if m.format != FORMAT {
            return Err(format!("not a labhost bundle (format `{}`)", m.format));
        }
        if m.version != VERSION {
            return Err(format!(
                "bundle version {} is not supported (this host reads version {VERSION})",
                m.version
            ));
        }
        if m.jobs.is_empty() && m.run.is_none() {
            return Err("the bundle holds no job".into());
        }
        if m.run.is_none() && m.jobs.len() != 1 {
            return Err("a bundle without a run holds exactly one job".into());
        }
        let name = |what: &str, n: &str| crate::names::check_name(what, n);
        let mut layout = Layout::default();
        let mut job_dirs = BTreeMap::new();
        for j in &m.jobs {
            name("job id", &j.id)?;
            name("experiment", &j.experiment)?;
            if job_dirs
                .insert(
                    format!("experiments/{}/jobs/{}/", j.experiment, j.id),
                    j.id.clone(),
                )
                .is_some()
                || layout.jobs.insert(j.id.clone(), BTreeSet::new()).is_some()
            {
                return Err(format!("job {} is listed twice", j.id));
            }
        }
        for (reg, ids) in [
            (Registry::Models, &m.models),
            (Registry::Datasets, &m.datasets),
        ] {
            for id in ids {
                name(reg.noun(), id)?;
                if layout
                    .entries
                    .insert((reg.dir_name(), id.clone()), BTreeSet::new())
                    .is_some()
                {
                    return Err(format!("{} {id} is listed twice", reg.noun()));
                }
            }
        }
        if let Some(r) = &m.run {
            name("pipeline run id", r)?;
        }
        let mut seen = BTreeSet::new();
        for f in &m.files {
            let p = &f.path;
            let shown = crate::text::for_terminal_line(p);
            if !safe_relative(p) {
                return Err(format!(
                    "the manifest lists `{shown}`, an unsafe path (absolute, or with `..`, `.` or empty parts)"
                ));
            }
            if p == MANIFEST || !seen.insert(p.as_str()) {
                return Err(format!("the manifest lists `{shown}` twice"));
            }
            let placed = job_dirs.iter().find_map(|(dir, id)| {
                let rest = p.strip_prefix(dir.as_str())?;
                job_file(rest).then(|| (id.clone(), rest.to_owned()))
            });
            if let Some((id, rest)) = placed {
                layout.jobs.get_mut(&id).expect("declared").insert(rest);
                continue;
            }
            let entry = p.split_once('/').and_then(|(top, rest)| {
                let (id, inner) = rest.split_once('/')?;
                let key = (
                    match top {
                        "models" => "models",
                        "datasets" => "datasets",
                        _ => return None,
                    },
                    id.to_owned(),
                );
                let record = if top == "models" {
                    "model.json"
                } else {
                    "dataset.json"
                };
                (inner == record || inner.starts_with("files/")).then(|| (key, inner.to_owned()))
            });
            if let Some((key, inner)) = entry {
                if let Some(set) = layout.entries.get_mut(&key) {
                    set.insert(inner);
                    continue;
                }
            }
            let in_run = m.run.as_ref().is_some_and(|r| {
                p == &format!("pipelines/{r}/run.json")
                    || p == &format!("pipelines/{r}/pipeline.toml")
            });
            if !in_run {
                return Err(format!(
                    "the manifest lists `{shown}`, outside the jobs, entries and run it declares"
                ));
            }
        }
        for (id, files) in &layout.jobs {
            if !files.contains("job.json") {
                return Err(format!("the bundle has no record for job {id}"));
            }
        }
        for ((top, id), files) in &layout.entries {
            let record = if *top == "models" {
                "model.json"
            } else {
                "dataset.json"
            };
            if !files.contains(record) {
                return Err(format!("the bundle has no record for {top} entry {id}"));
            }
        }
        if let Some(r) = &m.run {
            if !seen.contains(format!("pipelines/{r}/run.json").as_str()) {
                return Err(format!("the bundle has no record for pipeline run {r}"));
            }
        }
        Ok(layout)
    }
}

/// A file a job directory may hold in a bundle (relative to it).
fn job_file(rest: &str) -> bool {
    matches!(rest, "job.json" | "output.log" | "metrics.jsonl")
        || ["artifacts/", "checkpoints/", "evals/"].iter().any(|d| {
            rest.strip_prefix(d).is_some_and(|item| {
                let first = item.split('/').next().unwrap_or("");
                crate::names::check_name("stored", first).is_ok()
            })
        })
}

/// The staged records: parse, match their place, have ended, and verify
/// against the staged files; every staged file is one a record lists.
fn check_records(tree: &Path, m: &Manifest, layout: &Layout) -> Result<(), String> {
    let shown = |p: &Path| {
        p.strip_prefix(tree)
            .unwrap_or(p)
            .to_string_lossy()
            .into_owned()
    };
    let verify = |what: &str, s: &StoredRecord| -> Result<(), String> {
        match verify_stored(tree, s).first() {
            None => Ok(()),
            Some(p) => Err(format!(
                "{what}: {} (at {})",
                p.to_string().replace(&format!("{}/", tree.display()), ""),
                shown(p.path())
            )),
        }
    };
    let read = |p: &Path| -> Result<Vec<u8>, String> {
        std::fs::read(p).map_err(|e| format!("{}: {e}", shown(p)))
    };
    let bundle_jobs: BTreeMap<&str, &str> = m
        .jobs
        .iter()
        .map(|j| (j.id.as_str(), j.experiment.as_str()))
        .collect();
    for j in &m.jobs {
        let dir = format!("experiments/{}/jobs/{}", j.experiment, j.id);
        let rec: JobRecord = serde_json::from_slice(&read(&tree.join(&dir).join("job.json"))?)
            .map_err(|e| format!("job {}: its record is not valid: {e}", j.id))?;
        if rec.id != j.id || rec.experiment != j.experiment {
            return Err(format!(
                "job {}: its record is of job {} in experiment {}",
                j.id, rec.id, rec.experiment
            ));
        }
        if !rec.status.is_terminal() {
            return Err(format!("job {} has not ended ({})", j.id, rec.status));
        }
        if m.run.is_some() && rec.pipeline.as_ref().map(|p| &p.run) != m.run.as_ref() {
            return Err(format!("job {} is not a job of the bundle's run", j.id));
        }
        let mut listed: BTreeSet<String> = ["job.json", "output.log", "metrics.jsonl"]
            .into_iter()
            .map(String::from)
            .collect();
        for s in rec.stored() {
            if !s.location.starts_with(&format!("{dir}/")) {
                return Err(format!(
                    "job {}: its record lists `{}`, outside its directory",
                    j.id, s.location
                ));
            }
            verify(&format!("job {}", j.id), s)?;
            let prefix = format!("{dir}/");
            for p in stored_paths(s) {
                listed.insert(p.strip_prefix(&prefix).unwrap_or(&p).to_owned());
            }
        }
        if let Some(extra) = layout.jobs[&j.id].iter().find(|f| !listed.contains(*f)) {
            return Err(format!(
                "bundle file `{dir}/{extra}` is not listed by job {}'s record",
                j.id
            ));
        }
    }
    for ((top, id), files) in &layout.entries {
        let reg = if *top == "models" {
            Registry::Models
        } else {
            Registry::Datasets
        };
        let edir = tree.join(top).join(id);
        let bytes = read(&edir.join(reg.record_name()))?;
        #[derive(Deserialize)]
        struct Files {
            files: StoredRecord,
        }
        let (entry, stored) = serde_json::from_slice::<EntryRef>(&bytes)
            .and_then(|e| serde_json::from_slice::<Files>(&bytes).map(|f| (e, f.files)))
            .map_err(|e| format!("{} {id}: its record is not valid: {e}", reg.noun()))?;
        if entry.id != *id {
            return Err(format!(
                "{} {id}: its record is of {}",
                reg.noun(),
                entry.id
            ));
        }
        if bundle_jobs.get(entry.job_id.as_str()) != Some(&entry.experiment.as_str()) {
            return Err(format!(
                "{} {id} was saved by job {}, which the bundle does not hold",
                reg.noun(),
                entry.job_id
            ));
        }
        let location = format!("{top}/{id}/files");
        if stored.location != location {
            return Err(format!(
                "{} {id}: its record lists `{}`, outside its directory",
                reg.noun(),
                stored.location
            ));
        }
        verify(&format!("{} {id}", reg.noun()), &stored)?;
        let listed: BTreeSet<String> = stored_paths(&stored)
            .into_iter()
            .map(|p| {
                p.strip_prefix(&format!("{top}/{id}/"))
                    .unwrap_or(&p)
                    .to_owned()
            })
            .chain([reg.record_name().to_owned()])
            .collect();
        if let Some(extra) = files.iter().find(|f| !listed.contains(*f)) {
            return Err(format!(
                "bundle file `{top}/{id}/{extra}` is not listed by {} {id}'s record",
                reg.noun()
            ));
        }
    }
    if let Some(r) = &m.run {
        let rec: RunRecord = read_json_opt(&tree.join("pipelines").join(r).join("run.json"))
            .map_err(|e| format!("pipeline run {r}: its record is not valid: {e:#}"))?
            .ok_or_else(|| format!("the bundle has no record for pipeline run {r}"))?;
        if rec.id != *r {
            return Err(format!("pipeline run {r}: its record is of run {}", rec.id));
        }
    }
    Ok(())
}

/// `<ws>/.import-<random>`, locked while the import runs (so `gc` leaves
/// it alone) and removed when dropped.
struct Staging {
    dir: PathBuf,
    _lock: File,
}

impl Staging {
    fn create(ws: &Workspace) -> anyhow::Result<Staging> {
        let dir = ws
            .root()
            .join(format!("{STAGING_PREFIX}{:016x}", fastrand::u64(..)));
        std::fs::create_dir(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let lock = crate::store::dirs::try_lock(&dir.join(".lock"))?
            .context("cannot lock the import's staging directory")?;
        Ok(Staging { dir, _lock: lock })
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = crate::store::tree::remove_tree(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_paths_are_refused() {
        for ok in ["a", "experiments/e/jobs/x/job.json", "a/b.c/..d"] {
            assert!(safe_relative(ok), "{ok}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../b",
            "a/./b",
            "a//b",
            "a/",
            ".",
            "..",
            "a\\..\\b",
            "a\0b",
        ] {
            assert!(!safe_relative(bad), "{bad:?}");
        }
    }

    #[test]
    fn job_files_are_the_record_log_metrics_and_stored_items() {
        for ok in [
            "job.json",
            "output.log",
            "metrics.jsonl",
            "artifacts/a.txt",
            "checkpoints/epoch-1/w.bin",
            "evals/table.csv",
        ] {
            assert!(job_file(ok), "{ok}");
        }
        for bad in [
            ".lock",
            ".ended",
            "work/x",
            "artifacts/.tmp-x-1",
            "other.txt",
            ".pins/x",
        ] {
            assert!(!job_file(bad), "{bad}");
        }
    }
}
