//! The job's free metadata: a JSON object in the job record, merged as
//! JSON Merge Patch (RFC 7386) does.

use serde_json::{Map, Value};

use crate::bindings::wit::metadata::Host;
use crate::error::{CallError, CallResult};
use crate::job::JobCtx;
use crate::state::HostState;

impl Host for HostState {
    fn get(&mut self) -> wasmtime::Result<String> {
        Ok(match &self.job {
            Some(j) => Value::Object(j.record.metadata.clone()).to_string(),
            None => "{}".into(),
        })
    }

    fn update(&mut self, patch: String) -> CallResult<String> {
        let job = self.job()?;
        let patch = parse(job, "metadata patch", &patch)?;
        let merged = merged(&job.record.metadata, &patch);
        set(job, merged)
    }

    fn reset(&mut self, value: String) -> CallResult<()> {
        let job = self.job()?;
        let value = parse(job, "metadata", &value)?;
        set(job, value).map(drop)
    }
}

/// A guest's JSON object, redacted.
pub(super) fn parse(job: &JobCtx, what: &str, text: &str) -> CallResult<Map<String, Value>> {
    if text.len() > super::MAX_METADATA {
        return Err(too_big(what, text.len()));
    }
    let mut v = super::json_object(what, text)?;
    job.secrets.redact_json(&mut v);
    match v {
        Value::Object(m) => Ok(m),
        _ => unreachable!("json_object returns objects"),
    }
}

/// Store `value` as the job's metadata if it fits; returns its JSON text.
pub(super) fn set(job: &mut JobCtx, value: Map<String, Value>) -> CallResult<String> {
    let value = Value::Object(value);
    let text = value.to_string();
    if text.len() > super::MAX_METADATA {
        return Err(too_big("the merged metadata", text.len()));
    }
    let Value::Object(m) = value else {
        unreachable!("made from a map")
    };
    job.record.metadata = m;
    job.snapshot(false)?;
    Ok(text)
}

fn too_big(what: &str, len: usize) -> CallError {
    CallError::Limit(format!(
        "{what} is {len} bytes of JSON; job metadata holds at most {}",
        crate::units::human_bytes(super::MAX_METADATA as u64)
    ))
}

/// `target` with `patch` merged in: keys of `patch` replace those of
/// `target`, objects merge recursively, `null` removes a key.
pub(super) fn merged(
    target: &Map<String, Value>,
    patch: &Map<String, Value>,
) -> Map<String, Value> {
    let mut out = target.clone();
    for (k, v) in patch {
        match v {
            Value::Null => {
                out.remove(k);
            }
            Value::Object(p) => {
                let base = match out.get(k) {
                    Some(Value::Object(t)) => t.clone(),
                    _ => Map::new(),
                };
                out.insert(k.clone(), Value::Object(merged(&base, p)));
            }
            other => {
                out.insert(k.clone(), other.clone());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn merges_as_json_merge_patch() {
        // The examples of RFC 7386, section 3, that have object patches.
        let cases = [
            (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
            (
                json!({"a": "b"}),
                json!({"b": "c"}),
                json!({"a": "b", "b": "c"}),
            ),
            (json!({"a": "b"}), json!({"a": null}), json!({})),
            (
                json!({"a": "b", "b": "c"}),
                json!({"a": null}),
                json!({"b": "c"}),
            ),
            (json!({"a": ["b"]}), json!({"a": "c"}), json!({"a": "c"})),
            (
                json!({"a": {"b": "c"}}),
                json!({"a": {"b": "d", "c": null}}),
                json!({"a": {"b": "d"}}),
            ),
            (
                json!({"a": [{"b": "c"}]}),
                json!({"a": [1]}),
                json!({"a": [1]}),
            ),
            (
                json!({"e": null}),
                json!({"a": 1}),
                json!({"e": null, "a": 1}),
            ),
            (
                json!({}),
                json!({"a": {"bb": {"ccc": null}}}),
                json!({"a": {"bb": {}}}),
            ),
        ];
        for (target, patch, want) in cases {
            assert_eq!(Value::Object(merged(&obj(target), &obj(patch))), want);
        }
    }
}
