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

import json
import os
import sys
import traceback
from typing import Any

from ._importer import AppImportError, load_app
from ._logging import configure
from ._system import die_with_parent, limit_malloc_arenas
from ._worker import run_worker


def main() -> int:
    die_with_parent(os.getppid())
    config: dict[str, Any] = json.loads(os.environ.pop("SALTARE_CHILD_CONFIG"))
    configure(config["log_level"], config.get("log_format", "text"))
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
    from ._supervisor import Supervisor  # noqa: PLC0415 - a lone worker does without it

    return Supervisor(app, config, with_router=False).run()


if __name__ == "__main__":
    raise SystemExit(main())
