//! Bringing tables in and out: `labhost datasets add` (Refuel
//! `upload_dataset`), `append` (Refuel `add_items`: a new version whose
//! schema is the first version's) and `export` (the whole table as one file
//! in any format).
//!
//! Files are read by the engine before anything is stored, so a file that
//! is not a readable table is refused with the engine's one-line reason and
//! the registry is unchanged.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use chrono::Utc;
use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::common::{Column, ScalarValue};
use datafusion::dataframe::DataFrameWriteOptions;
use datafusion::logical_expr::{cast, Expr};
use datafusion::prelude::{lit, DataFrame};
use labhost::store::import::{Import, Part, IMPORT_EXPERIMENT};
use labhost::store::{DatasetRecord, Registry, SCHEMA};
use labhost::Workspace;
use serde_json::Value;

use crate::table::{one_line, open_files, session, StoredTable};
use crate::Format;

/// How a dataset is added.
#[derive(Debug, Clone)]
pub struct AddOptions {
    pub name: String,
    pub description: Option<String>,
    /// A JSON object (default `{}`).
    pub metadata: Value,
    /// The experiment the import job is recorded in (default `imports`).
    pub experiment: Option<String>,
    /// Where the rows came from, for the import job's record (default: the
    /// file's absolute path).
    pub source: Option<String>,
}

/// How rows are appended.
#[derive(Debug, Clone, Default)]
pub struct AppendOptions {
    /// The experiment the import job is recorded in (default `imports`).
    pub experiment: Option<String>,
    /// Where the rows came from (default: the file's absolute path).
    pub source: Option<String>,
}

fn source_of(file: &Path, given: Option<String>) -> anyhow::Result<String> {
    match given {
        Some(s) => Ok(s),
        None => Ok(std::path::absolute(file)?.display().to_string()),
    }
}

impl AddOptions {
    pub fn new(name: impl Into<String>) -> Self {
        AddOptions {
            name: name.into(),
            description: None,
            metadata: Value::Object(Default::default()),
            experiment: None,
            source: None,
        }
    }
}

async fn read_file(file: &Path) -> anyhow::Result<(Format, DataFrame, u64)> {
    let format = Format::of_path(file)?;
    let meta =
        std::fs::metadata(file).with_context(|| format!("cannot read {}", file.display()))?;
    if !meta.is_file() {
        bail!("{} is not a regular file", file.display());
    }
    let ctx = session()?;
    let df = open_files(&ctx, &[file.to_owned()], format)
        .await
        .with_context(|| {
            format!(
                "{} is not a readable {} table",
                file.display(),
                format.name()
            )
        })?;
    if df.schema().fields().is_empty() {
        bail!("{} has no columns", file.display());
    }
    let rows = df
        .clone()
        .count()
        .await
        .map_err(|e| anyhow::anyhow!("{}", one_line(&e.to_string())))
        .with_context(|| {
            format!(
                "{} is not a readable {} table",
                file.display(),
                format.name()
            )
        })? as u64;
    Ok((format, df, rows))
}

fn check_metadata(v: &Value) -> anyhow::Result<()> {
    if !v.is_object() {
        bail!("dataset metadata must be a JSON object");
    }
    Ok(())
}

/// Add the table in `file` as a new dataset.
pub async fn add(ws: &Workspace, file: &Path, opts: AddOptions) -> anyhow::Result<DatasetRecord> {
    check_metadata(&opts.metadata)?;
    if let Some(d) = &opts.description {
        labhost::names::check_text("dataset description", d, 4096).map_err(anyhow::Error::msg)?;
    }
    let (format, _, rows) = read_file(file).await?;
    let source = source_of(file, opts.source.clone())?;
    let import = Import {
        registry: Registry::Datasets,
        name: opts.name.clone(),
        experiment: opts.experiment.unwrap_or_else(|| IMPORT_EXPERIMENT.into()),
        source,
        parts: vec![Part::Copy {
            src: file.to_owned(),
            dest: format!("data.{}", format.extension()),
        }],
    };
    let done = ws.import_entry(import, |id, job, files| DatasetRecord {
        schema: SCHEMA,
        id: id.to_owned(),
        name: opts.name.clone(),
        job_id: job.id.clone(),
        experiment: job.experiment.clone(),
        created_at: Utc::now(),
        rows: Some(rows),
        description: opts.description.clone(),
        metadata: opts.metadata.clone(),
        files,
        supersedes: None,
    })?;
    Ok(done.entry)
}

