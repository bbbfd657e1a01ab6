"""End-to-end fixtures: start the real server (router + workers) as a subprocess.

The server is started exactly as a user would (``python -m saltare MODULE:ATTR ...``) on port
0 or a temporary Unix socket; readiness is the router's "listening on ..." log line, never a
sleep.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

APPS = Path(__file__).parent / "apps"
READY = re.compile(r"listening on (\S+)")


class Server:
    """A running saltare process tree; ``url`` is set once it is ready."""

    def __init__(self, app: str, *args: str, env: dict[str, str] | None = None) -> None:
        self.app = app
        self.args = list(args)
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "saltare", app, "--app-dir", str(APPS), *self.args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=full_env,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._ready = threading.Event()
        self.url = ""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        with self.proc.stderr:
            for raw in self.proc.stderr:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                self.lines.append(line)
                match = READY.search(line)
                if match and not self._ready.is_set():
                    self.url = match.group(1)
                    self._ready.set()
        self._ready.set()

    def wait_ready(self, timeout: float = 30.0) -> Server:
        if not self._ready.wait(timeout) or not self.url:
            self.kill()
            raise RuntimeError("server did not become ready:\n" + self.log)
        return self

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    def wait_log(self, pattern: str, timeout: float = 10.0) -> str:
        """Wait until a log line matches ``pattern`` (a regex); return that line."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            lines = self.lines
            for line in lines[seen:]:
                if regex.search(line):
                    return line
            seen = len(lines)
            time.sleep(0.02)
        raise AssertionError(f"no log line matching {pattern!r} in:\n{self.log}")

    def pids(self) -> list[int]:
        """Every process of the server's tree (supervisor first)."""
        result = [self.proc.pid]
        i = 0
        while i < len(result):
            pid = result[i]
            try:
                for task in os.listdir(f"/proc/{pid}/task"):
                    with open(f"/proc/{pid}/task/{task}/children") as fh:
                        result.extend(int(c) for c in fh.read().split())
            except FileNotFoundError:
                pass
            i += 1
        return result

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise
        self._reader.join(5)
        return code

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self._reader.join(5)


@pytest.fixture
def serve() -> Iterator[type[Server]]:
    """``serve("app:app", "--workers", "2")`` starts a server and waits until it is ready."""
    started: list[Server] = []

    def start(
        app: str, *args: str, env: dict[str, str] | None = None, ready: bool = True
    ) -> Server:
        server = Server(app, "--port", "0", *args, env=env)
        started.append(server)
        return server.wait_ready() if ready else server

    yield start  # type: ignore[misc]
    for server in started:
        # Kill the whole process group even if the supervisor is gone (a test may have killed
        # it alone), so nothing outlives the test; the log is shown if the test failed.
        server.kill()
        print(f"--- server log: {server.app} {' '.join(server.args)} ---\n{server.log}")


@pytest.fixture
def calls(tmp_path: Path) -> Callable[[], list[str]]:
    """Lines an app appended to a file (the app gets its path via ``calls.path``)."""
    path = tmp_path / "calls.txt"
    path.touch()

    def read() -> list[str]:
        return path.read_text().splitlines()

    read.path = str(path)  # type: ignore[attr-defined]
    return read
