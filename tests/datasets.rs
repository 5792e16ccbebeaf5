//! What an operator brings in without a plugin: datasets from CSV, JSONL and
//! Parquet files (`labhost datasets add`), new versions (`append`), row
//! queries on the query engine (`datasets rows`), exports, and models from a
//! file or directory (`labhost models add`). Imported entries are stored
//! and verified like guest-saved ones, and a guest job can use them.

use labhost::JobStatus;
use labhost_tests::{stderr, stdout, Lab};
use serde_json::{json, Value};

const REVIEWS: &str = "\
id,text,stars,verified
1,Great product,5,true
2,terrible,1,false
3,not great,2,true
4,GREAT value,4,
5,okay I guess,3,false
6,great_fit,5,true
";

fn rows(lab: &Lab, args: &[&str]) -> Value {
    let mut all = vec!["datasets", "rows"];
    all.extend_from_slice(args);
    all.push("--json");
    let out = lab.cli(&all);
    assert!(out.status.success(), "{all:?}: {}", stderr(&out));
    serde_json::from_str(&stdout(&out)).unwrap()
}

fn ids(page: &Value) -> Vec<i64> {
    page["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect()
}

fn fails(lab: &Lab, args: &[&str]) -> String {
    let out = lab.cli(args);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{args:?} should fail: {}",
        stdout(&out)
    );
    let err = stderr(&out);
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    err.trim_end().to_owned()
}

