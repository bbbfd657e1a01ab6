"""The seed's FastAPI app plus the routes the benchmark workloads need.

Served with ``--app-dir bench/apps`` as ``fastapi_app:app``. The byte constants are built once at
import so that the routes measure the server moving bytes, not the app allocating them.
"""

import hashlib
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse

CHUNK = b"x" * (64 * 1024)
STREAM_CHUNKS = 160  # 160 x 64 KiB = 10 MiB
BLOB = b"y" * (100 * 1024)

app = FastAPI()


@app.get("/")
async def hello() -> dict[str, str]:
    return {"hello": "world"}


@app.get("/bytes")
async def blob() -> Response:
    return Response(BLOB, media_type="application/octet-stream")


async def _chunks() -> AsyncIterator[bytes]:
    for _ in range(STREAM_CHUNKS):
        yield CHUNK


@app.get("/stream")
async def stream() -> StreamingResponse:
    return StreamingResponse(_chunks(), media_type="application/octet-stream")


@app.post("/upload")
async def upload(request: Request) -> dict[str, int | str]:
    digest = hashlib.sha256()
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        digest.update(chunk)
    return {"bytes": size, "sha256": digest.hexdigest()}
