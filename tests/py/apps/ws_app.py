"""WebSocket endpoints for the end-to-end tests: a FastAPI app plus a raw ASGI one.

With ``MARKER_DIR`` set, endpoints that see a disconnect write its code and reason to
``MARKER_DIR/<name>`` so tests can check what the app was told.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from starlette.responses import PlainTextResponse

app = FastAPI()


def _mark(name: str, text: str) -> None:
    directory = os.environ.get("MARKER_DIR")
    if directory:
        Path(directory, name).write_text(text)


@app.get("/hello")
async def hello() -> dict[str, str]:
    return {"hello": "world"}


@app.websocket("/echo")
async def echo(websocket: WebSocket) -> None:
    offered = websocket.scope["subprotocols"]
    await websocket.accept(subprotocol=offered[0] if offered else None)
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                _mark("echo.disconnect", f"{message.get('code')} {message.get('reason', '')}")
                return
            if message.get("text") is not None:
                await websocket.send_text(message["text"])
            else:
                await websocket.send_bytes(message["bytes"])
    except WebSocketDisconnect as exc:
        _mark("echo.disconnect", f"{exc.code} {exc.reason}")


@app.websocket("/scope")
async def scope(websocket: WebSocket) -> None:
    await websocket.accept(headers=[(b"x-accept-header", b"yes")])
    s = websocket.scope
    await websocket.send_json(
        {
            "type": s["type"],
            "scheme": s["scheme"],
            "path": s["path"],
            "raw_path": s["raw_path"].decode(),
            "query_string": s["query_string"].decode(),
            "http_version": s["http_version"],
            "subprotocols": s["subprotocols"],
            "spec_version": s["asgi"].get("spec_version"),
            "extensions": sorted(s.get("extensions", {})),
            "client": list(s["client"]) if s["client"] else None,
            "has_state": "state" in s,
            "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in s["headers"]],
        }
    )
    await websocket.close()


@app.websocket("/deny")
async def deny(websocket: WebSocket) -> None:
    await websocket.close()


@app.websocket("/deny-response")
async def deny_response(websocket: WebSocket) -> None:
    await websocket.send_denial_response(PlainTextResponse("go away", status_code=401))


@app.websocket("/close-code")
async def close_code(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.close(code=4001, reason="bye now")


@app.websocket("/raise-after")
async def raise_after(websocket: WebSocket) -> None:
    await websocket.accept()
    raise RuntimeError("boom after accept")


@app.websocket("/raise-before")
async def raise_before(websocket: WebSocket) -> None:
    raise RuntimeError("boom before accept")


@app.websocket("/big")
async def big(websocket: WebSocket) -> None:
    await websocket.accept()
    size = int(websocket.query_params.get("size", "1000000"))
    await websocket.send_bytes(bytes(i % 251 for i in range(size)))
    text = "é" * (size // 2)
    await websocket.send_text(text)
    await websocket.receive()


@app.websocket("/silent")
async def silent(websocket: WebSocket) -> None:
    # Accepts and waits for the client to go away, recording what it was told.
    await websocket.accept()
    message = await websocket.receive()
    _mark("silent.disconnect", f"{message.get('code')} {message.get('reason', '')}")


@app.websocket("/send-after-close")
async def send_after_close(websocket: WebSocket) -> None:
    await websocket.accept()
    message = await websocket.receive()
    assert message["type"] == "websocket.disconnect"
    try:
        await websocket.send_text("too late")
    except (OSError, WebSocketDisconnect, RuntimeError) as exc:
        _mark("send-after-close", type(exc).__name__)
    else:
        _mark("send-after-close", "no error")


async def raw_echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A bare ASGI echo app (for the Autobahn run and the memory benchmark)."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})
