//! The read API (`labhost::read`): following a running job from its files
//! (what `labhost logs -f`, a server and a Python client share), resuming
//! from a cursor, and metric queries with step ranges and downsampling.

use labhost::read::{Cursor, Follower, MetricQuery};
use labhost::{JobEvent, JobStatus, StoredKind};
use labhost_tests::{stdout, Lab};
use serde_json::json;

/// A 3-epoch training job on a freshly generated dataset.
fn trainer_spec(lab: &Lab) -> labhost::JobSpec {
    let datagen = lab.load("rust", "datagen");
    lab.run(lab.spec(&datagen, json!({"rows": 300})));
    let trainer = lab.load("rust", "trainer");
    let mut spec = lab.spec(&trainer, json!({"epochs": 3}));
    spec.sandbox.grants.datasets = vec!["sentiment".into()];
    spec
}

/// Follow a training job while it runs (polling its files as another
/// process would), then check the stream against what the job left: every
/// log line and metric point once and in order, progress rising to 100,
/// every stored item, and the end last. A second follower started from a
/// cursor taken mid-way sees exactly the rest.
#[test]
fn a_running_job_is_followed_from_its_files() {
    let lab = Lab::new();
    let spec = trainer_spec(&lab);
    let _guard = lab.rt.enter();
    let handle = lab.host.start(spec).unwrap();
    let paths = lab.ws().job_paths("default", &handle.id);

    let mut follower = Follower::new(lab.ws(), paths.clone(), Cursor::default());
    let mut updates = Vec::new();
    while !follower.done() {
        let batch = follower.poll().unwrap();
        if batch.is_empty() {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        updates.extend(batch);
    }
    let rec = lab.rt.block_on(handle.wait()).unwrap();
    assert_eq!(rec.status, JobStatus::Complete, "{:?}", rec.message);

    let logs: Vec<String> = updates
        .iter()
        .filter_map(|u| match &u.event {
            JobEvent::Log { message, .. } => Some(message.clone()),
            _ => None,
        })
        .collect();
    let file_lines = lab
        .log(&rec)
        .lines()
        .filter(|l| !l.starts_with(' '))
        .count();
    assert_eq!(logs.len(), file_lines);
    assert_eq!(
        logs.last().unwrap(),
        &format!("job ended COMPLETE: {}", rec.message.clone().unwrap())
    );
    let metrics = updates
        .iter()
        .filter(|u| matches!(u.event, JobEvent::Metric { .. }))
        .count();
    let metric_lines = std::fs::read_to_string(paths.metrics())
        .unwrap()
        .lines()
        .count();
    assert!(metric_lines > 0);
    assert_eq!(metrics, metric_lines);
    let progress: Vec<f32> = updates
        .iter()
        .filter_map(|u| match u.event {
            JobEvent::Progress { percent, .. } => Some(percent),
            _ => None,
        })
        .collect();
    assert!(progress.windows(2).all(|w| w[0] <= w[1]), "{progress:?}");
    assert_eq!(progress.last(), Some(&100.0));
    let stored: Vec<(StoredKind, String)> = updates
        .iter()
        .filter_map(|u| match &u.event {
            JobEvent::Stored { kind, name, .. } => Some((*kind, name.clone())),
            _ => None,
        })
        .collect();
    let checkpoints: Vec<String> = stored
        .iter()
        .filter(|(k, _)| *k == StoredKind::Checkpoint)
        .map(|(_, n)| n.clone())
        .collect();
    assert_eq!(checkpoints, ["epoch-1", "epoch-2", "epoch-3"]);
    assert_eq!(
        stored
            .iter()
            .filter(|(k, _)| *k == StoredKind::Model)
            .count(),
        rec.models.len()
    );
    assert!(matches!(
        updates.last().unwrap().event,
        JobEvent::Ended {
            status: JobStatus::Complete,
            ..
        }
    ));

    // Resume from a cursor in the middle of both files (after 3 log lines
    // and 10 metric points, as a client would hold it): exactly the rest.
    let offset_after = |path: std::path::PathBuf, lines: usize| -> u64 {
        let text = std::fs::read(path).unwrap();
        let mut seen = 0;
        for (i, b) in text.iter().enumerate() {
            if *b == b'\n' {
                seen += 1;
                if seen == lines {
                    return i as u64 + 1;
                }
            }
        }
        panic!("fewer than {lines} lines")
    };
    let cursor = Cursor {
        log: offset_after(paths.log(), 3),
        metrics: offset_after(paths.metrics(), 10),
        ..Cursor::default()
    };
    let mut again = Follower::new(lab.ws(), paths, cursor);
    let mut rest = Vec::new();
    while !again.done() {
        rest.extend(again.poll().unwrap());
    }
    // Each stream in its own order (a poll returns the new log lines, then
    // the new metric points).
    let logs_of = |u: &labhost::read::Update| match &u.event {
        JobEvent::Log { message, .. } => Some(message.clone()),
        _ => None,
    };
    let metrics_of = |u: &labhost::read::Update| match &u.event {
        JobEvent::Metric { name, step, .. } => Some(format!("{name} {step:?}")),
        _ => None,
    };
    assert_eq!(
        rest.iter().filter_map(logs_of).collect::<Vec<_>>(),
        updates
            .iter()
            .filter_map(logs_of)
            .skip(3)
            .collect::<Vec<_>>()
    );
    assert_eq!(
        rest.iter().filter_map(metrics_of).collect::<Vec<_>>(),
        updates
            .iter()
            .filter_map(metrics_of)
            .skip(10)
            .collect::<Vec<_>>()
    );
    // The stored items all come again (the cursor had seen none), once.
    let stored_again = rest
        .iter()
        .filter(|u| matches!(u.event, JobEvent::Stored { .. }))
        .count();
    assert_eq!(stored_again, stored.len());
}

/// Metric queries by name and step range, and the downsampled form, through
/// the library and `labhost metrics`.
#[test]
fn metrics_by_name_step_range_and_downsampled() {
    let lab = Lab::new();
    let rec = lab.run(trainer_spec(&lab));
    let paths = lab.ws().job_paths(&rec.experiment, &rec.id);
    let all = labhost::read::metrics(&paths, &MetricQuery::default()).unwrap();
    let name = all.iter().find(|p| p.step.is_some()).unwrap().name.clone();
    let series: Vec<_> = all.iter().filter(|p| p.name == name).collect();
    assert!(series.len() > 20, "{}", series.len());

    let q = MetricQuery {
        names: vec![name.clone()],
        steps: Some(3..=7),
        max_points: None,
    };
    let got = labhost::read::metrics(&paths, &q).unwrap();
    let want: Vec<_> = series
        .iter()
        .filter(|p| p.step.is_some_and(|s| (3..=7).contains(&s)))
        .map(|p| (p.step, p.value))
        .collect();
    assert!(!want.is_empty());
    assert_eq!(
        got.iter().map(|p| (p.step, p.value)).collect::<Vec<_>>(),
        want
    );

    let out = lab.cli(&[
        "metrics", &rec.id, "--name", &name, "--steps", "3..7", "--json",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let cli: Vec<serde_json::Value> = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(cli.len(), want.len());

    let out = lab.cli(&[
        "metrics",
        &rec.id,
        "--name",
        &name,
        "--max-points",
        "10",
        "--json",
    ]);
    let cli: Vec<serde_json::Value> = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(cli.len() <= 12 && cli.len() >= 2, "{}", cli.len());
    assert_eq!(cli[0]["step"], json!(series[0].step));
    assert_eq!(
        cli.last().unwrap()["step"],
        json!(series.last().unwrap().step)
    );

    let out = lab.cli(&["metrics", &rec.id, "--steps", "9..3"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(labhost_tests::stderr(&out)
        .contains("invalid step range `9..3`: expected FIRST..LAST, e.g. 100..200"));
}
