"""Worker side of the router-worker wire protocol, version 2 (docs/protocol.md).

Sans-I/O: ``Decoder.feed`` takes bytes and returns frames, the ``encode_*`` functions return
bytes. Everything here is on the per-request hot path, so each frame header costs one
``struct.unpack_from`` and each head block one ``bytes.split``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from typing import Final, NoReturn

__all__ = [
    "BODY",
    "CLOSE",
    "CONTINUE",
    "FLAG_CONTINUE",
    "FLAG_END",
    "HEADER_SIZE",
    "HELLO",
    "INITIAL_WINDOW",
    "MAX_PAYLOAD",
    "MAX_WINDOW",
    "MESSAGE",
    "MESSAGE_BINARY",
    "MESSAGE_TEXT",
    "PING",
    "PONG",
    "READY",
    "REQUEST",
    "RESET",
    "RESET_APP_ERROR",
    "RESET_CLIENT_GONE",
    "RESET_PROTOCOL",
    "RESPONSE",
    "SHUTDOWN",
    "SHUTDOWN_RECYCLE",
    "SHUTDOWN_STOP",
    "VERSION",
    "WINDOW",
    "Decoder",
    "Frame",
    "ProtocolError",
    "decode_close",
    "decode_hello",
    "decode_message",
    "decode_request",
    "decode_reset",
    "decode_response",
    "decode_shutdown",
    "decode_window",
    "encode_body",
    "encode_close",
    "encode_continue",
    "encode_control",
    "encode_frame",
    "encode_hello",
    "encode_message",
    "encode_request",
    "encode_reset",
    "encode_response",
    "encode_shutdown",
    "encode_window",
]

VERSION: Final = 2
HEADER_SIZE: Final = 10
MAX_PAYLOAD: Final = 16 * 1024 * 1024
INITIAL_WINDOW: Final = 262144
MAX_WINDOW: Final = 2**31 - 1

REQUEST: Final = 0x01
BODY: Final = 0x02
RESPONSE: Final = 0x03
WINDOW: Final = 0x04
RESET: Final = 0x05
CONTINUE: Final = 0x06
MESSAGE: Final = 0x07
CLOSE: Final = 0x08
HELLO: Final = 0x10
READY: Final = 0x11
SHUTDOWN: Final = 0x12
PING: Final = 0x13
PONG: Final = 0x14

FLAG_END: Final = 0x01
#: On REQUEST only: the request expects 100-continue (docs/protocol.md).
FLAG_CONTINUE: Final = 0x02

SHUTDOWN_STOP: Final = 0
SHUTDOWN_RECYCLE: Final = 1

MESSAGE_TEXT: Final = 1
MESSAGE_BINARY: Final = 2

RESET_CLIENT_GONE: Final = 0
RESET_APP_ERROR: Final = 1
RESET_PROTOCOL: Final = 2

#: (type, flags, stream, payload)
Frame = tuple[int, int, int, bytes]

_KNOWN_TYPES: Final = frozenset(
    (
        REQUEST,
        BODY,
        RESPONSE,
        WINDOW,
        RESET,
        CONTINUE,
        MESSAGE,
        CLOSE,
        HELLO,
        READY,
        SHUTDOWN,
        PING,
        PONG,
    )
)
_CONTROL_TYPES: Final = frozenset((HELLO, READY, SHUTDOWN, PING, PONG))

# length, type, flags, stream
_HEADER: Final = struct.Struct(">IBBI")
# frame header + one u32: REQUEST's head_length, WINDOW's increment
_HEADER_U32: Final = struct.Struct(">IBBII")
# frame header + RESPONSE's status and head_length
_HEADER_RESPONSE: Final = struct.Struct(">IBBIHI")
# frame header + MESSAGE's kind
_HEADER_U8: Final = struct.Struct(">IBBIB")
# frame header + RESET's or CLOSE's code
_HEADER_U16: Final = struct.Struct(">IBBIH")
# frame header + HELLO's version, pid, slot, generation
_HEADER_HELLO: Final = struct.Struct(">IBBIHIHH")
_U32: Final = struct.Struct(">I")
_STATUS_HEAD: Final = struct.Struct(">HI")
_U16: Final = struct.Struct(">H")
_HELLO: Final = struct.Struct(">HIHH")

_NUL: Final = b"\0"
_REQUEST_FIXED_FIELDS: Final = 9


class ProtocolError(Exception):
    """The peer broke docs/protocol.md; the receiver closes the socket."""

    code = "PROTOCOL_ERROR"

    def __init__(self, message: str = "peer broke the router-worker protocol") -> None:
        super().__init__(message)


def _bad_header(length: int, ftype: int) -> NoReturn:
    if length > MAX_PAYLOAD:
        raise ProtocolError(f"peer sent frame length {length} > MAX_PAYLOAD {MAX_PAYLOAD}")
    raise ProtocolError(f"peer sent unknown frame type 0x{ftype:02x}")


class Decoder:
    """Splits a byte stream into frames; keeps a partial frame until the rest arrives."""

    __slots__ = ("_buf", "_need")

    def __init__(self) -> None:
        # Bytes of one partial frame. Whole frames arriving in one chunk never touch it.
        self._buf = bytearray()
        # Size of the partial frame once its header is complete, else 0.
        self._need = 0

    @property
    def buffered(self) -> int:
        """Bytes held back as the start of an incomplete frame."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Frame]:
        """Return every frame completed by ``data``; raise ProtocolError on a bad header."""
        frames: list[Frame] = []
        off = self._complete(data, frames) if self._buf else 0
        size = len(data)
        unpack = _HEADER.unpack_from
        known = _KNOWN_TYPES
        while size - off >= HEADER_SIZE:
            length, ftype, flags, stream = unpack(data, off)
            if length > MAX_PAYLOAD or ftype not in known:
                _bad_header(length, ftype)
            start = off + HEADER_SIZE
            stop = start + length
            if stop > size:
                self._need = stop - off
                self._buf += data[off:]
                return frames
            frames.append((ftype, flags, stream, data[start:stop]))
            off = stop
        if off < size:
            self._need = 0
            self._buf += data[off:]
        return frames

    def _complete(self, data: bytes, frames: list[Frame]) -> int:
        """Extend the partial frame from ``data``; return how many bytes of it were used."""
        buf = self._buf
        off = 0
        if not self._need:
            off = HEADER_SIZE - len(buf)
            buf += data[:off]
            if len(buf) < HEADER_SIZE:
                return len(data)
            length, ftype, _, _ = _HEADER.unpack_from(buf)
            if length > MAX_PAYLOAD or ftype not in _KNOWN_TYPES:
                _bad_header(length, ftype)
            self._need = HEADER_SIZE + length
        take = self._need - len(buf)
        if take:
            # A whole-chunk slice of bytes is the chunk itself: no copy for big bodies.
            buf += data[off : off + take]
            if len(buf) < self._need:
                return len(data)
            off += take
        _, ftype, flags, stream = _HEADER.unpack_from(buf)
        del buf[:HEADER_SIZE]  # O(1) for a bytearray: moves its start
        frames.append((ftype, flags, stream, bytes(buf)))
        buf.clear()
        self._need = 0
        return off


