"""Memory and CPU readings summed over a server's whole process tree (Linux /proc).

The tree is walked from the launcher through ``/proc/PID/task/*/children`` on every reading, so a
router, a zygote and workers forked after start are all counted. Measuring only the launcher is the
flaw of the original saltare harness that this module exists to avoid.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

_CLK_TCK = os.sysconf("SC_CLK_TCK")
_FIELDS = {"Rss:": "rss", "Pss:": "pss", "Anonymous:": "anon"}


@dataclass(frozen=True)
class Memory:
    """Sums over a process tree, in bytes."""

    rss: int
    pss: int
    anon: int
    procs: int

    def to_json(self) -> dict[str, int]:
        return asdict(self)


def tree_pids(root: int) -> list[int]:
    """``root`` and all its descendants that are alive right now (root first)."""
    pids: list[int] = []
    pending = [root]
    seen: set[int] = set()
    while pending:
        pid = pending.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            tasks = list(Path(f"/proc/{pid}/task").iterdir())
        except (FileNotFoundError, ProcessLookupError):
            continue
        pids.append(pid)
        for task in tasks:
            try:
                children = (task / "children").read_text().split()
            except (FileNotFoundError, ProcessLookupError):
                continue
            pending.extend(int(child) for child in children)
    return pids


def _smaps_rollup(pid: int) -> tuple[int, int, int] | None:
    values = {"rss": 0, "pss": 0, "anon": 0}
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as fh:
            text = fh.read().decode("ascii", "replace")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] in _FIELDS:
            values[_FIELDS[parts[0]]] = int(parts[1]) * 1024  # the kernel reports kB
    if not text:
        return None  # a zombie has no address space left to read
    return values["rss"], values["pss"], values["anon"]


def read_tree(root: int) -> Memory:
    """Rss, Pss and Anonymous summed over every live process of the tree rooted at ``root``."""
    rss = pss = anon = procs = 0
    for pid in tree_pids(root):
        reading = _smaps_rollup(pid)
        if reading is None:
            continue
        rss += reading[0]
        pss += reading[1]
        anon += reading[2]
        procs += 1
    return Memory(rss=rss, pss=pss, anon=anon, procs=procs)


def cpu_seconds(root: int) -> float:
    """utime + stime of every live process of the tree, in seconds (all threads included)."""
    ticks = 0
    for pid in tree_pids(root):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        # Fields after the command name, which may itself contain spaces and parentheses.
        fields = stat[stat.rindex(")") + 2 :].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15 of proc(5)
    return ticks / _CLK_TCK


class PeakSampler:
    """Samples the tree every ``interval`` seconds in a thread; keeps the peaks and every sample."""

    def __init__(self, root: int, interval: float = 0.010) -> None:
        self._root = root
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="peak-sampler", daemon=True)
        self.samples: list[tuple[float, int, int, int, int]] = []  # t, rss, pss, anon, procs

    def __enter__(self) -> PeakSampler:
        self._t0 = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            m = read_tree(self._root)
            self.samples.append(
                (round(time.monotonic() - self._t0, 4), m.rss, m.pss, m.anon, m.procs)
            )
            if self._stop.wait(self._interval):
                return

    def peak(self) -> Memory:
        """The highest value of each field over all samples (taken independently)."""
        if not self.samples:
            return read_tree(self._root)
        return Memory(
            rss=max(s[1] for s in self.samples),
            pss=max(s[2] for s in self.samples),
            anon=max(s[3] for s in self.samples),
            procs=max(s[4] for s in self.samples),
        )
