"""The server's own log lines, formatted like the router's (src/log.ts).

``text``: ``LEVEL:    message``. ``json``: one object per line with the same keys the router
writes (``time``, ``level``, ``logger``, ``pid``, ``message``), so a log shipper can parse both
processes' lines alike.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time

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


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = super().format(record)  # includes a formatted traceback, if any
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        entry = {
            "time": f"{stamp}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": os.getpid(),
            "message": message,
        }
        # ensure_ascii: control characters and non-ASCII are escaped, one line per record.
        return json.dumps(entry, ensure_ascii=True)


def configure(level: str, log_format: str = "text") -> None:
    """Send saltare's log records to stderr at ``level`` in ``log_format``; idempotent."""
    logger.setLevel(_LEVELS[level])
    logger.propagate = False
    formatter = _JsonFormatter("%(message)s") if log_format == "json" else _Formatter("%(message)s")
    if not logger.handlers:
        logger.addHandler(logging.StreamHandler(sys.stderr))
    for handler in logger.handlers:
        handler.setFormatter(formatter)
