"""Load generators: a small hand-written HTTP/1.1 keep-alive client on asyncio streams, wrk
and h2load.

The client writes requests as prebuilt bytes and parses only what it needs (status, framing), so
on a 2-core machine it leaves as much CPU as possible to the server under test.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import cast

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


def _run_tool(argv: list[str], timeout: float) -> tuple[int, str]:
    """Run a load generator in its own session; on a timeout or Ctrl-C it is killed."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)  # fmt: skip
    try:
        output, _ = proc.communicate(timeout=timeout)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    return proc.returncode, output


def run_wrk(
    port: int, connections: int, duration: float, path: str = "/", tls: bool = False
) -> WrkResult:
    """wrk with one thread (the load generator shares the 2 cores with the server); ``tls``
    makes it an https URL (wrk's TLS is the system OpenSSL, handshakes once per connection)."""
    exe = wrk_path()
    if exe is None:
        raise FileNotFoundError("wrk not installed")
    scheme = "https" if tls else "http"
    argv = [exe, "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s", "--latency",
            "--timeout", "10s", f"{scheme}://{HOST}:{port}{path}"]  # fmt: skip
    code, output = _run_tool(argv, duration + 30)
    if code != 0:
        raise ProtocolError(f"wrk exited {code}: {output.strip()[-300:]}")
    return parse_wrk(output)


def client_tls(alpn: tuple[str, ...] = ()) -> ssl.SSLContext:
    """TLS for the harness's own connections. The benchmark certificate is self-signed, so it
    is not verified."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if alpn:
        context.set_alpn_protocols(list(alpn))
    return context


def tls_session(port: int) -> str:
    """Version and cipher that a default OpenSSL 3 client (Python's ssl; wrk and h2load use the
    same library) negotiates with the server."""
    with (
        socket.create_connection((HOST, port), timeout=5) as raw,
        client_tls().wrap_socket(raw) as sock,
    ):
        cipher = sock.cipher()
        return f"{sock.version()} {cipher[0] if cipher else '?'}"


# ------------------------------------------------------------------------------------- h2load


@dataclass
class H2loadResult:
    rps: float
    succeeded: int
    failed: int  # h2load's failed + errored + timeout, plus non-2xx responses
    protocol: str  # "Application protocol:" line: h2, h2c, or http/1.1 after a fallback
    mean_ms: float
    max_ms: float
    duration: float
    problem: str | None  # why the run does not count: failures, wrong protocol, nothing done
    raw: str


_H2_TIME = r"([\d.]+)(us|ms|s|m)"


def parse_h2load(output: str, want: str) -> H2loadResult:
    """h2load's summary; ``want`` is the protocol it must have negotiated (h2 or h2c)."""
    finished = re.search(r"finished in ([\d.]+)s, ([\d.]+) req/s", output)
    counts = re.search(
        r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
        r"(\d+) errored, (\d+) timeout", output,
    )  # fmt: skip
    statuses = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", output)
    if finished is None or counts is None or statuses is None:
        raise ProtocolError(f"unexpected h2load output: {output.strip()[-300:]}")
    done, succeeded, failed, errored, timeout = (int(counts.group(i)) for i in range(3, 8))
    non_2xx = sum(int(statuses.group(i)) for i in (2, 3, 4))
    protocols = set(re.findall(r"^Application protocol: (\S+)", output, re.MULTILINE))
    if not protocols:
        protocols = {"none"}
    timing = re.search(rf"time for request:\s+{_H2_TIME}\s+{_H2_TIME}\s+{_H2_TIME}", output)
    mean_ms = max_ms = float("nan")
    if timing:
        max_ms = float(timing.group(3)) * _UNITS[timing.group(4)]
        mean_ms = float(timing.group(5)) * _UNITS[timing.group(6)]
    problem = None
    if protocols != {want}:
        problem = f"negotiated {', '.join(sorted(protocols))}, not {want}"
    elif failed or errored or timeout or non_2xx:
        problem = (f"{failed} failed, {errored} errored, {timeout} timed out, {non_2xx} non-2xx "
                   f"of {done} done")  # fmt: skip
    elif succeeded == 0:
        problem = f"no request completed ({counts.group(2)} started)"
    return H2loadResult(
        rps=float(finished.group(2)), succeeded=succeeded,
        failed=failed + errored + timeout + non_2xx, protocol=",".join(sorted(protocols)),
        mean_ms=mean_ms, max_ms=max_ms, duration=float(finished.group(1)), problem=problem,
        raw=output,
    )  # fmt: skip


