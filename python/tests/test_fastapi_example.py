"""python/examples/fastapi_app.py served by a real uvicorn on 127.0.0.1:
launch, stream, wait, cancel, and the refusals."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    port = free_port()
    env = dict(os.environ, LABHOST_WORKSPACE=str(tmp_path_factory.mktemp("fastapi")),
               LABHOST_PLUGINS=str(REPO / "guests" / "dist" / "rust"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "fastapi_app:app", "--port", str(port), "--log-level", "warning"],
        cwd=REPO / "python" / "examples", env=env,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:  # until it answers (or exited)
        assert proc.poll() is None, "uvicorn exited"
        try:
            urllib.request.urlopen(base + "/jobs", timeout=5).read()
            break
        except OSError:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.1)
    yield base
    proc.terminate()
    proc.wait()


def call(method, url, body=None):
    req = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body is not None else None,
                                 headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as res:
            return res.status, json.loads(res.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_launch_stream_and_wait(app):
    status, job = call("POST", app + "/jobs", {"plugin": "datagen", "config": {"rows": 150}})
    assert status == 201 and job["status"] in ("RUNNING", "COMPLETE")
    events = []
    with urllib.request.urlopen(f"{app}/jobs/{job['id']}/events", timeout=60) as res:
        assert res.headers["content-type"].startswith("text/event-stream")
        for line in res:
            if line.startswith(b"data: "):
                events.append(json.loads(line[6:]))
    assert events[-1]["event"] == "ended" and events[-1]["status"] == "COMPLETE"
    assert "stored" in {e["event"] for e in events}
    status, rec = call("GET", f"{app}/jobs/{job['id']}?wait=30")
    assert status == 200 and rec["status"] == "COMPLETE" and rec["config"]["rows"] == 150


def test_cancel_and_refusals(app):
    status, job = call("POST", app + "/jobs", {"plugin": "probe", "config": {"scenario": "cooperative"}})
    assert status == 201
    assert call("GET", f"{app}/jobs/{job['id']}?wait=0.2")[0] == 408
    assert call("POST", f"{app}/jobs/{job['id']}/cancel")[0] == 202
    assert call("GET", f"{app}/jobs/{job['id']}?wait=30")[1]["status"] == "CANCELLED"
    assert call("POST", f"{app}/jobs/{job['id']}/cancel")[0] == 409
    assert call("POST", app + "/jobs", {"plugin": "../../etc/passwd"}) == (400, {"detail": "plugin: a name of [A-Za-z0-9_-]"})
    assert call("POST", app + "/jobs", {"plugin": "nope"})[0] == 404
    assert call("POST", app + "/jobs", {"plugin": "probe", "config": {"nope": 1}})[0] == 400
    assert call("GET", app + "/jobs/no-such-job")[0] == 404
