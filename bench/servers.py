"""The servers under test: how to install, start, probe and stop each one.

Every server runs in its own session (process group) so that stopping it, or a Ctrl-C of the
harness, takes the launcher and everything it forked down together.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench import venvs
from bench.load import client_tls
from bench.memory import tree_pids

ROOT = venvs.ROOT
APP_DIR = ROOT / "bench" / "apps"
HOST = "127.0.0.1"
READY_TIMEOUT = 60.0

# Limits raised the same way for every server, where the server has such a limit, so that the
# workloads measure memory rather than a default cap: idle connections must survive the
# measurement, 5000 of them must fit, and a 50 MiB upload must be accepted.
KEEP_ALIVE_S = 120
BACKLOG = 4096
MAX_BODY = 64 * 1024 * 1024
MAX_CONNECTIONS = 20000

Command = Callable[[Path, str, int, int], list[str]]  # bin dir, "module:attr", port, workers


class StartError(Exception):
    """The server exited or never answered ``GET /`` with 200; the message holds its last lines."""


@dataclass(frozen=True)
class WsVariant:
    """One way a server serves WebSockets: a label for the ``ws`` column and the extra flags."""

    label: str
    args: tuple[str, ...] = ()


@dataclass(frozen=True)
class Tls:
    """A certificate and its key (PEM) for the TLS and HTTP/2 workloads."""

    certfile: Path
    keyfile: Path


TlsFlags = Callable[[Tls], list[str]]


@dataclass(frozen=True)
class Http2:
    """Where a server speaks HTTP/2 with its default flags: by ALPN ``h2`` on its TLS port,
    and with prior knowledge on its cleartext port (RFC 9113 §3.3)."""

    tls: bool
    cleartext: bool


@dataclass(frozen=True)
class ServerSpec:
    """One server: its virtualenv, pinned packages and command line."""

    name: str
    describe: str
    command: Command
    requirements: tuple[str, ...] = ()
    venv: str | None = None  # None: the repo's own .venv (our saltare)
    version_packages: tuple[str, ...] = ()
    single_rows: bool = True  # appears in the single-worker workloads
    multi_rows: bool = False  # gets an N-worker row in the throughput workload
    check: Callable[[Path], str | None] | None = None  # reason the install is unusable, or None
    ws: tuple[WsVariant, ...] = ()  # how it serves the WebSocket workloads; () = not in them
    tls: TlsFlags | None = None  # flags that serve HTTPS with a certificate; None: no TLS row
    no_tls: str = ""  # why there is no TLS row
    http2: Http2 | None = None  # None: HTTP/1.1 only (``no_http2`` says why)
    no_http2: str = ""
    # For the TLS and HTTP/2 workloads: (flag, file name, contents) of a config file written
    # beside the certificate and passed with that flag.
    proto_config: tuple[str, str, str] | None = None


@dataclass
class Prepared:
    """A spec whose environment has been checked; ``unavailable`` says why it cannot run."""

    spec: ServerSpec
    bin_dir: Path
    versions: dict[str, str] = field(default_factory=dict)
    unavailable: str | None = None
    extra_args: list[str] = field(default_factory=list)


def _help_flags(exe: Path) -> str:
    try:
        done = subprocess.run(
            [str(exe), "--help"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout + done.stderr


def _saltare_style_limits(help_text: str) -> list[str]:
    """Both saltare CLIs spell their limits the same way; pass only the flags this build knows."""
    wanted = [
        ("--keep-alive-timeout", str(KEEP_ALIVE_S)),
        ("--max-request-body", str(MAX_BODY)),
        ("--max-concurrent-connections", str(MAX_CONNECTIONS)),
        ("--listen-backlog", str(BACKLOG)),
    ]
    args: list[str] = []
    for flag, value in wanted:
        if flag in help_text:
            args += [flag, value]
    return args


def _uvicorn(fast: bool) -> Command:
    loop, http = ("uvloop", "httptools") if fast else ("asyncio", "h11")

    def command(bin_dir: Path, app: str, port: int, workers: int) -> list[str]:
        return [
            str(bin_dir / "uvicorn"), app, "--host", HOST, "--port", str(port),
            "--workers", str(workers), "--app-dir", str(APP_DIR), "--loop", loop, "--http", http,
            "--no-access-log", "--log-level", "warning", "--backlog", str(BACKLOG),
            "--timeout-keep-alive", str(KEEP_ALIVE_S),
        ]  # fmt: skip

    return command


def _granian(bin_dir: Path, app: str, port: int, workers: int) -> list[str]:
    return [
        str(bin_dir / "granian"), "--interface", "asgi", "--host", HOST, "--port", str(port),
        "--workers", str(workers), "--working-dir", str(APP_DIR), "--no-access-log",
        "--log-level", "warning", "--backlog", str(BACKLOG), app,
    ]  # fmt: skip


def _hypercorn(bin_dir: Path, app: str, port: int, workers: int) -> list[str]:
    return [
        str(bin_dir / "hypercorn"), app, "--bind", f"{HOST}:{port}", "--workers", str(workers),
        "--backlog", str(BACKLOG), "--keep-alive", str(KEEP_ALIVE_S), "--log-level", "warning",
    ]  # fmt: skip


def _gunicorn(bin_dir: Path, app: str, port: int, workers: int) -> list[str]:
    return [
        str(bin_dir / "gunicorn"), "-k", "asgi", app, "--bind", f"{HOST}:{port}",
        "--workers", str(workers), "--chdir", str(APP_DIR), "--backlog", str(BACKLOG),
        "--keep-alive", str(KEEP_ALIVE_S), "--log-level", "warning",
    ]  # fmt: skip


def _saltare(bin_dir: Path, app: str, port: int, workers: int) -> list[str]:
    return [
        str(bin_dir / "saltare"), app, "--host", HOST, "--port", str(port),
        "--workers", str(workers), "--app-dir", str(APP_DIR),
    ]  # fmt: skip


def _saltare_zig(bin_dir: Path, app: str, port: int, workers: int) -> list[str]:
    # No --app-dir in this CLI: the app directory is the working directory and on PYTHONPATH.
    return [
        str(bin_dir / "saltare"), app, "--host", HOST, "--port", str(port),
        "--workers", str(workers),
    ]  # fmt: skip


def _tls_flags(cert_flag: str, key_flag: str) -> TlsFlags:
    def flags(tls: Tls) -> list[str]:
        return [cert_flag, str(tls.certfile), key_flag, str(tls.keyfile)]

    return flags


def self_signed(directory: Path) -> Tls:
    """A throwaway P-256 certificate for 127.0.0.1, made with the openssl CLI (the harness uses
    only the standard library). The key is PKCS#8, the one format granian accepts."""
    tls = Tls(directory / "cert.pem", directory / "key.pem")
    done = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-keyout", str(tls.keyfile), "-out", str(tls.certfile)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise OSError(f"openssl req failed: {done.stderr.strip()[-300:]}")
    return tls


