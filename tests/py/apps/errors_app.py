"""A raw ASGI app that misbehaves on purpose, one way per path.

- ``/ok``: a normal 200.
- ``/raise-before``: raises before starting the response.
- ``/raise-after``: starts a streaming (chunked) response, sends ``partial``, then raises.
- ``/no-response``: returns without sending anything.
- ``/bad-header``: sends a header value containing CR LF.
- ``/stream-forever``: streams until the client leaves, watching ``receive()`` meanwhile.
- ``/wait-disconnect``: reads the body, then waits on ``receive()`` without responding.

With ``MARKER_DIR`` set, ``/stream-forever`` and ``/wait-disconnect`` write ``<name>.started``
when they begin and ``<name>.disconnected`` when ``receive()`` returns ``http.disconnect``.
With ``ECHO_CALLS`` set, every call appends its path to that file.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any


class Boom(Exception):
    pass


def _mark(name: str) -> None:
    directory = os.environ.get("MARKER_DIR")
    if directory:
        Path(directory, name).write_text("1")


async def _start(send: Any, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": headers or []})


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return  # lifespan: not supported, which --lifespan auto tolerates
    calls = os.environ.get("ECHO_CALLS")
    if calls:
        with open(calls, "a") as fh:
            fh.write(scope["path"] + "\n")
    path = scope["path"]
    if path == "/ok":
        await _start(send, [(b"content-type", b"text/plain"), (b"content-length", b"2")])
        await send({"type": "http.response.body", "body": b"ok"})
    elif path == "/raise-before":
        raise Boom("kaboom-before-start")
    elif path == "/raise-after":
        await _start(send, [(b"content-type", b"text/plain")])
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise Boom("kaboom-after-start")
    elif path == "/no-response":
        return
    elif path == "/bad-header":
        # A CR/LF in a header value would split the response; the server must refuse it.
        await _start(send, [(b"x-injected", b"a\r\nSet-Cookie: evil=1")])
        await send({"type": "http.response.body", "body": b"must not be sent"})
    elif path == "/stream-forever":
        gone = asyncio.Event()

        async def watch() -> None:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    _mark("stream-forever.disconnected")
                    gone.set()
                    return

        watcher = asyncio.ensure_future(watch())
        await _start(send, [(b"content-type", b"text/plain")])
        _mark("stream-forever.started")
        while not gone.is_set():
            await send({"type": "http.response.body", "body": b"tick\n", "more_body": True})
            await asyncio.sleep(0.02)
        await watcher
    elif path == "/slow-read":
        # Reads the body slowly (a pause between chunks), then reports how much it got.
        size = 0
        while True:
            message = await receive()
            size += len(message.get("body", b""))
            if not message.get("more_body", False):
                break
            await asyncio.sleep(0.1)
        body = str(size).encode()
        await _start(send, [(b"content-length", str(len(body)).encode())])
        await send({"type": "http.response.body", "body": body})
    elif path == "/wait-disconnect":
        while True:
            message = await receive()
            if not message.get("more_body", False):
                break
        _mark("wait-disconnect.started")
        message = await receive()
        if message["type"] == "http.disconnect":
            _mark("wait-disconnect.disconnected")
    else:
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})
