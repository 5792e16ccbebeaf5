//! Operator imports: a model or dataset brought into a registry without a
//! plugin (`labhost models add`, `labhost datasets add`, the upload routes).
//!
//! An import is recorded as a COMPLETE job of the built-in `labhost-import`
//! "plugin" in experiment `imports` (or one given), so an imported entry has
//! what a guest-saved one has — an id `<name>-<job id>`, provenance (source
//! path, time, digest), publication by its job's completion, and the same
//! lifecycle (delete, export) — and is stored and verified the same way.
//!
//! Order of durability: the entry's files and record are made durable and
//! renamed into place first (visible by id only, since its job has no
//! COMPLETE record yet), then the job record is written COMPLETE (the entry
//! is published). A crash between the two leaves an unpublished entry and a
//! job directory without a record, which `labhost gc` removes.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use chrono::Utc;

use super::durable::{self, Pending};
use super::{
    digest, FileEntry, JobPaths, JobRecord, JobStatus, PluginRef, Registry, StoredRecord,
    Workspace, SCHEMA,
};

/// The experiment imports are recorded in unless another is given.
pub const IMPORT_EXPERIMENT: &str = "imports";

/// The plugin name and kind an import job is recorded with.
pub const IMPORT_PLUGIN: &str = "labhost-import";

/// One file to store in the entry's `files/` directory.
#[derive(Debug, Clone)]
pub enum Part {
    /// Copy `src` (a regular file) to `files/<dest>`, digesting as it goes.
    Copy { src: PathBuf, dest: String },
    /// Hard-link an already stored, digested file (of an earlier version of
    /// the entry) to `files/<dest>`; copied if the link fails.
    Reuse { src: PathBuf, entry: FileEntry },
}

/// What to import.
#[derive(Debug, Clone)]
pub struct Import {
    pub registry: Registry,
    pub name: String,
    pub experiment: String,
    /// Where it came from, for the job record (`plugin.path`) and its log.
    pub source: String,
    /// Stored under `files/` by their `dest` paths (as guest-saved
    /// entries are: a file becomes `files/<name>`).
    pub parts: Vec<Part>,
}

/// What an import made.
#[derive(Debug)]
pub struct Imported<R> {
    pub job: JobRecord,
    pub entry: R,
}

/// Every part of a directory tree, for [`Part::Copy`]. Symlinks and special
/// files inside it are refused: an import stores what the operator sees.
pub fn parts_of_dir(dir: &Path) -> anyhow::Result<Vec<Part>> {
    let mut out = Vec::new();
    let mut stack = vec![(dir.to_owned(), String::new())];
    while let Some((d, rel)) = stack.pop() {
        let mut entries: Vec<_> = fs::read_dir(&d)
            .with_context(|| format!("reading {}", d.display()))?
            .collect::<Result<_, _>>()
            .with_context(|| format!("reading {}", d.display()))?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name();
            let Some(name) = name.to_str() else {
                bail!("{} has a file name that is not UTF-8", d.display());
            };
            crate::names::check_name("file name", name).map_err(anyhow::Error::msg)?;
            let path = e.path();
            let child = if rel.is_empty() {
                name.to_owned()
            } else {
                format!("{rel}/{name}")
            };
            let ty = e.file_type()?;
            if ty.is_dir() {
                stack.push((path, child));
            } else if ty.is_file() {
                out.push(Part::Copy {
                    src: path,
                    dest: child,
                });
            } else {
                bail!(
                    "{} is not a regular file or directory (symlinks and special files are not imported)",
                    path.display()
                );
            }
        }
    }
    if out.is_empty() {
        bail!("{} holds no files", dir.display());
    }
    out.sort_by(|a, b| dest_of(a).cmp(dest_of(b)));
    Ok(out)
}

fn dest_of(p: &Part) -> &str {
    match p {
        Part::Copy { dest, .. } => dest,
        Part::Reuse { entry, .. } => &entry.path,
    }
}

