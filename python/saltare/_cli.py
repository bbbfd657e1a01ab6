"""The ``saltare`` command: ``saltare MODULE:ATTR [options]``.

Exit codes: 0 after a graceful stop, 1 when the app cannot be imported or the server cannot
start (e.g. address in use), 2 for a bad option, 3 when lifespan startup fails.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from typing import Any, NoReturn

from . import __version__
from ._importer import AppImportError
from ._options import OPTIONS, ConfigError, resolve
from ._supervisor import ServerError

__all__ = ["main"]

EXIT_USAGE = 2
_METAVARS = {"int": "N", "float": "SECONDS", "size": "BYTES", "str": "TEXT"}


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
        shown = "" if default is None else f" (default: {default})"
        if opt.kind == "bool":
            parser.add_argument(
                opt.flag,
                dest=opt.name,
                action="store_const",
                const=True,
                default=argparse.SUPPRESS,
                help=opt.help + f" [env {opt.env}]",
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


def _reexec_with(python: str, argv: list[str]) -> NoReturn:
    """Run the same command under another interpreter (the ``--python`` option)."""
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = package_parent + (
        os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""
    )
    env["SALTARE_REEXEC"] = "1"
    try:
        os.execve(python, [python, "-m", "saltare", *argv], env)  # noqa: S606
    except OSError as exc:
        sys.stderr.write(f"saltare: error: cannot run --python {python}: {exc.strerror}\n")
        raise SystemExit(EXIT_USAGE) from None


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    namespace = _build_parser().parse_args(args)
    given: dict[str, Any] = vars(namespace).copy()
    app = given.pop("app")
    try:
        config = resolve(given)
    except ConfigError as exc:
        sys.stderr.write(f"saltare: error: {exc}\n")
        return EXIT_USAGE
    python = config["python"]
    if (
        python
        and not os.environ.get("SALTARE_REEXEC")
        and os.path.realpath(python) != os.path.realpath(sys.executable)
    ):
        _reexec_with(python, args)
    given.pop("python", None)
    from ._importer import load_app  # noqa: PLC0415 - keeps --help fast
    from ._server import run  # noqa: PLC0415

    try:
        loaded = load_app(app, app_dir=config["app_dir"], factory=config["factory"])
    except AppImportError as exc:
        sys.stderr.write(f"saltare: error: {exc}\n")
        return 1
    except Exception:
        # Raised by the app's own module while it was imported: the traceback is what the
        # user needs to see.
        traceback.print_exc()
        sys.stderr.write(f"saltare: error: could not import the application {app!r}\n")
        return 1
    given.pop("factory", None)
    try:
        return run(loaded, **given)
    except ServerError as exc:
        sys.stderr.write(f"saltare: error: {exc}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        return 1
