"""Outbound HTTP from a labhost job, shaped like a small ``requests``.

Only the endpoints granted to the job (``labhost run --allow-http URL``) are
reachable; any other URL raises :class:`lab.errors.Denied`. A request that
does not complete (connection refused or reset, TLS failure, timeout)
raises :class:`lab.errors.Network` (also a ``ConnectionError``). A 4xx/5xx
status is a :class:`Response`, not an error, until
:meth:`Response.raise_for_status`.

Headers the grant injects (e.g. ``Authorization`` built from a secret) are
added by the host: do not send credentials yourself.

::

    from lab import lab

    r = lab.http.post("http://127.0.0.1:8000/v1/chat/completions",
                      json={"model": "teacher", "messages": [...]}, timeout=60)
    r.raise_for_status()
    answer = r.json()["choices"][0]["message"]["content"]

The whole response is read into memory (``content``); the job's limits
bound the number of requests, the bytes sent and received and the time.
"""

from __future__ import annotations

import json as _json
from typing import Any, Iterable, Iterator, Mapping, MutableMapping, Optional, Tuple, Union
from urllib.parse import urlencode as _urlencode

from wit_world.imports import http as _http

from . import _call, errors

__all__ = ["request", "get", "post", "put", "patch", "delete", "head", "Response", "Headers"]

HeadersLike = Union[Mapping[str, str], Iterable[Tuple[str, str]], None]

_MAX_TIMEOUT_MS = (1 << 32) - 1


class Headers(MutableMapping):
    """A dict of HTTP headers with case-insensitive lookup
    (``r.headers["Content-Type"] == r.headers["content-type"]``). Keys keep
    the spelling they were first given; repeated headers are joined with
    ``", "`` as ``requests`` does."""

    def __init__(self, items: HeadersLike = None):
        self._d: dict = {}
        if items is not None:
            pairs = items.items() if isinstance(items, Mapping) else items
            for k, v in pairs:
                key = k.lower()
                if key in self._d:
                    name, old = self._d[key]
                    self._d[key] = (name, f"{old}, {v}")
                else:
                    self._d[key] = (k, v)

    def __getitem__(self, key: str) -> str:
        return self._d[key.lower()][1]

    def __setitem__(self, key: str, value: str) -> None:
        self._d[key.lower()] = (key, value)

    def __delitem__(self, key: str) -> None:
        del self._d[key.lower()]

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._d.values())

    def __len__(self) -> int:
        return len(self._d)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._d

    def __repr__(self) -> str:
        return repr(dict(self.items()))


class Response:
    """A whole HTTP response: ``status_code``, ``headers`` (:class:`Headers`),
    ``content`` (bytes), ``text`` (decoded), ``url`` (after redirects),
    ``ok``, ``json()``, ``raise_for_status()``."""

    def __init__(self, status_code: int, headers: HeadersLike, content: bytes, url: str):
        self.status_code = status_code
        self.headers = Headers(headers)
        self.content = bytes(content)
        self.url = url

    @property
    def ok(self) -> bool:
        """True for a status below 400."""
        return self.status_code < 400

    @property
    def encoding(self) -> str:
        """The charset of the Content-Type header, else UTF-8."""
        ctype = self.headers.get("content-type", "")
        for part in ctype.split(";")[1:]:
            k, _, v = part.strip().partition("=")
            if k.lower() == "charset" and v:
                return v.strip('"')
        return "utf-8"

    @property
    def text(self) -> str:
        """The body decoded (undecodable bytes replaced)."""
        try:
            return self.content.decode(self.encoding, errors="replace")
        except LookupError:
            return self.content.decode("utf-8", errors="replace")

    def json(self, **kwargs: Any) -> Any:
        """The body parsed as JSON (raises ``ValueError`` if it is not)."""
        # (The component's Python has no `utf-8-sig` codec: strip a BOM by hand.)
        text = self.content.decode("utf-8") if self.content else ""
        return _json.loads(text[1:] if text.startswith("\ufeff") else text, **kwargs)

    def raise_for_status(self) -> None:
        """Raise :class:`lab.errors.HttpError` for a 4xx or 5xx status."""
        if 400 <= self.status_code:
            side = "client" if self.status_code < 500 else "server"
            raise errors.HttpError(
                f"HTTP {self.status_code} ({side} error) for {self.url}",
                self.status_code, self)

    def __repr__(self) -> str:
        return f"<Response [{self.status_code}]>"


