//! Finding 7: guest text on the operator's terminal.

use crate::*;

const FORBIDDEN: [u8; 4] = [0x1b, 0x07, b'\r', 0x08];

fn assert_clean(what: &str, bytes: &[u8]) {
    for b in FORBIDDEN {
        assert!(
            !bytes.contains(&b),
            "{what} prints the control byte {b:#04x}:\n{}",
            String::from_utf8_lossy(bytes)
        );
    }
    let text = String::from_utf8_lossy(bytes);
    assert!(!text.contains('\u{202e}'), "{what} prints a bidi override");
}

/// Escape sequences in logs, stdout, stderr, stage text and the finish
/// message are shown escaped by every command that prints them; names
/// with bidi overrides, zero-width characters or trailing spaces and
/// descriptions with control characters are refused; `logs --raw` gives
/// the bytes as written.
#[test]
fn h7_guest_text_is_escaped_on_the_terminal() {
    let a = arena();
    let rec = a.attack("terminal-escapes", json!({}), none);
    assert_eq!(rec.status, JobStatus::Complete);
    a.expect_reports(
        &rec,
        &[
            ("metric-name", "invalid-argument"),
            ("artifact-name-bidi", "invalid-argument"),
            ("artifact-name-zero-width", "invalid-argument"),
            ("artifact-name-trailing-space", "invalid-argument"),
            ("description-esc", "invalid-argument"),
            ("description-nul", "invalid-argument"),
            ("description-cr", "invalid-argument"),
        ],
    );
    for args in [
        vec!["logs", rec.id.as_str()],
        vec!["show", rec.id.as_str()],
        vec!["jobs"],
        vec!["datasets"],
    ] {
        let out = a.lab.cli(&args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            labhost_tests::stderr(&out)
        );
        assert_clean(&format!("{args:?}"), &out.stdout);
    }
    let out = a.lab.cli(&["logs", &rec.id]);
    assert!(labhost_tests::stdout(&out).contains("\\x1b]52;c;cHduZWQ=\\x07"));
    // The live run view and its summary.
    let out = a.lab.cli(&[
        "run",
        labhost_tests::guest("rust", "evil").to_str().unwrap(),
        "-c",
        "attack=terminal-escapes",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        labhost_tests::stderr(&out)
    );
    assert_clean("run (stdout)", &out.stdout);
    assert_clean("run (stderr)", &out.stderr);
    // --raw: the file's bytes.
    let out = a.lab.cli(&["logs", "--raw", &rec.id]);
    assert_eq!(
        out.stdout,
        std::fs::read(a.lab.job_dir(&rec).join("output.log")).unwrap()
    );
    assert!(out.stdout.contains(&0x1b));
}
