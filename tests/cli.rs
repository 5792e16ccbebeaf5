//! The `labhost` command line: the demo pipeline, the listing commands and
//! their `--json`, exit codes and one-line errors.

use labhost_tests::{guest, stderr, stdout, Lab};
use serde_json::Value;

fn json(o: &std::process::Output) -> Value {
    assert!(o.status.success(), "{}", stderr(o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(o)))
}

fn path(lang: &str, name: &str) -> String {
    guest(lang, name).display().to_string()
}

#[test]
fn demo_pipeline_through_the_cli() {
    let lab = Lab::new();
    let gen = lab.cli(&[
        "run",
        &path("rust", "datagen"),
        "--experiment",
        "demo",
        "-c",
        "rows=120",
    ]);
    assert!(gen.status.success(), "{}{}", stdout(&gen), stderr(&gen));
    // Not a terminal: plain progress lines and the streamed log.
    let err = stderr(&gen);
    assert!(err.contains("progress 100% done"), "{err}");
    assert!(err.contains("INFO  generating 120 rows"), "{err}");
    assert!(stdout(&gen).starts_with("COMPLETE "), "{}", stdout(&gen));

    let train = lab.cli(&[
        "run",
        &path("rust", "trainer"),
        "-e",
        "demo",
        "--dataset",
        "sentiment",
        "-c",
        "epochs=2",
    ]);
    assert!(train.status.success(), "{}", stderr(&train));
    // No line per metric point; the summary has each metric's final value.
    assert!(!stderr(&train).contains("metric "), "{}", stderr(&train));
    assert!(stdout(&train).contains("\n  metric      train_loss = "));
    let eval = lab.cli(&[
        "run",
        &path("rust", "evaluator"),
        "-e",
        "demo",
        "--dataset",
        "sentiment",
        "--model",
        "sentiment-logreg",
    ]);
    assert!(eval.status.success(), "{}", stderr(&eval));
    assert!(
        stdout(&eval).contains("eval        predictions (30 rows"),
        "{}",
        stdout(&eval)
    );

    let jobs = json(&lab.cli(&["jobs", "--json", "--experiment", "demo"]));
    let jobs = jobs.as_array().unwrap();
    assert_eq!(jobs.len(), 3);
    let plugins: Vec<&str> = jobs
        .iter()
        .map(|j| j["plugin"]["name"].as_str().unwrap())
        .collect();
    // Newest first.
    assert_eq!(
        plugins,
        [
            "sentiment-evaluator",
            "sentiment-trainer",
            "sentiment-datagen"
        ]
    );
    assert!(jobs.iter().all(|j| j["status"] == "COMPLETE"));
    assert_eq!(
        json(&lab.cli(&["jobs", "--json", "--experiment", "other"])),
        serde_json::json!([])
    );

    let models = json(&lab.cli(&["models", "--json"]));
    assert_eq!(models[0]["name"], "sentiment-logreg");
    assert_eq!(models[0]["job_id"], jobs[1]["id"]);
    let datasets = json(&lab.cli(&["datasets", "--json"]));
    assert_eq!(datasets[0]["rows"], 120);
    let eval_id = jobs[0]["id"].as_str().unwrap();
    let evals = json(&lab.cli(&["evals", eval_id, "--json"]));
    assert_eq!(evals[0]["name"], "predictions");
    assert_eq!(evals[0]["count"], 30);
    let shown = json(&lab.cli(&["show", &eval_id[..eval_id.len() - 2], "--json"]));
    assert_eq!(shown["id"], eval_id, "a unique id prefix finds the job");
    let metrics = json(&lab.cli(&["metrics", jobs[1]["id"].as_str().unwrap(), "--json"]));
    assert!(metrics
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["name"] == "train_accuracy" && m["step"] == 2));

    // Human listings name what they list.
    let table = stdout(&lab.cli(&["jobs"]));
    assert!(
        table.starts_with("JOB")
            && table.contains("sentiment-trainer")
            && table.contains("COMPLETE"),
        "{table}"
    );
    assert!(stdout(&lab.cli(&["models"])).contains("LogisticRegression"));
    assert!(stdout(&lab.cli(&["show", eval_id])).contains("eval        predictions  30 rows"));
    let logs = lab.cli(&["logs", eval_id, "--follow"]);
    assert!(
        stdout(&logs).contains("job ended COMPLETE"),
        "{}",
        stdout(&logs)
    );
    let verify = lab.cli(&["verify"]);
    assert!(
        verify.status.success() && stdout(&verify).starts_with("ok: "),
        "{}",
        stderr(&verify)
    );

    // Tampering with a stored file is caught by verify.
    let csv = lab
        .root()
        .join(evals[0]["file"]["location"].as_str().unwrap());
    std::fs::write(&csv, "tampered").unwrap();
    let verify = lab.cli(&["verify", eval_id]);
    assert_eq!(verify.status.code(), Some(1));
    assert!(
        stderr(&verify).contains("error: 1 problems (1 stored files checked)"),
        "{}",
        stderr(&verify)
    );
}

