"""A tiny HTTP/1.x client on a raw socket, for the wire-level end-to-end checks.

httpx hides what these tests are about (framing, connection reuse, EOF), so here every byte is
visible: requests are written as given, responses are read with the framing the server chose
(Content-Length, chunked, or until EOF), and the chunked terminator is checked, not assumed.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field


class EarlyEOF(Exception):
    """The server closed the connection before the response was complete."""

    def __init__(self, message: str, received: bytes) -> None:
        super().__init__(message)
        self.received = received


@dataclass
class Response:
    version: str
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes = b""
    chunked: bool = False
    raw: bytes = b""
    chunks: list[bytes] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        name = name.lower()
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def json(self) -> object:
        import json  # noqa: PLC0415

        return json.loads(self.body)


class RawConnection:
    """One client connection; ``read_response`` may be called repeatedly (keep-alive)."""

    def __init__(self, host: str, port: int, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self._buf = b""
        self._eof = False

    @classmethod
    def to(cls, server: object, timeout: float = 10.0) -> RawConnection:
        return cls("127.0.0.1", server.port, timeout)  # type: ignore[attr-defined]

    @property
    def local_port(self) -> int:
        return int(self.sock.getsockname()[1])

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading ----------------------------------------------------------------------------

    def _fill(self) -> bool:
        """Read more bytes into the buffer; False at EOF (or connection reset)."""
        if self._eof:
            return False
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        if not data:
            self._eof = True
            return False
        self._buf += data
        return True

    def _read_line(self, received: bytes) -> bytes:
        while b"\r\n" not in self._buf:
            if not self._fill():
                raise EarlyEOF("EOF inside a line", received + self._buf)
        line, self._buf = self._buf.split(b"\r\n", 1)
        return line

    def _read_exact(self, size: int, received: bytes) -> bytes:
        while len(self._buf) < size:
            if not self._fill():
                raise EarlyEOF(f"EOF after {len(self._buf)} of {size} bytes", received + self._buf)
        data, self._buf = self._buf[:size], self._buf[size:]
        return data

    def read_head(self, skip_interim: bool = True) -> Response:
        """Read a status line and headers (skipping 1xx responses unless told not to)."""
        while True:
            raw = b""
            line = self._read_line(raw)
            raw += line + b"\r\n"
            version, status, *reason = line.decode("latin-1").split(" ", 2)
            headers: list[tuple[str, str]] = []
            while True:
                line = self._read_line(raw)
                raw += line + b"\r\n"
                if not line:
                    break
                name, _, value = line.decode("latin-1").partition(":")
                headers.append((name.strip().lower(), value.strip()))
            response = Response(version, int(status), reason[0] if reason else "", headers, raw=raw)
            if not skip_interim or not 100 <= response.status < 200 or response.status == 101:
                return response

    def read_response(self, method: str = "GET") -> Response:
        """Read one whole response; raises EarlyEOF if the body is cut short."""
        response = self.read_head()
        raw = response.raw
        te = (response.header("transfer-encoding") or "").lower()
        length = response.header("content-length")
        if method == "HEAD" or response.status in (204, 304):
            return response
        if te.endswith("chunked"):
            response.chunked = True
            body = b""
            while True:
                size_line = self._read_line(raw + body)
                size = int(size_line.split(b";", 1)[0], 16)
                if size == 0:
                    # Trailer section, then the final CRLF.
                    while self._read_line(raw + body):
                        pass
                    break
                chunk = self._read_exact(size, raw + body)
                if self._read_exact(2, raw + body) != b"\r\n":
                    raise AssertionError("chunk not followed by CRLF")
                response.chunks.append(chunk)
                body += chunk
            response.body = body
        elif length is not None:
            response.body = self._read_exact(int(length), raw)
        else:
            response.body = self.read_until_eof()
        return response

    def read_until_eof(self, timeout: float = 10.0) -> bytes:
        """Everything up to EOF; raises TimeoutError if the server keeps the connection."""
        deadline = time.monotonic() + timeout
        while not self._eof:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                self._fill()
            except TimeoutError:
                raise TimeoutError(
                    f"connection still open after {timeout} s; got {self._buf!r}"
                ) from None
        data, self._buf = self._buf, b""
        return data

    def is_closed(self, timeout: float = 5.0) -> bool:
        """True if the server closes the connection within ``timeout`` with nothing more sent."""
        try:
            rest = self.read_until_eof(timeout)
        except TimeoutError:
            return False
        return rest == b""


def request(
    method: str,
    target: str,
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
    version: str = "HTTP/1.1",
) -> bytes:
    """Serialize a request; ``Host`` is added for HTTP/1.1 unless given."""
    head = [f"{method} {target} {version}"]
    given = headers or []
    if version == "HTTP/1.1" and not any(k.lower() == "host" for k, _ in given):
        head.append("Host: localhost")
    head.extend(f"{k}: {v}" for k, v in given)
    if body and not any(k.lower() in ("content-length", "transfer-encoding") for k, _ in given):
        head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
