"""Error classes shared by the command line and ``saltare.run``."""

from __future__ import annotations

__all__ = ["ServerError"]


class ServerError(Exception):
    """The server could not start or stopped abnormally; ``exit_code`` is for the CLI."""

    code = "SERVER_ERROR"

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code
