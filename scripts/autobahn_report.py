#!/usr/bin/env python3
"""Summarise an Autobahn|Testsuite fuzzingclient report by section.

Reads the report's index.json (``OUT/servers/index.json`` of ``scripts/autobahn.sh``), prints,
for each top-level section, how many cases came out OK, NON-STRICT, INFORMATIONAL,
UNIMPLEMENTED and FAILED, then every failed case with its description and what wstest said.

Besides a FAILED behaviour, a case whose behaviour passed (OK, NON-STRICT, INFORMATIONAL) but
whose closing handshake wstest marks FAILED or UNCLEAN counts in the CLOSE column and fails the
run too, as the HTML report shows it in red. ``WRONG CODE`` (a close code the spec does not
list) is shown but does not fail.

Exit status: 0 when every case passed, 1 when a case failed, none ran or fewer than
``--expect`` ran, 2 when the report cannot be read.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path
from typing import Any

SECTIONS = {  # CaseCategories of autobahntestsuite 0.8.2 (there are no cases in 8 and 11)
    0: "Handshake",
    1: "Framing",
    2: "Pings/Pongs",
    3: "Reserved Bits",
    4: "Opcodes",
    5: "Fragmentation",
    6: "UTF-8 Handling",
    7: "Close Handling",
    8: "Misc",
    9: "Limits/Performance",
    10: "Misc",
    12: "Compression (payloads)",
    13: "Compression (parameters)",
}
BEHAVIORS = ["OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED"]
PASSING = {"OK", "NON-STRICT", "INFORMATIONAL"}
CLOSE_FAILING = {"FAILED", "UNCLEAN"}


def case_key(case_id: str) -> tuple[int, ...]:
    return tuple(int(part) if part.isdigit() else 0 for part in case_id.split("."))


def load_case_detail(report_dir: Path, entry: dict[str, Any]) -> dict[str, Any]:
    """The per-case JSON file wstest writes beside index.json (description, result text)."""
    name = entry.get("reportfile")
    if not name:
        return {}
    try:
        detail: dict[str, Any] = json.loads((report_dir / name).read_text())
    except (OSError, ValueError):
        return {}
    return detail


def wrap(label: str, text: str) -> str:
    return textwrap.fill(
        " ".join(str(text).split()),
        width=96,
        initial_indent=f"    {label}: ",
        subsequent_indent=" " * (6 + len(label)),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "index",
        nargs="?",
        default="reports/autobahn/servers/index.json",
        help="the report's index.json (default: %(default)s)",
    )
    parser.add_argument("--agent", help="the agent (server) to report on (default: each one)")
    parser.add_argument(
        "--expect", type=int, help="number of cases that should have run (fail if fewer)"
    )
    args = parser.parse_args(argv)

    index_path = Path(args.index)
    try:
        index = json.loads(index_path.read_text())
    except (OSError, ValueError) as exc:
        print(f"autobahn report: cannot read {index_path}: {exc}", file=sys.stderr)
        return 2
    if not isinstance(index, dict):
        print(f"autobahn report: {index_path} is not a wstest report", file=sys.stderr)
        return 2
    if args.agent is not None:
        if args.agent not in index:
            print(
                f"autobahn report: no results for agent {args.agent!r} in {index_path} "
                f"(agents: {', '.join(sorted(index)) or 'none'}); did the server accept "
                "connections?",
                file=sys.stderr,
            )
            return 1
        agents = [args.agent]
    else:
        agents = sorted(index)
        if not agents:
            print(f"autobahn report: {index_path} holds no results", file=sys.stderr)
            return 1

    status = 0
    for agent in agents:
        if not report_agent(agent, index[agent], index_path.parent, args.expect):
            status = 1
    return status


def report_agent(agent: str, cases: dict[str, Any], report_dir: Path, expect: int | None) -> bool:
    """Print the table and the failures of one agent; True when everything passed."""
    counts: dict[int, dict[str, int]] = {}
    failures: list[tuple[str, str, dict[str, Any]]] = []
    close_failures: list[tuple[str, str, dict[str, Any]]] = []
    duration_ms = 0
    for case_id in sorted(cases, key=case_key):
        entry = cases[case_id]
        section = case_key(case_id)[0]
        row = counts.setdefault(section, dict.fromkeys([*BEHAVIORS, "CLOSE"], 0))
        behavior = entry.get("behavior", "FAILED")
        behavior_close = entry.get("behaviorClose", "FAILED")
        duration_ms += int(entry.get("duration") or 0)
        if behavior not in BEHAVIORS:  # e.g. NO_CLOSE: the HTML report shows it as failed
            behavior = "FAILED"
        row[behavior] += 1
        if behavior == "FAILED":
            failures.append((case_id, behavior_close, entry))
        elif behavior in PASSING and behavior_close in CLOSE_FAILING:
            row["CLOSE"] += 1
            close_failures.append((case_id, behavior_close, entry))

    columns = [*BEHAVIORS, "CLOSE"]
    widths = [len(c) + 2 for c in columns]

    def line(name: str, values: list[object], total: object) -> str:
        cells = "".join(f"{v!s:>{w}}" for v, w in zip(values, widths, strict=True))
        return f"{name:<28}{cells}{total!s:>7}"

    header = line("section", list(columns), "total")
    print(
        f"Autobahn fuzzingclient: {agent}, {len(cases)} cases, {duration_ms / 1000:.1f} s in cases"
    )
    print(header)
    print("-" * len(header))
    totals = dict.fromkeys(columns, 0)
    for section in sorted(counts):
        row = counts[section]
        name = f"{section} {SECTIONS.get(section, '')}".rstrip()
        print(line(name, [row[c] for c in columns], sum(row[b] for b in BEHAVIORS)))
        for c in columns:
            totals[c] += row[c]
    print("-" * len(header))
    print(line("total", [totals[c] for c in columns], len(cases)))
    print("(CLOSE: behaviour passed but the closing handshake FAILED or was UNCLEAN)")

    ok = True
    for title, items in (
        ("FAILED", failures),
        ("closing handshake FAILED/UNCLEAN", close_failures),
    ):
        if not items:
            continue
        ok = False
        print(f"\n{len(items)} case(s) {title}:")
        for case_id, behavior_close, entry in items:
            detail = load_case_detail(report_dir, entry)
            print(
                f"  {case_id}  behavior={entry.get('behavior')} close={behavior_close} "
                f"remoteCloseCode={entry.get('remoteCloseCode')}"
            )
            for label, key in (
                ("description", "description"),
                ("expectation", "expectation"),
                ("result", "result"),
                ("close", "resultClose"),
            ):
                if detail.get(key):
                    print(wrap(label, detail[key]))
            if entry.get("reportfile"):
                print(f"    details: {report_dir / Path(entry['reportfile']).with_suffix('.html')}")
    if not cases:
        print("\nno case ran")
        ok = False
    if expect is not None and len(cases) < expect:
        print(f"\nonly {len(cases)} of the {expect} cases ran (the server stopped answering?)")
        ok = False
    print(f"\n{agent}: {'PASS' if ok else 'FAIL'}")
    return ok


if __name__ == "__main__":
    sys.exit(main())
