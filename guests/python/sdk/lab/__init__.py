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
  asked for another experiment; a ``config`` goes to the job's metadata as
  with ``set_config()``). Parameters are declared in ``export(...,
  params=[...])`` (or a :class:`Plugin` subclass) and read with
  ``get_config()``; ``set_config()`` and the Labelbox-style
  ``get_metadata()``/``update_metadata()``/``reset_metadata()`` work on the
  job's free *metadata* (a JSON object in the job record), not on them.
- ``lab.job`` and ``lab.experiment`` are objects read from the host when
  used (``lab.job.id``, ``lab.job.update_progress(...)``,
  ``lab.job.update_status(...)``, ``lab.experiment.name``).
- ``list_models()``/``get_model()`` and ``list_datasets()``/``get_dataset()``
  return :class:`Model`/:class:`Dataset` entries (attributes, and
  Transformer Lab's dict keys ``model_id``/``dataset_id``, ``name``,
  ``json_data``); their ``.path`` (``get_dir()``) opens the files and is
  :class:`errors.Denied` unless the job was granted them.
- Outbound HTTP goes through :mod:`lab.http` (``lab.http.post(url,
  json=...)``), only to endpoints granted to the job; secrets granted to the
  job are read with ``get_secret(name)``.
- Inference on an ONNX model granted to the job runs in the host, through
  ``wasi:nn``: :mod:`lab.nn` (``lab.nn.Model.load(name).run_f32(input, dims,
  values)["output"].to_f32()``; failures raise :class:`lab.nn.NnError`).
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
- ``get_hf_callback()`` (no ``transformers`` in a component) and the calls
  that return host directories (``get_checkpoints_dir()``,
  ``get_artifacts_dir()``, ``get_checkpoint_paths()``,
  ``get_artifact_paths()``, ``get_parent_job_checkpoint_path()``) raise
  :class:`Error` saying what to use instead.

Errors: a refused lab call raises a :class:`LabError` subclass from
:mod:`lab.errors`, one per WIT variant (``lab.errors.Denied``,
``NotFound``, ``InvalidArgument``, ``LimitExceeded``, ``Io``,
``Network``), each also a builtin exception (``PermissionError``,
``FileNotFoundError``, ``ValueError``, ``OSError``, ``ConnectionError``). Raising :class:`Error` (a ``LabError`` is
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
from wit_world.imports import metadata as _metadata
from wit_world.imports import metrics as _metrics
from wit_world.imports import models as _models
from wit_world.imports import plugin_types as _plugin_types
from wit_world.imports import progress as _progress
from wit_world.imports import secrets as _secrets
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
    "finish", "error", "fail", "should_stop", "update_status",
    "job", "experiment",
    # job metadata (Transformer Lab set_config, Labelbox get/update/reset_config)
    "set_config", "get_metadata", "update_metadata", "reset_metadata",
    "get_config_metadata", "capture_wandb_url",
    # log, progress, metrics
    "log", "trace", "debug", "info", "warn",
    "update_progress", "progress", "log_metric", "metric",
    # secrets, outbound HTTP (module lab.http), inference (module lab.nn)
    "get_secret", "http", "nn",
    # files
    "save_artifact", "artifacts",
    "save_checkpoint", "checkpoints", "get_checkpoint_to_resume", "resume_from",
    "save_model", "models", "open_model", "get_model_path",
    "list_models", "get_model", "Model",
    "save_dataset", "save_dataset_file", "datasets", "open_dataset",
    "list_datasets", "get_dataset", "Dataset",
    # Transformer Lab calls a sandbox cannot offer (they raise lab.Error)
    "get_hf_callback", "get_checkpoints_dir", "get_artifacts_dir",
    "get_checkpoint_paths", "get_artifact_paths", "get_parent_job_checkpoint_path",
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
    _types.LabError_Network: "network",
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
    ``experiment_id`` other than the job's cannot be applied here and is
    reported as a warning in the job log. A ``config`` is attached to the
    job's metadata with :func:`set_config`, as in Transformer Lab (the job's
    *parameters* stay the plugin's declared params, read with
    :func:`get_config`)."""
    info = job_info()
    if experiment_id is not None and experiment_id != info.experiment:
        warn(f"lab.init: this job runs in experiment {info.experiment!r} (chosen by the "
             f"host), not {experiment_id!r}")
    if config:
        set_config(config)
    return info


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


def update_status(status: str, metadata: Union[Mapping, str, None] = None,
                  error_message: Optional[str] = None) -> None:
    """Report a status stage (Labelbox ``update_status``): a short name such
    as ``"preparing"``, ``"training"`` or ``"uploading"``, shown by ``labhost
    jobs``/``show``. ``metadata`` (a dict, or JSON text) is merged into the
    job's metadata as by :func:`update_metadata`; ``error_message`` is
    recorded with the stage. It does not end the job (use :func:`finish` or
    :func:`fail`)."""
    meta = None if metadata is None else _json_text(metadata, "status metadata")
    _call(_job.update_status, str(status), meta, error_message)


class _Experiment:
    """``lab.experiment``: the experiment the job runs in (chosen by the
    host). ``id`` and ``name`` are both the experiment's name."""

    @property
    def id(self) -> str:
        return job_info().experiment

    name = id

    def __str__(self) -> str:
        return self.id

    def __repr__(self) -> str:
        return f"<lab.experiment {self.id!r}>"


