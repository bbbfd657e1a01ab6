"""A raw ASGI app with lifespan hooks that leave markers in ``$MARKER_DIR``.

``startup`` and ``shutdown`` files are written by the hooks; ``/slow`` writes ``slow.started``
and answers after ``SLOW_SECONDS`` (default 2); ``/ok`` answers at once.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any


def _mark(name: str, text: str = "1") -> None:
    # Without MARKER_DIR the markers are skipped (never litter the working directory).
    directory = os.environ.get("MARKER_DIR")
    if directory:
        Path(directory, name).write_text(text)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                _mark("startup", str(os.getpid()))
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                _mark("shutdown", str(os.getpid()))
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = b"ok"
    if scope["path"] == "/slow":
        _mark("slow.started")
        await asyncio.sleep(float(os.environ.get("SLOW_SECONDS", "2")))
        body = b"slow done"
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
