"""The supervisor: the process the user started. It owns the router and forks the workers.

Process tree::

    supervisor (Python, imported the app, gc-frozen)
      ├── router (Bun)        listens, speaks HTTP, dispatches frames to the workers
      └── worker x N          forked from the supervisor; run the app on an asyncio loop

The supervisor never touches a client connection. It starts the router, forks workers once the
router listens, replaces workers that die, and turns SIGINT/SIGTERM into an orderly drain: it
tells the router (a line on its stdin), the router stops accepting, lets in-flight requests
finish and sends every worker SHUTDOWN, the workers run lifespan shutdown and exit. A second
signal kills everything at once.

Nothing outlives a SIGKILL of the supervisor: workers ask the kernel for SIGKILL when their
parent dies (``PR_SET_PDEATHSIG``) and the router exits when its stdin pipe reaches EOF.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import deque
from pathlib import Path
from typing import Any

from ._errors import ServerError
from ._logging import logger
from ._system import die_with_parent
from ._worker import EXIT_RECYCLED, EXIT_STARTUP_FAILED, run_worker

__all__ = ["EXIT_CRASH_LOOP", "Supervisor", "find_bun", "find_router"]

EXIT_CRASH_LOOP = 4

_PKG = Path(__file__).resolve().parent
_REPO = _PKG.parent.parent
# A crash loop: more than this many worker deaths inside the window. While other workers
# still serve, replacements are delayed (doubling up to _BACKOFF_MAX); when none is left, the
# server stops with a clear message.
_CRASH_LIMIT = 5
_CRASH_WINDOW = 10.0
_BACKOFF_FIRST = 1.0
_BACKOFF_MAX = 30.0


def router_environment(config: dict[str, Any]) -> dict[str, str]:
    """The router's environment, with the JIT tiers of ``--router-jit``.

    Bun's JavaScriptCore tiers up hot code to the DFG and FTL optimizing compilers; their
    compiled code and the compilers' own code pages cost the router 13-20 MiB under load
    (measured with 100 connections), while HTTP/1.1 routing gains ~15% throughput from them.
    Variables the user set (``BUN_JSC_*``) are left alone.
    """
    env = dict(os.environ)
    if not any(name.startswith("BUN_JSC_use") for name in env):
        if config["router_jit"] == "baseline":
            env["BUN_JSC_useDFGJIT"] = "0"
        elif config["router_jit"] == "off":
            env["BUN_JSC_useJIT"] = "0"
    return env


def find_bun() -> str:
    candidates = [os.environ.get("SALTARE_BUN"), str(_REPO / "node_modules" / ".bin" / "bun")]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("bun")
    if found:
        return found
    raise ServerError(
        "cannot find the Bun runtime: run scripts/setup.sh in the saltare checkout "
        "or set SALTARE_BUN to a bun executable"
    )


def find_router() -> str:
    """The router's entry point: ``$SALTARE_ROUTER``, else the bundle, else the sources.

    ``scripts/setup.sh`` bundles ``src/`` into ``build/router.js`` (one file, nothing to
    transpile at start: the router then maps ~1.6 MiB less of Bun). The bundle is used only
    while no source file is newer, so an edit to ``src/`` takes effect without a rebuild.
    """
    explicit = os.environ.get("SALTARE_ROUTER")
    if explicit:
        if os.path.isfile(explicit):
            return explicit
        raise ServerError(f"SALTARE_ROUTER={explicit} does not exist")
    sources = _REPO / "src"
    bundle = _REPO / "build" / "router.js"
    if bundle.is_file():
        built = bundle.stat().st_mtime
        if not sources.is_dir() or all(
            path.stat().st_mtime <= built for path in sources.rglob("*.ts")
        ):
            return str(bundle)
    entry = sources / "main.ts"
    if entry.is_file():
        return str(entry)
    raise ServerError("cannot find the saltare router (src/main.ts); set SALTARE_ROUTER")


def _preload_loop(kind: str) -> None:
    """Import the workers' event loop before forking, so its modules are shared too."""
    if kind in ("auto", "uvloop"):
        with contextlib.suppress(ImportError):
            import uvloop  # noqa: F401, PLC0415


