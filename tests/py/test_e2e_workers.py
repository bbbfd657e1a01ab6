"""Several workers: dispatch across them, and replacement by the zygote."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import httpx
from conftest import APPS


def test_the_factory_option_serves_the_app_the_factory_returns(serve) -> None:
    server = serve("factory_app:create_app", "--factory")
    assert httpx.get(server.url + "/").text == "made by the factory"


def test_factory_with_something_not_callable_exits_1_with_a_message() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "saltare",
            "factory_app:NOT_CALLABLE",
            "--factory",
            "--app-dir",
            str(APPS),
            "--port",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1
    assert "not callable" in result.stderr


async def _pids_under_load(url: str, requests: int) -> set[int]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:

        async def one() -> int:
            response = await client.get("/slow-pid")
            return int(response.json()["pid"])

        return set(await asyncio.gather(*(one() for _ in range(requests))))


def test_concurrent_requests_are_spread_over_every_worker(serve) -> None:
    server = serve("fastapi_app:app", "--workers", "3")
    pids = asyncio.run(_pids_under_load(server.url, 12))
    tree = set(server.pids())
    assert len(pids) == 3, pids
    assert pids <= tree


def test_a_crashed_worker_is_replaced_by_the_zygote_and_the_others_keep_serving(serve) -> None:
    server = serve("fastapi_app:app", "--workers", "2")
    before = asyncio.run(_pids_under_load(server.url, 8))
    assert len(before) == 2
    assert httpx.get(server.url + "/crash").status_code == 502
    server.wait_log(r"Worker \d+ \[\d+\] died .*starting a new one")
    after: set[int] = set()
    for _ in range(20):
        after |= asyncio.run(_pids_under_load(server.url, 8))
        if len(after - before) >= 1 and len(after) >= 2:
            break
    assert len(after - before) == 1, (before, after)
    assert len(after & before) == 1


async def _upload_while_blocked(url: str, uploads: int, size: int) -> list[int]:
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        blocker = asyncio.create_task(client.get("/block", params={"seconds": 1.5}))
        await asyncio.sleep(0.3)  # the worker's loop is now stuck in time.sleep

        async def one(i: int) -> int:
            body = bytes([i % 256]) * size
            response = await client.post("/sha256", content=body)
            assert response.status_code == 200
            return int(response.json()["size"])

        sizes = await asyncio.gather(*(one(i) for i in range(uploads)))
        assert (await blocker).status_code == 200
        return list(sizes)


def test_requests_sent_while_the_worker_is_blocked_wait_and_then_all_complete(serve) -> None:
    # 40 x 100 KiB is past the router's per-worker congestion mark (1 MiB queued), so some
    # of these requests wait in the router for the worker to catch up instead of piling up.
    server = serve("fastapi_app:app")
    sizes = asyncio.run(_upload_while_blocked(server.url, 40, 100 * 1024))
    assert sizes == [100 * 1024] * 40


def _router_environ(server) -> dict[str, str]:
    raw = Path(f"/proc/{server.proc.pid}/environ").read_bytes()
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {k.decode(): v.decode() for k, v in pairs}


def test_router_jit_baseline_is_the_default_and_full_keeps_every_tier(serve) -> None:
    default = serve("fastapi_app:app")
    assert _router_environ(default).get("BUN_JSC_useDFGJIT") == "0"
    assert httpx.get(default.url + "/pid").status_code == 200
    full = serve("fastapi_app:app", "--router-jit", "full")
    env = _router_environ(full)
    assert "BUN_JSC_useDFGJIT" not in env and "BUN_JSC_useJIT" not in env
    assert httpx.get(full.url + "/pid").status_code == 200
    off = serve("fastapi_app:app", "--router-jit", "off")
    assert _router_environ(off).get("BUN_JSC_useJIT") == "0"
    assert httpx.get(off.url + "/pid").status_code == 200


def test_a_crash_loop_backs_off_while_other_workers_keep_serving(serve) -> None:
    server = serve("fastapi_app:app", "--workers", "2")
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for _ in range(7):
            # Each crash kills whichever worker takes it; the zygote replaces it at once
            # until the deaths look like a loop.
            assert client.get("/crash").status_code in (502, 503)
            time.sleep(0.2)
        server.wait_log(r"crash loop, next start of this worker in \d+ s")
        # The server keeps serving with the workers it has, and the delayed one comes back.
        assert client.get("/pid").status_code == 200
    assert server.proc.poll() is None
