"""Malformed requests are refused by the router; application failures stay isolated."""

from __future__ import annotations

import httpx
import pytest
from rawhttp import EarlyEOF, RawConnection, request

APP = "errors_app:app"


MALFORMED = {
    "garbage request line": b"THIS IS NOT HTTP\r\n\r\n",
    "binary garbage": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
    "missing host on HTTP/1.1": b"GET /ok HTTP/1.1\r\nAccept: */*\r\n\r\n",
    "content-length with transfer-encoding": (
        b"POST /ok HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    ),
    "two different content-lengths": (
        b"POST /ok HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"
    ),
    "space before header colon": b"GET /ok HTTP/1.1\r\nHost : x\r\n\r\n",
}


@pytest.mark.parametrize("wire", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_request_gets_400_and_closed_without_calling_the_app(serve, calls, wire):
    server = serve(APP, env={"ECHO_CALLS": calls.path})
    with RawConnection.to(server) as conn:
        conn.send(wire)
        response = conn.read_response()
        assert response.status == 400
        assert conn.is_closed(), "the connection must close after a 400 for a malformed request"
    # The server is still fine, and only the well-formed request reached the app.
    assert httpx.get(server.url + "/ok").text == "ok"
    assert calls() == ["/ok"]


def test_app_raising_before_response_start_gives_500_without_traceback(serve):
    server = serve(APP)
    response = httpx.get(server.url + "/raise-before")
    assert response.status_code == 500
    assert "Traceback" not in response.text
    assert "kaboom" not in response.text
    server.wait_log(r"Traceback \(most recent call last\)")
    server.wait_log(r"Boom: kaboom-before-start")
    assert httpx.get(server.url + "/ok").text == "ok"


def test_app_raising_mid_stream_closes_without_the_chunked_terminator(serve):
    server = serve(APP)
    with RawConnection.to(server) as conn:
        conn.send(request("GET", "/raise-after"))
        head = conn.read_head()
        assert head.status == 200
        assert head.header("transfer-encoding") == "chunked"
        rest = conn.read_until_eof()
    assert b"partial" in rest
    assert not rest.endswith(b"0\r\n\r\n"), f"an aborted response must not look complete: {rest!r}"
    server.wait_log(r"Boom: kaboom-after-start")
    assert httpx.get(server.url + "/ok").text == "ok"


def test_app_raising_mid_stream_is_an_error_for_an_http_client(serve):
    server = serve(APP)
    with RawConnection.to(server) as conn:
        conn.send(request("GET", "/raise-after"))
        with pytest.raises(EarlyEOF):
            conn.read_response()


def test_app_returning_without_a_response_gives_500(serve):
    server = serve(APP)
    response = httpx.get(server.url + "/no-response")
    assert response.status_code == 500
    server.wait_log(r"returned without starting response")
    assert httpx.get(server.url + "/ok").text == "ok"


def test_a_response_header_with_cr_lf_never_reaches_the_wire(serve):
    server = serve(APP)
    with RawConnection.to(server) as conn:
        conn.send(request("GET", "/bad-header", [("Connection", "close")]))
        response = conn.read_response()
        rest = conn.read_until_eof()
    assert response.status == 500
    assert response.header("set-cookie") is None
    assert b"evil" not in response.raw + response.body + rest
    assert b"must not be sent" not in response.body + rest
    server.wait_log(r"Invalid HTTP header value")


def test_unsupported_transfer_encoding_gets_501_without_calling_the_app(serve, calls):
    server = serve(APP, env={"ECHO_CALLS": calls.path})
    with RawConnection.to(server) as conn:
        conn.send(request("POST", "/ok", [("Transfer-Encoding", "gzip, chunked")]) + b"0\r\n\r\n")
        response = conn.read_response()
        assert conn.is_closed()
    assert response.status == 501
    assert calls() == []