class Supervisor:
    """Forks and watches the workers; with ``with_router`` it also runs the router.

    ``saltare.run()`` uses it with the router (this process is the top of the tree). When the
    command line starts saltare, the router is the top process and runs this class without a
    router, as the zygote of a multi-worker server (python/saltare/_child.py).
    """

    def __init__(self, app: Any, config: dict[str, Any], *, with_router: bool = True) -> None:
        self._app = app
        self._config = config
        self._with_router = with_router
        self._workers_wanted = config["workers"] or os.cpu_count() or 1
        self._main_thread = threading.current_thread() is threading.main_thread()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        os.set_blocking(self._wake_r, False)
        self._selector = selectors.DefaultSelector()
        self._router: subprocess.Popen[bytes] | None = None
        self._router_pidfd = -1
        self._workers: dict[int, tuple[int, int]] = {}  # slot -> (pid, pidfd)
        self._deaths: deque[float] = deque()
        self._backoff = 0.0
        self._respawn_at: dict[int, float] = {}  # slot -> when its delayed replacement starts
        self._stopping = False
        self._signals = 0
        self._stop_requested = False
        self._workdir = ""
        self._exit_code = 0
        self._router_buffer = b""  # partial line of the router's JSON events
        self._listening = False

    # -- public -----------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Ask for a graceful stop; safe to call from any thread or a signal handler."""
        self._stop_requested = True
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"s")

    def run(self) -> int:
        previous: dict[int, Any] = {}
        if self._main_thread:
            if self._with_router:
                for signum in (signal.SIGINT.value, signal.SIGTERM.value):
                    previous[signum] = signal.signal(signum, self._on_signal)
                # Reload needs a fresh interpreter to import the new code, which only the
                # command line's process tree has; here SIGHUP must at least not kill us.
                previous[signal.SIGHUP.value] = signal.signal(signal.SIGHUP, self._on_hangup)
            else:
                # Zygote under the router: Ctrl-C reaches the whole process group, but only
                # the router decides; it sends one SIGTERM (and SIGKILL if it must hurry).
                previous[signal.SIGINT.value] = signal.signal(signal.SIGINT, signal.SIG_IGN)
                previous[signal.SIGTERM.value] = signal.signal(signal.SIGTERM, self._on_stop)
        try:
            return self._run()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            self._cleanup()

    # -- internals --------------------------------------------------------------------------

    def _on_signal(self, signum: int, frame: Any) -> None:
        self._signals += 1
        self.shutdown()

    def _on_hangup(self, signum: int, frame: Any) -> None:
        logger.warning(
            "SIGHUP: reload is only available when saltare is started from the command line"
        )

    def _on_stop(self, signum: int, frame: Any) -> None:
        self.shutdown()

    def _run(self) -> int:
        self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        if self._with_router:
            self._workdir = tempfile.mkdtemp(prefix="saltare-")
            socket_path = os.path.join(self._workdir, "workers.sock")
            self._start_router(socket_path)
            if not self._wait_listening():
                return 1
        else:
            socket_path = self._config["worker_socket"]
        _preload_loop(self._config["loop"])
        gc.collect()
        gc.freeze()  # forked workers then share the app's objects copy-on-write
        for slot in range(self._workers_wanted):
            self._spawn(slot, socket_path)
        stop_deadline: float | None = None
        while True:
            if self._stop_requested and not self._stopping:
                self._begin_stop()
                stop_deadline = time.monotonic() + self._config["shutdown_timeout"] + 10
            if self._signals >= 2:
                logger.warning("Second signal: stopping at once")
                self._kill_all()
                return 1
            if self._stopping and self._router is None and not self._workers:
                return self._exit_code
            timeout = None
            if stop_deadline is not None:
                timeout = max(0.0, stop_deadline - time.monotonic())
                if timeout == 0:
                    logger.error("Processes did not exit in time; killing them")
                    self._kill_all()
                    return 1
            if self._respawn_at and not self._stopping:
                now = time.monotonic()
                for slot, when in sorted(self._respawn_at.items()):
                    if when <= now:
                        del self._respawn_at[slot]
                        self._spawn(slot, socket_path)
                if self._respawn_at:
                    wait = max(0.0, min(self._respawn_at.values()) - now)
                    timeout = wait if timeout is None else min(timeout, wait)
            for key, _ in self._selector.select(timeout):
                tag = key.data
                if tag == "wake":
                    with contextlib.suppress(BlockingIOError):
                        os.read(self._wake_r, 512)
                elif tag == "router-out":
                    self._read_router_output()
                elif tag == "router-exit":
                    code = self._reap_router()
                    if not self._stopping:
                        logger.error("The router exited unexpectedly (status %s)", code)
                        self._exit_code = 1
                        self._stopping = True
                        self._kill_workers()
                    elif code != 0 and self._exit_code == 0:
                        self._exit_code = 1
                else:
                    self._on_worker_exit(int(tag), socket_path)

    def _start_router(self, socket_path: str) -> None:
        config = dict(self._config)
        config["workers"] = self._workers_wanted
        config["worker_socket"] = socket_path
        config.update(mode="attached", python=None, python_path=None)
        env = router_environment(config)
        env["SALTARE_ROUTER_CONFIG"] = json.dumps(config)
        bun = find_bun()
        router = find_router()
        self._router = subprocess.Popen(
            [bun, "--smol", router],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            close_fds=True,
            # An inherited listening socket (--fd, socket activation) goes to the router.
            pass_fds=(config["fd"],) if config.get("fd") is not None else (),
        )
        self._router_pidfd = os.pidfd_open(self._router.pid)
        if self._router.stdout is not None:
            os.set_blocking(self._router.stdout.fileno(), False)
            self._selector.register(self._router.stdout, selectors.EVENT_READ, "router-out")
        self._selector.register(self._router_pidfd, selectors.EVENT_READ, "router-exit")

    def _wait_listening(self) -> bool:
        """Wait for the router's "listening" event (or its exit, e.g. address in use)."""
        while not self._listening:
            if self._stop_requested:
                self._kill_all()
                return False
            for key, _ in self._selector.select(1.0):
                if key.data == "router-out":
                    self._read_router_output()
                elif key.data == "router-exit":
                    self._reap_router()
                    return False
                elif key.data == "wake":
                    with contextlib.suppress(BlockingIOError):
                        os.read(self._wake_r, 512)
        return True

    def _read_router_output(self) -> None:
        router = self._router
        if router is None or router.stdout is None:
            return
        try:
            data = os.read(router.stdout.fileno(), 65536)
        except BlockingIOError:
            return
        if not data:
            self._selector.unregister(router.stdout)
            return
        self._router_buffer += data
        *lines, self._router_buffer = self._router_buffer.split(b"\n")
        for line in lines:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("event") == "listening":
                self._listening = True

    def _reap_router(self) -> int:
        router = self._router
        if router is None:
            return 0
        code = router.wait()
        self._selector.unregister(self._router_pidfd)
        with contextlib.suppress(KeyError, ValueError):
            if router.stdout is not None:
                self._selector.unregister(router.stdout)
        os.close(self._router_pidfd)
        self._router = None
        return code

    def _begin_stop(self) -> None:
        self._stopping = True
        if not self._with_router:
            # The router drains and sends every worker SHUTDOWN; the zygote only stops
            # replacing workers and waits for them to exit.
            return
        logger.info("Shutting down")
        router = self._router
        if router is not None and router.stdin is not None:
            try:
                router.stdin.write(b"drain\n")
                router.stdin.flush()
            except OSError:
                pass
        else:
            self._kill_workers()

    def _spawn(self, slot: int, socket_path: str) -> None:
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            self._become_worker(slot, socket_path, parent)
        pidfd = os.pidfd_open(pid)
        self._workers[slot] = (pid, pidfd)
        self._selector.register(pidfd, selectors.EVENT_READ, str(slot))
        logger.debug("Started worker %d [%d]", slot, pid)

    def _become_worker(self, slot: int, socket_path: str, parent: int) -> None:
        code = 1
        try:
            die_with_parent(parent)
            # Drop every descriptor that belongs to the supervisor: above all the router's
            # stdin pipe, whose EOF is how the router learns that the supervisor died.
            self._selector.close()
            if self._router is not None:
                for pipe in (self._router.stdin, self._router.stdout):
                    if pipe is not None:
                        with contextlib.suppress(OSError):
                            os.close(pipe.fileno())
            for fd in [self._router_pidfd, self._wake_r, self._wake_w] + [
                p[1] for p in self._workers.values()
            ]:
                with contextlib.suppress(OSError):
                    os.close(fd)
            if self._main_thread:
                signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            code = run_worker(self._app, self._config, socket_path, slot)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            traceback.print_exc()
            code = 1
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)

    def _on_worker_exit(self, slot: int, socket_path: str) -> None:
        entry = self._workers.pop(slot, None)
        if entry is None:
            return
        pid, pidfd = entry
        self._selector.unregister(pidfd)
        os.close(pidfd)
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        if self._stopping:
            logger.debug("Worker %d [%d] exited (%d)", slot, pid, code)
            return
        if code == EXIT_RECYCLED:
            # The router drained it on purpose (--max-requests, --max-worker-memory): a fresh
            # fork takes its slot, and it does not count towards a crash loop.
            logger.info("Worker %d [%d] recycled; starting a new one", slot, pid)
            self._spawn(slot, socket_path)
            return
        if code == 0:
            # Workers exit 0 only when the router sent them SHUTDOWN: the server is stopping
            # (the SIGTERM saying so may still be on its way to this process).
            logger.debug("Worker %d [%d] exited cleanly; not replacing it", slot, pid)
            self._stopping = True
            return
        if code == EXIT_STARTUP_FAILED:
            logger.error("Application startup failed. Exiting.")
            self._exit_code = EXIT_STARTUP_FAILED
            self._stopping = True
            self._kill_all_soft()
            return
        how = f"signal {-code}" if code < 0 else f"exit status {code}"
        now = time.monotonic()
        self._deaths.append(now)
        while self._deaths and now - self._deaths[0] > _CRASH_WINDOW:
            self._deaths.popleft()
        if len(self._deaths) > _CRASH_LIMIT:
            if not self._workers:
                logger.error(
                    "Worker %d [%d] died (%s); %d worker deaths in %.0f s and no worker left "
                    "running: giving up",
                    slot,
                    pid,
                    how,
                    len(self._deaths),
                    _CRASH_WINDOW,
                )
                self._exit_code = 1
                self._stopping = True
                self._kill_all_soft()
                return
            # Others still serve: keep them, and retry this slot later, then later still.
            self._backoff = min(_BACKOFF_MAX, max(_BACKOFF_FIRST, self._backoff * 2))
            logger.error(
                "Worker %d [%d] died (%s); %d worker deaths in %.0f s: crash loop, next start "
                "of this worker in %.0f s",
                slot,
                pid,
                how,
                len(self._deaths),
                _CRASH_WINDOW,
                self._backoff,
            )
            self._respawn_at[slot] = time.monotonic() + self._backoff
            return
        self._backoff = 0.0
        logger.warning("Worker %d [%d] died (%s); starting a new one", slot, pid, how)
        self._spawn(slot, socket_path)

    def _kill_workers(self) -> None:
        for pid, _ in self._workers.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def _kill_all_soft(self) -> None:
        """Stop after a fatal condition: workers are killed, the router terminated."""
        self._kill_workers()
        if self._router is not None:
            with contextlib.suppress(ProcessLookupError):
                self._router.terminate()

    def _kill_all(self) -> None:
        self._kill_workers()
        if self._router is not None:
            with contextlib.suppress(ProcessLookupError):
                self._router.kill()
            self._router.wait()
        for pid, pidfd in list(self._workers.values()):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
            os.close(pidfd)
        self._workers.clear()

    def _cleanup(self) -> None:
        if self._router is not None or self._workers:
            self._kill_all()
        self._selector.close()
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        if self._workdir:
            shutil.rmtree(self._workdir, ignore_errors=True)
