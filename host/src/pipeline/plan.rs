//! Expand a pipeline's stages into instances: one per matrix combination
//! and per instance of each upstream stage it takes outputs from.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::bail;
use serde_json::Value;

use super::file::{InputRef, Stage};
use super::record::Input;

/// The most instances a pipeline may expand to.
pub const MAX_INSTANCES: usize = 1000;

/// One planned instance (what the run record stores, minus plugin and state).
#[derive(Debug, Clone)]
pub struct Planned {
    pub name: String,
    pub stage: usize,
    pub label: String,
    pub needs: Vec<String>,
    pub config: serde_json::Map<String, Value>,
    pub datasets: Vec<Input>,
    pub models: Vec<Input>,
}

/// Stages in an order where every stage comes after those it depends on
/// (file order among independent ones).
fn topo_order(stages: &[Stage]) -> anyhow::Result<Vec<usize>> {
    let index: BTreeMap<&str, usize> = stages
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.as_str(), i))
        .collect();
    let deps: Vec<BTreeSet<usize>> = stages
        .iter()
        .map(|s| upstream(s).into_iter().map(|u| index[u]).collect())
        .collect();
    let mut done: Vec<usize> = Vec::new();
    let mut placed = vec![false; stages.len()];
    while done.len() < stages.len() {
        let next = (0..stages.len()).find(|&i| !placed[i] && deps[i].iter().all(|d| placed[*d]));
        match next {
            Some(i) => {
                placed[i] = true;
                done.push(i);
            }
            None => {
                let cycle: Vec<&str> = (0..stages.len())
                    .filter(|i| !placed[*i])
                    .map(|i| stages[i].name.as_str())
                    .collect();
                bail!(
                    "stages depend on each other in a cycle: {}",
                    cycle.join(", ")
                );
            }
        }
    }
    Ok(done)
}

/// Names of the stages `s` depends on.
fn upstream(s: &Stage) -> BTreeSet<&str> {
    let mut out: BTreeSet<&str> = s.spec.needs.iter().map(String::as_str).collect();
    for r in s.spec.datasets.iter().chain(&s.spec.models) {
        if let InputRef::Stage(i) = r {
            out.insert(i.stage.as_str());
        }
    }
    out
}

/// Expand stages into instances, in an order that respects dependencies.
pub fn expand(stages: &[Stage]) -> anyhow::Result<Vec<Planned>> {
    let order = topo_order(stages)?;
    // Stage name → names of its instances.
    let mut instances_of: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut out: Vec<Planned> = Vec::new();
    for si in order {
        let stage = &stages[si];
        // Upstream stages this one fans out with, in order of mention.
        let mut fan_ups: Vec<&str> = Vec::new();
        for r in stage.spec.datasets.iter().chain(&stage.spec.models) {
            if let InputRef::Stage(i) = r {
                if i.fans_out() && !fan_ups.contains(&i.stage.as_str()) {
                    fan_ups.push(&i.stage);
                }
            }
        }
        // Axes: each fanning upstream's instances, then each matrix key.
        let mut axes: Vec<usize> = fan_ups.iter().map(|u| instances_of[*u].len()).collect();
        axes.extend(stage.matrix.iter().map(|(_, v)| v.len()));
        let total = axes
            .iter()
            .try_fold(1usize, |acc, n| acc.checked_mul(*n))
            .filter(|t| out.len() + t <= MAX_INSTANCES);
        let Some(total) = total else {
            bail!(
                "stage `{}` expands past {MAX_INSTANCES} instances in all",
                stage.name
            );
        };
        let mut names = Vec::new();
        for k in 0..total {
            // Mixed-radix digits of k, last axis fastest.
            let mut digits = vec![0usize; axes.len()];
            let mut rest = k;
            for (d, n) in digits.iter_mut().zip(&axes).rev() {
                *d = rest % n;
                rest /= n;
            }
            let chosen: BTreeMap<&str, String> = fan_ups
                .iter()
                .zip(&digits)
                .map(|(u, d)| (*u, instances_of[*u][*d].clone()))
                .collect();
            let mut label = Vec::new();
            for u in &fan_ups {
                if instances_of[*u].len() > 1 {
                    let up = &chosen[u];
                    match out.iter().find(|p| &p.name == up) {
                        Some(p) if !p.label.is_empty() => label.push(format!("{up}: {}", p.label)),
                        _ => label.push(up.clone()),
                    }
                }
            }
            let mut config = stage.config.clone();
            for ((key, values), d) in stage.matrix.iter().zip(&digits[fan_ups.len()..]) {
                let v = &values[*d];
                label.push(format!("{key}={}", short(v)));
                config.insert(key.clone(), v.clone());
            }
            let mut needs: Vec<String> = chosen.values().cloned().collect();
            let mut inputs = |refs: &[InputRef]| -> Vec<Input> {
                let mut v = Vec::new();
                for r in refs {
                    match r {
                        InputRef::Registry(name) => v.push(Input::Registry(name.clone())),
                        InputRef::Stage(i) if i.fans_out() => v.push(Input::Stage {
                            instance: chosen[i.stage.as_str()].clone(),
                            name: i.name.clone(),
                        }),
                        InputRef::Stage(i) => {
                            for inst in &instances_of[&i.stage] {
                                needs.push(inst.clone());
                                v.push(Input::Stage {
                                    instance: inst.clone(),
                                    name: i.name.clone(),
                                });
                            }
                        }
                    }
                }
                v
            };
            let datasets = inputs(&stage.spec.datasets);
            let models = inputs(&stage.spec.models);
            for n in &stage.spec.needs {
                needs.extend(instances_of[n].iter().cloned());
            }
            needs.sort();
            needs.dedup();
            let name = if total == 1 {
                stage.name.clone()
            } else {
                format!("{}#{}", stage.name, k + 1)
            };
            names.push(name.clone());
            out.push(Planned {
                name,
                stage: si,
                label: label.join(", "),
                needs,
                config,
                datasets,
                models,
            });
        }
        instances_of.insert(stage.name.clone(), names);
    }
    Ok(out)
}

