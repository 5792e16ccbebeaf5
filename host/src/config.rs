//! Job parameters: checked against the plugin's declared parameters and
//! completed with defaults, before the guest runs.

use serde_json::{Map, Value};

use crate::plugin::{ParamType, PluginInfo};

/// Check one value against a parameter type.
pub fn check_type(name: &str, ty: ParamType, v: &Value) -> Result<(), String> {
    let ok = match ty {
        ParamType::Text => v.is_string(),
        ParamType::Integer => v.is_i64() || v.is_u64(),
        ParamType::Number => v.is_number(),
        ParamType::Boolean => v.is_boolean(),
        ParamType::Json => true,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{name}` must be {} {}, got {v}",
            article(ty),
            ty.as_str()
        ))
    }
}

fn article(ty: ParamType) -> &'static str {
    match ty {
        ParamType::Integer => "an",
        _ => "a",
    }
}

/// Apply a `key=value` override from the command line: the raw text is
/// read according to the parameter's type (text stays text).
pub fn apply_override(
    info: &PluginInfo,
    config: &mut Map<String, Value>,
    pair: &str,
) -> anyhow::Result<()> {
    let (key, raw) = pair
        .split_once('=')
        .ok_or_else(|| anyhow::anyhow!("invalid config override `{pair}`: expected key=value"))?;
    let param = info
        .params
        .iter()
        .find(|p| p.name == key)
        .ok_or_else(|| unknown(info, key))?;
    let value = match param.ty {
        ParamType::Text => Value::String(raw.to_owned()),
        _ => serde_json::from_str(raw).map_err(|_| {
            anyhow::anyhow!(
                "invalid config: `{key}` must be {} {}, got `{raw}`",
                article(param.ty),
                param.ty.as_str()
            )
        })?,
    };
    config.insert(key.to_owned(), value);
    Ok(())
}

fn unknown(info: &PluginInfo, key: &str) -> anyhow::Error {
    let known: Vec<&str> = info.params.iter().map(|p| p.name.as_str()).collect();
    anyhow::anyhow!(
        "invalid config: `{}` has no parameter `{key}` (parameters: {})",
        info.name,
        if known.is_empty() {
            "none".to_owned()
        } else {
            known.join(", ")
        }
    )
}

/// Validate `config` against the plugin's parameters and fill defaults.
pub fn resolve(
    info: &PluginInfo,
    config: &Map<String, Value>,
) -> anyhow::Result<Map<String, Value>> {
    let mut problems = Vec::new();
    for key in config.keys() {
        if !info.params.iter().any(|p| &p.name == key) {
            problems.push(
                unknown(info, key)
                    .to_string()
                    .trim_start_matches("invalid config: ")
                    .to_owned(),
            );
        }
    }
    let mut out = Map::new();
    for p in &info.params {
        match config.get(&p.name).or(p.default.as_ref()) {
            Some(v) => match check_type(&p.name, p.ty, v) {
                Ok(()) => {
                    out.insert(p.name.clone(), v.clone());
                }
                Err(e) => problems.push(e),
            },
            None => problems.push(format!(
                "missing required parameter `{}` ({})",
                p.name,
                p.ty.as_str()
            )),
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        anyhow::bail!("invalid config: {}", problems.join("; "))
    }
}

/// Read a config file (a JSON object).
pub fn read_file(path: &std::path::Path) -> anyhow::Result<Map<String, Value>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read config {}: {e}", path.display()))?;
    match serde_json::from_str(&text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => anyhow::bail!("invalid config {}: expected a JSON object", path.display()),
        Err(e) => anyhow::bail!("invalid config {}: not valid JSON: {e}", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::{ParamInfo, PluginKind};
    use serde_json::json;

    fn info() -> PluginInfo {
        let p = |name: &str, ty, default: Option<Value>| ParamInfo {
            name: name.into(),
            ty,
            default,
            description: String::new(),
        };
        PluginInfo {
            name: "t".into(),
            version: "1".into(),
            kind: PluginKind::Trainer,
            description: String::new(),
            params: vec![
                p("epochs", ParamType::Integer, Some(json!(3))),
                p("lr", ParamType::Number, Some(json!(0.1))),
                p("name", ParamType::Text, None),
            ],
        }
    }

    #[test]
    fn fills_defaults_and_reads_overrides_by_type() {
        let mut c = Map::new();
        apply_override(&info(), &mut c, "name=123").unwrap();
        apply_override(&info(), &mut c, "lr=0.5").unwrap();
        let r = resolve(&info(), &c).unwrap();
        assert_eq!(
            Value::Object(r),
            json!({"epochs": 3, "lr": 0.5, "name": "123"})
        );
    }

    #[test]
    fn reports_every_problem_in_one_line() {
        let c = json!({"epochs": "x", "bogus": 1})
            .as_object()
            .unwrap()
            .clone();
        let e = resolve(&info(), &c).unwrap_err().to_string();
        assert_eq!(
            e,
            "invalid config: `t` has no parameter `bogus` (parameters: epochs, lr, name); `epochs` must be an integer, got \"x\"; missing required parameter `name` (text)"
        );
        let mut c = Map::new();
        assert_eq!(
            apply_override(&info(), &mut c, "epochs=three")
                .unwrap_err()
                .to_string(),
            "invalid config: `epochs` must be an integer, got `three`"
        );
    }
}