def _check_gunicorn_asgi(bin_dir: Path) -> str | None:
    code = "from gunicorn.workers import SUPPORTED_WORKERS as W; print('asgi' in W)"
    done = subprocess.run(
        [str(bin_dir / "python"), "-c", code], capture_output=True, text=True, check=False
    )
    if done.stdout.strip() != "True":
        return f"gunicorn has no `-k asgi` worker class: {done.stdout.strip()} {done.stderr[-300:]}"
    return None


def _check_exe(name: str) -> Callable[[Path], str | None]:
    def check(bin_dir: Path) -> str | None:
        exe = bin_dir / name
        if not exe.exists():
            return f"{exe} not found"
        done = subprocess.run(
            [str(exe), "--help"], capture_output=True, text=True, timeout=60, check=False
        )
        if done.returncode != 0:
            lines = (done.stderr or done.stdout).strip().splitlines()[-3:]
            return f"`{name} --help` exited {done.returncode}: {' / '.join(lines)}"
        return None

    return check


_UVICORN_H1 = "uvicorn serves HTTP/1.1 only (over TLS its ALPN offers nothing, so h2 clients " \
    "fall back to http/1.1)"  # fmt: skip

SPECS: tuple[ServerSpec, ...] = (
    ServerSpec(
        "saltare", "this project (Bun router + forked Python workers), repo .venv", _saltare,
        version_packages=("saltare",), multi_rows=True, check=_check_exe("saltare"),
        ws=(WsVariant("Bun router"),), tls=_tls_flags("--ssl-certfile", "--ssl-keyfile"),
        http2=Http2(tls=True, cleartext=True),  # on by default (docs/http2.md)
    ),
    ServerSpec(
        "uvicorn", "uvicorn, h11 + asyncio", _uvicorn(fast=False),
        ("uvicorn==0.54.0", venvs.WEBSOCKETS, venvs.WSPROTO, *venvs.FASTAPI), "uvicorn",
        ("uvicorn", "h11", "websockets", "wsproto"),
        # `--ws auto` picks websockets-sansio in 0.54; `--ws websockets` is the legacy one.
        ws=(WsVariant("websockets", ("--ws", "websockets")),
            WsVariant("websockets-sansio", ("--ws", "websockets-sansio")),
            WsVariant("wsproto", ("--ws", "wsproto"))),
        tls=_tls_flags("--ssl-certfile", "--ssl-keyfile"), no_http2=_UVICORN_H1,
    ),
    ServerSpec(
        "uvicorn-fast", "uvicorn, httptools + uvloop", _uvicorn(fast=True),
        ("uvicorn==0.54.0", "httptools==0.9.0", "uvloop==0.23.0", venvs.WEBSOCKETS,
         *venvs.FASTAPI),
        "uvicorn-fast", ("uvicorn", "httptools", "uvloop", "websockets"),
        ws=(WsVariant("websockets-sansio", ("--ws", "websockets-sansio")),),
        tls=_tls_flags("--ssl-certfile", "--ssl-keyfile"), no_http2=_UVICORN_H1,
    ),
    ServerSpec(
        "granian", "granian, ASGI interface", _granian,
        ("granian==2.8.7", *venvs.FASTAPI), "granian", ("granian",),
        # Its --backpressure default (backlog / workers = 4096) does not cap open WebSockets:
        # 5000 open and echo with the defaults.
        ws=(WsVariant("asgi"),), tls=_tls_flags("--ssl-certificate", "--ssl-keyfile"),
        # `--http auto` (the default) picks h2 by ALPN and detects the h2c preface; `--http 2`
        # would refuse the harness's HTTP/1.1 readiness probe.
        http2=Http2(tls=True, cleartext=True),
    ),
    ServerSpec(
        "hypercorn", "hypercorn, asyncio", _hypercorn,
        ("hypercorn==0.18.0", *venvs.FASTAPI), "hypercorn",
        ("hypercorn", "h11", "h2", "wsproto"),
        # h2 is a dependency of hypercorn itself: ALPN offers h2 with TLS, and the cleartext port
        # switches to HTTP/2 on the prior-knowledge preface.
        ws=(WsVariant("wsproto"),), tls=_tls_flags("--certfile", "--keyfile"),
        http2=Http2(tls=True, cleartext=True),
        # keep_alive_max_requests (default 1000, no CLI flag) closes a connection after that
        # many requests: h2load does not reconnect, so 10 connections would stop at 10,000.
        proto_config=("-c", "hypercorn.toml", "keep_alive_max_requests = 1000000000\n"),
    ),
    ServerSpec(
        "saltare-zig", "the original saltare with the Zig core (PyPI)", _saltare_zig,
        ("saltare==1.13.0", *venvs.FASTAPI), "saltare-zig", ("saltare",),
        check=_check_exe("saltare"), ws=(WsVariant("Zig core"),),
        no_tls="its CLI has no certificate flags (TLS only through saltare.run(ssl_certfile=...))",
        no_http2="h2 only over TLS, which its CLI cannot turn on; the cleartext port answers "
        "the prior-knowledge preface with `parse failed: UnsupportedVersion`",
    ),
    ServerSpec(
        "gunicorn", "gunicorn with its native ASGI worker (-k asgi)", _gunicorn,
        ("gunicorn==27.0.1", *venvs.FASTAPI), "gunicorn", ("gunicorn",),
        single_rows=False, multi_rows=True, check=_check_gunicorn_asgi,
    ),
)  # fmt: skip

