"""The workloads. Each is a small function registered in ``WORKLOADS`` that returns a ``Table``.

Adding a workload means writing one function that
starts servers through ``Context.server`` and returns rows, then registering it at the bottom.
Every selected server gets a row in every table: a measurement, or the reason there is none.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import load
from bench.memory import Memory, PeakSampler, cpu_seconds, read_tree, tree_pids
from bench.servers import Prepared, Server, StartError, Tls, WsVariant, self_signed
from bench.settings import Settings

IDLE_DELAY = 0.5  # idle reading: this long after the first 200 on GET /
AFTER_DELAY = 0.3  # after-load reading: this long after the load ends
APPS = {"fastapi": "fastapi_app:app", "raw": "raw_app:app", "ws": "ws_app:app"}
STREAM_BYTES = 10 * 1024 * 1024
STREAM_SHA256 = hashlib.sha256(b"x" * STREAM_BYTES).hexdigest()
BLOB_BYTES = 100 * 1024

Row = dict[str, Any]


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    fmt: str = "text"  # text | int | mib | per_conn | rps | ms | ratio | range


@dataclass
class Table:
    name: str
    title: str
    method: str
    columns: tuple[Column, ...]
    rows: list[Row] = field(default_factory=list)


@dataclass
class Context:
    settings: Settings
    prepared: dict[str, Prepared]
    log_dir: Path
    wrk_unavailable: str | None = None

    def targets(self, *, single: bool = True) -> Iterator[Prepared]:
        for name in self.settings.servers:
            prepared = self.prepared[name]
            if single and not prepared.spec.single_rows:
                continue
            yield prepared

    @contextlib.contextmanager
    def server(
        self, prepared: Prepared, app: str = "fastapi", workers: int = 1, tls: Tls | None = None
    ) -> Iterator[Server]:
        server = Server(prepared, APPS[app], workers, self.log_dir, tls)
        label = f"{prepared.spec.name} x{workers} {app}{' tls' if tls else ''}"
        print(f"bench:   {label}", file=sys.stderr, flush=True)
        server.start()
        try:
            yield server
        finally:
            server.stop()


class LoadFailure(Exception):
    """The server started but the workload could not be completed against it."""


def _mem(prefix: str, memory: Memory) -> Row:
    return {f"{prefix}_rss": memory.rss, f"{prefix}_pss": memory.pss,
            f"{prefix}_anon": memory.anon, f"{prefix}_procs": memory.procs}  # fmt: skip


def _failed_row(base: Row, reason: str) -> Row:
    return {**base, "status": reason}


def _guard(base: Row, prepared: Prepared, body: Callable[[], Row]) -> Row:
    """Run one measurement; an unavailable server, a failed start or a crash becomes the row."""
    if prepared.unavailable is not None:
        return _failed_row(base, f"unavailable: {prepared.unavailable}")
    try:
        row = {**base, **body()}
    except StartError as exc:
        return _failed_row(base, str(exc))
    except (LoadFailure, OSError, EOFError, ValueError, load.ProtocolError,
            asyncio.TimeoutError) as exc:  # fmt: skip
        return _failed_row(base, f"error: {type(exc).__name__}: {exc}")
    errors = row.get("errors") or 0
    row["status"] = f"ok, {errors} failed (first: {row.get('first_error')})" if errors else "ok"
    return row


def _check_alive(server: Server) -> None:
    code = server.returncode()
    if code is not None:
        raise LoadFailure(f"server exited ({code}) during the workload: {server.log_tail()}")


def _measured(server: Server, run: Callable[[], Row]) -> Row:
    """Idle reading, ``run`` under the 10 ms peak sampler, then the after-load reading."""
    time.sleep(IDLE_DELAY)
    idle = read_tree(server.pid)
    _check_alive(server)
    with PeakSampler(server.pid) as sampler:
        row = run()
    time.sleep(AFTER_DELAY)
    _check_alive(server)
    after = read_tree(server.pid)
    samples = sampler.samples
    return {**_mem("idle", idle), **_mem("peak", sampler.peak()), **_mem("after", after), **row,
            "raw_memory": samples}  # fmt: skip


def _load_row(result: load.LoadResult, total: int) -> Row:
    return {
        "ok": result.ok, "requests": total, "errors": result.errors,
        "first_error": result.first_error, "rps": result.rps,
        "p50_ms": load.percentile(result.latencies, 50) * 1000,
        "p99_ms": load.percentile(result.latencies, 99) * 1000,
        "raw_latencies_ms": [round(x * 1000, 4) for x in result.latencies],
    }  # fmt: skip


_LOAD_COLUMNS = (
    Column("server", "server"), Column("idle_procs", "procs", "int"),
    Column("idle_rss", "idle RSS", "mib"), Column("idle_pss", "idle Pss", "mib"),
    Column("idle_anon", "idle anon", "mib"), Column("peak_rss", "peak RSS", "mib"),
    Column("peak_pss", "peak Pss", "mib"), Column("after_rss", "after RSS", "mib"),
    Column("after_pss", "after Pss", "mib"), Column("after_anon", "after anon", "mib"),
    Column("ok", "ok", "int"), Column("rps", "req/s", "rps"), Column("p50_ms", "p50 ms", "ms"),
    Column("p99_ms", "p99 ms", "ms"), Column("status", "status"),
)  # fmt: skip


def _keepalive_workload(ctx: Context, connections: int, per_connection: int) -> list[Row]:
    rows = []
    total = connections * per_connection
    for prepared in ctx.targets():

        def body(prepared: Prepared = prepared) -> Row:
            with ctx.server(prepared) as server:

                def run() -> Row:
                    result = asyncio.run(
                        load.keepalive_load(server.port, connections, per_connection)
                    )
                    return _load_row(result, total)

                return _measured(server, run)

        rows.append(_guard({"server": prepared.spec.name}, prepared, body))
    return rows


def sequential(ctx: Context) -> Table:
    n = ctx.settings.seq_requests
    return Table(
        "sequential",
        f"Sequential: 1 keep-alive connection, {n} x GET / (FastAPI app)",
        "One client sends the next request when the previous response is complete.",
        _LOAD_COLUMNS,
        _keepalive_workload(ctx, 1, n),
    )


def concurrent(ctx: Context) -> Table:
    c, n = ctx.settings.conc_connections, ctx.settings.conc_requests
    return Table(
        "concurrent",
        f"Concurrent: {c} keep-alive connections x {n} x GET / (FastAPI app)",
        "All connections run at once from one asyncio client; latencies are per request.",
        _LOAD_COLUMNS,
        _keepalive_workload(ctx, c, n),
    )


def idle_keepalive(ctx: Context) -> Table:
    rows = []
    for count in ctx.settings.idle_counts:
        for prepared in ctx.targets():

            def body(prepared: Prepared = prepared, count: int = count) -> Row:
                with ctx.server(prepared) as server:
                    time.sleep(IDLE_DELAY)
                    idle = read_tree(server.pid)
                    _check_alive(server)

                    async def hold() -> tuple[Memory, Memory, load.LoadResult, int]:
                        with PeakSampler(server.pid) as sampler:
                            conns, result = await load.open_idle(server.port, count)
                        await asyncio.sleep(AFTER_DELAY)
                        held = read_tree(server.pid)
                        served = await load.still_served(conns, server.port)
                        await load.close_all(conns)
                        return held, sampler.peak(), result, served

                    held, peak, result, served = asyncio.run(hold())
                    _check_alive(server)
                    kept = max(result.ok, 1)
                    return {
                        **_mem("idle", idle), **_mem("held", held), **_mem("peak", peak),
                        "connections": count, "ok": result.ok, "errors": result.errors,
                        "first_error": result.first_error, "still_served": served,
                        "rss_per_conn": (held.rss - idle.rss) / kept,
                        "pss_per_conn": (held.pss - idle.pss) / kept,
                        "anon_per_conn": (held.anon - idle.anon) / kept,
                        "connect_rate": result.rps,
                    }  # fmt: skip

            base = {"server": prepared.spec.name, "connections": count}
            rows.append(_guard(base, prepared, body))
    return Table(
        "idle_keepalive", f"Idle keep-alive: {' and '.join(map(str, ctx.settings.idle_counts))} "
        "connections, one request each, held idle (FastAPI app)",
        "Bytes per connection = (held reading - idle reading) / connections that got a 200. "
        "'served again' counts held connections that still answer a second request after the "
        "reading (a server that dropped them did not hold them).",
        (Column("server", "server"), Column("connections", "conns", "int"),
         Column("ok", "opened ok", "int"), Column("still_served", "served again", "int"),
         Column("idle_pss", "idle Pss", "mib"), Column("held_rss", "held RSS", "mib"),
         Column("held_pss", "held Pss", "mib"), Column("peak_rss", "peak RSS", "mib"),
         Column("rss_per_conn", "RSS/conn", "per_conn"),
         Column("pss_per_conn", "Pss/conn", "per_conn"),
         Column("anon_per_conn", "anon/conn", "per_conn"), Column("status", "status")),
        rows,
    )  # fmt: skip


def _settle(server: Server, limit: float = 20.0) -> None:
    """Wait until the tree stops changing: workers after the first may still be importing the app
    when the first one answers GET /."""
    deadline = time.monotonic() + limit
    previous = read_tree(server.pid)
    stable = 0
    while time.monotonic() < deadline and stable < 4:
        time.sleep(0.25)
        current = read_tree(server.pid)
        same = current.procs == previous.procs and abs(current.pss - previous.pss) <= 0.02 * max(
            previous.pss, 1
        )
        stable = stable + 1 if same else 0
        previous = current


def multi_worker(ctx: Context) -> Table:
    rows = []
    for prepared in ctx.targets(single=False):
        single_pss: int | None = None
        for workers in ctx.settings.mw_workers:

            def body(prepared: Prepared = prepared, workers: int = workers) -> Row:
                with ctx.server(prepared, workers=workers) as server:
                    _settle(server)
                    time.sleep(IDLE_DELAY)
                    reading = read_tree(server.pid)
                    _check_alive(server)
                    return _mem("idle", reading)

            row = _guard({"server": prepared.spec.name, "workers": workers}, prepared, body)
            if row["status"] == "ok":
                if workers == 1:
                    single_pss = row["idle_pss"]
                if single_pss is not None:
                    row["naive_pss"] = workers * single_pss
                    row["pss_vs_naive"] = row["idle_pss"] / row["naive_pss"]
            rows.append(row)
    return Table(
        "multi_worker", "Multi-worker idle: total over the process tree vs naive N x single "
        "(FastAPI app)",
        "Idle reading once the tree is stable (same process count, Pss within 2% over 1 s, at "
        "most 20 s) + 0.5 s. Naive = N x the 1-worker tree's Pss: what N independent "
        "single-worker servers would cost.",
        (Column("server", "server"), Column("workers", "workers", "int"),
         Column("idle_procs", "procs", "int"), Column("idle_rss", "Σ RSS", "mib"),
         Column("idle_pss", "Σ Pss", "mib"), Column("idle_anon", "Σ anon", "mib"),
         Column("naive_pss", "naive N x single Pss", "mib"),
         Column("pss_vs_naive", "Pss / naive", "ratio"), Column("status", "status")),
        rows,
    )  # fmt: skip


def _spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def throughput(ctx: Context) -> Table:
    s = ctx.settings
    targets: list[tuple[Prepared, int]] = [(p, 1) for p in ctx.targets()]
    if s.tp_multi_rows:
        targets += [(p, s.tp_workers) for p in ctx.targets(single=False)
                    if p.spec.multi_rows]  # fmt: skip
    rows = []
    for prepared, workers in targets:
        label = prepared.spec.name if workers == 1 else f"{prepared.spec.name} x{workers}"
        for app in s.tp_apps:
            bases = [{"server": label, "workers": workers, "app": app, "connections": c}
                     for c in s.tp_levels]  # fmt: skip
            if ctx.wrk_unavailable is not None:
                rows += [_failed_row(b, f"unavailable: {ctx.wrk_unavailable}") for b in bases]
                continue
            results: dict[int, Row] = {}

            def body(
                prepared: Prepared = prepared,
                workers: int = workers,
                app: str = app,
                results: dict[int, Row] = results,
            ) -> Row:
                with ctx.server(prepared, app, workers) as server:
                    _settle(server)
                    for level in s.tp_levels:
                        results[level] = _wrk_level(server, level, s)
                return {}

            # One server per app serves every connection level; if it fails part-way, the levels
            # already measured keep their figures and the rest carry the failure.
            outcome = _guard({}, prepared, body)
            for base in bases:
                level = base["connections"]
                if level in results:
                    rows.append({**base, **results[level], "status": "ok"})
                else:
                    rows.append({**base, "status": outcome["status"]})
    _add_ratios(rows)
    return Table(
        "throughput", "Throughput with wrk (1 thread): GET / on the FastAPI and the raw ASGI app",
        f"{s.tp_runs} run(s) of {s.tp_duration} s per row after {s.tp_warmup} s of warm-up; "
        "median [min-max]. req/CPU-s = requests / (utime+stime of the server's whole tree during "
        "the run). 'x ref' = median req/s over the reference server's (uvicorn-fast, else "
        "uvicorn) for the same app and connections.",
        (Column("server", "server"), Column("app", "app"), Column("connections", "conns", "int"),
         Column("rps", "req/s", "range"), Column("ratio", "x ref", "ratio"),
         Column("p50_ms", "p50 ms", "ms"), Column("p99_ms", "p99 ms", "ms"),
         Column("rps_per_cpu", "req/CPU-s", "rps"), Column("peak_rss", "peak RSS", "mib"),
         Column("peak_pss", "peak Pss", "mib"), Column("errors", "errors", "int"),
         Column("status", "status")),
        rows,
    )  # fmt: skip


def _wrk_level(server: Server, level: int, s: Settings) -> Row:
    s_runs: list[Row] = []
    load.run_wrk(server.port, level, s.tp_warmup)
    for _ in range(s.tp_runs):
        cpu_before = cpu_seconds(server.pid)
        with PeakSampler(server.pid) as sampler:
            result = load.run_wrk(server.port, level, s.tp_duration)
        cpu = cpu_seconds(server.pid) - cpu_before
        _check_alive(server)
        peak = sampler.peak()
        s_runs.append({
            "rps": result.rps, "p50_ms": result.p50_ms, "p99_ms": result.p99_ms,
            "requests": result.requests, "cpu_s": cpu,
            "rps_per_cpu": result.requests / cpu if cpu > 0 else 0.0,
            "errors": result.errors + result.non_2xx, "peak_rss": peak.rss, "peak_pss": peak.pss,
            "wrk_output": result.raw, "raw_memory": sampler.samples,
        })  # fmt: skip
    rps = _spread([r["rps"] for r in s_runs])
    return {
        "rps": rps["median"], "rps_min": rps["min"], "rps_max": rps["max"],
        "p50_ms": statistics.median(r["p50_ms"] for r in s_runs),
        "p99_ms": statistics.median(r["p99_ms"] for r in s_runs),
        "rps_per_cpu": statistics.median(r["rps_per_cpu"] for r in s_runs),
        "peak_rss": max(r["peak_rss"] for r in s_runs),
        "peak_pss": max(r["peak_pss"] for r in s_runs),
        "errors": sum(r["errors"] for r in s_runs), "runs": s_runs,
    }  # fmt: skip


def _add_ratios(rows: list[Row]) -> None:
    ok = [r for r in rows if r["status"] == "ok"]
    for reference in ("uvicorn-fast", "uvicorn"):
        refs = {(r["app"], r["connections"]): r["rps"] for r in ok if r["server"] == reference}
        if refs:
            for row in ok:
                ref = refs.get((row["app"], row["connections"]))
                if ref:
                    row["ratio"] = row["rps"] / ref
            return


def large_bodies(ctx: Context) -> Table:
    s = ctx.settings
    phases: list[tuple[str, Callable[[int], Row]]] = [
        ("download 10 MiB stream", _download),
        (f"upload {s.upload_bytes // 2**20} MiB", lambda port: _upload(port, s.upload_bytes)),
        (f"{s.blob_requests} x 100 KiB", lambda port: _blobs(port, s.blob_requests)),
    ]
    rows = []
    for prepared in ctx.targets():
        for phase, run in phases:

            def body(prepared: Prepared = prepared, run: Callable[[int], Row] = run) -> Row:
                with ctx.server(prepared) as server:
                    return _measured(server, lambda: run(server.port))

            rows.append(_guard({"server": prepared.spec.name, "phase": phase}, prepared, body))
    return Table(
        "large_bodies", "Large bodies: streamed 10 MiB response (64 KiB chunks), streamed upload, "
        "100 KiB responses (FastAPI app)",
        "One transfer per fresh server; peak sampled every 10 ms over the tree. The body is "
        "checked (size and sha256); a wrong body is a failure, not a number.",
        (Column("server", "server"), Column("phase", "phase"),
         Column("idle_rss", "idle RSS", "mib"),
         Column("peak_rss", "peak RSS", "mib"), Column("peak_pss", "peak Pss", "mib"),
         Column("peak_anon", "peak anon", "mib"), Column("after_rss", "after RSS", "mib"),
         Column("mib_s", "MiB/s", "rps"), Column("status", "status")),
        rows,
    )  # fmt: skip


def _download(port: int) -> Row:
    got = asyncio.run(load.download(port, "/stream"))
    if got.status != 200 or got.size != STREAM_BYTES or got.sha256 != STREAM_SHA256:
        raise LoadFailure(f"stream: HTTP {got.status}, {got.size} bytes, sha256 mismatch "
                          f"{got.sha256 != STREAM_SHA256}")  # fmt: skip
    return {"bytes": got.size, "seconds": got.elapsed, "mib_s": got.size / got.elapsed / 2**20}


def _upload(port: int, total: int) -> Row:
    got = asyncio.run(load.upload(port, total))
    try:
        answer = json.loads(got.body)
    except ValueError:
        answer = {}
    if (
        got.status != 200
        or answer.get("bytes") != total
        or answer.get("sha256") != load.upload_sha256(total)
    ):
        raise LoadFailure(f"upload: HTTP {got.status}, answer {got.body[:200]!r}")
    return {"bytes": total, "seconds": got.elapsed, "mib_s": total / got.elapsed / 2**20}


def _blobs(port: int, count: int) -> Row:
    async def fetch() -> float:
        conn = await load.Connection.open(port)
        request = load.get_request(port, "/bytes")
        started = time.perf_counter()
        try:
            for _ in range(count):
                got = await conn.get(request)
                if got.status != 200 or got.size != BLOB_BYTES:
                    raise LoadFailure(f"/bytes: HTTP {got.status}, {got.size} bytes")
        finally:
            await conn.close()
        return time.perf_counter() - started

    elapsed = asyncio.run(fetch())
    return {"bytes": count * BLOB_BYTES, "seconds": elapsed,
            "mib_s": count * BLOB_BYTES / elapsed / 2**20}  # fmt: skip


# ----------------------------------------------------------------------------------- WebSockets


@dataclass(frozen=True)
class WsSizes:
    """How big the WebSocket workloads are in each mode."""

    idle_counts: tuple[int, ...]  # connections held at each reading, opened cumulatively
    idle_runs: int
    settle_limit: float  # seconds
    echo_clients: int
    echo_duration: float  # seconds per measured run
    echo_warmup: float
    echo_runs: int


# Kept beside the workloads rather than in ``Settings``: --servers still chooses the servers.
WS_SIZES = {
    "full": WsSizes((1000, 5000), 3, 10.0, 16, 5.0, 1.0, 3),
    "quick": WsSizes((1000, 5000), 1, 10.0, 16, 2.0, 1.0, 1),
    "smoke": WsSizes((10, 30), 1, 2.0, 16, 0.5, 0.2, 1),
}
WS_TEXT = b"hello, saltare!!"  # 16 bytes: a small chat-sized text message
WS_WARM_CONNECTIONS = 16
SETTLE_STEP = 0.25  # seconds between readings while waiting for memory to settle
SETTLE_READINGS = 4  # settled: this many readings in a row within SETTLE_BYTES of the first
SETTLE_BYTES = 128 * 1024


def _ws_targets(ctx: Context) -> Iterator[tuple[Prepared, WsVariant | None]]:
    """Every selected single-process server, once per WebSocket implementation it offers."""
    for prepared in ctx.targets():
        if not prepared.spec.ws:
            yield prepared, None
        for variant in prepared.spec.ws:
            yield prepared, variant


def _ws_server(
    ctx: Context, prepared: Prepared, variant: WsVariant
) -> contextlib.AbstractContextManager[Server]:
    with_flags = dataclasses.replace(prepared, extra_args=[*prepared.extra_args, *variant.args])
    return ctx.server(with_flags, "ws")


def _ws_base(prepared: Prepared, variant: WsVariant | None) -> Row:
    return {"server": prepared.spec.name, "ws": variant.label if variant else "—"}


@dataclass
class Settled:
    memory: Memory  # the last reading
    seconds: float
    settled: bool  # False: still moving when the limit ran out
    readings: list[tuple[float, int, int]]  # t, pss, anon: for the raw JSON


async def _ws_settle(server: Server, limit: float) -> Settled:
    """Read the tree every 0.25 s until Pss and anonymous memory stay within 128 KiB of one
    reading for four readings in a row (the process count unchanged), at most ``limit`` s.
    Asynchronous so that held connections keep answering pings meanwhile."""
    started = time.monotonic()
    anchor = read_tree(server.pid)
    current = anchor
    readings = [(0.0, current.pss, current.anon)]
    stable = 0
    while stable < SETTLE_READINGS:
        if time.monotonic() - started >= limit:
            return Settled(current, time.monotonic() - started, False, readings)
        await asyncio.sleep(SETTLE_STEP)
        current = read_tree(server.pid)
        readings.append((round(time.monotonic() - started, 3), current.pss, current.anon))
        if (
            current.procs == anchor.procs
            and abs(current.pss - anchor.pss) <= SETTLE_BYTES
            and abs(current.anon - anchor.anon) <= SETTLE_BYTES
        ):
            stable += 1
        else:
            anchor, stable = current, 0
    return Settled(current, time.monotonic() - started, True, readings)


def _by_process(root: int) -> list[dict[str, Any]]:
    """Pss and anonymous memory of each process of the tree, for the raw JSON: says which
    process (saltare's router or its worker, a peer's supervisor or worker) holds the bytes."""
    found = []
    for pid in tree_pids(root):
        try:
            name = Path(f"/proc/{pid}/comm").read_text().strip()
            lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
        except OSError:
            continue
        kib = {p[0]: int(p[1]) for p in (line.split() for line in lines) if len(p) >= 2
               and p[0] in ("Pss:", "Anonymous:")}  # fmt: skip
        if kib:
            found.append({"pid": pid, "name": name, "pss": kib.get("Pss:", 0) * 1024,
                          "anon": kib.get("Anonymous:", 0) * 1024})  # fmt: skip
    return found


async def _ws_hold(server: Server, sizes: WsSizes, results: dict[int, Row]) -> None:
    """One ws_idle run on a fresh server: warm-up, base reading, then each count in turn."""
    warm, _ = await load.open_ws(server.port, WS_WARM_CONNECTIONS)
    await load.ws_echo_round(warm)
    await load.close_ws(warm)
    base = await _ws_settle(server, sizes.settle_limit)
    base_procs = _by_process(server.pid)
    _check_alive(server)
    clients: list[load.WsClient] = []
    opening = load.LoadResult()
    try:
        for count in sizes.idle_counts:
            new, result = await load.open_ws(server.port, count - len(clients))
            clients += new
            opening.ok += result.ok
            opening.errors += result.errors
            opening.first_error = opening.first_error or result.first_error
            reading = await _ws_settle(server, sizes.settle_limit)
            _check_alive(server)
            held = sum(not c.closed for c in clients)
            per = max(held, 1)
            mem, zero = reading.memory, base.memory
            results[count] = {
                **_mem("base", zero), **_mem("held", mem), "connections": count,
                "opened": opening.ok, "held": held, "open_errors": opening.errors,
                "first_error": opening.first_error, "open_s": result.elapsed,
                "delta_pss": mem.pss - zero.pss, "pss_per_conn": (mem.pss - zero.pss) / per,
                "anon_per_conn": (mem.anon - zero.anon) / per,
                "rss_per_conn": (mem.rss - zero.rss) / per,
                "settle_s": max(reading.seconds, base.seconds),
                "settled": reading.settled and base.settled,
                "settle_readings": reading.readings, "base_settle_readings": base.readings,
                "base_by_process": base_procs, "held_by_process": _by_process(server.pid),
            }  # fmt: skip
        # After the last reading, so that the echoes' buffers are in no reading: a connection
        # the server dropped or forgot does not answer.
        echoed = await load.ws_echo_round(clients)
        _check_alive(server)
    finally:
        pings = sum(c.pings for c in clients)
        await load.close_ws(clients)
    for row in results.values():
        row["echoed"] = sum(echoed[: row["opened"]])
        row["pings"] = pings
        count = row["connections"]
        if row["opened"] < count:
            row["problem"] = (f"failed: opened {row['opened']} of {count} "
                              f"(first error: {row['first_error']})")  # fmt: skip
        elif row["held"] < count:
            row["problem"] = f"failed: the server closed {count - row['held']} of {count}"
        elif row["echoed"] < count:
            row["problem"] = f"failed: {count - row['echoed']} of {count} held did not echo"


def _ws_kib(values: list[float]) -> str:
    if not values:
        return "—"
    middle = f"{statistics.median(values) / 1024:.2f}"
    if len(values) == 1:
        return middle
    return f"{middle} [{min(values) / 1024:.2f}-{max(values) / 1024:.2f}]"


def _ws_status(runs: list[Row]) -> str:
    """ok, ok in k of n runs (with the first failure), or the first run's failure."""
    failures = [(i, r["problem"]) for i, r in enumerate(runs, 1) if "problem" in r]
    if not failures:
        return "ok"
    good = len(runs) - len(failures)
    if good == 0:
        return failures[0][1] if len(runs) == 1 else f"{failures[0][1]} (all {len(runs)} runs)"
    return f"ok in {good} of {len(runs)} runs; run {failures[0][0]}: {failures[0][1]}"


