//! Lifecycle: deleting jobs (refused while what they saved is in use),
//! checkpoint retention, `labhost gc`, and export → import of bundles with
//! their digests verified — through real guests, the CLI and the API.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use labhost::{JobHandle, JobRecord, JobStatus};
use labhost_tests::{blake3_file, stderr, stdout, Lab, Server};
use serde_json::{json, Value};

/// A datagen job that saved dataset `sentiment-<job id>`.
fn datagen(lab: &Lab) -> (JobRecord, String) {
    let p = lab.load("rust", "datagen");
    let rec = lab.run(lab.spec(&p, json!({"rows": 60})));
    assert_eq!(rec.status, JobStatus::Complete, "{:?}", rec.message);
    let ds = rec.datasets[0].clone();
    (rec, ds)
}

/// A trainer on dataset `ds` with these extra limits.
fn trainer(
    lab: &Lab,
    ds: &str,
    epochs: u32,
    tweak: impl FnOnce(&mut labhost::Limits),
) -> JobRecord {
    let p = lab.load("rust", "trainer");
    let mut spec = lab.spec(&p, json!({"epochs": epochs}));
    spec.sandbox.grants.datasets = vec![ds.to_owned()];
    tweak(&mut spec.sandbox.limits);
    let rec = lab.run(spec);
    assert_eq!(rec.status, JobStatus::Complete, "{:?}", rec.message);
    rec
}

/// A probe that runs until cancelled, granted dataset `ds`.
fn hold(lab: &Lab, ds: &str) -> JobHandle {
    let p = lab.load("rust", "probe");
    let mut spec = lab.spec(&p, json!({"scenario": "cooperative"}));
    spec.sandbox.grants.datasets = vec![ds.to_owned()];
    let _g = lab.rt.enter();
    lab.host.start(spec).unwrap()
}

fn end(lab: &Lab, h: JobHandle) -> JobRecord {
    h.cancel();
    let rec = lab.rt.block_on(h.wait()).unwrap();
    assert!(rec.status.is_terminal());
    rec
}

fn fails(out: &std::process::Output) -> String {
    assert_eq!(out.status.code(), Some(1), "stdout: {}", stdout(out));
    let e = stderr(out);
    assert_eq!(e.lines().count(), 1, "{e}");
    e.trim_end().to_owned()
}

fn ok(out: &std::process::Output) -> String {
    assert!(out.status.success(), "{}", stderr(out));
    stdout(out)
}

/// Every file below `dir` (relative path → blake3), host-only markers left out.
fn tree(dir: &Path) -> BTreeMap<String, String> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            let rel = p.strip_prefix(base).unwrap().to_string_lossy().into_owned();
            if [".lock", ".ended"].contains(&rel.as_str()) {
                continue;
            }
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                out.insert(rel, blake3_file(&p));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn trash_is_empty(root: &Path) -> bool {
    std::fs::read_dir(root.join(".trash")).map_or(true, |mut d| d.next().is_none())
}

#[test]
fn delete_is_refused_while_a_dataset_it_saved_is_granted_to_a_running_job() {
    let lab = Lab::new();
    let (gen, ds) = datagen(&lab);
    let other = datagen(&lab).0; // beside it, untouched throughout
    let held = hold(&lab, &ds);
    let user = held.id.clone();

    assert_eq!(
        fails(&lab.cli(&["rm", &gen.id])),
        format!(
            "error: cannot remove job {}: dataset `{ds}` is granted to running job {user}",
            gen.id
        )
    );
    assert_eq!(
        fails(&lab.cli(&["rm", &user])),
        format!("error: job {user} is running; cancel it and wait for its end first")
    );
    assert!(lab.job_dir(&gen).join("job.json").is_file());
    assert!(lab.root().join("datasets").join(&ds).is_dir());
    assert_eq!(
        fails(&lab.cli(&["rm", "20990101-000000-ffff"])),
        format!(
            "error: no job or pipeline run `20990101-000000-ffff` in workspace {}",
            lab.root().display()
        )
    );

    let ended = end(&lab, held);
    let out = ok(&lab.cli(&["rm", &gen.id]));
    assert!(
        out.starts_with(&format!(
            "removed job {} and dataset(s) {ds}; freed ",
            gen.id
        )),
        "{out}"
    );
    assert!(!lab.job_dir(&gen).exists());
    assert!(!lab.root().join("datasets").join(&ds).exists());
    assert!(trash_is_empty(lab.root()));
    // The job that used it is still there; so is the other dataset.
    ok(&lab.cli(&["show", &ended.id]));
    ok(&lab.cli(&["verify"]));
    let listed: Value = serde_json::from_str(&ok(&lab.cli(&["datasets", "--json"]))).unwrap();
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [other.datasets[0].as_str()]);
}

