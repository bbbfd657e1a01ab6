"""saltare: a low-memory ASGI server (TypeScript router on Bun, forked Python workers)."""

from ._importer import AppImportError
from ._options import ConfigError
from ._server import run
from ._supervisor import ServerError

__version__ = "0.1.0"

__all__ = ["AppImportError", "ConfigError", "ServerError", "__version__", "run"]
