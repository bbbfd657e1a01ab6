"""A raw ASGI app for the hostile-traffic table (tests/py/test_e2e_smuggling.py).

Every path but ``/inject/...`` reads the whole request body and answers 200 with JSON: the
method, ``raw_path``, ``query_string``, ``http_version``, headers and body (bytes as latin-1
strings), so a test sees exactly what reached the application.

``/inject/<name>`` starts a response with one invalid header from ``INJECTIONS`` (CR, LF or NUL
in a value, an invalid name) and lets the ``RuntimeError`` from ``send`` propagate, as an app
that does not expect it would.

With ``ECHO_CALLS`` set, every call appends one line to that file once the body has been read:
``<method> <raw_path> <complete|disconnect> <body bytes>``, or ``RuntimeError <raw_path>`` when
``send`` refused a header; so tests can prove whether the app was called and with what body.
"""

from __future__ import annotations

import json
import os
from typing import Any

INJECTIONS: dict[str, tuple[bytes, bytes]] = {
    "crlf-value": (b"x-a", b"a\r\nSet-Cookie: evil=1"),
    "lf-value": (b"x-a", b"a\nSet-Cookie: evil=1"),
    "cr-value": (b"x-a", b"a\rSet-Cookie: evil=1"),
    "crlfcrlf-value": (b"x-a", b"a\r\n\r\nHTTP/1.1 200 OK\r\nSet-Cookie: evil=1\r\n\r\n"),
    "nul-value": (b"x-a", b"a\x00Set-Cookie: evil=1"),
    "crlf-name": (b"x-a\r\nSet-Cookie", b"evil=1"),
    "colon-name": (b"Set-Cookie: evil=1\r\nX", b"1"),
    "space-name": (b"Set-Cookie evil", b"1"),
    "nul-name": (b"x\x00evil", b"1"),
    "empty-name": (b"", b"evil=1"),
}


def _record(line: str) -> None:
    calls = os.environ.get("ECHO_CALLS")
    if calls:
        with open(calls, "a") as fh:
            fh.write(line + "\n")


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return  # lifespan: not supported, which --lifespan auto tolerates
    raw_path = scope["raw_path"].decode("latin-1")
    if raw_path.startswith("/inject/"):
        name, value = INJECTIONS[raw_path.removeprefix("/inject/")]
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"text/plain"), (name, value)],
                }
            )
        except RuntimeError:
            _record(f"RuntimeError {raw_path}")
            raise
        await send({"type": "http.response.body", "body": b"must not be sent: evil"})
        return
    body = b""
    outcome = "complete"
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            outcome = "disconnect"
            break
        body += message.get("body", b"")
        if not message.get("more_body", False):
            break
    _record(f"{scope['method']} {raw_path} {outcome} {len(body)}")
    if outcome == "disconnect":
        return
    payload = json.dumps(
        {
            "method": scope["method"],
            "raw_path": raw_path,
            "query_string": scope["query_string"].decode("latin-1"),
            "http_version": scope["http_version"],
            "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]],
            "body": body.decode("latin-1"),
        }
    ).encode()
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
