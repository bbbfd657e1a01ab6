"""Markdown tables for the terminal and ``bench/results/``, the raw JSON, and the chart's data."""

from __future__ import annotations

import os
import platform
import resource
import subprocess
from pathlib import Path
from typing import Any

from bench import load
from bench.servers import ROOT, Prepared
from bench.workloads import Column, Row, Table

SCHEMA = 1


def _first_line(path: str, prefix: str) -> str:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(prefix):
                return line.split(":", 1)[1].strip() if ":" in line else line.split("=", 1)[1]
    except OSError:
        pass
    return "unknown"


def _bun_version() -> str:
    bun = ROOT / "node_modules" / ".bin" / "bun"
    if not bun.exists():
        return "not installed"
    done = subprocess.run([str(bun), "--version"], capture_output=True, text=True, check=False)
    return done.stdout.strip() or "unknown"


def machine() -> dict[str, Any]:
    mem_kib = _first_line("/proc/meminfo", "MemTotal").split()[0]
    return {
        "cpu": _first_line("/proc/cpuinfo", "model name"),
        "cpus": os.cpu_count(),
        "memory_mib": int(mem_kib) // 1024 if mem_kib.isdigit() else None,
        "kernel": platform.release(),
        "os": _first_line("/etc/os-release", "PRETTY_NAME=").strip('"'),
        "python": platform.python_version(),
        "bun": _bun_version(),
        "wrk": load.wrk_version(),
        "somaxconn": Path("/proc/sys/net/core/somaxconn").read_text().strip(),
        "nofile": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
    }


def _cell(row: Row, column: Column) -> str:
    value = row.get(column.key)
    if column.key == "status":
        text = str(value or "ok").replace("\n", " / ").replace("|", "\\|")
        return text if len(text) <= 400 else text[:397] + "..."
    if value is None or (isinstance(value, float) and value != value):  # missing or NaN
        return "—"
    match column.fmt:
        case "int":
            return f"{value:d}" if isinstance(value, int) else str(value)
        case "mib":
            return f"{value / 2**20:.1f}"
        case "per_conn":
            return f"{value / 1024:.1f} KiB" if abs(value) >= 1024 else f"{value:.0f} B"
        case "rps":
            return f"{value:,.0f}"
        case "ms":
            return f"{value:.2f}"
        case "ratio":
            return f"{value:.2f}"
        case "range":
            low, high = row.get(f"{column.key}_min"), row.get(f"{column.key}_max")
            if low is None or high is None or low == high:
                return f"{value:,.0f}"
            return f"{value:,.0f} [{low:,.0f}-{high:,.0f}]"
    return str(value).replace("|", "\\|")


def render_table(table: Table) -> str:
    lines = [f"## {table.title}", "", table.method, ""]
    lines.append("| " + " | ".join(c.header for c in table.columns) + " |")
    lines.append("|" + "|".join("---" for _ in table.columns) + "|")
    lines += ["| " + " | ".join(_cell(r, c) for c in table.columns) + " |" for r in table.rows]
    return "\n".join(lines) + "\n"


def render_header(meta: dict[str, Any], prepared: list[Prepared]) -> str:
    m = meta["machine"]
    lines = [
        f"# saltare benchmark — {meta['mode']} mode, {meta['date']}",
        "",
        f"Machine: {m['cpu']}, {m['cpus']} CPUs, {m['memory_mib']} MiB RAM, {m['os']}, "
        f"kernel {m['kernel']}. Harness Python {m['python']}, Bun {m['bun']}, {m['wrk']}. "
        f"somaxconn {m['somaxconn']}, RLIMIT_NOFILE {m['nofile']}.",
        "",
        "Memory figures are MiB summed over the server's whole process tree "
        "(/proc/PID/smaps_rollup); see docs/benchmarks.md for the method.",
        "",
        "| server | what | versions | status |",
        "|---|---|---|---|",
    ]
    for p in prepared:
        versions = ", ".join(f"{k} {v}" for k, v in p.versions.items()) or "—"
        status = f"unavailable: {p.unavailable}" if p.unavailable else "ok"
        lines.append(f"| {p.spec.name} | {p.spec.describe} | {versions} | "
                     f"{status.replace('|', '/')} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def to_json(meta: dict[str, Any], prepared: list[Prepared], tables: list[Table]) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "meta": meta,
        "servers": {
            p.spec.name: {
                "describe": p.spec.describe,
                "versions": p.versions,
                "unavailable": p.unavailable,
                "extra_args": p.extra_args,
            }
            for p in prepared
        },
        "workloads": {
            t.name: {
                "title": t.title,
                "method": t.method,
                "columns": [c.key for c in t.columns],
                "rows": t.rows,
            }
            for t in tables
        },
        "chart": chart_data(tables),
    }


# What the chart shows for each workload: (column, label).
_MEMORY_FIGURE = {
    "sequential": ("peak_pss", "sequential peak Pss"),
    "concurrent": ("peak_pss", "concurrent peak Pss"),
    "idle_keepalive": ("held_pss", "idle conns held Pss"),
    "multi_worker": ("idle_pss", "idle Pss"),
    "large_bodies": ("peak_rss", "peak RSS"),
}


def chart_data(tables: list[Table]) -> dict[str, list[dict[str, Any]]]:
    memory: list[dict[str, Any]] = []
    rps: list[dict[str, Any]] = []
    for table in tables:
        for row in table.rows:
            if not str(row.get("status")).startswith("ok"):
                continue
            if table.name == "throughput":
                group = f"{row['app']} c{row['connections']}"
                rps.append({"group": group, "server": row["server"], "value": row["rps"]})
            elif table.name in _MEMORY_FIGURE:
                key, label = _MEMORY_FIGURE[table.name]
                qualifier = "".join(
                    f" {row[k]}{suffix}" for k, suffix in
                    (("connections", " conns"), ("workers", "w"), ("phase", "")) if k in row
                )  # fmt: skip
                memory.append({"group": f"{label}{qualifier}", "server": row["server"],
                               "value": row[key] / 2**20})  # fmt: skip
    return {"memory_mib": memory, "rps": rps}
