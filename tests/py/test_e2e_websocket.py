"""WebSockets end to end: the real server, the ``websockets`` client, and raw sockets for the
frames a well-behaved client library would never send."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import socket
import struct
import time
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

APP = "ws_app:app"
RAW = "ws_app:raw_echo"


def ws_url(server, path: str) -> str:
    return server.url.replace("http://", "ws://") + path


def wait_for(path: Path, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return path.read_text()
        time.sleep(0.02)
    raise AssertionError(f"{path.name} was never written")


# -- raw client helpers ----------------------------------------------------------------------


def raw_handshake(server, path: str = "/echo", extra: str = "") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)
        assert chunk, f"closed during the handshake: {head!r}"
        head += chunk
    assert head.startswith(b"HTTP/1.1 101 "), head
    return sock


def client_frame(opcode: int, payload: bytes, fin: bool = True, mask: bool = True) -> bytes:
    first = (0x80 if fin else 0) | opcode
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", first, (0x80 if mask else 0) | size)
    elif size < 65536:
        header = struct.pack("!BBH", first, (0x80 if mask else 0) | 126, size)
    else:
        header = struct.pack("!BBQ", first, (0x80 if mask else 0) | 127, size)
    if not mask:
        return header + payload
    key = os.urandom(4)
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return header + key + masked


def read_frame(sock: socket.socket) -> tuple[int, bytes]:
    def exact(n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            if not chunk:
                raise EOFError(f"closed after {data!r}")
            data += chunk
        return data

    first, second = exact(2)
    size = second & 0x7F
    if size == 126:
        (size,) = struct.unpack("!H", exact(2))
    elif size == 127:
        (size,) = struct.unpack("!Q", exact(8))
    assert not second & 0x80, "server frames must not be masked (RFC 6455 §5.1)"
    return first & 0x0F, exact(size)


def read_close(sock: socket.socket) -> int:
    while True:
        opcode, payload = read_frame(sock)
        if opcode == 0x8:
            return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005


def raw_request(server, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(data)
        received = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return received
            received += chunk


# -- tests -------------------------------------------------------------------------------------


def test_text_and_bytes_are_echoed(serve):
    server = serve(APP)
    with connect(ws_url(server, "/echo")) as ws:
        ws.send("hello ✓")
        assert ws.recv() == "hello ✓"
        ws.send(b"\x00\x01\xff")
        assert ws.recv() == b"\x00\x01\xff"
        ws.send("")
        assert ws.recv() == ""


def test_the_scope_and_the_accept_headers(serve):
    server = serve(APP)
    with connect(ws_url(server, "/scope?q=1"), subprotocols=["chat", "json"]) as ws:
        scope = json.loads(ws.recv())
        assert ws.response.headers["x-accept-header"] == "yes"
    assert scope["type"] == "websocket"
    assert scope["scheme"] == "ws"
    assert scope["path"] == "/scope"
    assert scope["raw_path"] == "/scope"
    assert scope["query_string"] == "q=1"
    assert scope["http_version"] == "1.1"
    assert scope["subprotocols"] == ["chat", "json"]
    assert scope["spec_version"] == "2.4"
    assert scope["extensions"] == ["websocket.http.response"]
    assert scope["client"][0] == "127.0.0.1"
    headers = dict(scope["headers"])
    assert headers["upgrade"] == "websocket"
    assert "sec-websocket-key" in headers


def test_subprotocol_chosen_by_the_app_is_returned(serve):
    server = serve(APP)
    with connect(ws_url(server, "/echo"), subprotocols=["chat", "json"]) as ws:
        assert ws.subprotocol == "chat"
    with connect(ws_url(server, "/echo")) as ws:
        assert ws.subprotocol is None
        assert "sec-websocket-protocol" not in ws.response.headers


def test_close_before_accept_is_answered_with_403(serve):
    server = serve(APP)
    with pytest.raises(InvalidStatus) as info:
        connect(ws_url(server, "/deny"))
    assert info.value.response.status_code == 403
    # The HTTP side keeps working.
    assert httpx.get(server.url + "/hello").json() == {"hello": "world"}


def test_denial_response_extension_sends_the_apps_response(serve):
    server = serve(APP)
    with pytest.raises(InvalidStatus) as info:
        connect(ws_url(server, "/deny-response"))
    assert info.value.response.status_code == 401
    assert info.value.response.body == b"go away"


def test_app_close_code_and_reason_reach_the_client(serve):
    server = serve(APP)
    with connect(ws_url(server, "/close-code")) as ws, pytest.raises(ConnectionClosed):
        ws.recv()
    assert ws.close_code == 4001
    assert ws.close_reason == "bye now"


def test_exception_after_accept_closes_with_1011(serve):
    server = serve(APP)
    with connect(ws_url(server, "/raise-after")) as ws, pytest.raises(ConnectionClosed):
        ws.recv()
    assert ws.close_code == 1011
    server.wait_log("boom after accept")


def test_exception_before_accept_is_a_500(serve):
    server = serve(APP)
    with pytest.raises(InvalidStatus) as info:
        connect(ws_url(server, "/raise-before"))
    assert info.value.response.status_code == 500


def test_client_close_code_and_reason_reach_the_app(serve, tmp_path):
    server = serve(APP, env={"MARKER_DIR": str(tmp_path)})
    with connect(ws_url(server, "/echo")) as ws:
        ws.send("x")
        ws.recv()
        ws.close(code=4002, reason="done here")
    assert wait_for(tmp_path / "echo.disconnect") == "4002 done here"


def test_a_client_that_vanishes_is_reported_as_1006(serve, tmp_path):
    server = serve(APP, env={"MARKER_DIR": str(tmp_path)})
    sock = raw_handshake(server, "/silent")
    sock.close()
    assert wait_for(tmp_path / "silent.disconnect") == "1006 "


def test_send_after_the_client_left_raises_in_the_app(serve, tmp_path):
    server = serve(APP, env={"MARKER_DIR": str(tmp_path)})
    with connect(ws_url(server, "/send-after-close")) as ws:
        ws.close()
    assert wait_for(tmp_path / "send-after-close") != "no error"


@pytest.mark.parametrize("compression", ["deflate", None])
def test_large_messages_both_ways(serve, compression):
    server = serve(APP)
    size = 3 * 1024 * 1024
    url = ws_url(server, f"/big?size={size}")
    with connect(url, compression=compression, max_size=None) as ws:
        data = ws.recv()
        assert data == bytes(i % 251 for i in range(size))
        assert ws.recv() == "é" * (size // 2)
    with connect(ws_url(server, "/echo"), compression=compression, max_size=None) as ws:
        payload = os.urandom(2 * 1024 * 1024)
        ws.send(payload)
        assert ws.recv() == payload


def test_permessage_deflate_is_negotiated_without_context_takeover(serve):
    server = serve(APP)
    with connect(ws_url(server, "/echo")) as ws:
        extensions = ws.response.headers.get("sec-websocket-extensions", "")
        ws.send("a" * 10000)
        assert ws.recv() == "a" * 10000
    assert "permessage-deflate" in extensions
    assert "server_no_context_takeover" in extensions
    assert "client_no_context_takeover" in extensions


def test_permessage_deflate_can_be_turned_off(serve):
    server = serve(APP, "--no-ws-per-message-deflate")
    with connect(ws_url(server, "/echo")) as ws:
        assert "sec-websocket-extensions" not in ws.response.headers
        ws.send("b" * 10000)
        assert ws.recv() == "b" * 10000


def test_a_message_over_ws_max_size_closes_with_1009(serve, tmp_path):
    server = serve(APP, "--ws-max-size", "1000", env={"MARKER_DIR": str(tmp_path)})
    with connect(ws_url(server, "/echo"), compression=None) as ws:
        ws.send("x" * 1000)
        assert ws.recv() == "x" * 1000
        ws.send("y" * 1001)
        with pytest.raises(ConnectionClosed):
            ws.recv()
    assert ws.close_code == 1009
    assert wait_for(tmp_path / "echo.disconnect").startswith("1009")


def test_a_silent_client_is_pinged_then_reaped(serve, tmp_path):
    server = serve(APP, "--ws-keepalive-timeout", "0.5", env={"MARKER_DIR": str(tmp_path)})
    sock = raw_handshake(server, "/silent")
    try:
        opcode, _ = read_frame(sock)
        assert opcode == 0x9, "expected a ping"
        # Never answer: after twice the interval the server drops the connection.
        sock.settimeout(10)
        with pytest.raises((EOFError, ConnectionResetError)):
            while True:
                read_frame(sock)
    finally:
        sock.close()
    assert wait_for(tmp_path / "silent.disconnect") == "1006 "


def test_a_client_that_answers_pings_is_kept(serve):
    server = serve(APP, "--ws-keepalive-timeout", "0.3")
    # The websockets client answers pings by itself; 1.5 s is 5 intervals.
    with connect(ws_url(server, "/echo"), ping_interval=None) as ws:
        time.sleep(1.5)
        ws.send("still here")
        assert ws.recv() == "still here"


def test_pings_from_the_client_get_pongs(serve):
    server = serve(APP)
    sock = raw_handshake(server)
    try:
        sock.sendall(client_frame(0x9, b"are you there"))
        assert read_frame(sock) == (0xA, b"are you there")
    finally:
        sock.close()


def test_fragmented_client_message_arrives_whole(serve):
    server = serve(APP)
    sock = raw_handshake(server)
    try:
        sock.sendall(client_frame(0x1, b"frag", fin=False))
        sock.sendall(client_frame(0x9, b"p"))  # a control frame between fragments (§5.4)
        sock.sendall(client_frame(0x0, b"ment", fin=False))
        sock.sendall(client_frame(0x0, b"ed", fin=True))
        assert read_frame(sock) == (0xA, b"p")
        assert read_frame(sock) == (0x1, b"fragmented")
    finally:
        sock.close()


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (client_frame(0x1, b"unmasked", mask=False), 1002),
        (client_frame(0x1, b"\xff\xfe"), 1007),
        (client_frame(0x3, b"reserved opcode"), 1002),
        (client_frame(0x0, b"continuation first"), 1002),
        (client_frame(0x9, b"x" * 126), 1002),
        (client_frame(0x8, struct.pack("!H", 999)), 1002),
    ],
    ids=["unmasked", "bad-utf8", "reserved-opcode", "lone-continuation", "big-ping", "bad-code"],
)
def test_protocol_violations_close_with_the_right_code(serve, tmp_path, frame, code):
    server = serve(APP, env={"MARKER_DIR": str(tmp_path)})
    sock = raw_handshake(server)
    try:
        sock.sendall(frame)
        assert read_close(sock) == code
    finally:
        sock.close()
    assert wait_for(tmp_path / "echo.disconnect").startswith(str(code))


def test_bad_handshakes_get_http_errors_and_never_reach_the_app(serve):
    server = serve(APP)
    base = "GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    old = raw_request(server, (base + key + "Sec-WebSocket-Version: 8\r\n\r\n").encode())
    assert old.startswith(b"HTTP/1.1 426 ")
    assert b"\r\nsec-websocket-version: 13\r\n" in old.lower()
    nokey = raw_request(server, (base + "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    assert nokey.startswith(b"HTTP/1.1 400 ")
    badkey = raw_request(
        server, (base + "Sec-WebSocket-Key: c2hvcnQ=\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()
    )
    assert badkey.startswith(b"HTTP/1.1 400 ")


def test_many_concurrent_connections(serve):
    server = serve(APP)
    url = ws_url(server, "/echo")

    async def client(i: int) -> str:
        from websockets.asyncio.client import connect as aconnect  # noqa: PLC0415

        async with aconnect(url) as ws:
            await ws.send(f"message {i}")
            return str(await ws.recv())

    async def main() -> list[str]:
        return await asyncio.gather(*(client(i) for i in range(200)))

    assert asyncio.run(main()) == [f"message {i}" for i in range(200)]


def test_shutdown_closes_open_websockets_with_1001(serve, tmp_path):
    server = serve(APP, env={"MARKER_DIR": str(tmp_path)})
    with connect(ws_url(server, "/echo")) as ws:
        ws.send("before")
        assert ws.recv() == "before"
        server.proc.send_signal(signal.SIGTERM)
        with pytest.raises(ConnectionClosed):
            ws.recv()
    assert ws.close_code == 1001
    assert server.proc.wait(30) == 0
    assert wait_for(tmp_path / "echo.disconnect").startswith("1001")


def test_the_chat_example_broadcasts_to_every_member(serve):
    examples = Path(__file__).parents[2]
    server = serve("examples.chat:app", "--app-dir", str(examples))
    url = ws_url(server, "/ws")
    with connect(url) as alice:
        assert alice.recv().endswith(" joined")
        with connect(url) as bob:
            joined = bob.recv()
            assert alice.recv() == joined
            bob.send("hi all")
            assert alice.recv().endswith(": hi all")
            assert bob.recv().endswith(": hi all")
        assert alice.recv().endswith(" left")
    assert "saltare" in httpx.get(server.url + "/").text
