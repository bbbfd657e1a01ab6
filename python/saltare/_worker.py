"""A worker process: one asyncio loop running the ASGI app for requests the router sends.

The worker holds no client connection state: it owns one Unix socket to the router and, per
request in flight, one ``HttpStream``. Everything else (HTTP parsing, timeouts, keep-alive)
is the router's job.
"""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any, cast

from . import _protocol as proto
from ._http import HttpStream
from ._lifespan import Lifespan
from ._logging import logger
from ._scope import build_http_scope, build_websocket_scope, set_server_cert
from ._system import malloc_trim
from ._websocket import WebSocketStream

__all__ = ["EXIT_RECYCLED", "EXIT_STARTUP_FAILED", "RouterLink", "run_worker"]

EXIT_STARTUP_FAILED = 3
#: The router recycled this worker (SHUTDOWN with reason recycle): the supervisor replaces it.
EXIT_RECYCLED = 5


class RouterLink(asyncio.Protocol):
    """The worker's end of the socket to the router: decodes frames, runs app calls."""

    def __init__(self, worker: Worker) -> None:
        self._worker = worker
        self._decoder = proto.Decoder()
        self._transport: asyncio.Transport | None = None
        self._out: list[bytes] = []
        self._flush_scheduled = False
        self._loop = asyncio.get_running_loop()
        self.streams: dict[int, HttpStream | WebSocketStream] = {}
        self.closed = self._loop.create_future()
        self.tasks: set[asyncio.Task[None]] = set()

    # -- transport callbacks ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        for stream in list(self.streams.values()):
            stream.on_disconnect()
        if not self.closed.done():
            self.closed.set_result(None)

    def data_received(self, data: bytes) -> None:
        try:
            self._handle_frames(self._decoder.feed(data))
        except proto.ProtocolError as exc:
            logger.error("Protocol error from the router: %s", exc)
            if self._transport is not None:
                self._transport.close()

    def _handle_frames(self, frames: list[tuple[int, int, int, bytes]]) -> None:
        streams = self.streams
        for ftype, flags, stream_id, payload in frames:
            if ftype == proto.REQUEST:
                self._on_request(stream_id, flags, payload)
            elif ftype == proto.BODY:
                stream = streams.get(stream_id)
                if stream is not None:
                    stream.on_body(payload, bool(flags & proto.FLAG_END))
            elif ftype == proto.WINDOW:
                stream = streams.get(stream_id)
                if stream is not None:
                    stream.on_window(proto.decode_window(payload))
            elif ftype == proto.MESSAGE:
                stream = streams.get(stream_id)
                if type(stream) is WebSocketStream:
                    kind, data = proto.decode_message(payload)
                    stream.on_message(kind, data, bool(flags & proto.FLAG_END))
            elif ftype == proto.CLOSE:
                stream = streams.get(stream_id)
                if type(stream) is WebSocketStream:
                    stream.on_close(*proto.decode_close(payload))
            elif ftype == proto.RESET:
                stream = streams.get(stream_id)
                if stream is not None:
                    stream.on_disconnect()
            elif ftype == proto.SHUTDOWN:
                reason = proto.decode_shutdown(payload)
                self._worker.request_stop(
                    from_router=True, recycle=reason == proto.SHUTDOWN_RECYCLE
                )
            elif ftype == proto.PING:
                self.write(proto.encode_control(proto.PONG, payload))

    # -- requests ---------------------------------------------------------------------------

    def _on_request(self, stream_id: int, flags: int, payload: bytes) -> None:
        fields, body = proto.decode_request(payload)
        worker = self._worker
        stream: HttpStream | WebSocketStream
        if fields[1] in (b"ws", b"wss"):
            scope = build_websocket_scope(fields, worker.root_path, worker.lifespan_state)
            stream = WebSocketStream(self, stream_id)
        else:
            scope = build_http_scope(fields, worker.root_path, worker.lifespan_state)
            # A new stream per request, never a pooled one: an app may keep receive/send past
            # its return (a task it spawned), and a reused object would hand it another request.
            stream = HttpStream(
                self,
                stream_id,
                body,
                bool(flags & proto.FLAG_END),
                bool(flags & proto.FLAG_CONTINUE),
            )
        self.streams[stream_id] = stream
        task = self._loop.create_task(self._run_app(stream, scope))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run_app(self, stream: HttpStream | WebSocketStream, scope: dict[str, Any]) -> None:
        error: BaseException | None = None
        try:
            await self._worker.app(scope, stream.receive, stream.send)
        except asyncio.CancelledError:
            error = None
            stream.on_disconnect()
        except Exception as exc:
            error = exc
        finally:
            stream.finish(error)
            del self.streams[stream.id]

    # -- output -----------------------------------------------------------------------------

    def write(self, frame: bytes) -> None:
        """Send a frame: at once when it is the only thing to send, else batched.

        With one stream in flight nothing else could join the batch, and waiting a loop turn
        only adds latency (measured: ~3% of a 1-connection FastAPI request). With several,
        frames queued in one loop iteration go out in one write.
        """
        if not self._flush_scheduled and len(self.streams) <= 1:
            transport = self._transport
            if transport is not None:
                transport.write(frame)
            return
        self._out.append(frame)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        out = self._out
        if not out:
            return
        self._out = []
        transport = self._transport
        if transport is None:
            return
        transport.write(out[0] if len(out) == 1 else b"".join(out))

    def close(self) -> None:
        self._flush()
        if self._transport is not None:
            self._transport.close()


