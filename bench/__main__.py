"""Entry point: ``python -m bench --mode smoke|quick|full [--servers a,b] [--workloads x,y]``."""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType
from typing import Any

from bench import load, report, servers, venvs
from bench.settings import ALL_SERVERS, MODES, for_mode
from bench.workloads import WORKLOAD_NAMES, WORKLOADS, Context, Table


def _names(text: str, allowed: tuple[str, ...], what: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in allowed]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown {what} {', '.join(unknown) or '(none given)'}; "
            f"choose from {', '.join(allowed)}"
        )
    return names


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--mode", choices=list(MODES), default="quick")
    parser.add_argument("--servers", type=lambda t: _names(t, ALL_SERVERS, "server"),
                        help=f"comma-separated subset of: {', '.join(ALL_SERVERS)}")  # fmt: skip
    parser.add_argument("--workloads", type=lambda t: _names(t, WORKLOAD_NAMES, "workload"),
                        help=f"comma-separated subset of: {', '.join(WORKLOAD_NAMES)}")  # fmt: skip
    parser.add_argument("--out", type=Path, default=servers.ROOT / "bench" / "results",
                        help="directory for the markdown report, raw JSON and chart")  # fmt: skip
    parser.add_argument("--duration", type=int, help="seconds per wrk run (overrides the mode)")
    parser.add_argument("--no-chart", action="store_true", help="skip the PNG chart")
    return parser


def _raise_nofile() -> None:
    # The idle workload holds thousands of sockets; servers inherit the raised limit.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _ensure_wrk(install: bool) -> str | None:
    """None when wrk is usable, else why the throughput workload cannot run."""
    if load.wrk_path() is not None:
        return None
    if not install:
        return "wrk not installed (this mode does not install it: apt-get install wrk)"
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return "wrk not installed and cannot install it (needs root and apt-get)"
    _say("installing wrk with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (["apt-get", "update"], ["apt-get", "install", "-y", "wrk"]):
        done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
        if done.returncode != 0:
            return f"`{' '.join(argv)}` failed: {done.stderr.strip()[-300:]}"
    return None if load.wrk_path() is not None else "wrk still missing after apt-get install"


def _say(text: str) -> None:
    print(f"bench: {text}", file=sys.stderr, flush=True)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _chart(raw: Path, png: Path) -> str:
    try:
        bin_dir = venvs.ensure("tools", venvs.MATPLOTLIB)
    except venvs.VenvError as exc:
        return f"chart not drawn: {exc}"
    done = subprocess.run(
        [str(bin_dir / "python"), "-m", "bench.chart", str(raw), str(png)],
        cwd=servers.ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        return f"chart not drawn: {done.stderr.strip()[-300:]}"
    return f"![memory and throughput]({png.name})"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = for_mode(args.mode, args.servers, args.duration)
    chosen = set(args.workloads or WORKLOAD_NAMES)
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    log_dir = venvs.VENVS / "logs" / stamp
    log_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    signal.signal(signal.SIGTERM, _on_sigterm)
    _raise_nofile()

    _say(f"{settings.mode} mode: preparing {', '.join(settings.servers)}")
    specs = [s for s in servers.SPECS if s.name in settings.servers]
    with ThreadPoolExecutor(max_workers=4) as pool:
        prepared = list(pool.map(servers.prepare, specs))
    for p in prepared:
        if p.unavailable:
            _say(f"{p.spec.name} unavailable: {p.unavailable}")
    wrk_missing = _ensure_wrk(settings.install_wrk) if "throughput" in chosen else None
    ctx = Context(settings, {p.spec.name: p for p in prepared}, log_dir, wrk_missing)
    meta: dict[str, Any] = {
        "mode": settings.mode,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": report.machine(),
        "settings": {k: v for k, v in vars(settings).items()},
        "server_logs": str(log_dir),
    }
    header = report.render_header(meta, prepared)
    print(header)
    tables: list[Table] = []
    try:
        for workload in WORKLOADS:
            if workload.name not in chosen:
                continue
            _say(f"workload {workload.name}")
            t0 = time.monotonic()
            table = workload.run(ctx)
            table.method += f" ({time.monotonic() - t0:.0f} s)"
            tables.append(table)
            print(report.render_table(table), flush=True)
    except KeyboardInterrupt:
        _say("interrupted: stopping servers")
        return 130
    finally:
        servers.stop_all()
    meta["elapsed_s"] = round(time.monotonic() - started, 1)

    raw = out / f"raw-{settings.mode}-{stamp}.json"
    raw.write_text(json.dumps(report.to_json(meta, prepared, tables), indent=1))
    chart = "chart skipped (--no-chart or smoke mode)"
    if settings.chart and not args.no_chart:
        chart = _chart(raw, out / f"chart-{settings.mode}-{stamp}.png")
    markdown = out / f"{settings.mode}-{stamp}.md"
    body = "\n".join(report.render_table(t) for t in tables)
    markdown.write_text(f"{header}\n{chart}\n\n{body}\nTotal time {meta['elapsed_s']} s. "
                        f"Raw samples: {raw.name}.\n")  # fmt: skip
    _say(f"{chart}")
    _say(f"wrote {markdown} and {raw} in {meta['elapsed_s']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
