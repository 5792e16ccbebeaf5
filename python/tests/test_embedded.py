"""The embedded API of the `labhost` wheel (installed into a fresh venv by
scripts/test-python.sh), driving the real guests of guests/dist."""

import asyncio
import re
import threading
import time
from pathlib import Path

import pytest

import labhost

REPO = Path(__file__).resolve().parents[2]
RUST = REPO / "guests" / "dist" / "rust"


@pytest.fixture()
def host(tmp_path):
    return labhost.Host(labhost.Workspace(tmp_path / "ws"))


@pytest.fixture()
def probe(host):
    return host.load(RUST / "probe.wasm")


def generate(host, rows=200):
    job = host.run(RUST / "datagen.wasm", {"rows": rows}, experiment="data")
    rec = job.wait(timeout=120)
    assert rec["status"] == "COMPLETE", rec
    return job, rec


def test_a_plugin_is_loaded_and_described(host, probe):
    assert (probe.name, probe.kind) == ("probe", "other")
    assert re.fullmatch(r"[0-9a-f]{64}", probe.blake3)
    assert host.load(RUST / "probe.wasm").blake3 == probe.blake3
    assert host.load(RUST / "datagen.wasm").blake3 != probe.blake3
    params = {p["name"]: p for p in probe.params}
    assert params["scenario"] == {
        "name": "scenario",
        "type": "text",
        "default": "all-api",
        "description": params["scenario"]["description"],
    }
    assert params["ratio"]["default"] == 0.5 and params["flag"]["default"] is False
    assert any(i.startswith("lab:api/log@") for i in probe.imports)
    assert repr(probe) == "Plugin(name='probe', version='0.1.0', kind='other')"
    assert repr(host) == f"Host(workspace={str(host.workspace.root)!r})"


def test_a_job_runs_and_is_read_back(host):
    job, rec = generate(host, rows=300)
    assert job.status == "COMPLETE"
    assert rec["id"] == job.id and rec["experiment"] == "data"
    assert rec["config"]["rows"] == 300
    # What it saved: one dataset, from the record and the registry.
    assert len(job.datasets) == 1
    (ds,) = host.workspace.datasets()
    assert ds["id"] == job.datasets[0] and ds["name"] == "sentiment" and ds["rows"] == 300
    # Its events from the start: logs, progress, the stored dataset, the end.
    events = list(job.events())
    kinds = [e["event"] for e in events]
    assert kinds[-1] == "ended" and events[-1]["status"] == "COMPLETE"
    assert "log" in kinds and "stored" in kinds and "progress" in kinds
    stored = [e for e in events if e["event"] == "stored"]
    assert stored[0]["kind"] == "dataset" and stored[0]["name"] == ds["id"]
    assert [e for e in job.logs()][0]["message"].startswith("generating 300 rows")
    # The same job looked up by id (or a prefix), as another process would.
    again = host.workspace.job(job.id[:12])
    assert (again.id, again.status) == (job.id, "COMPLETE")
    assert again.wait()["id"] == job.id
    listed = host.workspace.jobs(status="complete", experiment="data")
    assert [j["id"] for j in listed] == [job.id]
    assert host.workspace.jobs(status=["failed", "cancelled"]) == []


def test_a_trainer_gets_its_dataset_limits_and_metrics(host):
    data, _ = generate(host)
    job = host.run(
        RUST / "trainer.wasm",
        {"epochs": 3, "batch_size": 50},
        experiment="train",
        datasets=[data.datasets[0]],
        limits=labhost.Limits(timeout="2m", memory="256MiB"),
    )
    rec = job.wait(timeout=120)
    assert rec["status"] == "COMPLETE", rec
    limits = rec["sandbox"]["limits"]
    assert (limits["timeout"], limits["memory_bytes"]) == (120, 256 << 20)
    points = job.metrics(names=["loss"])
    assert len(points) > 3 and {p["name"] for p in points} == {"loss"}
    assert all(isinstance(p["value"], float) for p in points)
    few = job.metrics(names=["loss"], max_points=3)
    assert 0 < len(few) <= 3
    assert len(job.models) == 1 and job.artifacts == rec["artifacts"]
    frame = job.metrics_frame(names=["loss"])
    assert list(frame.columns) == ["name", "value", "step", "ts"] and len(frame) == len(points)


