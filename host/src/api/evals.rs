use std::collections::BTreeSet;

use super::json_object;
use crate::bindings::wit::evals::{EvalRow, EvalSummary, Host, TableFormat};
use crate::error::{CallError, CallResult};
use crate::events::StoredKind;
use crate::state::HostState;
use crate::store::EvalRecord;
use crate::store::{digest, durable, ingest};

impl Host for HostState {
    fn save(
        &mut self,
        name: String,
        rows: Vec<EvalRow>,
        format: TableFormat,
    ) -> CallResult<EvalSummary> {
        let job = self.job()?;
        job.check_name("eval", &name)?;
        if job.record.evals.iter().any(|e| e.name == name) {
            return Err(CallError::Invalid(format!(
                "eval `{name}` already exists in this job"
            )));
        }
        if rows.is_empty() {
            return Err(CallError::Invalid(format!("eval `{name}` has no rows")));
        }
        let mut extras = Vec::with_capacity(rows.len());
        for (i, row) in rows.iter().enumerate() {
            if !row.score.is_finite() {
                return Err(CallError::Invalid(format!(
                    "eval `{name}` row {i}: score must be finite, got {}",
                    row.score
                )));
            }
            let extra = if row.extra.trim().is_empty() {
                serde_json::json!({})
            } else {
                json_object(&format!("eval `{name}` row {i} extra"), &row.extra)?
            };
            extras.push(extra);
        }
        let ext = match format {
            TableFormat::Csv => "csv",
            TableFormat::Jsonl => "jsonl",
        };
        let file_name = if name.ends_with(&format!(".{ext}")) {
            name.clone()
        } else {
            format!("{name}.{ext}")
        };
        let bytes = match format {
            TableFormat::Csv => to_csv(&rows, &extras)
                .map_err(|e| CallError::Trap(wasmtime::Error::msg(e.to_string())))?,
            TableFormat::Jsonl => to_jsonl(&rows, &extras)
                .map_err(|e| CallError::Trap(wasmtime::Error::msg(e.to_string())))?,
        };
        let dest = job.paths.evals().join(&file_name);
        if dest.symlink_metadata().is_ok() {
            return Err(CallError::Invalid(format!(
                "eval file `{file_name}` already exists in this job"
            )));
        }
        let tmp = durable::temp_sibling(&dest);
        let before = job.quota.clone();
        let stored = ingest::store_bytes(&bytes, &tmp, &mut job.quota)
            .map_err(CallError::from)
            .and_then(|entry| {
                durable::publish(&tmp, &dest)
                    .map(|()| entry)
                    .map_err(|e| CallError::Io(format!("storing eval `{name}`: {e}")))
            });
        let entry = match stored {
            Ok(e) => e,
            Err(e) => {
                durable::discard(&tmp);
                job.quota = before; // nothing was kept
                return Err(e);
            }
        };
        job.pending.stored(
            &job.paths.evals(),
            &dest,
            std::slice::from_ref(&entry),
            false,
        );
        let file = digest::stored_record(&name, job.ws.relative(&dest), vec![entry], false);
        let count = rows.len() as u64;
        let mean_score = mean(rows.iter().map(|r| r.score), count);
        job.record.evals.push(EvalRecord {
            name: name.clone(),
            count,
            mean_score,
            file: file.clone(),
        });
        job.stored(StoredKind::Eval, &file)?;
        Ok(EvalSummary {
            name,
            count,
            mean_score,
            file: (&file).into(),
        })
    }
}

/// Mean of finite scores, finite whatever their size: each is divided by
/// the count before summing (the sum of `f64::MAX` twice would be
/// infinite, and JSON cannot hold it).
fn mean(scores: impl Iterator<Item = f64> + Clone, count: u64) -> f64 {
    let sum: f64 = scores.clone().sum();
    if sum.is_finite() {
        sum / count as f64
    } else {
        scores.map(|s| s / count as f64).sum()
    }
}

fn extra_columns(extras: &[serde_json::Value]) -> Vec<String> {
    let mut cols = BTreeSet::new();
    for e in extras {
        if let Some(o) = e.as_object() {
            cols.extend(o.keys().cloned());
        }
    }
    cols.into_iter()
        .filter(|c| !["input", "output", "expected_output", "score"].contains(&c.as_str()))
        .collect()
}

fn to_csv(rows: &[EvalRow], extras: &[serde_json::Value]) -> anyhow::Result<Vec<u8>> {
    let cols = extra_columns(extras);
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = vec![
        "input".to_owned(),
        "output".into(),
        "expected_output".into(),
        "score".into(),
    ];
    header.extend(cols.iter().cloned());
    w.write_record(&header)?;
    for (row, extra) in rows.iter().zip(extras) {
        let mut rec = vec![
            row.input.clone(),
            row.output.clone(),
            row.expected.clone().unwrap_or_default(),
            row.score.to_string(),
        ];
        for c in &cols {
            rec.push(match extra.get(c) {
                None | Some(serde_json::Value::Null) => String::new(),
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(v) => v.to_string(),
            });
        }
        w.write_record(&rec)?;
    }
    Ok(w.into_inner()?)
}