#[test]
fn retention_keeps_the_newest_checkpoints_and_the_best_by_a_metric() {
    let lab = Lab::new();
    let (_, ds) = datagen(&lab);
    let best: labhost::lifecycle::retention::KeepBest = "train_loss:max".parse().unwrap();
    let rec = trainer(&lab, &ds, 6, |l| {
        l.keep_checkpoints = 2;
        l.keep_best = Some(best);
    });
    // The highest train_loss epoch, from the job's own metrics.
    let text = std::fs::read_to_string(lab.job_dir(&rec).join("metrics.jsonl")).unwrap();
    let mut worst = (0u64, f64::MIN);
    for line in text.lines() {
        let p: Value = serde_json::from_str(line).unwrap();
        if p["name"] == "train_loss" && p["value"].as_f64().unwrap() > worst.1 {
            worst = (p["step"].as_u64().unwrap(), p["value"].as_f64().unwrap());
        }
    }
    let mut expected: BTreeSet<u64> = BTreeSet::from([5, 6, worst.0]);
    let expected: Vec<String> = std::mem::take(&mut expected)
        .into_iter()
        .map(|e| format!("epoch-{e}"))
        .collect();
    let kept: Vec<String> = rec.checkpoints.iter().map(|c| c.name.clone()).collect();
    assert_eq!(kept, expected);
    let on_disk: BTreeSet<String> = std::fs::read_dir(lab.job_dir(&rec).join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(on_disk, expected.iter().cloned().collect());
    let log = lab.log(&rec);
    assert!(
        log.contains(
            "retention (keep-checkpoints 2, keep-best train_loss:max): deleted checkpoint(s)"
        ),
        "{log}"
    );
    ok(&lab.cli(&["verify", &rec.id]));
    // The limits are recorded with the job, and a rerun keeps them.
    let shown: Value = serde_json::from_str(&ok(&lab.cli(&["show", &rec.id, "--json"]))).unwrap();
    assert_eq!(shown["sandbox"]["limits"]["keep_checkpoints"], 2);
    assert_eq!(shown["sandbox"]["limits"]["keep_best"], "train_loss:max");

    // Without keep-best: exactly the newest N.
    let rec = trainer(&lab, &ds, 4, |l| l.keep_checkpoints = 1);
    let kept: Vec<&str> = rec.checkpoints.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(kept, ["epoch-4"]);
    // keep-checkpoints 0 (the default) keeps them all.
    let rec = trainer(&lab, &ds, 3, |_| {});
    assert_eq!(rec.checkpoints.len(), 3);
    // A bad setting is refused as bad usage, saying why.
    let out = lab.cli(&["run", "x.wasm", "--keep-best", "loss"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("invalid keep-best `loss`: expected METRIC:min or METRIC:max"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn gc_removes_planted_leftovers_and_nothing_else() {
    let lab = Lab::new();
    let (gen, ds) = datagen(&lab);
    let root = lab.root().to_owned();
    let job = lab.job_dir(&gen);
    let held = hold(&lab, &ds);
    let running = root.join("experiments/default/jobs").join(&held.id);
    std::fs::write(running.join(".tmp-live-0000000000000001"), b"in use").unwrap();

    let plant = |rel: &str, bytes: &[u8]| {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, bytes).unwrap();
    };
    let jrel = format!("experiments/default/jobs/{}", gen.id);
    plant(
        &format!("{jrel}/artifacts/.tmp-a-0000000000000002"),
        b"half",
    );
    plant(&format!("{jrel}/.cancel"), b"2026-01-01T00:00:00Z");
    plant(&format!("{jrel}/checkpoints/ghost/w.bin"), &[7u8; 5000]);
    plant(
        "experiments/default/jobs/20200101-000000-dead/output.log",
        b"x",
    );
    plant(".import-00000000000000aa/tree/x", b"x");
    plant(
        "datasets/.tmp-sentiment-20200101-000000-dead-0123456789abcdef/files/d.jsonl",
        b"{}",
    );
    plant(".tmp-labhost.toml-0000000000000003", b"x");
    // A dataset whose job is gone.
    let orphan = "sentiment-20200101-000000-beef";
    let src = root.join("datasets").join(&ds);
    let dst = root.join("datasets").join(orphan);
    std::fs::create_dir_all(dst.join("files")).unwrap();
    for f in std::fs::read_dir(src.join("files")).unwrap().flatten() {
        std::fs::copy(f.path(), dst.join("files").join(f.file_name())).unwrap();
    }
    let mut rec: Value =
        serde_json::from_slice(&std::fs::read(src.join("dataset.json")).unwrap()).unwrap();
    rec["id"] = orphan.into();
    rec["job_id"] = "20200101-000000-beef".into();
    std::fs::write(dst.join("dataset.json"), serde_json::to_vec(&rec).unwrap()).unwrap();

    let expected: BTreeSet<(String, &str)> = [
        (
            format!("{jrel}/artifacts/.tmp-a-0000000000000002"),
            "temp file of an interrupted write",
        ),
        (
            format!("{jrel}/checkpoints/ghost"),
            "stored item its job's record does not list",
        ),
        (
            format!("{jrel}/.cancel"),
            "cancel request of an ended job or run",
        ),
        (
            "experiments/default/jobs/20200101-000000-dead".into(),
            "job directory without a record",
        ),
        (
            ".import-00000000000000aa".into(),
            "staging of an interrupted import",
        ),
        (
            "datasets/.tmp-sentiment-20200101-000000-dead-0123456789abcdef".into(),
            "temp file of an interrupted write",
        ),
        (
            ".tmp-labhost.toml-0000000000000003".into(),
            "temp file of an interrupted write",
        ),
        (
            format!("datasets/{orphan}"),
            "registry entry whose job no longer exists",
        ),
    ]
    .into_iter()
    .collect();
    let listed = |out: &str, verb: &str| -> BTreeSet<(String, String)> {
        out.lines()
            .filter_map(|l| l.strip_prefix(&format!("{verb} ")))
            .filter(|l| l.ends_with(')'))
            .map(|l| {
                let (path, rest) = l.split_once("  (").unwrap();
                let kind = rest.rsplit_once(", ").unwrap().0;
                (path.to_owned(), kind.to_owned())
            })
            .collect()
    };
    let as_owned = |s: &BTreeSet<(String, &str)>| -> BTreeSet<(String, String)> {
        s.iter().map(|(p, k)| (p.clone(), k.to_string())).collect()
    };

    // Young leftovers nobody's lock covers are kept by default.
    let out = ok(&lab.cli(&["gc", "--dry-run"]));
    let young = listed(&out, "would remove");
    assert!(
        !young
            .iter()
            .any(|(p, _)| p.contains("20200101-000000-dead")),
        "{out}"
    );
    assert!(young.iter().any(|(p, _)| p.ends_with("/.cancel")), "{out}");

    let out = ok(&lab.cli(&["gc", "--dry-run", "--min-age", "0s"]));
    assert_eq!(listed(&out, "would remove"), as_owned(&expected), "{out}");
    assert!(
        out.lines()
            .last()
            .unwrap()
            .starts_with("would remove 8 leftovers, freeing "),
        "{out}"
    );
    assert!(
        job.join(".cancel").exists() && dst.is_dir(),
        "a dry run removes nothing"
    );

    let out = ok(&lab.cli(&["gc", "--min-age", "0s"]));
    assert_eq!(listed(&out, "removed"), as_owned(&expected), "{out}");
    assert!(
        out.lines()
            .last()
            .unwrap()
            .starts_with("removed 8 leftovers, freed "),
        "{out}"
    );
    for (p, _) in &expected {
        assert!(
            root.join(p).symlink_metadata().is_err(),
            "{p} is still there"
        );
    }
    // Nothing else: the job, its dataset, the running job and its file.
    ok(&lab.cli(&["verify"]));
    assert!(root.join("datasets").join(&ds).is_dir());
    assert!(running.join(".tmp-live-0000000000000001").is_file());
    assert_eq!(
        ok(&lab.cli(&["gc", "--min-age", "0s"])),
        "nothing to remove\n"
    );
    let rec = end(&lab, held);
    assert!(rec.status.is_terminal());
}

/// Export `id` from `from` into a bundle file; import it into `to`.
fn export(lab: &Lab, id: &str) -> PathBuf {
    let out = lab.dir.path().join(format!("{id}.tar"));
    let text = ok(&lab.cli(&["export", id, out.to_str().unwrap()]));
    assert!(text.contains(" to "), "{text}");
    out
}

fn show_json(lab: &Lab, id: &str) -> Value {
    serde_json::from_str(&ok(&lab.cli(&["show", id, "--json"]))).unwrap()
}

#[test]
fn export_then_import_round_trips_a_job_and_verifies() {
    let a = Lab::new();
    let (_, ds) = datagen(&a);
    let rec = trainer(&a, &ds, 3, |_| {});
    let bundle = export(&a, &rec.id);

    let b = Lab::new();
    let out = ok(&b.cli(&["import", bundle.to_str().unwrap()]));
    assert!(
        out.starts_with(&format!(
            "imported job {} and model(s) {}",
            rec.id, rec.models[0]
        )),
        "{out}"
    );
    assert!(out.trim_end().ends_with("every digest verified)"), "{out}");
    ok(&b.cli(&["verify"]));
    assert_eq!(show_json(&a, &rec.id), show_json(&b, &rec.id));
    let metrics = |lab: &Lab| ok(&lab.cli(&["metrics", &rec.id, "--json"]));
    assert_eq!(metrics(&a), metrics(&b));
    assert_eq!(tree(&a.job_dir(&rec)), tree(&b.job_dir(&rec)));
    let model = |lab: &Lab| tree(&lab.root().join("models").join(&rec.models[0]));
    assert_eq!(model(&a), model(&b));
    // The imported job reads as ended (its marker written), and its model
    // resolves by name in the new workspace.
    assert!(b.job_dir(&rec).join(".ended").is_file());
    let models: Value = serde_json::from_str(&ok(&b.cli(&["models", "--json"]))).unwrap();
    assert_eq!(models[0]["id"], rec.models[0].as_str());

    // Again: the id exists.
    assert_eq!(
        fails(&b.cli(&["import", bundle.to_str().unwrap()])),
        format!("error: job {} already exists in this workspace", rec.id)
    );
    // The dataset it was trained on is not in the bundle (another job saved it).
    assert!(!b.root().join("datasets").join(&ds).exists());
    // Exported into the same workspace: refused, nothing changed.
    assert_eq!(
        fails(&a.cli(&["import", bundle.to_str().unwrap()])),
        format!("error: job {} already exists in this workspace", rec.id)
    );
    // A bad target is one line.
    assert_eq!(
        fails(&a.cli(&["export", "nope", "/tmp/x.tar"])),
        format!(
            "error: no job or pipeline run `nope` in workspace {}",
            a.root().display()
        )
    );
}

#[test]
fn a_pipeline_run_exports_and_imports_whole_and_is_removed_whole() {
    let a = Lab::new();
    let dir = a.dir.path();
    let dist = labhost_tests::repo_root().join("guests/dist/rust");
    std::fs::write(
        dir.join("p.toml"),
        format!(
            r#"name = "mini"
[stages.generate]
plugin = "{d}/datagen.wasm"
config = {{ rows = 40 }}
[stages.train]
plugin = "{d}/trainer.wasm"
datasets = [{{ stage = "generate" }}]
config = {{ epochs = 2 }}
limits = {{ keep-checkpoints = 1 }}
"#,
            d = dist.display()
        ),
    )
    .unwrap();
    ok(&a.cli(&["pipeline", "run", dir.join("p.toml").to_str().unwrap()]));
    let runs = labhost::pipeline::list_runs(a.ws()).unwrap();
    assert_eq!(runs.len(), 1);
    let run_id = runs[0].id.clone();
    let jobs = a.ws().jobs(None).unwrap();
    assert_eq!(jobs.len(), 2);
    let train = jobs
        .iter()
        .find(|j| j.plugin.name == "sentiment-trainer")
        .unwrap();
    // Stage limits carry retention: one checkpoint kept.
    assert_eq!(train.checkpoints.len(), 1);

    // A job of an existing run goes with its run.
    assert_eq!(
        fails(&a.cli(&["rm", &train.id])),
        format!(
            "error: job {} belongs to pipeline run {run_id} (train); remove the run to remove its jobs",
            train.id
        )
    );
    let bundle = export(&a, &run_id);
    let b = Lab::new();
    let out = ok(&b.cli(&["import", bundle.to_str().unwrap()]));
    assert!(
        out.starts_with(&format!("imported pipeline run {run_id} with 2 jobs and ")),
        "{out}"
    );
    ok(&b.cli(&["verify"]));
    for j in &jobs {
        assert_eq!(show_json(&a, &j.id), show_json(&b, &j.id));
    }
    assert_eq!(
        ok(&a.cli(&["pipeline", "status", &run_id])),
        ok(&b.cli(&["pipeline", "status", &run_id]))
    );

    let out = ok(&a.cli(&["rm", &run_id]));
    assert!(
        out.starts_with(&format!("removed pipeline run {run_id} with 2 jobs and ")),
        "{out}"
    );
    assert!(a.ws().jobs(None).unwrap().is_empty());
    assert!(!a.root().join("pipelines").join(&run_id).exists());
    assert_eq!(
        std::fs::read_dir(a.root().join("datasets"))
            .unwrap()
            .count(),
        0
    );
    assert_eq!(
        std::fs::read_dir(a.root().join("models")).unwrap().count(),
        0
    );
}

// ---- hostile bundles ---------------------------------------------------------

/// The members of a bundle: (header, data), in order.
fn members(path: &Path) -> Vec<(tar::Header, Vec<u8>)> {
    use std::io::Read;
    let mut ar = tar::Archive::new(std::fs::File::open(path).unwrap());
    ar.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let mut h = e.header().clone();
            // Long names come as extensions: keep the full path in the header.
            let p = e.path_bytes().into_owned();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            set_raw_path(&mut h, &p);
            (h, data)
        })
        .collect()
}

/// Write a GNU header's name bytes as given (no checks: attacks need `..`).
fn set_raw_path(h: &mut tar::Header, p: &[u8]) {
    let gnu = h.as_gnu_mut().expect("gnu header");
    assert!(p.len() <= gnu.name.len(), "test paths fit the header");
    gnu.name = [0; 100];
    gnu.name[..p.len()].copy_from_slice(p);
    h.set_cksum();
}

fn write_bundle(path: &Path, members: &[(tar::Header, Vec<u8>)]) {
    let mut b = tar::Builder::new(std::fs::File::create(path).unwrap());
    for (h, data) in members {
        b.append(h, &data[..]).unwrap();
    }
    b.finish().unwrap();
}

fn special(kind: tar::EntryType, path: &str, link: &str) -> (tar::Header, Vec<u8>) {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(0);
    h.set_mode(0o644);
    if !link.is_empty() {
        h.set_link_name(link).unwrap();
    }
    set_raw_path(&mut h, path.as_bytes());
    (h, Vec::new())
}

#[test]
fn tampered_and_hostile_bundles_are_refused_and_nothing_is_imported() {
    let a = Lab::new();
    let (gen, _) = datagen(&a);
    let bundle = export(&a, &gen.id);
    let good = members(&bundle);
    let jrel = format!("experiments/default/jobs/{}", gen.id);
    let b = Lab::new();
    // A job running beside the refusals, unaffected.
    let (_, bds) = datagen(&b);
    let bystander = hold(&b, &bds);
    let before = b.ws().jobs(None).unwrap().len();
    let try_import = |name: &str, ms: &[(tar::Header, Vec<u8>)]| -> String {
        let p = b.dir.path().join(format!("{name}.tar"));
        write_bundle(&p, ms);
        let e = fails(&b.cli(&["import", p.to_str().unwrap()]));
        assert_eq!(b.ws().jobs(None).unwrap().len(), before, "{name}");
        assert!(!b.job_dir(&gen).exists(), "{name}");
        e
    };

    // One byte changed in the metrics (same size): named, with both digests.
    let mut tampered = good.clone();
    let (h, data) = tampered
        .iter_mut()
        .find(|(h, _)| h.path_bytes().ends_with(b"metrics.jsonl"))
        .unwrap();
    let _ = h;
    let at = data.iter().position(|c| c.is_ascii_digit()).unwrap();
    data[at] = if data[at] == b'9' { b'8' } else { data[at] + 1 };
    let e = try_import("tampered", &tampered);
    assert!(
        e.starts_with(&format!(
            "error: bundle file `{jrel}/metrics.jsonl` does not match its manifest (blake3 "
        )),
        "{e}"
    );

    let manifest = good[0].clone();
    let with = |m: (tar::Header, Vec<u8>)| {
        let mut v = vec![manifest.clone(), m];
        v.extend(good[1..].iter().cloned());
        v
    };
    let attacks = [
        (
            "symlink",
            special(tar::EntryType::Symlink, &format!("{jrel}/artifacts/x"), "/etc/passwd"),
            format!("error: bundle member `{jrel}/artifacts/x` is a symlink; only regular files are accepted"),
        ),
        (
            "hardlink",
            special(tar::EntryType::Link, &format!("{jrel}/artifacts/x"), "/etc/passwd"),
            format!("error: bundle member `{jrel}/artifacts/x` is a hard link; only regular files are accepted"),
        ),
        (
            "device",
            special(tar::EntryType::Char, &format!("{jrel}/artifacts/x"), ""),
            format!("error: bundle member `{jrel}/artifacts/x` is a character device; only regular files are accepted"),
        ),
        (
            "fifo",
            special(tar::EntryType::Fifo, &format!("{jrel}/artifacts/x"), ""),
            format!("error: bundle member `{jrel}/artifacts/x` is a FIFO; only regular files are accepted"),
        ),
        (
            "dotdot",
            {
                let mut m = special(tar::EntryType::Regular, "", "");
                set_raw_path(&mut m.0, b"experiments/../../../../tmp/labhost-evil");
                m.0.set_size(4);
                m.0.set_cksum();
                m.1 = b"evil".to_vec();
                m
            },
            "error: bundle member `experiments/../../../../tmp/labhost-evil` has an unsafe path (absolute, or with `..`, `.` or empty parts)".to_owned(),
        ),
        (
            "absolute",
            {
                let mut m = special(tar::EntryType::Regular, "/tmp/labhost-evil", "");
                m.0.set_size(4);
                m.0.set_cksum();
                m.1 = b"evil".to_vec();
                m
            },
            "error: bundle member `/tmp/labhost-evil` has an unsafe path (absolute, or with `..`, `.` or empty parts)".to_owned(),
        ),
        (
            "undeclared",
            {
                let mut m = special(tar::EntryType::Regular, &format!("{jrel}/artifacts/extra"), "");
                m.0.set_size(1);
                m.0.set_cksum();
                m.1 = b"x".to_vec();
                m
            },
            format!("error: bundle member `{jrel}/artifacts/extra` is not in its manifest"),
        ),
    ];
    for (name, member, want) in attacks {
        assert_eq!(try_import(name, &with(member)), want, "{name}");
    }
    assert!(!Path::new("/tmp/labhost-evil").exists());

    // A manifest naming a path outside the workspace.
    let mut m: Value = serde_json::from_slice(&manifest.1).unwrap();
    m["files"][0]["path"] = "../../escape".into();
    let text = serde_json::to_vec(&m).unwrap();
    let mut h = manifest.0.clone();
    h.set_size(text.len() as u64);
    h.set_cksum();
    let mut evil = vec![(h, text)];
    evil.extend(good[1..].iter().cloned());
    assert_eq!(
        try_import("manifest", &evil),
        "error: the manifest lists `../../escape`, an unsafe path (absolute, or with `..`, `.` or empty parts)"
    );
    // A member missing.
    let short: Vec<_> = good[..good.len() - 1].to_vec();
    assert!(try_import("short", &short).starts_with("error: the bundle is missing `"));
    // Not a bundle at all.
    std::fs::write(b.dir.path().join("junk.tar"), b"not a tar").unwrap();
    let e = fails(&b.cli(&["import", b.dir.path().join("junk.tar").to_str().unwrap()]));
    assert!(e.starts_with("error: "), "{e}");
    nothing_imported_but(&b, before);

    // The untouched bundle still imports, and the bystander ran throughout.
    ok(&b.cli(&["import", bundle.to_str().unwrap()]));
    ok(&b.cli(&["verify"]));
    let rec = end(&b, bystander);
    assert_eq!(
        (rec.status, rec.message.as_deref()),
        (JobStatus::Cancelled, Some("cancelled: stopped on request"))
    );
}

fn nothing_imported_but(lab: &Lab, jobs: usize) {
    assert_eq!(lab.ws().jobs(None).unwrap().len(), jobs);
    let staged: Vec<_> = std::fs::read_dir(lab.root())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".import-"))
        .collect();
    assert!(staged.is_empty());
}

