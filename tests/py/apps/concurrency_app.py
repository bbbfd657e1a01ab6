"""A raw ASGI app whose ``/barrier?n=N`` answers only once N requests are inside it at once.

If the server ran one request at a time per worker, these requests would wait forever; so a
completed set of N responses proves N requests were handled concurrently, without timing.
"""

from __future__ import annotations

import asyncio
from typing import Any

_arrived = 0
_all_here: asyncio.Event | None = None


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    global _arrived, _all_here
    if scope["type"] != "http":
        return
    wanted = int(scope["query_string"].decode().partition("n=")[2] or "1")
    if _all_here is None:
        _all_here = asyncio.Event()
    _arrived += 1
    if _arrived >= wanted:
        _all_here.set()
    await _all_here.wait()
    body = str(_arrived).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