def _ws_idle_row(base: Row, runs: list[Row]) -> Row:
    measured = [r for r in runs if "pss_per_conn" in r]
    row: Row = {**base, "status": _ws_status(runs), "runs": runs}
    if not measured:
        return row
    for key in ("base_pss", "held_pss", "delta_pss", "pss_per_conn", "anon_per_conn",
                "rss_per_conn"):  # fmt: skip
        values = [r[key] for r in measured]
        row[key] = statistics.median(values)
        row[f"{key}_min"], row[f"{key}_max"] = min(values), max(values)
    row["pss_text"] = _ws_kib([r["pss_per_conn"] for r in measured])
    row["anon_text"] = _ws_kib([r["anon_per_conn"] for r in measured])
    row["held"] = min(r["held"] for r in measured)
    row["echoed"] = min(r["echoed"] for r in measured)
    row["pings"] = max(r["pings"] for r in measured)
    slowest = max(r["settle_s"] for r in measured)
    unsettled = sum(not r["settled"] for r in measured)
    row["settle_text"] = f"{slowest:.1f}" + (f" ({unsettled} not settled)" if unsettled else "")
    return row


def ws_idle(ctx: Context) -> Table:
    sizes = WS_SIZES[ctx.settings.mode]
    targets = list(_ws_targets(ctx))
    runs: dict[tuple[int, int], list[Row]] = {}  # (target index, count) -> one entry per run
    # Runs go round the servers, so a slow minute of the machine hits one run of each.
    for _ in range(sizes.idle_runs):
        for index, (prepared, variant) in enumerate(targets):
            if variant is None:
                continue
            results: dict[int, Row] = {}

            def body(
                prepared: Prepared = prepared,
                variant: WsVariant = variant,
                results: dict[int, Row] = results,
            ) -> Row:
                with _ws_server(ctx, prepared, variant) as server:
                    asyncio.run(_ws_hold(server, sizes, results))
                return {}

            outcome = _guard({}, prepared, body)
            for count in sizes.idle_counts:
                run = results.get(count) if outcome["status"] == "ok" else None
                runs.setdefault((index, count), []).append(run or {"problem": outcome["status"]})
    rows = []
    for count in sizes.idle_counts:
        for index, (prepared, variant) in enumerate(targets):
            base = {**_ws_base(prepared, variant), "connections": count}
            if variant is None:
                rows.append(_failed_row(base, "unavailable: no WebSocket support configured"))
            else:
                rows.append(_ws_idle_row(base, runs[(index, count)]))
    counts = " and ".join(f"{c:,}" for c in sizes.idle_counts)
    return Table(
        "ws_idle", f"Idle WebSockets: {counts} connections open and idle (raw ASGI echo app)",
        f"Per fresh server: {WS_WARM_CONNECTIONS} WebSockets opened, echoed once and closed "
        "(warm-up), base reading once memory settles, then connections opened (100 handshakes "
        "in flight) up to each count and held idle; the reading is taken once Pss and anonymous "
        "memory stay within 128 KiB for 1 s (at most "
        f"{sizes.settle_limit:.0f} s; 'settle s' is the slowest wait of the base and held "
        "readings, with the runs where the limit ran out). "
        "Per connection = (held - base) / connections held. Afterwards every connection sends "
        "one message: 'echoed' counts those that came back. Clients answer pings; 'pings' is how "
        f"many arrived during the run. No permessage-deflate offered. {sizes.idle_runs} run(s) "
        "per server, median [min-max].",
        (Column("server", "server"), Column("ws", "ws"), Column("connections", "conns", "int"),
         Column("held", "held", "int"), Column("echoed", "echoed", "int"),
         Column("base_pss", "base Pss", "mib"), Column("held_pss", "held Pss", "mib"),
         Column("delta_pss", "Δ Pss", "mib"), Column("pss_text", "Pss/conn KiB"),
         Column("anon_text", "anon/conn KiB"), Column("settle_text", "settle s"),
         Column("pings", "pings", "int"), Column("status", "status")),
        rows,
    )  # fmt: skip


