"""The conformance probe, in Python: a port of guests/rust/testing/probe.

Same description, same scenarios, same `probe: <key> <value>` reports with
the same values (Rust's formatting is reproduced where it shows: `Some(2)`,
`"quoted names"`, floats without a trailing `.0`, I/O error kinds), so
tests/conformance.rs can hold every guest language to one set of
expectations.
"""

import json
import os
import sys
import time

import lab


def report(key, value):
    lab.info(f"probe: {key} {value}")


def outcome(call):
    """Name of the lab error variant a call raised, or `ok`."""
    try:
        call()
        return "ok"
    except lab.LabError as e:
        return e.kind
    except lab.Error as e:
        return f"other({e})"


# ---- Rust formatting, so reports compare equal across languages ----------


def rust_debug_str(s):
    """`format!("{s:?}")` of a Rust &str."""
    out = []
    for c in s:
        if c in '"\\':
            out.append("\\" + c)
        elif c == "\0":
            out.append("\\0")
        elif c == "\t":
            out.append("\\t")
        elif c == "\n":
            out.append("\\n")
        elif c == "\r":
            out.append("\\r")
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            out.append("\\u{%x}" % ord(c))
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def rust_option(v):
    """`format!("{v:?}")` of a Rust Option<u64>."""
    return "None" if v is None else f"Some({v})"


def rust_f64(x):
    """`format!("{x}")` of a Rust f64 (no `.0` on whole numbers)."""
    if x == x and x not in (float("inf"), float("-inf")) and float(x).is_integer():
        return str(int(x))
    return repr(float(x))


def rust_f32(x):
    """`format!("{x}")` of a Rust f32: the shortest decimal that reads back
    as the same f32, in plain notation (no exponent, no `.0`)."""
    import struct

    if x != x:
        return "NaN"
    if x in (float("inf"), float("-inf")):
        return "inf" if x > 0 else "-inf"
    if x == 0:
        return "-0" if str(x).startswith("-") else "0"
    def same(text):
        try:
            return struct.unpack("<f", struct.pack("<f", float(text)))[0] == x
        except OverflowError:  # rounded past the largest f32
            return False

    for prec in range(1, 10):
        s = "%.*e" % (prec - 1, x)
        if same(s):
            break
    mantissa, exp = s.split("e")
    sign = "-" if mantissa.startswith("-") else ""
    digits = mantissa.lstrip("-").replace(".", "").rstrip("0") or "0"
    point = int(exp) + 1  # digits before the decimal point
    if point <= 0:
        out = "0." + "0" * -point + digits
    elif point >= len(digits):
        out = digits + "0" * (point - len(digits))
    else:
        out = digits[:point] + "." + digits[point:]
    return sign + out


def rust_bool(b):
    return "true" if b else "false"


