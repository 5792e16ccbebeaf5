"""A client for `labhost serve`'s REST API, shaped like the Refuel SDK.

    import labhost
    lab = labhost.Client("http://127.0.0.1:8080", api_key="lh_...")
    job = lab.launch("trainer", {"epochs": 3}, datasets=["sentiment"])
    for event in job.events():      # Server-Sent Events, live
        print(event)
    job.wait()["status"]

Only the standard library (urllib, concurrent.futures): the wheel stays
free of dependencies. Connection errors and 5xx answers are retried with
exponential backoff (`max_retries` times); every other error raises the
same exception classes as the embedded API (`NotFoundError` for 404,
`InvalidArgumentError` for 400/413, `ConflictError` for 409,
`PermissionDeniedError` for 401/403). Bulk calls (`launch_many`,
`upload_datasets`) run on a pool of `max_workers` threads.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

from .errors import (
    ConflictError,
    InvalidArgumentError,
    JobFailedError,
    LabhostError,
    NotFoundError,
    PermissionDeniedError,
    ServerError,
    WaitTimeoutError,
)

__all__ = ["Client", "RemoteJob", "RemoteRun"]

_ENDED = {"COMPLETE", "FAILED", "CANCELLED", "INTERRUPTED"}


def _error(status: int, message: str) -> LabhostError:
    cls = {
        400: InvalidArgumentError,
        401: PermissionDeniedError,
        403: PermissionDeniedError,
        404: NotFoundError,
        409: ConflictError,
        413: InvalidArgumentError,
    }.get(status, ServerError if status >= 500 else LabhostError)
    return cls(message)


class Client:
    """A `labhost serve` at `url`, called with the bearer token `api_key`
    (default: `$LABHOST_API_KEY`)."""

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        timeout: float = 60,
        max_retries: int = 3,
        max_workers: int | None = None,
        backoff: float = 0.5,
    ):
        if not url.startswith(("http://", "https://")):
            raise InvalidArgumentError(f"url must start with http:// or https://, not {url!r}")
        if max_retries < 0:
            raise InvalidArgumentError("max_retries must be >= 0")
        self.url = url.rstrip("/")
        self.api_key = api_key if api_key is not None else os.environ.get("LABHOST_API_KEY")
        self.timeout = timeout
        self.max_retries = max_retries
        self.max_workers = max_workers or os.cpu_count() or 1
        self.backoff = backoff

    def __repr__(self) -> str:
        return f"Client({self.url!r})"

    # ---- transport -------------------------------------------------------

    def _open(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | Sequence[tuple[str, Any]] | None = None,
        json_body: Any = None,
        data: bytes | None = None,
        content_type: str | None = None,
        timeout: float | None = None,
    ):
        """The response of one request, after retries; raises the mapped
        error for any answer >= 400."""
        url = self.url + "/api/v1" + path
        if params:
            items = params.items() if isinstance(params, Mapping) else params
            pairs = [(k, v) for k, v in items if v is not None]
            if pairs:
                url += "?" + urllib.parse.urlencode(pairs)
        headers = {"Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        if json_body is not None:
            data = json.dumps(json_body).encode()
            content_type = "application/json"
        if content_type:
            headers["Content-Type"] = content_type
        attempt = 0
        while True:
            req = urllib.request.Request(url, data=data, method=method, headers=headers)
            try:
                return urllib.request.urlopen(req, timeout=timeout or self.timeout)
            except urllib.error.HTTPError as e:
                body = e.read()
                try:
                    message = json.loads(body)["error"]
                except (ValueError, KeyError, TypeError):
                    message = body.decode("utf-8", "replace").strip() or e.reason
                err = _error(e.code, f"{method} {path}: {e.code} {message}")
                err.status = e.code
                if e.code < 500 or attempt >= self.max_retries:
                    raise err from None
            except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
                if attempt >= self.max_retries:
                    reason = getattr(e, "reason", e)
                    raise ServerError(
                        f"{method} {path}: cannot reach {self.url} ({reason}) after {attempt + 1} attempts"
                    ) from None
            time.sleep(self.backoff * 2**attempt)
            attempt += 1

    def _json(self, method: str, path: str, **kw) -> Any:
        with self._open(method, path, **kw) as res:
            return json.loads(res.read())

    def _bulk(self, fn, items: Iterable) -> list:
        with ThreadPoolExecutor(max_workers=self.max_workers) as pool:
            return list(pool.map(fn, items))

    # ---- server and plugins ----------------------------------------------

    def health(self) -> dict:
        return self._json("GET", "/health")

    def plugins(self) -> list[dict]:
        """Plugins the server can launch (name, version, kind, params, blake3)."""
        return self._json("GET", "/plugins")

    def upload_plugin(self, path: str | os.PathLike) -> dict:
        """Upload a component; its description (launch it by `blake3`)."""
        data = Path(path).read_bytes()
        return self._json("POST", "/plugins", data=data, content_type="application/wasm")

    # ---- jobs --------------------------------------------------------------

    def launch(
        self,
        plugin: str,
        config: Mapping[str, Any] | None = None,
        *,
        experiment: str | None = None,
        datasets: Sequence[str] = (),
        models: Sequence[str] = (),
        limits: Mapping[str, Any] | None = None,
        resume: str | None = None,
        allow_http: Sequence[Any] = (),
        secrets: Sequence[str] = (),
    ) -> RemoteJob:
        """Start a job of `plugin` (a name in the server's plugin directory
        or an uploaded plugin's blake3)."""
        body: dict[str, Any] = {"plugin": plugin, "config": dict(config or {})}
        for key, value in (
            ("experiment", experiment),
            ("datasets", list(datasets)),
            ("models", list(models)),
            ("limits", dict(limits) if limits else None),
            ("resume", resume),
            ("allow_http", list(allow_http)),
            ("secrets", list(secrets)),
        ):
            if value:
                body[key] = value
        rec = self._json("POST", "/jobs", json_body=body)
        return RemoteJob(self, rec)

    def launch_many(self, requests: Iterable[Mapping[str, Any]]) -> list[RemoteJob]:
        """Several launches in parallel; each item holds `launch`'s
        arguments (`{"plugin": ..., "config": {...}}`). In order."""
        return self._bulk(lambda r: self.launch(**r), requests)

    def jobs(
        self,
        *,
        status: str | Sequence[str] | None = None,
        experiment: str | None = None,
        plugin: str | None = None,
        pipeline: str | None = None,
        since: str | None = None,
        until: str | None = None,
        sort: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[RemoteJob]:
        """Jobs with `labhost jobs`' filters, newest first by default."""
        if status is not None and not isinstance(status, str):
            status = ",".join(status)
        page = self._json(
            "GET",
            "/jobs",
            params={
                "status": status,
                "experiment": experiment,
                "plugin": plugin,
                "pipeline": pipeline,
                "since": since,
                "until": until,
                "sort": sort,
                "limit": limit,
                "offset": offset or None,
            },
        )
        return [RemoteJob(self, rec) for rec in page["jobs"]]

    def job(self, id: str) -> RemoteJob:
        """The job `id` (or a unique prefix of it)."""
        return RemoteJob(self, self._json("GET", f"/jobs/{_seg(id)}"))

    # ---- registries --------------------------------------------------------

    def models(self) -> list[dict]:
        """Model records, oldest first."""
        return self._json("GET", "/models")["models"]

    def datasets(self) -> list[dict]:
        """Dataset records, oldest first."""
        return self._json("GET", "/datasets")["datasets"]

    def dataset(self, ref: str) -> dict:
        return self._json("GET", f"/datasets/{_seg(ref)}")

    def upload_dataset(
        self,
        name: str,
        path: str | os.PathLike,
        *,
        format: str | None = None,
        description: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> dict:
        """Add a dataset from a local CSV, JSONL or Parquet file (Refuel's
        `upload_dataset`); the format from the suffix unless given."""
        path = Path(path)
        fmt = format or _format_of(path)
        return self._json(
            "POST",
            "/datasets",
            params={
                "name": name,
                "format": fmt,
                "description": description,
                "metadata": json.dumps(metadata) if metadata is not None else None,
            },
            data=path.read_bytes(),
            content_type="application/octet-stream",
        )

    def upload_datasets(self, files: Mapping[str, str | os.PathLike]) -> list[dict]:
        """Several uploads in parallel: `{name: path}`."""
        return self._bulk(lambda kv: self.upload_dataset(*kv), files.items())

    def add_items(self, dataset: str, rows: Sequence[Mapping[str, Any]]) -> dict:
        """Append `rows` to `dataset` as a new version (Refuel's `add_items`)."""
        data = "".join(json.dumps(r) + "\n" for r in rows).encode()
        return self._json(
            "POST",
            f"/datasets/{_seg(dataset)}/rows",
            params={"format": "jsonl"},
            data=data,
            content_type="application/octet-stream",
        )

    def get_items(
        self,
        dataset: str,
        *,
        filters: Sequence[str] = (),
        order_by: Sequence[str] = (),
        max_items: int = 20,
        offset: int = 0,
    ) -> dict:
        """Rows of `dataset` in Refuel's query shape: `filters` such as
        `"score >= 0.5"` or `"label IS NULL"`, `order_by` such as
        `"score DESC"`; `{"total", "rows", ...}`."""
        params = [("filter", f) for f in filters] + [("order_by", o) for o in order_by]
        params += [("max_items", max_items), ("offset", offset)]
        return self._json("GET", f"/datasets/{_seg(dataset)}/rows", params=params)

    # ---- pipelines ---------------------------------------------------------

    def run_pipeline(self, pipeline: str | os.PathLike, *, workers: int | None = None) -> RemoteRun:
        """Start a pipeline: a file's path, or its TOML text."""
        text = str(pipeline)
        if isinstance(pipeline, os.PathLike) or (
            "\n" not in text and text.endswith(".toml") and Path(text).is_file()
        ):
            text = Path(pipeline).read_text()
        body: dict[str, Any] = {"pipeline": text}
        if workers is not None:
            body["workers"] = workers
        return RemoteRun(self, self._json("POST", "/pipelines", json_body=body))

    def pipeline(self, id: str) -> RemoteRun:
        return RemoteRun(self, self._json("GET", f"/pipelines/{_seg(id)}")["run"])


class RemoteJob:
    """A job on a `labhost serve`; `record` is as of the last call."""

    def __init__(self, client: Client, record: dict):
        self._client = client
        self.record = record
        self.id: str = record["id"]

    def __repr__(self) -> str:
        return f"RemoteJob({self.id!r}, status={self.record.get('status')!r})"

    @property
    def status(self) -> str:
        return self.refresh()["status"]

    def refresh(self) -> dict:
        self.record = self._client._json("GET", f"/jobs/{self.id}")
        return self.record

    def wait(self, timeout: float | None = None, poll: float = 0.2) -> dict:
        """The record once the job has ended; `WaitTimeoutError` after
        `timeout` seconds (the job goes on)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            rec = self.refresh()
            if rec["status"] in _ENDED:
                return rec
            if deadline is not None and time.monotonic() >= deadline:
                raise WaitTimeoutError(f"job {self.id} did not end within {timeout} s")
            time.sleep(poll)

    def raise_for_status(self) -> dict:
        rec = self.refresh()
        if rec["status"] != "COMPLETE":
            raise JobFailedError(f"job {self.id} ended {rec['status']}: {rec.get('error') or ''}".rstrip(": "))
        return rec

    def cancel(self) -> None:
        self._client._json("POST", f"/jobs/{self.id}/cancel")

    def rerun(self) -> RemoteJob:
        return RemoteJob(self._client, self._client._json("POST", f"/jobs/{self.id}/rerun"))

    def logs(self) -> str:
        """The whole log so far, as text."""
        out, offset = [], 0
        while True:
            chunk = self._client._json("GET", f"/jobs/{self.id}/logs", params={"offset": offset})
            out.append(chunk["text"])
            if chunk["next"] >= chunk["size"] or chunk["next"] == offset:
                return "".join(out)
            offset = chunk["next"]

    def metrics(
        self, names: Sequence[str] | None = None, max_points: int | None = None
    ) -> list[dict]:
        params = {"names": ",".join(names) if names else None, "max_points": max_points}
        return self._client._json("GET", f"/jobs/{self.id}/metrics", params=params)

    def events(self) -> Iterator[dict]:
        """Its events from the start, live, until it ends (Server-Sent Events)."""
        res = self._client._open("GET", f"/jobs/{self.id}/events", timeout=None)
        with res:
            data: list[str] = []
            for raw in res:
                line = raw.decode("utf-8").rstrip("\r\n")
                if line.startswith("data:"):
                    data.append(line[5:].lstrip(" "))
                elif not line and data:
                    yield json.loads("\n".join(data))
                    data = []

    def download(self, kind: str, name: str, dest: str | os.PathLike) -> Path:
        """An artifact, checkpoint file or eval file (`kind`) into `dest`."""
        dest = Path(dest)
        path = f"/jobs/{self.id}/files/{_seg(kind)}/{_seg(name)}"
        with self._client._open("GET", path) as res, open(dest, "wb") as f:
            while block := res.read(1 << 16):
                f.write(block)
        return dest


class RemoteRun:
    """A pipeline run on a `labhost serve`; `record` is as of the last call."""

    def __init__(self, client: Client, record: dict):
        self._client = client
        self.record = record
        self.id: str = record["id"]

    def __repr__(self) -> str:
        return f"RemoteRun({self.id!r})"

    def refresh(self) -> dict:
        """`{"run": record, "task_run": {...}}`, now."""
        view = self._client._json("GET", f"/pipelines/{self.id}")
        self.record = view["run"]
        return view

    def task_run(self) -> dict:
        """Its state in Refuel's task-run shape (`status`, `num_labeled`...)."""
        return self.refresh()["task_run"]

    def wait(self, timeout: float | None = None, poll: float = 0.3) -> dict:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            view = self.refresh()
            if view["task_run"]["status"] in ("completed", "failed", "paused"):
                return view
            if deadline is not None and time.monotonic() >= deadline:
                raise WaitTimeoutError(f"pipeline run {self.id} did not end within {timeout} s")
            time.sleep(poll)

    def cancel(self) -> None:
        self._client._json("POST", f"/pipelines/{self.id}/cancel")

    def resume(self, workers: int | None = None) -> dict:
        body = {} if workers is None else {"workers": workers}
        return self._client._json("POST", f"/pipelines/{self.id}/resume", json_body=body)


def _seg(s: str) -> str:
    """`s` as one URL path segment."""
    return urllib.parse.quote(s, safe="")


def _format_of(path: Path) -> str:
    fmt = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}.get(
        path.suffix.lower()
    )
    if fmt is None:
        raise InvalidArgumentError(f"cannot tell the format of {path.name}: pass format='csv', 'jsonl' or 'parquet'")
    return fmt
