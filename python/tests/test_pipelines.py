"""Pipelines from Python: run, wait, cancel, resume, and a run seen by id."""

from pathlib import Path

import pytest

import labhost

REPO = Path(__file__).resolve().parents[2]
RUST = REPO / "guests" / "dist" / "rust"


@pytest.fixture()
def host(tmp_path):
    return labhost.Host(labhost.Workspace(tmp_path / "ws"))


def pipeline(tmp_path, wait_stage):
    text = f'''
name = "py"
experiment = "py-pipeline"
workers = 3
[stages.generate]
plugin = "{RUST / 'datagen.wasm'}"
config = {{ rows = 120, dataset_name = "pydata" }}
[stages.score]
plugin = "{RUST / 'probe.wasm'}"
needs = ["generate"]
config = {{ scenario = "bench", target = "log", count = 1 }}
matrix = {{ ratio = [0.1, 0.5] }}
'''
    if wait_stage:
        text += f'''
[stages.wait]
plugin = "{RUST / 'probe.wasm'}"
needs = ["generate"]
config = {{ scenario = "cooperative" }}
'''
    path = tmp_path / "p.toml"
    path.write_text(text)
    return path


def statuses(rec):
    return {i["name"]: i["status"] for i in rec["instances"]}


def test_a_pipeline_runs_to_the_end(host, tmp_path):
    run = host.run_pipeline(pipeline(tmp_path, wait_stage=False))
    rec = run.wait(timeout=120)
    assert rec["status"] == "COMPLETE", rec
    assert statuses(rec) == {"generate": "COMPLETE", "score#1": "COMPLETE", "score#2": "COMPLETE"}
    assert run.status == "COMPLETE"
    # Its jobs are workspace jobs, found by the pipeline filter.
    jobs = host.workspace.jobs(pipeline=run.id)
    assert len(jobs) == 3 and {j["status"] for j in jobs} == {"COMPLETE"}
    assert [r["id"] for r in host.workspace.runs()] == [run.id]
    with pytest.raises(labhost.ConflictError) as e:
        run.cancel()
    assert str(e.value) == f"pipeline run {run.id} is not running (COMPLETE)"


def test_cancel_then_resume_keeps_what_completed(host, tmp_path):
    run = host.run_pipeline(pipeline(tmp_path, wait_stage=True))
    with pytest.raises(labhost.WaitTimeoutError):
        run.wait(timeout=0.5)
    # Seen by id, as another process would, and cancelled from there.
    seen = host.workspace.run(run.id[:16])
    assert seen.id == run.id and seen.status == "RUNNING"
    seen.cancel()
    rec = run.wait(timeout=60)
    assert rec["status"] == "CANCELLED" and statuses(rec)["generate"] == "COMPLETE"
    resumed = host.resume_pipeline(run.id)
    with pytest.raises(labhost.WaitTimeoutError):
        resumed.wait(timeout=0.5)  # `wait` waits for should-stop again
    resumed.cancel()
    rec = seen.wait(timeout=60)
    assert rec["status"] == "CANCELLED" and rec["resumes"] == 1
    generate = next(i for i in rec["instances"] if i["name"] == "generate")
    assert len(generate["attempts"]) == 1  # kept, not run again


def test_bad_pipelines_are_refused(host, tmp_path):
    with pytest.raises(labhost.NotFoundError) as e:
        host.run_pipeline(tmp_path / "missing.toml")
    assert str(e.value) == f"no pipeline file {tmp_path / 'missing.toml'}"
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[stages.a]\nplugin = "nope.wasm"\n')
    with pytest.raises(labhost.InvalidArgumentError):
        host.run_pipeline(bad)
    with pytest.raises(labhost.NotFoundError):
        host.workspace.run("no-such-run")
    with pytest.raises(labhost.NotFoundError):
        host.resume_pipeline("no-such-run")
    assert host.workspace.runs() == []
