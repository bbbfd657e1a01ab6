"""Metrics, health and the access log, end to end against the real server."""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families
from rawhttp import RawConnection, request

ECHO = "echo_scope:app"
LIFESPAN = "lifespan_app:app"


def exchange(port: int, data: bytes) -> bytes:
    """Send ``data`` on a new connection and return every byte until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        return received


def scrape_raw(conn: RawConnection) -> tuple[bytes, bytes, dict[str, float]]:
    """One scrape on a kept-alive connection: (request bytes, response bytes, samples)."""
    sent = request("GET", "/metrics")
    conn.send(sent)
    response = conn.read_response()
    assert response.status == 200
    assert response.header("content-type") == "text/plain; version=0.0.4; charset=utf-8"
    return sent, response.raw + response.body, parse(response.body.decode())


def parse(text: str) -> dict[str, float]:
    """Every sample as ``name{label="v",...}`` -> value, through prometheus_client's parser."""
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


def wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def test_metrics_are_valid_exposition_and_count_traffic_exactly(serve):
    server = serve(ECHO, "--metrics-path", "/metrics")
    scrapes: list[tuple[int, int]] = []  # (request bytes, response bytes) of every scrape

    with RawConnection.to(server) as conn:

        def scrape() -> dict[str, float]:
            sent, answer, samples = scrape_raw(conn)
            scrapes.append((len(sent), len(answer)))
            return samples

        before = scrape()
        requests = [
            request("GET", "/a", [("Connection", "close")]),
            request("POST", "/b", [("Connection", "close")], body=b"x" * 1000),
            request("GET", "/c?q=1", [("Connection", "close")]),
            b"GET /bad\x01 HTTP/1.1\r\nHost: x\r\n\r\n",  # the router answers 400
        ]
        responses = [exchange(server.port, data) for data in requests]
        assert [r.split(b" ", 2)[1] for r in responses] == [b"200", b"200", b"200", b"400"]
        # Wait until the router has seen the four connections close.
        wait_for(lambda: scrape()["saltare_open_connections"] == 1)
        after = scrape()

    def delta(name: str) -> float:
        return after[name] - before[name]

    # Scrapes are not counted as requests; only the four above are.
    assert delta('saltare_requests_total{status="2xx"}') == 3
    assert delta('saltare_requests_total{status="4xx"}') == 1
    assert delta('saltare_requests_total{status="5xx"}') == 0
    assert delta("saltare_request_duration_seconds_count") == 4
    assert delta('saltare_request_duration_seconds_bucket{le="+Inf"}') == 4
    # Their bytes cross the sockets like any other: a sample includes its own request, not
    # its own response.
    assert delta("saltare_bytes_received_total") == sum(map(len, requests)) + sum(
        sent for sent, _ in scrapes[1:]
    )
    assert delta("saltare_bytes_sent_total") == sum(map(len, responses)) + sum(
        answer for _, answer in scrapes[:-1]
    )
    assert after["saltare_in_flight_requests"] == 0
    assert after["saltare_websocket_connections"] == 0
    assert after["saltare_workers_ready"] == 1
    assert after["saltare_worker_restarts_total"] == 0


def test_metrics_bytes_match_the_wire_exactly_without_polling(serve):
    server = serve(ECHO, "--metrics-path", "/metrics")
    with RawConnection.to(server) as conn:
        _, first_response, before = scrape_raw(conn)
        data = request("PUT", "/upload", body=b"y" * 5000)
        with RawConnection.to(server) as other:
            other.send(data)
            response = other.read_response()
            answer = response.raw + response.body
            second_request, _, after = scrape_raw(conn)
    sent = after["saltare_bytes_sent_total"] - before["saltare_bytes_sent_total"]
    received = after["saltare_bytes_received_total"] - before["saltare_bytes_received_total"]
    assert sent == len(first_response) + len(answer)
    assert received == len(data) + len(second_request)
    assert (
        after['saltare_requests_total{status="2xx"}']
        - before['saltare_requests_total{status="2xx"}']
        == 1
    )
    # The other connection is still open: it and the scraping one.
    assert after["saltare_open_connections"] == 2


