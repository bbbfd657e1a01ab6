"""Request and response bodies: large streams with bounded memory, chunked uploads, limits."""

from __future__ import annotations

import hashlib
import socket
import threading
from collections.abc import Iterator

import httpx
from rawhttp import RawConnection, request

MIB = 1024 * 1024
BIG = 200 * MIB
BLOCK = 64 * 1024
# Generous on purpose: the design goal is a few MiB per process; this catches buffering.
MAX_GROWTH = 64 * MIB


def rss(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


class RssSampler:
    """Samples the RSS of the server's processes until stopped; reports growth per pid."""

    def __init__(self, pids: list[int]) -> None:
        self.baseline = {pid: rss(pid) or 0 for pid in pids}
        self.peak = dict(self.baseline)
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            for pid in self.peak:
                value = rss(pid)
                if value is not None and value > self.peak[pid]:
                    self.peak[pid] = value
            self.samples += 1

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def growth(self) -> dict[int, int]:
        return {pid: self.peak[pid] - self.baseline[pid] for pid in self.peak}


def pattern(index: int) -> bytes:
    # Same as apps/fastapi_app.py:pattern.
    return (
        index.to_bytes(8, "big")
        + bytes((index + i) % 251 for i in range(256)) * 255
        + bytes(BLOCK - 8 - 256 * 255)
    )


def upload_blocks(total: int, digest: hashlib._Hash) -> Iterator[bytes]:
    base = bytes(range(256)) * (BLOCK // 256)
    sent = 0
    index = 0
    while sent < total:
        block = (index.to_bytes(8, "big") + base[8:])[: total - sent]
        digest.update(block)
        sent += len(block)
        index += 1
        yield block


def name(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as fh:
            return f"{fh.read().strip()}[{pid}]"
    except FileNotFoundError:
        return f"[{pid}]"


def check_growth(server, label: str, sampler: RssSampler) -> None:
    growth = sampler.growth()
    report = ", ".join(f"{name(pid)}: {grew / MIB:+.1f} MiB" for pid, grew in growth.items())
    print(f"\nRSS growth during {label} ({sampler.samples} samples): {report}")
    assert sampler.samples > 0
    assert all(grew <= MAX_GROWTH for grew in growth.values()), report


def warm_up(server) -> None:
    # The first request of a worker allocates its caches; measure from after that.
    with httpx.Client(base_url=server.url) as client:
        client.post("/sha256", content=b"x" * (2 * MIB))
        client.get(f"/download/{2 * MIB}").raise_for_status()


def test_200_mib_streamed_upload_arrives_byte_exact_with_bounded_memory(serve):
    server = serve("fastapi_app:app", "--max-request-body", "300m")
    warm_up(server)
    digest = hashlib.sha256()
    with RssSampler(server.pids()) as sampler:
        response = httpx.post(
            server.url + "/sha256",
            content=upload_blocks(BIG, digest),
            headers={"content-length": str(BIG)},
            timeout=120,
        )
    assert response.status_code == 200, response.text
    assert response.json() == {"size": BIG, "sha256": digest.hexdigest()}
    check_growth(server, "a 200 MiB upload", sampler)


def test_200_mib_streamed_download_arrives_byte_exact_with_bounded_memory(serve):
    server = serve("fastapi_app:app")
    warm_up(server)
    expected = hashlib.sha256()
    for index in range(BIG // BLOCK):
        expected.update(pattern(index))
    received = hashlib.sha256()
    size = 0
    with (
        RssSampler(server.pids()) as sampler,
        httpx.stream("GET", f"{server.url}/download/{BIG}", timeout=120) as response,
    ):
        assert response.status_code == 200
        for chunk in response.iter_raw():
            received.update(chunk)
            size += len(chunk)
    assert size == BIG
    assert received.hexdigest() == expected.hexdigest()
    check_growth(server, "a 200 MiB download", sampler)


def test_chunked_request_body_arrives_intact(serve):
    server = serve("echo_scope:app")
    pieces = [b"hello ", b"chunked", b" world" * 1000, b"\x00\xff\r\n", b"end"]
    wire = b"".join(f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in pieces)
    wire = wire.replace(b"7\r\nchunked", b"7;ext=ignored\r\nchunked", 1)
    with RawConnection.to(server) as conn:
        conn.send(
            request("POST", "/chunked", [("Transfer-Encoding", "chunked")]) + wire + b"0\r\n\r\n"
        )
        response = conn.read_response()
    assert response.status == 200
    assert response.json()["body"].encode("latin-1") == b"".join(pieces)


def test_chunked_request_body_sent_byte_by_byte_arrives_intact(serve):
    server = serve("echo_scope:app")
    body = b"".join(f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in [b"abc", b"defgh"])
    data = request("POST", "/slowly", [("Transfer-Encoding", "chunked")]) + body + b"0\r\n\r\n"
    with RawConnection.to(server) as conn:
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(len(data)):
            conn.send(data[i : i + 1])
        response = conn.read_response()
    assert response.status == 200
    assert response.json()["body"] == "abcdefgh"


def test_declared_body_over_the_limit_gets_413_and_the_app_is_not_called(serve, calls):
    server = serve("echo_scope:app", "--max-request-body", "1k", env={"ECHO_CALLS": calls.path})
    with RawConnection.to(server) as conn:
        conn.send(request("POST", "/too-big", [("Content-Length", "2048")]) + b"x" * 2048)
        response = conn.read_response()
        assert conn.is_closed()
    assert response.status == 413
    # A body at the limit is still accepted, so the limit is the option's value.
    ok = httpx.post(server.url + "/at-limit", content=b"y" * 1024)
    assert ok.status_code == 200
    assert calls() == ["POST /at-limit"]


def test_chunked_body_over_the_limit_gets_413(serve):
    server = serve("echo_scope:app", "--max-request-body", "1k")
    chunk = b"z" * 1000
    wire = (f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n") * 3 + b"0\r\n\r\n"
    with RawConnection.to(server) as conn:
        conn.send(request("POST", "/too-big", [("Transfer-Encoding", "chunked")]) + wire)
        response = conn.read_response()
    assert response.status == 413