async def _ws_echo_run(server: Server, sizes: WsSizes) -> Row:
    clients, opened = await load.open_ws(server.port, sizes.echo_clients)
    try:
        if opened.errors:
            raise LoadFailure(f"opened {opened.ok} of {sizes.echo_clients}: {opened.first_error}")
        warm = await load.ws_echo(clients, sizes.echo_warmup, WS_TEXT)
        if warm.errors:
            raise LoadFailure(f"warm-up: {warm.first_error}")
        cpu_before = cpu_seconds(server.pid)
        with PeakSampler(server.pid, interval=0.1) as sampler:  # 10 ms would slow the client
            result = await load.ws_echo(clients, sizes.echo_duration, WS_TEXT)
        cpu = cpu_seconds(server.pid) - cpu_before
    finally:
        await load.close_ws(clients)
    _check_alive(server)
    peak = sampler.peak()
    ms = [x * 1000 for x in result.latencies]
    return {
        "msgs_s": result.ok / result.elapsed, "messages": result.ok, "seconds": result.elapsed,
        "p50_ms": load.percentile(ms, 50), "p90_ms": load.percentile(ms, 90),
        "p99_ms": load.percentile(ms, 99), "max_ms": max(ms, default=0.0),
        "cpu_s": cpu, "msgs_per_cpu": result.ok / cpu if cpu > 0 else 0.0,
        "client_cores": result.client_cpu_s / result.elapsed,
        "errors": result.errors, "first_error": result.first_error,
        "peak_rss": peak.rss, "peak_pss": peak.pss, "raw_memory": sampler.samples,
    }  # fmt: skip


