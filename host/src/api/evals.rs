use std::collections::BTreeSet;

use super::json_object;
use crate::bindings::wit::evals::{EvalRow, EvalSummary, Host, TableFormat};
use crate::error::{CallError, CallResult};
use crate::events::StoredKind;
use crate::names::check_name;
use crate::state::HostState;
use crate::store::fsutil;
use crate::store::EvalRecord;

impl Host for HostState {
    fn save(
        &mut self,
        name: String,
        rows: Vec<EvalRow>,
        format: TableFormat,
    ) -> CallResult<EvalSummary> {
        let job = self.job()?;
        check_name("eval", &name).map_err(CallError::Invalid)?;
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
        let tmp = fsutil::temp_sibling(&dest);
        let before = job.quota.clone();
        let stored = fsutil::store_bytes(&bytes, &tmp, &mut job.quota).and_then(|entry| {
            fsutil::publish(&tmp, &dest)
                .map(|()| entry)
                .map_err(|e| CallError::Io(format!("storing eval `{name}`: {e}")))
        });
        let entry = match stored {
            Ok(e) => e,
            Err(e) => {
                fsutil::discard(&tmp);
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
        let file = fsutil::stored_record(&name, job.ws.relative(&dest), vec![entry], false);
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
    use super::mean;

    #[test]
    fn the_mean_of_huge_finite_scores_is_finite() {
        assert_eq!(mean([f64::MAX, f64::MAX].into_iter(), 2), f64::MAX);
        assert_eq!(mean([f64::MAX, -f64::MAX].into_iter(), 2), 0.0);
        assert_eq!(mean([1.0, 2.0, 3.0, 4.0].into_iter(), 4), 2.5);
        assert_eq!(mean([0.6, 1.0].into_iter(), 2), 0.8);
    }
}
