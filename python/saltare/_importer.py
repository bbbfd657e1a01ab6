"""Load the ASGI application from a ``MODULE:ATTR`` string."""

from __future__ import annotations

import importlib
import sys
from typing import Any

__all__ = ["AppImportError", "load_app"]


class AppImportError(Exception):
    """The app string is malformed or names something that does not exist.

    Exceptions raised by the app's own module while importing are not wrapped: their
    traceback is what the user needs to see.
    """

    code = "APP_IMPORT"


def load_app(target: Any, *, app_dir: str = ".", factory: bool = False) -> Any:
    """Return the ASGI callable named by ``target`` (or ``target`` itself if not a string)."""
    if not isinstance(target, str):
        app = target
    else:
        module_name, sep, attrs = target.partition(":")
        if not sep or not module_name or not attrs:
            raise AppImportError(
                f"app must be given as 'MODULE:ATTRIBUTE' (e.g. main:app), got {target!r}"
            )
        if app_dir:
            path = app_dir if app_dir != "." else ""
            if path not in sys.path[:1]:
                sys.path.insert(0, path)
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name and not module_name.startswith(f"{exc.name}."):
                raise
            raise AppImportError(f"could not import module {module_name!r}") from None
        app = module
        try:
            for attr in attrs.split("."):
                app = getattr(app, attr)
        except AttributeError:
            raise AppImportError(f"module {module_name!r} has no attribute {attrs!r}") from None
    if factory:
        if not callable(app):
            raise AppImportError(f"--factory was given but {target!r} is not callable")
        app = app()
    if not callable(app):
        raise AppImportError(f"{target!r} is not an ASGI application (not callable)")
    return app
