"""Apps that break the ASGI contract in specific ways, one path each.

`/messages` records what send() raised when messages come in the wrong order or with the
wrong types, then answers with the list of error texts.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any


async def _try(send: Any, message: dict[str, Any], errors: list[str]) -> None:
    try:
        await send(message)
    except Exception as exc:
        errors.append(f"{type(exc).__name__}: {exc}")


_LEAKED: list[str] = []
_TASKS: set[Any] = set()


async def _late_receive(receive: Any) -> None:
    # Runs after the app call that owned `receive` has returned.
    await asyncio.sleep(0.2)
    message = await receive()
    _LEAKED.append(f"{message['type']}:{message.get('body', b'')!r}")


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/keep-receive":
        task = asyncio.get_running_loop().create_task(_late_receive(receive))
        _TASKS.add(task)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"kept"})
    elif path == "/slow-echo":
        # Holds its body unread while an earlier request's leftover task calls receive().
        await asyncio.sleep(0.5)
        message = await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": message["body"]})
    elif path == "/leaked":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": json.dumps(_LEAKED).encode()})
    elif path == "/too-long":
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"5")]}
        )
        await send({"type": "http.response.body", "body": b"0123456789"})
    elif path == "/too-short":
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"10")]}
        )
        await send({"type": "http.response.body", "body": b"01234"})
    elif path == "/messages":
        errors: list[str] = []
        await _try(send, {"type": "http.response.body", "body": b"early"}, errors)
        await _try(send, {"type": "http.response.start", "status": "200"}, errors)
        await _try(
            send,
            {"type": "http.response.start", "status": 200, "headers": [("x-str", "not bytes")]},
            errors,
        )
        await _try(
            send,
            {"type": "http.response.start", "status": 200, "headers": [(b"x-bad", b"a\r\nb")]},
            errors,
        )
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await _try(send, {"type": "http.response.start", "status": 200}, errors)
        await _try(send, {"type": "http.response.body", "body": "text"}, errors)
        await send({"type": "http.response.body", "body": json.dumps(errors).encode()})
        await _try(send, {"type": "http.response.body", "body": b"late"}, errors)
    else:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
