"""Answers with the ASGI ``tls`` scope extension (or null) and the header names, as JSON."""

from __future__ import annotations

import json
from typing import Any


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = json.dumps(
        {
            "tls": scope.get("extensions", {}).get("tls"),
            "header_names": [name.decode("latin-1") for name, _ in scope["headers"]],
            "http_version": scope["http_version"],
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})
