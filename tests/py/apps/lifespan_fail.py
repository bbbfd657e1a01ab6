"""A raw ASGI app whose lifespan startup reports failure."""

from __future__ import annotations

from typing import Any


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send(
                {"type": "lifespan.startup.failed", "message": "database unreachable (test)"}
            )
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"should not serve"})