impl Workspace {
    /// Import an entry: store its parts, write its record (built by
    /// `record` from the new entry id, the import job and the stored files),
    /// then record the import job COMPLETE.
    pub fn import_entry<R: serde::Serialize>(
        &self,
        import: Import,
        record: impl FnOnce(&str, &JobRecord, StoredRecord) -> R,
    ) -> anyhow::Result<Imported<R>> {
        let reg = import.registry;
        let noun = reg.noun();
        crate::names::check_name(noun, &import.name).map_err(anyhow::Error::msg)?;
        super::check_experiment(&import.experiment)?;
        if import.parts.is_empty() {
            bail!("nothing to import");
        }
        let (job_id, paths, _lock) = self.create_job_dir(&import.experiment)?;
        let id = format!("{}-{job_id}", import.name);
        let mut job = import_job(&job_id, &import);
        let dest = self.registry_dir(reg).join(&id);
        fs::create_dir_all(self.registry_dir(reg))?;
        let tmp = durable::temp_sibling(&dest);
        let stored = (|| -> anyhow::Result<(R, StoredRecord)> {
            let files_dir = tmp.join("files");
            fs::create_dir_all(&files_dir)?;
            let mut entries = Vec::new();
            for part in &import.parts {
                entries.push(store_part(part, &files_dir)?);
            }
            let location = format!("{}/{id}/files", reg.dir_name());
            let stored = digest::stored_record(&import.name, location, entries.clone(), true);
            job.plugin.blake3 = stored.blake3.clone();
            let rec = record(&id, &job, stored.clone());
            durable::write_atomic(
                &tmp.join(reg.record_name()),
                &serde_json::to_vec_pretty(&rec)?,
            )?;
            let mut pending = Pending::default();
            pending.stored(&tmp, &files_dir, &entries, true);
            pending.commit()?;
            durable::publish(&tmp, &dest)?;
            Ok((rec, stored))
        })();
        let (entry, stored) = match stored {
            Ok(s) => s,
            Err(e) => {
                durable::discard(&tmp);
                // The job never became visible: no record was written.
                let _ = self.discard_tree(&paths.dir);
                return Err(e.context(format!("importing {noun} `{}`", import.name)));
            }
        };
        match reg {
            Registry::Models => job.models.push(id.clone()),
            Registry::Datasets => job.datasets.push(id.clone()),
        }
        job.message = Some(format!(
            "imported {noun} `{}` from {} ({} file{}, {}, blake3 {})",
            import.name,
            import.source,
            stored.files.len(),
            if stored.files.len() == 1 { "" } else { "s" },
            crate::units::human_bytes(stored.size),
            &stored.blake3[..16],
        ));
        write_log(&paths, &job)?;
        job.log_bytes = fs::metadata(paths.log()).map(|m| m.len()).unwrap_or(0);
        durable::write_atomic(&paths.record(), &serde_json::to_vec_pretty(&job)?)?;
        paths.mark_ended();
        Ok(Imported { job, entry })
    }
}

fn import_job(job_id: &str, import: &Import) -> JobRecord {
    let now = Utc::now();
    JobRecord {
        schema: SCHEMA,
        id: job_id.to_owned(),
        experiment: import.experiment.clone(),
        status: JobStatus::Complete,
        message: None,
        failure: None,
        pipeline: None,
        plugin: PluginRef {
            path: import.source.clone(),
            blake3: String::new(),
            name: IMPORT_PLUGIN.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kind: "import".into(),
        },
        config: serde_json::json!({ "registry": import.registry.dir_name(), "name": import.name }),
        sandbox: Default::default(),
        resume: None,
        created_at: now,
        started_at: Some(now),
        ended_at: Some(now),
        progress: 1.0,
        stage: None,
        scores: Default::default(),
        artifacts: vec![],
        checkpoints: vec![],
        models: vec![],
        datasets: vec![],
        evals: vec![],
        log_bytes: 0,
        log_truncated: false,
        host_pid: std::process::id(),
        host_version: env!("CARGO_PKG_VERSION").into(),
        hostname: crate::store::hostname(),
        executor: None,
        metadata: Default::default(),
        status_stage: None,
        http: Default::default(),
    }
}

fn write_log(paths: &JobPaths, job: &JobRecord) -> anyhow::Result<()> {
    let line = serde_json::json!({
        "ts": Utc::now(),
        "level": "info",
        "source": "host",
        "msg": job.message,
    });
    let mut f = File::create(paths.log())?;
    writeln!(f, "{line}")?;
    f.sync_all()?;
    Ok(())
}