def test_in_flight_requests_and_websockets_are_gauges(serve, tmp_path):
    pytest.importorskip("websockets")
    from websockets.sync.client import connect  # noqa: PLC0415

    server = serve("ws_app:app", "--metrics-path", "/metrics")
    with RawConnection.to(server) as conn:
        with connect(f"ws://127.0.0.1:{server.port}/echo") as ws:
            ws.send("hi")
            assert ws.recv(timeout=5) == "hi"
            _, _, during = scrape_raw(conn)
        wait_for(lambda: scrape_raw(conn)[2]["saltare_websocket_connections"] == 0)
        _, _, after = scrape_raw(conn)
    assert during["saltare_websocket_connections"] == 1
    assert during['saltare_requests_total{status="1xx"}'] == 1  # the 101
    assert during["saltare_in_flight_requests"] == 0
    assert after["saltare_open_connections"] == 1


def test_in_flight_counts_a_request_the_app_is_still_handling(serve, tmp_path):
    server = serve(
        LIFESPAN,
        "--metrics-path",
        "/metrics",
        env={"MARKER_DIR": str(tmp_path), "SLOW_SECONDS": "2"},
    )
    with RawConnection.to(server) as slow, RawConnection.to(server) as conn:
        slow.send(request("GET", "/slow"))
        wait_for((tmp_path / "slow.started").exists)
        _, _, during = scrape_raw(conn)
        assert slow.read_response().body == b"slow done"
        _, _, after = scrape_raw(conn)
    assert during["saltare_in_flight_requests"] == 1
    assert after["saltare_in_flight_requests"] == 0
    assert after["saltare_request_duration_seconds_sum"] >= 2


def test_worker_memory_and_restarts_cover_every_worker(serve):
    server = serve(ECHO, "--workers", "2", "--metrics-path", "/metrics")
    with RawConnection.to(server) as conn:
        _, _, before = scrape_raw(conn)
        workers = {
            key: value
            for key, value in before.items()
            if key.startswith("saltare_worker_resident_memory_bytes{")
        }
        assert len(workers) == 2
        assert all(value > 1024 * 1024 for value in workers.values())
        pss = sum(
            value
            for key, value in before.items()
            if key.startswith("saltare_worker_proportional_memory_bytes{")
        )
        assert before["saltare_tree_proportional_memory_bytes"] > pss
        assert before["saltare_tree_resident_memory_bytes"] > sum(workers.values())
        assert before["saltare_router_resident_memory_bytes"] > 1024 * 1024

        victim = int(next(iter(workers)).split('pid="')[1].split('"')[0])
        os.kill(victim, signal.SIGKILL)

        def replaced() -> bool:
            samples = scrape_raw(conn)[2]
            return (
                samples["saltare_worker_restarts_total"] == 1
                and samples["saltare_workers_ready"] == 2
            )

        wait_for(replaced, timeout=20)
        time.sleep(1.1)  # memory samples are cached for a second
        _, _, after = scrape_raw(conn)
    pids = {key for key in after if key.startswith("saltare_worker_resident_memory_bytes{")}
    assert len(pids) == 2
    assert not any(f'pid="{victim}"' in key for key in pids)


def test_the_metrics_path_never_reaches_the_app_and_other_paths_do(serve, calls):
    server = serve(ECHO, "--metrics-path", "/metrics", env={"ECHO_CALLS": calls.path})
    with RawConnection.to(server) as conn:
        scrape_raw(conn)
        conn.send(request("GET", "/metrics/x"))
        assert conn.read_response().status == 200
    assert calls() == ["GET /metrics/x"]


def test_health_is_200_while_serving_and_503_while_draining(serve, tmp_path):
    server = serve(
        LIFESPAN,
        "--health-path",
        "/healthz",
        env={"MARKER_DIR": str(tmp_path), "SLOW_SECONDS": "3"},
    )
    with RawConnection.to(server) as conn:
        conn.send(request("GET", "/healthz"))
        response = conn.read_response()
        assert (response.status, response.body) == (200, b"ok\n")
    with RawConnection.to(server) as slow, RawConnection.to(server) as probe:
        # A request in flight keeps the drain going; a half-sent head keeps the probe's
        # connection from being closed as idle when the drain starts.
        slow.send(request("GET", "/slow"))
        wait_for((tmp_path / "slow.started").exists)
        probe.send(b"GET /healthz HTTP/1.1\r\n")
        server.proc.send_signal(signal.SIGTERM)
        server.wait_log("Shutting down")
        probe.send(b"Host: x\r\n\r\n")
        response = probe.read_response()
        assert response.status == 503
        assert response.body == b"draining\n"
        assert slow.read_response().body == b"slow done"
    assert server.proc.wait(30) == 0


# -- access log ---------------------------------------------------------------------------------


