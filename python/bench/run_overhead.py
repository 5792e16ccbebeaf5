"""The Python package's figures, side by side in one run (nothing asserted):

- the overhead of `host.run(...).wait()` from Python against the same job
  started and waited for from Rust (`cargo run --example job_loop`), per
  job, and their ratio;
- the wheel's size and `import labhost`'s time (median of fresh processes).

    scripts/test-python.sh --bench        # builds the wheel and the example, then runs this

Arguments: WHEEL JOB_LOOP_BINARY [N]. Runs in the venv the wheel is
installed in.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import labhost

REPO = Path(__file__).resolve().parents[2]
PROBE = REPO / "guests" / "dist" / "rust" / "probe.wasm"
CONFIG = {"scenario": "bench", "target": "log", "count": 1}


def python_loop(host, probe, n):
    times = []
    for _ in range(n):
        t = time.perf_counter()
        rec = host.run(probe, CONFIG).wait()
        times.append((time.perf_counter() - t) * 1e6)
        assert rec["status"] == "COMPLETE", rec
    return times


def rust_loop(job_loop, n, root):
    out = subprocess.run([job_loop, PROBE, str(n), json.dumps(CONFIG), root], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)["times_us"]


def stats(times):
    times = sorted(times)
    return {
        "median_us": times[len(times) // 2],
        "p99_us": times[round((len(times) - 1) * 0.99)],
        "mean_us": statistics.fmean(times),
    }


def main():
    wheel, job_loop = Path(sys.argv[1]), sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 300
    imports = []
    for _ in range(7):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import labhost"], check=True)
        imports.append((time.perf_counter() - t) * 1e3)
    bare = []
    for _ in range(7):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        bare.append((time.perf_counter() - t) * 1e3)
    rounds = 5
    py_times, rs_times = [], []
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        host = labhost.Host(labhost.Workspace(a))
        probe = host.load(PROBE)
        # Each side warms its compile cache and page cache first; then the
        # two alternate, so a busy moment of the machine hits both alike.
        python_loop(host, probe, 20)
        rust_loop(job_loop, 20, b)
        for _ in range(rounds):
            py_times += python_loop(host, probe, n // rounds)
            rs_times += rust_loop(job_loop, n // rounds, b)
    py, rs = stats(py_times), stats(rs_times)
    print(f"machine: nproc {os.cpu_count()}, python {sys.version.split()[0]}, {len(py_times)} jobs a side of the Rust probe ({CONFIG}), {rounds} alternating rounds")
    print("| figure | value |")
    print("|---|---|")
    print(f"| wheel size | {wheel.stat().st_size / 1e6:.1f} MB ({wheel.name}) |")
    print(f"| `import labhost` (fresh process, median of 7, minus bare `python -c pass`) | {statistics.median(imports) - statistics.median(bare):.1f} ms |")
    for key in ("median_us", "p99_us", "mean_us"):
        print(f"| job start→end, {key[:-3]}: Python / Rust | {py[key]:.0f} µs / {rs[key]:.0f} µs = {py[key] / rs[key]:.3f} |")
    print(f"| Python overhead per job (median) | {py['median_us'] - rs['median_us']:+.0f} µs |")


if __name__ == "__main__":
    main()
