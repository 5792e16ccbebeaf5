//! Finding 5 and 6 (describe): describe() that prints, blocks or answers
//! too much.

use crate::*;

/// Finding 5: a plugin that prints in describe() (a blocking WASI call)
/// loads and runs, in the library and in `labhost run` (it panicked with
/// "Cannot start a runtime from within a runtime").
#[test]
fn h5_a_plugin_that_prints_in_describe_runs() {
    let a = arena();
    let plugin = a.lab.load("rust", "describe_print");
    assert_eq!(plugin.info.name, "describe-print");
    let rec = a.lab.run(a.lab.spec(&plugin, json!({})));
    assert_eq!(
        (rec.status, rec.message.as_deref()),
        (JobStatus::Complete, Some("ok"))
    );
    let path = labhost_tests::guest("rust", "describe_print");
    let out = a.lab.cli(&["run", path.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        labhost_tests::stderr(&out)
    );
    let out = a.lab.cli(&["inspect", path.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        labhost_tests::stderr(&out)
    );
}

/// Finding 6: describe() blocked in a WASI sleep is stopped at its 10 s
/// limit; a plugin whose describe() answers an 8 MiB version is refused.
#[test]
fn h6_describe_is_bounded_in_time_and_size() {
    let a = arena();
    let path = labhost_tests::guest("rust", "describe_sleep");
    let err = a.lab.host.load(&path).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "{}: describe() failed: describe() did not return within 10s",
            path.display()
        )
    );
    let path = labhost_tests::guest("rust", "describe_huge");
    let err = a.lab.host.load(&path).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "{}: describe(): version is {} bytes; at most 64 are accepted",
            path.display(),
            8 << 20
        )
    );
    // A 100 KiB default is within bounds: loaded, run, inspected.
    let plugin = a.lab.load("rust", "describe_bigdefault");
    let rec = a.lab.run(a.lab.spec(&plugin, json!({})));
    assert_eq!(rec.status, JobStatus::Complete, "{}", a.lab.log(&rec));
    assert_eq!(a.report(&rec, "blob-len"), (100 << 10).to_string());
    let path = labhost_tests::guest("rust", "describe_bigdefault");
    let out = a.lab.cli(&["inspect", path.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        labhost_tests::stderr(&out)
    );
}
