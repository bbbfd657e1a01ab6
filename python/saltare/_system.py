"""The few Linux/glibc calls saltare makes through ctypes, in one place."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
from functools import cache
from typing import Any

__all__ = ["die_with_parent", "limit_malloc_arenas", "malloc_trim"]

_PR_SET_PDEATHSIG = 1
_M_ARENA_MAX = -8


@cache
def _libc() -> Any:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None


def limit_malloc_arenas() -> None:
    """Apply MALLOC_ARENA_MAX=2 to this process unless the user chose a value.

    glibc reads the variable only at start-up, so for a running interpreter (``saltare.run``
    called from an existing program) the same limit is set through ``mallopt``. Child
    processes inherit the variable.
    """
    if "MALLOC_ARENA_MAX" in os.environ:
        return
    os.environ["MALLOC_ARENA_MAX"] = "2"
    libc = _libc()
    if libc is not None and hasattr(libc, "mallopt"):
        libc.mallopt(_M_ARENA_MAX, 2)


def malloc_trim() -> None:
    """Return free heap pages to the OS (glibc); a no-op elsewhere."""
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


def die_with_parent(parent: int) -> None:
    """Have the kernel SIGKILL this process when its parent dies (no orphans).

    ``parent`` is the pid the caller expects as its parent; if that one is already gone
    (it died between fork and this call), exit at once.
    """
    libc = _libc()
    if libc is not None and hasattr(libc, "prctl"):
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)
