"""saltare: a low-memory ASGI server (TypeScript router on Bun, forked Python workers)."""

from __future__ import annotations

from typing import Any

from ._errors import ServerError
from ._importer import AppImportError
from ._options import ConfigError

__version__ = "0.1.0"

__all__ = ["AppImportError", "ConfigError", "ServerError", "__version__", "run"]


def run(app: Any, **options: Any) -> int:
    """Serve ``app`` (an ASGI callable or a ``"module:attr"`` string) until stopped.

    See ``saltare._server.run``; imported on first use so that a worker process does not
    load the supervisor's modules.
    """
    from ._server import run as _run  # noqa: PLC0415

    return _run(app, **options)
