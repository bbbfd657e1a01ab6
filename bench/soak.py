"""Soak test: good traffic with and without a slowloris attack, and the server tree's memory.

Starts saltare on the FastAPI bench app and runs three phases of paced, mixed good traffic
(``GET /``, ``POST /upload`` of 10-100 KiB, ``GET /bytes`` and a few ``GET /stream`` of 10 MiB,
every response checked for status and size):

- **A, baseline** (default 60 s): good traffic alone;
- **B, attack** (default 120 s): the same good traffic while a separate process holds 200
  slowloris connections (a byte of an endless request head every ~1 s, reconnecting when cut
  off), slow-body clients (a complete head, then a body byte every ~1 s) and clients that ask
  for 10 MiB and never read it;
- **C, after** (default 30 s): good traffic again, attack stopped;

with idle readings before A and after C. Pss, file descriptors and server-side sockets of the
whole process tree are sampled every few seconds throughout. The report is markdown on stdout::

    .venv/bin/python -m bench.soak                 # about 4 minutes
    .venv/bin/python -m bench.soak --scale 0.1     # every phase 10 % as long: a quick check
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import multiprocessing
import os
import random
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.load import Connection, ProtocolError, percentile
from bench.memory import cpu_seconds, read_tree, tree_pids
from bench.servers import free_port, probe

ROOT = Path(__file__).resolve().parent.parent
APP_DIR = ROOT / "bench" / "apps"
HOST = "127.0.0.1"
MIB = 1024 * 1024

BYTES_SIZE = 100 * 1024  # GET /bytes
STREAM_SIZE = 10 * MIB  # GET /stream
HELLO = b'{"hello":"world"}'
UPLOAD_BLOB = random.Random(20261125).randbytes(100 * 1024)
# Share of each good request kind (the rest is GET /).
MIX = (("upload", 0.15), ("bytes", 0.09), ("stream", 0.01))

# Server timeouts at their defaults (README): what the attack connections should run into.
HEADER_TIMEOUT = 5.0
BODY_TIMEOUT = 30.0
WRITE_TIMEOUT = 30.0

_TCP_STATES = {1: "ESTABLISHED", 4: "FIN_WAIT1", 7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK"}


# ------------------------------------------------------------------------------------- server


class Saltare:
    """``python -m saltare`` in its own session; the launcher execs into the router."""

    def __init__(self, app: str, workers: int, log_path: Path) -> None:
        python = ROOT / ".venv" / "bin" / "python"
        self.port = free_port()
        self.argv = [
            str(python if python.exists() else sys.executable), "-m", "saltare", app,
            "--app-dir", "bench/apps", "--host", HOST, "--port", str(self.port),
            "--log-level", "warning", "--workers", str(workers),
        ]  # fmt: skip
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 60.0) -> None:
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                self.argv, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"saltare exited with {self.proc.returncode}: {self.log_tail()}")
            if probe(self.port) == 200:
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"saltare did not answer GET / within {timeout:.0f} s")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> int | None:
        """SIGTERM the launcher (graceful drain), SIGKILL its process group after 15 s."""
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=15)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # its own session: nothing else is in it
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
        return proc.returncode

    def log_tail(self, lines: int = 8) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])


# ------------------------------------------------------------------------------------ sampler


def _tree_fds(root: int) -> int:
    count = 0
    for pid in tree_pids(root):
        with contextlib.suppress(OSError):
            count += len(os.listdir(f"/proc/{pid}/fd"))
    return count


def _server_sockets(port: int) -> int:
    """TCP sockets in the kernel whose local port is the server's, not LISTEN nor TIME_WAIT."""
    wanted = f":{port:04X}"
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as fh:
            next(fh, None)
            for line in fh:
                parts = line.split(None, 4)
                if len(parts) > 3 and parts[1].endswith(wanted) and parts[3] not in ("0A", "06"):
                    count += 1
    return count


@dataclass
class Sample:
    t: float
    phase: str
    pss: int
    rss: int
    anon: int
    procs: int
    fds: int
    sockets: int
    router_anon: int  # the top process (the router); the rest of ``anon`` is Python
    cpu: float  # utime + stime of the tree so far, seconds
    busy: int  # machine-wide non-idle jiffies (/proc/stat), to see what else was running
    total: int


