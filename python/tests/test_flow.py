"""The InstructLab-shaped flow (`labhost.flow`): generate -> train ->
evaluate through the real demo plugins, each step alone and chained."""

from pathlib import Path

import pytest

import labhost
from labhost.flow import Data, Model

REPO = Path(__file__).resolve().parents[2]
RUST = REPO / "guests" / "dist" / "rust"


@pytest.fixture()
def host(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    # Plugins by name from paths.plugins, limits from the settings.
    (ws / "plugins").mkdir()
    for name in ("datagen", "trainer", "evaluator"):
        (ws / "plugins" / f"{name}.wasm").symlink_to(RUST / f"{name}.wasm")
    (ws / "labhost.toml").write_text('[paths]\nplugins = "plugins"\n\n[limits]\ntimeout = "3m"\n')
    return labhost.Host(labhost.Workspace(ws))


def test_generate_train_evaluate_chained(host):
    data = Data.generate(host, rows=400, experiment="flow")
    assert data.name == "sentiment" and data.record["rows"] == 400
    assert data.job.record()["sandbox"]["limits"]["timeout"] == 180
    model = Model.train(host, data, epochs=2)
    assert model.job.record()["config"]["dataset"] == data.id
    assert model.job.record()["sandbox"]["grants"]["datasets"] == [data.id]
    assert model.name == "sentiment-logreg"
    report = model.evaluate(data)
    (ev,) = report.evals
    assert ev["name"] == "predictions" and ev["count"] == len(report.table) > 0
    assert set(report.table[0]) >= {"input", "output", "expected_output", "score"}
    assert report.job.record()["sandbox"]["grants"]["models"] == [model.id]
    assert report.job.record()["config"]["model"] == model.id


def test_each_step_runs_alone_on_stored_entries(host):
    Data.generate(host, rows=300)
    Model.train(host, "sentiment", epochs=1)
    # A later session: only names.
    model = Model.get(host, "sentiment-logreg")
    report = model.evaluate("sentiment", format="jsonl")
    assert report.evals[0]["file"]["location"].endswith(".jsonl")
    assert len(report.table) == report.evals[0]["count"]


def test_a_missing_input_or_a_failed_step_raises(host):
    with pytest.raises(labhost.NotFoundError) as e:
        Model.get(host, "nope")
    assert str(e.value) == "no model 'nope' in the workspace"
    with pytest.raises(labhost.NotFoundError):
        Model.train(host, "no-such-dataset")
    data = Data.generate(host, rows=300)
    # Training on a split-less dataset name the trainer cannot read: the job fails.
    with pytest.raises(labhost.JobFailedError):
        Model.train(host, data, epochs=0)