/// Append the rows of `file` to the dataset `reference` (id or name) as a
/// new version: same name, the earlier files kept (hard-linked) plus one
/// part in the dataset's own format. The new file's columns must be among
/// the dataset's (missing ones are null); values are cast to the dataset's
/// column types, and a value that does not fit refuses the whole append.
pub async fn append(
    ws: &Workspace,
    reference: &str,
    file: &Path,
    opts: AppendOptions,
) -> anyhow::Result<DatasetRecord> {
    let base = StoredTable::resolve(ws, reference)?;
    let ctx = session()?;
    let base_df = base.open(&ctx).await?;
    let schema: Schema = base_df.schema().as_arrow().clone();
    let (_, new_df, added) = read_file(file).await?;
    let projected = conform(new_df, &schema, &base.record.id)?;

    let scratch = tempfile::Builder::new()
        .prefix(".append-")
        .tempdir_in(ws.root())
        .context("creating a scratch directory in the workspace")?;
    let ext = base.format.extension();
    let part = scratch.path().join(format!("part.{ext}"));
    write(projected, &part, base.format)
        .await
        .with_context(|| {
            format!(
                "appending {} to dataset `{}`",
                file.display(),
                base.record.id
            )
        })?;

    let dir = ws.root().join(&base.record.files.location);
    let mut parts: Vec<Part> = base
        .record
        .files
        .files
        .iter()
        .map(|f| Part::Reuse {
            src: dir.join(&f.path),
            entry: f.clone(),
        })
        .collect();
    let taken: Vec<&str> = base
        .record
        .files
        .files
        .iter()
        .map(|f| f.path.as_str())
        .collect();
    let dest = (2..)
        .map(|n| format!("part-{n:05}.{ext}"))
        .find(|d| !taken.contains(&d.as_str()))
        .unwrap();
    parts.push(Part::Copy { src: part, dest });
    let rec = &base.record;
    let rows = rec.rows.map(|r| r + added);
    let import = Import {
        registry: Registry::Datasets,
        name: rec.name.clone(),
        experiment: opts.experiment.unwrap_or_else(|| IMPORT_EXPERIMENT.into()),
        source: source_of(file, opts.source)?,
        parts,
    };
    let done = ws.import_entry(import, |id, job, files| DatasetRecord {
        schema: SCHEMA,
        id: id.to_owned(),
        name: rec.name.clone(),
        job_id: job.id.clone(),
        experiment: job.experiment.clone(),
        created_at: Utc::now(),
        rows,
        description: rec.description.clone(),
        metadata: rec.metadata.clone(),
        files,
        supersedes: Some(rec.id.clone()),
    })?;
    Ok(done.entry)
}

/// `df` with exactly `schema`'s columns, in order, cast to its types.
fn conform(df: DataFrame, schema: &Schema, dataset: &str) -> anyhow::Result<DataFrame> {
    let have = df.schema().as_arrow().clone();
    for f in have.fields() {
        if schema.field_with_name(f.name()).is_err() {
            let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            bail!(
                "column `{}` is not in dataset `{dataset}` (its columns are fixed when it is added: {})",
                f.name(),
                names.join(", ")
            );
        }
    }
    let exprs: Vec<Expr> = schema
        .fields()
        .iter()
        .map(|f| {
            let e = if have.field_with_name(f.name()).is_ok() {
                let c = Expr::Column(Column::new_unqualified(f.name()));
                cast(c, f.data_type().clone())
            } else {
                let null = ScalarValue::try_from(f.data_type()).unwrap_or(ScalarValue::Null);
                lit(null)
            };
            e.alias(f.name())
        })
        .collect();
    df.select(exprs)
        .map_err(|e| anyhow::anyhow!("{}", one_line(&e.to_string())))
}

/// Write `df` to the single file `out` in `format`.
async fn write(df: DataFrame, out: &Path, format: Format) -> anyhow::Result<()> {
    let path = out.to_string_lossy().into_owned();
    let opts = DataFrameWriteOptions::new().with_single_file_output(true);
    let r = match format {
        Format::Csv => df.write_csv(&path, opts, None).await,
        Format::Jsonl => df.write_json(&path, opts, None).await,
        Format::Parquet => df.write_parquet(&path, opts, None).await,
    };
    r.map_err(|e| anyhow::anyhow!("{}", one_line(&e.to_string())))?;
    if !out.is_file() {
        bail!("the engine wrote no file at {}", out.display());
    }
    Ok(())
}

/// Write the whole dataset `reference` to `out` in `format` (the format of
/// `out`'s extension when `None`). Returns the number of rows written.
pub async fn export(
    ws: &Workspace,
    reference: &str,
    out: &Path,
    format: Option<Format>,
) -> anyhow::Result<u64> {
    let format = match format {
        Some(f) => f,
        None => Format::of_path(out)?,
    };
    let table = StoredTable::resolve(ws, reference)?;
    let ctx = session()?;
    let df = table.open(&ctx).await?;
    let rows = df
        .clone()
        .count()
        .await
        .map_err(|e| anyhow::anyhow!("{}", one_line(&e.to_string())))? as u64;
    // Written next to `out` and renamed: a failed export leaves no half file.
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let scratch = tempfile::Builder::new()
        .prefix(".labhost-export-")
        .tempdir_in(parent)
        .with_context(|| format!("cannot write in {}", parent.display()))?;
    let tmp: PathBuf = scratch.path().join(format!("out.{}", format.extension()));
    write(df, &tmp, format).await?;
    std::fs::rename(&tmp, out).with_context(|| format!("writing {}", out.display()))?;
    Ok(rows)
}

/// Column types are the engine's; this says whether one is numeric, for
/// renderers that right-align.
pub fn is_numeric(t: &DataType) -> bool {
    t.is_numeric()
}