def _children(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _machine_jiffies() -> tuple[int, int]:
    with open("/proc/stat") as fh:
        values = [int(v) for v in fh.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return sum(values) - idle, sum(values)


class Sampler:
    """Reads the tree every ``interval`` s in a thread, labelling samples with the phase."""

    def __init__(self, server: Saltare, interval: float) -> None:
        self.server = server
        self.interval = interval
        self.phase = "start"
        self.samples: list[Sample] = []
        self._t0 = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-sampler", daemon=True)

    def take(self) -> Sample:
        m = read_tree(self.server.pid)
        sample = Sample(
            round(time.monotonic() - self._t0, 2), self.phase, m.pss, m.rss, m.anon, m.procs,
            _tree_fds(self.server.pid), _server_sockets(self.server.port),
            m.anon - sum(read_tree(child).anon for child in _children(self.server.pid)),
            cpu_seconds(self.server.pid), *_machine_jiffies(),
        )  # fmt: skip
        self.samples.append(sample)
        return sample

    def set_phase(self, phase: str) -> None:
        self.phase = phase
        self.take()  # one reading at the start of every phase

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.take()

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


# ------------------------------------------------------------------------------- good traffic


@dataclass
class Outcome:
    phase: str
    t: float  # start, seconds since the phase began
    kind: str
    ok: bool
    latency: float
    error: str
    fresh: bool  # the request opened a new connection


def _pick(rng: random.Random) -> str:
    x = rng.random()
    for kind, share in MIX:
        if x < share:
            return kind
        x -= share
    return "hello"


async def _one_request(conn: Connection, port: int, kind: str, rng: random.Random) -> str:
    """Sends one request of ``kind`` and checks the answer; returns "" or what was wrong."""
    host = f"Host: {HOST}:{port}\r\n"
    if kind == "upload":
        size = rng.randint(10 * 1024, 100 * 1024)
        body = UPLOAD_BLOB[:size]
        conn.writer.write(
            f"POST /upload HTTP/1.1\r\n{host}Content-Type: application/octet-stream\r\n"
            f"Content-Length: {size}\r\n\r\n".encode()
            + body
        )
        await conn.writer.drain()
        response = await conn.read_response()
        if response.status != 200:
            return f"HTTP {response.status}"
        answer = json.loads(response.body)
        if answer != {"bytes": size, "sha256": hashlib.sha256(body).hexdigest()}:
            return "wrong upload echo"
        return "close" if response.close else ""  # "close": fine, but reconnect
    path = {"hello": "/", "bytes": "/bytes", "stream": "/stream"}[kind]
    conn.writer.write(f"GET {path} HTTP/1.1\r\n{host}\r\n".encode())
    await conn.writer.drain()
    response = await conn.read_response()
    if response.status != 200:
        return f"HTTP {response.status}"
    expected = {"hello": len(HELLO), "bytes": BYTES_SIZE, "stream": STREAM_SIZE}[kind]
    if response.size != expected or (kind == "hello" and response.body != HELLO):
        return f"wrong body ({response.size} bytes)"
    return "close" if response.close else ""


async def _good_client(
    port: int, phase: str, duration: float, interval: float, offset: float, timeout: float,
    rng: random.Random, out: list[Outcome],
) -> None:  # fmt: skip
    loop = asyncio.get_running_loop()
    started = loop.time()
    end = started + duration
    next_at = started + offset
    conn: Connection | None = None
    while True:
        now = loop.time()
        if interval > 0:
            if next_at > now:
                await asyncio.sleep(next_at - now)
            next_at = max(next_at + interval, loop.time())  # late: no catch-up burst
        if loop.time() >= end:
            break
        kind = _pick(rng)
        fresh = conn is None
        t0 = time.perf_counter()
        t_rel = loop.time() - started
        try:
            if conn is None:
                conn = await asyncio.wait_for(Connection.open(port), timeout)
            error = await asyncio.wait_for(_one_request(conn, port, kind, rng), timeout)
        except asyncio.TimeoutError:
            error = f"timeout > {timeout:g} s"
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ProtocolError, ValueError) as exc:  # fmt: skip
            error = type(exc).__name__
        latency = time.perf_counter() - t0
        closing = error == "close"
        if closing:
            error = ""
        out.append(Outcome(phase, t_rel, kind, not error, latency, error, fresh))
        if (error or closing) and conn is not None:
            await conn.close()
            conn = None
    if conn is not None:
        await conn.close()


async def good_traffic(
    port: int, phase: str, duration: float, clients: int, rate: float, timeout: float, seed: int
) -> list[Outcome]:
    """``clients`` keep-alive clients for ``duration`` s, paced to ``rate`` requests/s in all
    (0: each sends its next request as soon as the previous one is answered)."""
    interval = clients / rate if rate > 0 else 0.0
    out: list[Outcome] = []
    await asyncio.gather(*(
        _good_client(port, phase, duration, interval, interval * i / clients, timeout,
                     random.Random(seed * 1000 + i), out)
        for i in range(clients)
    ))  # fmt: skip
    return out


# ------------------------------------------------------------------------------------- attack


@dataclass
class AttackConfig:
    port: int
    slowloris: int
    slow_body: int
    non_readers: int
    interval: float  # seconds between dribbled bytes
    seed: int


@dataclass
class AttackConn:
    kind: str
    opened: float  # seconds since the attack started
    lifetime: float | None  # first byte sent (request sent, for non-readers) until cut off
    how: str  # "408", other status, "eof", "reset", "TCP <state>", "open at end", "connect ..."
    sent: int = 0


@dataclass
class AttackResult:
    conns: list[AttackConn] = field(default_factory=list)
    duration: float = 0.0


def _loris_bytes(idx: int) -> Any:
    head = f"GET /?loris={idx} HTTP/1.1\r\nHost: {HOST}\r\nUser-Agent: soak\r\n".encode()
    yield from (head[i : i + 1] for i in range(len(head)))
    n = 0
    while True:
        n += 1
        yield from (bytes([b]) for b in f"X-Pad-{n}: {n}\r\n".encode())


def _body_bytes() -> Any:
    while True:
        yield b"a"


async def _dribbler(
    kind: str, idx: int, cfg: AttackConfig, base: float, stop: asyncio.Event,
    out: list[AttackConn], rng: random.Random,
) -> None:  # fmt: skip
    """Keeps one slowloris or slow-body connection going, reconnecting whenever it is cut."""
    loop = asyncio.get_running_loop()
    await asyncio.sleep(rng.random() * cfg.interval)  # spread the connects and the bytes
    while not stop.is_set():
        opened = loop.time() - base
        try:
            reader, writer = await asyncio.open_connection(HOST, cfg.port)
        except OSError as exc:
            out.append(AttackConn(kind, opened, None, f"connect {type(exc).__name__}"))
            await asyncio.sleep(cfg.interval)
            continue
        if kind == "slowloris":
            first, dribble = b"", _loris_bytes(idx)
        else:
            first = (
                f"POST /upload HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: text/plain\r\n"
                f"Content-Length: {100 * 1024}\r\n\r\n"
            ).encode()
            dribble = _body_bytes()
        read = asyncio.ensure_future(reader.read(4096))
        t_first: float | None = None
        sent = 0
        how = "open at end"
        try:
            if first:
                writer.write(first)
                await writer.drain()
                t_first = loop.time()
            while not stop.is_set():
                writer.write(next(dribble))
                await writer.drain()
                sent += 1
                if t_first is None:
                    t_first = loop.time()
                pause = cfg.interval * rng.uniform(0.8, 1.2)
                await asyncio.wait([read], timeout=pause)
                if read.done():
                    break
        except OSError as exc:
            how = type(exc).__name__
        if read.done():
            try:
                data = read.result()
            except OSError as exc:
                how = type(exc).__name__
            else:
                if data.startswith(b"HTTP/1."):
                    how = data.split(b" ", 2)[1].decode("latin-1")
                else:
                    how = "eof" if not data else "data"
        else:
            read.cancel()
        lifetime = None
        if how != "open at end" and t_first is not None:
            lifetime = loop.time() - t_first
        out.append(AttackConn(kind, opened, lifetime, how, sent))
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def _non_reader(
    idx: int, cfg: AttackConfig, base: float, stop: asyncio.Event, out: list[AttackConn],
    rng: random.Random,
) -> None:  # fmt: skip
    """Asks for 10 MiB and never reads; watches its own TCP state to see when it is cut off."""
    loop = asyncio.get_running_loop()
    await asyncio.sleep(rng.random() * cfg.interval)
    while not stop.is_set():
        opened = loop.time() - base
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, (HOST, cfg.port))
            request = f"GET /stream?nr={idx} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()
            await loop.sock_sendall(sock, request)
        except OSError as exc:
            sock.close()
            out.append(AttackConn("non-reader", opened, None, f"connect {type(exc).__name__}"))
            await asyncio.sleep(cfg.interval)
            continue
        t_sent = loop.time()
        how = "open at end"
        while not stop.is_set():
            state = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]
            if state != 1:
                how = f"TCP {_TCP_STATES.get(state, state)}"
                break
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.25)
        lifetime = None if how == "open at end" else loop.time() - t_sent
        out.append(AttackConn("non-reader", opened, lifetime, how, 0))
        # Unread data is waiting: close with a reset rather than leave a lingering socket.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.close()