def h2load_path() -> str | None:
    return shutil.which("h2load")


def h2load_version() -> str:
    exe = h2load_path()
    if exe is None:
        return "not installed"
    done = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False)
    first = (done.stdout + done.stderr).strip().splitlines()
    return first[0] if first else "unknown"


def run_h2load(
    port: int, clients: int, streams: int, duration: float, tls: bool, path: str = "/"
) -> H2loadResult:
    """h2load with one thread for ``duration`` s: ``clients`` connections with ``streams``
    concurrent streams each. Over TLS ALPN must pick h2; in cleartext h2load opens with the
    HTTP/2 preface (prior knowledge, RFC 9113 §3.3), as it does for every http:// URL."""
    exe = h2load_path()
    if exe is None:
        raise FileNotFoundError("h2load not installed (apt-get install nghttp2-client)")
    scheme = "https" if tls else "http"
    argv = [exe, "-t1", f"-c{clients}", f"-m{streams}", f"-D{round(duration * 1000)}ms",
            f"{scheme}://{HOST}:{port}{path}"]  # fmt: skip
    code, output = _run_tool(argv, duration + 30)
    if code != 0:
        raise ProtocolError(f"h2load exited {code}: {output.strip()[-300:]}")
    return parse_h2load(output, "h2" if tls else "h2c")


# ---------------------------------------------------------------------------------- WebSocket

_WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3
_OP_TEXT, _OP_CLOSE, _OP_PING, _OP_PONG = 0x1, 0x8, 0x9, 0xA
_WS_HEAD_LIMIT = 16 * 1024


