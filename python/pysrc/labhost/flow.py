"""The common flow, shaped like InstructLab's SDK: generate -> train ->
evaluate, each step a separate call that takes the previous step's output
and can also run alone on what the workspace already holds.

    from labhost import Host
    from labhost.flow import Data, Model
    host = Host("ws")
    data = Data.generate(host, rows=500)            # plugins/datagen.wasm
    model = Model.train(host, data, epochs=3)       # plugins/trainer.wasm
    report = model.evaluate(data)                   # plugins/evaluator.wasm
    report.table                                    # the eval rows

    # Alone, on stored entries (by name or id):
    Model.get(host, "sentiment-logreg").evaluate(Data.get(host, "sentiment"))

Each step's plugin is a path or a name in the workspace's `paths.plugins`
(default names `datagen`, `trainer`, `evaluator`); limits, HTTP grants and
secrets come from the workspace settings (`labhost.toml`, the host's
profile) as for any `host.run`. A step whose plugin declares a `dataset`
or `model` parameter gets the input's id there, and the input is granted.
A step whose job does not end COMPLETE raises `JobFailedError`.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any, List, Optional, Union

from ._labhost import Host, Job
from .errors import InvalidArgumentError, NotFoundError

__all__ = ["Data", "Evaluation", "Model"]


def _run(host: Host, plugin, inputs: dict, config: dict, kw: dict) -> Job:
    plugin = host.load(plugin) if isinstance(plugin, (str, Path)) else plugin
    declared = {p["name"] for p in plugin.params}
    config = dict(config)
    grants: dict = {"datasets": [], "models": []}
    for param, entry in inputs.items():
        if entry is None:
            continue
        grants[f"{param}s"].append(entry.id)
        if param in declared:
            config.setdefault(param, entry.id)
    for key in ("datasets", "models"):
        grants[key] += list(kw.pop(key, None) or [])
    job = host.run(plugin, config, **grants, **kw)
    job.wait()
    job.raise_for_status()
    return job


def _entry(records: List[dict], ref: str, what: str) -> dict:
    """The record `ref` names: an id, or the newest version of a name."""
    by_id = [r for r in records if r["id"] == ref]
    named = [r for r in records if r.get("name") == ref]
    if by_id:
        return by_id[0]
    if named:
        return max(named, key=lambda r: r.get("created_at", ""))
    raise NotFoundError(f"no {what} {ref!r} in the workspace")


class Data:
    """A dataset in the workspace's registry."""

    def __init__(self, host: Host, record: dict, job: Optional[Job] = None):
        self.host, self.record, self.job = host, record, job
        self.id: str = record["id"]
        self.name: str = record.get("name", "")

    def __repr__(self) -> str:
        return f"Data({self.name!r}, id={self.id[:12]!r})"

    @classmethod
    def get(cls, host: Host, ref: str) -> "Data":
        """A stored dataset by id or name (the newest version)."""
        return cls(host, _entry(host.workspace.datasets(), ref, "dataset"))

    @classmethod
    def generate(
        cls, host: Host, plugin: Union[str, Path, Any] = "datagen", *, config: Optional[dict] = None, **params
    ) -> "Data":
        """Run a data generator; the dataset it saved. Keyword arguments
        are its parameters (`rows=500`) unless they are `host.run`'s
        (`experiment`, `limits`, ...)."""
        config, kw = _split(params, config)
        job = _run(host, plugin, {}, config, kw)
        if len(job.datasets) != 1:
            raise InvalidArgumentError(f"job {job.id} saved {len(job.datasets)} datasets, not one")
        return cls(host, _entry(host.workspace.datasets(), job.datasets[0], "dataset"), job)


class Model:
    """A model in the workspace's registry."""

    def __init__(self, host: Host, record: dict, job: Optional[Job] = None):
        self.host, self.record, self.job = host, record, job
        self.id: str = record["id"]
        self.name: str = record.get("name", "")

    def __repr__(self) -> str:
        return f"Model({self.name!r}, id={self.id[:12]!r})"

    @classmethod
    def get(cls, host: Host, ref: str) -> "Model":
        """A stored model by id or name (the newest version)."""
        return cls(host, _entry(host.workspace.models(), ref, "model"))

    @classmethod
    def train(
        cls,
        host: Host,
        data: Union[Data, str],
        plugin: Union[str, Path, Any] = "trainer",
        *,
        config: Optional[dict] = None,
        **params,
    ) -> "Model":
        """Train on `data` (a `Data`, or a stored dataset's id or name);
        the model the job saved."""
        data = data if isinstance(data, Data) else Data.get(host, data)
        config, kw = _split(params, config)
        job = _run(host, plugin, {"dataset": data}, config, kw)
        if len(job.models) != 1:
            raise InvalidArgumentError(f"job {job.id} saved {len(job.models)} models, not one")
        return cls(host, _entry(host.workspace.models(), job.models[0], "model"), job)

    def evaluate(
        self,
        data: Union[Data, str],
        plugin: Union[str, Path, Any] = "evaluator",
        *,
        config: Optional[dict] = None,
        **params,
    ) -> "Evaluation":
        """Evaluate this model on `data`; the job's eval tables."""
        data = data if isinstance(data, Data) else Data.get(self.host, data)
        config, kw = _split(params, config)
        job = _run(self.host, plugin, {"dataset": data, "model": self}, config, kw)
        return Evaluation(job, self.host.workspace.root)


class Evaluation:
    """What an evaluation job saved: its eval tables (`evals`: name,
    count, mean_score, file)."""

    def __init__(self, job: Job, workspace_root: str):
        self.job = job
        self.workspace_root = workspace_root
        self.evals: List[dict] = job.evals

    def __repr__(self) -> str:
        return f"Evaluation(job={self.job.id[:12]!r}, evals={[e.get('name') for e in self.evals]!r})"

    @property
    def table(self) -> List[dict]:
        """The rows of the first eval table, as dicts."""
        if not self.evals:
            return []
        root = Path(self.workspace_root)
        return _rows(root / self.evals[0]["file"]["location"])


def _rows(path: Path) -> List[dict]:
    text = path.read_text()
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    return list(csv.DictReader(io.StringIO(text)))


_RUN_ARGS = {"experiment", "datasets", "models", "dirs", "allow_http", "secrets", "env", "limits", "resume", "metadata", "keep_work"}


def _split(params: dict, config: Optional[dict]):
    """(plugin config, host.run keyword arguments) from a step's keywords."""
    kw = {k: v for k, v in params.items() if k in _RUN_ARGS}
    conf = dict(config or {})
    conf.update({k: v for k, v in params.items() if k not in _RUN_ARGS})
    return conf, kw