def encode_frame(ftype: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    """Any frame, from its parts."""
    return _HEADER.pack(len(payload), ftype, flags, stream) + payload


def encode_request(
    stream: int,
    fields: Sequence[bytes],
    headers: Iterable[tuple[bytes, bytes]],
    body: bytes,
    end: bool,
) -> bytes:
    """A REQUEST frame; ``fields`` are the 9 fixed head fields, ``headers`` are sent as given."""
    if len(fields) != _REQUEST_FIXED_FIELDS:
        raise ValueError(f"a request head has 9 fixed fields, got {len(fields)}")
    parts = list(fields)
    for name, value in headers:
        parts.append(name)
        parts.append(value)
    head = _NUL.join(parts)
    prefix = _HEADER_U32.pack(
        4 + len(head) + len(body), REQUEST, FLAG_END if end else 0, stream, len(head)
    )
    return b"".join((prefix, head, body))


def encode_response(
    stream: int,
    status: int,
    headers: Iterable[tuple[bytes, bytes]] | Iterable[list[bytes]],
    body: bytes,
    end: bool,
) -> bytes:
    """A RESPONSE frame with the headers as the application gave them.

    Raises RuntimeError for a header containing NUL, CR or LF (docs/protocol.md, "Head
    blocks"): NUL would shift every later field, CR/LF would split the router's HTTP/1 head.
    """
    parts: list[bytes] = []
    append = parts.append
    for name, value in headers:
        append(name)
        append(value)
    head = _NUL.join(parts)
    # int needles: `13 in head` is a memchr, `b"\r" in head` sets up a substring search.
    if parts and (head.count(0) != len(parts) - 1 or 13 in head or 10 in head):
        raise RuntimeError("response header names and values must not contain NUL, CR or LF")
    prefix = _HEADER_RESPONSE.pack(
        6 + len(head) + len(body), RESPONSE, FLAG_END if end else 0, stream, status, len(head)
    )
    return b"".join((prefix, head, body))


def encode_body(stream: int, data: bytes, end: bool) -> bytes:
    """A BODY frame."""
    return _HEADER.pack(len(data), BODY, FLAG_END if end else 0, stream) + data


def encode_window(stream: int, increment: int) -> bytes:
    """A WINDOW frame granting ``increment`` more body bytes on ``stream``."""
    return _HEADER_U32.pack(4, WINDOW, 0, stream, increment)


def encode_reset(stream: int, code: int, reason: str = "") -> bytes:
    """A RESET frame; ``reason`` is sent as UTF-8."""
    data = reason.encode()
    return _HEADER_U16.pack(2 + len(data), RESET, 0, stream, code) + data


def encode_close(stream: int, code: int, reason: str = "") -> bytes:
    """A CLOSE frame on a WebSocket stream; ``reason`` is sent as UTF-8."""
    data = reason.encode()
    return _HEADER_U16.pack(2 + len(data), CLOSE, 0, stream, code) + data


def encode_message(stream: int, kind: int, data: bytes, end: bool) -> bytes:
    """A MESSAGE frame: one part of a WebSocket message (END on its last part)."""
    return _HEADER_U8.pack(1 + len(data), MESSAGE, FLAG_END if end else 0, stream, kind) + data


def encode_continue(stream: int) -> bytes:
    """A CONTINUE frame: the app started reading a body sent with the CONTINUE flag."""
    return _HEADER.pack(0, CONTINUE, 0, stream)


def encode_hello(pid: int, slot: int, generation: int = 0) -> bytes:
    """The HELLO frame a worker sends first, carrying this module's VERSION."""
    return _HEADER_HELLO.pack(10, HELLO, 0, 0, VERSION, pid, slot, generation)


def encode_shutdown(reason: int) -> bytes:
    """A SHUTDOWN frame (router to worker; here for tests)."""
    return _HEADER.pack(1, SHUTDOWN, 0, 0) + bytes((reason,))


def encode_control(ftype: int, payload: bytes = b"") -> bytes:
    """A control frame on stream 0: READY, SHUTDOWN, PING or PONG."""
    if ftype not in _CONTROL_TYPES:
        raise ValueError(f"0x{ftype:02x} is not a control frame type")
    return _HEADER.pack(len(payload), ftype, 0, 0) + payload


def decode_request(payload: bytes) -> tuple[list[bytes], bytes]:
    """A REQUEST payload as (head fields, first body bytes).

    The fields are the 9 fixed ones followed by header name, value pairs.
    """
    size = len(payload)
    if size < 4:
        raise ProtocolError(f"peer sent a REQUEST payload too short for head_length ({size} bytes)")
    (head_length,) = _U32.unpack_from(payload)
    end = 4 + head_length
    if end > size:
        raise ProtocolError(
            f"peer sent REQUEST head_length {head_length} beyond the payload ({size - 4} bytes)"
        )
    fields = payload[4:end].split(_NUL) if head_length else []
    count = len(fields)
    if count < _REQUEST_FIXED_FIELDS or not count & 1:
        raise ProtocolError(f"peer sent a REQUEST head of {count} fields, not 9 + 2 per header")
    return fields, payload[end:]


def decode_response(payload: bytes) -> tuple[int, list[bytes], bytes]:
    """A RESPONSE payload as (status, flat [name, value, ...], first body bytes)."""
    size = len(payload)
    if size < 6:
        raise ProtocolError(
            f"peer sent a RESPONSE payload too short for status and head_length ({size} bytes)"
        )
    status, head_length = _STATUS_HEAD.unpack_from(payload)
    end = 6 + head_length
    if end > size:
        raise ProtocolError(
            f"peer sent RESPONSE head_length {head_length} beyond the payload ({size - 6} bytes)"
        )
    fields = payload[6:end].split(_NUL) if head_length else []
    if len(fields) & 1:
        raise ProtocolError(f"peer sent a RESPONSE head of {len(fields)} fields, an odd number")
    return status, fields, payload[end:]


def decode_window(payload: bytes) -> int:
    """A WINDOW payload as its increment."""
    if len(payload) != 4:
        raise ProtocolError(f"peer sent a WINDOW payload of {len(payload)} bytes, not 4")
    (increment,) = _U32.unpack_from(payload)
    if increment > MAX_WINDOW:
        # The window this lands on is at least the increment, so it is over MAX_WINDOW.
        raise ProtocolError(f"peer sent WINDOW increment {increment} > MAX_WINDOW {MAX_WINDOW}")
    return int(increment)


def decode_reset(payload: bytes) -> tuple[int, str]:
    """A RESET payload as (code, reason); a malformed UTF-8 reason is decoded with U+FFFD."""
    return _decode_code_reason("RESET", payload)


def decode_close(payload: bytes) -> tuple[int, str]:
    """A CLOSE payload as (code, reason); a malformed UTF-8 reason is decoded with U+FFFD."""
    return _decode_code_reason("CLOSE", payload)


def _decode_code_reason(frame: str, payload: bytes) -> tuple[int, str]:
    # RESET and CLOSE share their layout: u16 code, then a UTF-8 reason.
    if len(payload) < 2:
        raise ProtocolError(
            f"peer sent a {frame} payload too short for code ({len(payload)} bytes)"
        )
    (code,) = _U16.unpack_from(payload)
    return int(code), payload[2:].decode("utf-8", "replace")


def decode_message(payload: bytes) -> tuple[int, bytes]:
    """A MESSAGE payload as (kind, data)."""
    if not payload:
        raise ProtocolError("peer sent an empty MESSAGE payload (no kind byte)")
    kind = payload[0]
    if kind not in (MESSAGE_TEXT, MESSAGE_BINARY):
        raise ProtocolError(f"peer sent MESSAGE kind {kind}, not 1 (text) or 2 (binary)")
    return kind, payload[1:]


def decode_hello(payload: bytes) -> tuple[int, int, int, int]:
    """A HELLO payload as (version, pid, slot, generation)."""
    if len(payload) != 10:
        raise ProtocolError(f"peer sent a HELLO payload of {len(payload)} bytes, not 10")
    version, pid, slot, generation = _HELLO.unpack(payload)
    return int(version), int(pid), int(slot), int(generation)


def decode_shutdown(payload: bytes) -> int:
    """A SHUTDOWN payload's reason: SHUTDOWN_STOP or SHUTDOWN_RECYCLE."""
    if len(payload) != 1:
        raise ProtocolError(f"peer sent a SHUTDOWN payload of {len(payload)} bytes, not 1")
    return payload[0]