def _ws_echo_row(base: Row, runs: list[Row]) -> Row:
    measured = [r for r in runs if "msgs_s" in r]
    failures = [(i, r["status"]) for i, r in enumerate(runs, 1) if "msgs_s" not in r]
    row: Row = {**base, "runs": runs}
    if measured:
        rate = _spread([r["msgs_s"] for r in measured])
        row.update({
            "msgs_s": rate["median"], "msgs_s_min": rate["min"], "msgs_s_max": rate["max"],
            "p50_ms": statistics.median(r["p50_ms"] for r in measured),
            "p99_ms": statistics.median(r["p99_ms"] for r in measured),
            "msgs_per_cpu": statistics.median(r["msgs_per_cpu"] for r in measured),
            "client_cores": statistics.median(r["client_cores"] for r in measured),
            "peak_pss": max(r["peak_pss"] for r in measured),
            "errors": sum(r["errors"] for r in measured),
        })  # fmt: skip
    if not failures:
        errors = row.get("errors") or 0
        first = next((r["first_error"] for r in measured if r["first_error"]), None)
        row["status"] = f"ok, {errors} failed (first: {first})" if errors else "ok"
    elif not measured:
        row["status"] = failures[0][1]
    else:
        row["status"] = f"ok in {len(measured)} of {len(runs)} runs; run {failures[0][0]}: " + \
            failures[0][1]  # fmt: skip
    return row


