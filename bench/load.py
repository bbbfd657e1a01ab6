"""Load generators: a small hand-written HTTP/1.1 keep-alive client on asyncio streams, and wrk.

The client writes requests as prebuilt bytes and parses only what it needs (status, framing), so
on a 2-core machine it leaves as much CPU as possible to the server under test.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

HOST = "127.0.0.1"
_READ = 256 * 1024
_KEEP_BODY = 64 * 1024  # bodies up to this size are kept so the caller can inspect them


class ProtocolError(Exception):
    """The server's response could not be framed."""


@dataclass
class Response:
    status: int
    size: int
    body: bytes = b""
    close: bool = False


@dataclass
class LoadResult:
    """Outcome of a client-driven load: successes, failures and per-request latencies."""

    ok: int = 0
    errors: int = 0
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)
    first_error: str | None = None

    def fail(self, exc: BaseException | str) -> None:
        self.errors += 1
        if self.first_error is None:
            self.first_error = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"

    @property
    def rps(self) -> float:
        return self.ok / self.elapsed if self.elapsed else 0.0


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (0 for an empty list)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def get_request(port: int, path: str = "/") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n\r\n".encode()


class Connection:
    """One keep-alive HTTP/1.1 connection to 127.0.0.1."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection(HOST, port)
        return cls(reader, writer)

    async def get(self, request: bytes, digest: hashlib._Hash | None = None) -> Response:
        self.writer.write(request)
        return await self.read_response(digest)

    async def read_response(self, digest: hashlib._Hash | None = None) -> Response:
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        if len(parts) < 2 or not parts[1].isdigit():
            raise ProtocolError(f"bad status line {lines[0][:80]!r}")
        status = int(parts[1])
        length: int | None = None
        chunked = close = False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                close = b"close" in value.lower()
        body = bytearray()
        if chunked:
            size = 0
            while True:
                line = await self.reader.readuntil(b"\r\n")
                chunk = int(line.split(b";", 1)[0], 16)
                if chunk == 0:
                    while await self.reader.readuntil(b"\r\n") != b"\r\n":
                        pass  # trailers
                    break
                size += await self._body(chunk, body, digest)
                await self.reader.readexactly(2)
        elif length is not None:
            size = await self._body(length, body, digest)
        elif status in (204, 304) or 100 <= status < 200:
            size = 0
        else:  # read until close (RFC 9112 §6.3 item 8)
            size = 0
            while data := await self.reader.read(_READ):
                size += len(data)
            close = True
        return Response(status, size, bytes(body), close)

    async def _body(self, length: int, keep: bytearray, digest: hashlib._Hash | None) -> int:
        remaining = length
        while remaining:
            data = await self.reader.read(min(remaining, _READ))
            if not data:
                raise ProtocolError(f"connection closed with {remaining} body bytes missing")
            remaining -= len(data)
            if digest is not None:
                digest.update(data)
            if len(keep) < _KEEP_BODY:
                keep += data
        return length

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


async def _client_loop(port: int, count: int, path: str, result: LoadResult) -> None:
    request = get_request(port, path)
    conn: Connection | None = None
    for _ in range(count):
        started = time.perf_counter()
        try:
            if conn is None:
                conn = await Connection.open(port)
            response = await conn.get(request)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ProtocolError, ValueError) as exc:  # fmt: skip
            result.fail(exc)
            if conn is not None:
                await conn.close()
            conn = None
            continue
        result.latencies.append(time.perf_counter() - started)
        if response.status == 200:
            result.ok += 1
        else:
            result.fail(f"HTTP {response.status}")
        if response.close:
            await conn.close()
            conn = None
    if conn is not None:
        await conn.close()


async def keepalive_load(
    port: int, connections: int, per_connection: int, path: str = "/"
) -> LoadResult:
    """``connections`` keep-alive clients in parallel, each sending ``per_connection`` requests."""
    result = LoadResult()
    started = time.perf_counter()
    await asyncio.gather(
        *(_client_loop(port, per_connection, path, result) for _ in range(connections))
    )
    result.elapsed = time.perf_counter() - started
    return result


async def open_idle(
    port: int, count: int, parallel: int = 100
) -> tuple[list[Connection], LoadResult]:
    """Open ``count`` connections, one request each, and keep them open (at most ``parallel``
    connects in flight, so a listen backlog of 100 is never what fails)."""
    result = LoadResult()
    request = get_request(port)
    gate = asyncio.Semaphore(parallel)
    opened: list[Connection] = []

    async def one() -> None:
        async with gate:
            conn: Connection | None = None
            try:
                conn = await asyncio.wait_for(Connection.open(port), 10)
                response = await asyncio.wait_for(conn.get(request), 10)
            except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError,
                    ProtocolError, ValueError) as exc:  # fmt: skip
                result.fail(exc)
                if conn is not None:
                    await conn.close()
                return
            if response.status == 200 and not response.close:
                result.ok += 1
                opened.append(conn)
            else:
                result.fail(f"HTTP {response.status}{' + close' if response.close else ''}")
                await conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(count)))
    result.elapsed = time.perf_counter() - started
    return opened, result


async def still_served(connections: list[Connection], port: int) -> int:
    """How many held connections still answer a second request (the server kept them)."""
    request = get_request(port)

    async def one(conn: Connection) -> bool:
        try:
            response = await asyncio.wait_for(conn.get(request), 10)
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError,
                ProtocolError, ValueError):  # fmt: skip
            return False
        return response.status == 200

    gate = asyncio.Semaphore(200)

    async def gated(conn: Connection) -> bool:
        async with gate:
            return await one(conn)

    answers = await asyncio.gather(*(gated(conn) for conn in connections))
    return sum(answers)


async def close_all(connections: list[Connection]) -> None:
    for conn in connections:
        conn.writer.close()
    await asyncio.sleep(0)


@dataclass
class Transfer:
    status: int
    size: int
    elapsed: float
    sha256: str
    body: bytes


async def download(port: int, path: str) -> Transfer:
    """One GET whose body is streamed through a sha256 and discarded."""
    conn = await Connection.open(port)
    digest = hashlib.sha256()
    started = time.perf_counter()
    try:
        response = await conn.get(get_request(port, path), digest)
    finally:
        await conn.close()
    return Transfer(response.status, response.size, time.perf_counter() - started,
                    digest.hexdigest(), response.body)  # fmt: skip


def upload_pattern(total: int, chunk: int = 64 * 1024) -> Iterator[bytes]:
    """The upload body: ``total`` bytes in ``chunk``-sized pieces of one reused buffer."""
    block = bytes(range(256)) * (chunk // 256)
    sent = 0
    while sent < total:
        piece = block[: min(chunk, total - sent)]
        sent += len(piece)
        yield piece


def upload_sha256(total: int) -> str:
    digest = hashlib.sha256()
    for piece in upload_pattern(total):
        digest.update(piece)
    return digest.hexdigest()


async def upload(port: int, total: int) -> Transfer:
    """POST ``total`` bytes with Content-Length, written with back-pressure (drain per chunk)."""
    conn = await Connection.open(port)
    head = (
        f"POST /upload HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
        f"Content-Type: application/octet-stream\r\nContent-Length: {total}\r\n\r\n"
    ).encode()
    started = time.perf_counter()
    try:
        conn.writer.write(head)
        for piece in upload_pattern(total):
            conn.writer.write(piece)
            await conn.writer.drain()
        response = await conn.read_response()
    finally:
        await conn.close()
    return Transfer(response.status, response.size, time.perf_counter() - started, "",
                    response.body)  # fmt: skip


# ---------------------------------------------------------------------------------------- wrk


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    duration: float
    errors: int
    non_2xx: int
    raw: str


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _latency(output: str, pct: str) -> float:
    match = re.search(rf"^\s*{pct}%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.MULTILINE)
    return float(match.group(1)) * _UNITS[match.group(2)] if match else float("nan")


def parse_wrk(output: str) -> WrkResult:
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", output)
    if rps is None or total is None:
        raise ProtocolError(f"unexpected wrk output: {output.strip()[-300:]}")
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return WrkResult(
        rps=float(rps.group(1)),
        p50_ms=_latency(output, "50"),
        p99_ms=_latency(output, "99"),
        requests=int(total.group(1)),
        duration=float(total.group(2)) * _UNITS[total.group(3)] / 1000,
        errors=sum(int(n) for n in socket_errors.groups()) if socket_errors else 0,
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        raw=output,
    )


def wrk_path() -> str | None:
    return shutil.which("wrk")


def wrk_version() -> str:
    exe = wrk_path()
    if exe is None:
        return "not installed"
    done = subprocess.run([exe, "-v"], capture_output=True, text=True, check=False)
    first = (done.stdout + done.stderr).strip().splitlines()
    return first[0] if first else "unknown"


def run_wrk(port: int, connections: int, duration: float, path: str = "/") -> WrkResult:
    """wrk with one thread (the load generator shares the 2 cores with the server)."""
    exe = wrk_path()
    if exe is None:
        raise FileNotFoundError("wrk not installed")
    argv = [exe, "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s", "--latency",
            "--timeout", "10s", f"http://{HOST}:{port}{path}"]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)  # fmt: skip
    try:
        output, _ = proc.communicate(timeout=duration + 30)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    if proc.returncode != 0:
        raise ProtocolError(f"wrk exited {proc.returncode}: {output.strip()[-300:]}")
    return parse_wrk(output)