fn to_jsonl(rows: &[EvalRow], extras: &[serde_json::Value]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    for (row, extra) in rows.iter().zip(extras) {
        let mut obj = serde_json::Map::new();
        if let Some(o) = extra.as_object() {
            obj.extend(o.clone());
        }
        obj.insert("input".into(), row.input.clone().into());
        obj.insert("output".into(), row.output.clone().into());
        obj.insert("expected_output".into(), row.expected.clone().into());
        obj.insert("score".into(), row.score.into());
        serde_json::to_writer(&mut out, &obj)?;
        out.push(b'\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::{mean, to_csv, to_jsonl, EvalRow};
    use serde_json::json;

    fn row(input: &str, output: &str, expected: Option<&str>, score: f64) -> EvalRow {
        EvalRow {
            input: input.into(),
            output: output.into(),
            expected: expected.map(Into::into),
            score,
            extra: String::new(),
        }
    }

    fn csv(rows: &[EvalRow], extras: &[serde_json::Value]) -> String {
        String::from_utf8(to_csv(rows, extras).unwrap()).unwrap()
    }

    /// Fields holding a comma, quote, CR or LF are quoted, quotes doubled;
    /// others (spaces included) are written as they are.
    #[test]
    fn csv_quotes_commas_quotes_and_newlines() {
        let rows = [
            row("plain", "out", Some("exp"), 1.0),
            row("a, with comma", "say \"hi\"", None, 0.5),
            row("two\nlines", "cr\rlf", Some(""), 0.25),
            row("", " padded ", Some("\"quoted, both\""), -0.0),
        ];
        let extras = vec![json!({}); rows.len()];
        assert_eq!(
            csv(&rows, &extras),
            "input,output,expected_output,score\n\
             plain,out,exp,1\n\
             \"a, with comma\",\"say \"\"hi\"\"\",,0.5\n\
             \"two\nlines\",\"cr\rlf\",,0.25\n\
             , padded ,\"\"\"quoted, both\"\"\",-0\n"
        );
    }

    /// Extra columns: the union of every row's keys, sorted, after the
    /// fixed ones; keys that name a fixed column are not repeated; missing
    /// and null are empty, strings are bare, other JSON is written as JSON
    /// (and quoted when it holds a comma or quote).
    #[test]
    fn csv_extra_columns_are_the_union_of_the_rows_keys() {
        let rows = [row("a", "x", None, 1.0), row("b", "y", None, 0.0)];
        let extras = [
            json!({"zeta": "z, z", "alpha": 1, "score": 99, "input": "shadow"}),
            json!({"alpha": null, "list": [1, "two"], "obj": {"k": true}}),
        ];
        assert_eq!(
            csv(&rows, &extras),
            "input,output,expected_output,score,alpha,list,obj,zeta\n\
             a,x,,1,1,,,\"z, z\"\n\
             b,y,,0,,\"[1,\"\"two\"\"]\",\"{\"\"k\"\":true}\",\n"
        );
    }

    /// Every CSV table reads back as the rows it was made from.
    #[test]
    fn csv_round_trips_through_a_reader() {
        let nasty = [
            "", ",", "\"", "\"\"", "a\nb", "a\r\nb", " x ", "ü😀", "=1+1", "\\",
        ];
        let rows: Vec<EvalRow> = nasty
            .iter()
            .enumerate()
            .map(|(i, s)| row(s, &s.repeat(2), Some(s), i as f64 / 4.0))
            .collect();
        let extras: Vec<_> = nasty.iter().map(|s| json!({"note": s})).collect();
        let bytes = to_csv(&rows, &extras).unwrap();
        let mut r = csv::Reader::from_reader(&bytes[..]);
        let read: Vec<Vec<String>> = r
            .records()
            .map(|rec| rec.unwrap().iter().map(str::to_owned).collect())
            .collect();
        assert_eq!(read.len(), rows.len());
        for ((rec, row), s) in read.iter().zip(&rows).zip(nasty) {
            assert_eq!(
                rec,
                &[
                    row.input.clone(),
                    row.output.clone(),
                    s.to_owned(),
                    row.score.to_string(),
                    s.to_owned()
                ],
                "{s:?}"
            );
        }
    }

    #[test]
    fn jsonl_rows_keep_extras_under_the_fixed_fields() {
        let rows = [row("in", "out", None, 0.5), row("a\"b", "", Some("e"), 1.0)];
        let extras = [json!({"score": 7, "k": [1]}), json!({})];
        let text = String::from_utf8(to_jsonl(&rows, &extras).unwrap()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert!(text.ends_with('\n'));
        assert_eq!(
            lines,
            [
                json!({"input": "in", "output": "out", "expected_output": null, "score": 0.5, "k": [1]}),
                json!({"input": "a\"b", "output": "", "expected_output": "e", "score": 1.0}),
            ]
        );
    }

    #[test]
    fn the_mean_of_huge_finite_scores_is_finite() {
        assert_eq!(mean([f64::MAX, f64::MAX].into_iter(), 2), f64::MAX);
        assert_eq!(mean([f64::MAX, -f64::MAX].into_iter(), 2), 0.0);
        assert_eq!(mean([1.0, 2.0, 3.0, 4.0].into_iter(), 4), 2.5);
        assert_eq!(mean([0.6, 1.0].into_iter(), 2), 0.8);
    }
}