class _Job:
    """``lab.job``: the running job, shaped like Transformer Lab's ``Job``.

    Attributes are read from the host when used (never at import time, so
    ``describe`` stays free of lab calls): ``id``, ``experiment`` (an object
    with ``.id``/``.name``), ``experiment_id``, ``work_dir``. Methods
    forward to the module functions: ``update_progress``,
    ``update_status``, ``log_info``, ``get_job_data``/``set_job_data``/
    ``update_job_data_field`` (the job's metadata), ``should_stop``,
    ``finish``, ``error``/``fail``.
    """

    @property
    def id(self) -> str:
        return job_info().job_id

    job_id = id

    @property
    def experiment(self) -> _Experiment:
        return experiment

    @property
    def experiment_id(self) -> str:
        return job_info().experiment

    @property
    def work_dir(self) -> str:
        return work_dir()

    def update_progress(self, progress: float, stage: Optional[str] = None, *,
                        metrics: Optional[Mapping[str, float]] = None,
                        step: Optional[int] = None) -> None:
        """:func:`lab.update_progress`."""
        update_progress(progress, stage, metrics=metrics, step=step)

    def update_status(self, status: str, metadata: Union[Mapping, str, None] = None,
                      error_message: Optional[str] = None) -> None:
        """:func:`lab.update_status`."""
        update_status(status, metadata, error_message)

    def log_info(self, message: Any) -> None:
        """Log at info level."""
        info(str(message))

    def get_job_data(self) -> dict:
        """The job's metadata (:func:`lab.get_metadata`)."""
        return get_metadata()

    def set_job_data(self, data: Mapping) -> None:
        """Replace the job's metadata (:func:`lab.reset_metadata`)."""
        reset_metadata(data)

    def update_job_data_field(self, key: str, value: Any) -> dict:
        """Set one key of the job's metadata (``None`` removes it)."""
        return update_metadata({key: value})

    def should_stop(self) -> bool:
        return should_stop()

    def finish(self, message: str = "Job completed successfully", score=None) -> None:
        finish(message, score)

    def fail(self, message: str) -> None:
        fail(message)

    error = fail

    def __repr__(self) -> str:
        return "<lab.job>"


#: The running job (``lab.job.id``, ``lab.job.update_progress(...)``, ...).
job = _Job()
#: The job's experiment (``lab.experiment.id``, ``lab.experiment.name``).
experiment = _Experiment()


# ---- job metadata --------------------------------------------------------------


def _json_object(text: str) -> dict:
    value = _json.loads(text) if text else {}
    return value if isinstance(value, dict) else {"value": value}


def get_metadata() -> dict:
    """The job's free metadata, a dict (``{}`` until set). Labelbox's
    ``get_config``; Transformer Lab's job data. (Not the job's parameters:
    those are :func:`get_config`.)"""
    return _json_object(_metadata.get())


def update_metadata(patch: Union[Mapping, str]) -> dict:
    """Merge ``patch`` (a dict, or JSON object text) into the job's metadata
    as JSON Merge Patch does (RFC 7386: nested dicts merge, a ``None`` value
    removes the key); returns the merged metadata. Labelbox's
    ``update_config``. At most 64 KiB of JSON in all."""
    return _json_object(_call(_metadata.update, _json_text(patch, "metadata")))


def reset_metadata(value: Union[Mapping, str, None] = None) -> dict:
    """Replace the job's metadata with ``value`` (default: ``{}``, clearing
    it); returns the new metadata. Labelbox's ``reset_config``."""
    text = _json_text({} if value is None else value, "metadata")
    _call(_metadata.reset, text)
    return _json_object(text)


#: Labelbox's ``ModelRun.get_config`` (the metadata, not the parameters).
get_config_metadata = get_metadata