def ws_echo(ctx: Context) -> Table:
    sizes = WS_SIZES[ctx.settings.mode]
    targets = list(_ws_targets(ctx))
    runs: dict[int, list[Row]] = {}
    for _ in range(sizes.echo_runs):
        for index, (prepared, variant) in enumerate(targets):
            if variant is None:
                continue

            def body(prepared: Prepared = prepared, variant: WsVariant = variant) -> Row:
                with _ws_server(ctx, prepared, variant) as server:
                    return asyncio.run(_ws_echo_run(server, sizes))

            runs.setdefault(index, []).append(_guard({}, prepared, body))
    rows = []
    for index, (prepared, variant) in enumerate(targets):
        base = {**_ws_base(prepared, variant), "clients": sizes.echo_clients}
        if variant is None:
            rows.append(_failed_row(base, "unavailable: no WebSocket support configured"))
        else:
            rows.append(_ws_echo_row(base, runs[index]))
    ok = [r for r in rows if "msgs_s" in r]
    reference = next((r for name in ("uvicorn-fast", "uvicorn") for r in ok
                      if r["server"] == name), None)  # fmt: skip
    for row in ok:
        if reference is not None and reference["msgs_s"]:
            row["ratio"] = row["msgs_s"] / reference["msgs_s"]
    ref = f"{reference['server']} ({reference['ws']})" if reference else "none"
    return Table(
        "ws_echo", f"WebSocket echo: {sizes.echo_clients} clients, each sends a "
        f"{len(WS_TEXT)}-byte text message and waits for its echo (raw ASGI echo app)",
        f"Per fresh server: {sizes.echo_clients} WebSockets, {sizes.echo_warmup:g} s of warm-up, "
        f"then {sizes.echo_duration:g} s measured; {sizes.echo_runs} run(s) per server, "
        "interleaved, median [min-max]. Latency is send to echo, per message, at the client. "
        "msgs/CPU-s = messages / (utime+stime of the server's whole tree); 'client cores' is "
        f"the harness's own CPU (the client shares the 2 cores). 'x ref' = over {ref}.",
        (Column("server", "server"), Column("ws", "ws"), Column("clients", "clients", "int"),
         Column("msgs_s", "msgs/s", "range"), Column("ratio", "x ref", "ratio"),
         Column("p50_ms", "p50 ms", "ms"), Column("p99_ms", "p99 ms", "ms"),
         Column("msgs_per_cpu", "msgs/CPU-s", "rps"),
         Column("client_cores", "client cores", "ratio"), Column("peak_pss", "peak Pss", "mib"),
         Column("errors", "errors", "int"), Column("status", "status")),
        rows,
    )  # fmt: skip