#[test]
fn a_csv_dataset_is_added_queried_appended_and_exported() {
    let lab = Lab::new();
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("reviews.csv");
    std::fs::write(&csv, REVIEWS).unwrap();

    let out = lab.cli(&[
        "datasets",
        "add",
        "reviews",
        csv.to_str().unwrap(),
        "--description",
        "product reviews",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("added dataset reviews-"),
        "{}",
        stdout(&out)
    );
    let ds = &lab.ws().datasets().unwrap()[0];
    assert_eq!((ds.name.as_str(), ds.rows), ("reviews", Some(6)));
    assert_eq!(ds.files.files[0].path, "data.csv");
    // Stored byte for byte, with its digest, by a COMPLETE import job.
    let stored = lab.root().join(&ds.files.location).join("data.csv");
    assert_eq!(std::fs::read_to_string(&stored).unwrap(), REVIEWS);
    assert_eq!(ds.files.files[0].blake3, labhost_tests::blake3_file(&csv));
    let (job, _) = lab.ws().find_job(&ds.job_id).unwrap();
    assert_eq!(job.status, JobStatus::Complete);
    assert_eq!(job.plugin.name, "labhost-import");
    assert_eq!(job.experiment, "imports");
    assert_eq!(job.datasets, vec![ds.id.clone()]);

    // Filters (all must hold), several sort keys, paging.
    let p = rows(
        &lab,
        &[
            "reviews",
            "--filter",
            "stars >= 4",
            "--order-by",
            "stars DESC",
            "--order-by",
            "id DESC",
        ],
    );
    assert_eq!(ids(&p), [6, 1, 4]);
    assert_eq!(p["total"], 3);
    let p = rows(
        &lab,
        &[
            "reviews",
            "--order-by",
            "id",
            "--limit",
            "2",
            "--offset",
            "2",
        ],
    );
    assert_eq!((ids(&p), p["total"].clone()), (vec![3, 4], json!(6)));
    assert_eq!(
        p["columns"],
        json!([{"name": "id", "type": "Int64"}, {"name": "text", "type": "Utf8"}, {"name": "stars", "type": "Int64"}, {"name": "verified", "type": "Boolean"}])
    );
    // LIKE without % matches anywhere; ILIKE ignores case; `_` is literal.
    assert_eq!(
        ids(&rows(
            &lab,
            &["reviews", "--filter", "text LIKE great", "--order-by", "id"]
        )),
        [3, 6]
    );
    assert_eq!(
        ids(&rows(
            &lab,
            &[
                "reviews",
                "--filter",
                "text ILIKE great",
                "--order-by",
                "id"
            ]
        )),
        [1, 3, 4, 6]
    );
    assert_eq!(
        ids(&rows(
            &lab,
            &[
                "reviews",
                "--filter",
                "text NOT ILIKE great",
                "--order-by",
                "id"
            ]
        )),
        [2, 5]
    );
    assert_eq!(
        ids(&rows(
            &lab,
            &[
                "reviews",
                "--filter",
                "text ILIKE %_fit",
                "--order-by",
                "id"
            ]
        )),
        [6]
    );
    assert_eq!(
        ids(&rows(
            &lab,
            &[
                "reviews",
                "--filter",
                "text NOT LIKE %a%",
                "--order-by",
                "id"
            ]
        )),
        [2]
    );
    assert_eq!(
        ids(&rows(&lab, &["reviews", "--filter", "verified IS NULL"])),
        [4]
    );
    assert_eq!(
        ids(&rows(
            &lab,
            &[
                "reviews",
                "--filter",
                "verified IS NOT NULL",
                "--filter",
                "verified = false",
                "--order-by",
                "id"
            ]
        )),
        [2, 5]
    );
    assert_eq!(
        ids(&rows(
            &lab,
            &[
                "reviews",
                "--filter",
                "stars <> 5",
                "--filter",
                "stars < 3",
                "--order-by",
                "id"
            ]
        )),
        [2, 3]
    );
    assert_eq!(
        ids(&rows(&lab, &["reviews", "--filter", "stars <= 1"])),
        [2]
    );
    // A field name or value is data, never query text.
    assert_eq!(
        rows(&lab, &["reviews", "--filter", "text = x' OR 1=1 --"])["total"],
        0
    );

    // Bad queries: one line each, exit 1.
    assert_eq!(
        fails(
            &lab,
            &["datasets", "rows", "reviews", "--filter", "price > 3"]
        ),
        "error: no column `price` (columns: id, text, stars, verified)"
    );
    assert_eq!(
        fails(
            &lab,
            &["datasets", "rows", "reviews", "--filter", "stars > many"]
        ),
        "error: filter on `stars`: `many` is not a valid integer value"
    );
    assert_eq!(
        fails(&lab, &["datasets", "rows", "reviews", "--limit", "10001"]),
        "error: max_items 10001 is over the limit of 10000"
    );
    assert_eq!(
        fails(&lab, &["datasets", "rows", "nope"]),
        format!(
            "error: no dataset `nope` in workspace {}",
            lab.root().display()
        )
    );

    // Append a JSONL file: a new version in the dataset's own format; the
    // name now resolves to it; the first version stays queryable by id.
    let more = dir.path().join("more.jsonl");
    std::fs::write(&more, "{\"id\": 7, \"text\": \"fine\", \"stars\": 3}\n{\"id\": 8, \"stars\": 5, \"text\": \"GREAT\"}\n").unwrap();
    let out = lab.cli(&["datasets", "append", "reviews", more.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let all = lab.ws().datasets().unwrap();
    assert_eq!(all.len(), 2);
    let v2 = &all[1];
    assert_eq!(
        (v2.rows, v2.supersedes.as_deref()),
        (Some(8), Some(ds.id.as_str()))
    );
    let paths: Vec<&str> = v2.files.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["data.csv", "part-00002.csv"]);
    let p = rows(
        &lab,
        &["reviews", "--filter", "stars = 5", "--order-by", "id"],
    );
    assert_eq!(ids(&p), [1, 6, 8]);
    assert_eq!(p["dataset"], json!(v2.id));
    assert_eq!(rows(&lab, &[&ds.id])["total"], 6);
    // The missing column is null in the new rows.
    assert_eq!(
        ids(&rows(
            &lab,
            &[
                "reviews",
                "--filter",
                "verified IS NULL",
                "--order-by",
                "id"
            ]
        )),
        [4, 7, 8]
    );
    // A column the dataset does not have refuses the whole append.
    let extra = dir.path().join("extra.csv");
    std::fs::write(&extra, "id,text,stars,price\n9,x,1,3\n").unwrap();
    assert_eq!(
        fails(&lab, &["datasets", "append", "reviews", extra.to_str().unwrap()]),
        format!("error: column `price` is not in dataset `{}` (its columns are fixed when it is added: id, text, stars, verified)", v2.id)
    );
    let wrong = dir.path().join("wrong.csv");
    std::fs::write(&wrong, "id,stars\n10,lots\n").unwrap();
    let err = fails(
        &lab,
        &["datasets", "append", "reviews", wrong.to_str().unwrap()],
    );
    assert!(
        err.starts_with(&format!(
            "error: appending {} to dataset `{}`: ",
            wrong.display(),
            v2.id
        )),
        "{err}"
    );
    assert_eq!(
        lab.ws().datasets().unwrap().len(),
        2,
        "nothing stored by refused appends"
    );

    // Export to Parquet and add it back: the same table.
    let pq = dir.path().join("reviews.parquet");
    let out = lab.cli(&["datasets", "export", "reviews", pq.to_str().unwrap()]);
    assert_eq!(
        stdout(&out).trim(),
        format!("wrote 8 rows to {}", pq.display()),
        "{}",
        stderr(&out)
    );
    let out = lab.cli(&["datasets", "add", "reviews-pq", pq.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let a = rows(
        &lab,
        &[
            "reviews",
            "--filter",
            "text ILIKE great",
            "--order-by",
            "stars DESC",
            "--order-by",
            "id",
        ],
    );
    let b = rows(
        &lab,
        &[
            "reviews-pq",
            "--filter",
            "text ILIKE great",
            "--order-by",
            "stars DESC",
            "--order-by",
            "id",
        ],
    );
    assert_eq!(a["rows"], b["rows"]);
    assert_eq!(ids(&a), [1, 6, 8, 4, 3]);

    // Everything imported verifies like guest-saved entries.
    let out = lab.cli(&["verify"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
}

#[test]
fn bad_files_are_refused_and_nothing_is_stored() {
    let lab = Lab::new();
    let dir = tempfile::tempdir().unwrap();
    let txt = dir.path().join("notes.txt");
    std::fs::write(&txt, "hello").unwrap();
    assert_eq!(
        fails(&lab, &["datasets", "add", "d", txt.to_str().unwrap()]),
        format!(
            "error: {}: not a table file (expected a .csv, .jsonl, .ndjson or .parquet file)",
            txt.display()
        )
    );
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"a\": 1}\nnot json\n").unwrap();
    let err = fails(&lab, &["datasets", "add", "d", bad.to_str().unwrap()]);
    assert!(
        err.starts_with(&format!(
            "error: {} is not a readable jsonl table: ",
            bad.display()
        )),
        "{err}"
    );
    let fake = dir.path().join("fake.parquet");
    std::fs::write(&fake, "PAR1 but not really").unwrap();
    let err = fails(&lab, &["datasets", "add", "d", fake.to_str().unwrap()]);
    assert!(
        err.starts_with(&format!(
            "error: {} is not a readable parquet table: ",
            fake.display()
        )),
        "{err}"
    );
    let good = dir.path().join("good.csv");
    std::fs::write(&good, "a\n1\n").unwrap();
    assert_eq!(
        fails(
            &lab,
            &["datasets", "add", "../evil", good.to_str().unwrap()]
        ),
        "error: invalid dataset name \"../evil\": must not start with `.` (reserved for the host)"
    );
    assert_eq!(
        fails(
            &lab,
            &[
                "datasets",
                "add",
                "d",
                good.to_str().unwrap(),
                "--metadata",
                "[1]"
            ]
        ),
        "error: --metadata must be a JSON object"
    );
    assert!(lab.ws().datasets().unwrap().is_empty());
    assert!(
        lab.ws().jobs(None).unwrap().is_empty(),
        "no import job left behind"
    );
}

#[test]
fn an_imported_dataset_and_model_are_used_by_guest_jobs() {
    let lab = Lab::new();
    let dir = tempfile::tempdir().unwrap();
    // A dataset produced outside labhost, in the shape the trainer reads.
    let data = dir.path().join("data.jsonl");
    let mut text = String::new();
    for i in 0..120 {
        let (t, label) = if i % 2 == 0 {
            ("good great fine", 1)
        } else {
            ("bad awful poor", 0)
        };
        let split = if i % 5 == 0 { "test" } else { "train" };
        text.push_str(&format!(
            "{{\"text\": \"{t} {i}\", \"label\": {label}, \"split\": \"{split}\"}}\n"
        ));
    }
    std::fs::write(&data, &text).unwrap();
    let out = lab.cli(&["datasets", "add", "sentiment", data.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let trainer = lab.load("rust", "trainer");
    let mut spec = lab.spec(&trainer, json!({"epochs": 2}));
    spec.sandbox.grants.datasets = vec!["sentiment".into()];
    let train = lab.run(spec);
    assert_eq!(
        train.status,
        JobStatus::Complete,
        "{:?}\n{}",
        train.message,
        lab.log(&train)
    );

    // A model directory with nested files.
    let model = dir.path().join("tiny-bert");
    std::fs::create_dir_all(model.join("tokenizer")).unwrap();
    std::fs::write(model.join("config.json"), "{\"layers\": 2}").unwrap();
    std::fs::write(model.join("tokenizer/vocab.txt"), "a\nb\n").unwrap();
    let out = lab.cli(&[
        "models",
        "add",
        "tiny-bert",
        model.to_str().unwrap(),
        "--architecture",
        "BertForSequenceClassification",
        "--parent-model",
        "google/bert-tiny",
        "--metadata",
        "{\"license\": \"apache-2.0\"}",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let models = lab.ws().models().unwrap();
    let m = models.iter().find(|m| m.name == "tiny-bert").unwrap();
    let paths: Vec<&str> = m.files.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["config.json", "tokenizer/vocab.txt"]);
    assert_eq!(
        m.architecture.as_deref(),
        Some("BertForSequenceClassification")
    );
    assert_eq!(m.metadata, json!({"license": "apache-2.0"}));
    // A symlink inside a model directory is refused: an import stores what
    // the operator sees, not what a link points at.
    std::os::unix::fs::symlink("/etc/passwd", model.join("passwd")).unwrap();
    assert_eq!(
        fails(&lab, &["models", "add", "linked", model.to_str().unwrap()]),
        format!("error: {} is not a regular file or directory (symlinks and special files are not imported)", model.join("passwd").display())
    );
    // Tampering with an imported file is found by `labhost verify`.
    let ds = &lab.ws().datasets().unwrap()[0];
    let stored = lab.root().join(&ds.files.location).join("data.jsonl");
    std::fs::write(&stored, "{}\n").unwrap();
    let out = lab.cli(&["verify"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("data.jsonl: digest"),
        "{}",
        stderr(&out)
    );
}
