"""The exceptions labhost raises: all are `LabhostError`."""


class LabhostError(Exception):
    """Every error labhost raises."""


class NotFoundError(LabhostError, LookupError):
    """No job, pipeline run, plugin file or registry entry by that name."""


class InvalidArgumentError(LabhostError, ValueError):
    """A bad argument, config value, grant or limit; nothing was started."""


class PluginError(LabhostError):
    """The file is not a plugin this host can run (not a component,
    imports outside the lab API, describe() failed)."""


class ConflictError(LabhostError):
    """What the call would change is in use, or has already ended."""


class WaitTimeoutError(LabhostError, TimeoutError):
    """`Job.wait(timeout=...)` ran out; the job goes on."""


class WorkspaceError(LabhostError, OSError):
    """Reading or writing the workspace failed."""


class JobFailedError(LabhostError):
    """A job ended FAILED, CANCELLED or INTERRUPTED (`Job.raise_for_status`)."""


class PermissionDeniedError(LabhostError, PermissionError):
    """The server refused the token: missing, wrong, revoked, or its scope
    is too low for the call (HTTP 401 or 403)."""


class ServerError(LabhostError, ConnectionError):
    """The server could not be reached, or answered 5xx, after every retry."""