def ws_frame(opcode: int, payload: bytes, mask: bytes) -> bytes:
    """One final (FIN) client frame. Clients mask every frame (RFC 6455 §5.3)."""
    size = len(payload)
    if size < 126:
        head = bytes((0x80 | opcode, 0x80 | size))
    elif size < 1 << 16:
        head = bytes((0x80 | opcode, 0x80 | 126)) + size.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 0x80 | 127)) + size.to_bytes(8, "big")
    if not payload:
        return head + mask
    key = (mask * (size // 4 + 1))[:size]
    masked = int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")
    return head + mask + masked.to_bytes(size, "big")


class WsClient(asyncio.Protocol):
    """One client WebSocket on a hand-written RFC 6455 codec, on an asyncio Protocol (no stream
    or task per connection), so thousands cost the harness little.

    It answers every ping at once with a pong (RFC 6455 §5.5.2), so a server's keepalive (uvicorn
    and saltare ping after 20 s) never drops a connection the harness holds idle, and it never
    offers permessage-deflate: every server is measured without compression state.
    """

    def __init__(self, port: int, path: str) -> None:
        key = base64.b64encode(os.urandom(16))
        self._request = (
            f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key.decode()}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
        self._accept = base64.b64encode(hashlib.sha1(key + _WS_GUID).digest())
        self.mask = os.urandom(4)
        self.transport: asyncio.Transport | None = None
        loop = asyncio.get_running_loop()
        self.opened: asyncio.Future[None] = loop.create_future()
        self.lost: asyncio.Future[None] = loop.create_future()
        self.closed = False
        self.close_code: int | None = None
        self.pings = 0
        self.unexpected = 0  # data messages nobody waited for
        self.on_message: Callable[[bytes], None] | None = None
        self._waiter: asyncio.Future[bytes] | None = None
        self._buffer = bytearray()
        self._fragments: list[bytes] = []
        self._open = False
        self._closing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        transport.write(self._request)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if not self._open:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > _WS_HEAD_LIMIT:
                    self._abort("handshake response head too long")
                return
            head = bytes(self._buffer[:end])
            del self._buffer[: end + 4]
            problem = self._check_handshake(head)
            if problem is not None:
                self._abort(problem)
                return
            self._open = True
            if not self.opened.done():
                self.opened.set_result(None)
        self._parse()

    def _check_handshake(self, head: bytes) -> str | None:
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        if len(parts) < 2 or parts[1] != b"101":
            return f"handshake answered {lines[0][:80]!r}"
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"sec-websocket-accept":
                if value.strip() == self._accept:
                    return None
                return "wrong Sec-WebSocket-Accept"  # RFC 6455 §4.1, item 4 of the client checks
        return "101 without Sec-WebSocket-Accept"

    def _parse(self) -> None:
        buf = self._buffer
        pos, end_of_data = 0, len(buf)
        while end_of_data - pos >= 2:
            first, second = buf[pos], buf[pos + 1]
            if second & 0x80:
                self._abort("masked frame from the server (RFC 6455 §5.1)")
                return
            size, start = second & 0x7F, pos + 2
            if size >= 126:
                width = 2 if size == 126 else 8
                if end_of_data - start < width:
                    break
                size = int.from_bytes(buf[start : start + width], "big")
                start += width
            if start + size > end_of_data:
                break
            payload = bytes(buf[start : start + size])
            pos = start + size
            self._frame(first & 0x80 != 0, first & 0x0F, payload)
            if self.closed:
                return
        del buf[:pos]

    def _frame(self, fin: bool, opcode: int, payload: bytes) -> None:
        if opcode == _OP_PING:
            self.pings += 1
            self.send(ws_frame(_OP_PONG, payload, self.mask))
        elif opcode == _OP_PONG:
            pass
        elif opcode == _OP_CLOSE:
            self.close_code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
            self.close()
        elif not fin:
            self._fragments.append(payload)
        else:
            if self._fragments:
                payload = b"".join([*self._fragments, payload])
                self._fragments.clear()
            if self.on_message is not None:
                self.on_message(payload)
            elif self._waiter is not None and not self._waiter.done():
                self._waiter.set_result(payload)
                self._waiter = None
            else:
                self.unexpected += 1

    def send(self, frame: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(frame)

    def request(self, frame: bytes) -> asyncio.Future[bytes]:
        """Send ``frame``; the future gets the next data message (or the connection's end)."""
        waiter: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        if self.closed:
            waiter.set_exception(ConnectionError(self._closed_reason()))
            return waiter
        self._waiter = waiter
        self.send(frame)
        return waiter

    def close(self, code: int = 1000) -> None:
        """Send a close frame (once) and close the TCP connection."""
        if self.transport is None or self.closed:
            return
        if not self._closing:
            self._closing = True
            self.transport.write(ws_frame(_OP_CLOSE, code.to_bytes(2, "big"), self.mask))
        self.transport.close()
        self._gone(None)

    def _abort(self, reason: str) -> None:
        if self.transport is not None:
            self.transport.abort()
        self._gone(ProtocolError(reason))

    def _closed_reason(self) -> str:
        code = f" with close code {self.close_code}" if self.close_code is not None else ""
        return f"connection closed{code}"

    def _gone(self, exc: BaseException | None) -> None:
        if self.closed:
            return
        self.closed = True
        error = exc if exc is not None else ConnectionError(self._closed_reason())
        if not self.opened.done():
            self.opened.set_exception(error)
            self.opened.exception()  # retrieved: the opener may have timed out already
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(error)
        if not self.lost.done():
            self.lost.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self._gone(exc)


async def ws_connect(port: int, path: str = "/ws", timeout: float = 10.0) -> WsClient:
    """Open one WebSocket: TCP connect and handshake within ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    client: WsClient | None = None

    async def connect() -> WsClient:
        nonlocal client
        _, client = await loop.create_connection(lambda: WsClient(port, path), HOST, port)
        await client.opened
        return client

    try:
        return await asyncio.wait_for(connect(), timeout)
    except BaseException:
        if client is not None and client.transport is not None:
            client.transport.abort()
        raise


async def open_ws(port: int, count: int, parallel: int = 100) -> tuple[list[WsClient], LoadResult]:
    """Open ``count`` WebSockets (at most ``parallel`` handshakes in flight) and keep them."""
    result = LoadResult()
    gate = asyncio.Semaphore(parallel)
    opened: list[WsClient] = []

    async def one() -> None:
        async with gate:
            try:
                opened.append(await ws_connect(port))
            except (OSError, asyncio.TimeoutError, ProtocolError) as exc:
                result.fail(exc)
                return
            result.ok += 1

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(count)))
    result.elapsed = time.perf_counter() - started
    return opened, result


async def ws_echo_round(clients: list[WsClient], text: bytes = b"still there?") -> list[bool]:
    """One text message on each connection; which ones echoed it within 10 s."""
    gate = asyncio.Semaphore(200)

    async def one(client: WsClient) -> bool:
        async with gate:
            try:
                frame = ws_frame(_OP_TEXT, text, client.mask)
                got = await asyncio.wait_for(client.request(frame), 10)
            except (OSError, asyncio.TimeoutError, ProtocolError):
                return False
            return got == text

    return list(await asyncio.gather(*(one(client) for client in clients)))


async def close_ws(clients: list[WsClient]) -> None:
    """Close frame 1000 and TCP close on every connection still open."""
    for client in clients:
        client.close()
    await asyncio.sleep(0)


@dataclass
class EchoResult(LoadResult):
    client_cpu_s: float = 0.0  # this process's CPU time during the run (client + sampler)


class _Echoer:
    """One client of the echo load: sends the next message from the callback that read the echo,
    without a task per client, which keeps the client's CPU per message low."""

    def __init__(self, client: WsClient, text: bytes, deadline: float, result: EchoResult) -> None:
        self.client = client
        self.text = text
        self.frame = ws_frame(_OP_TEXT, text, client.mask)
        self.deadline = deadline
        self.result = result
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.sent = 0.0

    def start(self) -> None:
        self.client.on_message = self.on_message
        self.client.lost.add_done_callback(self.on_lost)
        if self.client.closed:
            self.on_lost(None)
        else:
            self.sent = time.perf_counter()
            self.client.send(self.frame)

    def on_message(self, message: bytes) -> None:
        now = time.perf_counter()
        if message == self.text:
            self.result.ok += 1
            self.result.latencies.append(now - self.sent)
        else:
            self.result.fail(f"echo mismatch: {message[:40]!r}")
        if now < self.deadline:
            self.sent = now
            self.client.send(self.frame)
        elif not self.done.done():
            self.done.set_result(None)

    def on_lost(self, _: object) -> None:
        if not self.done.done():
            self.result.fail(f"server {self.client._closed_reason()} during the run")
            self.done.set_result(None)

    def stop(self) -> None:
        self.client.on_message = None
        self.client.lost.remove_done_callback(self.on_lost)


async def ws_echo(clients: list[WsClient], duration: float, text: bytes) -> EchoResult:
    """Each client sends ``text``, waits for its echo and sends it again until ``duration`` is
    up; latencies are from send to echo, per message."""
    result = EchoResult()
    started = time.perf_counter()
    cpu_started = time.process_time()
    echoers = [_Echoer(client, text, started + duration, result) for client in clients]
    for echoer in echoers:
        echoer.start()
    # A sent message is always echoed or its connection lost; 10 s on top catches a stall.
    _, stalled = await asyncio.wait([e.done for e in echoers], timeout=duration + 10)
    for _ in stalled:
        result.fail("no echo within 10 s of the run's end")
    result.elapsed = time.perf_counter() - started
    result.client_cpu_s = time.process_time() - cpu_started
    for echoer in echoers:
        echoer.stop()
    return result
