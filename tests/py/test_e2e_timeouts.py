"""Timeouts against slow or stalled clients, and Expect: 100-continue.

Each test stalls one client on purpose and checks that the server cuts it off on time (without
asserting wall-clock figures, which a loaded machine cannot promise) while other clients keep
being served.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx
from rawhttp import RawConnection, request

ECHO = "echo_scope:app"
ERRORS = "errors_app:app"


def app_calls(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_expect_100_continue_is_answered_only_when_the_app_reads_the_body(serve):
    # errors_app's /ok answers without reading: the client must get the final response and
    # no "100 Continue", so it never uploads a body nobody wants (RFC 9110 §10.1.1).
    server = serve(ERRORS)
    with RawConnection.to(server) as conn:
        conn.send(request("POST", "/ok", [("Expect", "100-continue"), ("Content-Length", "5")]))
        head = conn.read_head(skip_interim=False)
        assert head.status == 200
        # The announced body was never sent, so the connection cannot be reused.
        assert head.header("connection") == "close"


def test_expect_100_continue_over_the_body_limit_gets_413_without_100(serve, tmp_path):
    calls = tmp_path / "calls.txt"
    server = serve(ECHO, "--max-request-body", "100", env={"ECHO_CALLS": str(calls)})
    with RawConnection.to(server) as conn:
        conn.send(request("POST", "/big", [("Expect", "100-continue"), ("Content-Length", "101")]))
        head = conn.read_head(skip_interim=False)
        assert head.status == 413
        assert b"Too Large" in conn.read_until_eof()  # the body, then the server closes
    assert app_calls(calls) == []


def test_expect_100_continue_from_http_1_0_is_ignored(serve):
    # RFC 9110 §10.1.1: an HTTP/1.0 client cannot understand 100; the server must not send it.
    server = serve(ECHO)
    with RawConnection.to(server) as conn:
        conn.send(b"POST /old HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello")
        head = conn.read_head(skip_interim=False)
        assert head.status == 200


def test_a_body_that_stops_arriving_gets_408_after_the_body_timeout(serve, tmp_path):
    calls = tmp_path / "calls.txt"
    server = serve(ECHO, "--body-timeout", "1", env={"ECHO_CALLS": str(calls)})
    with RawConnection.to(server) as conn:
        conn.send(request("POST", "/stalled", [("Content-Length", "10")]) + b"abc")
        # Meanwhile another client is served normally.
        assert httpx.get(server.url + "/other").status_code == 200
        response = conn.read_response()
        assert response.status == 408
        assert conn.is_closed()
    # The body never completed, so the app never saw this request.
    assert app_calls(calls) == ["GET /other"]


def test_a_dribbled_body_is_cut_off_at_the_body_timeout(serve):
    # A byte now and then keeps the connection busy but does not extend the deadline.
    server = serve(ECHO, "--body-timeout", "1")
    with RawConnection.to(server) as conn:
        conn.send(request("POST", "/dribble", [("Content-Length", "1000")]))
        started = time.monotonic()
        status = None
        while time.monotonic() - started < 20:
            try:
                conn.send(b"x")
            except OSError:
                break
            conn.sock.settimeout(0.2)
            try:
                data = conn.sock.recv(4096)
            except TimeoutError:
                continue
            if data:
                status = int(data.split(b" ", 2)[1])
            break
    assert status == 408


def test_a_streamed_upload_that_stalls_disconnects_the_app_and_gets_408(serve, tmp_path):
    # Over 64 KiB the body is streamed to the app as it arrives; when it stalls, the app's
    # receive() reports a disconnect and the client gets 408 (the response had not started).
    markers = tmp_path / "markers"
    markers.mkdir()
    server = serve(ERRORS, "--body-timeout", "1", env={"MARKER_DIR": str(markers)})
    with RawConnection.to(server) as conn:
        conn.send(request("POST", "/wait-disconnect", [("Content-Length", "200000")]))
        conn.send(b"x" * 70000)
        response = conn.read_response()
        assert response.status == 408
        assert conn.is_closed()


def test_an_app_that_reads_slowly_does_not_trip_the_body_timeout(serve):
    # The router stops reading while the app is not taking the body; that wait is the app's,
    # so a client that sends as fast as it is allowed is never cut off.
    server = serve(ERRORS, "--body-timeout", "0.5", "--max-request-body", "4m")
    body = b"z" * (2 * 1024 * 1024)
    response = httpx.post(server.url + "/slow-read", content=body, timeout=60)
    assert response.status_code == 200
    assert response.text == str(len(body))


def test_a_client_that_stops_reading_is_closed_after_the_write_timeout(serve):
    server = serve("fastapi_app:app", "--write-timeout", "1")
    size = 500 * 1024 * 1024
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        sock.sendall(f"GET /download/{size} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        # Read nothing for a while: the server's writes stall and the timeout runs out.
        time.sleep(3)
        assert httpx.get(server.url + "/hello").status_code == 200
        received = 0
        sock.settimeout(10)
        ended = False
        while received < size:
            try:
                data = sock.recv(1 << 20)
            except ConnectionResetError:
                ended = True
                break
            if not data:
                ended = True
                break
            received += len(data)
    finally:
        sock.close()
    assert ended
    assert received < size, "the whole response was delivered: the connection was not cut"


def test_connections_over_the_limit_are_closed_at_once_and_the_others_unaffected(serve):
    server = serve(ECHO, "--max-concurrent-connections", "3")
    held = [RawConnection.to(server) for _ in range(3)]
    try:
        for conn in held:
            conn.send(request("GET", "/held"))
            assert conn.read_response().status == 200
        # The fourth is accepted (the backlog stays drained) and closed without an answer.
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as extra:
            try:
                extra.sendall(request("GET", "/extra"))
                assert extra.recv(65536) == b""
            except (ConnectionResetError, BrokenPipeError):
                pass
        for conn in held:
            conn.send(request("GET", "/still"))
            assert conn.read_response().status == 200
    finally:
        for conn in held[1:]:
            conn.close()
    # Freed slots are usable again.
    deadline = time.monotonic() + 5
    while True:
        try:
            assert httpx.get(server.url + "/again").status_code == 200
            break
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    held[0].close()
