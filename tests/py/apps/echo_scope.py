"""A raw ASGI app that answers every request with its own scope as JSON.

Bytes become latin-1 strings and tuples become lists. The request body is read whole and echoed
as ``body`` (latin-1). With ``ECHO_CALLS`` set to a file path, every HTTP call appends its
method and raw path to that file, so tests can prove the app was (not) called.

Lifespan startup stores ``{"greeting": "hello", "shared": []}`` in the lifespan state; the path
``/mutate-state`` adds a key to its request's copy of that state.
"""

from __future__ import annotations

import json
import os
from typing import Any


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                scope["state"]["greeting"] = "hello"
                scope["state"]["shared"] = []
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    assert scope["type"] == "http"
    calls = os.environ.get("ECHO_CALLS")
    if calls:
        with open(calls, "a") as fh:
            fh.write(f"{scope['method']} {scope['raw_path'].decode('latin-1')}\n")
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body", False):
            break
    if scope["path"].endswith("/mutate-state") and "state" in scope:
        scope["state"]["added_by_request"] = True
    echoed = {k: _plain(v) for k, v in scope.items() if k != "extensions"}
    echoed["body"] = body.decode("latin-1")
    payload = json.dumps(echoed).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
