"""The workloads. Each is a small function registered in ``WORKLOADS`` that returns a ``Table``.

Adding a workload (WebSocket idle connections, TLS, HTTP/2 ...) means writing one function that
starts servers through ``Context.server`` and returns rows, then registering it at the bottom.
Every selected server gets a row in every table: a measurement, or the reason there is none.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import load
from bench.memory import Memory, PeakSampler, cpu_seconds, read_tree
from bench.servers import Prepared, Server, StartError
from bench.settings import Settings

IDLE_DELAY = 0.5  # idle reading: this long after the first 200 on GET /
AFTER_DELAY = 0.3  # after-load reading: this long after the load ends
APPS = {"fastapi": "fastapi_app:app", "raw": "raw_app:app"}
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
        self, prepared: Prepared, app: str = "fastapi", workers: int = 1
    ) -> Iterator[Server]:
        server = Server(prepared, APPS[app], workers, self.log_dir)
        print(f"bench:   {prepared.spec.name} x{workers} {app}", file=sys.stderr, flush=True)
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
)
WORKLOAD_NAMES = tuple(w.name for w in WORKLOADS)
