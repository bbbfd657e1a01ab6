"""Build ASGI connection scopes from the router's request heads.

Each scope type is built by exactly one function here, so the keys, encodings and defaults of
the ASGI specification (HTTP connection scope, spec 2.x) are decided in one place.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

__all__ = ["ASGI_VERSION", "build_http_scope", "build_websocket_scope", "set_server_cert"]

# One shared dict: the ASGI spec describes it as read-only server information.
ASGI_VERSION: dict[str, str] = {"version": "3.0", "spec_version": "2.3"}
# WebSocket spec 2.4: send() after the client has gone raises an OSError subclass.
ASGI_WEBSOCKET_VERSION: dict[str, str] = {"version": "3.0", "spec_version": "2.4"}

# Field values that repeat on nearly every request are decoded once and reused.
_TEXT_CACHE: dict[bytes, str] = {
    m: m.decode("ascii")
    for m in (b"GET", b"POST", b"PUT", b"DELETE", b"PATCH", b"HEAD", b"OPTIONS", b"1.1", b"1.0")
}
_TEXT_CACHE.update({b"http": "http", b"https": "https", b"2": "2", b"ws": "ws", b"wss": "wss"})


# Header names that nearly every request repeats: one shared bytes object each instead of a
# fresh copy per request (some 40 bytes per header), which matters most for long-lived
# WebSocket scopes that the app keeps for the life of the connection.
_NAMES: dict[bytes, bytes] = {
    n: n
    for n in (
        b"host",
        b"user-agent",
        b"accept",
        b"accept-encoding",
        b"accept-language",
        b"connection",
        b"content-type",
        b"content-length",
        b"cookie",
        b"origin",
        b"referer",
        b"authorization",
        b"cache-control",
        b"upgrade",
        b"sec-websocket-key",
        b"sec-websocket-version",
        b"sec-websocket-extensions",
        b"sec-websocket-protocol",
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-request-id",
    )
}
# The server address is the same for every request of a worker.
_SERVERS: dict[tuple[bytes, bytes], tuple[str, int | None]] = {}
# ASGI extensions are read-only server information; one dict serves every WebSocket scope.
_WEBSOCKET_EXTENSIONS: dict[str, Any] = {"websocket.http.response": {}}


def _headers(fields: list[bytes]) -> list[tuple[bytes, bytes]]:
    names = _NAMES
    return [(names.get(n, n), v) for n, v in zip(fields[9::2], fields[10::2], strict=True)]


def _server(host: bytes, port: bytes) -> tuple[str, int | None]:
    server = _SERVERS.get((host, port))
    if server is None:
        server = (host.decode("latin-1"), int(port) if port else None)
        if len(_SERVERS) < 16:
            _SERVERS[(host, port)] = server
    return server


# The PEM certificate the router presents (first of --ssl-certfile), for the tls extension.
_server_cert: str | None = None


def set_server_cert(path: str | None) -> None:
    """Remember the server's certificate (the first PEM block of ``path``) for TLS scopes."""
    global _server_cert  # set once, when a worker starts
    if path is None:
        _server_cert = None
        return
    with open(path, encoding="ascii", errors="replace") as fh:
        text = fh.read()
    end = "-----END CERTIFICATE-----"
    at = text.find(end)
    _server_cert = text[: at + len(end)].strip() + "\n" if at >= 0 else None


def _tls_extension(headers: list[tuple[bytes, bytes]]) -> dict[str, Any] | None:
    """Take the router's ":tls-*" pairs off the end of ``headers`` (docs/protocol.md) and
    return the ASGI ``tls`` extension they describe."""
    if not headers or not headers[-1][0].startswith(b":"):
        return None
    facts: dict[bytes, bytes] = {}
    while headers and headers[-1][0].startswith(b":"):
        key, value = headers.pop()
        facts[key] = value
    version = facts.get(b":tls-version")
    cipher = facts.get(b":tls-cipher")
    cert = facts.get(b":tls-client-cert")
    subject = facts.get(b":tls-client-name")
    error = facts.get(b":tls-client-error")
    return {
        "server_cert": _server_cert,
        "client_cert_chain": [cert.decode("ascii")] if cert else [],
        "client_cert_name": subject.decode("utf-8", "replace") if subject is not None else None,
        "client_cert_error": error.decode("utf-8", "replace") if error is not None else None,
        "tls_version": int(version) if version else None,
        "cipher_suite": int(cipher) if cipher else None,
    }


def _text(value: bytes) -> str:
    text = _TEXT_CACHE.get(value)
    if text is None:
        text = value.decode("latin-1")
    return text


def build_http_scope(
    fields: list[bytes], root_path: str, state: dict[str, Any] | None
) -> dict[str, Any]:
    """Return the ``http`` scope for a request head (see docs/protocol.md, "Request head")."""
    raw_path = fields[3]
    # The router only forwards targets made of visible ASCII, so ascii decoding cannot fail.
    path = raw_path.decode("ascii")
    if "%" in path:
        # ASGI: "path" is the percent-decoded UTF-8 path; invalid UTF-8 becomes U+FFFD.
        path = unquote(path)
    client_host = fields[5]
    server_port = fields[8]
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": ASGI_VERSION,
        "http_version": _text(fields[2]),
        "method": _text(fields[0]),
        "scheme": _text(fields[1]),
        "path": root_path + path if root_path else path,
        "raw_path": root_path.encode("ascii") + raw_path if root_path else raw_path,
        "query_string": fields[4],
        "root_path": root_path,
        "headers": _headers(fields),
        "client": (client_host.decode("latin-1"), int(fields[6])) if client_host else None,
        "server": _server(fields[7], server_port),
    }
    if state is not None:
        # ASGI lifespan "state": each request gets a shallow copy of what startup stored.
        scope["state"] = state.copy()
    if fields[1] in (b"https", b"wss"):
        tls = _tls_extension(scope["headers"])
        if tls is not None:
            scope["extensions"] = {"tls": tls}
    return scope


def build_websocket_scope(
    fields: list[bytes], root_path: str, state: dict[str, Any] | None
) -> dict[str, Any]:
    """Return the ``websocket`` scope for a handshake the router has validated."""
    scope = build_http_scope(fields, root_path, state)
    del scope["method"]
    scope["type"] = "websocket"
    scope["asgi"] = ASGI_WEBSOCKET_VERSION
    subprotocols: list[str] = []
    headers = scope["headers"]
    for name, value in headers:
        if name == b"sec-websocket-protocol":
            # RFC 6455 §4.1: a comma-separated list of tokens, possibly over several headers.
            subprotocols.extend(p.strip() for p in value.decode("latin-1").split(",") if p.strip())
    scope["subprotocols"] = subprotocols
    # ASGI websocket "denial response" extension: the app may answer with any HTTP response.
    tls = scope.get("extensions")
    scope["extensions"] = _WEBSOCKET_EXTENSIONS if tls is None else {**_WEBSOCKET_EXTENSIONS, **tls}
    return scope
