"""The benchmark harness runs end to end in smoke mode and writes a complete report.

Only the report's structure is checked (tables, one row or failure reason per server, JSON keys),
never its numbers: CI machines are too noisy for figures to be asserted.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # the harness is a top-level package run from the repo root
    sys.path.insert(0, str(ROOT))

from bench.load import parse_h2load, parse_wrk, ws_frame  # noqa: E402
from bench.memory import read_tree, tree_pids  # noqa: E402

WORKLOADS = {
    "sequential",
    "concurrent",
    "idle_keepalive",
    "multi_worker",
    "throughput",
    "large_bodies",
    "ws_idle",
    "ws_echo",
    "tls",
    "http2",
}
SMOKE_SERVERS = {"saltare", "uvicorn"}

WRK_OUTPUT = """\
Running 1s test @ http://127.0.0.1:8000/
  1 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   190.50us   50.00us   2.10ms   90.00%
    Req/Sec    40.10k     1.00k   42.00k    80.00%
  Latency Distribution
     50%  180.00us
     75%  200.00us
     90%  250.00us
     99%    1.50ms
  40100 requests in 1.00s, 5.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:  40100.00
Transfer/sec:      5.00MB
"""


def test_wrk_output_is_parsed_into_rate_latencies_and_errors() -> None:
    result = parse_wrk(WRK_OUTPUT)
    assert result.rps == 40100.0
    assert result.requests == 40100
    assert result.p50_ms == pytest.approx(0.18)
    assert result.p99_ms == pytest.approx(1.5)
    assert result.errors == 3
    assert result.non_2xx == 4


H2LOAD_OUTPUT = """\
starting benchmark...
TLS Protocol: TLSv1.3
Cipher: TLS_AES_128_GCM_SHA256
Application protocol: h2
finished in 2.00s, 10884.00 req/s, 935.62KB/s
requests: 21768 total, 21868 started, 21768 done, 21768 succeeded, 0 failed, 0 errored, 0 timeout
status codes: 21768 2xx, 0 3xx, 0 4xx, 0 5xx
traffic: 1.83MB (1916144) total, 1.10MB (1153714) headers (space savings 47.00%), 361.38KB data
                     min         max         mean         sd        +/- sd
time for request:     1.08ms     29.96ms      8.98ms      2.98ms    87.14%
"""


def test_h2load_output_is_parsed_into_rate_latency_and_protocol() -> None:
    result = parse_h2load(H2LOAD_OUTPUT, "h2")
    assert result.rps == 10884.0
    assert result.succeeded == 21768
    assert result.failed == 0
    assert result.protocol == "h2"
    assert result.mean_ms == pytest.approx(8.98)
    assert result.max_ms == pytest.approx(29.96)
    assert result.problem is None


def test_h2load_runs_with_failures_or_another_protocol_are_problems() -> None:
    failing = H2LOAD_OUTPUT.replace("0 failed, 0 errored", "3 failed, 1 errored").replace(
        "0 5xx", "2 5xx"
    )
    assert parse_h2load(failing, "h2").failed == 6
    assert "3 failed, 1 errored" in (parse_h2load(failing, "h2").problem or "")
    # A server without h2 in its ALPN list: h2load falls back to HTTP/1.1, which is no h2 figure.
    fallback = H2LOAD_OUTPUT.replace("Application protocol: h2", "Application protocol: http/1.1")
    assert parse_h2load(fallback, "h2").problem == "negotiated http/1.1, not h2"
    nothing = H2LOAD_OUTPUT.replace("21768 succeeded", "0 succeeded")
    assert "no request completed" in (parse_h2load(nothing, "h2").problem or "")


def test_websocket_client_frames_are_masked_as_in_the_rfc_example() -> None:
    # RFC 6455 §5.7: a single-frame masked text message containing "Hello".
    mask = bytes((0x37, 0xFA, 0x21, 0x3D))
    assert ws_frame(0x1, b"Hello", mask) == bytes.fromhex("818537fa213d7f9f4d5158")
    # Lengths of 126 and more take the 16-bit extended length (RFC 6455 §5.2).
    assert ws_frame(0x2, b"x" * 200, mask)[:4] == bytes((0x82, 0x80 | 126, 0, 200))


def test_memory_is_read_from_every_process_of_the_tree_not_only_the_launcher() -> None:
    # A shell that starts two sleeping children: the tree has three processes.
    launcher = subprocess.Popen(["sh", "-c", "sleep 30 & sleep 30 & wait"], start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while len(tree_pids(launcher.pid)) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        pids = tree_pids(launcher.pid)
        assert pids[0] == launcher.pid
        assert len(pids) == 3
        memory = read_tree(launcher.pid)
        assert memory.procs == 3
        assert memory.rss >= memory.pss > 0
    finally:
        os.killpg(launcher.pid, signal.SIGKILL)  # its own session: the shell and both sleeps
        launcher.wait()


@pytest.mark.timeout(300)
def test_smoke_mode_writes_a_table_and_a_row_per_server_for_every_workload(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--mode", "smoke", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=290,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]

    (raw,) = tmp_path.glob("raw-smoke-*.json")
    (markdown,) = tmp_path.glob("smoke-*.md")
    report = json.loads(raw.read_text())
    assert {"schema", "meta", "servers", "workloads", "chart"} <= report.keys()
    assert report["meta"]["mode"] == "smoke"
    assert {"cpu", "cpus", "kernel", "python", "wrk"} <= report["meta"]["machine"].keys()
    assert set(report["servers"]) == SMOKE_SERVERS
    for server in report["servers"].values():
        assert server["versions"] or server["unavailable"]
    assert set(report["workloads"]) == WORKLOADS

    text = markdown.read_text()
    for name, workload in report["workloads"].items():
        assert f"## {workload['title']}" in text, name
        rows = workload["rows"]
        assert {row["server"].split(" x")[0] for row in rows} == SMOKE_SERVERS, name
        for row in rows:
            assert row["status"], (name, row)
            if row["status"].startswith("ok"):
                measured = [k for k in workload["columns"] if k not in ("server", "status")]
                assert any(row.get(k) is not None for k in measured), (name, row)
    # The WebSocket rows only count as measured when every connection was held and echoed.
    for name in ("ws_idle", "ws_echo"):
        for row in report["workloads"][name]["rows"]:
            assert row["ws"], (name, row)
            if name == "ws_idle" and row["status"] == "ok":
                assert row["held"] == row["echoed"] == row["connections"], row

    # TLS and HTTP/2 rows are figures measured with zero failed requests, or a reason; uvicorn
    # has no HTTP/2 and says so.
    for name in ("tls", "http2"):
        for row in report["workloads"][name]["rows"]:
            if row["status"] == "ok":
                assert row["rps"] > 0 and row["failed"] == 0 and row["peak_pss"] > 0, (name, row)
    h2_rows = report["workloads"]["http2"]["rows"]
    assert {row["transport"] for row in h2_rows} == {"h2 (TLS)", "h2c"}
    for row in h2_rows:
        if row["server"] == "uvicorn":
            assert row["status"].startswith("unavailable: uvicorn serves HTTP/1.1 only"), row

    # One markdown table per workload plus the server/version table, each with a row per server.
    separators = [line for line in text.splitlines() if line.startswith("|---")]
    assert len(separators) == len(WORKLOADS) + 1
    for server in SMOKE_SERVERS:
        assert text.count(f"| {server} |") >= len(WORKLOADS) + 1