# --------------------------------------------------------------------------- TLS and HTTP/2


@dataclass(frozen=True)
class ProtoSizes:
    """How long the TLS and HTTP/2 workloads run in each mode."""

    tls_connections: int  # wrk connections, HTTP/1.1 keep-alive over TLS
    h2_clients: int  # h2load connections ...
    h2_streams: int  # ... and concurrent streams on each
    warmup: float  # seconds of load before the measured run, on the same server
    duration: float  # seconds per measured run
    runs: int


PROTO_SIZES = {
    "full": ProtoSizes(100, 10, 10, 1.0, 5.0, 3),
    "quick": ProtoSizes(100, 10, 10, 1.0, 3.0, 1),
    "smoke": ProtoSizes(100, 10, 10, 1.0, 1.0, 1),
}
H2_TRANSPORTS = ("h2 (TLS)", "h2c")


def _mib_text(values: list[float]) -> str:
    if not values:
        return "—"
    middle = f"{statistics.median(values) / 2**20:.1f}"
    if len(values) == 1:
        return middle
    return f"{middle} [{min(values) / 2**20:.1f}-{max(values) / 2**20:.1f}]"


@contextlib.contextmanager
def _certificate() -> Iterator[Tls | str]:
    """A fresh self-signed certificate in a temporary directory, or why there is none."""
    with tempfile.TemporaryDirectory(prefix="bench-tls-") as directory:
        try:
            tls: Tls | str = self_signed(Path(directory))
        except OSError as exc:
            tls = f"error: no certificate: {exc}"
        yield tls


