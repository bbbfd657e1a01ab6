"""What happens when the app breaks the ASGI contract or the declared framing."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time

import httpx
from conftest import APPS
from rawhttp import RawConnection


def test_a_body_longer_than_its_content_length_is_cut_and_the_connection_closed(serve) -> None:
    server = serve("contract_app:app")
    with RawConnection.to(server) as conn:
        conn.send(b"GET /too-long HTTP/1.1\r\nHost: x\r\n\r\n")
        raw = conn.read_until_eof()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert body == b"01234"
    server.wait_log(r"longer than its content-length")


def test_a_body_shorter_than_its_content_length_closes_the_connection(serve) -> None:
    server = serve("contract_app:app")
    with RawConnection.to(server) as conn:
        conn.send(b"GET /too-short HTTP/1.1\r\nHost: x\r\n\r\n")
        raw = conn.read_until_eof()
    assert raw.endswith(b"\r\n\r\n01234")
    server.wait_log(r"shorter than its content-length")
    assert httpx.get(server.url + "/").text == "ok"


def test_messages_in_the_wrong_order_or_of_the_wrong_type_raise_inside_the_app(serve) -> None:
    server = serve("contract_app:app")
    errors = json.loads(httpx.get(server.url + "/messages").content)
    assert errors == [
        "RuntimeError: Expected ASGI message 'http.response.start', but got 'http.response.body'.",
        "RuntimeError: Invalid HTTP status code '200' in response.",
        "RuntimeError: ASGI response header names and values must be bytes.",
        "RuntimeError: Invalid HTTP header value b'a\\r\\nb'.",
        "RuntimeError: Expected ASGI message 'http.response.body', but got 'http.response.start'.",
        "RuntimeError: ASGI 'http.response.body' body must be bytes.",
    ]
    assert httpx.get(server.url + "/").text == "ok"


def test_the_python_option_runs_the_app_with_the_named_interpreter(serve) -> None:
    server = serve("contract_app:app", "--python", sys.executable)
    assert httpx.get(server.url + "/").text == "ok"


def test_a_python_option_that_is_not_an_interpreter_is_refused() -> None:
    missing = "/nonexistent/python3"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "saltare",
            "contract_app:app",
            "--app-dir",
            str(APPS),
            "--python",
            missing,
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert f"--python {missing}" in result.stderr
    assert shutil.which(missing) is None


def test_a_receive_kept_past_the_app_call_never_sees_another_request(serve) -> None:
    server = serve("contract_app:app")
    with httpx.Client(base_url=server.url) as client:
        assert client.get("/keep-receive").text == "kept"
        # A request whose body is unread while the leftover task calls receive().
        assert client.post("/slow-echo", content=b"secret").content == b"secret"
        leaked: list[str] = []
        for _ in range(50):
            leaked = json.loads(client.get("/leaked").content)
            if leaked:
                break
            time.sleep(0.05)
    assert leaked == ["http.disconnect:b''"]
