"""The ``saltare`` command: ``saltare MODULE:ATTR [options]``.

Exit codes: 0 after a graceful stop, 1 when the app cannot be imported or the server cannot
start (e.g. address in use), 2 for a bad option, 3 when lifespan startup fails.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, NoReturn

from . import __version__
from ._listen import prepare_listen_fd
from ._logging import configure, logger
from ._options import OPTIONS, ConfigError, resolve

__all__ = ["main"]

EXIT_USAGE = 2
_METAVARS = {"int": "N", "float": "SECONDS", "size": "BYTES", "str": "TEXT", "mode": "MODE"}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line naming the problem, instead of argparse's usage dump.
        sys.stderr.write(f"saltare: error: {message} (see saltare --help)\n")
        raise SystemExit(EXIT_USAGE)


def _build_parser() -> _Parser:
    parser = _Parser(
        prog="saltare",
        description="Serve an ASGI application through saltare's Bun router and Python workers.",
        epilog="Every option can also be set with an environment variable SALTARE_<NAME>, "
        "e.g. SALTARE_PORT=9000.",
        allow_abbrev=False,
    )
    parser.add_argument("app", metavar="MODULE:ATTR", help="the ASGI application, e.g. main:app")
    for opt in OPTIONS:
        default = opt.default
        shown = "" if default is None or default == () else f" (default: {default})"
        if opt.kind == "bool":
            # --x turns it on, --no-x off (the default may be either).
            parser.add_argument(
                opt.flag,
                dest=opt.name,
                action=argparse.BooleanOptionalAction,
                default=argparse.SUPPRESS,
                help=opt.help + f"{shown} [env {opt.env}]",
            )
            continue
        if opt.kind == "list":
            parser.add_argument(
                opt.flag,
                dest=opt.name,
                action="append",
                metavar=opt.metavar or "TEXT",
                default=argparse.SUPPRESS,
                help=f"{opt.help} [env {opt.env}, comma-separated]",
            )
            continue
        parser.add_argument(
            opt.flag,
            dest=opt.name,
            metavar=opt.metavar or _METAVARS.get(opt.kind) or "{" + ",".join(opt.choices) + "}",
            default=argparse.SUPPRESS,
            help=f"{opt.help}{shown} [env {opt.env}]",
        )
    parser.add_argument("--version", action="version", version=f"saltare {__version__}")
    return parser


def _package_parent() -> str:
    """The directory holding the saltare package, for another interpreter's PYTHONPATH."""
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    namespace = _build_parser().parse_args(args)
    given: dict[str, Any] = vars(namespace).copy()
    app = given.pop("app")
    try:
        config = resolve(given)
        prepare_listen_fd(config)
    except ConfigError as exc:
        sys.stderr.write(f"saltare: error: {exc}\n")
        return EXIT_USAGE
    # The router becomes this process (exec): no Python process stays behind holding a copy
    # of the app. It spawns the Python side with this interpreter or --python.
    from ._errors import ServerError  # noqa: PLC0415
    from ._supervisor import find_bun, find_router, router_environment  # noqa: PLC0415
    from ._system import limit_malloc_arenas  # noqa: PLC0415

    limit_malloc_arenas()
    try:
        bun, router = find_bun(), find_router()
    except ServerError as exc:
        sys.stderr.write(f"saltare: error: {exc}\n")
        return exc.exit_code
    python = config["python"] or sys.executable
    if not os.access(python, os.X_OK):
        sys.stderr.write(f"saltare: error: --python {python}: not an executable file\n")
        return EXIT_USAGE
    config.update(
        app=app,
        workers=config["workers"] or os.cpu_count() or 1,
        worker_socket=None,
        mode="spawn",
        python=python,
        python_path=_package_parent() if config["python"] else None,
    )
    env = router_environment(config)
    env["SALTARE_ROUTER_CONFIG"] = json.dumps(config)
    configure(config["log_level"], config["log_format"])
    logger.info("Started saltare [%d]", os.getpid())
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(bun, [bun, "--smol", router], env)  # noqa: S606
    except OSError as exc:
        sys.stderr.write(f"saltare: error: cannot run the router with {bun}: {exc.strerror}\n")
    return 1
