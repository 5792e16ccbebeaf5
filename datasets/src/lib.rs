//! Datasets as tables: what an operator brings into a labhost workspace
//! without writing a plugin, and the row queries the CLI and `labhost serve`
//! answer, in Refuel's shape.
//!
//! - [`format`]: which files make a table (CSV, JSONL, Parquet);
//! - [`table`]: a stored dataset opened as a DataFusion table;
//! - [`query`]: filters, multi-key ordering and paging ([`RowQuery`]);
//! - [`import`]: `labhost datasets add` (Refuel `upload_dataset`), `append`
//!   (`add_items`, a new version) and `export` (download in any format).
//!
//! The engine is Apache DataFusion: SQL comparison, `LIKE`/`ILIKE` and NULL
//! semantics, sorts on several keys and paging over the stored files,
//! streamed rather than loaded, with one code path for the three formats.
//! Filters are built as expressions, never as SQL text, so a field name or
//! value cannot change the query's shape.

pub mod format;
pub mod import;
pub mod query;
pub mod table;

pub use format::Format;
pub use import::{add, append, export, AddOptions, AppendOptions};
pub use query::{rows, Direction, Filter, Op, OrderBy, RowPage, RowQuery};
