"""The ASGI lifespan protocol, run once per worker (ASGI spec, "Lifespan Protocol")."""

from __future__ import annotations

import asyncio
from typing import Any

from ._logging import logger
from ._scope import ASGI_VERSION

__all__ = ["Lifespan"]


class Lifespan:
    """Drives ``lifespan.startup`` and ``lifespan.shutdown`` for one app in one worker.

    ``mode`` is the ``--lifespan`` option: "auto" tolerates apps that raise on the lifespan
    scope (logged at debug level, like uvicorn), "on" treats that as a startup failure, "off"
    never calls the app with a lifespan scope.
    """

    def __init__(self, app: Any, mode: str) -> None:
        self._app = app
        self._mode = mode
        self.state: dict[str, Any] = {}
        self.supported = mode != "off"
        self.failure: str | None = None
        self._events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._startup_done = asyncio.Event()
        self._shutdown_done = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def startup(self) -> bool:
        """Run startup; return False if the app reported (or caused) a startup failure."""
        if not self.supported:
            return True
        self._task = asyncio.get_running_loop().create_task(self._main())
        await self._events.put({"type": "lifespan.startup"})
        await self._startup_done.wait()
        return self.failure is None

    async def shutdown(self) -> None:
        if not self.supported or self._task is None or self._task.done():
            return
        await self._events.put({"type": "lifespan.shutdown"})
        await self._shutdown_done.wait()

    async def _main(self) -> None:
        scope = {"type": "lifespan", "asgi": ASGI_VERSION, "state": self.state}
        try:
            await self._app(scope, self._receive, self._send)
        except BaseException as exc:
            if not self._startup_done.is_set() and self._mode == "auto":
                logger.debug("ASGI 'lifespan' protocol appears unsupported (%r).", exc)
                self.supported = False
            elif not self._startup_done.is_set():
                logger.error("Exception in 'lifespan' protocol", exc_info=exc)
                self.failure = "exception during lifespan startup"
            else:
                logger.error("Exception in 'lifespan' protocol", exc_info=exc)
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
        finally:
            self._startup_done.set()
            self._shutdown_done.set()

    async def _receive(self) -> dict[str, Any]:
        return await self._events.get()

    async def _send(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "lifespan.startup.complete":
            self._startup_done.set()
        elif kind == "lifespan.startup.failed":
            self.failure = str(message.get("message", "") or "lifespan startup failed")
            logger.error("Application startup failed: %s", self.failure)
            self._startup_done.set()
        elif kind == "lifespan.shutdown.complete":
            self._shutdown_done.set()
        elif kind == "lifespan.shutdown.failed":
            logger.error("Application shutdown failed: %s", message.get("message", ""))
            self._shutdown_done.set()
        else:
            raise RuntimeError(f"Unexpected ASGI lifespan message {kind!r}.")