async def _attack(cfg: AttackConfig, stop_flag: Any, started: Any) -> AttackResult:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    out: list[AttackConn] = []
    base = loop.time()
    rng = random.Random(cfg.seed)
    tasks = [
        *(_dribbler("slowloris", i, cfg, base, stop, out, random.Random(rng.random()))
          for i in range(cfg.slowloris)),
        *(_dribbler("slow-body", i, cfg, base, stop, out, random.Random(rng.random()))
          for i in range(cfg.slow_body)),
        *(_non_reader(i, cfg, base, stop, out, random.Random(rng.random()))
          for i in range(cfg.non_readers)),
    ]  # fmt: skip
    running = [asyncio.ensure_future(t) for t in tasks]
    started.set()
    while not stop_flag.is_set():
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.gather(*running)
    return AttackResult(out, loop.time() - base)


def attack_process(cfg: AttackConfig, stop_flag: Any, started: Any, results: Any) -> None:
    """Entry point of the attacker process (spawned, so it has its own interpreter and GIL)."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    result = asyncio.run(_attack(cfg, stop_flag, started))
    results.put([asdict(c) for c in result.conns] + [{"duration": result.duration}])


# ------------------------------------------------------------------------------------- report


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def _mib(value: float) -> str:
    return f"{value / MIB:.1f}"


def _good_rows(
    outcomes: list[Outcome], phases: list[tuple[str, float]], samples: list[Sample]
) -> list[str]:
    rows = [
        "| phase | s | requests | ok | success | req/s | p50 ms | p99 ms | max ms | failures "
        "| connections opened | server CPU ms per request |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for phase, seconds in phases:
        mine = [o for o in outcomes if o.phase == phase]
        ok = [o for o in mine if o.ok]
        lat = [o.latency for o in mine]
        errors = Counter(o.error for o in mine if not o.ok)
        failures = ", ".join(f"{n} x {e}" for e, n in errors.most_common()) or "none"
        rate = 100 * len(ok) / len(mine) if mine else 0.0
        cpu = _phase_cpu(samples, phase)
        per_request = f"{1000 * cpu[1] / len(mine):.2f}" if cpu and mine else "-"
        rows.append(
            f"| {phase} | {seconds:g} | {len(mine)} | {len(ok)} | {rate:.3f} % | "
            f"{len(mine) / seconds:.0f} | {_ms(percentile(lat, 50))} | {_ms(percentile(lat, 99))} "
            f"| {_ms(max(lat, default=0))} | {failures} | {sum(o.fresh for o in mine)} "
            f"| {per_request} |"
        )
    return rows


def _kind_rows(outcomes: list[Outcome], phases: list[tuple[str, float]]) -> list[str]:
    kinds = ("hello", "upload", "bytes", "stream")
    labels = {"hello": "GET /", "upload": "POST /upload 10-100 KiB", "bytes": "GET /bytes 100 KiB",
              "stream": "GET /stream 10 MiB"}  # fmt: skip
    head = "| request | " + " | ".join(f"{p} n / p50 / p99 ms" for p, _ in phases) + " |"
    rows = [head, "|---|" + "---|" * len(phases)]
    for kind in kinds:
        cells = []
        for phase, _ in phases:
            lat = [o.latency for o in outcomes if o.phase == phase and o.kind == kind]
            cells.append(
                f"{len(lat)} / {_ms(percentile(lat, 50))} / {_ms(percentile(lat, 99))}"
                if lat
                else "0"
            )
        rows.append(f"| {labels[kind]} | " + " | ".join(cells) + " |")
    return rows


def _phase_cpu(samples: list[Sample], phase: str) -> tuple[float, float, float] | None:
    """(wall s, server CPU s, machine busy fraction) from the phase's first sample to the next
    phase's first sample (or the phase's last one at the end of the run)."""
    mine = [s for s in samples if s.phase == phase]
    if not mine:
        return None
    later = [s for s in samples if s.t > mine[-1].t]
    end = later[0] if later else mine[-1]
    total = end.total - mine[0].total
    busy = (end.busy - mine[0].busy) / total if total > 0 else 0.0
    return end.t - mine[0].t, end.cpu - mine[0].cpu, busy


def _memory_rows(samples: list[Sample], phases: list[str]) -> list[str]:
    rows = [
        "| phase | samples | Pss min / median / max / last | Anon min / median / max / last "
        "| fds min-max | server sockets min-max | server CPU, % of a core "
        "| machine busy, % of all CPUs |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for phase in phases:
        mine = [s for s in samples if s.phase == phase]
        if not mine:
            continue
        wall, used, busy_share = _phase_cpu(samples, phase) or (0.0, 0.0, 0.0)
        cpu = f"{100 * used / wall:.0f} %" if wall > 0 else "-"
        busy = f"{100 * busy_share:.0f} %"
        rows.append(
            f"| {phase} | {len(mine)} | {_spread([s.pss for s in mine])} | "
            f"{_spread([s.anon for s in mine])} | {min(s.fds for s in mine)}-"
            f"{max(s.fds for s in mine)} | {min(s.sockets for s in mine)}-"
            f"{max(s.sockets for s in mine)} | {cpu} | {busy} |"
        )
    return rows


def _process_rows(samples: list[Sample], phases: list[str]) -> list[str]:
    rows = [
        "| phase | router Anon min / median / max / last | Python Anon min / median / max / last |",
        "|---|---|---|",
    ]
    for phase in phases:
        mine = [s for s in samples if s.phase == phase]
        if mine:
            rows.append(
                f"| {phase} | {_spread([s.router_anon for s in mine])} | "
                f"{_spread([s.anon - s.router_anon for s in mine])} |"
            )
    return rows


def _spread(values: list[int]) -> str:
    return (
        f"{_mib(min(values))} / {_mib(statistics.median(values))} / {_mib(max(values))} / "
        f"{_mib(values[-1])}"
    )


def _attack_rows(conns: list[dict[str, Any]], cfg: AttackConfig) -> list[str]:
    expected = {
        "slowloris": f"~{HEADER_TIMEOUT:g} s (header_timeout), 408",
        "slow-body": f"~{BODY_TIMEOUT:g} s (body_timeout), 408",
        "non-reader": f"~{WRITE_TIMEOUT:g} s after the last progress (write_timeout)",
    }
    held = {"slowloris": cfg.slowloris, "slow-body": cfg.slow_body, "non-reader": cfg.non_readers}
    rows = [
        "| kind | held at once | connections | cut by server | how (count) | open at end "
        "| connect failed | time to cut min / median / p95 / max s | expected |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for kind, count in held.items():
        if count == 0:
            continue
        mine = [c for c in conns if c["kind"] == kind]
        failed = [c for c in mine if c["how"].startswith("connect")]
        at_end = [c for c in mine if c["how"] == "open at end"]
        cut = [c for c in mine if c not in failed and c not in at_end]
        times = sorted(c["lifetime"] for c in cut if c["lifetime"] is not None)
        hows = Counter(c["how"] for c in cut)
        how = ", ".join(f"{h} ({n})" for h, n in hows.most_common()) or "-"
        spread = (
            f"{times[0]:.2f} / {statistics.median(times):.2f} / {percentile(times, 95):.2f} / "
            f"{times[-1]:.2f}"
            if times
            else "-"
        )
        rows.append(
            f"| {kind} | {count} | {len(mine) - len(failed)} | {len(cut)} | {how} | "
            f"{len(at_end)} | {len(failed)} | {spread} | {expected[kind]} |"
        )
    return rows


# --------------------------------------------------------------------------------------- main


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    add = parser.add_argument
    add("--app", default="fastapi_app:app", help="MODULE:ATTR in bench/apps (default %(default)s)")
    add("--workers", type=int, default=1, help="saltare workers (default %(default)s)")
    add("--baseline", type=float, default=60.0, help="phase A seconds (default %(default)s)")
    add("--attack", type=float, default=120.0, help="phase B seconds (default %(default)s)")
    add("--after", type=float, default=30.0, help="phase C seconds (default %(default)s)")
    add("--idle", type=float, default=6.0,
        help="idle seconds read before A and after C (default %(default)s)")  # fmt: skip
    add("--scale", type=float, default=1.0, help="multiply the A, B, C and idle durations")
    add("--clients", type=int, default=8, help="good keep-alive clients (default %(default)s)")
    add("--rate", type=float, default=300.0,
        help="good requests/s over all clients; 0 = closed loop (default %(default)s)")  # fmt: skip
    add("--timeout", type=float, default=10.0,
        help="a good request slower than this is a failure (default %(default)s s)")  # fmt: skip
    add("--slowloris", type=int, default=200, help="slowloris connections (default %(default)s)")
    add("--slow-body", type=int, default=20, help="slow-body connections (default %(default)s)")
    add("--non-readers", type=int, default=10,
        help="connections that never read a 10 MiB response (default %(default)s)")  # fmt: skip
    add("--dribble", type=float, default=1.0,
        help="seconds between attack bytes (default %(default)s)")  # fmt: skip
    add("--sample-interval", type=float, default=2.0,
        help="seconds between memory readings (default %(default)s)")  # fmt: skip
    add("--seed", type=int, default=1)
    add("--json", type=Path, help="also write every sample and outcome to this file")
    return parser


async def _run(args: argparse.Namespace, server: Saltare, sampler: Sampler) -> dict[str, Any]:
    s = args.scale
    durations = {"A baseline": args.baseline * s, "B attack": args.attack * s,
                 "C after": args.after * s}  # fmt: skip
    outcomes: list[Outcome] = []
    cfg = AttackConfig(server.port, args.slowloris, args.slow_body, args.non_readers,
                       args.dribble, args.seed)  # fmt: skip
    alive: dict[str, bool] = {}

    def good(phase: str, seed: int) -> Any:
        return good_traffic(server.port, phase, durations[phase], args.clients, args.rate,
                            args.timeout, seed)  # fmt: skip

    def say(text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)

    sampler.set_phase("idle before")
    await asyncio.sleep(args.idle * s)

    say(f"phase A: {durations['A baseline']:g} s of good traffic")
    sampler.set_phase("A baseline")
    outcomes += await good("A baseline", args.seed)
    alive["A baseline"] = server.alive()
    sampler.set_phase("idle after A")  # warmed up, no attack yet: what "idle after" compares to
    await asyncio.sleep(args.idle * s)

    say(f"phase B: {durations['B attack']:g} s of good traffic under attack")
    ctx = multiprocessing.get_context("spawn")
    stop_flag, started, results = ctx.Event(), ctx.Event(), ctx.Queue()
    attacker = ctx.Process(target=attack_process, args=(cfg, stop_flag, started, results),
                           name="soak-attacker")  # fmt: skip
    attacker.start()
    attack_conns: list[dict[str, Any]] = []
    attack_seconds = 0.0
    try:
        if not await asyncio.to_thread(started.wait, 30):
            raise RuntimeError("the attacker process did not start")
        sampler.set_phase("B attack")
        outcomes += await good("B attack", args.seed + 1)
        alive["B attack"] = server.alive()
        stop_flag.set()
        payload = await asyncio.to_thread(results.get, True, 60)
        attack_seconds = payload.pop()["duration"]
        attack_conns = payload
    finally:
        stop_flag.set()
        await asyncio.to_thread(attacker.join, 10)
        if attacker.is_alive():
            attacker.kill()
            attacker.join()

    say(f"phase C: {durations['C after']:g} s of good traffic, attack stopped")
    sampler.set_phase("C after")
    outcomes += await good("C after", args.seed + 2)
    alive["C after"] = server.alive()
    sampler.set_phase("idle after")
    await asyncio.sleep(args.idle * s)
    sampler.take()
    return {"durations": durations, "outcomes": outcomes, "attack": attack_conns,
            "attack_seconds": attack_seconds, "cfg": cfg, "alive": alive}  # fmt: skip


def _server_sources(python: str) -> str:
    """Where the server's code comes from, and whether it is a committed revision.

    ``python -m saltare`` imports the package the interpreter finds (the editable install of
    this checkout, or a ``PYTHONPATH`` entry put first, e.g. a ``git archive`` of a commit), and
    that package runs the router from its own checkout's ``src/``.
    """
    done = subprocess.run(
        [python, "-c", "import pathlib, saltare; print(pathlib.Path(saltare.__file__).parent)"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    package = Path(done.stdout.strip() or ".").resolve()
    checkout = package.parent.parent
    git = ["git", "-C", str(checkout)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                          check=False).stdout.strip()  # fmt: skip
    if not head:
        return f"saltare from {package} (not a git checkout)"
    status = subprocess.run([*git, "status", "--porcelain", "--", "src", "python"],
                            capture_output=True, text=True, check=False).stdout  # fmt: skip
    changed = [line[3:] for line in status.splitlines() if line.strip()]
    state = "src/ and python/ as committed" if not changed else (
        f"{len(changed)} uncommitted changes in src/ or python/: " + ", ".join(changed[:6])
    )  # fmt: skip
    return f"saltare from {package}, git {head}, {state}"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    log_path = Path(tempfile.mkstemp(prefix="saltare-soak-", suffix=".log")[1])
    server = Saltare(args.app, args.workers, log_path)
    sources = _server_sources(server.argv[0])  # as the server starts, not as the run ends
    server.start()
    try:
        time.sleep(1.0)  # let the first request's allocations settle before the idle reading
        with Sampler(server, args.sample_interval) as sampler:
            run = asyncio.run(_run(args, server, sampler))
    finally:
        code = server.stop()

    durations: dict[str, float] = run["durations"]
    outcomes: list[Outcome] = run["outcomes"]
    cfg: AttackConfig = run["cfg"]
    phases = list(durations.items())
    print("# saltare soak\n")
    print(f"- command: `{' '.join(['.venv/bin/python', '-m', 'bench.soak', *sys.argv[1:]])}`")
    print(f"- server: `{' '.join(server.argv[1:])}` ({sources}), "
          f"{os.cpu_count()} CPUs shared with this load generator")  # fmt: skip
    print(
        f"- good traffic: {args.clients} keep-alive clients, "
        + (f"paced to {args.rate:g} requests/s in all" if args.rate > 0 else "closed loop")
        + ", mix "
        + ", ".join(f"{k} {v:.0%}" for k, v in MIX)
        + f", rest GET /; failure = wrong status/body, connection error or > {args.timeout:g} s"
    )
    print(
        f"- attack (phase B, separate process, {run['attack_seconds']:.0f} s): "
        f"{cfg.slowloris} slowloris, {cfg.slow_body} slow-body, {cfg.non_readers} non-reader "
        f"connections held, a byte every ~{cfg.interval:g} s"
    )
    print(f"- server still running after A/B/C: {run['alive']}; exit status after SIGTERM: {code}")
    print("\n## Good traffic\n")
    print("\n".join(_good_rows(outcomes, phases, sampler.samples)))
    print("\nLatency by request (client side, includes connect for fresh connections):\n")
    print("\n".join(_kind_rows(outcomes, phases)))
    print("\n## Memory of the whole process tree (MiB)\n")
    mem_phases = ["idle before", "A baseline", "idle after A", "B attack", "C after", "idle after"]
    print("\n".join(_memory_rows(sampler.samples, mem_phases)))
    print(
        "\nPss and Anonymous are summed over the tree (router, worker); Pss also splits file "
        "pages with unrelated processes mapping the same files (another bun or python), so it "
        'moves when they come and go; Anonymous does not. "server sockets": kernel TCP '
        'sockets on the server port, LISTEN and TIME_WAIT excluded. "machine busy" counts '
        "every process: the load generator, the attacker and anything else running."
    )
    print("\nAnonymous memory by process (MiB):\n")
    print("\n".join(_process_rows(sampler.samples, mem_phases)))
    if cfg.slowloris + cfg.slow_body + cfg.non_readers:
        print("\n## Attack connections (phase B)\n")
        print("\n".join(_attack_rows(run["attack"], cfg)))
    tail = server.log_tail(20)
    print(f"\nServer log ({log_path}): " + ("empty" if not tail else f"\n\n```\n{tail}\n```"))
    if args.json is not None:
        args.json.write_text(json.dumps({
            "argv": sys.argv, "server": server.argv, "durations": durations,
            "samples": [asdict(x) for x in sampler.samples],
            "outcomes": [asdict(o) for o in outcomes], "attack": run["attack"],
        }))  # fmt: skip
        print(f"\nRaw data: {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
