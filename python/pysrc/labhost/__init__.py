"""labhost: run ML-lab plugins (WebAssembly components) in a sandbox.

    import labhost
    host = labhost.Host("ws")
    plugin = host.load("trainer.wasm")
    job = host.run(plugin, {"epochs": 3}, datasets=["sentiment"],
                   limits=labhost.Limits(timeout="10m", memory="512MiB"))
    for event in job.events():
        print(event)
    record = job.wait()

Every call that waits releases the GIL; `await job.wait_async()` and
`async for event in job.events()` serve asyncio code.
"""

from ._labhost import Events, Host, Job, Plugin, Run, Workspace, __version__
from .errors import (
    ConflictError,
    InvalidArgumentError,
    JobFailedError,
    LabhostError,
    NotFoundError,
    PermissionDeniedError,
    PluginError,
    ServerError,
    WaitTimeoutError,
    WorkspaceError,
)
from .client import Client, RemoteJob, RemoteRun


class Limits(dict):
    """Resource limits of a job, over the workspace's: `Limits(timeout="10m",
    memory="512MiB", max_stored="2GiB")` (the keys of `labhost limits`,
    `_` for `-`)."""

    def __init__(self, **limits):
        super().__init__({k.replace("_", "-"): v for k, v in limits.items()})

    def __repr__(self):
        inner = ", ".join(f"{k.replace('-', '_')}={v!r}" for k, v in self.items())
        return f"Limits({inner})"


__all__ = [
    "Client",
    "ConflictError",
    "Events",
    "Host",
    "InvalidArgumentError",
    "Job",
    "JobFailedError",
    "LabhostError",
    "Limits",
    "NotFoundError",
    "PermissionDeniedError",
    "Plugin",
    "PluginError",
    "RemoteJob",
    "RemoteRun",
    "Run",
    "ServerError",
    "WaitTimeoutError",
    "Workspace",
    "WorkspaceError",
    "__version__",
]
