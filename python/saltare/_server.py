"""``run()``: validate options, load the app, supervise the router and workers."""

from __future__ import annotations

import os
import sys
from typing import Any

from ._importer import load_app
from ._listen import prepare_listen_fd
from ._logging import configure, logger
from ._options import resolve
from ._supervisor import Supervisor
from ._system import limit_malloc_arenas

__all__ = ["run"]


def run(app: Any, **options: Any) -> int:
    """Serve ``app`` (an ASGI callable or a ``"module:attr"`` string) until stopped.

    Options are the keyword names of the option table (see ``saltare --help``), e.g.
    ``host``, ``port``, ``workers``. Invalid options raise ``ConfigError`` before anything
    starts. Returns the exit status (0 after a graceful stop). Callable from a background
    thread; signals are only handled when called from the main thread.
    """
    config = resolve(options)
    prepare_listen_fd(config)
    configure(config["log_level"], config["log_format"])
    python = config["python"]
    if python and os.path.realpath(python) != os.path.realpath(sys.executable):
        raise ValueError(
            "the 'python' option only applies to the command line; from Python, "
            "saltare runs the app in the calling interpreter"
        )
    limit_malloc_arenas()
    loaded = load_app(app, app_dir=config["app_dir"], factory=config["factory"])
    logger.info("Started saltare [%d]", os.getpid())
    return Supervisor(loaded, config).run()
