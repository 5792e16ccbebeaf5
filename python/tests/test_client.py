"""The REST client (`labhost.Client`) against a real `labhost serve` on
127.0.0.1, started by the test from target/debug/labhost."""

import json
import os
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

import labhost

REPO = Path(__file__).resolve().parents[2]
RUST = REPO / "guests" / "dist" / "rust"
BIN = Path(os.environ.get("LABHOST_BIN", REPO / "target" / "debug" / "labhost"))


def cli(ws, *args):
    out = subprocess.run(
        [BIN, "--workspace", ws, *args], capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    ws = tmp_path_factory.mktemp("served")
    tokens = {s: cli(ws, "token", "create", f"t-{s}", "--scope", s) for s in ("read", "run", "admin")}
    revoked = cli(ws, "token", "create", "gone", "--scope", "admin")
    gone_id = json.loads(cli(ws, "token", "ls", "--json"))
    cli(ws, "token", "revoke", next(t["id"] for t in gone_id if t["name"] == "gone"))
    proc = subprocess.Popen(
        [BIN, "--workspace", ws, "serve", "--bind", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    first = proc.stdout.readline().strip()
    prefix = "labhost serve: listening on "
    assert first.startswith(prefix), first
    yield {"url": first[len(prefix):], "ws": ws, "revoked": revoked, **tokens}
    proc.kill()
    proc.wait()


@pytest.fixture(scope="module")
def lab(server):
    return labhost.Client(server["url"], api_key=server["admin"], timeout=30)


@pytest.fixture(scope="module")
def plugins(lab):
    return {name: lab.upload_plugin(RUST / f"{name}.wasm")["blake3"] for name in ("datagen", "probe", "trainer")}


def test_a_job_is_launched_followed_and_read_back(lab, plugins):
    job = lab.launch(plugins["datagen"], {"rows": 120}, experiment="remote")
    assert job.record["status"] == "RUNNING" and len(job.id) >= 12
    events = list(job.events())
    assert events[-1]["event"] == "ended" and events[-1]["status"] == "COMPLETE"
    assert {"log", "progress", "stored"} <= {e["event"] for e in events}
    rec = job.wait(timeout=60)
    assert rec["status"] == "COMPLETE" and rec["config"]["rows"] == 120
    assert job.logs().startswith("generating 120 rows") or "generating 120 rows" in job.logs()
    assert [j.id for j in lab.jobs(experiment="remote")] == [job.id]
    assert lab.job(job.id[:12]).id == job.id
    (ds,) = [d for d in lab.datasets() if d["id"] == rec["datasets"][0]]
    assert ds["rows"] == 120
    # The trainer on that dataset, its metrics downsampled.
    train = lab.launch(plugins["trainer"], {"epochs": 2}, datasets=[ds["id"]], limits={"timeout": "2m"})
    assert train.wait(timeout=120)["status"] == "COMPLETE"
    loss = train.metrics(names=["loss"])
    assert len(loss) > 2 and {p["name"] for p in loss} == {"loss"}
    assert 0 < len(train.metrics(names=["loss"], max_points=2)) <= 2


def test_launch_many_runs_in_parallel_and_keeps_order(lab, plugins):
    jobs = lab.launch_many(
        {"plugin": plugins["datagen"], "config": {"rows": 50 + i, "dataset_name": f"bulk{i}"}, "experiment": "bulk"}
        for i in range(4)
    )
    recs = [j.wait(timeout=120) for j in jobs]
    assert [r["config"]["rows"] for r in recs] == [50, 51, 52, 53]
    assert all(r["status"] == "COMPLETE" for r in recs)
    assert len(lab.jobs(experiment="bulk", status=["complete"])) == 4


def test_datasets_upload_append_and_query(lab, tmp_path):
    csv = tmp_path / "scores.csv"
    csv.write_text("text,score\n" + "".join(f"row {i},{i / 10}\n" for i in range(10)))
    rec = lab.upload_dataset("scores", csv, description="ten rows")
    assert rec["name"] == "scores" and rec["rows"] == 10
    v2 = lab.add_items("scores", [{"text": "late", "score": 5.5}])
    assert v2["rows"] == 11 and v2["id"] != rec["id"]
    page = lab.get_items("scores", filters=["score >= 0.7"], order_by=["score DESC"], max_items=2)
    assert page["total"] == 4
    assert [r["text"] for r in page["rows"]] == ["late", "row 9"]
    with pytest.raises(labhost.InvalidArgumentError) as e:
        lab.upload_dataset("x", tmp_path / "x.txt")
    assert str(e.value) == "cannot tell the format of x.txt: pass format='csv', 'jsonl' or 'parquet'"


def test_cancel_and_rerun(lab, plugins):
    job = lab.launch(plugins["probe"], {"scenario": "cooperative"})
    with pytest.raises(labhost.WaitTimeoutError):
        job.wait(timeout=0.3)
    job.cancel()
    assert job.wait(timeout=60)["status"] == "CANCELLED"
    with pytest.raises(labhost.JobFailedError):
        job.raise_for_status()
    with pytest.raises(labhost.ConflictError) as e:
        job.cancel()
    assert e.value.status == 409
    again = job.rerun()
    assert again.id != job.id and again.record["config"] == job.record["config"]
    again.cancel()
    assert again.wait(timeout=60)["status"] == "CANCELLED"


def test_errors_map_to_the_embedded_api_classes(server, lab, plugins):
    with pytest.raises(labhost.NotFoundError) as e:
        lab.job("no-such-job")
    assert e.value.status == 404 and str(e.value).startswith("GET /jobs/no-such-job: 404 ")
    with pytest.raises(labhost.InvalidArgumentError) as e:
        lab.launch(plugins["probe"], {"nope": 1})
    assert "nope" in str(e.value)
    with pytest.raises(labhost.InvalidArgumentError):
        lab.jobs(status="nearly")
    reader = labhost.Client(server["url"], api_key=server["read"])
    assert reader.jobs(experiment="remote")  # reading is allowed
    with pytest.raises(labhost.PermissionDeniedError) as e:
        reader.launch(plugins["probe"])
    assert e.value.status == 403
    for key in (server["revoked"], "lh_not-a-token", None):
        with pytest.raises(labhost.PermissionDeniedError) as e:
            labhost.Client(server["url"], api_key=key or "").jobs()
        assert e.value.status == 401
    # Nothing above started a job.
    assert lab.jobs(plugin="probe", status="running") == []


def test_connection_errors_are_retried_then_raised():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    client = labhost.Client(f"http://127.0.0.1:{port}", api_key="x", max_retries=2, backoff=0.05)
    started = time.monotonic()
    with pytest.raises(labhost.ServerError) as e:
        client.health()
    assert str(e.value).startswith(f"GET /health: cannot reach http://127.0.0.1:{port} (")
    assert str(e.value).endswith(") after 3 attempts")
    assert time.monotonic() - started >= 0.05 + 0.1  # backoff 0.05, then 0.1


def test_a_server_that_answers_late_is_retried(server):
    # A proxy that refuses the first two connections, then forwards to the server.
    host, port = server["url"].removeprefix("http://").split(":")
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen()
    seen = []

    def proxy():
        while len(seen) < 3:
            conn, _ = lsock.accept()
            seen.append(conn)
            if len(seen) < 3:
                conn.close()  # the client sees a dropped connection
                continue
            up = socket.create_connection((host, int(port)))
            request = conn.recv(65536)
            up.sendall(request)
            while data := up.recv(65536):
                conn.sendall(data)
            up.close()
            conn.close()

    t = threading.Thread(target=proxy, daemon=True)
    t.start()
    client = labhost.Client(
        f"http://127.0.0.1:{lsock.getsockname()[1]}", api_key=server["read"], max_retries=3, backoff=0.01
    )
    assert client.health()["status"] == "ok"
    assert len(seen) == 3
    lsock.close()


def test_client_arguments_are_checked():
    with pytest.raises(labhost.InvalidArgumentError) as e:
        labhost.Client("127.0.0.1:8080")
    assert str(e.value) == "url must start with http:// or https://, not '127.0.0.1:8080'"
    with pytest.raises(labhost.InvalidArgumentError):
        labhost.Client("http://x", max_retries=-1)
