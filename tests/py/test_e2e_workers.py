"""Several workers: dispatch across them, and replacement by the zygote."""

from __future__ import annotations

import asyncio
import subprocess
import sys

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