def compact(value):
    """serde_json's `to_string` of a value (compact, keys sorted)."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


# std::io::ErrorKind's Display for the errors a sandboxed guest sees.
IO_KINDS = {
    "ENOENT": "entity not found",
    "EACCES": "permission denied",
    "EPERM": "permission denied",
    "EROFS": "read-only filesystem or storage medium",
    "EEXIST": "entity already exists",
    "EISDIR": "is a directory",
    "ENOTDIR": "not a directory",
    "ENOTCAPABLE": "permission denied",
}


def io_kind(e):
    import errno

    return IO_KINDS.get(errno.errorcode.get(e.errno, ""), "other error")


def writable(path, data="x"):
    try:
        with open(path, "w") as f:
            f.write(data)
        return True
    except OSError:
        return False


def readable(path):
    try:
        with open(path, "rb") as f:
            f.read()
        return True
    except OSError:
        return False


def write(path, data):
    with open(path, "wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)


def text(name):
    v = lab.config().get(name)
    return v if isinstance(v, str) else ""


# ---- the plugin ----------------------------------------------------------


class Probe(lab.Plugin):
    name = "probe"
    kind = lab.Kind.OTHER
    description = "Conformance probe: exercises the lab API per scenario"
    params = [
        lab.param("scenario", "text", "all-api", "What to do"),
        lab.param("count", "integer", 3, "A number some scenarios use"),
        lab.param("ratio", "number", 0.5, "A number"),
        lab.param("flag", "boolean", False, "A boolean"),
        lab.param("extra", "json", {}, "Free JSON"),
        lab.param("target", "text", "", "A path, id or name some scenarios use"),
    ]

    def run(self):
        scenario = text("scenario")
        if scenario == "all-api":
            all_api()
        elif scenario == "open":
            open_granted()
        elif scenario == "bad-names":
            bad_names()
        elif scenario == "escape":
            escape()
        elif scenario == "read":
            read()
        elif scenario == "trap":
            raise RuntimeError("probe panicked on purpose")
        elif scenario == "return-error":
            raise lab.Error("probe returned an error on purpose")
        elif scenario == "no-finish":
            pass
        elif scenario == "fail":
            lab.fail("probe failed on purpose")
        elif scenario == "finish-twice":
            lab.finish("first finish", {"first": 1.0})
            report("second-finish", outcome(lambda: lab.finish("second finish")))
        elif scenario == "cooperative":
            # Wait for should-stop, then end by itself.
            while not lab.should_stop():
                time.sleep(0.005)
            lab.fail("stopped on request")
        elif scenario == "spin":
            while True:
                pass
        elif scenario == "alloc":
            chunks = [b"\x01" * (1 << 20) for _ in range(lab.config().get("count", 0))]
            lab.finish(f"allocated {len(chunks)} MiB")
        elif scenario == "stdio":
            print("hello from stdout")
            print("hello from stderr", file=sys.stderr)
            print("unterminated", end="")
            lab.finish("printed")
        elif scenario == "log-flood":
            line = "x" * 1000
            for _ in range(lab.config().get("count", 0)):
                lab.info(line)
            lab.finish("flooded")
        elif scenario == "workload":
            workload()
        elif scenario == "api-0-2":
            api_0_2()
        elif scenario == "nn":
            nn()
        else:
            raise lab.Error(f"unknown scenario `{scenario}`")


def workload():
    """The Transformer-Lab-shaped workload of issue 5 (as the Rust probe's):
    10,000 logs, 200 progress updates, 100 artifacts of 1 KiB, 10
    checkpoints, a model, a dataset, an eval table and finish."""
    for i in range(10_000):
        lab.info(f"step {i}: loss {1.0 / (i + 1):.4f}")
        if i % 50 == 0:
            lab.update_progress(i / 100.0)
    kib = b"x" * 1024
    for i in range(100):
        p = f"/work/artifact-{i}.bin"
        with open(p, "wb") as f:
            f.write(kib)
        lab.save_artifact(p)
    for i in range(10):
        p = f"/work/ckpt-{i}.bin"
        with open(p, "wb") as f:
            f.write(kib)
        lab.save_checkpoint(p, f"ckpt-{i}")
    os.makedirs("/work/model", exist_ok=True)
    with open("/work/model/weights.bin", "wb") as f:
        f.write(bytes(64 << 10))
    lab.save_model("/work/model", "bench-model")
    lab.save_dataset([{"text": f"row {i}", "label": i % 2} for i in range(100)], "bench-rows")
    lab.save_eval("bench-eval", [lab.eval_row(f"in {i}", "1", "1", 1.0) for i in range(100)], "csv")
    lab.finish("workload done", {"steps": 10_000.0})


def all_api():
    """Every lab call, with the results reported."""
    for level in lab.Level:
        lab.log(level, f"level Level::{level.name.capitalize()}")
    report("config", compact(lab.config()))
    info = lab.job_info()
    report("job-id", info.job_id)
    report("experiment", info.experiment)
    report("work-dir", info.work_dir)
    lab.progress(10.0, "writing")
    report("progress-over-100", outcome(lambda: lab.progress(150.0)))
    report("progress-nan", outcome(lambda: lab.progress(float("nan"))))
    for step in range(3):
        lab.metric("loss", 1.0 / (step + 1), step)
    lab.metric("lr", 0.1)
    report("metric-nan", outcome(lambda: lab.metric("loss", float("nan"), 9)))

    work = lab.work_dir()
    write(f"{work}/hello.txt", "hello artifact\n")
    os.makedirs(f"{work}/bundle/sub", exist_ok=True)
    write(f"{work}/bundle/a.txt", "a")
    write(f"{work}/bundle/sub/b.txt", "bb")
    a = lab.save_artifact("/work/hello.txt")
    report("artifact", f"{a.name} {a.size} {a.digest}")
    b = lab.save_artifact("bundle", "bundle-dir")
    report("artifact", f"{b.name} {b.size} {b.digest} files={b.files}")
    report("artifact-dup", outcome(lambda: lab.save_artifact("/work/hello.txt")))
    report("artifact-missing", outcome(lambda: lab.save_artifact("/work/nope.txt")))
    report("artifacts", len(lab.artifacts()))
    lab.progress(40.0, "checkpoints")

    write(f"{work}/ckpt.json", compact({"step": 7}))
    lab.save_checkpoint("/work/ckpt.json", "step-7")
    report("checkpoints", ",".join(c.name for c in lab.checkpoints()))
    r = lab.resume_from()
    if r is not None:
        with open(r.path) as f:
            content = f.read()
        report("resume", f"{r.job_id} {r.name} {content}")
        report("resume-write", "allowed" if writable(r.path) else "denied")
    else:
        report("resume", "none")

    os.makedirs(f"{work}/model", exist_ok=True)
    write(f"{work}/model/weights.bin", bytes([1, 2, 3, 4]))
    m = lab.save_model(
        "/work/model",
        "probe-model",
        architecture="probe-arch",
        pipeline_tag="text-classification",
        parent_model="base-model",
        metadata={"layers": 2},
    )
    report("model", f"{m.id} {m.name} files={m.files.files}")
    report("models", len(lab.models()))
    # Metadata that is not a JSON object (a str is passed through as JSON).
    report(
        "model-bad-metadata",
        outcome(lambda: lab.save_model("/work/model", "probe-model-2", metadata="[1,2]")),
    )

    rows = [{"text": "a", "label": 1}, {"text": "b", "label": 0}]
    d = lab.save_dataset(rows, "probe-rows", {"source": "probe"}, "two rows")
    report("dataset", f"{d.id} {d.name} rows={rust_option(d.rows)}")
    report("dataset-not-object", outcome(lambda: lab.save_dataset([[1]], "probe-bad")))
    write(f"{work}/data.csv", "x,y\n1,2\n")
    f = lab.save_dataset_file("/work/data.csv", "probe-file")
    report("dataset-file", f"{f.id} rows={rust_option(f.rows)}")
    report("datasets", len(lab.datasets()))
    report("open-ungranted", outcome(lambda: lab.open_dataset("probe-rows")))

    eval_rows = [
        {"input": "a", "output": "1", "expected": "1", "score": 1.0, "extra": {"p": 0.9}},
        {"input": "b, with comma", "output": "1", "expected": "0", "score": 0.0,
         "extra": {"p": 0.6}},
        {"input": "c", "output": "0", "expected": None, "score": 0.5},
    ]
    s = lab.save_eval("probe-eval", eval_rows, "csv")
    report("eval", f"{s.name} count={s.count} mean={rust_f64(s.mean_score)}")
    s = lab.save_eval("probe-eval-jsonl", eval_rows, lab.TableFormat.JSONL)
    report("eval", f"{s.name} count={s.count} mean={rust_f64(s.mean_score)}")
    report("should-stop", rust_bool(lab.should_stop()))
    lab.progress(100.0, "done")
    lab.finish("all calls made", {"calls": 20.0, "mean": 0.5})


def raw(call, *args):
    """A raw lab import (for the JSON text it returns, which the SDK parses),
    with its lab-error turned into the SDK's exception."""
    return lab._call(call, *args)


def api_0_2():
    """The calls new in lab:api@0.2.0: metadata, update-status, report,
    secrets, http, datasets.get, models.get (same reports in every language)."""
    from wit_world.imports import metadata as wit_metadata

    report("meta0", wit_metadata.get())
    report("meta1", raw(wit_metadata.update, '{"a":1,"b":{"c":2}}'))
    report("meta2", raw(wit_metadata.update, '{"b":null,"d":"x"}'))
    lab.reset_metadata('{"r":true}')
    report("meta3", wit_metadata.get())
    report("meta-err", outcome(lambda: lab.update_metadata("[1]")))

    lab.update_status("preparing", '{"phase":1}', None)
    report("status", outcome(lambda: lab.update_status("training", None, "warming up")))
    report("status-err", outcome(lambda: lab.update_status("", None, None)))

    report("report", outcome(lambda: lab.update_progress(
        50.0, "half", metrics={"loss": 0.5, "acc": 0.75}, step=7)))
    report("report-err", outcome(lambda: lab.update_progress(150.0, None, metrics={}, step=None)))

    secret = lab.get_secret("PROBE_SECRET")
    report("secret-len", len(secret.encode("utf-8")))
    lab.info(f"probe-secret {secret}")  # the host must redact the value
    report("secret-err", outcome(lambda: lab.get_secret("NOT_GRANTED")))

    r = lab.http.request(
        "POST", text("target"),
        headers=[("content-type", "application/json"), ("x-probe", "1")],
        data='{"hello":"world"}'.encode("utf-8"),
    )
    report("http-status", r.status_code)
    report("http-body", r.content.decode("utf-8", errors="replace"))
    report("http-denied", outcome(lambda: lab.http.request("GET", "http://example.invalid/")))

    lab.save_dataset(['{"q":"1"}', '{"q":"2"}'], "qa")
    d = lab.get_dataset("qa")
    report("dataset-get", f"{d.id} {'none' if d.rows is None else d.rows}")
    report("model-get-err", outcome(lambda: lab.get_model("no-such-model")))
    lab.finish("api-0-2 done", [])


def nn():
    """Inference through wasi:nn on the granted model named by `target`, then
    the error codes of bad inputs and refused loads."""
    from lab.nn import Model, NnError, Tensor, type_name

    model = Model.load(text("target"))
    out = model.run([Tensor.f32("x", [2, 3], [1.0, 2.0, 3.0, 0.0, 0.0, -4.0])])
    report("nn_outputs", ",".join(
        f"{t.name}:{type_name(t.ty)}:{'x'.join(str(d) for d in t.dims)}" for t in out))
    report("nn_scores", ",".join(rust_f32(v) for v in out["scores"].to_f32()))
    report("nn_labels", ",".join(str(v) for v in out["label"].to_i64()))

    def code(call):
        try:
            call()
            return "ok"
        except NnError as e:
            return e.code

    report("nn_bad_dims", code(lambda: model.run([Tensor.f32("x", [1, 4], [0.0] * 4)])))
    for key, name in [("nn_malformed", "garbage"), ("nn_ungranted", "ungranted"),
                      ("nn_missing", "nosuch")]:
        report(key, code(lambda: Model.load(name)))
    report("nn_load_bytes", code(lambda: lab.nn.load_bytes([bytes([1, 2, 3])])))
    lab.finish("nn done")


def open_granted():
    """Open the granted dataset/model named by `target` and report a file."""
    target = text("target")
    kind, sep, id_ = target.partition(":")
    if not sep or kind not in ("dataset", "model"):
        raise lab.Error("target must be dataset:ID or model:ID")
    path = lab.open_dataset(id_) if kind == "dataset" else lab.open_model(id_)
    report("path", path)
    report("files", ",".join(sorted(os.listdir(path))))
    report("write", "allowed" if writable(os.path.join(path, "new.txt")) else "denied")
    lab.finish("opened")


def bad_names():
    """Names that must be refused with invalid-argument."""
    write(os.path.join(lab.work_dir(), "f.txt"), "x")
    for name in ["../x", "a/b", "", "nul\0byte", "..", ".", "n" * 300, "/abs"]:
        report(
            f"artifact-name {rust_debug_str(name)}",
            outcome(lambda: lab.save_artifact("/work/f.txt", name)),
        )
    report("checkpoint-name", outcome(lambda: lab.save_checkpoint("/work/f.txt", "../up")))
    report("model-name", outcome(lambda: lab.save_model("/work/f.txt", "a/b")))
    report("dataset-name", outcome(lambda: lab.save_dataset([{}], "..")))
    report("eval-name", outcome(lambda: lab.save_eval("x/y", [])))
    report("metric-name", outcome(lambda: lab.metric("", 1.0)))
    report("artifacts", len(lab.artifacts()))
    lab.finish("bad names tried")


def escape():
    """Paths that leave the grants, directly or through symlinks."""
    report("etc-passwd", outcome(lambda: lab.save_artifact("/etc/passwd")))
    report("dotdot", outcome(lambda: lab.save_artifact("/work/../../etc/passwd")))
    report("relative-dotdot", outcome(lambda: lab.save_artifact("../etc/passwd")))
    report("open-etc", "readable" if readable("/etc/passwd") else "unreadable")
    # Symlinks out of a grant (`target` is a granted directory holding
    # `link` -> /etc/passwd and `dir/up` -> /etc): never followed.
    target = text("target")
    if target:
        report("symlink-file", outcome(lambda: lab.save_artifact(f"{target}/link", "link")))
        report("symlink-in-dir", outcome(lambda: lab.save_artifact(f"{target}/dir", "dir")))
        report("symlink-read", "readable" if readable(f"{target}/link") else "unreadable")
    report("artifacts", len(lab.artifacts()))
    lab.finish("escapes tried")


def read():
    """Read a file at `target` and report its content."""
    target = text("target")
    try:
        with open(target) as f:
            report("content", f.read().strip())
    except OSError as e:
        report("read-error", io_kind(e))
    report("write", "allowed" if writable(f"{target}.new") else "denied")
    lab.finish("read")


WitWorld = lab.export(Probe)
