"""Write labhost plugins in Python, with the Transformer Lab SDK's API.

A Transformer Lab script ports by changing where it starts, not what it
calls. It keeps ``from lab import lab`` and its ``lab.init()``,
``lab.log()``, ``lab.update_progress()``, ``lab.save_model()``,
``lab.finish()``... and its main function becomes the job::

    from lab import lab

    def train():
        lab.init()
        config = lab.get_config()
        lab.log(f"training for {config['epochs']} epochs")
        ...                                  # write the model to ./model
        lab.update_progress(90, "saving")
        lab.save_model("model", name="my-model", architecture="MyNet")
        lab.finish("trained", score={"accuracy": 0.92})

    WitWorld = lab.export(
        train, name="my-trainer", kind="trainer", description="Trains MyNet",
        params=[lab.param("epochs", "integer", 3, "Passes over the data")],
    )

``lab`` (the object ``from lab import lab`` gives) *is* this module: the
Transformer Lab names and the lower-level ones below are one API, not a
facade over a second copy. Where Transformer Lab and the WIT name a call
differently, both names are the same function (``update_progress`` /
``progress``, ``log_metric`` / ``metric``, ``get_config`` / ``config``,
``error`` / ``fail``).

What differs from Transformer Lab, because the host runs the job:

- The host creates the job, with the experiment and parameters the user
  chose; ``init()`` only returns the job's identity (and warns if the script
  asked for another experiment or passed a config, which are ignored).
  Parameters are declared in ``export(..., params=[...])`` (or a
  :class:`Plugin` subclass) and read with ``get_config()``.
- ``error(message)`` ends the job as failed, as in Transformer Lab; to log
  at error level, use ``log("error", message)``.
- The save calls return the host's record of what was stored
  (:class:`Stored`, :class:`ModelInfo`, :class:`DatasetInfo`,
  :class:`EvalSummary`), not a path: stored files live in the workspace,
  outside the sandbox.
- Tabular data (datasets, eval results) is a list of dicts, a dict of
  columns, or anything with pandas' ``to_dict(orient="records")``.
- While the job runs, the working directory is the job's scratch directory
  ``/work``, so relative paths mean the same to Python's ``open()`` as to
  the host.
- There is no ``get_hf_callback()`` (no ``transformers`` in a component).

Errors: a refused lab call raises a :class:`LabError` subclass from
:mod:`lab.errors`, one per WIT variant (``lab.errors.Denied``,
``NotFound``, ``InvalidArgument``, ``LimitExceeded``, ``Io``), each also a
builtin exception (``PermissionError``, ``FileNotFoundError``,
``ValueError``, ``OSError``). Raising :class:`Error` (a ``LabError`` is
one) out of ``run`` fails the job with its message; any other uncaught
exception is a crash, like a Rust panic: the traceback lands in the job log
and the component traps.

Build with ``componentize-py -d wit -w plugin componentize -p SDK_DIR -p
APP_DIR app -o plugin.wasm`` (``scripts/build-guests.sh`` does it for every
directory in ``guests/python``).

About the bindings: ``wit_world`` and ``componentize_py_types`` are not in
this repository. ``componentize-py componentize`` generates them from
``wit/`` while it builds the component, so committing a copy would only let
it drift from the WIT. For an editor or type checker, run
``componentize-py -d wit -w plugin bindings guests/python/.bindings``
(ignored by git).
"""

from __future__ import annotations

import json as _json
import os as _os
import sys as _sys
from typing import Any, Callable, Iterable, List, Mapping, Optional, Sequence, Union

import componentize_py_types as _cpt
import wit_world as _wit_world
from wit_world.imports import artifacts as _artifacts
from wit_world.imports import checkpoints as _checkpoints
from wit_world.imports import config as _config
from wit_world.imports import datasets as _datasets
from wit_world.imports import evals as _evals
from wit_world.imports import job as _job
from wit_world.imports import log as _log
from wit_world.imports import metrics as _metrics
from wit_world.imports import models as _models
from wit_world.imports import plugin_types as _plugin_types
from wit_world.imports import progress as _progress
from wit_world.imports import types as _types

from . import errors
from .errors import Error, LabError

# The WIT records and enums, under the names the Rust SDK uses.
Stored = _types.Stored
JobInfo = _config.JobInfo
ResumePoint = _checkpoints.ResumePoint
ModelMeta = _models.ModelMeta
ModelInfo = _models.ModelInfo
DatasetInfo = _datasets.DatasetInfo
EvalRow = _evals.EvalRow
EvalSummary = _evals.EvalSummary
TableFormat = _evals.TableFormat
Level = _log.Level
Kind = _plugin_types.PluginKind
ParamType = _plugin_types.ParamType
Param = _plugin_types.Param
PluginInfo = _plugin_types.PluginInfo

