"""Write tests/vectors/frames.json, the byte vectors both codecs are tested against.

Run: python3 tests/vectors/generate.py   (deterministic; `--check` fails if the file is stale)

The frames are packed here by hand with struct, not with either codec, so a bug shared by the
generator and a codec would need the same mistake made twice. Format of the file:

- A byte string is either a JSON string read as latin1 (one char = one byte, U+0000..U+00FF),
  {"hex": "..."}, or {"repeat": "<hex>", "length": n}: the hex pattern repeated to n bytes.
- "wire" is a list of byte strings, concatenated, that a decoder is fed.
- "frames" are the frames that wire decodes to: type, flags, stream, and "payload" (a byte
  string) or the decoded payload: "request" {fields, body}, "response" {status, headers, body},
  "window" {increment}, "reset" and "close" {code, reason (a Unicode string, UTF-8 on the
  wire)}, "message" {kind, data (a byte string)}, "hello" {version, pid, slot, generation},
  "shutdown" {reason}.
- "reencoded" (optional) is what re-encoding the frames gives when it differs from the wire
  (reserved flag bits are ignored on receipt and sent as 0).
- "error" {"stage", "contains"}: the wire is invalid. Stage "frame": the frame decoder raises
  ProtocolError; stage "payload": the frame decodes as "frames" says, and decoding its payload
  raises ProtocolError. "contains" is a substring of the message.
"""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).with_name("frames.json")

REQUEST, BODY, RESPONSE, WINDOW, RESET = 0x01, 0x02, 0x03, 0x04, 0x05
CONTINUE, MESSAGE, CLOSE = 0x06, 0x07, 0x08
HELLO, READY, SHUTDOWN, PING, PONG = 0x10, 0x11, 0x12, 0x13, 0x14
END = 0x01
CONTINUE_FLAG = 0x02
MAX_PAYLOAD = 16 * 1024 * 1024


def frame(ftype: int, flags: int, stream: int, payload: bytes) -> bytes:
    return struct.pack(">IBBI", len(payload), ftype, flags, stream) + payload


def lat(b: bytes) -> str:
    return b.decode("latin1")


def hexb(b: bytes) -> dict[str, str]:
    return {"hex": b.hex()}