def _proto_prepared(prepared: Prepared, cert: Tls) -> Prepared:
    """With the spec's config file for these workloads, written beside the certificate."""
    config = prepared.spec.proto_config
    if config is None:
        return prepared
    flag, name, text = config
    path = cert.certfile.parent / name
    path.write_text(text)
    return dataclasses.replace(prepared, extra_args=[*prepared.extra_args, flag, str(path)])


def _under_load(server: Server, sizes: ProtoSizes, drive: Callable[[float], Row]) -> Row:
    """Idle reading, warm-up, the measured run under the 10 ms peak sampler with the tree's CPU
    time, then the after-load reading. ``drive(seconds)`` runs the load generator once."""
    _settle(server)
    time.sleep(IDLE_DELAY)
    idle = read_tree(server.pid)
    warm = drive(sizes.warmup)
    _check_alive(server)
    cpu_before = cpu_seconds(server.pid)
    with PeakSampler(server.pid) as sampler:
        row = drive(sizes.duration)
    cpu = cpu_seconds(server.pid) - cpu_before
    time.sleep(AFTER_DELAY)
    _check_alive(server)
    after = read_tree(server.pid)
    done = row.pop("done")
    return {**_mem("idle", idle), **_mem("peak", sampler.peak()), **_mem("after", after), **row,
            "cpu_s": cpu, "rps_per_cpu": done / cpu if cpu > 0 else 0.0,
            "warmup_rps": warm["rps"], "warmup_problem": warm.get("problem"),
            "raw_memory": sampler.samples}  # fmt: skip


def _proto_rounds(targets: list[tuple[Prepared, Callable[[], Row]]], runs: int) -> list[list[Row]]:
    """Every target measured ``runs`` times, a fresh server each time, going round the targets
    (run 1 of each, then run 2 ...). A run that could not be measured becomes ``problem``."""
    results: list[list[Row]] = [[] for _ in targets]
    for _ in range(runs):
        for index, (prepared, measure) in enumerate(targets):
            run = _guard({}, prepared, measure)
            if not run["status"].startswith("ok"):
                run = {"problem": run["status"]}
            results[index].append(run)
    return results


def _proto_row(base: Row, runs: list[Row]) -> Row:
    """Medians over the measured runs, [min-max] for req/s and peak Pss."""
    measured = [r for r in runs if "rps" in r]
    row: Row = {**base, "status": _ws_status(runs), "runs": runs}
    if not measured:
        return row
    rate = _spread([r["rps"] for r in measured])
    row.update({"rps": rate["median"], "rps_min": rate["min"], "rps_max": rate["max"]})
    for key in ("p50_ms", "p99_ms", "mean_ms", "max_ms", "rps_per_cpu", "idle_pss", "peak_pss",
                "after_pss", "peak_rss"):  # fmt: skip
        values = [r[key] for r in measured if key in r]
        if values:
            row[key] = statistics.median(values)
    row["peak_pss_text"] = _mib_text([r["peak_pss"] for r in measured])
    row["after_pss_text"] = _mib_text([r["after_pss"] for r in measured])
    row["failed"] = sum(r["failed"] for r in measured)
    row["session"] = " / ".join(sorted({r["session"] for r in measured}))
    return row


def _tls_run(ctx: Context, prepared: Prepared, cert: Tls, sizes: ProtoSizes) -> Row:
    with ctx.server(prepared, tls=cert) as server:

        def drive(seconds: float) -> Row:
            result = load.run_wrk(server.port, sizes.tls_connections, seconds, tls=True)
            failed = result.errors + result.non_2xx
            return {
                "rps": result.rps, "p50_ms": result.p50_ms, "p99_ms": result.p99_ms,
                "done": result.requests, "failed": failed, "wrk_output": result.raw,
                **({"problem": f"failed: {result.errors} socket errors, {result.non_2xx} "
                    f"non-2xx of {result.requests}"} if failed else {}),
            }  # fmt: skip

        row = _under_load(server, sizes, drive)
        row["session"] = load.tls_session(server.port)
        return row


def tls(ctx: Context) -> Table:
    sizes = PROTO_SIZES[ctx.settings.mode]
    base = {"connections": sizes.tls_connections}
    rows: list[Row] = []
    with _certificate() as cert:
        missing = (
            cert if isinstance(cert, str)
            else None if load.wrk_path() else "unavailable: wrk not installed (apt-get install wrk)"
        )  # fmt: skip
        targets: list[tuple[Prepared, Callable[[], Row]]] = []
        reasons: dict[str, str] = {}
        for prepared in ctx.targets():
            if missing is not None:
                reasons[prepared.spec.name] = missing
            elif prepared.spec.tls is None:
                reasons[prepared.spec.name] = f"unavailable: {prepared.spec.no_tls}"
            elif isinstance(cert, Tls):
                configured = _proto_prepared(prepared, cert)

                def measure(prepared: Prepared = configured, cert: Tls = cert) -> Row:
                    return _tls_run(ctx, prepared, cert, sizes)

                targets.append((prepared, measure))
        measured = dict(
            zip((p.spec.name for p, _ in targets), _proto_rounds(targets, sizes.runs), strict=True)
        )
    for prepared in ctx.targets():
        name = prepared.spec.name
        if name in reasons:
            rows.append(_failed_row({"server": name, **base}, reasons[name]))
        else:
            rows.append(_proto_row({"server": name, **base}, measured[name]))
    ok = [r for r in rows if "rps" in r]
    reference = next((r for name in ("uvicorn-fast", "uvicorn") for r in ok
                      if r["server"] == name), None)  # fmt: skip
    for row in ok:
        if reference is not None and reference["rps"]:
            row["ratio"] = row["rps"] / reference["rps"]
    ref = reference["server"] if reference else "none"
    return Table(
        "tls", f"TLS: HTTP/1.1 keep-alive over TLS, wrk (1 thread) with {sizes.tls_connections} "
        "connections, GET / (FastAPI app)",
        f"Self-signed P-256 certificate made for the run. Per fresh server: idle reading, "
        f"{sizes.warmup:g} s of wrk warm-up, then {sizes.duration:g} s measured under the 10 ms "
        f"peak sampler, 'after' {AFTER_DELAY} s once wrk has closed its connections; "
        f"{sizes.runs} run(s) per server, interleaved, median [min-max]. 'TLS' is what a default "
        "OpenSSL client negotiates. req/CPU-s = requests / (utime+stime of the server's whole "
        f"tree). A run with any socket error or non-2xx response fails. 'x ref' = over {ref}.",
        (Column("server", "server"), Column("connections", "conns", "int"),
         Column("session", "TLS"), Column("rps", "req/s", "range"),
         Column("ratio", "x ref", "ratio"), Column("p50_ms", "p50 ms", "ms"),
         Column("p99_ms", "p99 ms", "ms"), Column("rps_per_cpu", "req/CPU-s", "rps"),
         Column("idle_pss", "idle Pss", "mib"), Column("peak_pss_text", "peak Pss MiB"),
         Column("after_pss_text", "after Pss MiB"), Column("failed", "failed", "int"),
         Column("status", "status")),
        rows,
    )  # fmt: skip


