//! Findings about limits: registry metadata (8), descriptors (10), record
//! size (12), stdout lines (low).

use crate::*;

/// Finding 8: metadata over 64 KiB is refused; smaller metadata is charged
/// to the stored-bytes quota, so the flood stops at the quota; a job
/// listing the registry beside it gets a bounded answer.
#[test]
fn h8_registry_metadata_is_bounded_and_charged() {
    let a = arena();
    let rec = a.attack("metadata-flood", json!({"count": 1024}), none);
    a.ended(&rec, JobStatus::Complete, "flooded");
    let big = 1024 * 1024 + r#"{"pad":""}"#.len();
    a.expect_reports(
        &rec,
        &[
            ("saved", "0"),
            ("refused", "limit-exceeded"),
            (
                "refused-message",
                &format!("dataset metadata is {big} bytes; at most 64 KiB are kept"),
            ),
        ],
    );
    let rec = a.attack("metadata-flood", json!({"count": 32}), none);
    a.ended(&rec, JobStatus::Complete, "flooded");
    let saved: u64 = a.report(&rec, "saved").parse().unwrap();
    // 1 MiB of quota, ≥ 32 KiB charged per save (before the 50-file limit).
    assert!((1..=32).contains(&saved), "{saved}");
    a.expect_reports(
        &rec,
        &[
            ("refused", "limit-exceeded"),
            ("refused-message", "stored-bytes limit of 1 MiB reached"),
        ],
    );
    let lister = a.attack("list-registry", json!({}), none);
    a.ended(&lister, JobStatus::Complete, "listed");
    let bytes: u64 = a.report(&lister, "metadata-bytes").parse().unwrap();
    assert!(bytes <= 2 << 20, "{bytes}");
}

/// Finding 10: with `ulimit -n 1024`, a job that opens files until it is
/// stopped is given a handle limit that fits the process's share and ends
/// at it, while the job beside it in the same process completes.
#[test]
fn h10_a_descriptor_hog_does_not_starve_its_neighbour() {
    let a = arena();
    let file = a.lab.dir.path().join("fds.toml");
    std::fs::write(
        &file,
        format!(
            "name = \"fds\"\nworkers = 2\n[defaults]\nretries = 0\n\
             [stages.hog]\nplugin = \"{}\"\nconfig = {{ attack = \"fd-hog\" }}\n\
             [stages.good]\nplugin = \"{}\"\n",
            labhost_tests::guest("rust", "evil").display(),
            labhost_tests::guest("rust", "probe").display()
        ),
    )
    .unwrap();
    let out = a.cli_with_nofile(1024, &["pipeline", "run", file.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        labhost_tests::stderr(&out)
    );
    let jobs = a.lab.ws().jobs(None).unwrap();
    let job = |plugin: &str| {
        jobs.iter()
            .find(|j| j.plugin.name == plugin)
            .unwrap()
            .clone()
    };
    let (hog, good) = (job("evil"), job("probe"));
    assert_eq!(
        (good.status, good.message.as_deref()),
        (JobStatus::Complete, Some("all calls made")),
        "{}",
        a.lab.log(&good)
    );
    // (1024 - 192 kept for the host) / 4: a quarter of the process.
    let handles = hog.sandbox.limits.handles;
    assert_eq!(handles, 208);
    assert_eq!(
        (hog.status, hog.message.clone().unwrap()),
        (
            JobStatus::Failed,
            format!(
                "handle limit of {handles} live handles (open files, streams, pollables) exceeded"
            )
        )
    );
    assert!(a.lab.log(&hog).contains(&format!(
        "handle limit lowered from 4096 to {handles}: this process's descriptors are shared with its other jobs"
    )));
}

/// Finding 12: what a job can put in its record is bounded: stored paths
/// are charged, scores are capped, so job.json stays small.
#[test]
fn h12_the_job_record_stays_small() {
    let a = arena();
    let rec = a.attack("record-bloat", json!({}), |s| {
        s.sandbox.limits.stored_files = 10_000;
    });
    a.ended(&rec, JobStatus::Complete, "bloat tried");
    a.expect_reports(
        &rec,
        &[
            ("big-manifest", "limit-exceeded"),
            (
                "big-manifest-message",
                "stored-bytes limit of 1 MiB reached",
            ),
            ("finish-many", "limit-exceeded"),
            (
                "finish-many-message",
                "finish() takes at most 1024 scores, got 100000",
            ),
        ],
    );
    let size = std::fs::metadata(a.lab.job_dir(&rec).join("job.json"))
        .unwrap()
        .len();
    assert!(size < 64 << 10, "{size}");
}

/// Low: a stdout line over 64 KiB is logged in pieces, none of it cut.
#[test]
fn long_stdout_lines_are_split_not_cut() {
    let a = arena();
    let rec = a.attack("stdout-long", json!({}), none);
    a.ended(&rec, JobStatus::Complete, "printed");
    let pieces: Vec<String> = a
        .lab
        .log(&rec)
        .lines()
        .filter_map(|l| {
            l.split_once(" STDOUT ")
                .map(|(_, m)| m.trim_start().to_owned())
        })
        .collect();
    let xs: Vec<usize> = pieces
        .iter()
        .filter(|p| p.starts_with('x'))
        .map(|p| p.len())
        .collect();
    assert_eq!(xs, [65536, 65536, 65536, 200 * 1024 - 3 * 65536]);
    assert!(pieces
        .iter()
        .all(|p| p == "end" || p.bytes().all(|b| b == b'x')));
    assert_eq!(pieces.last().map(String::as_str), Some("end"));
}
