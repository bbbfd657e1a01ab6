"""PNG chart from a raw JSON report; run with the tools venv's interpreter, which has matplotlib:

.bench-venvs/tools/bin/python -m bench.chart RAW.json OUT.png
"""

from __future__ import annotations

import json
import sys
from typing import Any


def _grouped(ax: Any, points: list[dict[str, Any]], ylabel: str) -> None:
    groups = list(dict.fromkeys(p["group"] for p in points))
    servers = list(dict.fromkeys(p["server"] for p in points))
    values = {(p["group"], p["server"]): p["value"] for p in points}
    width = 0.8 / max(len(servers), 1)
    for i, server in enumerate(servers):
        xs = [g + i * width for g in range(len(groups))]
        ys = [values.get((group, server), 0.0) for group in groups]
        ax.bar(xs, ys, width, label=server)
    ax.set_xticks([g + width * (len(servers) - 1) / 2 for g in range(len(groups))])
    ax.set_xticklabels(groups, rotation=30, ha="right", fontsize=7)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7, ncols=min(len(servers), 4))
    ax.grid(axis="y", alpha=0.3)


def main(argv: list[str]) -> int:
    # Imported here: the harness itself (standard library only) imports this package too.
    import matplotlib  # type: ignore[import-not-found, unused-ignore]  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # type: ignore[import-not-found, unused-ignore]  # noqa: PLC0415

    source, target = argv
    with open(source) as fh:
        report = json.load(fh)
    data = report["chart"]
    fig, (mem_ax, rps_ax) = plt.subplots(2, 1, figsize=(13, 10))
    _grouped(mem_ax, data["memory_mib"], "MiB (whole process tree)")
    mem_ax.set_title("Memory per workload")
    _grouped(rps_ax, data["rps"], "requests/s (wrk, median)")
    rps_ax.set_title("Throughput per server")
    meta = report["meta"]
    fig.suptitle(f"saltare benchmark, {meta['mode']} mode, {meta['date']}")
    fig.tight_layout()
    fig.savefig(target, dpi=110)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
