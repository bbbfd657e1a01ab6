"""Proxy headers, the PROXY protocol and the listening options, end to end."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import APPS, READY
from rawhttp import RawConnection, request

ECHO = "echo_scope:app"


def scope_of(server, headers: list[tuple[str, str]], *, raw: bytes = b"") -> dict:
    """The scope echo_scope saw for one request (sent after ``raw``, e.g. a PROXY header)."""
    with RawConnection.to(server) as conn:
        conn.send(raw + request("GET", "/who", headers))
        response = conn.read_response()
        assert response.status == 200, response.body
        scope = response.json()
        scope["_local_port"] = conn.local_port
        return scope  # type: ignore[return-value]


# (headers, client host and port expected from a trusted peer, scheme expected)
FORMS = [
    pytest.param([("X-Forwarded-For", "203.0.113.5")], ("203.0.113.5", 0), "http", id="xff"),
    pytest.param(
        [("X-Forwarded-For", "6.6.6.6, 203.0.113.5")],
        ("203.0.113.5", 0),
        "http",
        id="xff-forged-leftmost",
    ),
    pytest.param(
        [("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-For", "203.0.113.5, 127.0.0.1")],
        ("203.0.113.5", 0),
        "http",
        id="xff-repeated-with-trusted-hop",
    ),
    pytest.param([("X-Forwarded-Proto", "https")], None, "https", id="xfp"),
    pytest.param(
        [("X-Forwarded-For", "203.0.113.5"), ("X-Forwarded-Proto", "https")],
        ("203.0.113.5", 0),
        "https",
        id="xff-and-xfp",
    ),
    pytest.param(
        [("Forwarded", 'for="[2001:db8::17]:4711";proto=https')],
        ("2001:db8::17", 4711),
        "https",
        id="forwarded-ipv6",
    ),
    pytest.param(
        [("Forwarded", "for=6.6.6.6;proto=http, for=198.51.100.9;proto=https")],
        ("198.51.100.9", 0),
        "https",
        id="forwarded-forged-leftmost",
    ),
    pytest.param(
        [("Forwarded", "for=192.0.2.1"), ("X-Forwarded-For", "203.0.113.5")],
        ("192.0.2.1", 0),
        "http",
        id="forwarded-wins",
    ),
    pytest.param([("Forwarded", 'for="unterminated')], None, "http", id="forwarded-malformed"),
    pytest.param([("X-Forwarded-Proto", "javascript")], None, "http", id="xfp-unknown"),
]


@pytest.fixture(scope="module")
def trusted_and_untrusted():
    """One server trusting 127.0.0.1 (the tests' address) and one trusting someone else."""
    from conftest import Server  # noqa: PLC0415

    servers = [
        Server(ECHO, "--port", "0", "--proxy-headers").wait_ready(),
        Server(
            ECHO, "--port", "0", "--proxy-headers", "--forwarded-allow-ips", "10.0.0.0/8"
        ).wait_ready(),
        Server(ECHO, "--port", "0").wait_ready(),
    ]
    yield servers
    for server in servers:
        server.kill()


@pytest.mark.parametrize(("headers", "client", "scheme"), FORMS)
def test_a_trusted_peer_sets_client_and_scheme(trusted_and_untrusted, headers, client, scheme):
    scope = scope_of(trusted_and_untrusted[0], headers)
    expected = client or ("127.0.0.1", scope["_local_port"])
    assert (tuple(scope["client"]), scope["scheme"]) == (expected, scheme)
    # The headers themselves still reach the app as received.
    names = [name for name, _ in scope["headers"]]
    assert names.count(headers[0][0].lower()) >= 1


@pytest.mark.parametrize(("headers", "client", "scheme"), FORMS)
def test_an_untrusted_peer_or_no_proxy_headers_changes_nothing(
    trusted_and_untrusted, headers, client, scheme
):
    for server in trusted_and_untrusted[1:]:
        scope = scope_of(server, headers)
        assert scope["client"] == ["127.0.0.1", scope["_local_port"]]
        assert scope["scheme"] == "http"


def test_star_trusts_every_hop(serve):
    server = serve(ECHO, "--proxy-headers", "--forwarded-allow-ips", "*")
    scope = scope_of(server, [("X-Forwarded-For", "198.51.100.1, 203.0.113.5")])
    assert scope["client"] == ["198.51.100.1", 0]


def test_a_bad_trust_list_is_refused_before_starting(serve):
    server = serve(ECHO, "--forwarded-allow-ips", "localhost", ready=False)
    assert server.proc.wait(30) == 2
    assert "--forwarded-allow-ips" in server.log


# -- PROXY protocol -------------------------------------------------------------------------------


def proxy_v2(src: str, sport: int, dst: str = "127.0.0.1", dport: int = 80) -> bytes:
    family = socket.AF_INET6 if ":" in src else socket.AF_INET
    fam_byte = 0x21 if family == socket.AF_INET6 else 0x11
    addresses = (
        socket.inet_pton(family, src)
        + socket.inet_pton(family, dst if family == socket.AF_INET else "::1")
        + struct.pack("!HH", sport, dport)
    )
    signature = b"\r\n\r\n\x00\r\nQUIT\n"
    return signature + bytes([0x21, fam_byte]) + struct.pack("!H", len(addresses)) + addresses


@pytest.mark.parametrize(
    ("header", "client"),
    [
        (b"PROXY TCP4 192.0.2.10 127.0.0.1 40000 80\r\n", ["192.0.2.10", 40000]),
        (b"PROXY TCP6 2001:db8::5 ::1 40001 80\r\n", ["2001:db8::5", 40001]),
        (proxy_v2("192.0.2.11", 40002), ["192.0.2.11", 40002]),
        (proxy_v2("2001:db8::6", 40003), ["2001:db8::6", 40003]),
    ],
    ids=["v1-tcp4", "v1-tcp6", "v2-ipv4", "v2-ipv6"],
)
def test_proxy_protocol_from_a_trusted_peer_names_the_client(serve, header, client):
    server = serve(ECHO, "--proxy-protocol")
    scope = scope_of(server, [], raw=header)
    assert scope["client"] == client


def test_proxy_protocol_header_and_request_may_arrive_byte_by_byte(serve):
    server = serve(ECHO, "--proxy-protocol")
    data = proxy_v2("192.0.2.12", 41000) + request("GET", "/slowly")
    with RawConnection.to(server) as conn:
        for i in range(len(data)):
            conn.send(data[i : i + 1])
        assert conn.read_response().json()["client"] == ["192.0.2.12", 41000]  # type: ignore[index]


def test_proxy_protocol_local_and_unknown_keep_the_peer_address(serve):
    server = serve(ECHO, "--proxy-protocol")
    local = b"\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00"
    for header in (local, b"PROXY UNKNOWN\r\n"):
        scope = scope_of(server, [], raw=header)
        assert scope["client"] == ["127.0.0.1", scope["_local_port"]]


def test_a_trusted_peer_without_a_proxy_header_is_cut_off(serve, calls):
    server = serve(ECHO, "--proxy-protocol", env={"ECHO_CALLS": calls.path})
    with RawConnection.to(server) as conn:
        conn.send(request("GET", "/no-header"))
        assert conn.is_closed()
    assert calls() == []


def test_an_untrusted_peer_cannot_claim_an_address_with_a_proxy_header(serve, calls):
    server = serve(
        ECHO,
        "--proxy-protocol",
        "--forwarded-allow-ips",
        "10.0.0.1",
        env={"ECHO_CALLS": calls.path},
    )
    # Its connection is plain HTTP: the header is a malformed request line.
    with RawConnection.to(server) as conn:
        conn.send(b"PROXY TCP4 192.0.2.10 127.0.0.1 40000 80\r\n" + request("GET", "/spoof"))
        assert conn.read_response().status == 400
    scope = scope_of(server, [])
    assert scope["client"] == ["127.0.0.1", scope["_local_port"]]
    assert calls() == ["GET /who"]


def test_proxy_protocol_and_proxy_headers_combine(serve):
    # The PROXY header names a trusted proxy, whose X-Forwarded-For then counts.
    server = serve(
        ECHO, "--proxy-protocol", "--proxy-headers", "--forwarded-allow-ips", "127.0.0.1,10.0.0.0/8"
    )
    scope = scope_of(
        server,
        [("X-Forwarded-For", "203.0.113.50")],
        raw=b"PROXY TCP4 10.1.1.1 127.0.0.1 40000 80\r\n",
    )
    assert scope["client"] == ["203.0.113.50", 0]


# -- listening ------------------------------------------------------------------------------------


def uds_get(path: str, target: str = "/") -> bytes:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(10)
        sock.connect(path)
        sock.sendall(request("GET", target, [("Connection", "close")]))
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        return data


def test_uds_serves_with_the_mode_asked_for_and_is_removed_on_stop(tmp_path):
    from conftest import Server  # noqa: PLC0415

    path = str(tmp_path / "app.sock")
    server = Server(ECHO, "--uds", path, "--uds-permissions", "600").wait_ready()
    try:
        mode = os.stat(path).st_mode
        assert stat.S_ISSOCK(mode)
        assert stat.S_IMODE(mode) == 0o600
        head, _, body = uds_get(path).partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        scope = json.loads(body)
        assert scope["client"] is None
        assert scope["server"] == [path, None]
        assert server.stop() == 0
    finally:
        server.kill()
    assert not os.path.exists(path)


def test_uds_with_proxy_headers_trusts_the_local_proxy(tmp_path):
    from conftest import Server  # noqa: PLC0415

    path = str(tmp_path / "app.sock")
    server = Server(ECHO, "--uds", path, "--proxy-headers").wait_ready()
    try:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(10)
            sock.connect(path)
            sock.sendall(
                request(
                    "GET",
                    "/",
                    [
                        ("X-Forwarded-For", "203.0.113.9"),
                        ("X-Forwarded-Proto", "https"),
                        ("Connection", "close"),
                    ],
                )
            )
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        scope = json.loads(data.partition(b"\r\n\r\n")[2])
        assert (scope["client"], scope["scheme"]) == (["203.0.113.9", 0], "https")
    finally:
        server.kill()


def start_with_inherited_socket(sock: socket.socket, *args: str, systemd: bool = False):
    """Run ``saltare`` with ``sock`` inherited: as --fd N, or as systemd would (fd 3)."""
    fd = sock.fileno()
    base = [sys.executable, "-m", "saltare", ECHO, "--app-dir", str(APPS), *args]
    if systemd:
        # LISTEN_PID must be the pid of the saltare process itself: a small launcher moves
        # the socket to fd 3, sets the variables and execs saltare (keeping its pid).
        launcher = (
            "import os, sys; os.dup2(int(os.environ['FD']), 3); "
            "os.environ.update(LISTEN_FDS='1', LISTEN_PID=str(os.getpid())); "
            "os.execv(sys.argv[1], sys.argv[1:])"
        )
        command = [sys.executable, "-c", launcher, *base]
    else:
        command = [*base, "--fd", str(fd)]
    return subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        pass_fds=(fd,),
        env={**os.environ, "FD": str(fd)},
        start_new_session=True,
    )


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)
    if proc.stderr is not None:
        proc.stderr.close()