PathLike = Union[str, "_os.PathLike[str]"]
#: Tabular data: a list (or iterable) of dicts, a dict of equal-length
#: columns, or an object with pandas' ``to_dict(orient="records")``.
Records = Any

__all__ = [
    # the object of `from lab import lab` (this module), errors
    "lab", "errors", "Error", "LabError",
    # describing and exporting a plugin
    "Plugin", "param", "export",
    # lifecycle and config
    "init", "get_config", "config", "job_info", "work_dir",
    "finish", "error", "fail", "should_stop",
    # log, progress, metrics
    "log", "trace", "debug", "info", "warn",
    "update_progress", "progress", "log_metric", "metric",
    # files
    "save_artifact", "artifacts",
    "save_checkpoint", "checkpoints", "get_checkpoint_to_resume", "resume_from",
    "save_model", "models", "open_model", "get_model_path",
    "save_dataset", "save_dataset_file", "datasets", "open_dataset",
    "save_eval", "eval_row",
    # WIT types
    "Stored", "JobInfo", "ResumePoint", "ModelMeta", "ModelInfo", "DatasetInfo",
    "EvalRow", "EvalSummary", "TableFormat", "Level", "Kind", "ParamType", "Param",
    "PluginInfo",
]


# ---- helpers -------------------------------------------------------------------

_KINDS = {
    _types.LabError_InvalidArgument: "invalid-argument",
    _types.LabError_Denied: "denied",
    _types.LabError_NotFound: "not-found",
    _types.LabError_LimitExceeded: "limit-exceeded",
    _types.LabError_Io: "io",
}


def _call(fn, *args):
    """Call a fallible import, turning its ``err(lab-error)`` into the
    matching :mod:`lab.errors` exception."""
    try:
        return fn(*args)
    except _cpt.Err as e:
        value = e.value
        kind = _KINDS.get(type(value))
        if kind is None:  # not a lab-error: let it crash loudly
            raise
        raise errors.from_kind(kind, value.value) from None


def _path(path: PathLike) -> str:
    return _os.fspath(path)


def _basename(path: PathLike) -> str:
    """The last component of a guest path (the default name of what it holds)."""
    return _os.path.basename(_os.path.normpath(_path(path)))


