"""A raw ASGI app with the same routes as ``fastapi_app``: server overhead without framework cost.

Served with ``--app-dir bench/apps`` as ``raw_app:app``.
"""

import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

CHUNK = b"x" * (64 * 1024)
STREAM_CHUNKS = 160  # 160 x 64 KiB = 10 MiB
BLOB = b"y" * (100 * 1024)
HELLO = b'{"hello":"world"}'

_JSON = (b"content-type", b"application/json")
_OCTETS = (b"content-type", b"application/octet-stream")


def _start(status: int, headers: list[tuple[bytes, bytes]]) -> Message:
    return {"type": "http.response.start", "status": status, "headers": headers}


async def _whole(send: Send, status: int, ctype: tuple[bytes, bytes], body: bytes) -> None:
    await send(_start(status, [ctype, (b"content-length", str(len(body)).encode())]))
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _upload(receive: Receive, send: Send) -> None:
    digest = hashlib.sha256()
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        body = message.get("body", b"")
        size += len(body)
        digest.update(body)
        more = message.get("more_body", False)
    payload = json.dumps({"bytes": size, "sha256": digest.hexdigest()}).encode()
    await _whole(send, 200, _JSON, payload)


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    path, method = scope["path"], scope["method"]
    if path == "/" and method == "GET":
        await _whole(send, 200, _JSON, HELLO)
    elif path == "/bytes" and method == "GET":
        await _whole(send, 200, _OCTETS, BLOB)
    elif path == "/stream" and method == "GET":
        await send(_start(200, [_OCTETS]))
        for _ in range(STREAM_CHUNKS):
            await send({"type": "http.response.body", "body": CHUNK, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/upload" and method == "POST":
        await _upload(receive, send)
    else:
        await _whole(send, 404, _JSON, b'{"detail":"Not Found"}')
