"""Process lifecycle: lifespan, worker crashes, graceful drain on signals, no orphans."""

from __future__ import annotations

import concurrent.futures
import os
import signal
import socket
import time
from pathlib import Path

import httpx
import pytest

LIFESPAN = "lifespan_app:app"


def wait_for(predicate, timeout: float = 5.0, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def is_gone(pid: int) -> bool:
    """True if ``pid`` no longer runs (zombies count as gone: they execute nothing)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            stat = fh.read()
    except (FileNotFoundError, ProcessLookupError):
        return True
    # The state follows the parenthesised command name, which may contain spaces.
    state = stat.rsplit(")", 1)[1].split()[0]
    return state in ("Z", "X")


def test_lifespan_startup_and_shutdown_hooks_run(serve, tmp_path):
    server = serve(LIFESPAN, "--workers", "1", env={"MARKER_DIR": str(tmp_path)})
    assert (tmp_path / "startup").exists(), "startup must finish before the server is ready"
    assert not (tmp_path / "shutdown").exists()
    assert httpx.get(server.url + "/ok").text == "ok"
    assert server.stop(signal.SIGTERM) == 0
    assert (tmp_path / "shutdown").exists()
    # Both hooks ran in the worker that served, not in the supervisor.
    assert (tmp_path / "startup").read_text() == (tmp_path / "shutdown").read_text()
    assert int((tmp_path / "startup").read_text()) != server.proc.pid


def test_lifespan_startup_failure_exits_3_with_the_message_in_the_log(serve):
    server = serve("lifespan_fail:app", ready=False)
    assert server.proc.wait(30) == 3
    server.wait_log(r"database unreachable \(test\)")
    assert not server.url, "a server whose startup failed must never report listening"


def test_app_raising_on_the_lifespan_scope_still_serves_with_lifespan_auto(serve):
    server = serve("http_only:app", "--lifespan", "auto")
    response = httpx.get(server.url + "/")
    assert response.status_code == 200
    assert response.text == "http only"
    assert server.stop(signal.SIGTERM) == 0


def test_app_raising_on_the_lifespan_scope_fails_startup_with_lifespan_on(serve):
    server = serve("http_only:app", "--lifespan", "on", ready=False)
    assert server.proc.wait(30) == 3
    server.wait_log(r"unsupported scope type 'lifespan'")


def test_worker_crash_gives_502_and_a_new_worker_serves_next_requests(serve):
    server = serve("fastapi_app:app", "--workers", "1")
    with httpx.Client(base_url=server.url) as client:
        old_pid = client.get("/pid").json()["pid"]
        crashed = client.get("/crash")
    assert crashed.status_code == 502
    server.wait_log(rf"\[{old_pid}\] died .*starting a new one")

    def new_worker_answers() -> bool:
        try:
            response = httpx.get(server.url + "/pid", timeout=2)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    assert wait_for(new_worker_answers, timeout=15)
    new_pid = httpx.get(server.url + "/pid").json()["pid"]
    assert new_pid != old_pid
    assert new_pid in server.pids()
    assert old_pid not in server.pids()
    assert httpx.get(server.url + "/hello").json() == {"message": "hello"}


def test_sigterm_drains_in_flight_requests_and_refuses_new_connections(serve, tmp_path):
    server = serve(
        LIFESPAN, "--workers", "1", env={"MARKER_DIR": str(tmp_path), "SLOW_SECONDS": "2"}
    )
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        slow = pool.submit(httpx.get, server.url + "/slow", timeout=30)
        assert wait_for((tmp_path / "slow.started").exists)
        os.kill(server.proc.pid, signal.SIGTERM)
        server.wait_log(r"(?i)waiting for in-flight requests")
        assert not slow.done(), "the slow request ended before the drain could be observed"
        # New connections: refused, or accepted and closed without an answer.
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
                sock.sendall(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
                answer = sock.recv(65536)
        except (ConnectionRefusedError, ConnectionResetError):
            answer = b""
        assert answer == b"", f"a new connection was served during the drain: {answer!r}"
        response = slow.result(timeout=30)
    assert response.status_code == 200
    assert response.text == "slow done"
    assert server.proc.wait(30) == 0
    assert (tmp_path / "shutdown").exists(), "lifespan shutdown did not run"


def test_sigint_stops_the_server_gracefully_with_exit_code_0(serve, tmp_path):
    server = serve(LIFESPAN, "--workers", "2", env={"MARKER_DIR": str(tmp_path)})
    assert httpx.get(server.url + "/ok").text == "ok"
    pids = server.pids()
    assert server.stop(signal.SIGINT) == 0
    assert (tmp_path / "shutdown").exists()
    assert wait_for(lambda: all(is_gone(pid) for pid in pids))


def test_sigkill_of_the_supervisor_leaves_no_orphans(serve):
    server = serve(LIFESPAN, "--workers", "2")
    assert httpx.get(server.url + "/ok").status_code == 200
    pids = server.pids()
    assert len(pids) >= 4, f"expected supervisor, router and 2 workers, got {pids}"
    os.kill(server.proc.pid, signal.SIGKILL)
    assert wait_for(lambda: all(is_gone(pid) for pid in pids), timeout=5.0), {
        pid: Path(f"/proc/{pid}/cmdline").read_bytes() for pid in pids if not is_gone(pid)
    }


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_an_idle_server_stops_promptly_and_cleanly(serve, sig):
    server = serve("echo_scope:app")
    # A keep-alive connection left idle must not hold the drain open.
    with httpx.Client(base_url=server.url) as client:
        assert client.get("/x").status_code == 200
        assert server.stop(sig, timeout=10) == 0
    server.wait_log(r"Finished server process")


def test_a_response_finished_during_the_drain_carries_connection_close(serve, tmp_path):
    server = serve(LIFESPAN, env={"MARKER_DIR": str(tmp_path), "SLOW_SECONDS": "2"})
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        # A kept-alive connection (one request served) whose next request is in flight when
        # the drain starts: it is served, and the client is told not to send another.
        sock.sendall(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
        first = sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200 ")
        assert b"connection: close" not in first.lower()
        sock.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        assert wait_for((tmp_path / "slow.started").exists)
        os.kill(server.proc.pid, signal.SIGTERM)
        server.wait_log(r"(?i)waiting for in-flight requests")
        received = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    assert received.startswith(b"HTTP/1.1 200 ")
    assert b"\r\nconnection: close\r\n" in received.lower()
    assert received.endswith(b"slow done")
    assert server.proc.wait(30) == 0


def test_a_second_signal_stops_at_once_with_a_non_zero_status(serve, tmp_path):
    server = serve(LIFESPAN, env={"MARKER_DIR": str(tmp_path), "SLOW_SECONDS": "30"})
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        slow = pool.submit(httpx.get, server.url + "/slow", timeout=60)
        assert wait_for((tmp_path / "slow.started").exists)
        pids = server.pids()
        os.kill(server.proc.pid, signal.SIGTERM)
        server.wait_log(r"(?i)waiting for in-flight requests")
        started = time.monotonic()
        os.kill(server.proc.pid, signal.SIGTERM)
        code = server.proc.wait(10)
        elapsed = time.monotonic() - started
        try:
            status = slow.result(timeout=30).status_code
        except httpx.HTTPError:
            status = 0  # cut off without an answer: also fine
    assert status == 0 or status >= 500
    assert code != 0
    assert elapsed < 10  # far below the 30 s the slow request would have taken
    assert wait_for(lambda: all(is_gone(pid) for pid in pids), timeout=5.0)


def test_in_flight_work_past_the_shutdown_timeout_is_cut_off(serve, tmp_path):
    server = serve(
        LIFESPAN,
        "--shutdown-timeout",
        "1",
        env={"MARKER_DIR": str(tmp_path), "SLOW_SECONDS": "60"},
    )
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        slow = pool.submit(httpx.get, server.url + "/slow", timeout=90)
        assert wait_for((tmp_path / "slow.started").exists)
        os.kill(server.proc.pid, signal.SIGTERM)
        # The server gives up on the request after the timeout and still exits cleanly,
        # running lifespan shutdown.
        assert server.proc.wait(30) == 0
        response = slow.result(timeout=30)
    # The response had not started, so the client still gets a clean answer.
    assert response.status_code == 503
    assert (tmp_path / "shutdown").exists()
