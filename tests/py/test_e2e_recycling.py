"""Worker life cycle: recycling (--max-requests, --max-worker-memory), reload on SIGHUP and
with --reload, all under load and without failed requests."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

VERSIONED = """\
import os

VERSION = "{version}"
BALLAST = []


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            kind = message["type"].rsplit(".", 1)[1]
            await send({{"type": f"lifespan.{{kind}}.complete"}})
            if kind == "shutdown":
                return
    if scope["type"] == "websocket":
        await receive()
        await send({{"type": "websocket.accept"}})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            await send({{"type": "websocket.send", "text": message.get("text") or ""}})
    if scope["path"] == "/leak":
        BALLAST.append(bytearray(16 * 1024 * 1024))
    body = f"{{VERSION}} {{os.getpid()}}".encode()
    await send({{"type": "http.response.start", "status": 200, "headers": []}})
    await send({{"type": "http.response.body", "body": body}})
"""


def write_app(directory: Path, version: str) -> None:
    (directory / "versioned.py").write_text(VERSIONED.format(version=version))


def get(client: httpx.Client, path: str = "/") -> tuple[str, int]:
    response = client.get(path)
    assert response.status_code == 200, response.text
    version, pid = response.text.split()
    return version, int(pid)


class Load:
    """Requests in a loop on a few threads; every failure is kept."""

    def __init__(self, url: str, threads: int = 4) -> None:
        self.url = url
        self.ok = 0
        self.failures: list[str] = []
        self.versions: set[str] = set()
        self.pids: set[int] = set()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run) for _ in range(threads)]

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as client:
            while not self._stop.is_set():
                try:
                    response = client.get("/")
                except httpx.HTTPError as exc:
                    with self._lock:
                        self.failures.append(repr(exc))
                    continue
                with self._lock:
                    if response.status_code == 200:
                        self.ok += 1
                        version, pid = response.text.split()
                        self.versions.add(version)
                        self.pids.add(int(pid))
                    else:
                        self.failures.append(f"{response.status_code} {response.text}")

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)


@contextmanager
def load(url: str) -> Iterator[Load]:
    with Load(url) as running:
        yield running


def wait_until(predicate, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())


def test_max_requests_recycles_forked_workers_without_failed_requests(serve, tmp_path):
    write_app(tmp_path, "v1")
    server = serve(
        "versioned:app",
        "--app-dir",
        str(tmp_path),
        "--workers",
        "2",
        "--max-requests",
        "50",
        "--max-requests-jitter",
        "10",
    )
    with load(server.url) as running:
        # Two workers that last at most 60 requests each: new pids keep appearing.
        assert wait_until(lambda: running.ok >= 400 and len(running.pids) >= 5, timeout=60)
    assert running.failures == []
    server.wait_log(r"Recycling worker \d+ \[\d+\]: served \d+ requests")


def test_max_requests_with_one_worker_starts_a_fresh_process_first(serve, tmp_path):
    write_app(tmp_path, "v1")
    server = serve("versioned:app", "--app-dir", str(tmp_path), "--max-requests", "30")
    with load(server.url) as running:
        # Each replacement is a fresh Python process that imports the app first.
        assert wait_until(lambda: len(running.pids) >= 3, timeout=60)
    assert running.failures == []
    server.wait_log(r"Reloading \(recycling the worker")


def test_max_worker_memory_recycles_a_worker_that_grows(serve, tmp_path):
    write_app(tmp_path, "v1")
    server = serve(
        "versioned:app",
        "--app-dir",
        str(tmp_path),
        "--workers",
        "2",
        "--max-worker-memory",
        "80",
    )
    with httpx.Client(base_url=server.url, timeout=30) as client:
        _, first = get(client)
        # Grow the workers by 16 MiB per request until one passes 80 MiB; the sampler runs
        # every 5 s and the worker is drained and replaced, never killed mid-request.
        for _ in range(12):
            get(client, "/leak")
        line = server.wait_log(r"Recycling worker \d+ \[\d+\]: memory", timeout=30)
        assert "--max-worker-memory" in line
        assert wait_until(lambda: get(client)[1] not in (first,), timeout=30)


def test_sighup_reloads_changed_code_with_zero_failed_requests(serve, tmp_path):
    write_app(tmp_path, "v1")
    server = serve("versioned:app", "--app-dir", str(tmp_path), "--workers", "2")
    with load(server.url) as running:
        assert wait_until(lambda: running.ok >= 50)
        write_app(tmp_path, "v2")
        server.proc.send_signal(signal.SIGHUP)
        assert wait_until(lambda: "v2" in running.versions)
        done = running.ok
        assert wait_until(lambda: running.ok >= done + 50)
    assert running.failures == []
    server.wait_log(r"Reload complete: generation 1 serves with 2 worker")
    with httpx.Client(base_url=server.url) as client:
        assert {get(client)[0] for _ in range(10)} == {"v2"}


def test_a_reload_whose_code_fails_keeps_the_old_workers(serve, tmp_path):
    write_app(tmp_path, "v1")
    server = serve("versioned:app", "--app-dir", str(tmp_path))
    (tmp_path / "versioned.py").write_text("raise RuntimeError('broken on purpose')\n")
    server.proc.send_signal(signal.SIGHUP)
    server.wait_log(r"Reload failed")
    assert "broken on purpose" in server.log
    with httpx.Client(base_url=server.url) as client:
        assert get(client)[0] == "v1"
    # A later, fixed reload still works.
    write_app(tmp_path, "v3")
    server.proc.send_signal(signal.SIGHUP)
    with httpx.Client(base_url=server.url) as client:
        assert wait_until(lambda: get(client)[0] == "v3")


def test_reload_option_picks_up_an_edit(serve, tmp_path):
    write_app(tmp_path, "v1")
    server = serve("versioned:app", "--app-dir", str(tmp_path), "--reload")
    server.wait_log(r"Watching \d+ \.py file")
    with httpx.Client(base_url=server.url) as client:
        assert get(client)[0] == "v1"
        write_app(tmp_path, "v2")
        assert wait_until(lambda: get(client)[0] == "v2")


def test_websockets_on_a_recycled_worker_are_closed_with_1012(serve, tmp_path):
    write_app(tmp_path, "v1")
    server = serve("versioned:app", "--app-dir", str(tmp_path), "--max-requests", "5")
    url = server.url.replace("http://", "ws://") + "/ws"
    deadline = time.monotonic() + 30
    with connect(url) as ws:
        # Past 5 messages the worker is due; once its replacement is ready (a fresh process
        # imports the app first) the old one drains and its WebSocket gets 1012.
        try:
            i = 0
            while time.monotonic() < deadline:
                ws.send(f"m{i}")
                assert ws.recv() == f"m{i}"
                i += 1
                time.sleep(0.01)
        except ConnectionClosed:
            pass
    assert ws.close_code == 1012
    with httpx.Client(base_url=server.url) as client:
        assert get(client)[0] == "v1"


def test_sigkill_of_a_worker_under_load_loses_only_what_it_held(serve, tmp_path):
    write_app(tmp_path, "v1")
    server = serve("versioned:app", "--app-dir", str(tmp_path), "--workers", "2")
    with load(server.url) as running:
        assert wait_until(lambda: len(running.pids) == 2 and running.ok >= 100)
        victim = min(running.pids)
        os.kill(victim, signal.SIGKILL)
        assert wait_until(lambda: len(running.pids) >= 3, timeout=30)
        done = running.ok
        assert wait_until(lambda: running.ok >= done + 100)
    # Only requests the killed worker was handling can fail (at most one per load thread),
    # and they fail with 502, not with a hang or a dropped connection.
    assert len(running.failures) <= 4, running.failures
    assert all(f.startswith("502") for f in running.failures), running.failures
    server.wait_log(r"died \(signal")
