"""The exceptions of the ``lab`` SDK.

Two kinds of failure end a job with a message (instead of a crash):

- :class:`Error`: raise it from ``run`` (or let one escape) to fail the job
  with "plugin returned an error: <message>".
- :class:`LabError`: the host refused or failed a lab call. There is one
  subclass per variant of the WIT ``lab-error``, each also deriving from the
  builtin exception a Python script would already catch for that problem::

      LabError             kind                 also a
      ├─ InvalidArgument   "invalid-argument"   ValueError
      ├─ Denied            "denied"             PermissionError
      ├─ NotFound          "not-found"          FileNotFoundError
      ├─ LimitExceeded     "limit-exceeded"     -
      ├─ Io                "io"                 OSError
      └─ Network           "network"            ConnectionError

(``Network``: an HTTP request to a granted endpoint did not complete:
connection refused or reset, TLS failure, timeout.)

:class:`HttpError` is not a lab error: ``Response.raise_for_status()`` of
:mod:`lab.http` raises it for a 4xx/5xx *response* (``.status``,
``.response``); uncaught it fails the job like any :class:`Error`.

So ``except lab.errors.Denied``, ``except PermissionError`` and ``except
lab.LabError`` (then ``e.kind == "denied"``) all catch a refused grant.
This module has no WIT bindings in it: it can be imported anywhere.
"""

from __future__ import annotations

from typing import Dict, Optional, Type

__all__ = [
    "Error", "LabError", "InvalidArgument", "Denied", "NotFound", "LimitExceeded", "Io",
    "Network", "HttpError", "BY_KIND", "from_kind",
]


class Error(Exception):
    """An error that ends ``run`` with ``err(str(error))``: the job fails
    with "plugin returned an error: <message>"."""


class LabError(Error):
    """The host refused or failed a lab call.

    ``kind`` is the WIT variant name (``"invalid-argument"``, ``"denied"``,
    ``"not-found"``, ``"limit-exceeded"``, ``"io"``, ``"network"``), set by each subclass;
    ``message`` the host's one-line explanation. ``str()`` reads like the
    Rust SDK's error: ``"invalid argument: <message>"``.
    """

    kind: Optional[str] = None

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        if self.kind is None:
            return self.message
        return f"{self.kind.replace('-', ' ')}: {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class InvalidArgument(LabError, ValueError):
    """A malformed argument: a bad name, a value out of range, JSON that does
    not parse, a duplicate name."""

    kind = "invalid-argument"


class Denied(LabError, PermissionError):
    """The path or object is outside what this job was granted."""

    kind = "denied"


class NotFound(LabError, FileNotFoundError):
    """The path, dataset, model or checkpoint does not exist."""

    kind = "not-found"


class LimitExceeded(LabError):
    """A job limit (stored bytes, files, log size...) would be exceeded."""

    kind = "limit-exceeded"


class Io(LabError, OSError):
    """The host failed to read or write storage."""

    kind = "io"


class Network(LabError, ConnectionError):
    """An HTTP request to a granted endpoint did not complete: the connection
    was refused or reset, TLS failed, or it timed out."""

    kind = "network"


class HttpError(Error):
    """An HTTP response with a 4xx or 5xx status, raised by
    ``lab.http.Response.raise_for_status()`` (as ``requests.HTTPError``).

    ``status`` is the status code, ``response`` the :class:`lab.http.Response`
    (or None)."""

    def __init__(self, message: str, status: int, response: object = None):
        super().__init__(message)
        self.status = status
        self.status_code = status
        self.response = response


#: The exception class of each WIT variant name.
BY_KIND: Dict[str, Type[LabError]] = {
    c.kind: c for c in (InvalidArgument, Denied, NotFound, LimitExceeded, Io, Network)
}


def from_kind(kind: str, message: str) -> LabError:
    """The exception for WIT variant ``kind`` (e.g. ``"denied"``); an unknown
    kind (a newer host) gives a plain :class:`LabError` with that ``kind``."""
    cls = BY_KIND.get(kind)
    if cls is None:
        e = LabError(message)
        e.kind = kind
        return e
    return cls(message)
