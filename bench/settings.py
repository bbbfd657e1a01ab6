"""The three modes as data: which servers run and how big each workload is."""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Settings:
    mode: str
    servers: tuple[str, ...]
    seq_requests: int = 1000
    conc_connections: int = 100
    conc_requests: int = 20
    idle_counts: tuple[int, ...] = (500, 5000)
    mw_workers: tuple[int, ...] = (1, 2, 4)
    tp_apps: tuple[str, ...] = ("fastapi", "raw")
    tp_levels: tuple[int, ...] = (1, 64, 256)
    tp_duration: int = 10  # seconds per wrk run
    tp_warmup: int = 2  # seconds of wrk before the measured runs, per connection level
    tp_runs: int = 3
    tp_workers: int = 2  # N for the multi-worker throughput rows
    tp_multi_rows: bool = True
    upload_bytes: int = 50 * 1024 * 1024
    blob_requests: int = 200
    chart: bool = True
    install_wrk: bool = True


ALL_SERVERS = ("saltare", "uvicorn", "uvicorn-fast", "granian", "hypercorn", "saltare-zig",
               "gunicorn")  # fmt: skip

MODES: dict[str, Settings] = {
    # About 13 minutes on 2 cores once the venvs exist: 8 throughput targets x 2 apps x 3
    # levels x 3 runs leave ~3 s per wrk run inside the 15-minute budget (see docs/benchmarks.md).
    "full": Settings("full", ALL_SERVERS, tp_duration=3, tp_warmup=1),
    "quick": Settings(
        "quick", ("saltare", "uvicorn-fast"), idle_counts=(500,), mw_workers=(1, 2),
        tp_duration=2, tp_warmup=1, tp_runs=1, tp_multi_rows=False, blob_requests=100,
    ),
    "smoke": Settings(
        "smoke", ("saltare", "uvicorn"), seq_requests=100, conc_connections=10, conc_requests=5,
        idle_counts=(50,), mw_workers=(1, 2), tp_apps=("raw",), tp_levels=(8,), tp_duration=1,
        tp_warmup=1, tp_runs=1, tp_multi_rows=False, upload_bytes=5 * 1024 * 1024,
        blob_requests=10, chart=False, install_wrk=False,
    ),
}  # fmt: skip


def for_mode(mode: str, servers: tuple[str, ...] | None, duration: int | None) -> Settings:
    settings = MODES[mode]
    if servers is not None:
        settings = replace(settings, servers=servers)
    if duration is not None:
        settings = replace(settings, tp_duration=duration)
    return settings
