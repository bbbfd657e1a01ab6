"""The ASGI HTTP connection scope as an app sees it (echo_scope.py returns it as JSON)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from rawhttp import RawConnection, request

APP = "echo_scope:app"


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    # AF_UNIX paths are limited to 107 bytes; pytest's tmp_path can be longer than that.
    path = Path(tempfile.mkdtemp(prefix="saltare-e2e-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_scope_has_type_asgi_versions_method_and_scheme(serve):
    server = serve(APP)
    scope = httpx.get(server.url + "/plain").json()
    assert scope["type"] == "http"
    assert scope["asgi"]["version"] == "3.0"
    assert scope["asgi"]["spec_version"].startswith("2.")
    assert scope["http_version"] == "1.1"
    assert scope["method"] == "GET"
    assert scope["scheme"] == "http"
    assert scope["root_path"] == ""


def test_path_is_percent_decoded_while_raw_path_keeps_the_bytes(serve):
    server = serve(APP)
    with RawConnection.to(server) as conn:
        conn.send(request("GET", "/caf%C3%A9/a%20b?x=%20y&z=1"))
        scope = conn.read_response().json()
    assert scope["path"] == "/café/a b"
    assert scope["raw_path"] == "/caf%C3%A9/a%20b"
    assert scope["query_string"] == "x=%20y&z=1"


def test_query_string_is_empty_bytes_without_a_question_mark(serve):
    server = serve(APP)
    scope = httpx.get(server.url + "/nothing").json()
    assert scope["query_string"] == ""


def test_post_method_and_body_reach_the_app(serve):
    server = serve(APP)
    scope = httpx.post(server.url + "/submit", content=b"payload bytes").json()
    assert scope["method"] == "POST"
    assert scope["body"] == "payload bytes"


def test_http_1_0_requests_have_http_version_1_0(serve):
    server = serve(APP)
    with RawConnection.to(server) as conn:
        conn.send(b"GET /old HTTP/1.0\r\n\r\n")
        response = conn.read_response()
    assert response.status == 200
    assert response.json()["http_version"] == "1.0"


def test_headers_are_lowercased_byte_pairs_in_received_order_with_duplicates(serve):
    server = serve(APP)
    sent = [
        ("Host", "example.test"),
        ("X-First", "1"),
        ("X-Dup", "a"),
        ("X-Mixed-Case", "Value Keeps Its Case"),
        ("X-Dup", "b"),
        ("Accept", "*/*"),
    ]
    with RawConnection.to(server) as conn:
        conn.send(request("GET", "/headers", sent))
        scope = conn.read_response().json()
    assert scope["headers"] == [[name.lower(), value] for name, value in sent]


def test_client_is_the_peer_ipv4_address_and_port(serve):
    server = serve(APP)
    with RawConnection.to(server) as conn:
        conn.send(request("GET", "/client"))
        scope = conn.read_response().json()
        local_port = conn.local_port
    assert scope["client"] == ["127.0.0.1", local_port]


def test_server_is_the_listening_host_and_port(serve):
    server = serve(APP)
    scope = httpx.get(server.url + "/server").json()
    assert scope["server"] == ["127.0.0.1", server.port]


def test_root_path_is_set_and_prefixed_to_path(serve):
    server = serve(APP, "--root-path", "/api")
    scope = httpx.get(server.url + "/items/1?x=1").json()
    assert scope["root_path"] == "/api"
    assert scope["path"] == "/api/items/1"
    assert scope["query_string"] == "x=1"


def test_unix_socket_scope_has_no_client_and_the_socket_path_as_server(serve, short_tmp):
    sock = str(short_tmp / "s.sock")
    server = serve(APP, "--uds", sock)
    assert server.url == f"unix:{sock}"
    with httpx.Client(transport=httpx.HTTPTransport(uds=sock)) as client:
        response = client.get("http://localhost/over-uds")
    assert response.status_code == 200
    scope = response.json()
    assert scope["path"] == "/over-uds"
    assert scope["client"] is None
    assert scope["server"] == [sock, None]


def test_lifespan_state_reaches_each_request_as_a_shallow_copy(serve):
    server = serve(APP, "--workers", "1")
    with httpx.Client(base_url=server.url) as client:
        first = client.get("/mutate-state").json()
        second = client.get("/read-state").json()
    assert first["state"]["greeting"] == "hello"
    assert first["state"]["added_by_request"] is True
    # A key added by one request does not leak into the next request's copy.
    assert second["state"] == {"greeting": "hello", "shared": []}