class Worker:
    def __init__(self, app: Any, config: dict[str, Any], slot: int) -> None:
        self.app = app
        self.slot = slot
        self.root_path: str = config["root_path"]
        set_server_cert(config.get("ssl_certfile"))
        self._shutdown_timeout: float = config["shutdown_timeout"]
        self.lifespan = Lifespan(app, config["lifespan"])
        self.lifespan_state: dict[str, Any] | None = None
        self._stop = asyncio.Event()
        self._grace = self._shutdown_timeout
        self._recycled = False
        self._generation: int = config.get("generation", 0)

    def request_stop(self, *, from_router: bool = False, recycle: bool = False) -> None:
        # After the router's SHUTDOWN nothing in flight is still wanted (the router drained
        # first); after a SIGTERM sent to this worker alone, in-flight requests may finish.
        self._grace = 0.0 if from_router else self._shutdown_timeout
        self._recycled = recycle
        self._stop.set()

    async def run(self, socket_path: str) -> int:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.request_stop)
        _, link = await loop.create_unix_connection(lambda: RouterLink(self), socket_path)
        link.write(proto.encode_hello(os.getpid(), self.slot, self._generation))
        if not await self.lifespan.startup():
            link.close()
            return EXIT_STARTUP_FAILED
        if self.lifespan.supported:
            self.lifespan_state = self.lifespan.state
        malloc_trim()
        link.write(proto.encode_control(proto.READY))
        logger.debug("Worker %d (pid %d) ready", self.slot, os.getpid())
        stop_wait = loop.create_task(self._stop.wait())
        await asyncio.wait({stop_wait, link.closed}, return_when=asyncio.FIRST_COMPLETED)
        stop_wait.cancel()
        # Streams still running get until the shutdown timeout (the router drains first, so
        # normally nothing is left here).
        pending = set(link.tasks)
        if pending and self._grace > 0:
            _, pending = await asyncio.wait(pending, timeout=self._grace)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=1.0)
        await self.lifespan.shutdown()
        link.close()
        return EXIT_RECYCLED if self._recycled else 0


def run_worker(app: Any, config: dict[str, Any], socket_path: str, slot: int) -> int:
    """Entry point of a forked worker; returns its exit status."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the
    # supervisor turns it into an orderly drain that ends with a SHUTDOWN frame.
    loop_kind = config["loop"]
    loop: asyncio.AbstractEventLoop
    if loop_kind in ("auto", "uvloop"):
        try:
            import uvloop  # noqa: PLC0415

            loop = uvloop.new_event_loop()
        except ImportError:
            if loop_kind == "uvloop":
                logger.error("--loop uvloop was given but uvloop is not installed")
                return 1
            loop = asyncio.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        worker = Worker(app, config, slot)
        return loop.run_until_complete(worker.run(socket_path))
    finally:
        loop.close()
