"""A FastAPI app that launches labhost jobs and streams their events,
with labhost embedded (no `labhost serve`):

    pip install labhost fastapi uvicorn
    LABHOST_WORKSPACE=ws LABHOST_PLUGINS=guests/dist/rust uvicorn fastapi_app:app --port 8000
    curl -X POST localhost:8000/jobs -H 'content-type: application/json' \\
         -d '{"plugin": "datagen", "config": {"rows": 200}}'
    curl -N localhost:8000/jobs/JOB/events        # Server-Sent Events until it ends

Handlers are `async`: waiting and following release the GIL and never
block the event loop (`await job.wait_async()`, `async for e in job.events()`).
"""

import json
import os
import re
from pathlib import Path

from fastapi import FastAPI, HTTPException
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

import labhost

host = labhost.Host(os.environ.get("LABHOST_WORKSPACE", "labhost-workspace/fastapi"))
PLUGINS = Path(os.environ.get("LABHOST_PLUGINS", "plugins"))
app = FastAPI(title="labhost jobs")


class Launch(BaseModel):
    plugin: str
    config: dict = {}
    experiment: str | None = None


def _job(id: str) -> labhost.Job:
    try:
        return host.workspace.job(id)
    except labhost.NotFoundError as e:
        raise HTTPException(404, str(e)) from None


@app.post("/jobs", status_code=201)
async def launch(req: Launch):
    # A name, never a path: the client chooses among PLUGINS only.
    if not re.fullmatch(r"[A-Za-z0-9_-]+", req.plugin):
        raise HTTPException(400, "plugin: a name of [A-Za-z0-9_-]")
    try:
        job = host.run(PLUGINS / f"{req.plugin}.wasm", req.config, experiment=req.experiment)
    except labhost.NotFoundError as e:
        raise HTTPException(404, str(e)) from None
    except (labhost.InvalidArgumentError, labhost.PluginError) as e:
        raise HTTPException(400, str(e)) from None
    return {"id": job.id, "status": job.status}


@app.get("/jobs")
async def jobs(status: str | None = None, limit: int = 50):
    try:
        return host.workspace.jobs(status=status, limit=limit)
    except labhost.InvalidArgumentError as e:
        raise HTTPException(400, str(e)) from None


@app.get("/jobs/{id}")
async def job(id: str, wait: float | None = None):
    """The record; with `?wait=SECONDS`, once the job ended (or 408)."""
    j = _job(id)
    if wait is None:
        return j.record()
    try:
        return await j.wait_async(wait)
    except labhost.WaitTimeoutError as e:
        raise HTTPException(408, str(e)) from None


@app.post("/jobs/{id}/cancel", status_code=202)
async def cancel(id: str):
    try:
        _job(id).cancel()
    except labhost.ConflictError as e:
        raise HTTPException(409, str(e)) from None
    return {"id": id}


@app.get("/jobs/{id}/events")
async def events(id: str):
    j = _job(id)

    async def stream():
        async for event in j.events():
            yield f"data: {json.dumps(event)}\n\n"

    return StreamingResponse(stream(), media_type="text/event-stream")