def _json_text(value: Any, what: str) -> str:
    """JSON text of a dict/list/value; a ``str`` is taken as JSON already."""
    if isinstance(value, str):
        return value
    try:
        return _json.dumps(value, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as e:
        raise Error(f"{what} is not JSON-serialisable: {e}") from None


def _is_path(value: Any) -> bool:
    return isinstance(value, (str, _os.PathLike))


def _records(data: Records) -> List[Any]:
    """Rows of tabular data (see :data:`Records`)."""
    to_dict = getattr(data, "to_dict", None)
    if callable(to_dict) and not isinstance(data, Mapping):
        return list(to_dict(orient="records"))  # a pandas DataFrame
    if isinstance(data, Mapping):  # columns: {"text": [...], "label": [...]}
        columns = {k: list(v) for k, v in data.items()}
        lengths = {len(v) for v in columns.values()}
        if len(lengths) > 1:
            raise errors.InvalidArgument(f"columns of different lengths: {sorted(lengths)}")
        n = lengths.pop() if lengths else 0
        return [{k: v[i] for k, v in columns.items()} for i in range(n)]
    return list(data)


# ---- describing and exporting a plugin --------------------------------------


def param(name: str, type: Union[str, ParamType], default: Any = None,
          description: str = "", *, required: bool = False) -> Param:
    """Declare a parameter.

    ``type`` is a :class:`ParamType` or its name (``"text"``, ``"integer"``,
    ``"number"``, ``"boolean"``, ``"json"``); ``default`` a Python value
    (``None`` and ``required=True``: the user must give it).
    """
    if isinstance(type, str):
        type = ParamType[type.upper()]
    text = None if required or default is None else _json.dumps(default, separators=(",", ":"))
    return Param(name=name, type=type, default=text, description=description)


class Plugin:
    """Base class of a plugin: class attributes describe it, ``run`` is the job.

    Override :meth:`describe` instead of the attributes for a computed
    description. ``run`` must call :func:`finish` or :func:`fail`.
    """

    name: str = ""
    version: str = "0.1.0"
    kind: Union[Kind, str] = Kind.OTHER
    description: str = ""
    params: Sequence[Param] = ()

    def describe(self) -> PluginInfo:
        """Called before any job, with no grants: must not call lab APIs."""
        kind = self.kind if isinstance(self.kind, Kind) else Kind[str(self.kind).upper()]
        return PluginInfo(
            name=self.name or type(self).__name__.lower(),
            version=self.version,
            kind=kind,
            description=self.description,
            params=list(self.params),
        )

    def run(self) -> None:
        raise NotImplementedError("a lab.Plugin must define run()")


def export(plugin: Union[type, Callable[[], Any]], *, name: str = "",
           kind: Union[Kind, str] = Kind.OTHER, description: str = "",
           version: str = "0.1.0", params: Sequence[Param] = ()) -> type:
    """The ``WitWorld`` class componentize-py exports: ``WitWorld = lab.export(...)``
    in the app module.

    ``plugin`` is a :class:`Plugin` subclass (which describes itself), or a
    function, the job's main, described by the keyword arguments (``kind``:
    a :class:`Kind` or ``"generator"``, ``"trainer"``, ``"evaluator"``,
    ``"other"``; ``name``: default the function's name).
    """
    if not (isinstance(plugin, type) and issubclass(plugin, Plugin)):
        if not callable(plugin):
            raise TypeError("lab.export takes a lab.Plugin subclass or a function")
        main = plugin
        plugin = type(getattr(main, "__name__", "Main"), (Plugin,), {
            "name": name or getattr(main, "__name__", ""),
            "version": version, "kind": kind, "description": description,
            "params": tuple(params), "run": lambda self: main(),
        })

    class WitWorld(_wit_world.WitWorld):
        def describe(self) -> PluginInfo:
            return plugin().describe()

        def run(self) -> None:
            # Relative paths: the same for Python's open() as for the host.
            try:
                _os.chdir(work_dir())
            except OSError:
                pass
            try:
                plugin().run()
            except Error as e:
                raise _cpt.Err(str(e)) from None

    WitWorld.__qualname__ = WitWorld.__name__ = f"WitWorld[{plugin.__name__}]"
    return WitWorld


# ---- lifecycle and config ----------------------------------------------------


def init(experiment_id: Optional[str] = None, config: Optional[Mapping] = None) -> JobInfo:
    """Transformer Lab's first call. The host has already created the job;
    this returns its identity (job id, experiment, work dir). An
    ``experiment_id`` other than the job's, or a ``config``, cannot be
    applied here and is reported as a warning in the job log."""
    job = job_info()
    if experiment_id is not None and experiment_id != job.experiment:
        warn(f"lab.init: this job runs in experiment {job.experiment!r} (chosen by the "
             f"host), not {experiment_id!r}")
    if config:
        warn("lab.init: config ignored; the job's parameters are the plugin's "
             "declared params, read with lab.get_config()")
    return job


def get_config() -> dict:
    """The job's parameters (defaults filled in, validated by the host) as a dict."""
    return _json.loads(_config.get())


config = get_config


def job_info() -> JobInfo:
    """Job id, experiment and work directory."""
    return _config.info()


def work_dir() -> str:
    """The job's private read-write scratch directory (``/work``)."""
    return _config.info().work_dir


def finish(message: str = "Job completed successfully",
           score: Union[Mapping[str, float], Iterable, None] = None) -> None:
    """End the job successfully with final scores (a dict, or (name, value) pairs)."""
    items = score.items() if isinstance(score, Mapping) else (score or ())
    _call(_job.finish, message, [(str(k), float(v)) for k, v in items])


def fail(message: str) -> None:
    """End the job as failed (the first of finish/fail wins)."""
    _call(_job.fail, message)


#: Transformer Lab's name of :func:`fail`: it ends the job, it does not log.
error = fail


def should_stop() -> bool:
    """True once the job was asked to stop: checkpoint and return promptly."""
    return _job.should_stop()


# ---- log, progress, metrics --------------------------------------------------


def log(*args: Any) -> None:
    """Append a message to the job log: ``log(message)`` at info level, as in
    Transformer Lab, or ``log(level, message)`` with a :class:`Level` or its
    name (``"trace"`` ... ``"error"``)."""
    if len(args) == 1:
        level, message = Level.INFO, args[0]
    elif len(args) == 2:
        level, message = args
        if isinstance(level, str):
            try:
                level = Level[level.upper()]
            except KeyError:
                raise errors.InvalidArgument(f"unknown log level {level!r}") from None
    else:
        raise TypeError("lab.log(message) or lab.log(level, message)")
    _log.write(level, str(message))


def trace(message: str) -> None:
    log(Level.TRACE, message)


def debug(message: str) -> None:
    log(Level.DEBUG, message)


def info(message: str) -> None:
    log(Level.INFO, message)


def warn(message: str) -> None:
    log(Level.WARN, message)


def update_progress(percent: float, stage: Optional[str] = None) -> None:
    """Report progress in percent (0-100), with an optional stage text."""
    _call(_progress.update, float(percent), stage)


progress = update_progress


def log_metric(name: str, value: float, step: Optional[int] = None) -> None:
    """Record a metric value, optionally at a step."""
    _call(_metrics.record_metric, name, float(value), step)


metric = log_metric


# ---- artifacts -----------------------------------------------------------------


def save_artifact(source: Union[PathLike, Records], name: Optional[str] = None,
                  type: Optional[str] = None, config: Optional[Mapping] = None):
    """Store something the job produced; returns the host's record of it.

    Without ``type`` (or ``type="artifact"``), ``source`` is a file or
    directory stored as an artifact named ``name`` (default: the path's
    last component). As in Transformer Lab, ``type`` routes to the matching
    call, with its options from ``config``:

    - ``"model"``: :func:`save_model`; ``config={"model": {"architecture":
      ..., "pipeline_tag": ..., "parent_model": ..., "metadata": {...}}}``.
    - ``"dataset"``: :func:`save_dataset` (``source`` a path or rows);
      ``config={"dataset": {...metadata...}}``.
    - ``"checkpoint"``: :func:`save_checkpoint`.
    - ``"eval"``: :func:`save_eval` (``source`` rows; name default
      ``eval_results``; a ``.csv`` or ``.jsonl`` suffix selects the table
      format and is not part of the name, CSV otherwise);
      ``config={"evals": {column mapping}}``.
    """
    config = config or {}
    if type in (None, "artifact"):
        return _call(_artifacts.save, _path(source), name)
    if type == "model":
        return save_model(source, name, **config.get("model", {}))
    if type == "dataset":
        if name is None:
            if not _is_path(source):
                raise errors.InvalidArgument("a dataset saved from rows needs a name")
            name = _basename(source)
        return save_dataset(source, name, config.get("dataset"))
    if type == "checkpoint":
        return save_checkpoint(source, name)
    if type == "eval":
        stem, ext = _os.path.splitext(name or "eval_results")
        fmt = _TABLE_EXTENSIONS.get(ext)
        name = stem if fmt else stem + ext
        return save_eval(name, source, fmt or TableFormat.CSV, columns=config.get("evals"))
    raise errors.InvalidArgument(
        f"unknown artifact type {type!r}: model, dataset, checkpoint, eval or none")


def artifacts() -> list:
    """Artifacts stored so far by this job."""
    return _artifacts.list()


# ---- checkpoints -----------------------------------------------------------------


def save_checkpoint(path: PathLike, name: Optional[str] = None) -> Stored:
    """Store a file or directory as a checkpoint (default name: its last component)."""
    return _call(_checkpoints.save, _path(path), name or _basename(path))


def checkpoints() -> list:
    """Checkpoints stored so far by this job, oldest first."""
    return _checkpoints.list()


def resume_from() -> Optional[ResumePoint]:
    """The checkpoint to resume from (job, name, read-only path under
    ``/resume``), or None for a fresh start."""
    return _checkpoints.resume_from()


def get_checkpoint_to_resume() -> Optional[str]:
    """The read-only path of the checkpoint to resume from, or None."""
    point = resume_from()
    return None if point is None else point.path


# ---- models --------------------------------------------------------------------


def save_model(path: PathLike, name: Optional[str] = None, *,
               architecture: Optional[str] = None, pipeline_tag: Optional[str] = None,
               parent_model: Optional[str] = None,
               metadata: Union[Mapping, str, None] = None) -> ModelInfo:
    """Store a file or directory in the workspace model registry as ``name``
    (default: the path's last component); its id is ``<name>-<job id>``."""
    meta = ModelMeta(
        architecture=architecture,
        pipeline_tag=pipeline_tag,
        parent_model=parent_model,
        metadata=_json_text({} if metadata is None else metadata, "model metadata"),
    )
    return _call(_models.save, _path(path), name or _basename(path), meta)


def models() -> list:
    """Every model in the workspace registry."""
    return _models.list()


def open_model(id_or_name: str) -> str:
    """The read-only path of a model granted to this job (by id or name)."""
    return _call(_models.open, id_or_name)


get_model_path = open_model


# ---- datasets ------------------------------------------------------------------


def save_dataset(data: Union[PathLike, Records], dataset_id: str,
                 additional_metadata: Union[Mapping, str, None] = None,
                 description: Optional[str] = None) -> DatasetInfo:
    """Store a dataset named ``dataset_id`` (its registry id becomes
    ``<dataset_id>-<job id>``).

    ``data`` is rows (see :data:`Records`; each row a JSON object, stored
    one per line of ``data.jsonl``) or the path of a file or directory.
    ``additional_metadata`` is a dict kept with the dataset; the
    ``description`` defaults to its ``"description"`` entry, as in
    Transformer Lab.
    """
    metadata = {} if additional_metadata is None else additional_metadata
    if description is None and isinstance(metadata, Mapping):
        text = metadata.get("description")
        description = text if isinstance(text, str) else None
    meta_text = _json_text(metadata, "dataset metadata")
    if _is_path(data):
        return save_dataset_file(data, dataset_id, description, meta_text)
    rows = [_json_text(r, f"row {i}") for i, r in enumerate(_records(data))]
    return _call(_datasets.save_rows, dataset_id, rows, description, meta_text)


def save_dataset_file(path: PathLike, name: str, description: Optional[str] = None,
                      metadata: Union[Mapping, str, None] = None) -> DatasetInfo:
    """Store a file or directory as a dataset."""
    return _call(_datasets.save_file, _path(path), name, description,
                 _json_text({} if metadata is None else metadata, "dataset metadata"))


def datasets() -> list:
    """Every dataset in the workspace registry."""
    return _datasets.list()


def open_dataset(id_or_name: str) -> str:
    """The read-only path of a dataset granted to this job (by id or name)."""
    return _call(_datasets.open, id_or_name)


# ---- evals ---------------------------------------------------------------------

_TABLE_EXTENSIONS = {".csv": TableFormat.CSV, ".jsonl": TableFormat.JSONL}

#: Transformer Lab's eval columns: role -> default column name.
_EVAL_COLUMNS = {"input": "input", "output": "output",
                 "expected_output": "expected_output", "score": "score"}


def eval_row(input: Any, output: Any, expected: Any = None, score: float = 0.0,
             extra: Union[Mapping, str, None] = None) -> EvalRow:
    """One row of an eval table (``extra``: a dict of extra columns)."""
    return EvalRow(input=str(input), output=str(output),
                   expected=None if expected is None else str(expected), score=float(score),
                   extra=_json_text({} if extra is None else extra, "eval extra"))


def _eval_row(row: Mapping, columns: Mapping[str, str]) -> EvalRow:
    """An :class:`EvalRow` from a dict: the mapped columns, ``expected`` as
    another name of the expected output, an ``extra`` dict and every other
    column as extra columns."""
    row = dict(row)
    try:
        input, output = row.pop(columns["input"]), row.pop(columns["output"])
    except KeyError as e:
        raise errors.InvalidArgument(f"eval row without column {e.args[0]!r}") from None
    if columns["expected_output"] in row:
        expected = row.pop(columns["expected_output"])
    else:
        expected = row.pop("expected", None)
    score = row.pop(columns["score"], 0.0)
    extra = row.pop("extra", None) or {}
    if isinstance(extra, str):
        extra = _json.loads(extra)
    return eval_row(input, output, expected, score, {**row, **extra})


def save_eval(name: str, rows: Union[Records, Iterable[EvalRow]],
              format: Union[TableFormat, str] = TableFormat.CSV,
              columns: Optional[Mapping[str, str]] = None) -> EvalSummary:
    """Store an eval table; the host records its row count and mean score.

    ``rows`` are :class:`EvalRow` or dicts (see :data:`Records`) with the
    columns ``input``, ``output``, ``expected_output`` (or ``expected``)
    and ``score``, renamed by ``columns`` as in Transformer Lab
    (``{"input": "question", "score": "accuracy", ...}``); other columns,
    and the entries of an ``extra`` dict, become extra columns.
    """
    if isinstance(format, str):
        format = TableFormat[format.upper()]
    cols = {**_EVAL_COLUMNS, **(columns or {})}
    table = [r if isinstance(r, EvalRow) else _eval_row(r, cols)
             for r in ([] if rows is None else _records(rows))]
    return _call(_evals.save, name, table, format)


# ``from lab import lab``: the Transformer Lab spelling names this module.
lab = _sys.modules[__name__]