def wait_ready_line(proc: subprocess.Popen[bytes]) -> str:
    assert proc.stderr is not None
    lines = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stderr.readline().decode()
        lines.append(line)
        if READY.search(line):
            return line
        if not line:
            break
    raise AssertionError("not ready:\n" + "".join(lines))


@pytest.mark.parametrize("systemd", [False, True], ids=["fd", "systemd"])
def test_an_inherited_tcp_socket_is_served(systemd):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    proc = start_with_inherited_socket(listener, systemd=systemd)
    try:
        line = wait_ready_line(proc)
        assert f"http://127.0.0.1:{port}" in line
        listener.close()  # the server has its own copy
        with RawConnection("127.0.0.1", port) as conn:
            conn.send(request("GET", "/inherited"))
            scope = conn.read_response().json()
            assert scope["server"] == ["127.0.0.1", port]  # type: ignore[index]
            assert scope["client"] == ["127.0.0.1", conn.local_port]  # type: ignore[index]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        stop_process(proc)


def test_an_inherited_unix_socket_is_served_and_left_in_place(tmp_path):
    path = str(tmp_path / "inherited.sock")
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(path)
    listener.listen()
    proc = start_with_inherited_socket(listener)
    try:
        assert f"unix:{path}" in wait_ready_line(proc)
        listener.close()
        scope = json.loads(uds_get(path).partition(b"\r\n\r\n")[2])
        assert scope["client"] is None
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        stop_process(proc)
    # The socket file belongs to whoever created it.
    assert os.path.exists(path)


