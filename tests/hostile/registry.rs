//! Finding 13: registry poisoning.

use crate::*;

fn save(a: &Arena, attack: &str, name: &str) -> JobRecord {
    let rec = a.lab.run(
        a.lab
            .spec(&a.evil, json!({"attack": attack, "target": name})),
    );
    assert_eq!(a.report(&rec, "saved"), format!("{name}-{}", rec.id));
    rec
}

/// A FAILED job's dataset does not shadow a published name; a second
/// published entry with the same name makes the name ambiguous (an error
/// listing the ids), never a silent switch; ids always work; a pipeline
/// pins the id when the run is created.
#[test]
fn h13_a_name_cannot_be_shadowed_silently() {
    let a = arena();
    let ws = a.lab.ws();
    let first = save(&a, "publish", "sentiment");
    assert_eq!(first.status, JobStatus::Complete);
    let first_id = format!("sentiment-{}", first.id);
    let poison = save(&a, "poison", "sentiment");
    assert_eq!(poison.status, JobStatus::Failed);
    let poison_id = format!("sentiment-{}", poison.id);
    let resolve = |r: &str| ws.resolve(labhost::store::Registry::Datasets, r);
    assert_eq!(resolve("sentiment").unwrap().id, first_id);
    assert_eq!(resolve(&poison_id).unwrap().id, poison_id);

    // A job granted the name gets the published entry.
    let mut spec = a.lab.spec(&a.probe, json!({}));
    spec.sandbox.grants.datasets = vec!["sentiment".into()];
    assert_eq!(
        a.lab.run(spec).sandbox.grants.datasets,
        std::slice::from_ref(&first_id)
    );

    // A pipeline created now pins that id.
    let file = a.lab.dir.path().join("p.toml");
    std::fs::write(
        &file,
        format!(
            "name = \"p\"\n[stages.s]\nplugin = \"{}\"\ndatasets = [\"sentiment\"]\n",
            labhost_tests::guest("rust", "probe").display()
        ),
    )
    .unwrap();
    let out = a
        .lab
        .cli(&["pipeline", "run", "--json", file.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        labhost_tests::stderr(&out)
    );
    let runs = a.lab.root().join("pipelines");
    let run = std::fs::read_dir(&runs)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let record: Value =
        serde_json::from_slice(&std::fs::read(run.join("run.json")).unwrap()).unwrap();
    assert_eq!(
        record["instances"][0]["datasets"],
        json!([{"registry": first_id}])
    );

    let second = save(&a, "publish", "sentiment");
    let second_id = format!("sentiment-{}", second.id);
    let err = resolve("sentiment").unwrap_err().to_string();
    let mut ids = [first_id, second_id];
    ids.sort();
    assert_eq!(
        err,
        format!(
            "dataset name `sentiment` is ambiguous: 2 published entries have it ({}, {}); give an id",
            ids[0], ids[1]
        )
    );
    // The guest API lists only published entries (and the caller's own).
    let lister = a
        .lab
        .run(a.lab.spec(&a.evil, json!({"attack": "list-registry"})));
    let all = ws.datasets().unwrap();
    assert!(all.iter().any(|d| d.id == poison_id));
    assert_eq!(a.report(&lister, "datasets"), (all.len() - 1).to_string());
}
