"""The server's own log lines, formatted like the router's (``LEVEL:    message``)."""

from __future__ import annotations

import logging
import sys

__all__ = ["TRACE", "configure", "logger"]

TRACE = 5
logging.addLevelName(TRACE, "TRACE")

logger = logging.getLogger("saltare")

_LEVELS = {
    "critical": logging.CRITICAL,
    "error": logging.ERROR,
    "warning": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
    "trace": TRACE,
}


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        prefix = f"{record.levelname}:".ljust(10)
        return prefix + text


def configure(level: str) -> None:
    """Send saltare's log records to stderr at ``level``; idempotent."""
    logger.setLevel(_LEVELS[level])
    logger.propagate = False
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_Formatter("%(message)s"))
        logger.addHandler(handler)