def repeat(pattern: bytes, length: int) -> bytes:
    return (pattern * (length // len(pattern) + 1))[:length]


def request(
    stream: int, fields: list[bytes], headers: list[bytes], body: bytes, flags: int
) -> tuple[bytes, dict[str, Any]]:
    head = b"\0".join(fields + headers)
    wire = frame(REQUEST, flags, stream, struct.pack(">I", len(head)) + head + body)
    return wire, {
        "type": REQUEST,
        "flags": flags,
        "stream": stream,
        "request": {"fields": [lat(f) for f in fields + headers], "body": lat(body)},
    }


def response(
    stream: int, status: int, headers: list[bytes], body: bytes, flags: int
) -> tuple[bytes, dict[str, Any]]:
    head = b"\0".join(headers)
    wire = frame(RESPONSE, flags, stream, struct.pack(">HI", status, len(head)) + head + body)
    return wire, {
        "type": RESPONSE,
        "flags": flags,
        "stream": stream,
        "response": {"status": status, "headers": [lat(h) for h in headers], "body": lat(body)},
    }


def raw(ftype: int, flags: int, stream: int, payload: bytes) -> tuple[bytes, dict[str, Any]]:
    return frame(ftype, flags, stream, payload), {
        "type": ftype,
        "flags": flags,
        "stream": stream,
        "payload": lat(payload),
    }


def window(stream: int, increment: int) -> tuple[bytes, dict[str, Any]]:
    return frame(WINDOW, 0, stream, struct.pack(">I", increment)), {
        "type": WINDOW,
        "flags": 0,
        "stream": stream,
        "window": {"increment": increment},
    }


def reset(stream: int, code: int, reason: str) -> tuple[bytes, dict[str, Any]]:
    return frame(RESET, 0, stream, struct.pack(">H", code) + reason.encode()), {
        "type": RESET,
        "flags": 0,
        "stream": stream,
        "reset": {"code": code, "reason": reason},
    }


def close(stream: int, code: int, reason: str) -> tuple[bytes, dict[str, Any]]:
    return frame(CLOSE, 0, stream, struct.pack(">H", code) + reason.encode()), {
        "type": CLOSE,
        "flags": 0,
        "stream": stream,
        "close": {"code": code, "reason": reason},
    }


def message(stream: int, kind: int, data: bytes, flags: int) -> tuple[bytes, dict[str, Any]]:
    return frame(MESSAGE, flags, stream, bytes([kind]) + data), {
        "type": MESSAGE,
        "flags": flags,
        "stream": stream,
        "message": {"kind": kind, "data": lat(data)},
    }


def hello(version: int, pid: int, slot: int, generation: int = 0) -> tuple[bytes, dict[str, Any]]:
    return frame(HELLO, 0, 0, struct.pack(">HIHH", version, pid, slot, generation)), {
        "type": HELLO,
        "flags": 0,
        "stream": 0,
        "hello": {"version": version, "pid": pid, "slot": slot, "generation": generation},
    }


def shutdown(reason: int) -> tuple[bytes, dict[str, Any]]:
    return frame(SHUTDOWN, 0, 0, bytes((reason,))), {
        "type": SHUTDOWN,
        "flags": 0,
        "stream": 0,
        "shutdown": {"reason": reason},
    }


def vec(name: str, description: str, *frames: tuple[bytes, dict[str, Any]]) -> dict[str, Any]:
    return {
        "name": name,
        "description": description,
        "wire": [hexb(b"".join(w for w, _ in frames))],
        "frames": [f for _, f in frames],
    }


PING_DATA = bytes.fromhex("0001fe7f800a0d00")
TCP = [b"http", b"1.1", b"/", b"", b"127.0.0.1", b"54321", b"127.0.0.1", b"8000"]


def build() -> list[dict[str, Any]]:
    big_pattern = bytes(range(251))  # 251 is prime, so the pattern does not align with 2^k
    big = repeat(big_pattern, 70000)
    big_req = request(
        3, [b"PUT", *TCP[:2], b"/upload", *TCP[3:]], [b"content-length", b"70000"], big, END
    )
    big_req_wire, big_req_frame = big_req
    big_req_frame["request"]["body"] = {"repeat": big_pattern.hex(), "length": len(big)}
    big_body_wire, big_body_frame = raw(BODY, 0, 9, repeat(b"saltare!", 65537))
    big_body_frame["payload"] = {"repeat": b"saltare!".hex(), "length": 65537}
    head_len = len(big_req_wire) - 10 - 4 - len(big)

    vectors = [
        vec(
            "request-get",
            "A whole GET: REQUEST with END, one header, no body.",
            request(1, [b"GET", *TCP], [b"host", b"example.com"], b"", END),
        ),
        vec(
            "request-post-streaming",
            "A POST whose body continues in BODY frames: first body bytes inside the REQUEST, "
            "no END; duplicate headers are kept in order; a query string.",
            request(
                7,
                [
                    *[b"POST", b"https", b"2", b"/items/a%20b", b"x=1&y=%C3%A9"],
                    *[b"10.0.0.2", b"443", b"10.0.0.1", b"8443"],
                ],
                [b"host", b"api", b"x-dup", b"one", b"x-dup", b"two", b"content-length", b"11"],
                b"hello",
                0,
            ),
        ),
        vec(
            "request-unix-socket-empty-fields",
            "Every fixed field that may be empty is empty (Unix socket peer), no headers: the "
            "head block is fields joined by NUL with empty strings between.",
            request(2, [b"", b"", b"", b"", b"", b"", b"", b"", b""], [], b"", END),
        ),
        vec(
            "request-empty-header-value-and-obs-text",
            "Header values may be empty or hold obs-text bytes 0x80-0xFF (RFC 9110 §5.5); "
            "they are carried as raw bytes.",
            request(
                5,
                [b"GET", b"http", b"1.0", b"/caf\xe9", b"", b"", b"", b"/run/saltare.sock", b""],
                [b"x-empty", b"", b"x-latin1", b"caf\xe9 \x80\xff", b"accept", b"*/*"],
                b"",
                END,
            ),
        ),
        vec(
            "request-max-stream-id",
            "The largest stream id, 2^32-1, just before the router wraps to 1.",
            request(0xFFFFFFFF, [b"HEAD", *TCP], [], b"", END),
        ),
        {
            "name": "request-large-body",
            "description": "A REQUEST carrying a 70000-byte body (over 64 KiB) with END.",
            "wire": [
                hexb(big_req_wire[: 10 + 4 + head_len]),
                {"repeat": big_pattern.hex(), "length": len(big)},
            ],
            "frames": [big_req_frame],
        },
        vec("body", "A BODY frame without END.", raw(BODY, 0, 7, b"more body")),
        vec("body-end", "The last BODY frame of a stream, with END.", raw(BODY, END, 7, b"tail")),
        vec(
            "body-empty-end",
            "An empty BODY with END: the body ended after the previous frame.",
            raw(BODY, END, 1, b""),
        ),
        {
            "name": "body-large",
            "description": "A BODY frame of 65537 bytes (over 64 KiB), no END.",
            "wire": [
                hexb(big_body_wire[:10]),
                {"repeat": b"saltare!".hex(), "length": 65537},
            ],
            "frames": [big_body_frame],
        },
        vec(
            "body-binary",
            "Body bytes are opaque: NUL and every other byte value pass through.",
            raw(BODY, 0, 12, bytes(range(256))),
        ),
        vec(
            "response-whole",
            "A whole response: RESPONSE with END, headers as the app gave them (case kept).",
            response(
                1,
                200,
                [b"content-type", b"text/plain", b"X-Mixed-Case", b"Yes"],
                b"Hello, world!",
                END,
            ),
        ),
        vec(
            "response-no-headers-no-body",
            "An empty head block means no headers; status 204, END.",
            response(4, 204, [], b"", END),
        ),
        vec(
            "response-start-streaming",
            "A response whose body follows in BODY frames: no body bytes, no END.",
            response(
                0xFFFFFFFF, 500, [b"content-type", b"text/event-stream", b"x-empty", b""], b"", 0
            ),
        ),
        vec(
            "response-obs-text",
            "A response header value with bytes 0x80-0xFF.",
            response(6, 301, [b"location", b"/caf\xe9", b"x-bin", b"\xa0\xff"], b"moved", END),
        ),
        vec("window", "A WINDOW granting 64 KiB.", window(3, 65536)),
        vec(
            "window-max",
            "A WINDOW with the largest allowed increment, 2^31-1, on stream 2^32-1.",
            window(0xFFFFFFFF, 2**31 - 1),
        ),
        vec("reset-client-gone", "RESET with CLIENT_GONE and an empty reason.", reset(8, 0, "")),
        vec("reset-app-error", "RESET with APP_ERROR and an ASCII reason.", reset(8, 1, "boom")),
        vec(
            "reset-protocol-utf8",
            "RESET with PROTOCOL and a reason outside ASCII, sent as UTF-8.",
            reset(2, 2, "bad frame: caf\u00e9 \u2713"),
        ),
        vec(
            "request-expect-continue",
            "A POST expecting 100-continue: REQUEST with the CONTINUE flag, no body, no END.",
            request(
                13,
                [b"POST", *TCP],
                [b"expect", b"100-continue", b"content-length", b"5"],
                b"",
                CONTINUE_FLAG,
            ),
        ),
        vec("continue", "CONTINUE: the app started reading the body.", raw(CONTINUE, 0, 13, b"")),
        vec(
            "request-websocket",
            "A WebSocket handshake: scheme ws, END, the handshake headers passed through.",
            request(
                14,
                [b"GET", b"ws", *TCP[1:]],
                [b"upgrade", b"websocket", b"sec-websocket-protocol", b"chat, json"],
                b"",
                END,
            ),
        ),
        vec(
            "response-websocket-accept",
            "The app accepted: RESPONSE 101 without END, the chosen subprotocol as a header.",
            response(14, 101, [b"sec-websocket-protocol", b"chat"], b"", 0),
        ),
        vec(
            "message-text",
            "A whole text message in one MESSAGE frame with END; UTF-8 bytes.",
            message(14, 1, "h\u00e9llo \u2713".encode(), END),
        ),
        vec(
            "message-binary-parts",
            "A binary message in two parts: only the last carries END; every byte value passes.",
            message(14, 2, bytes(range(128)), 0),
            message(14, 2, bytes(range(128, 256)), END),
        ),
        vec("message-empty", "An empty text message: just the kind byte.", message(3, 1, b"", END)),
        vec("close-normal", "CLOSE 1000 without a reason.", close(14, 1000, "")),
        vec(
            "close-reason-utf8",
            "CLOSE 4001 with a reason outside ASCII, sent as UTF-8.",
            close(0xFFFFFFFF, 4001, "bye caf\u00e9"),
        ),
        vec("hello", "The worker's first frame.", hello(2, 4242, 0)),
        vec(
            "hello-max",
            "HELLO with the largest pid, slot and generation.",
            hello(2, 0xFFFFFFFF, 0xFFFF, 0xFFFF),
        ),
        vec("ready", "READY: lifespan startup finished.", raw(READY, 0, 0, b"")),
        vec("shutdown", "SHUTDOWN from the router: stop.", shutdown(0)),
        vec("shutdown-recycle", "SHUTDOWN with reason recycle.", shutdown(1)),
        vec("ping", "PING with 8 opaque bytes.", raw(PING, 0, 0, PING_DATA)),
        vec("pong", "PONG echoing a PING.", raw(PONG, 0, 0, PING_DATA)),
        vec(
            "router-to-worker-sequence",
            "Frames of two streams interleaved, as one write: REQUEST, BODY, WINDOW, BODY with "
            "END, RESET, PING.",
            request(11, [b"POST", *TCP], [b"transfer-encoding", b"chunked"], b"ab", 0),
            request(12, [b"GET", *TCP], [], b"", END),
            raw(BODY, 0, 11, b"cd"),
            window(12, 1024),
            raw(BODY, END, 11, b""),
            reset(12, 0, ""),
            raw(PING, 0, 0, b"12345678"),
        ),
        vec(
            "worker-to-router-sequence",
            "A worker's start and two responses, as one write.",
            hello(2, 99, 3, 7),
            raw(READY, 0, 0, b""),
            response(1, 200, [b"content-length", b"2"], b"ok", END),
            response(2, 200, [], b"", 0),
            raw(BODY, 0, 2, b"chunk"),
            window(1, 4096),
            raw(BODY, END, 2, b""),
            raw(PONG, 0, 0, b"12345678"),
        ),
        {
            **vec(
                "reserved-flags-ignored",
                "Reserved flag bits are ignored on receipt: flags 0xff still means END, and "
                "re-encoding sends them as 0.",
                raw(BODY, 0xFF, 1, b"x"),
            ),
            "reencoded": [hexb(frame(BODY, END, 1, b"x"))],
        },
        {
            "name": "invalid-length-over-max-payload",
            "description": "length = MAX_PAYLOAD + 1: a protocol error as soon as the header "
            "is in, before any payload arrives.",
            "wire": [hexb(struct.pack(">IBBI", MAX_PAYLOAD + 1, BODY, 0, 1))],
            "error": {"stage": "frame", "contains": "MAX_PAYLOAD"},
        },
        {
            "name": "invalid-unknown-type",
            "description": "Frame type 0x09 is not in the table.",
            "wire": [hexb(frame(0x09, 0, 1, b""))],
            "error": {"stage": "frame", "contains": "unknown frame type 0x09"},
        },
        {
            "name": "invalid-type-zero",
            "description": "Frame type 0x00 is not in the table.",
            "wire": [hexb(frame(0x00, 0, 0, b"abc"))],
            "error": {"stage": "frame", "contains": "unknown frame type 0x00"},
        },
        {
            "name": "invalid-request-head-length-beyond-payload",
            "description": "A REQUEST whose head_length is larger than the rest of its payload.",
            "wire": [hexb(frame(REQUEST, END, 1, struct.pack(">I", 100) + b"GET\0http"))],
            "frames": [{"type": REQUEST, "flags": END, "stream": 1}],
            "error": {"stage": "payload", "contains": "head_length"},
        },
        {
            "name": "invalid-request-too-short",
            "description": "A REQUEST payload shorter than its u32 head_length.",
            "wire": [hexb(frame(REQUEST, END, 1, b"\0\0"))],
            "frames": [{"type": REQUEST, "flags": END, "stream": 1}],
            "error": {"stage": "payload", "contains": "too short"},
        },
        {
            "name": "invalid-request-field-count",
            "description": "A REQUEST head with 10 fields: a header name without its value.",
            "wire": [
                hexb(
                    frame(
                        REQUEST,
                        END,
                        1,
                        struct.pack(">I", len(b"\0".join([b"GET", *TCP, b"host"])))
                        + b"\0".join([b"GET", *TCP, b"host"]),
                    )
                )
            ],
            "frames": [{"type": REQUEST, "flags": END, "stream": 1}],
            "error": {"stage": "payload", "contains": "fields"},
        },
        {
            "name": "invalid-response-head-length-beyond-payload",
            "description": "A RESPONSE whose head_length is larger than the rest of its payload.",
            "wire": [hexb(frame(RESPONSE, END, 1, struct.pack(">HI", 200, 7) + b"a\0b"))],
            "frames": [{"type": RESPONSE, "flags": END, "stream": 1}],
            "error": {"stage": "payload", "contains": "head_length"},
        },
        {
            "name": "invalid-response-odd-fields",
            "description": "A RESPONSE head with a name but no value.",
            "wire": [hexb(frame(RESPONSE, END, 1, struct.pack(">HI", 200, 4) + b"etag"))],
            "frames": [{"type": RESPONSE, "flags": END, "stream": 1}],
            "error": {"stage": "payload", "contains": "odd"},
        },
        {
            "name": "invalid-window-length",
            "description": "A WINDOW payload that is not 4 bytes.",
            "wire": [hexb(frame(WINDOW, 0, 1, b"\0\0\1"))],
            "frames": [{"type": WINDOW, "flags": 0, "stream": 1}],
            "error": {"stage": "payload", "contains": "not 4"},
        },
        {
            "name": "invalid-window-over-max",
            "description": "A WINDOW increment of 2^31: any window it is added to is over 2^31-1.",
            "wire": [hexb(frame(WINDOW, 0, 1, struct.pack(">I", 2**31)))],
            "frames": [{"type": WINDOW, "flags": 0, "stream": 1}],
            "error": {"stage": "payload", "contains": "MAX_WINDOW"},
        },
        {
            "name": "invalid-reset-too-short",
            "description": "A RESET payload without its u16 code.",
            "wire": [hexb(frame(RESET, 0, 1, b"\0"))],
            "frames": [{"type": RESET, "flags": 0, "stream": 1}],
            "error": {"stage": "payload", "contains": "too short"},
        },
        {
            "name": "invalid-message-empty",
            "description": "A MESSAGE payload without its kind byte.",
            "wire": [hexb(frame(MESSAGE, END, 1, b""))],
            "frames": [{"type": MESSAGE, "flags": END, "stream": 1}],
            "error": {"stage": "payload", "contains": "kind"},
        },
        {
            "name": "invalid-message-kind",
            "description": "A MESSAGE of kind 3, neither text (1) nor binary (2).",
            "wire": [hexb(frame(MESSAGE, END, 1, b"\x03abc"))],
            "frames": [{"type": MESSAGE, "flags": END, "stream": 1}],
            "error": {"stage": "payload", "contains": "kind 3"},
        },
        {
            "name": "invalid-close-too-short",
            "description": "A CLOSE payload without its u16 code.",
            "wire": [hexb(frame(CLOSE, 0, 1, b"\x03"))],
            "frames": [{"type": CLOSE, "flags": 0, "stream": 1}],
            "error": {"stage": "payload", "contains": "too short"},
        },
        {
            "name": "invalid-hello-length",
            "description": "A HELLO payload that is not 10 bytes (version 1's 8-byte HELLO).",
            "wire": [hexb(frame(HELLO, 0, 0, struct.pack(">HIH", 1, 5, 0)))],
            "frames": [{"type": HELLO, "flags": 0, "stream": 0}],
            "error": {"stage": "payload", "contains": "not 10"},
        },
        {
            "name": "invalid-shutdown-empty",
            "description": "A SHUTDOWN without its reason byte.",
            "wire": [hexb(frame(SHUTDOWN, 0, 0, b""))],
            "frames": [{"type": SHUTDOWN, "flags": 0, "stream": 0}],
            "error": {"stage": "payload", "contains": "not 1"},
        },
    ]
    names = [v["name"] for v in vectors]
    if len(set(names)) != len(names):
        raise SystemExit("duplicate vector names")
    return vectors


def render() -> str:
    doc = {
        "about": "Byte vectors for docs/protocol.md version 2, written by generate.py "
        "(which documents the format).",
        "version": 2,
        "vectors": build(),
    }
    return json.dumps(doc, indent=2, ensure_ascii=True) + "\n"


def main() -> int:
    text = render()
    if "--check" in sys.argv[1:]:
        if OUT.read_text() != text:
            print(f"{OUT} is stale: run python3 {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
