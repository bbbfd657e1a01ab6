"""The Python side of a server started from the command line, spawned by the router.

The router (Bun) is then the top process. It runs ``python -m saltare._child`` once, with the
validated configuration in ``SALTARE_CHILD_CONFIG``. With one worker this process imports the
app and *is* the worker: no second Python process holds a copy of the app. With more workers it
becomes the zygote: it imports the app once, freezes the GC and forks the workers, so they
share the app's memory copy-on-write, and it replaces a worker that dies.

Exit statuses the router understands: 1 the app could not be imported (traceback above),
3 lifespan startup failed, 4 workers died in a loop (the router gives up too).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import signal
import sys
import traceback
from typing import Any

from ._importer import AppImportError, load_app
from ._logging import configure
from ._supervisor import Supervisor, limit_malloc_arenas
from ._worker import run_worker

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Ask the kernel to kill this process when the router dies (no orphans)."""
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:
        os._exit(1)


def main() -> int:
    _die_with_parent()
    config: dict[str, Any] = json.loads(os.environ.pop("SALTARE_CHILD_CONFIG"))
    configure(config["log_level"])
    limit_malloc_arenas()
    try:
        app = load_app(config["app"], app_dir=config["app_dir"], factory=config["factory"])
    except AppImportError as exc:
        sys.stderr.write(f"saltare: error: {exc}\n")
        return 1
    except Exception:
        traceback.print_exc()
        sys.stderr.write(f"saltare: error: could not import the application {config['app']!r}\n")
        return 1
    if config["workers"] == 1:
        return run_worker(app, config, config["worker_socket"], 0)
    return Supervisor(app, config, with_router=False).run()


if __name__ == "__main__":
    raise SystemExit(main())
