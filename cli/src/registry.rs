//! `labhost models …` and `labhost datasets …`: list the registries, add
//! what an operator brings in, and query, append to and export datasets.
//! Argument parsing and rendering only; the work is in `labhost` (model
//! imports) and `labhost-datasets` (tables).

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use labhost::store::import::ModelImport;
use labhost::units::human_bytes;
use labhost::Workspace;
use labhost_datasets::{AddOptions, Filter, Format, OrderBy, RowQuery};
use serde_json::Value;

use crate::show::{print_json, table};

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ModelsArgs {
    #[command(subcommand)]
    cmd: Option<ModelsCmd>,
    /// List as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum ModelsCmd {
    /// Add a pre-trained model file or directory to the registry.
    Add {
        name: String,
        path: PathBuf,
        #[arg(long)]
        architecture: Option<String>,
        #[arg(long)]
        pipeline_tag: Option<String>,
        /// What it was trained from (free text, e.g. a Hugging Face id).
        #[arg(long)]
        parent_model: Option<String>,
        /// A JSON object.
        #[arg(long, default_value = "{}")]
        metadata: String,
        /// Experiment the import is recorded in.
        #[arg(long)]
        experiment: Option<String>,
    },
}

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct DatasetsArgs {
    #[command(subcommand)]
    cmd: Option<DatasetsCmd>,
    /// List as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum DatasetsCmd {
    /// Add a CSV, JSONL or Parquet file as a new dataset.
    Add {
        name: String,
        file: PathBuf,
        #[arg(long)]
        description: Option<String>,
        /// A JSON object.
        #[arg(long, default_value = "{}")]
        metadata: String,
        /// Experiment the import is recorded in.
        #[arg(long)]
        experiment: Option<String>,
    },
    /// Append the rows of a file to a dataset, as a new version of it.
    Append {
        /// Dataset id or name.
        dataset: String,
        file: PathBuf,
        #[arg(long)]
        experiment: Option<String>,
    },
    /// Query a dataset's rows: filters, ordering, paging.
    Rows {
        /// Dataset id or name.
        dataset: String,
        /// `FIELD OP [VALUE]`; OP is one of = <> < <= > >= LIKE ILIKE
        /// `NOT LIKE` `NOT ILIKE` `IS NULL` `IS NOT NULL` (repeatable, all
        /// must hold). LIKE without `%` matches the value anywhere.
        #[arg(long = "filter", value_name = "FILTER")]
        filters: Vec<String>,
        /// `FIELD [ASC|DESC]` (repeatable: later keys break ties).
        #[arg(long = "order-by", value_name = "ORDER")]
        order_by: Vec<String>,
        #[arg(long, default_value_t = labhost_datasets::query::DEFAULT_MAX_ITEMS)]
        limit: usize,
        #[arg(long, default_value_t = 0)]
        offset: usize,
        /// Print the page as JSON (`{dataset, total, offset, columns, rows}`).
        #[arg(long)]
        json: bool,
    },
    /// Write a whole dataset to one file (CSV, JSONL or Parquet).
    Export {
        /// Dataset id or name.
        dataset: String,
        out: PathBuf,
        /// csv, jsonl or parquet (default: from OUT's extension).
        #[arg(long)]
        format: Option<String>,
    },
}

fn json_object(what: &str, text: &str) -> anyhow::Result<Value> {
    let v: Value =
        serde_json::from_str(text).with_context(|| format!("{what} is not valid JSON"))?;
    anyhow::ensure!(v.is_object(), "{what} must be a JSON object");
    Ok(v)
}

pub fn models(ws: &Workspace, args: ModelsArgs) -> anyhow::Result<()> {
    let Some(cmd) = args.cmd else {
        return crate::show::models(ws, args.json);
    };
    match cmd {
        ModelsCmd::Add {
            name,
            path,
            architecture,
            pipeline_tag,
            parent_model,
            metadata,
            experiment,
        } => {
            let rec = ws.add_model(ModelImport {
                name,
                path,
                architecture,
                pipeline_tag,
                parent_model,
                metadata: json_object("--metadata", &metadata)?,
                experiment,
                source: None,
            })?;
            println!(
                "added model {} ({} file(s), {}, job {})",
                rec.id,
                rec.files.files.len(),
                human_bytes(rec.files.size),
                rec.job_id
            );
            Ok(())
        }
    }
}

pub fn datasets(ws: &Workspace, args: DatasetsArgs) -> anyhow::Result<()> {
    let Some(cmd) = args.cmd else {
        return crate::show::datasets(ws, args.json);
    };
    let rt = crate::runtime()?;
    match cmd {
        DatasetsCmd::Add {
            name,
            file,
            description,
            metadata,
            experiment,
        } => {
            let opts = AddOptions {
                name,
                description,
                metadata: json_object("--metadata", &metadata)?,
                experiment,
                source: None,
            };
            let rec = rt.block_on(labhost_datasets::add(ws, &file, opts))?;
            println!(
                "added dataset {} ({} rows, {}, job {})",
                rec.id,
                rec.rows.unwrap_or(0),
                human_bytes(rec.files.size),
                rec.job_id
            );
        }
        DatasetsCmd::Append {
            dataset,
            file,
            experiment,
        } => {
            let rec = rt.block_on(labhost_datasets::append(
                ws,
                &dataset,
                &file,
                labhost_datasets::AppendOptions {
                    experiment,
                    source: None,
                },
            ))?;
            println!(
                "dataset {} is now {} ({} rows, replaces {})",
                rec.name,
                rec.id,
                rec.rows.unwrap_or(0),
                rec.supersedes.as_deref().unwrap_or("-")
            );
        }
        DatasetsCmd::Rows {
            dataset,
            filters,
            order_by,
            limit,
            offset,
            json,
        } => {
            let q = RowQuery {
                filters: filters
                    .iter()
                    .map(|f| f.parse::<Filter>())
                    .collect::<anyhow::Result<_>>()?,
                order_by: order_by
                    .iter()
                    .map(|o| o.parse::<OrderBy>())
                    .collect::<anyhow::Result<_>>()?,
                max_items: limit,
                offset,
            };
            let page = rt.block_on(labhost_datasets::rows(ws, &dataset, &q))?;
            if json {
                return print_json(&page);
            }
            let header: Vec<&str> = page.columns.iter().map(|c| c.name.as_str()).collect();
            let rows = page
                .rows
                .iter()
                .map(|r| {
                    page.columns
                        .iter()
                        .map(|c| match r.get(&c.name) {
                            None | Some(Value::Null) => "-".to_owned(),
                            Some(Value::String(s)) => {
                                labhost::text::for_terminal_line(s).into_owned()
                            }
                            Some(v) => v.to_string(),
                        })
                        .collect()
                })
                .collect();
            table(&header, rows);
            eprintln!(
                "rows {}–{} of {} matching",
                (page.offset + 1).min(page.total as usize),
                page.offset + page.rows.len(),
                page.total
            );
        }
        DatasetsCmd::Export {
            dataset,
            out,
            format,
        } => {
            let format = format.as_deref().map(Format::parse).transpose()?;
            let n = rt.block_on(labhost_datasets::export(ws, &dataset, &out, format))?;
            println!("wrote {n} rows to {}", out.display());
        }
    }
    Ok(())
}
