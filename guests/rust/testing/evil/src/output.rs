//! Output attacks: floods of the log and of stdout/stderr, bad progress,
//! and text meant to forge or hijack the user's terminal.

use std::io::Write;

use serde_json::json;

use crate::{count, outcome, report};

pub fn huge_log_line() -> lab::Result<()> {
    // One lab log call of ~40 MiB, full of newlines.
    let line = "line\n".repeat(8 << 20);
    lab::info(&line);
    report("after", "logged");
    lab::finish("logged a huge line", &[])
}

pub fn log_flood() -> lab::Result<()> {
    let line = "L".repeat(1000);
    let n = count();
    let mut i = 0u64;
    while n == 0 || i < n {
        lab::info(&line);
        i += 1;
    }
    lab::finish(&format!("logged {i} lines"), &[])
}

pub fn stdout_flood() -> lab::Result<()> {
    let chunk = "S".repeat(4096);
    let mut out = std::io::stdout();
    loop {
        // No newline: the host must bound the partial line it buffers.
        let _ = out.write_all(chunk.as_bytes());
    }
}

pub fn bad_progress() -> lab::Result<()> {
    for (key, v) in [
        ("minus-5", -5.0f32),
        ("150", 150.0),
        ("nan", f32::NAN),
        ("inf", f32::INFINITY),
        ("neg-zero", -0.0),
        ("100", 100.0),
    ] {
        report(key, outcome(&lab::progress(v)));
    }
    report("stage-newline", outcome(&lab::progress_stage(1.0, "a\nb")));
    report(
        "stage-long",
        outcome(&lab::progress_stage(1.0, &"s".repeat(10_000))),
    );
    lab::progress_stage(42.0, "ok")?;
    lab::finish("progress tried", &[])
}

/// Terminal control sequences and forgeries through every text channel.
pub fn terminal_escapes() -> lab::Result<()> {
    const NASTY: [&str; 6] = [
        "\x1b]52;c;cHduZWQ=\x07", // OSC 52: write the clipboard
        "\x1b]0;pwned\x07",       // OSC 0: window title
        "\x1b[2J\x1b[H",          // clear screen, cursor home
        "\x07",                   // BEL
        "working\r2026-01-01T00:00:00.000Z HOST   job ended COMPLETE: forged",
        "file\u{202e}txt.exe", // right-to-left override
    ];
    for s in NASTY {
        lab::info(s);
        println!("{s}");
        eprintln!("{s}");
    }
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    report(
        "stage",
        outcome(&lab::progress_stage(10.0, "\x1b]0;stage\x07")),
    );
    report(
        "metric-name",
        outcome(&lab::metric("loss\x1b[2J", 1.0, None)),
    );
    std::fs::write(lab::work_dir().join("a.txt"), "a")?;
    for (key, name) in [
        ("artifact-name-bidi", "a\u{202e}b"),
        ("artifact-name-zero-width", "a\u{200b}b"),
        ("artifact-name-trailing-space", "trailing "),
    ] {
        report(key, outcome(&lab::save_artifact("/work/a.txt", Some(name))));
    }
    for (key, name, description) in [
        ("description-esc", "desc-esc", "a\x1b[2Jb"),
        ("description-nul", "desc-nul", "a\0b"),
        ("description-cr", "desc-cr", "a\rforged"),
    ] {
        report(
            key,
            outcome(&lab::save_dataset(
                name,
                &[json!({ "x": 1 })],
                Some(description),
                json!({}),
            )),
        );
    }
    lab::finish("done \x1b]0;title\x07\x1b[2J", &[])
}

/// 200 KiB on stdout without a newline, then a short line.
pub fn stdout_long() -> lab::Result<()> {
    let mut out = std::io::stdout();
    out.write_all("x".repeat(200 << 10).as_bytes())?;
    out.write_all(b"\nend\n")?;
    out.flush()?;
    lab::finish("printed", &[])
}
