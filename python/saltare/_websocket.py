"""One WebSocket inside a worker: the ASGI ``websocket`` receive/send pair.

The router does the handshake checks, the framing, masking, fragmentation, compression, UTF-8
validation, ping/pong and the close handshake (RFC 6455). What reaches this module is whole
messages and a close code, as MESSAGE and CLOSE frames (docs/protocol.md, "WebSocket
streams"); what leaves it is the app's decision (accept, deny, messages, close).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import _protocol as proto
from ._http import HttpStream, internal_error_response
from ._logging import logger

if TYPE_CHECKING:
    from ._worker import RouterLink

__all__ = ["ClientDisconnected", "WebSocketStream"]

# Largest MESSAGE frame the worker sends; bigger messages are split (and obey the window).
_MAX_PART = 64 * 1024

# RFC 6455 §7.4: close codes an endpoint may send. 1005, 1006 and 1015 are reserved for
# reporting and must never appear in a close frame.
_SENDABLE_CODES = frozenset((1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013))

_CONNECTING, _CONNECTED, _DENYING, _CLOSED = 0, 1, 2, 3


class ClientDisconnected(OSError):
    """``send()`` on a WebSocket whose client has gone (ASGI websocket spec 2.4)."""


class WebSocketStream:
    """The state of one ASGI websocket connection, from connect to disconnect.

    States: connecting (until the app accepts or denies), connected, denying (the app chose to
    answer with an HTTP response, which an inner ``HttpStream`` carries), closed (either side
    closed; ``receive`` reports the disconnect).
    """

    __slots__ = (
        "_close_code",
        "_close_reason",
        "_connect_sent",
        "_http",
        "_link",
        "_messages",
        "_partial",
        "_receive_waiter",
        "_send_waiter",
        "_state",
        "_window",
        "id",
        "receive",
        "send",
    )

    def __init__(self, link: RouterLink, stream_id: int) -> None:
        self._link: RouterLink | None = link
        self.id = stream_id
        self._state = _CONNECTING
        self._connect_sent = False
        # Complete messages not yet received by the app: (kind, data, credit owed back). Both
        # containers exist only while they hold something: an idle WebSocket, the common
        # case, should not carry an empty deque (760 bytes) for its whole life.
        self._messages: deque[tuple[int, bytes, int]] | None = None
        self._partial: list[bytes] | None = None
        self._window = proto.INITIAL_WINDOW
        self._close_code = 1005
        self._close_reason = ""
        self._http: HttpStream | None = None
        self._receive_waiter: asyncio.Future[None] | None = None
        self._send_waiter: asyncio.Future[None] | None = None
        self.receive: Callable[[], Any] = self._receive
        self.send: Callable[[Any], Any] = self._send

    # -- events from the router ---------------------------------------------------------

    def on_message(self, kind: int, data: bytes, end: bool) -> None:
        link = self._link
        if self._state == _CLOSED or link is None:
            return
        if not end:
            # The app cannot have part of a message; the credit goes back at once so the router
            # can send the rest (docs/protocol.md, flow control on WebSocket streams).
            if self._partial is None:
                self._partial = [data]
            else:
                self._partial.append(data)
            if data:
                link.write(proto.encode_window(self.id, len(data)))
            return
        owed = len(data)
        if self._partial is not None:
            self._partial.append(data)
            data = b"".join(self._partial)
            self._partial = None
        if self._messages is None:
            self._messages = deque()
        self._messages.append((kind, data, owed))
        self._wake(self._receive_waiter)

    def on_close(self, code: int, reason: str) -> None:
        """The client closed (or vanished: 1006); the router has already answered it."""
        http = self._http
        if http is not None:
            http.on_disconnect()
        if self._state != _CLOSED:
            self._state = _CLOSED
            self._close_code = code
            self._close_reason = reason
        self._link = None
        self._partial = None
        self._wake(self._receive_waiter)
        self._wake(self._send_waiter)

    def on_disconnect(self) -> None:
        """RESET from the router: the client went away (before the accept, normally)."""
        self.on_close(1006, "")

    def on_window(self, increment: int) -> None:
        http = self._http
        if http is not None:
            http.on_window(increment)
            return
        self._window += increment
        self._wake(self._send_waiter)

    def on_body(self, data: bytes, end: bool) -> None:
        """A WebSocket handshake has no body; nothing to do."""

    @staticmethod
    def _wake(waiter: asyncio.Future[None] | None) -> None:
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- ASGI receive ---------------------------------------------------------------------

    async def _receive(self) -> dict[str, Any]:
        if not self._connect_sent:
            self._connect_sent = True
            return {"type": "websocket.connect"}
        while True:
            messages = self._messages
            if messages:
                kind, data, owed = messages.popleft()
                if not messages:
                    self._messages = None
                link = self._link
                if owed and link is not None:
                    link.write(proto.encode_window(self.id, owed))
                if kind == proto.MESSAGE_TEXT:
                    return {"type": "websocket.receive", "text": data.decode()}
                return {"type": "websocket.receive", "bytes": data}
            if self._state == _CLOSED:
                return {
                    "type": "websocket.disconnect",
                    "code": self._close_code,
                    "reason": self._close_reason,
                }
            waiter = asyncio.get_running_loop().create_future()
            self._receive_waiter = waiter
            try:
                await waiter
            finally:
                self._receive_waiter = None

    # -- ASGI send --------------------------------------------------------------------------

    async def _send(self, message: Any) -> None:
        kind = message["type"]
        state = self._state
        if state == _CONNECTING:
            if kind == "websocket.accept":
                self._accept(message)
            elif kind == "websocket.close":
                # ASGI: a close before the accept denies the handshake with 403.
                self._deny_with(403)
            elif kind == "websocket.http.response.start":
                self._state = _DENYING
                self._http = self._http_stream()
                await self._http.send({**message, "type": "http.response.start"})
            else:
                raise RuntimeError(
                    "Expected ASGI message 'websocket.accept', 'websocket.close' or "
                    f"'websocket.http.response.start', but got {kind!r}."
                )
            return
        if state == _DENYING:
            if kind != "websocket.http.response.body":
                raise RuntimeError(
                    f"Expected ASGI message 'websocket.http.response.body', but got {kind!r}."
                )
            assert self._http is not None
            await self._http.send({**message, "type": "http.response.body"})
            if not message.get("more_body", False):
                self._state = _CLOSED
            return
        if state == _CLOSED:
            if self._http is not None or kind == "websocket.close":
                return
            raise ClientDisconnected(f"WebSocket closed (code {self._close_code})")
        if kind == "websocket.send":
            await self._send_message(message)
        elif kind == "websocket.close":
            self._close(message.get("code", 1000), message.get("reason") or "")
        else:
            raise RuntimeError(
                f"Expected ASGI message 'websocket.send' or 'websocket.close', but got {kind!r}."
            )

    def _accept(self, message: Any) -> None:
        headers: list[tuple[bytes, bytes]] = []
        for header in message.get("headers") or ():
            name, value = header
            if type(name) is not bytes or type(value) is not bytes:
                raise RuntimeError("ASGI websocket.accept header names and values must be bytes.")
            headers.append((name, value))
        subprotocol = message.get("subprotocol")
        if subprotocol is not None:
            if not isinstance(subprotocol, str):
                raise RuntimeError("ASGI websocket.accept subprotocol must be a string.")
            headers.append((b"sec-websocket-protocol", subprotocol.encode()))
        link = self._link
        self._state = _CONNECTED
        if link is not None:
            # encode_response refuses NUL/CR/LF; the router checks names and values again.
            link.write(proto.encode_response(self.id, 101, headers, b"", False))

    def _deny_with(self, status: int) -> None:
        link = self._link
        self._state = _CLOSED
        self._close_code = 1006
        if link is not None:
            link.write(proto.encode_response(self.id, status, [], b"", True))
        self._link = None

    def _http_stream(self) -> HttpStream:
        link = self._link
        if link is None:
            raise ClientDisconnected("WebSocket client went away before the response")
        return HttpStream(link, self.id, b"", True)

    async def _send_message(self, message: Any) -> None:
        text = message.get("text")
        if text is not None:
            if not isinstance(text, str):
                raise RuntimeError("ASGI websocket.send 'text' must be a string.")
            kind = proto.MESSAGE_TEXT
            data = text.encode()
        else:
            data = message.get("bytes")
            if data is None:
                raise RuntimeError("ASGI websocket.send needs 'bytes' or 'text'.")
            if type(data) is not bytes:
                if not isinstance(data, (bytearray, memoryview)):
                    raise RuntimeError("ASGI websocket.send 'bytes' must be bytes.")
                data = bytes(data)
            kind = proto.MESSAGE_BINARY
        size = len(data)
        link = self._link
        if link is not None and size <= self._window and size <= _MAX_PART:
            self._window -= size
            link.write(proto.encode_message(self.id, kind, data, True))
            return
        view = memoryview(data)
        offset = 0
        while True:
            while self._window <= 0 and self._state == _CONNECTED:
                await self._wait_window()
            link = self._link
            if self._state != _CONNECTED or link is None:
                raise ClientDisconnected(f"WebSocket closed (code {self._close_code})")
            part = min(self._window, _MAX_PART, size - offset)
            self._window -= part
            last = offset + part >= size
            link.write(
                proto.encode_message(self.id, kind, bytes(view[offset : offset + part]), last)
            )
            offset += part
            if last:
                return

    async def _wait_window(self) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self._send_waiter = waiter
        try:
            await waiter
        finally:
            self._send_waiter = None

    def _close(self, code: Any, reason: Any) -> None:
        if type(code) is not int or not (code in _SENDABLE_CODES or 3000 <= code <= 4999):
            raise RuntimeError(f"Invalid WebSocket close code {code!r} (RFC 6455 §7.4).")
        if not isinstance(reason, str):
            raise RuntimeError("ASGI websocket.close 'reason' must be a string.")
        link = self._link
        self._state = _CLOSED
        self._close_code = code
        self._close_reason = reason
        if link is not None:
            link.write(proto.encode_close(self.id, code, reason))
        self._link = None
        self._wake(self._receive_waiter)

    # -- ending -----------------------------------------------------------------------------

    def finish(self, error: BaseException | None) -> None:
        """Called when the app call has returned or raised: end the stream for the router."""
        http = self._http
        if http is not None:
            http.finish(error)
            self._http = None
            self._link = None
            return
        link = self._link
        state = self._state
        if state == _CONNECTING:
            if error is not None:
                logger.error("Exception in ASGI application", exc_info=error)
            else:
                logger.error("ASGI callable returned without accepting or closing the WebSocket.")
            if link is not None:
                link.write(internal_error_response(self.id))
        elif state == _CONNECTED:
            if error is not None:
                logger.error("Exception in ASGI application", exc_info=error)
            if link is not None:
                code = 1011 if error is not None else 1000
                link.write(proto.encode_close(self.id, code, ""))
        elif error is not None and not isinstance(error, ClientDisconnected):
            logger.debug("ASGI application raised after the WebSocket closed: %r", error)
        self._state = _CLOSED
        self._link = None
        self._messages = None
        self._partial = None
