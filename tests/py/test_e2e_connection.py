"""Connection management: keep-alive, pipelining, closing, and client disconnects."""

from __future__ import annotations

import concurrent.futures
import re
import time
from pathlib import Path

import httpx
import pytest
from rawhttp import EarlyEOF, RawConnection, request

ECHO = "echo_scope:app"


def wait_for_file(path: Path, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            return True
        time.sleep(0.02)
    return path.exists()


def test_several_requests_on_one_connection_are_answered_in_order(serve):
    server = serve(ECHO)
    with RawConnection.to(server) as conn:
        seen = []
        for i in range(5):
            conn.send(request("GET", f"/keepalive/{i}"))
            response = conn.read_response()
            assert response.status == 200
            assert response.header("connection") != "close"
            seen.append(response.json())
        local_port = conn.local_port
    assert [s["path"] for s in seen] == [f"/keepalive/{i}" for i in range(5)]
    # One TCP connection carried them all: the app saw the same client port every time.
    assert {tuple(s["client"]) for s in seen} == {("127.0.0.1", local_port)}


def test_pipelined_requests_in_one_send_get_responses_in_order(serve):
    server = serve(ECHO)
    with RawConnection.to(server) as conn:
        conn.send(
            request("GET", "/p1")
            + request("POST", "/p2", body=b"second body")
            + request("GET", "/p3?last=1")
        )
        responses = [conn.read_response() for _ in range(3)]
    scopes = [r.json() for r in responses]
    assert [r.status for r in responses] == [200, 200, 200]
    assert [s["path"] for s in scopes] == ["/p1", "/p2", "/p3"]
    assert scopes[1]["body"] == "second body"
    assert scopes[2]["query_string"] == "last=1"


def test_http_1_0_without_keep_alive_closes_after_the_response(serve):
    server = serve(ECHO)
    with RawConnection.to(server) as conn:
        conn.send(b"GET /old HTTP/1.0\r\n\r\n")
        response = conn.read_response()
        assert response.status == 200
        assert conn.is_closed(), "HTTP/1.0 without keep-alive must close after the response"
    assert response.json()["http_version"] == "1.0"


def test_http_1_0_with_keep_alive_keeps_the_connection(serve):
    server = serve(ECHO)
    with RawConnection.to(server) as conn:
        conn.send(b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        first = conn.read_response()
        conn.send(b"GET /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        second = conn.read_response()
    assert first.header("connection") == "keep-alive"
    assert [first.json()["path"], second.json()["path"]] == ["/a", "/b"]


def test_connection_close_is_honoured(serve):
    server = serve(ECHO)
    with RawConnection.to(server) as conn:
        conn.send(request("GET", "/bye", [("Connection", "close")]))
        response = conn.read_response()
        assert response.status == 200
        assert response.header("connection") == "close"
        assert conn.is_closed()


def test_requests_pipelined_after_connection_close_are_not_answered(serve):
    server = serve(ECHO)
    with RawConnection.to(server) as conn:
        conn.send(request("GET", "/last", [("Connection", "close")]) + request("GET", "/never"))
        response = conn.read_response()
        assert response.json()["path"] == "/last"
        assert conn.is_closed()


@pytest.mark.parametrize("path", ["/stream-forever", "/wait-disconnect"])
def test_client_disconnect_reaches_the_app_as_http_disconnect(serve, tmp_path, path):
    name = path.lstrip("/")
    server = serve("errors_app:app", env={"MARKER_DIR": str(tmp_path)})
    conn = RawConnection.to(server)
    conn.send(request("GET", path))
    if path == "/stream-forever":
        head = conn.read_head()
        assert head.status == 200
    assert wait_for_file(tmp_path / f"{name}.started"), "the app was never called"
    assert not (tmp_path / f"{name}.disconnected").exists()
    conn.close()
    assert wait_for_file(tmp_path / f"{name}.disconnected", timeout=5.0), (
        "the app did not receive http.disconnect within 5 s of the client closing"
    )


def test_streaming_response_to_http_1_0_is_close_delimited_not_chunked(serve):
    server = serve("fastapi_app:app")
    with RawConnection.to(server) as conn:
        conn.send(b"GET /stream?chunks=3 HTTP/1.0\r\n\r\n")
        head = conn.read_head()
        body = conn.read_until_eof()
    assert head.status == 200
    assert head.header("transfer-encoding") is None, "HTTP/1.0 has no chunked encoding"
    assert body == b"chunk 0\nchunk 1\nchunk 2\n"


def test_expect_100_continue_gets_100_before_the_final_response(serve):
    server = serve(ECHO)
    with RawConnection.to(server) as conn:
        conn.send(request("POST", "/expect", [("Expect", "100-continue"), ("Content-Length", "5")]))
        interim = conn.read_head(skip_interim=False)
        assert interim.status == 100
        conn.send(b"hello")
        response = conn.read_response()
    assert response.status == 200
    assert response.json()["body"] == "hello"


def test_an_unread_request_body_does_not_corrupt_the_next_request(serve):
    # errors_app's /ok never reads the body; what follows on the connection must still parse
    # as the next request (or the server closes the connection instead of guessing).
    server = serve("errors_app:app")
    body = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n" * 3000
    with RawConnection.to(server) as conn:
        conn.send(request("POST", "/ok", body=body) + request("GET", "/ok"))
        first = conn.read_response()
        assert first.status == 200
        assert first.body == b"ok"
        try:
            second = conn.read_response()
        except EarlyEOF as exc:
            assert exc.received == b"", f"partial second response: {exc.received!r}"
        else:
            assert second.status == 200
            assert second.body == b"ok"


@pytest.mark.parametrize("seconds", ["1", "0.5"])
def test_idle_keep_alive_connection_is_closed_after_the_keep_alive_timeout(serve, seconds):
    server = serve(ECHO, "--keep-alive-timeout", seconds)
    with RawConnection.to(server) as conn:
        conn.send(request("GET", "/once"))
        assert conn.read_response().status == 200
        assert conn.is_closed(timeout=10), "idle connection kept open past the timeout"


@pytest.mark.parametrize("seconds", ["1", "0.5"])
def test_incomplete_request_head_gets_408_after_the_header_timeout(serve, tmp_path, seconds):
    calls = tmp_path / "calls.txt"
    server = serve(ECHO, "--header-timeout", seconds, env={"ECHO_CALLS": str(calls)})
    with RawConnection.to(server) as conn:
        conn.send(b"GET /never-finished HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        response = conn.read_response()
        assert response.status == 408
        assert conn.is_closed()
    assert not calls.exists() or calls.read_text() == ""


def test_max_keepalive_requests_closes_the_connection_after_that_many(serve):
    server = serve(ECHO, "--max-keepalive-requests", "3")
    with RawConnection.to(server) as conn:
        statuses = []
        for i in range(3):
            conn.send(request("GET", f"/n{i}"))
            response = conn.read_response()
            statuses.append((response.status, response.header("connection")))
        assert conn.is_closed()
    assert statuses[:2] == [(200, None), (200, None)]
    assert statuses[2] == (200, "close")


def test_responses_carry_date_and_server_headers(serve):
    server = serve(ECHO)
    with RawConnection.to(server) as conn:
        conn.send(request("GET", "/h"))
        response = conn.read_response()
    assert response.header("server") == "saltare"
    assert re.fullmatch(
        r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
        r"\d{4} \d\d:\d\d:\d\d GMT",
        response.header("date") or "",
    )


@pytest.mark.parametrize("workers", ["1", "2"])
def test_concurrent_requests_are_handled_concurrently(serve, workers):
    # /barrier answers only when all n requests are inside the app at the same time (per
    # worker), so with 1 worker this completes only if the worker interleaves them.
    server = serve("concurrency_app:app", "--workers", workers)
    n = 8 if workers == "1" else 1
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        futures = [
            pool.submit(httpx.get, f"{server.url}/barrier?n={n}", timeout=15) for _ in range(8)
        ]
        results = [f.result() for f in futures]
    assert [r.status_code for r in results] == [200] * 8