fn short(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::file::PipelineFile;
    use super::*;

    fn plan(text: &str) -> anyhow::Result<Vec<Planned>> {
        expand(&PipelineFile::parse(text)?.stages(std::path::Path::new("/"))?)
    }

    #[test]
    fn fans_out_and_in() {
        let p = plan(
            r#"
name = "p"
[stages.report]
plugin = "r"
models = [{ stage = "train", all = true }]
[stages.eval]
plugin = "e"
models = [{ stage = "train" }]
datasets = [{ stage = "gen" }]
[stages.train]
plugin = "t"
datasets = [{ stage = "gen", name = "sentiment" }]
matrix = { lr = [0.1, 0.5, 1.0] }
[stages.gen]
plugin = "g"
"#,
        )
        .unwrap();
        let names: Vec<&str> = p.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(
            names,
            ["gen", "train#1", "train#2", "train#3", "report", "eval#1", "eval#2", "eval#3"]
        );
        assert_eq!(p[2].label, "lr=0.5");
        assert_eq!(p[2].config["lr"], 0.5);
        assert_eq!(p[2].needs, ["gen"]);
        assert_eq!(p[4].needs, ["train#1", "train#2", "train#3"]);
        assert_eq!(p[4].models.len(), 3);
        assert_eq!(p[6].label, "train#2: lr=0.5");
        assert_eq!(p[6].needs, ["gen", "train#2"]);
        assert_eq!(
            p[1].datasets,
            [Input::Stage {
                instance: "gen".into(),
                name: Some("sentiment".into())
            }]
        );
    }

    #[test]
    fn refuses_cycles_and_explosions() {
        let err = plan("name = \"p\"\n[stages.a]\nplugin = \"a\"\nneeds = [\"b\"]\n[stages.b]\nplugin = \"b\"\nneeds = [\"a\"]\n")
            .unwrap_err();
        assert!(err.to_string().contains("cycle: a, b"), "{err}");
        let err = plan("name = \"p\"\n[stages.a]\nplugin = \"a\"\nmatrix = { x = [1,2,3,4,5,6,7,8,9,10], y = [1,2,3,4,5,6,7,8,9,10], z = [1,2,3,4,5,6,7,8,9,10,11] }\n")
            .unwrap_err();
        assert!(err.to_string().contains("past 1000 instances"), "{err}");
    }
}
