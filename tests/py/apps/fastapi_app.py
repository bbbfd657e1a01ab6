"""A FastAPI app exercising the common paths: JSON, params, validation, forms, streaming.

Also the endpoints the body, crash and memory tests need: ``/sha256`` hashes a streamed
upload, ``/download/{size}`` streams ``size`` bytes of ``pattern()``, ``/pid`` names the
worker, ``/crash`` kills it.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

app = FastAPI()

BLOCK = 64 * 1024


def pattern(index: int) -> bytes:
    """Block ``index`` of the download stream (the tests recompute it to check the sha256)."""
    return (
        index.to_bytes(8, "big")
        + bytes((index + i) % 251 for i in range(256)) * 255
        + bytes(BLOCK - 8 - 256 * 255)
    )


class Item(BaseModel):
    name: str
    price: float
    tags: list[str] = []


@app.get("/hello")
async def hello() -> dict[str, str]:
    return {"message": "hello"}


@app.api_route("/page", methods=["GET", "HEAD"])
async def page() -> dict[str, str]:
    return {"page": "x" * 100}


@app.get("/items/{item_id}")
async def read_item(item_id: int, q: str | None = None, limit: int = 10) -> dict[str, object]:
    return {"item_id": item_id, "q": q, "limit": limit}


@app.post("/items")
async def create_item(item: Item) -> dict[str, object]:
    return {"created": item.model_dump(), "total": item.price * 2}


@app.post("/upload")
async def upload(
    file: Annotated[UploadFile, File()], description: Annotated[str, Form()]
) -> dict[str, object]:
    data = await file.read()
    return {
        "filename": file.filename,
        "content_type": file.content_type,
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "description": description,
    }


@app.get("/stream")
async def stream(chunks: int = 5) -> StreamingResponse:
    async def generate() -> AsyncIterator[bytes]:
        for i in range(chunks):
            yield f"chunk {i}\n".encode()
            await asyncio.sleep(0.01)

    return StreamingResponse(generate(), media_type="text/plain")


@app.post("/sha256")
async def sha256(request: Request) -> dict[str, object]:
    digest = hashlib.sha256()
    size = 0
    async for chunk in request.stream():
        digest.update(chunk)
        size += len(chunk)
    return {"size": size, "sha256": digest.hexdigest()}


@app.get("/download/{size}")
async def download(size: int) -> StreamingResponse:
    async def generate() -> AsyncIterator[bytes]:
        sent = 0
        index = 0
        while sent < size:
            block = pattern(index)[: size - sent]
            sent += len(block)
            index += 1
            yield block

    return StreamingResponse(generate(), media_type="application/octet-stream")


@app.get("/pid")
async def pid() -> dict[str, int]:
    return {"pid": os.getpid()}


@app.get("/slow-pid")
async def slow_pid() -> dict[str, int]:
    # Long enough that concurrent requests overlap, so dispatch has to spread them.
    await asyncio.sleep(0.2)
    return {"pid": os.getpid()}


@app.get("/block")
async def block(seconds: float) -> dict[str, float]:
    # Blocks the worker's event loop on purpose (CPU-bound code looks like this to a server).
    time.sleep(seconds)
    return {"blocked": seconds}


@app.get("/crash")
async def crash() -> dict[str, str]:
    os._exit(1)