SPEC_NAMES = tuple(spec.name for spec in SPECS)
_COMMON_VERSIONS = ("fastapi", "starlette", "pydantic")


def _git_revision() -> str:
    done = subprocess.run(
        ["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return done.stdout.strip() or "unknown"


def prepare(spec: ServerSpec) -> Prepared:
    """Create or check the spec's environment; never raises, failures become ``unavailable``."""
    if spec.venv is None:
        bin_dir = ROOT / ".venv" / "bin"
        if not (bin_dir / "python").exists():
            return Prepared(spec, bin_dir, unavailable=f"{bin_dir} missing: run scripts/setup.sh")
    else:
        try:
            bin_dir = venvs.ensure(spec.venv, spec.requirements)
        except venvs.VenvError as exc:
            return Prepared(spec, venvs.VENVS / spec.venv / "bin", unavailable=str(exc))
    prepared = Prepared(spec, bin_dir)
    prepared.versions = venvs.package_versions(bin_dir, spec.version_packages + _COMMON_VERSIONS)
    if spec.venv is None:
        prepared.versions["saltare"] += f" (git {_git_revision()})"
    if spec.check is not None:
        prepared.unavailable = spec.check(bin_dir)
    if prepared.unavailable is None and spec.name.startswith("saltare"):
        prepared.extra_args = _saltare_style_limits(_help_flags(bin_dir / "saltare"))
    return prepared


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def probe(port: int, path: str = "/", timeout: float = 2.0, tls: bool = False) -> int | None:
    """Status code of one ``GET path`` on a fresh connection, or None if nothing answered."""
    request = f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nConnection: close\r\n\r\n".encode()
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as raw:
            sock = client_tls(("http/1.1",)).wrap_socket(raw) if tls else raw
            sock.sendall(request)
            head = sock.recv(64)
    except OSError:  # ssl.SSLError is an OSError
        return None
    parts = head.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        return None
    return int(parts[1])


def _start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2 :].split()[19]  # field 22 of proc(5): starttime


_LIVE: set[Server] = set()
_STARTS = itertools.count(1)


class Server:
    """One running server process tree (launcher and everything it forks)."""

    def __init__(
        self, prepared: Prepared, app: str, workers: int, log_dir: Path, tls: Tls | None = None
    ) -> None:
        self.prepared = prepared
        self.port = free_port()
        self.tls = tls
        self.argv = prepared.spec.command(prepared.bin_dir, app, self.port, workers)
        self.argv += prepared.extra_args
        if tls is not None:
            if prepared.spec.tls is None:
                raise StartError(f"no TLS: {prepared.spec.no_tls or 'no certificate flags'}")
            self.argv += prepared.spec.tls(tls)
        module = app.partition(":")[0]
        self.log_path = (
            log_dir / f"{next(_STARTS):03d}-{prepared.spec.name}-w{workers}-{module}.log"
        )
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError("server not started")
        return self._proc.pid

    def start(self) -> None:
        """Start and wait until ``GET /`` answers 200; raises StartError with the log's tail."""
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(APP_DIR), env.get("PYTHONPATH")]))
        env.pop("VIRTUAL_ENV", None)
        with open(self.log_path, "wb") as log:
            self._proc = subprocess.Popen(
                self.argv, cwd=APP_DIR, env=env, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        _LIVE.add(self)
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            code = self._proc.poll()
            if code is not None:
                self.stop()
                raise StartError(f"failed to start: exited with {code}: {self.log_tail()}")
            if probe(self.port, tls=self.tls is not None) == 200:
                return
            time.sleep(0.05)
        self.stop()
        raise StartError(
            f"failed to start: no 200 on GET / within {READY_TIMEOUT:.0f} s: {self.log_tail()}"
        )

    def returncode(self) -> int | None:
        """None while the launcher runs, else its exit status (negative: killed by that signal)."""
        return None if self._proc is None else self._proc.poll()

    def log_tail(self, lines: int = 4) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "no output"
        kept = [line.strip() for line in text.splitlines() if line.strip()]
        return " / ".join(kept[-lines:])[-600:] or "no output"

    def stop(self) -> None:
        """SIGTERM the process group, SIGKILL it after 5 s, then any descendant that escaped it."""
        proc = self._proc
        _LIVE.discard(self)
        if proc is None:
            return
        # Remember (pid, start time) so a pid reused after the group died is never signalled.
        alive = proc.poll() is None
        pids = [(pid, _start_time(pid)) for pid in tree_pids(proc.pid)] if alive else []
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        for pid, started in pids:  # children that moved to their own session
            if started is not None and _start_time(pid) == started:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)

    def __enter__(self) -> Server:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def stop_all() -> None:
    """Stop every server still running (used on Ctrl-C and on errors)."""
    for server in list(_LIVE):
        server.stop()