/// Store one part under `files_dir`, returning its digested entry.
fn store_part(part: &Part, files_dir: &Path) -> anyhow::Result<FileEntry> {
    let rel = dest_of(part);
    let dest = files_dir.join(rel);
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent)?;
    }
    let path = rel.to_owned();
    match part {
        Part::Reuse { src, entry } => {
            if fs::hard_link(src, &dest).is_err() {
                fs::copy(src, &dest)
                    .with_context(|| format!("copying {} to {}", src.display(), dest.display()))?;
            }
            Ok(FileEntry {
                path,
                size: entry.size,
                blake3: entry.blake3.clone(),
            })
        }
        Part::Copy { src, .. } => {
            let mut input =
                File::open(src).with_context(|| format!("cannot open {}", src.display()))?;
            if !input.metadata()?.is_file() {
                bail!("{} is not a regular file", src.display());
            }
            let mut out = File::create(&dest)?;
            let mut hasher = blake3::Hasher::new();
            let mut buf = vec![0u8; 1 << 20];
            let mut size = 0u64;
            loop {
                let n = input
                    .read(&mut buf)
                    .with_context(|| format!("reading {}", src.display()))?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
                out.write_all(&buf[..n])?;
                size += n as u64;
            }
            Ok(FileEntry {
                path,
                size,
                blake3: hasher.finalize().to_hex().to_string(),
            })
        }
    }
}

/// A model file or directory to add (`labhost models add`).
#[derive(Debug, Clone)]
pub struct ModelImport {
    pub name: String,
    pub path: PathBuf,
    pub architecture: Option<String>,
    pub pipeline_tag: Option<String>,
    /// Free text, e.g. the Hugging Face id it was fine-tuned from.
    pub parent_model: Option<String>,
    /// A JSON object.
    pub metadata: serde_json::Value,
    /// Default [`IMPORT_EXPERIMENT`].
    pub experiment: Option<String>,
    /// Where it came from, for the import job's record (default: the
    /// path's absolute form).
    pub source: Option<String>,
}

impl ModelImport {
    /// The model at `path` named `name`, with no metadata.
    pub fn new(name: impl Into<String>, path: impl Into<PathBuf>) -> Self {
        ModelImport {
            name: name.into(),
            path: path.into(),
            architecture: None,
            pipeline_tag: None,
            parent_model: None,
            metadata: serde_json::json!({}),
            experiment: None,
            source: None,
        }
    }
}

impl Workspace {
    /// Add a pre-trained model (a file or a directory) to the registry.
    pub fn add_model(&self, m: ModelImport) -> anyhow::Result<super::ModelRecord> {
        if !m.metadata.is_object() {
            bail!("model metadata must be a JSON object");
        }
        for (what, v) in [
            ("architecture", &m.architecture),
            ("pipeline tag", &m.pipeline_tag),
            ("parent model", &m.parent_model),
        ] {
            if let Some(v) = v {
                crate::names::check_text(what, v, 256).map_err(anyhow::Error::msg)?;
            }
        }
        let meta =
            fs::metadata(&m.path).with_context(|| format!("cannot read {}", m.path.display()))?;
        let parts = if meta.is_dir() {
            parts_of_dir(&m.path)?
        } else if meta.is_file() {
            let base = m
                .path
                .file_name()
                .and_then(|n| n.to_str())
                .with_context(|| format!("{} has no UTF-8 file name", m.path.display()))?;
            crate::names::check_name("file name", base).map_err(anyhow::Error::msg)?;
            vec![Part::Copy {
                src: m.path.clone(),
                dest: base.to_owned(),
            }]
        } else {
            bail!("{} is not a regular file or directory", m.path.display());
        };
        let import = Import {
            registry: Registry::Models,
            name: m.name.clone(),
            experiment: m
                .experiment
                .clone()
                .unwrap_or_else(|| IMPORT_EXPERIMENT.into()),
            source: match &m.source {
                Some(s) => s.clone(),
                None => std::path::absolute(&m.path)?.display().to_string(),
            },
            parts,
        };
        let done = self.import_entry(import, |id, job, files| super::ModelRecord {
            schema: SCHEMA,
            id: id.to_owned(),
            name: m.name.clone(),
            job_id: job.id.clone(),
            experiment: job.experiment.clone(),
            created_at: Utc::now(),
            architecture: m.architecture.clone(),
            pipeline_tag: m.pipeline_tag.clone(),
            parent_model: m.parent_model.clone(),
            metadata: m.metadata.clone(),
            files,
        })?;
        Ok(done.entry)
    }
}