def _timeout_ms(timeout: Optional[float]) -> Optional[int]:
    if timeout is None:
        return None
    if isinstance(timeout, tuple):  # requests' (connect, read): the longer one
        timeout = max(t for t in timeout if t is not None)
    seconds = float(timeout)
    if not seconds > 0:
        raise errors.InvalidArgument(f"timeout must be positive seconds, not {timeout!r}")
    return min(_MAX_TIMEOUT_MS, max(1, int(round(seconds * 1000))))


def request(method: str, url: str, *, headers: HeadersLike = None, json: Any = None,
            data: Union[bytes, bytearray, str, Mapping, Iterable, None] = None,
            params: Union[Mapping, Iterable, None] = None,
            timeout: Optional[float] = None) -> Response:
    """Send one request and read the whole response.

    ``method``: ``GET``, ``POST``, ``PUT``, ``PATCH``, ``DELETE`` or
    ``HEAD``. ``headers``: a dict or (name, value) pairs, sent as given.
    The body is ``json`` (serialised, with ``Content-Type:
    application/json`` unless a content-type header is given) or ``data``
    (bytes; a str, sent as UTF-8; a dict, form-encoded). ``params`` are
    appended to the URL's query. ``timeout`` in seconds, shorter than the
    job's per-request limit. Raises :class:`lab.errors.Denied` for a URL
    not granted, :class:`lab.errors.Network` when the request does not
    complete, :class:`lab.errors.InvalidArgument` for a bad method/URL.
    """
    pairs = list(headers.items() if isinstance(headers, Mapping) else (headers or ()))
    names = {k.lower() for k, _ in pairs}
    if json is not None and data is not None:
        raise errors.InvalidArgument("lab.http.request takes json= or data=, not both")
    if json is not None:
        body = _json.dumps(json, separators=(",", ":"), allow_nan=False).encode("utf-8")
        if "content-type" not in names:
            pairs.append(("content-type", "application/json"))
    elif data is None:
        body = b""
    elif isinstance(data, (bytes, bytearray, memoryview)):
        body = bytes(data)
    elif isinstance(data, str):
        body = data.encode("utf-8")
    else:
        body = _urlencode(list(data.items() if isinstance(data, Mapping) else data),
                          doseq=True).encode("ascii")
        if "content-type" not in names:
            pairs.append(("content-type", "application/x-www-form-urlencoded"))
    if params:
        query = _urlencode(list(params.items() if isinstance(params, Mapping) else params),
                           doseq=True)
        base, sep, frag = url.partition("#")
        base += ("&" if "?" in base else "?") + query
        url = base + sep + frag
    req = _http.Request(
        method=str(method).upper(),
        url=url,
        headers=[(str(k), str(v)) for k, v in pairs],
        body=body,
        timeout_ms=_timeout_ms(timeout),
    )
    r = _call(_http.send, req)
    return Response(r.status, r.headers, r.body, r.url)


def get(url: str, **kwargs: Any) -> Response:
    """``request("GET", url, ...)``."""
    return request("GET", url, **kwargs)


def post(url: str, **kwargs: Any) -> Response:
    """``request("POST", url, ...)``."""
    return request("POST", url, **kwargs)


def put(url: str, **kwargs: Any) -> Response:
    """``request("PUT", url, ...)``."""
    return request("PUT", url, **kwargs)


def patch(url: str, **kwargs: Any) -> Response:
    """``request("PATCH", url, ...)``."""
    return request("PATCH", url, **kwargs)


def delete(url: str, **kwargs: Any) -> Response:
    """``request("DELETE", url, ...)``."""
    return request("DELETE", url, **kwargs)


def head(url: str, **kwargs: Any) -> Response:
    """``request("HEAD", url, ...)``."""
    return request("HEAD", url, **kwargs)