def test_fd_that_is_not_a_listening_socket_is_refused():
    with socket.socket() as sock:
        proc = start_with_inherited_socket(sock)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert b"--fd" in err


# -- nginx in front, over a Unix socket (docs/deployment.md) -------------------------------------

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)


@pytest.mark.skipif(
    NGINX is None, reason="nginx is not installed (scripts/setup.sh installs it when it can)"
)
def test_nginx_over_a_unix_socket_with_proxy_headers(tmp_path):
    from conftest import Server  # noqa: PLC0415

    sock_path = str(tmp_path / "app.sock")
    server = Server(
        ECHO, "--uds", sock_path, "--proxy-headers", "--uds-permissions", "660"
    ).wait_ready()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        nginx_port = probe.getsockname()[1]
    # The server block of docs/deployment.md, with paths and the port of this test.
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        textwrap.dedent(f"""
        daemon off;
        user root;
        pid {tmp_path}/nginx.pid;
        error_log {tmp_path}/error.log;
        events {{ worker_connections 64; }}
        http {{
            access_log off;
            client_body_temp_path {tmp_path};
            proxy_temp_path {tmp_path};
            upstream saltare {{
                server unix:{sock_path};
                keepalive 8;
            }}
            server {{
                listen 127.0.0.1:{nginx_port};
                location / {{
                    proxy_pass http://saltare;
                    proxy_http_version 1.1;
                    proxy_set_header Connection "";
                    proxy_set_header Host $host;
                    proxy_set_header X-Forwarded-For $remote_addr;
                    proxy_set_header X-Forwarded-Proto $scheme;
                }}
            }}
        }}
        """)
    )
    nginx = subprocess.Popen(
        [NGINX, "-c", str(conf), "-p", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                conn = RawConnection("127.0.0.1", nginx_port)
                break
            except ConnectionRefusedError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        with conn:
            # A client forging X-Forwarded-For: nginx at the edge replaces it.
            conn.send(request("GET", "/via-nginx?x=1", [("X-Forwarded-For", "6.6.6.6")]))
            response = conn.read_response()
            assert response.status == 200
            scope = response.json()
            port = conn.local_port
        assert scope["client"] == ["127.0.0.1", 0]  # type: ignore[index]
        assert scope["scheme"] == "http"  # type: ignore[index]
        assert scope["path"] == "/via-nginx"  # type: ignore[index]
        forwarded = dict(scope["headers"])  # type: ignore[index]
        assert forwarded["x-forwarded-for"] == "127.0.0.1"
        assert port > 0
    finally:
        nginx.terminate()
        nginx.wait(10)
        server.kill()


def test_nginx_config_in_the_deployment_docs_is_the_one_tested():
    docs = (Path(__file__).parents[2] / "docs" / "deployment.md").read_text()
    for line in (
        "proxy_set_header X-Forwarded-For $remote_addr;",
        "proxy_set_header X-Forwarded-Proto $scheme;",
        'proxy_set_header Connection "";',
        "proxy_http_version 1.1;",
    ):
        assert line in docs