def test_errors_are_typed_and_say_what_is_wrong(host, probe, tmp_path):
    with pytest.raises(labhost.NotFoundError) as e:
        host.load(tmp_path / "missing.wasm")
    assert str(e.value) == f"no plugin file {tmp_path / 'missing.wasm'}"
    assert isinstance(e.value, LookupError) and isinstance(e.value, labhost.LabhostError)
    junk = tmp_path / "junk.wasm"
    junk.write_bytes(b"not a component")
    with pytest.raises(labhost.PluginError):
        host.load(junk)
    with pytest.raises(labhost.InvalidArgumentError) as e:
        host.run(probe, {"nope": 1})
    assert "nope" in str(e.value) and isinstance(e.value, ValueError)
    with pytest.raises(labhost.InvalidArgumentError) as e:
        host.run(probe, limits={"tiemout": "1s"})
    assert str(e.value).startswith("limits: unknown field `tiemout`")
    with pytest.raises(labhost.InvalidArgumentError):
        host.run(probe, datasets=["no-such-dataset"])
    with pytest.raises(labhost.InvalidArgumentError):
        host.run(probe, dirs=["/"])
    with pytest.raises(labhost.NotFoundError):
        host.workspace.job("no-such-job")
    with pytest.raises(labhost.InvalidArgumentError):
        host.workspace.jobs(status="nearly")
    with pytest.raises(TypeError):
        host.run(probe, datasets=5)
    # Nothing above created a job.
    assert host.workspace.jobs() == []


def test_wait_times_out_and_cancel_ends_the_job(host, probe):
    job = host.run(probe, {"scenario": "cooperative"})
    with pytest.raises(labhost.WaitTimeoutError) as e:
        job.wait(timeout=0.2)
    assert str(e.value) == f"job {job.id} did not end within 0.2 s"
    assert isinstance(e.value, TimeoutError) and job.status == "RUNNING"
    job.cancel()
    rec = job.wait(timeout=60)
    assert rec["status"] == "CANCELLED", rec
    with pytest.raises(labhost.ConflictError) as e:
        job.cancel()
    assert str(e.value) == f"job {job.id} already ended (CANCELLED)"
    with pytest.raises(labhost.JobFailedError) as e:
        job.raise_for_status()
    assert str(e.value).startswith(f"job {job.id} ended CANCELLED")
    with pytest.raises(labhost.InvalidArgumentError):
        job.wait(timeout=-1)


def test_a_job_seen_by_id_is_cancelled_through_the_workspace(host, probe):
    job = host.run(probe, {"scenario": "cooperative"})
    view = labhost.Workspace(host.workspace.root).job(job.id)
    view.cancel()  # a cancel request file, as another process sends it
    assert view.wait(timeout=60)["status"] == "CANCELLED"


def test_the_gil_is_released_while_jobs_run_in_threads(host, probe):
    ticks = []
    stop = threading.Event()

    def ticker():
        while not stop.is_set():
            ticks.append(time.monotonic())
            time.sleep(0.005)

    t = threading.Thread(target=ticker)
    t.start()
    results = {}

    def one(i):
        job = host.run(RUST / "datagen.wasm", {"rows": 100 + i, "dataset_name": f"d{i}"})
        results[i] = job.wait(timeout=120)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(4)]
    started = time.monotonic()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    stop.set()
    t.join()
    assert sorted(results) == [0, 1, 2, 3]
    assert all(r["status"] == "COMPLETE" for r in results.values())
    assert sorted(r["config"]["rows"] for r in results.values()) == [100, 101, 102, 103]
    # The ticker ran while the jobs did: no wait held the GIL.
    during = [x for x in ticks if x >= started]
    assert len(during) >= 5, f"{len(during)} ticks while 4 jobs ran"


def test_asyncio_waits_and_streams(host, probe):
    async def main():
        job = host.run(RUST / "datagen.wasm", {"rows": 150})
        kinds = [e["event"] async for e in job.events()]
        rec = await job.wait_async()
        slow = host.run(probe, {"scenario": "cooperative"})
        with pytest.raises(labhost.WaitTimeoutError):
            await slow.wait_async(0.1)
        slow.cancel()
        return kinds, rec, await slow.wait_async(60)

    kinds, rec, slow = asyncio.run(main())
    assert kinds[-1] == "ended" and "stored" in kinds
    assert rec["status"] == "COMPLETE" and slow["status"] == "CANCELLED"


def rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


# The bound on RSS growth over 1,000 jobs after a warm-up of 100: each job
# loses nothing the host keeps (records, handles, instances); allocator
# noise and the page cache of the records' files stay far below it.
LEAK_BOUND_KIB = 32 * 1024


def test_a_thousand_jobs_do_not_grow_rss(host, probe):
    config = {"scenario": "bench", "target": "metric", "count": 20}

    def batch(n):
        for _ in range(n):
            rec = host.run(probe, config).wait(timeout=60)
            assert rec["status"] == "COMPLETE", rec

    batch(100)
    before = rss_kib()
    batch(1000)
    grown = rss_kib() - before
    print(f"\nRSS after 100 warm-up jobs {before} KiB; after 1,000 more: {grown:+} KiB")
    assert grown < LEAK_BOUND_KIB, f"RSS grew by {grown} KiB over 1,000 jobs"
    assert len(host.workspace.jobs(limit=5000)) == 1100
