//! The file formats a dataset table can be stored in.

use std::path::Path;

use anyhow::bail;

/// A table file format, known by the file's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Csv,
    Jsonl,
    Parquet,
}

impl Format {
    /// The format of a file by its extension (`.csv`, `.jsonl`/`.ndjson`,
    /// `.parquet`), or `None`.
    pub fn of_name(name: &str) -> Option<Format> {
        let ext = Path::new(name).extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "csv" => Some(Format::Csv),
            "jsonl" | "ndjson" => Some(Format::Jsonl),
            "parquet" => Some(Format::Parquet),
            _ => None,
        }
    }

    /// Like [`Format::of_name`], with a one-line error naming the file.
    pub fn of_path(path: &Path) -> anyhow::Result<Format> {
        match path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(Format::of_name)
        {
            Some(f) => Ok(f),
            None => bail!(
                "{}: not a table file (expected a .csv, .jsonl, .ndjson or .parquet file)",
                path.display()
            ),
        }
    }

    /// The one format all these stored file names share.
    pub fn of_files<'a>(
        what: &str,
        names: impl IntoIterator<Item = &'a str>,
    ) -> anyhow::Result<Format> {
        let mut found: Option<Format> = None;
        let mut any = false;
        for n in names {
            any = true;
            match (Format::of_name(n), found) {
                (None, _) => {
                    bail!("{what} is not a table: its file `{n}` is not CSV, JSONL or Parquet")
                }
                (Some(f), None) => found = Some(f),
                (Some(f), Some(g)) if f != g => bail!(
                    "{what} is not one table: it mixes {} and {} files",
                    g.name(),
                    f.name()
                ),
                _ => {}
            }
        }
        match found {
            Some(f) if any => Ok(f),
            _ => bail!("{what} holds no files"),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Jsonl => "jsonl",
            Format::Parquet => "parquet",
        }
    }

    /// The extension files of this format are stored with.
    pub fn extension(self) -> &'static str {
        self.name()
    }

    pub fn parse(s: &str) -> anyhow::Result<Format> {
        match s.to_ascii_lowercase().as_str() {
            "csv" => Ok(Format::Csv),
            "jsonl" | "ndjson" => Ok(Format::Jsonl),
            "parquet" => Ok(Format::Parquet),
            _ => bail!("unknown format `{s}` (expected csv, jsonl or parquet)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_known_by_extension_and_never_mixed() {
        assert_eq!(Format::of_name("a/b/data.CSV"), Some(Format::Csv));
        assert_eq!(Format::of_name("x.ndjson"), Some(Format::Jsonl));
        assert_eq!(Format::of_name("x.parquet"), Some(Format::Parquet));
        assert_eq!(Format::of_name("x.json"), None);
        assert_eq!(Format::of_name("csv"), None);
        assert_eq!(
            Format::of_files("dataset `d`", ["data.jsonl", "part-0002.jsonl"]).unwrap(),
            Format::Jsonl
        );
        assert_eq!(
            Format::of_files("dataset `d`", ["a.csv", "b.jsonl"])
                .unwrap_err()
                .to_string(),
            "dataset `d` is not one table: it mixes csv and jsonl files"
        );
        assert_eq!(
            Format::of_files("dataset `d`", ["model.bin"])
                .unwrap_err()
                .to_string(),
            "dataset `d` is not a table: its file `model.bin` is not CSV, JSONL or Parquet"
        );
        assert_eq!(
            Format::of_path(Path::new("/tmp/x.txt"))
                .unwrap_err()
                .to_string(),
            "/tmp/x.txt: not a table file (expected a .csv, .jsonl, .ndjson or .parquet file)"
        );
    }
}
