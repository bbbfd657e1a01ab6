"""The Python codec against docs/protocol.md and the shared byte vectors in tests/vectors/."""

from __future__ import annotations

import importlib.util
import json
import random
import re
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest
from saltare import _protocol as p

ROOT = Path(__file__).resolve().parents[2]
SPEC = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
VECTORS_PATH = ROOT / "tests" / "vectors" / "frames.json"
VECTORS: list[dict[str, Any]] = json.loads(VECTORS_PATH.read_text(encoding="ascii"))["vectors"]
VALID = [v for v in VECTORS if "error" not in v]
INVALID = [v for v in VECTORS if "error" in v]
FRAME_ERRORS = [v for v in INVALID if v["error"]["stage"] == "frame"]
PAYLOAD_ERRORS = [v for v in INVALID if v["error"]["stage"] == "payload"]
# The start of the frame that follows a vector in the trailing-bytes tests.
NEXT_FRAME = struct.pack(">IBBI", 8, p.PING, 0, 0) + b"\x01\x02\x03\x04\x05\x06\x07\x08"


def ids(vectors: list[dict[str, Any]]) -> list[str]:
    return [v["name"] for v in vectors]


def to_bytes(spec: Any) -> bytes:
    """A byte string as the vector file writes it (see tests/vectors/generate.py)."""
    if isinstance(spec, str):
        return spec.encode("latin1")
    if "hex" in spec:
        return bytes.fromhex(spec["hex"])
    pattern = bytes.fromhex(spec["repeat"])
    length: int = spec["length"]
    return (pattern * (length // len(pattern) + 1))[:length]


def wire(vector: dict[str, Any]) -> bytes:
    return b"".join(to_bytes(part) for part in vector["wire"])


def decoded(frame: p.Frame) -> dict[str, Any]:
    """A frame in the vector file's form, with byte strings as bytes."""
    ftype, flags, stream, payload = frame
    out: dict[str, Any] = {"type": ftype, "flags": flags, "stream": stream}
    if ftype == p.REQUEST:
        fields, body = p.decode_request(payload)
        out["request"] = {"fields": fields, "body": body}
    elif ftype == p.RESPONSE:
        status, headers, body = p.decode_response(payload)
        out["response"] = {"status": status, "headers": headers, "body": body}
    elif ftype == p.WINDOW:
        out["window"] = {"increment": p.decode_window(payload)}
    elif ftype == p.RESET:
        code, reason = p.decode_reset(payload)
        out["reset"] = {"code": code, "reason": reason}
    elif ftype == p.CLOSE:
        code, reason = p.decode_close(payload)
        out["close"] = {"code": code, "reason": reason}
    elif ftype == p.MESSAGE:
        kind, data = p.decode_message(payload)
        out["message"] = {"kind": kind, "data": data}
    elif ftype == p.HELLO:
        version, pid, slot, generation = p.decode_hello(payload)
        out["hello"] = {"version": version, "pid": pid, "slot": slot, "generation": generation}
    elif ftype == p.SHUTDOWN:
        out["shutdown"] = {"reason": p.decode_shutdown(payload)}
    else:
        out["payload"] = payload
    return out


def expected(frame: dict[str, Any]) -> dict[str, Any]:
    out = dict(frame)
    if "payload" in out:
        out["payload"] = to_bytes(out["payload"])
    if "request" in out:
        req = out["request"]
        out["request"] = {
            "fields": [to_bytes(f) for f in req["fields"]],
            "body": to_bytes(req["body"]),
        }
    if "message" in out:
        out["message"] = {
            "kind": out["message"]["kind"],
            "data": to_bytes(out["message"]["data"]),
        }
    if "response" in out:
        res = out["response"]
        out["response"] = {
            "status": res["status"],
            "headers": [to_bytes(h) for h in res["headers"]],
            "body": to_bytes(res["body"]),
        }
    return out


def reencode(frame: p.Frame) -> bytes:
    """Encode a decoded frame again from its decoded fields, with this codec's encoders."""
    ftype, flags, stream, payload = frame
    end = bool(flags & p.FLAG_END)
    if ftype == p.REQUEST:
        fields, body = p.decode_request(payload)
        headers = list(zip(fields[9::2], fields[10::2], strict=True))
        encoded = p.encode_request(stream, fields[:9], headers, body, end)
        if flags & p.FLAG_CONTINUE:
            return encoded[:5] + bytes([encoded[5] | p.FLAG_CONTINUE]) + encoded[6:]
        return encoded
    if ftype == p.RESPONSE:
        status, flat, body = p.decode_response(payload)
        return p.encode_response(
            stream, status, list(zip(flat[::2], flat[1::2], strict=True)), body, end
        )
    if ftype == p.BODY:
        return p.encode_body(stream, payload, end)
    if ftype == p.WINDOW:
        return p.encode_window(stream, p.decode_window(payload))
    if ftype == p.RESET:
        code, reason = p.decode_reset(payload)
        return p.encode_reset(stream, code, reason)
    if ftype == p.CLOSE:
        code, reason = p.decode_close(payload)
        return p.encode_close(stream, code, reason)
    if ftype == p.MESSAGE:
        kind, data = p.decode_message(payload)
        return p.encode_message(stream, kind, data, end)
    if ftype == p.CONTINUE:
        return p.encode_continue(stream)
    if ftype == p.HELLO:
        version, pid, slot, generation = p.decode_hello(payload)
        assert version == p.VERSION
        return p.encode_hello(pid, slot, generation)
    if ftype == p.SHUTDOWN:
        return p.encode_shutdown(p.decode_shutdown(payload))
    return p.encode_control(ftype, payload)


def feed_in_chunks(data: bytes, cuts: list[int]) -> tuple[p.Decoder, list[p.Frame]]:
    decoder = p.Decoder()
    frames: list[p.Frame] = []
    start = 0
    for cut in [*cuts, len(data)]:
        got = decoder.feed(data[start:cut])
        assert all(type(frame[3]) is bytes for frame in got)
        frames += got
        start = cut
    return decoder, frames


def random_cuts(name: str, size: int, rounds: int = 20) -> list[list[int]]:
    rng = random.Random(zlib.crc32(name.encode()))
    return [
        sorted(rng.sample(range(1, size), min(size - 1, rng.randint(1, 12)))) if size > 1 else []
        for _ in range(rounds)
    ]


def assert_frames(frames: list[p.Frame], vector: dict[str, Any]) -> None:
    assert [decoded(f) for f in frames] == [expected(f) for f in vector["frames"]]


# -- decoding --------------------------------------------------------------------------------


@pytest.mark.parametrize("vector", VALID, ids=ids(VALID))
def test_a_vector_fed_whole_decodes_to_its_frames(vector: dict[str, Any]) -> None:
    decoder = p.Decoder()
    assert_frames(decoder.feed(wire(vector)), vector)
    assert decoder.buffered == 0


@pytest.mark.parametrize("vector", VALID, ids=ids(VALID))
def test_a_vector_fed_one_byte_at_a_time_decodes_to_the_same_frames(
    vector: dict[str, Any],
) -> None:
    data = wire(vector)
    decoder, frames = feed_in_chunks(data, list(range(1, len(data))))
    assert_frames(frames, vector)
    assert decoder.buffered == 0


@pytest.mark.parametrize("vector", VALID, ids=ids(VALID))
def test_a_vector_split_at_random_points_decodes_to_the_same_frames(
    vector: dict[str, Any],
) -> None:
    data = wire(vector)
    for cuts in random_cuts(vector["name"], len(data)):
        decoder, frames = feed_in_chunks(data, cuts)
        assert_frames(frames, vector)
        assert decoder.buffered == 0


@pytest.mark.parametrize("vector", VALID, ids=ids(VALID))
def test_trailing_bytes_of_a_next_frame_stay_buffered_until_it_completes(
    vector: dict[str, Any],
) -> None:
    data = wire(vector)
    for keep in range(1, len(NEXT_FRAME)):
        decoder = p.Decoder()
        assert_frames(decoder.feed(data + NEXT_FRAME[:keep]), vector)
        assert decoder.buffered == keep
        assert decoder.feed(NEXT_FRAME[keep:]) == [(p.PING, 0, 0, NEXT_FRAME[10:])]
        assert decoder.buffered == 0


@pytest.mark.parametrize("vector", VALID, ids=ids(VALID))
def test_re_encoding_the_decoded_fields_gives_back_the_exact_bytes(vector: dict[str, Any]) -> None:
    frames = p.Decoder().feed(wire(vector))
    want = wire({"wire": vector.get("reencoded", vector["wire"])})
    assert b"".join(reencode(f) for f in frames) == want


@pytest.mark.parametrize("vector", VALID, ids=ids(VALID))
def test_encode_frame_rebuilds_every_frame_from_its_raw_parts(vector: dict[str, Any]) -> None:
    frames = p.Decoder().feed(wire(vector))
    assert b"".join(p.encode_frame(*f) for f in frames) == wire(vector)


# -- invalid input ---------------------------------------------------------------------------


@pytest.mark.parametrize("vector", FRAME_ERRORS, ids=ids(FRAME_ERRORS))
def test_a_bad_frame_header_is_a_protocol_error_however_it_is_split(
    vector: dict[str, Any],
) -> None:
    data = wire(vector)
    splits = [[], list(range(1, len(data))), *random_cuts(vector["name"], len(data), 5)]
    for cuts in splits:
        with pytest.raises(p.ProtocolError, match=re.escape(vector["error"]["contains"])) as err:
            feed_in_chunks(data, cuts)
        assert err.value.code == "PROTOCOL_ERROR"


@pytest.mark.parametrize("vector", FRAME_ERRORS, ids=ids(FRAME_ERRORS))
def test_a_bad_frame_header_is_refused_before_its_payload_arrives(
    vector: dict[str, Any],
) -> None:
    decoder = p.Decoder()
    assert decoder.feed(wire(vector)[: p.HEADER_SIZE - 1]) == []
    with pytest.raises(p.ProtocolError):
        decoder.feed(wire(vector)[p.HEADER_SIZE - 1 : p.HEADER_SIZE])


@pytest.mark.parametrize("vector", PAYLOAD_ERRORS, ids=ids(PAYLOAD_ERRORS))
def test_a_malformed_payload_is_a_protocol_error_when_decoded(vector: dict[str, Any]) -> None:
    frames = p.Decoder().feed(wire(vector))
    assert [f[:3] for f in frames] == [
        (f["type"], f["flags"], f["stream"]) for f in vector["frames"]
    ]
    with pytest.raises(p.ProtocolError, match=re.escape(vector["error"]["contains"])) as err:
        decoded(frames[0])
    assert err.value.code == "PROTOCOL_ERROR"


def test_a_frame_of_exactly_max_payload_is_accepted_and_waits_for_its_payload() -> None:
    decoder = p.Decoder()
    header = struct.pack(">IBBI", p.MAX_PAYLOAD, p.BODY, 0, 1)
    assert decoder.feed(header) == []
    assert decoder.buffered == p.HEADER_SIZE
    assert decoder.feed(bytes(p.MAX_PAYLOAD - 1)) == []
    assert decoder.feed(b"!") == [(p.BODY, 0, 1, bytes(p.MAX_PAYLOAD - 1) + b"!")]
    assert decoder.buffered == 0


def test_feeding_nothing_returns_no_frames() -> None:
    decoder = p.Decoder()
    assert decoder.feed(b"") == []
    decoder.feed(NEXT_FRAME[:3])
    assert decoder.feed(b"") == []
    assert decoder.buffered == 3


def test_a_reset_reason_that_is_not_utf8_decodes_with_replacement_characters() -> None:
    assert p.decode_reset(b"\x00\x02bad \xff") == (2, "bad \ufffd")


# -- encoding --------------------------------------------------------------------------------


def test_response_headers_may_be_given_as_lists_or_tuples() -> None:
    as_lists = p.encode_response(1, 200, [[b"a", b"1"], [b"b", b""]], b"x", True)
    as_tuples = p.encode_response(1, 200, [(b"a", b"1"), (b"b", b"")], b"x", True)
    assert as_lists == as_tuples
    assert p.decode_response(as_lists[p.HEADER_SIZE :]) == (200, [b"a", b"1", b"b", b""], b"x")


@pytest.mark.parametrize(
    "header",
    [(b"x-a\0b", b"v"), (b"x", b"a\0b"), (b"x", b"a\r\nb"), (b"x", b"\n"), (b"x\r", b"v")],
)
def test_a_response_header_with_nul_cr_or_lf_is_refused_with_runtime_error(
    header: tuple[bytes, bytes],
) -> None:
    with pytest.raises(RuntimeError, match="NUL, CR or LF"):
        p.encode_response(1, 200, [(b"ok", b"fine"), header], b"", True)


def test_encode_control_refuses_a_stream_frame_type() -> None:
    with pytest.raises(ValueError, match="not a control frame type"):
        p.encode_control(p.BODY, b"")


def test_encode_request_needs_exactly_nine_fixed_fields() -> None:
    with pytest.raises(ValueError, match="9 fixed fields"):
        p.encode_request(1, [b"GET"] * 8, [], b"", True)


def test_a_whole_frame_in_one_chunk_is_sliced_out_without_being_buffered() -> None:
    decoder = p.Decoder()
    frame = p.encode_body(1, b"x" * 100_000, True)
    assert decoder.feed(frame + frame[:5]) == [(p.BODY, p.FLAG_END, 1, b"x" * 100_000)]
    assert decoder.buffered == 5


# -- the spec and the code agree -------------------------------------------------------------


def superscript_int(text: str) -> int:
    return int(text.translate(str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹", "0123456789")))


def test_frame_type_constants_match_the_table_in_the_spec() -> None:
    table = {
        name: int(code, 16)
        for code, name in re.findall(r"^\| (0x[0-9a-f]{2}) \| ([A-Z]+)\s*\|", SPEC, re.M)
    }
    assert len(table) == 13
    assert table == {name: getattr(p, name) for name in table}


def test_reset_code_constants_match_the_table_in_the_spec() -> None:
    table = {
        name: int(code) for code, name in re.findall(r"^\| (\d+)\s+\| ([A-Z_]+)\s*\|", SPEC, re.M)
    }
    assert table == {
        "CLIENT_GONE": p.RESET_CLIENT_GONE,
        "APP_ERROR": p.RESET_APP_ERROR,
        "PROTOCOL": p.RESET_PROTOCOL,
    }


def test_numeric_constants_match_the_spec_text() -> None:
    def find(pattern: str) -> str:
        match = re.search(pattern, SPEC, re.M)
        assert match is not None, pattern
        return match.group(1)

    assert int(find(r"^# .*, version (\d+)$")) == p.VERSION
    assert int(find(r"(\d+)-byte header")) == p.HEADER_SIZE
    assert int(find(r"`MAX_PAYLOAD` \((\d+) MiB\)")) * 1024 * 1024 == p.MAX_PAYLOAD
    assert int(find(r"`INITIAL_WINDOW` = (\d+) bytes")) == p.INITIAL_WINDOW
    assert 2 ** superscript_int(find(r"window above 2([⁰¹²³⁴⁵⁶⁷⁸⁹]+)\u22121")) - 1 == p.MAX_WINDOW
    assert int(find(r"bit 0 \((0x[0-9a-f]+)\) = END"), 16) == p.FLAG_END
    assert int(find(r"bit 1 \((0x[0-9a-f]+)\) = CONTINUE"), 16) == p.FLAG_CONTINUE
    assert int(find(r"`u8 kind` \((\d) = text")) == p.MESSAGE_TEXT
    assert int(find(r"`u8 kind` \(\d = text, (\d) = binary")) == p.MESSAGE_BINARY


def test_the_frame_header_layout_matches_the_spec() -> None:
    rows = re.findall(r"^(\d+)\s+(\d+)\s+(length|type|flags|stream)\b", SPEC, re.M)
    layout = [(name, int(offset), int(size)) for offset, size, name in rows]
    assert [name for name, _, _ in layout] == ["length", "type", "flags", "stream"]
    assert sum(size for _, _, size in layout) == p.HEADER_SIZE
    frame = p.encode_frame(0x13, 0xA5, 0x01020304, b"abc")
    values = {"length": 3, "type": 0x13, "flags": 0xA5, "stream": 0x01020304}
    for name, offset, size in layout:
        assert int.from_bytes(frame[offset : offset + size], "big") == values[name]


def test_fixed_payload_fields_have_the_sizes_in_the_spec() -> None:
    def fixed_bytes(name: str) -> int:
        row = re.search(rf"^\| 0x[0-9a-f]{{2}} \| {name}\s*\|.*\|([^|]*)\|$", SPEC, re.M)
        assert row is not None, name
        return sum(int(bits) // 8 for bits in re.findall(r"`u(\d+) \w+`", row.group(1)))

    empty_request = p.encode_request(1, [b""] * 9, [], b"", True)
    assert len(empty_request) - p.HEADER_SIZE - 8 == fixed_bytes("REQUEST")  # 8 NULs
    assert len(p.encode_response(1, 200, [], b"", True)) - p.HEADER_SIZE == fixed_bytes("RESPONSE")
    assert len(p.encode_window(1, 1)) - p.HEADER_SIZE == fixed_bytes("WINDOW")
    assert len(p.encode_reset(1, 0)) - p.HEADER_SIZE == fixed_bytes("RESET")
    assert len(p.encode_close(1, 1000)) - p.HEADER_SIZE == fixed_bytes("CLOSE")
    assert len(p.encode_message(1, 1, b"", True)) - p.HEADER_SIZE == fixed_bytes("MESSAGE")
    assert len(p.encode_continue(1)) - p.HEADER_SIZE == fixed_bytes("CONTINUE")
    assert len(p.encode_hello(1, 2)) - p.HEADER_SIZE == fixed_bytes("HELLO")
    assert len(p.encode_shutdown(0)) - p.HEADER_SIZE == fixed_bytes("SHUTDOWN")
    # HELLO's fields in the spec's order: u16 version, u32 pid, u16 slot, u16 generation.
    assert p.decode_hello(bytes.fromhex("00010000abcd00070009")) == (1, 0xABCD, 7, 9)


def test_the_vector_file_is_what_the_generator_writes() -> None:
    spec = importlib.util.spec_from_file_location("generate", VECTORS_PATH.with_name("generate.py"))
    assert spec is not None and spec.loader is not None
    generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)
    assert generate.render() == VECTORS_PATH.read_text(encoding="ascii")


def test_the_vectors_cover_every_frame_type() -> None:
    types = {f["type"] for v in VALID for f in v["frames"]}
    assert types == {p.REQUEST, p.BODY, p.RESPONSE, p.WINDOW, p.RESET}.union(
        {p.CONTINUE, p.MESSAGE, p.CLOSE}, {p.HELLO, p.READY, p.SHUTDOWN, p.PING, p.PONG}
    )