#[test]
fn the_api_deletes_exports_and_imports_with_the_right_scopes() {
    use reqwest::StatusCode;
    let a = Lab::new();
    let (gen, ds) = datagen(&a);
    let token = |lab: &Lab, scope: &str| {
        ok(&lab.cli(&["token", "create", &format!("t-{scope}"), "--scope", scope]))
            .trim()
            .to_owned()
    };
    let (read, run, admin) = (token(&a, "read"), token(&a, "run"), token(&a, "admin"));
    let server = Server::start(&a);
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let job_url = server.url(&format!("/api/v1/jobs/{}", gen.id));
    let error = |r: reqwest::blocking::Response| -> (StatusCode, String) {
        let s = r.status();
        let v: Value = r.json().unwrap();
        (s, v["error"].as_str().unwrap().to_owned())
    };

    // Scopes: deleting needs admin.
    let (s, e) = error(http.delete(&job_url).bearer_auth(&run).send().unwrap());
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    // In use: 409 with the reason.
    let held = hold(&a, &ds);
    assert_eq!(
        error(http.delete(&job_url).bearer_auth(&admin).send().unwrap()),
        (
            StatusCode::CONFLICT,
            format!(
                "cannot remove job {}: dataset `{ds}` is granted to running job {}",
                gen.id, held.id
            )
        )
    );

    // Export with a read token, streamed; import into another workspace.
    let r = http
        .get(server.url(&format!("/api/v1/jobs/{}/export", gen.id)))
        .bearer_auth(&read)
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/x-tar");
    let bytes = r.bytes().unwrap();
    let b = Lab::new();
    let b_admin = token(&b, "admin");
    let b_read = token(&b, "read");
    let bserver = Server::start(&b);
    let import = bserver.url("/api/v1/import");
    let (s, _) = error(
        http.post(&import)
            .bearer_auth(&b_read)
            .body(bytes.clone())
            .send()
            .unwrap(),
    );
    assert_eq!(s, StatusCode::FORBIDDEN);
    let r = http
        .post(&import)
        .bearer_auth(&b_admin)
        .body(bytes.clone())
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let v: Value = r.json().unwrap();
    assert_eq!(v["jobs"], json!([gen.id]));
    assert_eq!(v["datasets"], json!([ds]));
    ok(&b.cli(&["verify"]));
    assert_eq!(
        error(
            http.post(&import)
                .bearer_auth(&b_admin)
                .body(bytes.clone())
                .send()
                .unwrap()
        ),
        (
            StatusCode::CONFLICT,
            format!("job {} already exists in this workspace", gen.id)
        )
    );
    // A tampered upload: 400, the file named.
    let mut bad = bytes.to_vec();
    let needle = b"\"rows\"";
    let pos = bad
        .windows(needle.len())
        .rposition(|w| w == needle)
        .expect("the record's config in the bundle");
    bad[pos + 1] = b'R';
    let c = Lab::new();
    let c_admin = token(&c, "admin");
    let cserver = Server::start(&c);
    let (s, e) = error(
        http.post(cserver.url("/api/v1/import"))
            .bearer_auth(&c_admin)
            .body(bad)
            .send()
            .unwrap(),
    );
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    assert!(e.starts_with("bundle file `"), "{e}");
    assert!(e.contains("does not match its manifest"), "{e}");
    assert!(c.ws().jobs(None).unwrap().is_empty());

    // Once the user ended: deleted (200), then gone (404).
    end(&a, held);
    let r = http.delete(&job_url).bearer_auth(&admin).send().unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().unwrap();
    assert_eq!(v["jobs"], json!([gen.id]));
    assert_eq!(v["datasets"], json!([ds]));
    let (s, _) = error(http.get(&job_url).bearer_auth(&read).send().unwrap());
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, e) = error(http.delete(&job_url).bearer_auth(&admin).send().unwrap());
    assert_eq!(s, StatusCode::NOT_FOUND, "{e}");
    // The OpenAPI document lists the routes.
    let doc: Value = http
        .get(server.url("/api/v1/openapi.json"))
        .bearer_auth(&read)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(doc["paths"]["/api/v1/jobs/{id}"]["delete"].is_object());
    assert!(doc["paths"]["/api/v1/jobs/{id}/export"]["get"].is_object());
    assert!(doc["paths"]["/api/v1/import"]["post"].is_object());
}
