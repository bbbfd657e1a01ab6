"""Inherited listening sockets: ``--fd N`` and systemd socket activation (``LISTEN_FDS``).

The router (Bun) can serve a listening socket it inherited (``Bun.listen({fd})``) but cannot
tell what kind of socket it is, so this module looks at it first and hands the router its
family and local address along with the configuration.
"""

from __future__ import annotations

import os
import socket
from typing import Any

from ._logging import logger
from ._options import ConfigError

__all__ = ["SD_LISTEN_FDS_START", "prepare_listen_fd", "systemd_listen_fd"]

# sd_listen_fds(3): passed sockets start at file descriptor 3.
SD_LISTEN_FDS_START = 3


def systemd_listen_fd(environ: dict[str, str] | None = None) -> int | None:
    """The first socket systemd passed to this process, or None without socket activation.

    ``LISTEN_PID`` must name this process: the variables are inherited by children that the
    sockets were not meant for. The ``saltare`` command keeps its pid when it becomes the
    router, so the check holds there too.
    """
    env = os.environ if environ is None else environ
    if env.get("LISTEN_PID") != str(os.getpid()):
        return None
    try:
        count = int(env.get("LISTEN_FDS", "0"))
    except ValueError:
        return None
    if count < 1:
        return None
    if count > 1:
        logger.warning("systemd passed %d sockets; serving on the first one only", count)
    return SD_LISTEN_FDS_START


def describe_fd(fd: int) -> dict[str, Any]:
    """Check that ``fd`` is a listening stream socket; its family and address for the router."""
    try:
        sock = socket.socket(fileno=fd)
    except OSError as exc:
        raise ConfigError(
            f"invalid value for --fd (fd): {fd}; not an open socket ({exc.strerror})"
        ) from None
    try:
        listening = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
        if sock.type != socket.SOCK_STREAM or not listening:
            raise ConfigError(
                f"invalid value for --fd (fd): {fd}; expected a listening stream socket"
            )
        if sock.family == socket.AF_UNIX:
            name = sock.getsockname()
            path = name.decode("latin-1") if isinstance(name, bytes) else str(name)
            return {"fd_family": "unix", "fd_address": path, "fd_port": None}
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            raise ConfigError(f"invalid value for --fd (fd): {fd}; not a TCP or Unix socket")
        host, port = sock.getsockname()[:2]
        return {"fd_family": "inet", "fd_address": host, "fd_port": port}
    finally:
        sock.detach()  # the descriptor stays open for the router


def prepare_listen_fd(config: dict[str, Any]) -> None:
    """Resolve ``fd`` (the option, else socket activation) and describe it, in ``config``."""
    if config.get("fd") is None:
        config["fd"] = systemd_listen_fd()
    if config["fd"] is None:
        config.update(fd_family=None, fd_address=None, fd_port=None)
        return
    if config.get("ssl_certfile") is not None:
        raise ConfigError("--ssl-certfile cannot be used with --fd or socket activation")
    config.update(describe_fd(config["fd"]))
