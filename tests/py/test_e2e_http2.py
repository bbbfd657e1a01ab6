"""HTTP/2 end to end: over TLS with ALPN, in clear text with prior knowledge, many streams on
one connection, bodies both ways with flow control, limits per stream, and floods."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shutil
import socket
import ssl
import subprocess
from pathlib import Path

import h2.config
import h2.connection
import h2.events
import httpx
import pytest
import trustme

FASTAPI = "fastapi_app:app"
ECHO = "echo_scope:app"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    ca = trustme.CA()
    directory = tmp_path_factory.mktemp("h2certs")
    cert = ca.issue_cert("localhost", "127.0.0.1")
    paths = {k: directory / f"{k}.pem" for k in ("ca", "cert", "key")}
    ca.cert_pem.write_to_path(str(paths["ca"]))
    cert.cert_chain_pems[0].write_to_path(str(paths["cert"]))
    cert.private_key_pem.write_to_path(str(paths["key"]))
    return paths


def tls_args(tls: dict[str, Path]) -> list[str]:
    return ["--ssl-certfile", str(tls["cert"]), "--ssl-keyfile", str(tls["key"])]


def verify(tls: dict[str, Path]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(tls["ca"]))


class H2Client:
    """A frame-level client on a raw socket (cleartext, prior knowledge)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.conn.initiate_connection()
        self.flush()

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def events(self) -> list[h2.events.Event]:
        data = self.sock.recv(65536)
        if not data:
            raise EOFError
        events = self.conn.receive_data(data)
        self.flush()
        return events

    def request(self, path: str, end: bool = True) -> int:
        stream = self.conn.get_next_available_stream_id()
        self.conn.send_headers(
            stream,
            [(":method", "GET"), (":scheme", "http"), (":authority", "x"), (":path", path)],
            end_stream=end,
        )
        self.flush()
        return stream

    def close(self) -> None:
        self.sock.close()


def test_http2_over_tls_is_negotiated_with_alpn(serve, tls):
    server = serve(ECHO, *tls_args(tls))
    with httpx.Client(http2=True, verify=verify(tls)) as client:
        response = client.get(server.url + "/alpn?q=1")
    assert response.http_version == "HTTP/2"
    scope = response.json()
    assert scope["http_version"] == "2"
    assert scope["scheme"] == "https"
    assert scope["query_string"] == "q=1"
    assert dict(scope["headers"])["host"].startswith("127.0.0.1:")
    assert response.headers["server"] == "saltare"


def test_http1_clients_still_get_http1_over_tls(serve, tls):
    server = serve(ECHO, *tls_args(tls))
    with httpx.Client(verify=verify(tls)) as client:
        response = client.get(server.url + "/h1")
    assert response.http_version == "HTTP/1.1"
    assert response.json()["http_version"] == "1.1"


def test_cleartext_prior_knowledge_with_curl(serve):
    server = serve(ECHO)
    result = subprocess.run(
        ["curl", "-s", "--http2-prior-knowledge", "-w", "\\n%{http_version}", server.url + "/pk"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    body, version = result.stdout.rsplit("\n", 1)
    assert version == "2"
    assert '"http_version": "2"' in body


def test_no_http2_refuses_the_preface(serve):
    server = serve(ECHO, "--no-http2")
    client = H2Client(server.port)
    try:
        data = client.sock.recv(65536)
    finally:
        client.close()
    assert data.startswith(b"HTTP/1.1 4") or data.startswith(b"HTTP/1.1 5")


def test_many_concurrent_streams_on_one_connection_run_in_parallel(serve, tls):
    # /slow-pid sleeps; 40 of them on one connection finish in about one sleep, not forty.
    server = serve(FASTAPI, *tls_args(tls), "--workers", "2")

    async def main() -> list[int]:
        async with httpx.AsyncClient(http2=True, verify=verify(tls), timeout=60) as client:
            responses = await asyncio.gather(
                *(client.get(server.url + "/slow-pid", params={"seconds": 0.5}) for _ in range(40))
            )
        assert {r.http_version for r in responses} == {"HTTP/2"}
        return [r.status_code for r in responses]

    assert asyncio.run(main()) == [200] * 40


def test_large_bodies_both_ways_with_flow_control(serve, tls):
    server = serve(FASTAPI, *tls_args(tls), "--max-request-body", "64m")
    body = os.urandom(8 * 1024 * 1024)
    with httpx.Client(http2=True, verify=verify(tls), timeout=120) as client:
        upload = client.post(server.url + "/sha256", content=body)
        assert upload.http_version == "HTTP/2"
        assert upload.json() == {"size": len(body), "sha256": hashlib.sha256(body).hexdigest()}
        download = client.get(server.url + f"/download/{8 * 1024 * 1024}")
        assert download.status_code == 200
        assert len(download.content) == 8 * 1024 * 1024


def test_a_body_over_the_limit_gets_413_on_its_stream_only(serve, tls):
    server = serve(ECHO, *tls_args(tls), "--max-request-body", "1000")
    with httpx.Client(http2=True, verify=verify(tls)) as client:
        too_big = client.post(server.url + "/big", content=b"x" * 5000)
        assert too_big.status_code == 413
        # The connection and its other streams are fine.
        assert client.get(server.url + "/after").status_code == 200


def test_rapid_reset_flood_gets_goaway(serve):
    server = serve(ECHO)
    client = H2Client(server.port)
    try:
        got_goaway = None
        # The server may cut the connection before the flood is fully sent.
        with contextlib.suppress(OSError):
            for _ in range(3000):
                stream = client.request("/reset-me", end=False)
                client.conn.reset_stream(stream)
            client.flush()
        try:
            while got_goaway is None:
                for event in client.events():
                    if isinstance(event, h2.events.ConnectionTerminated):
                        got_goaway = event
        except (EOFError, OSError):
            pass
    finally:
        client.close()
    assert got_goaway is not None
    assert got_goaway.error_code == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM
    # Other clients are unaffected.
    assert httpx.get(server.url + "/ok").status_code == 200


def test_h2load_runs_clean(serve):
    if shutil.which("h2load") is None:
        pytest.skip("h2load (Debian nghttp2-client) is not installed")
    server = serve(ECHO)
    result = subprocess.run(
        ["h2load", "-n", "2000", "-c", "4", "-m", "10", server.url + "/load"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "2000 succeeded, 0 failed, 0 errored" in result.stdout, result.stdout


def test_the_preface_starts_http2_and_a_bad_preface_fails_the_connection(serve):
    server = serve(ECHO)
    # A good preface gets our SETTINGS frame (type 0x4 on stream 0) first.
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        head = sock.recv(9)
        assert len(head) == 9
        assert head[3] == 0x4
        assert head[5:9] == b"\0\0\0\0"
    # "PRI" followed by anything else is not HTTP/2: the connection is closed with GOAWAY
    # PROTOCOL_ERROR (RFC 9113 §3.4), and the app never sees it.
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"PRI * HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        assert not data.startswith(b"HTTP/1.1 2")
