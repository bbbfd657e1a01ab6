"""A WebSocket chat room with FastAPI: every message a client sends goes to everyone.

Run it:   .venv/bin/saltare examples.chat:app
Open http://127.0.0.1:8000/ in two browser tabs and type.

With several workers (--workers N) each worker has its own room: a real deployment would
fan messages out through a shared broker (Redis pub/sub, Postgres LISTEN/NOTIFY...).
"""

from __future__ import annotations

import asyncio

from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from fastapi.responses import HTMLResponse

app = FastAPI()
room: set[WebSocket] = set()

PAGE = """<!doctype html>
<meta charset="utf-8"><title>saltare chat</title>
<ul id="log"></ul>
<form id="f"><input id="m" autocomplete="off" autofocus><button>Send</button></form>
<script>
const ws = new WebSocket(`ws://${location.host}/ws`);
const log = document.getElementById("log");
ws.onmessage = (e) => {
  const li = document.createElement("li");
  li.textContent = e.data;
  log.appendChild(li);
};
document.getElementById("f").onsubmit = (e) => {
  e.preventDefault();
  const m = document.getElementById("m");
  ws.send(m.value);
  m.value = "";
};
</script>
"""


@app.get("/")
async def page() -> HTMLResponse:
    return HTMLResponse(PAGE)


async def broadcast(text: str) -> None:
    # A client that went away mid-broadcast raises; drop it instead of failing the others.
    members = list(room)
    results = await asyncio.gather(*(m.send_text(text) for m in members), return_exceptions=True)
    for member, result in zip(members, results, strict=True):
        if isinstance(result, Exception):
            room.discard(member)


@app.websocket("/ws")
async def chat(websocket: WebSocket) -> None:
    await websocket.accept()
    room.add(websocket)
    name = f"guest-{id(websocket) % 10000}"
    await broadcast(f"{name} joined")
    try:
        while True:
            text = await websocket.receive_text()
            await broadcast(f"{name}: {text}")
    except WebSocketDisconnect:
        pass
    finally:
        room.discard(websocket)
        await broadcast(f"{name} left")