def set_config(config: Mapping) -> None:
    """Transformer Lab's ``set_config``: attach ``config`` to the job. The
    keys are merged into the job's metadata (existing keys not in
    ``config`` are kept; with ``"experiment_name"`` added when missing, as
    Transformer Lab does). This does not change the job's parameters
    (:func:`get_config`), which the host fixed when it created the job."""
    if not isinstance(config, Mapping):
        raise errors.InvalidArgument("lab.set_config takes a dict")
    config = dict(config)
    config.setdefault("experiment_name", job_info().experiment)
    update_metadata(config)


def capture_wandb_url(wandb_url: str) -> None:
    """Record a Weights & Biases run URL in the job's metadata
    (``wandb_run_url``), as Transformer Lab does. (A sandboxed job reaches
    W&B only through a granted HTTP endpoint.)"""
    if wandb_url and wandb_url.strip():
        update_metadata({"wandb_run_url": wandb_url.strip()})


# ---- secrets ---------------------------------------------------------------------


def get_secret(name: str) -> str:
    """The value of secret ``name`` granted to the job (``labhost run --secret
    NAME``); raises :class:`errors.Denied` when not granted. The host redacts
    the value wherever the plugin logs or records it. Prefer header injection
    (``--http-header``), which never hands the value to the plugin."""
    return _call(_secrets.get, name)


# ---- what a sandbox cannot offer ---------------------------------------------


def _unavailable(call: str, instead: str):
    raise Error(f"{call} is not available in a labhost sandbox: {instead}")


def get_hf_callback(*args: Any, **kwargs: Any):
    """Not available: there is no ``transformers`` in a component. Raises
    :class:`Error` saying what to use instead."""
    _unavailable("get_hf_callback",
                 "report progress with lab.update_progress(progress, metrics=...) from your "
                 "training loop, and save checkpoints with lab.save_checkpoint(path, name)")


def get_checkpoints_dir(*args: Any, **kwargs: Any):
    """Not available: checkpoints are stored by the host outside the sandbox."""
    _unavailable("get_checkpoints_dir",
                 "write checkpoints under lab.work_dir() and store them with "
                 "lab.save_checkpoint(path, name); lab.checkpoints() lists them")


def get_artifacts_dir(*args: Any, **kwargs: Any):
    """Not available: artifacts are stored by the host outside the sandbox."""
    _unavailable("get_artifacts_dir",
                 "write files under lab.work_dir() and store them with "
                 "lab.save_artifact(path, name); lab.artifacts() lists them")


def get_checkpoint_paths(*args: Any, **kwargs: Any):
    """Not available: stored checkpoints are outside the sandbox."""
    _unavailable("get_checkpoint_paths",
                 "lab.checkpoints() returns the host's records of the stored checkpoints; "
                 "lab.get_checkpoint_to_resume() the readable path of the one to resume from")


def get_artifact_paths(*args: Any, **kwargs: Any):
    """Not available: stored artifacts are outside the sandbox."""
    _unavailable("get_artifact_paths",
                 "lab.artifacts() returns the host's records of the stored artifacts")


def get_parent_job_checkpoint_path(*args: Any, **kwargs: Any):
    """Not available: another job's files are outside the sandbox."""
    _unavailable("get_parent_job_checkpoint_path",
                 "start the job with `labhost run --resume JOB[:CHECKPOINT]` and read "
                 "lab.get_checkpoint_to_resume()")


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


def update_progress(progress: float, stage: Optional[str] = None, *,
                    metrics: Optional[Mapping[str, float]] = None,
                    step: Optional[int] = None) -> None:
    """Report progress in percent (0-100), with an optional stage text.

    With ``metrics`` (a dict name -> number) or ``step``, the values are
    recorded in the same call as by :func:`log_metric` at ``step``
    (``progress.report``), as Transformer Lab's
    ``update_progress(progress, metrics=..., step=...)``.
    """
    if metrics is None and step is None:
        _call(_progress.update, float(progress), stage)
        return
    items = metrics.items() if isinstance(metrics, Mapping) else (metrics or ())
    _call(_progress.report, float(progress), stage,
          [(str(k), float(v)) for k, v in items], None if step is None else int(step))


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
    - ``"eval"`` or ``"evals"`` (Transformer Lab uses both spellings):
      :func:`save_eval` (``source`` rows; name default
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
    if type in ("eval", "evals"):
        stem, ext = _os.path.splitext(name or "eval_results")
        fmt = _TABLE_EXTENSIONS.get(ext)
        name = stem if fmt else stem + ext
        return save_eval(name, source, fmt or TableFormat.CSV, columns=config.get("evals"))
    raise errors.InvalidArgument(
        f"unknown artifact type {type!r}: model, dataset, checkpoint, eval(s) or none")


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


class _Entry:
    """A registry entry: the host's record (its fields are attributes) plus
    ``metadata`` (parsed to a dict), a lazy ``path`` and dict-style access
    with Transformer Lab's keys."""

    _open: Callable[[str], str]

    def __init__(self, info: Any):
        self.info = info
        self._path: Optional[str] = None

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        return getattr(self.__dict__["info"], attr)

    @property
    def metadata(self) -> dict:
        return _json_object(self.info.metadata if hasattr(self.info, "metadata")
                            else self.info.meta.metadata)

    @property
    def path(self) -> str:
        """The read-only guest path of the files; opened on first use.
        Raises :class:`errors.Denied` when the job was not granted this
        entry (``labhost run --model/--dataset ID``)."""
        if self._path is None:
            self._path = type(self)._open(self.info.id)
        return self._path

    def get_dir(self) -> str:
        """Transformer Lab's name of :attr:`path`."""
        return self.path

    def _dict(self) -> dict:
        raise NotImplementedError

    def __getitem__(self, key: str) -> Any:
        return self._dict()[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self._dict().get(key, default)

    def keys(self):
        return self._dict().keys()

    def __contains__(self, key: str) -> bool:
        return key in self._dict()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.info.id!r})"


