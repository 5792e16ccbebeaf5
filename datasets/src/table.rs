//! A stored dataset (or a file about to be imported) opened as a DataFusion
//! table.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{
    CsvReadOptions, DataFrame, JsonReadOptions, ParquetReadOptions, SessionConfig, SessionContext,
};
use labhost::store::{DatasetRecord, Registry};
use labhost::Workspace;

use crate::Format;

/// Memory a query may hold (sorts spill beyond it or fail cleanly with
/// "resources exhausted" rather than growing without bound).
pub const QUERY_MEMORY: usize = 512 << 20;

/// Rows read to infer the column types of a CSV or JSONL file.
const INFER_ROWS: usize = 10_000;

/// A session for one query or import: bounded memory, two partitions (the
/// machines labhost targets have few cores, and a query must not starve the
/// jobs running beside it).
pub fn session() -> anyhow::Result<SessionContext> {
    let config = SessionConfig::new()
        .with_target_partitions(2)
        .with_information_schema(false);
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_pool(Arc::new(FairSpillPool::new(QUERY_MEMORY)))
        .build_arc()?;
    Ok(SessionContext::new_with_config_rt(config, runtime))
}

/// Open files of one format as one table.
pub async fn open_files(
    ctx: &SessionContext,
    files: &[PathBuf],
    format: Format,
) -> anyhow::Result<DataFrame> {
    let paths: Vec<String> = files
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    // The extension filter is the file's own: the format was decided by
    // the caller ([`Format::of_files`]).
    let ext = files
        .first()
        .and_then(|p| p.extension())
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    let df = match format {
        Format::Csv => {
            let opts = CsvReadOptions::new()
                .has_header(true)
                .file_extension(&ext)
                .schema_infer_max_records(INFER_ROWS);
            ctx.read_csv(paths, opts).await
        }
        Format::Jsonl => {
            let opts = JsonReadOptions {
                file_extension: &ext,
                schema_infer_max_records: INFER_ROWS,
                ..Default::default()
            };
            ctx.read_json(paths, opts).await
        }
        Format::Parquet => {
            let opts = ParquetReadOptions {
                file_extension: &ext,
                ..Default::default()
            };
            ctx.read_parquet(paths, opts).await
        }
    };
    df.map_err(|e| anyhow::anyhow!("{}", one_line(&e.to_string())))
}

/// A stored dataset: its record, format and files.
#[derive(Debug, Clone)]
pub struct StoredTable {
    pub record: DatasetRecord,
    pub format: Format,
    pub files: Vec<PathBuf>,
}

impl StoredTable {
    /// The dataset an id or name resolves to, as a table.
    pub fn resolve(ws: &Workspace, reference: &str) -> anyhow::Result<StoredTable> {
        let entry = ws.resolve(Registry::Datasets, reference)?;
        let path = ws
            .registry_dir(Registry::Datasets)
            .join(&entry.id)
            .join(Registry::Datasets.record_name());
        let record: DatasetRecord = labhost::store::read_json_opt(&path)?
            .with_context(|| format!("dataset `{}` has no record", entry.id))?;
        let what = format!("dataset `{}`", record.id);
        let format = Format::of_files(&what, record.files.files.iter().map(|f| f.path.as_str()))?;
        let dir = ws.root().join(&record.files.location);
        let files = record
            .files
            .files
            .iter()
            .map(|f| dir.join(&f.path))
            .collect();
        Ok(StoredTable {
            record,
            format,
            files,
        })
    }

    pub async fn open(&self, ctx: &SessionContext) -> anyhow::Result<DataFrame> {
        open_files(ctx, &self.files, self.format)
            .await
            .with_context(|| format!("reading dataset `{}`", self.record.id))
    }
}

/// The first line of an engine error, without DataFusion's nesting
/// prefixes ("Error during planning: …", "External error: …").
pub fn one_line(e: &str) -> String {
    let mut s = e.lines().next().unwrap_or("").trim();
    for prefix in [
        "Error during planning: ",
        "External error: ",
        "Arrow error: ",
        "Execution error: ",
        "Parser error: ",
        "Schema error: ",
        "Object Store error: ",
        "Json error: ",
        "Csv error: ",
        "Parquet error: ",
    ] {
        while let Some(rest) = s.strip_prefix(prefix) {
            s = rest;
        }
    }
    s.to_owned()
}

/// Whether `p` names a file this module would read as a table.
pub fn is_table_file(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .and_then(Format::of_name)
        .is_some()
}
