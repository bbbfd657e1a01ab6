"""Generates h2-vectors.json: client byte streams made by the Python h2 (4.x) and hpack (4.x)
libraries, with the events saltare's H2Connection must report for them. h2-vectors.test.ts
replays them; run this again only to change the vectors:

    .venv/bin/python src/http2/testdata/gen_h2_vectors.py
    node_modules/.bin/biome format --write src/http2/testdata/h2-vectors.json

A second implementation's encoder (HPACK dynamic table, Huffman, CONTINUATION splitting,
padding) exercises paths our own test client does not.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import h2.config
import h2.connection
import h2.settings
from hpack import Encoder

OUT = Path(__file__).with_name("h2-vectors.json")
rng = random.Random(9113)  # noqa: S311 - deterministic test data, not secrets


def s(b: bytes | str) -> str:
    """bytes as a latin1 string, as the router sees them."""
    return b.decode("latin1") if isinstance(b, bytes) else b


def client() -> h2.connection.H2Connection:
    config = h2.config.H2Configuration(client_side=True, header_encoding=None)
    c = h2.connection.H2Connection(config=config)
    c.initiate_connection()
    return c


def request_event(stream: int, hdrs: list[tuple[str, str]], end: bool) -> dict[str, Any]:
    pseudo = {k: v for k, v in hdrs if k.startswith(":")}
    flat: list[str] = []
    cookie_at = -1
    content_length = -1
    for k, v in hdrs:
        if k.startswith(":"):
            continue
        if k == "cookie":
            if cookie_at >= 0:
                flat[cookie_at] += "; " + v
                continue
            cookie_at = len(flat) + 1
        if k == "content-length":
            content_length = int(v)
        flat += [k, v]
    authority = pseudo.get(":authority") or dict(hdrs).get("host", "")
    return {
        "type": "request",
        "stream": stream,
        "method": pseudo[":method"],
        "scheme": pseudo[":scheme"],
        "authority": authority,
        "path": pseudo[":path"],
        "headers": flat,
        "contentLength": content_length,
        "endStream": end,
    }


def browser_headers(path: str, i: int) -> list[tuple[str, str]]:
    return [
        (":method", "GET"),
        (":authority", "www.example.com"),
        (":scheme", "https"),
        (":path", path),
        ("user-agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"),
        ("accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
        ("accept-language", "en-US,en;q=0.5"),
        ("accept-encoding", "gzip, deflate, br, zstd"),
        ("cookie", f"session=abc{i}"),
        ("cookie", "theme=dark"),
        ("x-obs", "caf\xe9 na\xefve \xb5"),  # obs-text in values survives as latin1
        ("te", "trailers"),
    ]


def conversation_browser() -> dict[str, Any]:
    c = client()
    events: list[dict[str, Any]] = []
    for i, path in enumerate(["/", "/style.css", "/app.js?v=3", "/img/logo.png"]):
        sid = c.get_next_available_stream_id()
        hdrs = browser_headers(path, i)
        c.send_headers(
            sid, [(k.encode("latin1"), v.encode("latin1")) for k, v in hdrs], end_stream=True
        )
        events.append(request_event(sid, hdrs, True))
    # A POST whose body comes in padded DATA frames, then trailers.
    sid = c.get_next_available_stream_id()
    hdrs = [
        (":method", "POST"),
        (":authority", "www.example.com"),
        (":scheme", "https"),
        (":path", "/upload"),
        ("content-type", "application/octet-stream"),
        ("content-length", "6000"),
    ]
    c.send_headers(sid, [(k.encode(), v.encode()) for k, v in hdrs])
    events.append(request_event(sid, hdrs, False))
    body = bytes(rng.randrange(256) for _ in range(6000))
    sent = 0
    for size in (1, 3000, 999):
        c.send_data(sid, body[sent : sent + size], pad_length=rng.randrange(0, 200))
        events.append(
            {"type": "data", "stream": sid, "data": s(body[sent : sent + size]), "endStream": False}
        )
        sent += size
    c.send_data(sid, body[sent:])
    events.append({"type": "data", "stream": sid, "data": s(body[sent:]), "endStream": False})
    c.send_headers(sid, [(b"x-checksum", b"deadbeef")], end_stream=True)
    events.append({"type": "trailers", "stream": sid, "headers": ["x-checksum", "deadbeef"]})
    # A ping, a stream the client cancels, a bigger window, then GOAWAY.
    c.ping(b"h2-ping!")
    sid = c.get_next_available_stream_id()
    hdrs = browser_headers("/cancelled", 9)
    c.send_headers(sid, [(k.encode("latin1"), v.encode("latin1")) for k, v in hdrs])
    events.append(request_event(sid, hdrs, False))
    c.reset_stream(sid, error_code=8)
    events.append({"type": "reset", "stream": sid, "code": 8, "remote": True})
    c.increment_flow_control_window(1 << 20)
    c.close_connection(error_code=0)
    events.append({"type": "goaway", "lastStreamId": 0, "code": 0, "debug": ""})
    return {
        "name": (
            "a browser-like session: indexed and Huffman-coded headers, padded body, "
            "trailers, reset, ping, goaway"
        ),
        "bytes": c.data_to_send().hex(),
        "events": events,
    }


def conversation_big_headers() -> dict[str, Any]:
    c = client()
    events: list[dict[str, Any]] = []
    sid = c.get_next_available_stream_id()
    big = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(20000))
    hdrs = [
        (":method", "GET"),
        (":authority", "example.com"),
        (":scheme", "http"),
        (":path", "/big"),
        ("x-big", big),
    ]
    # 20 KB of header > 16 KB frames: h2 sends HEADERS + CONTINUATION frames.
    c.send_headers(sid, [(k.encode(), v.encode()) for k, v in hdrs], end_stream=True)
    events.append(request_event(sid, hdrs, True))
    return {
        "name": "a 20 KB header split by h2 over HEADERS and CONTINUATION frames",
        "bytes": c.data_to_send().hex(),
        "events": events,
    }


def conversation_settings_change() -> dict[str, Any]:
    c = client()
    events: list[dict[str, Any]] = []
    c.update_settings(
        {
            h2.settings.SettingCodes.HEADER_TABLE_SIZE: 256,
            h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1 << 20,
            h2.settings.SettingCodes.MAX_FRAME_SIZE: 1 << 20,
        }
    )
    for i in range(3):
        sid = c.get_next_available_stream_id()
        hdrs = [
            (":method", "DELETE"),
            (":authority", "api.example.com"),
            (":scheme", "https"),
            (":path", f"/items/{i}"),
            ("authorization", "Bearer " + "t" * 40),
            ("x-request-id", f"req-{i}"),
        ]
        c.send_headers(sid, [(k.encode(), v.encode()) for k, v in hdrs], end_stream=True)
        events.append(request_event(sid, hdrs, True))
    return {
        "name": "client settings changes between requests",
        "bytes": c.data_to_send().hex(),
        "events": events,
    }


def hpack_sequences() -> list[dict[str, Any]]:
    out = []
    names = ["accept", "user-agent", "x-a", "x-b", "cookie", "referer", "content-type", "x-\xff"]
    for huffman in (True, False):
        for table_size in (4096, 256, 0):
            enc = Encoder()
            blocks = []
            if table_size != 4096:
                enc.header_table_size = table_size
            for _ in range(12):
                fields: list[tuple[str, str]] = []
                for _ in range(rng.randrange(0, 10)):
                    name = rng.choice(names)
                    value = "".join(
                        chr(rng.randrange(0x20, 0x100)) for _ in range(rng.randrange(0, 60))
                    )
                    if rng.random() < 0.3:
                        value = rng.choice(["gzip", "text/html", "1", ""])
                    fields.append((name, value))
                encoded = enc.encode(
                    [(k.encode("latin1"), v.encode("latin1")) for k, v in fields], huffman=huffman
                )
                blocks.append({"hex": encoded.hex(), "fields": [x for kv in fields for x in kv]})
            out.append({"huffman": huffman, "tableSize": table_size, "blocks": blocks})
    return out


def main() -> None:
    vectors = {
        "generator": "gen_h2_vectors.py with h2 4.4.1 and hpack 4.2.0",
        "conversations": [
            conversation_browser(),
            conversation_big_headers(),
            conversation_settings_change(),
        ],
        "hpack": hpack_sequences(),
    }
    OUT.write_text(json.dumps(vectors, ensure_ascii=True) + "\n")


if __name__ == "__main__":
    main()
