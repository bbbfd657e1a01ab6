"""One HTTP request inside a worker: the ASGI ``receive``/``send`` pair and its flow control.

A ``HttpStream`` lives exactly as long as one app call; afterwards ``receive`` reports a
disconnect and nothing ``send`` is given reaches the wire, whoever still holds them.
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import _protocol as proto
from ._logging import logger

if TYPE_CHECKING:
    from ._worker import RouterLink

__all__ = ["HttpStream", "internal_error_response"]

# RFC 9110 §5.1 token for names; §5.5 field values: no CTLs except HTAB. Checking here means a
# bad header raises inside the app (as uvicorn does) and never reaches the router or the wire.
_BAD_NAME = re.compile(rb"[^!#$%&'*+\-.^_`|~0-9A-Za-z]")
_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")

_DISCONNECT: dict[str, Any] = {"type": "http.disconnect"}
_EMPTY_BODY_END = {"type": "http.request", "body": b"", "more_body": False}

# Largest body frame the worker sends; bigger app chunks are split (they still obey the window).
_MAX_CHUNK = 64 * 1024


_INTERNAL_ERROR_HEADERS = (
    (b"content-type", b"text/plain; charset=utf-8"),
    (b"connection", b"close"),
    (b"content-length", b"21"),
)


def internal_error_response(stream_id: int) -> bytes:
    """The whole 500 RESPONSE frame for an app that failed before its response started."""
    return proto.encode_response(
        stream_id, 500, _INTERNAL_ERROR_HEADERS, b"Internal Server Error", True
    )


class HttpStream:
    __slots__ = (
        "_body",
        "_body_done",
        "_continue",
        "_head_sent",
        "_headers",
        "_link",
        "_receive_waiter",
        "_send_waiter",
        "_status",
        "_window",
        "complete",
        "disconnected",
        "id",
        "receive",
        "send",
        "started",
    )

    def __init__(
        self,
        link: RouterLink,
        stream_id: int,
        body: bytes,
        body_done: bool,
        expect_continue: bool = False,
    ) -> None:
        self._link: RouterLink | None = link
        self.id = stream_id
        self._body: deque[bytes] = deque()
        if body or body_done:
            self._body.append(body)
        self._body_done = body_done
        # The client waits for "100 Continue" until the app asks for the body (protocol.md).
        self._continue = expect_continue
        self._head_sent = False
        self._headers: list[Any] = []
        self._status = 0
        self._window = proto.INITIAL_WINDOW
        self._receive_waiter: asyncio.Future[None] | None = None
        self._send_waiter: asyncio.Future[None] | None = None
        self.started = False
        self.complete = False
        self.disconnected = False
        # Bound once here so the scope's consumers get the same callables every time.
        self.receive: Callable[[], Any] = self._receive
        self.send: Callable[[Any], Any] = self._send

    # -- events from the router ---------------------------------------------------------

    def on_body(self, data: bytes, end: bool) -> None:
        self._continue = False
        if self._body_done:
            return
        if data or end:
            self._body.append(data)
        self._body_done = end
        self._wake_receiver()

    def on_window(self, increment: int) -> None:
        self._window += increment
        waiter = self._send_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def on_disconnect(self) -> None:
        self.disconnected = True
        self._wake_receiver()
        waiter = self._send_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _wake_receiver(self) -> None:
        waiter = self._receive_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- ASGI receive ---------------------------------------------------------------------

    async def _receive(self) -> dict[str, Any]:
        while True:
            if self._body:
                chunk = self._body.popleft()
                more = bool(self._body) or not self._body_done
                link = self._link
                if chunk and more and link is not None and not self.disconnected:
                    # Give the router back the credit this chunk used (docs/protocol.md).
                    link.write(proto.encode_window(self.id, len(chunk)))
                if not chunk and not more:
                    return _EMPTY_BODY_END.copy()
                return {"type": "http.request", "body": chunk, "more_body": more}
            if self._continue:
                self._continue = False
                if self._link is not None and not self.disconnected and not self.started:
                    self._link.write(proto.encode_continue(self.id))
            if self.disconnected or self.complete:
                # ASGI: after the body, receive() blocks until the client goes away or the
                # response is done (uvicorn does the same), then reports the disconnect.
                return _DISCONNECT.copy()
            loop = asyncio.get_running_loop()
            waiter = loop.create_future()
            self._receive_waiter = waiter
            try:
                await waiter
            finally:
                self._receive_waiter = None

    # -- ASGI send --------------------------------------------------------------------------

    async def _send(self, message: Any) -> None:
        kind = message["type"]
        if not self.started:
            if kind != "http.response.start":
                raise RuntimeError(
                    f"Expected ASGI message 'http.response.start', but got {kind!r}."
                )
            status = message["status"]
            if type(status) is not int or not 100 <= status <= 599:
                raise RuntimeError(f"Invalid HTTP status code {status!r} in response.")
            headers = message.get("headers", ())
            checked: list[Any] = []
            for header in headers:
                name, value = header
                if type(name) is not bytes or type(value) is not bytes:
                    raise RuntimeError("ASGI response header names and values must be bytes.")
                if _BAD_NAME.search(name) or not name:
                    raise RuntimeError(f"Invalid HTTP header name {name!r}.")
                if _BAD_VALUE.search(value):
                    raise RuntimeError(f"Invalid HTTP header value {value!r}.")
                checked.append(header)
            self._status = status
            self._headers = checked
            self.started = True
            # The head is held back until the first body message so that the common
            # response travels as one RESPONSE frame with its whole body.
            return
        if self.complete:
            raise RuntimeError(
                f"Unexpected ASGI message {kind!r} sent, after response already completed."
            )
        if kind != "http.response.body":
            raise RuntimeError(f"Expected ASGI message 'http.response.body', but got {kind!r}.")
        body = message.get("body", b"")
        if type(body) is not bytes:
            if isinstance(body, (bytearray, memoryview)):
                body = bytes(body)
            else:
                raise RuntimeError("ASGI 'http.response.body' body must be bytes.")
        more = bool(message.get("more_body", False))
        if not more:
            self.complete = True
            self._wake_receiver()
        if self.disconnected:
            # The client is gone; like uvicorn, further sends are silently dropped.
            return
        link = self._link
        if link is None:
            return
        if len(body) <= self._window and len(body) <= _MAX_CHUNK:
            self._window -= len(body)
            link.write(self._frame(body, not more))
            return
        view = memoryview(body)
        offset = 0
        total = len(body)
        while True:
            while self._window <= 0:
                await self._wait_window()
                if self.disconnected:
                    return
            size = min(self._window, _MAX_CHUNK, total - offset)
            part = bytes(view[offset : offset + size])
            offset += size
            self._window -= size
            last = offset >= total
            link.write(self._frame(part, last and not more))
            if last:
                return

    def _frame(self, body: bytes, end: bool) -> bytes:
        if self._head_sent:
            return proto.encode_body(self.id, body, end)
        self._head_sent = True
        return proto.encode_response(self.id, self._status, self._headers, body, end)

    async def _wait_window(self) -> None:
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        self._send_waiter = waiter
        try:
            await waiter
        finally:
            self._send_waiter = None

    # -- ending -----------------------------------------------------------------------------

    def finish(self, error: BaseException | None) -> None:
        """Called when the app call has returned or raised: make sure the router gets an end."""
        link = self._link
        if link is None:
            return
        if error is not None and self.disconnected:
            # Typical after the client left (e.g. Starlette's ClientDisconnect): not a bug.
            logger.debug("ASGI application raised after the client disconnected: %r", error)
            error = None
            self.complete = True
        if not self._head_sent and self.disconnected and error is None:
            # Cancelled or returned after the client left (or the router gave up): nothing
            # can reach the client any more, and nothing is wrong with the app.
            self.complete = True
        elif not self._head_sent:
            if error is not None:
                logger.error("Exception in ASGI application", exc_info=error)
            elif not self.started:
                logger.error("ASGI callable returned without starting response.")
            elif not self.complete:
                logger.error("ASGI callable returned without completing response.")
            if error is not None or not self.complete:
                # Nothing is on the wire yet, so the client still gets a clean 500.
                if not self.disconnected:
                    link.write(internal_error_response(self.id))
                self.complete = True
        elif not self.complete or error is not None:
            if error is not None:
                logger.error("Exception in ASGI application", exc_info=error)
            else:
                logger.error("ASGI callable returned without completing response.")
            if not self.disconnected and not self.complete:
                link.write(proto.encode_reset(self.id, proto.RESET_APP_ERROR, "app error"))
            self.complete = True
        self._link = None
        self._body.clear()
        self._headers = []