def _h2_run(ctx: Context, prepared: Prepared, cert: Tls | None, sizes: ProtoSizes) -> Row:
    with ctx.server(prepared, tls=cert) as server:

        def drive(seconds: float) -> Row:
            result = load.run_h2load(
                server.port, sizes.h2_clients, sizes.h2_streams, seconds, cert is not None
            )
            return {
                "rps": result.rps, "mean_ms": result.mean_ms, "max_ms": result.max_ms,
                "done": result.succeeded, "failed": result.failed, "protocol": result.protocol,
                "h2load_output": result.raw,
                **({"problem": f"failed: {result.problem}"} if result.problem else {}),
            }  # fmt: skip

        row = _under_load(server, sizes, drive)
        row["session"] = load.tls_session(server.port) if cert is not None else "cleartext"
        return row


def http2(ctx: Context) -> Table:
    sizes = PROTO_SIZES[ctx.settings.mode]
    streams = f"{sizes.h2_clients} x {sizes.h2_streams}"
    rows: list[Row] = []
    with _certificate() as cert:
        missing = cert if isinstance(cert, str) else None
        if missing is None and load.h2load_path() is None:
            missing = "unavailable: h2load not installed (apt-get install nghttp2-client)"
        keys: list[tuple[str, str]] = []  # (server, transport), in table order
        reasons: dict[tuple[str, str], str] = {}
        targets: list[tuple[Prepared, Callable[[], Row]]] = []
        for prepared in ctx.targets():
            name, h2 = prepared.spec.name, prepared.spec.http2
            for transport in H2_TRANSPORTS:
                key = (name, transport)
                keys.append(key)
                over_tls = transport == "h2 (TLS)"
                if missing is not None:
                    reasons[key] = missing
                elif h2 is None:
                    reasons[key] = f"unavailable: {prepared.spec.no_http2}"
                elif over_tls and (not h2.tls or prepared.spec.tls is None):
                    reasons[key] = "unavailable: no HTTP/2 over TLS"
                elif not over_tls and not h2.cleartext:
                    reasons[key] = "unavailable: no prior-knowledge h2c"
                elif isinstance(cert, Tls):
                    configured = _proto_prepared(prepared, cert)

                    def measure(
                        prepared: Prepared = configured,
                        cert: Tls | None = cert if over_tls else None,
                    ) -> Row:
                        return _h2_run(ctx, prepared, cert, sizes)

                    targets.append((prepared, measure))
        measured_keys = [k for k in keys if k not in reasons]
        measured = dict(zip(measured_keys, _proto_rounds(targets, sizes.runs), strict=True))
    for key in keys:
        base = {"server": key[0], "transport": key[1], "streams": streams}
        if key in reasons:
            rows.append(_failed_row(base, reasons[key]))
        else:
            rows.append(_proto_row(base, measured[key]))
    return Table(
        "http2", f"HTTP/2: h2load (1 thread), {sizes.h2_clients} connections x "
        f"{sizes.h2_streams} concurrent streams, GET / (FastAPI app)",
        f"{load.h2load_version()}. Over TLS ALPN must pick h2; 'h2c' is cleartext with prior "
        "knowledge (RFC 9113 §3.3), on a server started without TLS. Per fresh server: idle "
        f"reading, {sizes.warmup:g} s of h2load warm-up, then {sizes.duration:g} s measured under "
        f"the 10 ms peak sampler; {sizes.runs} run(s) per server and transport, interleaved, "
        "median [min-max]. Latency is h2load's mean and max time per request. A run with any "
        "failed, errored, timed-out or non-2xx request, or another protocol than asked, fails.",
        (Column("server", "server"), Column("transport", "transport"),
         Column("streams", "conns x streams"), Column("session", "TLS"),
         Column("rps", "req/s", "range"), Column("mean_ms", "mean ms", "ms"),
         Column("max_ms", "max ms", "ms"), Column("rps_per_cpu", "req/CPU-s", "rps"),
         Column("idle_pss", "idle Pss", "mib"), Column("peak_pss_text", "peak Pss MiB"),
         Column("after_pss", "after Pss", "mib"), Column("failed", "failed", "int"),
         Column("status", "status")),
        rows,
    )  # fmt: skip


@dataclass(frozen=True)
class Workload:
    name: str
    run: Callable[[Context], Table]


WORKLOADS: tuple[Workload, ...] = (
    Workload("sequential", sequential),
    Workload("concurrent", concurrent),
    Workload("idle_keepalive", idle_keepalive),
    Workload("multi_worker", multi_worker),
    Workload("throughput", throughput),
    Workload("large_bodies", large_bodies),
    Workload("ws_idle", ws_idle),
    Workload("ws_echo", ws_echo),
    Workload("tls", tls),
    Workload("http2", http2),
)
WORKLOAD_NAMES = tuple(w.name for w in WORKLOADS)
