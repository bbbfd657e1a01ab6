"""Talks to interop-server.ts with the Python h2 client over TCP and checks what it gets:
our HPACK encoder's blocks decoded by another implementation, flow control with a small
client window, concurrent streams, a reset, trailers-free echo, a graceful end.

    node_modules/.bin/bun src/http2/testdata/interop-server.ts 18443 &
    .venv/bin/python src/http2/testdata/h2_client_check.py 18443
"""

from __future__ import annotations

import socket
import sys

import h2.config
import h2.connection
import h2.events
import h2.settings


def main(port: int) -> None:
    sock = socket.create_connection(("127.0.0.1", port))
    config = h2.config.H2Configuration(client_side=True, header_encoding="latin1")
    c = h2.connection.H2Connection(config=config)
    # A small window and frame size: the server must send within them and wait for updates.
    c.local_settings = h2.settings.Settings(
        client=True,
        initial_values={
            h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1000,
            h2.settings.SettingCodes.HEADER_TABLE_SIZE: 0,
        },
    )
    c.initiate_connection()
    sock.sendall(c.data_to_send())

    expect: dict[int, bytes] = {}
    got: dict[int, bytearray] = {}
    status: dict[int, str] = {}
    ended: set[int] = set()
    for path in ["/a", "/size/250000", "/b?x=1"]:
        sid = c.get_next_available_stream_id()
        c.send_headers(
            sid,
            [(":method", "GET"), (":scheme", "http"), (":authority", "t"), (":path", path)],
            end_stream=True,
        )
        expect[sid] = (b"a" * 250000) if path.startswith("/size") else f"hello {path}\n".encode()
    body = bytes(range(256)) * 400
    sid = c.get_next_available_stream_id()
    c.send_headers(
        sid, [(":method", "POST"), (":scheme", "http"), (":authority", "t"), (":path", "/echo")]
    )
    upload, uploaded = sid, 0
    expect[sid] = body
    cancelled = c.get_next_available_stream_id()
    c.send_headers(
        cancelled,
        [(":method", "GET"), (":scheme", "http"), (":authority", "t"), (":path", "/size/10000000")],
        end_stream=True,
    )
    sock.sendall(c.data_to_send())

    def send_body() -> None:
        # As much of the upload as the server's windows allow (it returns them as it echoes).
        nonlocal uploaded
        while uploaded < len(body):
            n = min(
                c.local_flow_control_window(upload), c.max_outbound_frame_size, len(body) - uploaded
            )
            if n <= 0:
                return
            c.send_data(upload, body[uploaded : uploaded + n], end_stream=uploaded + n == len(body))
            uploaded += n

    send_body()
    sock.sendall(c.data_to_send())
    reset_sent = False
    while len(ended) < len(expect):
        data = sock.recv(65536)
        if not data:
            raise SystemExit("server closed early")
        for ev in c.receive_data(data):
            if isinstance(ev, h2.events.ResponseReceived):
                status[ev.stream_id] = dict(ev.headers)[":status"]
                if ev.stream_id == cancelled and not reset_sent:
                    c.reset_stream(cancelled, error_code=8)
                    reset_sent = True
            elif isinstance(ev, h2.events.DataReceived):
                if ev.stream_id in expect:
                    got.setdefault(ev.stream_id, bytearray()).extend(ev.data)
                c.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded):
                ended.add(ev.stream_id)
            elif (
                isinstance(ev, (h2.events.StreamReset, h2.events.ConnectionTerminated))
                and getattr(ev, "stream_id", None) != cancelled
            ):
                raise SystemExit(f"unexpected {ev}")
        send_body()
        sock.sendall(c.data_to_send())

    for sid, want in expect.items():
        assert status[sid] == "200", (sid, status[sid])
        assert bytes(got.get(sid, b"")) == want, (sid, len(got.get(sid, b"")), len(want))
    c.close_connection()
    sock.sendall(c.data_to_send())
    sock.settimeout(5)
    while sock.recv(65536):
        pass
    print(f"ok: {len(expect)} streams, {sum(len(v) for v in got.values())} body bytes, one reset")


if __name__ == "__main__":
    main(int(sys.argv[1]))