def access_lines(server, count: int, timeout: float = 10.0) -> list[dict[str, object]]:
    """The first ``count`` access log lines (JSON objects with a ``latency_us`` key)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = [line for line in server.lines if line.startswith("{") and "latency_us" in line]
        if len(lines) >= count or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    for line in lines:
        assert all(0x20 <= ord(c) <= 0x7E for c in line), line
    return [json.loads(line) for line in lines]


def test_access_log_lines_match_the_requests_sent(serve):
    server = serve(ECHO, "--access-log")
    with RawConnection.to(server) as conn:
        conn.send(request("GET", "/one?x=1", [("User-Agent", "tester/1.0")]))
        conn.read_response()
        conn.send(request("POST", "/two", body=b"12345"))
        conn.read_response()
        port = conn.local_port
    with RawConnection.to(server) as conn:
        conn.send(request("GET", "/three", version="HTTP/1.0"))
        conn.read_response()
    first, second, third = access_lines(server, 3)
    assert first["method"] == "GET"
    assert first["path"] == "/one?x=1"
    assert first["status"] == 200
    assert first["user_agent"] == "tester/1.0"
    assert first["client"] == f"127.0.0.1:{port}"
    assert first["http_version"] == "1.1"
    assert isinstance(first["latency_us"], int) and first["latency_us"] >= 0
    assert isinstance(first["bytes"], int) and first["bytes"] > 0
    assert (second["method"], second["path"], second["user_agent"]) == ("POST", "/two", None)
    assert (third["path"], third["http_version"]) == ("/three", "1.0")
    assert time.strftime("%Y-%m-%dT", time.gmtime()) in str(first["time"])


def test_access_log_bytes_are_the_response_as_sent(serve):
    server = serve(ECHO, "--access-log")
    with RawConnection.to(server) as conn:
        conn.send(request("GET", "/size"))
        response = conn.read_response()
    (line,) = access_lines(server, 1)
    assert line["bytes"] == len(response.raw) + len(response.body)


def test_hostile_request_content_is_escaped_and_cannot_forge_lines(serve):
    server = serve(ECHO, "--access-log")
    hostile_path = '/a"b\\c/{"status":999}/%0d%0a'
    hostile_ua = b'evil\t\x80\xff"\\ \xc3\xa9'  # HTAB and obs-text are legal in a field value
    with RawConnection.to(server) as conn:
        conn.send(
            f"GET {hostile_path} HTTP/1.1\r\nHost: x\r\nUser-Agent: ".encode()
            + hostile_ua
            + b"\r\n\r\n"
        )
        assert conn.read_response().status == 200
    # Control bytes and non-ASCII in the target are refused before a request exists: the line
    # says so without echoing any of it.
    with RawConnection.to(server) as conn:
        conn.send(b"GET /x\x1b[31m\r\n\xff HTTP/1.1\r\nHost: x\r\n\r\n")
        assert conn.read_response().status == 400
    first, second = access_lines(server, 2)
    assert first["path"] == hostile_path
    assert first["status"] == 200
    # The JSON string's code points are the received bytes (latin-1).
    assert str(first["user_agent"]).encode("latin-1") == hostile_ua
    assert (second["method"], second["path"], second["status"]) == ("", "", 400)
    assert len([line for line in server.lines if "999" in line]) == 1


def test_access_log_exclude_leaves_out_exact_paths(serve):
    server = serve(
        ECHO,
        "--access-log",
        "--health-path",
        "/healthz",
        "--access-log-exclude",
        "/healthz",
        "--access-log-exclude",
        "/quiet",
    )
    with RawConnection.to(server) as conn:
        for path in ("/healthz", "/quiet", "/quiet?x=1", "/quiet/more", "/loud"):
            conn.send(request("GET", path))
            conn.read_response()
    time.sleep(0.3)
    assert [line["path"] for line in access_lines(server, 2)] == ["/quiet/more", "/loud"]


def test_access_log_lines_never_interleave_under_concurrency(serve):
    server = serve(ECHO, "--access-log", "--workers", "2")
    per_thread = 50

    def client(index: int) -> None:
        with RawConnection.to(server) as conn:
            for i in range(per_thread):
                conn.send(request("GET", f"/t{index}/{i}/" + "p" * 200))
                conn.read_response()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = access_lines(server, 8 * per_thread)
    assert len(lines) == 8 * per_thread
    for line in server.lines:
        assert line.startswith(("{", "INFO:", "DEBUG:", "WARNING:")), line


def test_log_format_json_makes_every_server_line_json(serve):
    server = serve(ECHO, "--log-format", "json", "--workers", "2", "--log-level", "debug")
    with RawConnection.to(server) as conn:
        conn.send(request("GET", "/"))
        conn.read_response()
    assert server.stop() == 0
    entries = [json.loads(line) for line in server.lines if line]
    loggers = {entry["logger"] for entry in entries}
    assert {"saltare", "saltare.router"} <= loggers
    for entry in entries:
        assert set(entry) == {"time", "level", "logger", "pid", "message"}
        assert entry["level"] in {"trace", "debug", "info", "warning", "error", "critical"}
    assert any("listening on" in entry["message"] for entry in entries)


def h2_get(
    port: int, path: str, headers: tuple[tuple[str, str], ...] = (), prefix: bytes = b""
) -> dict:
    """One HTTP/2 request in clear text (prior knowledge): status, headers and body."""
    import h2.config  # noqa: PLC0415
    import h2.connection  # noqa: PLC0415
    import h2.events  # noqa: PLC0415

    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        conn.initiate_connection()
        stream = conn.get_next_available_stream_id()
        conn.send_headers(
            stream,
            [
                (":method", "GET"),
                (":scheme", "http"),
                (":authority", "x"),
                (":path", path),
                *headers,
            ],
            end_stream=True,
        )
        sock.sendall(prefix + conn.data_to_send())
        result: dict = {"body": b""}
        while "done" not in result:
            data = sock.recv(65536)
            if not data:
                break
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived):
                    result["headers"] = dict(event.headers)
                    result["status"] = int(result["headers"][b":status"])
                elif isinstance(event, h2.events.DataReceived):
                    result["body"] += event.data
                    conn.acknowledge_received_data(event.flow_controlled_length, stream)
                elif isinstance(event, h2.events.StreamEnded):
                    result["done"] = True
            sock.sendall(conn.data_to_send())
        return result


def test_http2_requests_are_counted_logged_and_answered_like_http1(serve):
    server = serve(
        ECHO,
        "--metrics-path",
        "/metrics",
        "--health-path",
        "/healthz",
        "--access-log",
        "--proxy-headers",
    )
    assert h2_get(server.port, "/healthz")["body"] == b"ok\n"
    before = parse(h2_get(server.port, "/metrics")["body"].decode())
    answer = h2_get(
        server.port,
        "/h2?x=1",
        (("user-agent", "h2-client"), ("x-forwarded-for", "203.0.113.77")),
    )
    assert answer["status"] == 200
    scope = json.loads(answer["body"])
    assert (scope["http_version"], scope["client"]) == ("2", ["203.0.113.77", 0])
    after = parse(h2_get(server.port, "/metrics")["body"].decode())
    assert (
        after['saltare_requests_total{status="2xx"}']
        - before['saltare_requests_total{status="2xx"}']
        == 1
    )
    assert after["saltare_in_flight_requests"] == 0
    lines = [line for line in access_lines(server, 4) if line["path"] == "/h2?x=1"]
    assert len(lines) == 1
    (line,) = lines
    assert (line["http_version"], line["status"], line["user_agent"]) == ("2", 200, "h2-client")
    assert line["client"] == "203.0.113.77:0"
    assert line["bytes"] == len(answer["body"])


def test_http2_after_a_proxy_protocol_header_reports_the_proxied_client(serve):
    server = serve(ECHO, "--proxy-protocol")
    answer = h2_get(server.port, "/pp", prefix=b"PROXY TCP4 192.0.2.44 127.0.0.1 4444 80\r\n")
    assert json.loads(answer["body"])["client"] == ["192.0.2.44", 4444]


def test_a_websocket_reaped_by_keepalive_leaves_the_connection_count(serve):
    # The reaper used to mark the connection closed before its socket's close event, which was
    # then ignored: the connection stayed counted (and a drain waited for it).
    server = serve("ws_app:app", "--metrics-path", "/metrics", "--ws-keepalive-timeout", "0.3")
    with RawConnection.to(server) as ws:
        ws.send(
            request(
                "GET",
                "/echo",
                [
                    ("Upgrade", "websocket"),
                    ("Connection", "Upgrade"),
                    ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
                    ("Sec-WebSocket-Version", "13"),
                ],
            )
        )
        assert ws.read_head().status == 101
        # Never answer the pings: the server gives up after twice the interval.
        ws.read_until_eof(timeout=5)
    with RawConnection.to(server) as conn:
        wait_for(lambda: scrape_raw(conn)[2]["saltare_open_connections"] == 1)
        _, _, after = scrape_raw(conn)
    assert after["saltare_websocket_connections"] == 0