class Model(_Entry):
    """A model of the workspace registry (:func:`get_model`,
    :func:`list_models`): the :class:`ModelInfo` fields (``id``, ``name``,
    ``job_id``, ``meta``, ``files``) as attributes, ``architecture``,
    ``pipeline_tag``, ``parent_model``, ``metadata`` (dict), ``path``
    (lazy :func:`open_model`), and Transformer Lab's dict keys
    ``model_id``, ``name``, ``json_data``."""

    _open = staticmethod(lambda id: open_model(id))

    @property
    def architecture(self) -> Optional[str]:
        return self.info.meta.architecture

    @property
    def pipeline_tag(self) -> Optional[str]:
        return self.info.meta.pipeline_tag

    @property
    def parent_model(self) -> Optional[str]:
        return self.info.meta.parent_model

    def _dict(self) -> dict:
        meta = self.info.meta
        return {"model_id": self.info.id, "id": self.info.id, "name": self.info.name,
                "job_id": self.info.job_id,
                "json_data": {**self.metadata, "architecture": meta.architecture,
                              "pipeline_tag": meta.pipeline_tag,
                              "parent_model": meta.parent_model}}


class Dataset(_Entry):
    """A dataset of the workspace registry (:func:`get_dataset`,
    :func:`list_datasets`): the :class:`DatasetInfo` fields (``id``,
    ``name``, ``job_id``, ``rows``, ``description``, ``files``) as
    attributes, ``metadata`` (dict), ``path`` (lazy :func:`open_dataset`),
    and the dict keys ``dataset_id``, ``name``, ``json_data``."""

    _open = staticmethod(lambda id: open_dataset(id))

    def _dict(self) -> dict:
        return {"dataset_id": self.info.id, "id": self.info.id, "name": self.info.name,
                "job_id": self.info.job_id, "description": self.info.description,
                "rows": self.info.rows, "json_data": self.metadata}


def list_models() -> List[Model]:
    """Every model in the workspace registry, as :class:`Model` entries
    (``m.id``, ``m["model_id"]``, ``m.get("name")``...)."""
    return [Model(m) for m in _models.list()]


def get_model(name_or_id: str) -> Model:
    """One model of the registry by id or name (a name saved by several jobs
    is :class:`errors.InvalidArgument`: give the id; unknown:
    :class:`errors.NotFound`). Its ``.path`` opens it on first use (raises
    :class:`errors.Denied` unless the job was granted the model)."""
    return Model(_call(_models.get, name_or_id))


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


def list_datasets() -> List[Dataset]:
    """Every dataset in the workspace registry, as :class:`Dataset` entries."""
    return [Dataset(d) for d in _datasets.list()]


def get_dataset(name_or_id: str) -> Dataset:
    """One dataset of the registry by id or name (unknown:
    :class:`errors.NotFound`). Its ``.path`` opens it on first use (raises
    :class:`errors.Denied` unless the job was granted the dataset)."""
    return Dataset(_call(_datasets.get, name_or_id))


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


# Outbound HTTP (``lab.http.get/post/request``); imported last, it uses _call.
from . import http  # noqa: E402
# Inference through wasi:nn (``lab.nn.Model.load(name).run_f32(...)``).
from . import nn  # noqa: E402

# ``from lab import lab``: the Transformer Lab spelling names this module.
lab = _sys.modules[__name__]