#[test]
fn exit_codes_and_one_line_errors() {
    let lab = Lab::new();
    let probe = path("rust", "probe");
    let failed = lab.cli(&["run", &probe, "-c", "scenario=trap"]);
    assert_eq!(failed.status.code(), Some(3));
    assert!(
        stdout(&failed).starts_with("FAILED "),
        "{}",
        stdout(&failed)
    );

    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "run".into(),
                probe.clone(),
                "-c".into(),
                "count=lots".into(),
            ],
            "error: invalid config: `count` must be an integer, got `lots`\n",
        ),
        (
            vec!["run".into(), probe.clone(), "-c".into(), "nokey".into()],
            "error: invalid config override `nokey`: expected key=value\n",
        ),
        (
            vec![
                "run".into(),
                probe.clone(),
                "--dataset".into(),
                "ghost".into(),
            ],
            "error: no dataset `ghost` in workspace",
        ),
        (
            vec![
                "run".into(),
                probe.clone(),
                "--experiment".into(),
                "../x".into(),
            ],
            "error: invalid experiment",
        ),
        (
            vec!["run".into(), "/nonexistent.wasm".into()],
            "error: cannot read plugin /nonexistent.wasm: ",
        ),
        (
            vec!["show".into(), "nope".into()],
            "error: no job `nope` in workspace",
        ),
        (
            vec!["evals".into(), "nope".into()],
            "error: no job `nope` in workspace",
        ),
    ];
    for (args, expected) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = lab.cli(&args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(err.starts_with(expected), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    }
    // Bad flags are usage errors (clap), exit 2.
    let o = lab.cli(&["run", &probe, "--timeout", "soon"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = lab.cli(&["run", &probe, "--dir", "/tmp::relative"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    // Only the failed run made a job; nothing else was stored.
    assert_eq!(
        json(&lab.cli(&["jobs", "--json"]))
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn inspect_describes_a_plugin() {
    let lab = Lab::new();
    let trainer = path("rust", "trainer");
    let info = json(&lab.cli(&["inspect", &trainer, "--json"]));
    assert_eq!(info["name"], "sentiment-trainer");
    assert_eq!(info["kind"], "trainer");
    assert_eq!(info["version"], "0.1.0");
    let epochs = info["params"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "epochs")
        .unwrap();
    assert_eq!(
        (epochs["type"].as_str(), epochs["default"].as_i64()),
        (Some("integer"), Some(8))
    );
    let imports: Vec<&str> = info["imports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        imports.contains(&"lab:api/checkpoints@0.2.0"),
        "{imports:?}"
    );
    let text = stdout(&lab.cli(&["inspect", &trainer]));
    assert!(
        text.starts_with("sentiment-trainer 0.1.0 (trainer)"),
        "{text}"
    );
    assert!(
        text.contains("lab interfaces (lab:api@0.2.0): ") && text.contains("checkpoints"),
        "{text}"
    );
    let o = lab.cli(&["inspect", "Cargo.toml"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("is not a valid WebAssembly component"),
        "{}",
        stderr(&o)
    );
}

/// Text a hostile guest would print: OSC 52 (write the clipboard), OSC 0
/// (window title), clear screen, BEL, a CR that overwrites the line with a
/// forged ending, backspaces, a bidi override and a zero-width space.
const HOSTILE: &str = "x\x1b]52;c;cHduZWQ=\x07\x1b]0;owned\x07\x1b[2J\x07\rjob ended COMPLETE\x08\x08\u{202e}gnp.exe\u{200b}";
/// How the CLI shows it.
const HOSTILE_SHOWN: &str = "x\\x1b]52;c;cHduZWQ=\\x07\\x1b]0;owned\\x07\\x1b[2J\\x07\\rjob ended COMPLETE\\x08\\x08\\u{202e}gnp.exe\\u{200b}";

/// The bytes and characters that must never reach a terminal from guest text.
fn assert_inert(what: &str, out: &[u8]) {
    let text = String::from_utf8_lossy(out);
    for (i, b) in out.iter().enumerate() {
        assert!(
            !matches!(b, 0x1b | 0x07 | b'\r' | 0x08 | 0),
            "{what}: byte {b:#04x} at {i} in {text:?}"
        );
    }
    for c in ['\u{202e}', '\u{200b}', '\u{9b}'] {
        assert!(!text.contains(c), "{what}: {c:?} in {text:?}");
    }
}

#[test]
fn guest_text_reaches_the_terminal_escaped() {
    let lab = Lab::new();
    let evil = path("rust", "evil");
    // The hostile guest logs its `attack` parameter (`probe: attack …`),
    // then fails with "unknown attack `…`": guest text in the log, the
    // live view, the job message and the config.
    let attack = format!("attack={HOSTILE}");
    let run = lab.cli(&["run", &evil, "-c", &attack]);
    assert_eq!(run.status.code(), Some(3), "{}", stderr(&run));
    assert_inert("run stdout", &run.stdout);
    assert_inert("run stderr", &run.stderr);
    assert!(
        stderr(&run).contains(&format!("INFO  probe: attack {HOSTILE_SHOWN}\n")),
        "{}",
        stderr(&run)
    );
    let summary = stdout(&run);
    let first = summary.lines().next().unwrap();
    assert!(first.starts_with("FAILED "), "{summary}");
    assert!(
        first.ends_with(&format!(
            ": plugin returned an error: unknown attack `{HOSTILE_SHOWN}`"
        )),
        "{first}"
    );

    let jobs = json(&lab.cli(&["jobs", "--json"]));
    let id = jobs[0]["id"].as_str().unwrap().to_owned();
    // --json stays exact.
    assert_eq!(
        jobs[0]["message"],
        format!("plugin returned an error: unknown attack `{HOSTILE}`").as_str()
    );
    assert_eq!(
        json(&lab.cli(&["show", &id, "--json"]))["config"]["attack"],
        HOSTILE
    );

    let logs = lab.cli(&["logs", &id]);
    assert!(logs.status.success(), "{}", stderr(&logs));
    assert_inert("logs", &logs.stdout);
    let text = stdout(&logs);
    assert!(
        text.contains(&format!(" INFO   probe: attack {HOSTILE_SHOWN}\n")),
        "{text}"
    );
    // Lines are kept: the guest's and the host's.
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(
        text.ends_with(&format!(
            " HOST   job ended FAILED: plugin returned an error: unknown attack `{HOSTILE_SHOWN}`\n"
        )),
        "{text}"
    );
    let follow = lab.cli(&["logs", &id, "--follow"]);
    assert_eq!(follow.stdout, logs.stdout);
    // --raw: the file's bytes, unchanged.
    let raw = lab.cli(&["logs", &id, "--raw"]);
    assert!(raw.status.success(), "{}", stderr(&raw));
    let file = std::fs::read(
        lab.root()
            .join("experiments/default/jobs")
            .join(&id)
            .join("output.log"),
    )
    .unwrap();
    assert_eq!(raw.stdout, file);
    assert!(stdout(&raw).contains(&format!("probe: attack {HOSTILE}\n")));

    let show = lab.cli(&["show", &id]);
    assert!(show.status.success(), "{}", stderr(&show));
    assert_inert("show", &show.stdout);
    let text = stdout(&show);
    assert!(
        text.contains(&format!(
            "\nstatus      FAILED: plugin returned an error: unknown attack `{HOSTILE_SHOWN}`\n"
        )),
        "{text}"
    );
    // The config is JSON (ESC as \u001b), its bidi characters escaped.
    assert!(
        text.contains("\"attack\":\"x\\u001b]52;c;cHduZWQ=\\u0007")
            && text.contains("COMPLETE\\b\\b\\u{202e}gnp.exe\\u{200b}\""),
        "{text}"
    );

    let table = lab.cli(&["jobs"]);
    assert_inert("jobs", &table.stdout);
    let text = stdout(&table);
    assert_eq!(text.lines().count(), 2, "one row: {text}");
    assert!(
        text.lines().nth(1).unwrap().ends_with(&format!(
            "plugin returned an error: unknown attack `{HOSTILE_SHOWN}`"
        )),
        "{text}"
    );
}

/// A component whose `describe()` returns these strings (params: name,
/// type index (0 text … 4 json), default JSON, description), written in
/// WAT so that any text can be described.
fn describe_component(
    name: &str,
    version: &str,
    description: &str,
    params: &[(&str, u8, Option<&str>, &str)],
) -> Vec<u8> {
    fn string(mem: &mut Vec<u8>, s: &str) -> (u32, u32) {
        let at = mem.len() as u32;
        mem.extend_from_slice(s.as_bytes());
        (at, s.len() as u32)
    }
    fn align(mem: &mut Vec<u8>) {
        while !mem.len().is_multiple_of(8) {
            mem.push(0);
        }
    }
    fn put(mem: &mut [u8], at: usize, v: u32) {
        mem[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }
    let mut mem = vec![0u8; 16]; // run()'s return area: ok(()).
    let strings: Vec<_> = params
        .iter()
        .map(|(n, _, d, desc)| {
            (
                string(&mut mem, n),
                d.map(|d| string(&mut mem, d)),
                string(&mut mem, desc),
            )
        })
        .collect();
    let name = string(&mut mem, name);
    let version = string(&mut mem, version);
    let description = string(&mut mem, description);
    align(&mut mem);
    // list<param>: 32 bytes each (name, type u8, option<string>, description).
    let list = mem.len();
    mem.resize(list + 32 * params.len(), 0);
    for (i, ((n, d, desc), p)) in strings.iter().zip(params).enumerate() {
        let at = list + 32 * i;
        put(&mut mem, at, n.0);
        put(&mut mem, at + 4, n.1);
        mem[at + 8] = p.1;
        if let Some(d) = d {
            mem[at + 12] = 1;
            put(&mut mem, at + 16, d.0);
            put(&mut mem, at + 20, d.1);
        }
        put(&mut mem, at + 24, desc.0);
        put(&mut mem, at + 28, desc.1);
    }
    // plugin-info: 36 bytes.
    let info = mem.len();
    mem.resize(info + 36, 0);
    for (off, v) in [
        (0, name.0),
        (4, name.1),
        (8, version.0),
        (12, version.1),
        (20, description.0),
        (24, description.1),
        (28, list as u32),
        (32, params.len() as u32),
    ] {
        put(&mut mem, info + off, v);
    }
    mem[info + 16] = 3; // kind: other
    let data: String = mem.iter().map(|b| format!("\\{b:02x}")).collect();
    let pages = mem.len() / 65536 + 1;
    wat::parse_str(format!(
        r#"(component
  (core module $m
    (memory (export "memory") {pages})
    (data (i32.const 0) "{data}")
    (func (export "describe") (result i32) i32.const {info})
    (func (export "run") (result i32) i32.const 0))
  (core instance $i (instantiate $m))
  (type $kind (enum "generator" "trainer" "evaluator" "other"))
  (export $kind-e "plugin-kind" (type $kind))
  (type $ptype (enum "text" "integer" "number" "boolean" "json"))
  (export $ptype-e "param-type" (type $ptype))
  (type $param (record (field "name" string) (field "type" $ptype-e)
    (field "default" (option string)) (field "description" string)))
  (export $param-e "param" (type $param))
  (type $info (record (field "name" string) (field "version" string)
    (field "kind" $kind-e) (field "description" string) (field "params" (list $param-e))))
  (export $info-e "plugin-info" (type $info))
  (func $describe (result $info-e) (canon lift (core func $i "describe") (memory (core memory $i "memory"))))
  (export "describe" (func $describe))
  (func $run (result (result (error string))) (canon lift (core func $i "run") (memory (core memory $i "memory"))))
  (export "run" (func $run)))"#
    ))
    .unwrap()
}

#[test]
fn inspect_escapes_describe_strings() {
    // describe() strings may not hold control characters (the host refuses
    // them), but invisible format characters pass and JSON defaults may
    // decode to anything: the CLI shows them escaped.
    const INVISIBLE: &str = "\u{202e}gnp.exe\u{200b}";
    const INVISIBLE_SHOWN: &str = "\\u{202e}gnp.exe\\u{200b}";
    let lab = Lab::new();
    let wasm = lab.dir.path().join("hostile-describe.wasm");
    std::fs::write(
        &wasm,
        describe_component(
            "hostile",
            &format!("1.0{INVISIBLE}"),
            &format!("about{INVISIBLE}"),
            &[
                (
                    "greeting",
                    0,
                    Some("\"hi\\u001b[2J\u{202e}\""),
                    "says\u{202e} hi",
                ),
                ("extra", 4, Some("{\"a\":[1,2]}"), INVISIBLE),
            ],
        ),
    )
    .unwrap();
    let wasm = wasm.display().to_string();
    let info = json(&lab.cli(&["inspect", &wasm, "--json"]));
    assert_eq!(info["version"], format!("1.0{INVISIBLE}").as_str());
    assert_eq!(info["params"][0]["default"], "hi\x1b[2J\u{202e}");
    assert_eq!(info["params"][1]["description"], INVISIBLE);

    let o = lab.cli(&["inspect", &wasm]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_inert("inspect", &o.stdout);
    let text = stdout(&o);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], format!("hostile 1.0{INVISIBLE_SHOWN} (other)"));
    assert_eq!(lines[1], format!("  about{INVISIBLE_SHOWN}"));
    // The default is JSON (ESC as \u001b); the table pads the columns.
    assert_eq!(
        lines[5],
        "  greeting  text  \"hi\\u001b[2J\\u{202e}\"  says\\u{202e} hi"
    );
    assert_eq!(
        lines[6],
        format!("  extra     json  {{\"a\":[1,2]}}            {INVISIBLE_SHOWN}")
    );

    // A control character in a describe() string is refused at load.
    let bad = lab.dir.path().join("esc-version.wasm");
    std::fs::write(&bad, describe_component("esc", "1\x1b]0;t\x07", "", &[])).unwrap();
    let o = lab.cli(&["inspect", &bad.display().to_string()]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        format!(
            "error: {}: describe(): version contains the control character '\\u{{1b}}'\n",
            bad.display()
        )
    );
    assert_inert("inspect error", &o.stderr);

    // Names are checked: an invisible character in the plugin name is refused,
    // and the one-line error shows it escaped.
    let bad = lab.dir.path().join("bidi-name.wasm");
    std::fs::write(&bad, describe_component("ab\u{202e}cd", "1", "", &[])).unwrap();
    let o = lab.cli(&["inspect", &bad.display().to_string()]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        format!(
            "error: {}: invalid plugin name \"ab\\u{{202e}}cd\": must not contain the invisible format character U+202E\n",
            bad.display()
        )
    );
}

#[test]
fn inspect_clips_a_huge_default() {
    let lab = Lab::new();
    let wasm = lab.dir.path().join("big-default.wasm");
    // A text default of 70 000 characters (over 64 KiB) with multi-byte ones
    // where the cut falls, and a long description.
    let value = format!("{}{}", "é".repeat(100), "a".repeat(69_900));
    let default = format!("\"{value}\"");
    let description = "d".repeat(3000);
    std::fs::write(
        &wasm,
        describe_component(
            "big",
            "1",
            "",
            &[
                ("prompt", 0, Some(&default), &description),
                ("n", 1, Some("3"), "small"),
            ],
        ),
    )
    .unwrap();
    let wasm = wasm.display().to_string();
    let o = lab.cli(&["inspect", &wasm]);
    assert!(o.status.success(), "{:?}: {}", o.status.code(), stderr(&o));
    let text = stdout(&o);
    let shown = format!("\"{}… ({} bytes)", "é".repeat(59), default.len());
    let row = text
        .lines()
        .find(|l| l.starts_with("  prompt"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        row.starts_with(&format!("  prompt  text     {shown}  ddd")),
        "{row}"
    );
    assert!(row.ends_with(&format!("{}…", "d".repeat(2000))), "{row}");
    assert!(
        text.lines().any(|l| l.starts_with("  n ")
            && l.split_whitespace().collect::<Vec<_>>() == ["n", "integer", "3", "small"]),
        "{text}"
    );
    assert!(
        text.contains("(long values are clipped at 60 characters, descriptions at 2000: `labhost inspect --json` shows them whole)\n"),
        "{text}"
    );
    // --json has the whole value.
    let info = json(&lab.cli(&["inspect", &wasm, "--json"]));
    assert_eq!(info["params"][0]["default"], value.as_str());
}

#[test]
fn closed_pipe_ends_commands_quietly() {
    use std::os::unix::process::ExitStatusExt;
    use std::process::{Command, Stdio};
    let lab = Lab::new();
    let evil = path("rust", "evil");
    // Enough output to fill a pipe: 4000 log lines and 4000 metric points.
    let flood = lab.cli(&["run", &evil, "-c", "attack=log-flood", "-c", "count=4000"]);
    assert!(flood.status.success(), "{}", stderr(&flood));
    let metrics = lab.cli(&[
        "run",
        &evil,
        "-c",
        "attack=metric-flood",
        "-c",
        "count=4000",
    ]);
    assert!(metrics.status.success(), "{}", stderr(&metrics));
    let jobs = json(&lab.cli(&["jobs", "--json"]));
    let (log_job, metric_job) = (
        jobs[1]["id"].as_str().unwrap(),
        jobs[0]["id"].as_str().unwrap(),
    );
    let trainer = path("rust", "trainer");
    let cases: Vec<Vec<&str>> = vec![
        vec!["show", log_job],
        vec!["jobs"],
        vec!["logs", log_job],
        vec!["logs", log_job, "--raw"],
        vec!["metrics", metric_job],
        vec!["metrics", metric_job, "--json"],
        vec!["inspect", &trainer],
        vec!["datasets"],
    ];
    let run = |args: &[&str], read_first: bool| {
        let (reader, writer) = std::io::pipe().unwrap();
        // `| true`: the reader is gone before the command starts.
        let reader = read_first.then_some(reader);
        let child = Command::new(labhost_tests::labhost_bin())
            .arg("--workspace")
            .arg(lab.root())
            .args(args)
            .stdout(writer)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        if let Some(reader) = reader {
            // `| head -1`: read a line, then close while the command still
            // writes (its output is larger than the pipe's buffer).
            let mut first = String::new();
            std::io::BufRead::read_line(&mut std::io::BufReader::new(reader), &mut first).unwrap();
            assert!(!first.is_empty(), "{args:?}");
        }
        child.wait_with_output().unwrap()
    };
    for args in &cases {
        for read_first in [false, true] {
            if read_first && !matches!(args[0], "logs" | "metrics") {
                continue; // their output fits in the pipe
            }
            let o = run(args, read_first);
            assert_eq!(
                (o.status.signal(), o.status.code(), stderr(&o).as_str()),
                (Some(13), None, ""),
                "{args:?}: ended by SIGPIPE, silently"
            );
        }
    }
}

#[test]
fn bad_grants_and_env_are_one_line_errors() {
    let lab = Lab::new();
    let probe = path("rust", "probe");
    // Flags: usage errors (exit 2) naming the problem.
    for (flag, value, want) in [
        (
            "--dir",
            "/::/host",
            "is the filesystem root: granting it would expose the whole host",
        ),
        ("--dir", "/:rw", "is the filesystem root"),
        ("--dir", "/tmp::/x:ro:rw", "more than one :ro/:rw suffix"),
        (
            "--dir",
            "/tmp:://work",
            "empty component or trailing `/` (write `/work`)",
        ),
        (
            "--dir",
            "/tmp::/work/",
            "empty component or trailing `/` (write `/work`)",
        ),
        (
            "--env",
            "=v",
            "invalid environment variable: the name is empty",
        ),
        (
            "--env",
            "NOVALUE",
            "invalid --env `NOVALUE`: expected KEY=VALUE",
        ),
    ] {
        let o = lab.cli(&["run", &probe, flag, value]);
        assert_eq!(o.status.code(), Some(2), "{value}: {}", stderr(&o));
        let first = stderr(&o).lines().next().unwrap_or_default().to_owned();
        assert!(
            first.starts_with("error: ") && first.contains(want),
            "{value}: {first}"
        );
    }
    // Pipeline files: exit 1, one line.
    let dir = lab.dir.path();
    for (i, (stage, want)) in [
        (
            "env = { K = \"a\\u0000b\" }",
            "stage `a`: invalid value of environment variable `K`: must not contain NUL",
        ),
        (
            "env = { \"A=B\" = \"v\" }",
            "stage `a`: invalid environment variable name `A=B`: must not contain `=`",
        ),
        (
            "dirs = [\"/::/host:ro\"]",
            "is the filesystem root: granting it would expose the whole host; grant a directory below it",
        ),
        (
            "dirs = [\"/tmp::/x:ro:rw\"]",
            "invalid directory grant `/tmp::/x:ro:rw`: more than one :ro/:rw suffix (expected HOST[::GUEST][:ro|:rw])",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let file = dir.join(format!("p{i}.toml"));
        std::fs::write(
            &file,
            format!("name = \"p\"\n[stages.a]\nplugin = \"{probe}\"\n{stage}\n"),
        )
        .unwrap();
        let o = lab.cli(&["pipeline", "run", &file.display().to_string()]);
        assert_eq!(o.status.code(), Some(1), "{stage}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.starts_with("error: ") && err.ends_with(&format!("{want}\n")),
            "{stage}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    assert_eq!(json(&lab.cli(&["jobs", "--json"])), serde_json::json!([]));
}

/// `verify` holds for a stored model directory: a planted file, a forged
/// directory digest in model.json and a truncated file are each reported
/// (exactly), and verify fails.
#[test]
fn verify_catches_planted_forged_and_truncated_model_files() {
    let lab = Lab::new();
    let gen = lab.cli(&["run", &path("rust", "datagen"), "-c", "rows=60"]);
    assert!(gen.status.success(), "{}", stderr(&gen));
    let train = lab.cli(&[
        "run",
        &path("rust", "trainer"),
        "--dataset",
        "sentiment",
        "-c",
        "epochs=1",
    ]);
    assert!(train.status.success(), "{}", stderr(&train));
    let models = json(&lab.cli(&["models", "--json"]));
    let id = models[0]["id"].as_str().unwrap().to_owned();
    let base = lab
        .root()
        .join(models[0]["files"]["location"].as_str().unwrap());
    let record = lab.root().join("models").join(&id).join("model.json");
    let ok = lab.cli(&["verify"]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    let checked: usize = stdout(&ok)
        .strip_prefix("ok: ")
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{}", stdout(&ok)));
    let expect_one = |problem: String| {
        let o = lab.cli(&["verify"]);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        assert_eq!(
            stderr(&o),
            format!("problem: model {id}: {problem}\nerror: 1 problems ({checked} stored files checked)\n")
        );
        assert_eq!(stdout(&o), "");
    };

    // (a) A file planted inside the stored directory.
    let planted = base.join("planted.txt");
    std::fs::write(&planted, "not stored by the host").unwrap();
    expect_one(format!(
        "{}: extra file, not in the record",
        planted.display()
    ));
    // Also when the job alone is verified (its saved model is included).
    let job_id = models[0]["job_id"].as_str().unwrap();
    assert_eq!(lab.cli(&["verify", job_id]).status.code(), Some(1));
    std::fs::remove_file(&planted).unwrap();

    // (b) The recorded directory digest edited in model.json.
    let original = std::fs::read_to_string(&record).unwrap();
    let mut rec: Value = serde_json::from_str(&original).unwrap();
    let manifest = rec["files"]["blake3"].as_str().unwrap().to_owned();
    let forged = blake3::hash(b"forged").to_hex().to_string();
    rec["files"]["blake3"] = Value::from(forged.as_str());
    std::fs::write(&record, serde_json::to_vec_pretty(&rec).unwrap()).unwrap();
    expect_one(format!(
        "{}: recorded digest {forged} != {manifest} computed from the recorded files",
        base.display()
    ));
    std::fs::write(&record, &original).unwrap();

    // (c) A stored file truncated.
    let file = base.join("model.json");
    let recorded = rec["files"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "model.json")
        .unwrap()["blake3"]
        .as_str()
        .unwrap()
        .to_owned();
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..10]).unwrap();
    let now = blake3::hash(&bytes[..10]).to_hex().to_string();
    expect_one(format!(
        "{}: digest {now} != recorded {recorded}",
        file.display()
    ));
    std::fs::write(&file, &bytes).unwrap();
    assert!(lab.cli(&["verify"]).status.success());
}

/// `run` of a trainer (a metric point per step) prints no line per point by
/// default: the summary holds each metric's last value, once. `--verbose`
/// prints every point.
#[test]
fn run_shows_each_metric_once_unless_verbose() {
    let lab = Lab::new();
    let gen = lab.cli(&["run", &path("rust", "datagen"), "-c", "rows=200"]);
    assert!(gen.status.success(), "{}", stderr(&gen));
    let trainer = path("rust", "trainer");
    let train = |extra: &[&str]| {
        let mut args = vec!["run", trainer.as_str(), "--dataset", "sentiment"];
        args.extend_from_slice(extra);
        let o = lab.cli(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        let id = json(&lab.cli(&["jobs", "--json", "--limit", "1"]))[0]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let points = json(&lab.cli(&["metrics", &id, "--json"]));
        (o, points.as_array().unwrap().clone())
    };
    let point_line = |p: &Value| {
        let step = p["step"]
            .as_u64()
            .map(|s| format!(" step {s}"))
            .unwrap_or_default();
        format!(
            "metric {} = {}{step}",
            p["name"].as_str().unwrap(),
            p["value"].as_f64().unwrap()
        )
    };

    let (quiet, points) = train(&["-c", "epochs=3"]);
    assert!(points.len() > 30, "a point per step: {}", points.len());
    let err = stderr(&quiet);
    assert!(!err.lines().any(|l| l.starts_with("metric ")), "{err}");
    let mut last = std::collections::BTreeMap::new();
    for p in &points {
        last.insert(p["name"].as_str().unwrap().to_owned(), p.clone());
    }
    assert_eq!(
        last.keys().collect::<Vec<_>>(),
        ["loss", "train_accuracy", "train_loss"]
    );
    let want: Vec<String> = last
        .values()
        .map(|p| {
            let step = p["step"]
                .as_u64()
                .map(|s| format!(" (step {s})"))
                .unwrap_or_default();
            format!(
                "  metric      {} = {}{step}",
                p["name"].as_str().unwrap(),
                p["value"].as_f64().unwrap()
            )
        })
        .collect();
    let out = stdout(&quiet);
    let shown: Vec<&str> = out.lines().filter(|l| l.starts_with("  metric ")).collect();
    assert_eq!(shown, want, "{out}");

    // --verbose: every point, in order, as well as the summary.
    let (verbose, points) = train(&["-c", "epochs=3", "-c", "model_name=v", "--verbose"]);
    let err = stderr(&verbose);
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("metric ")).collect();
    assert_eq!(lines.len(), points.len(), "{err}");
    for (line, p) in lines.iter().zip(&points) {
        // serde_json (no float_roundtrip) may read the last digit apart.
        let want = point_line(p);
        let (name, rest) = line.split_once(" = ").unwrap();
        let (value, step) = rest.split_once(' ').unwrap_or((rest, ""));
        let (want_name, want_rest) = want.split_once(" = ").unwrap();
        let want_step = want_rest.split_once(' ').map_or("", |(_, s)| s);
        assert_eq!((name, step), (want_name, want_step), "{line}");
        let (v, w): (f64, f64) = (value.parse().unwrap(), p["value"].as_f64().unwrap());
        assert!(
            (v - w).abs() <= 1e-12 * w.abs().max(1.0),
            "{line} vs {want}"
        );
    }
    assert_eq!(
        stdout(&verbose)
            .lines()
            .filter(|l| l.starts_with("  metric "))
            .count(),
        3
    );
}
