"""Hostile and ambiguous requests against the real server: one table row per case.

Each row gives the exact bytes sent on a raw socket, the status the router must answer with
(None: no response at all), whether the connection must be closed afterwards, and whether the
application must have been called (with a complete body) or must not have been. Refused requests
never reach the app, and every refused row carries a pipelined ``GET /smuggled`` after it that
must never be served either: once framing is in doubt the only safe move is to answer and close
(RFC 9112 §6.3, §11.2).

Accepted rows are followed by a second request on the same connection, which proves the
connection is still open and that both sides agree where the first message ended.

Decisions where the RFCs leave a choice are commented at the row.
"""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
from rawhttp import RawConnection, request

if TYPE_CHECKING:
    from conftest import Server

# The `calls` fixture: a function returning the app's call log, with the log's `path`.
Calls = Any

APP = "smuggling_app:app"
SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n"
# The invalid response headers of apps/smuggling_app.py (its INJECTIONS), by name.
INJECTIONS = [
    "crlf-value",
    "lf-value",
    "cr-value",
    "crlfcrlf-value",
    "nul-value",
    "crlf-name",
    "colon-name",
    "space-name",
    "nul-name",
    "empty-name",
]


@dataclass(frozen=True)
class Case:
    wire: bytes
    status: int | None
    closed: bool
    called: bool
    # For accepted requests: keys the echoed request must have, with these values.
    echo: dict[str, object] | None = None
    # Shut down the client's sending side after the bytes (TCP half-close).
    half_close: bool = False


def raw(text: str) -> bytes:
    return text.encode("latin-1")


def req(*lines: str, body: str = "", start: str = "POST /t HTTP/1.1", host: bool = True) -> bytes:
    """A request head with ``Host: h`` (unless told not to), the given lines, then ``body``."""
    head = [start, *(["Host: h"] if host else []), *lines]
    return raw("\r\n".join(head) + "\r\n\r\n" + body)


def chunked(body: str, *lines: str) -> bytes:
    return req("Transfer-Encoding: chunked", *lines, body=body)


def ok(wire: bytes, closed: bool = False, **echo: object) -> Case:
    return Case(wire, 200, closed, True, echo or None)


def refused(wire: bytes, status: int = 400) -> Case:
    return Case(wire + SMUGGLED, status, True, False)


CASES: dict[str, Case] = {
    # ---- baselines: what a well-behaved client sends ----
    "plain GET": ok(req(start="GET /t HTTP/1.1"), method="GET", body=""),
    "Content-Length body": ok(req("Content-Length: 5", body="hello"), body="hello"),
    "chunked body": ok(chunked("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"), body="hello world"),
    # ---- Content-Length and Transfer-Encoding together (RFC 9112 §6.1, §6.3 item 3) ----
    # A server MAY process TE alone, but then MUST close; refusing is simpler and no less safe.
    "CL then TE (CL.TE)": refused(
        req("Content-Length: 6", "Transfer-Encoding: chunked", body="0\r\n\r\nG")
    ),
    "TE then CL (TE.CL)": refused(
        req("Transfer-Encoding: chunked", "Content-Length: 4", body="5c\r\nGPOST / HTTP/1.1\r\n")
    ),
    "CL with TE: identity": refused(
        req("Content-Length: 5", "Transfer-Encoding: identity", body="hello")
    ),
    # ---- Content-Length values (RFC 9112 §6.3 item 5, RFC 9110 §8.6: 1*DIGIT) ----
    # "5, 5" MAY be accepted as 5 (RFC 9110 §8.6); we refuse every repeated or list value so no
    # two parsers on the path can disagree.
    "duplicate CL, same value": refused(
        req("Content-Length: 5", "Content-Length: 5", body="hello")
    ),
    "duplicate CL, different values": refused(
        req("Content-Length: 5", "Content-Length: 6", body="hello!")
    ),
    "list-valued CL 5, 5": refused(req("Content-Length: 5, 5", body="hello")),
    "list-valued CL 5,6": refused(req("Content-Length: 5,6", body="hello!")),
    "CL with plus sign": refused(req("Content-Length: +5", body="hello")),
    "CL negative": refused(req("Content-Length: -5", body="hello")),
    "CL with space inside": refused(req("Content-Length: 1 0", body="0123456789")),
    "CL hex": refused(req("Content-Length: 0x5", body="hello")),
    "CL with decimal point": refused(req("Content-Length: 5.0", body="hello")),
    "CL empty": refused(req("Content-Length: ", body="hello")),
    "CL with VT": refused(req("Content-Length: \x0b5", body="hello")),
    "CL 2**64+1 (overflow)": refused(req("Content-Length: 18446744073709551617", body="hello")),
    "CL 2**53+1 (past exact doubles)": refused(req("Content-Length: 9007199254740993")),
    "CL of 40 digits": refused(req("Content-Length: " + "9" * 40)),
    # 15 digits is a number we can hold exactly: a valid length, just over --max-request-body.
    "CL of 15 digits (413, body never read)": refused(req("Content-Length: 999999999999999"), 413),
    # Leading zeros are still 1*DIGIT.
    "CL with leading zeros": ok(req("Content-Length: 005", body="hello"), body="hello"),
    # OWS around a field value is not part of it (RFC 9112 §5).
    "CL with OWS around the value": ok(req("Content-Length: \t5 \t", body="hello"), body="hello"),
    # ---- transfer codings (RFC 9112 §6.1, §6.3 item 4, §7) ----
    # Coding names are case-insensitive (RFC 9112 §7).
    "TE Chunked (case)": ok(
        req("Transfer-Encoding: Chunked", body="5\r\nhello\r\n0\r\n\r\n"), body="hello"
    ),
    # OWS around the value is not part of the value (RFC 9112 §5).
    "TE chunked with trailing SP and HTAB": ok(
        req("Transfer-Encoding: chunked \t ", body="5\r\nhello\r\n0\r\n\r\n"), body="hello"
    ),
    "TE chunked with leading HTAB": ok(
        req("Transfer-Encoding:\tchunked", body="5\r\nhello\r\n0\r\n\r\n"), body="hello"
    ),
    # chunked not the final coding: the length cannot be determined, MUST 400 (§6.3 item 4).
    "TE chunked, identity": refused(req("Transfer-Encoding: chunked, identity", body="0\r\n\r\n")),
    "TE identity": refused(req("Transfer-Encoding: identity", body="0\r\n\r\n")),
    "TE xchunked": refused(req("Transfer-Encoding: xchunked", body="0\r\n\r\n")),
    "TE chunkedx": refused(req("Transfer-Encoding: chunkedx", body="0\r\n\r\n")),
    "TE gzip": refused(req("Transfer-Encoding: gzip", body="0\r\n\r\n")),
    "TE chunked, gzip": refused(req("Transfer-Encoding: chunked, gzip", body="0\r\n\r\n")),
    # An empty list element is legal (RFC 9110 §5.6.1) but parsers disagree on whether
    # "chunked," ends in chunked; as with "5, 5" we refuse rather than pick a side.
    "TE chunked, (trailing comma)": refused(req("Transfer-Encoding: chunked,", body="0\r\n\r\n")),
    "TE , chunked (leading comma)": refused(req("Transfer-Encoding: , chunked", body="0\r\n\r\n")),
    # chunked MUST NOT be applied twice (RFC 9112 §6.1).
    "TE chunked, chunked": refused(req("Transfer-Encoding: chunked, chunked", body="0\r\n\r\n")),
    # Repeated fields are one list (RFC 9110 §5.3): "chunked, chunked" again.
    "TE duplicated header, chunked twice": refused(
        req("Transfer-Encoding: chunked", "Transfer-Encoding: chunked", body="0\r\n\r\n")
    ),
    "TE duplicated header, chunked then gzip": refused(
        req("Transfer-Encoding: chunked", "Transfer-Encoding: gzip", body="0\r\n\r\n")
    ),
    "TE duplicated header, empty then chunked": refused(
        req("Transfer-Encoding: ", "Transfer-Encoding: chunked", body="0\r\n\r\n")
    ),
    # chunked is final, so the framing is known, but gzip is a coding we do not implement:
    # RFC 9112 §6.1 says SHOULD 501.
    "TE gzip, chunked": refused(req("Transfer-Encoding: gzip, chunked", body="0\r\n\r\n"), 501),
    "TE duplicated header, gzip then chunked": refused(
        req("Transfer-Encoding: gzip", "Transfer-Encoding: chunked", body="0\r\n\r\n"), 501
    ),
    "TE \\x0bchunked": refused(req("Transfer-Encoding: \x0bchunked", body="0\r\n\r\n")),
    "TE chunked\\x0b": refused(req("Transfer-Encoding: chunked\x0b", body="0\r\n\r\n")),
    "TE chunked\\x00": refused(req("Transfer-Encoding: chunked\x00", body="0\r\n\r\n")),
    "TE name with space before colon": refused(
        req("Transfer-Encoding : chunked", body="0\r\n\r\n")
    ),
    # RFC 9112 §6.1: TE in an HTTP/1.0 message means the framing is faulty.
    "chunked on HTTP/1.0": refused(
        req("Transfer-Encoding: chunked", body="0\r\n\r\n", start="POST /t HTTP/1.0")
    ),
    # ---- chunk sizes and extensions (RFC 9112 §7.1, §7.1.1) ----
    "chunk size not hex": refused(chunked("zz\r\nhello\r\n0\r\n\r\n")),
    "chunk size empty": refused(chunked("\r\nhello\r\n0\r\n\r\n")),
    "chunk size negative": refused(chunked("-5\r\nhello\r\n0\r\n\r\n")),
    "chunk size 0x10": refused(chunked("0x10\r\n0123456789abcdef\r\n0\r\n\r\n")),
    "chunk size with 16 digits": refused(chunked("0000000000000005\r\nhello\r\n0\r\n\r\n")),
    "chunk size overflow": refused(chunked("10000000000000005\r\nhello\r\n0\r\n\r\n")),
    "chunk size after SP": refused(chunked(" 5\r\nhello\r\n0\r\n\r\n")),
    "chunk size after HTAB": refused(chunked("\t5\r\nhello\r\n0\r\n\r\n")),
    "chunk size with trailing SP, no extension": refused(chunked("5 \r\nhello\r\n0\r\n\r\n")),
    "chunk extensions": ok(
        chunked('5;a=b;c="d;e"\r\nhello\r\n3 ; x = 1\r\n!!!\r\n0;last\r\n\r\n'),
        body="hello!!!",
    ),
    "chunk extension with bare LF": refused(chunked("5;a\nb\r\nhello\r\n0\r\n\r\n")),
    "chunk extension with bare CR": refused(chunked("5;a\rb\r\nhello\r\n0\r\n\r\n")),
    "chunk extension with NUL": refused(chunked("5;a=\x00\r\nhello\r\n0\r\n\r\n")),
    "chunk extension with VT": refused(chunked("5;a=\x0b\r\nhello\r\n0\r\n\r\n")),
    "chunk extension with DEL": refused(chunked("5;a=\x7f\r\nhello\r\n0\r\n\r\n")),
    "chunk data followed by XX, not CRLF": refused(chunked("5\r\nhelloXX0\r\n\r\n")),
    "chunk data longer than its size": refused(chunked("3\r\nhello\r\n0\r\n\r\n")),
    "chunk data followed by bare LF": refused(chunked("5\r\nhello\n0\r\n\r\n")),
    "chunk size line ended by bare LF": refused(chunked("5\nhello\r\n0\r\n\r\n")),
    "last chunk ended by bare LF": refused(chunked("5\r\nhello\r\n0\n\r\n")),
    "chunked body ended by bare LF": refused(chunked("5\r\nhello\r\n0\r\n\n")),
    "trailer line ended by bare LF": refused(chunked("5\r\nhello\r\n0\r\nX: 1\n\r\n")),
    # Trailers are parsed like header fields (RFC 9112 §7.1.2) and then dropped.
    "trailer field": ok(chunked("5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n"), body="hello"),
    "trailer with NUL": refused(chunked("5\r\nhello\r\n0\r\nX-T: a\x00b\r\n\r\n")),
    "trailer with bare CR": refused(chunked("5\r\nhello\r\n0\r\nX-T: a\rb\r\n\r\n")),
    "trailer with space before colon": refused(chunked("5\r\nhello\r\n0\r\nX-T : 1\r\n\r\n")),
    "trailer with obs-fold": refused(chunked("5\r\nhello\r\n0\r\nX-T: 1\r\n 2\r\n\r\n")),
    # ---- requests cut short: the client sends FIN (shutdown(SHUT_WR)) mid-message ----
    # RFC 9112 §8: a server MAY answer an incomplete request before closing. The router treats
    # a FIN as the client going away (as uvicorn and nginx do, and as http.disconnect needs):
    # it closes without answering, and the app never sees the request.
    **{
        name: Case(wire, None, True, False, half_close=True)
        for name, wire in {
            "half-close in the request line": raw("POST /t HT"),
            "half-close in the head": raw("POST /t HTTP/1.1\r\nHost: h\r\nContent-Le"),
            "half-close in CL body": req("Content-Length: 10", body="hello"),
            "half-close in chunk size": chunked("5\r\nhello\r\n1"),
            "half-close in chunk data": chunked("a\r\nhello"),
            "half-close before the last chunk": chunked("5\r\nhello\r\n"),
            "half-close in the trailers": chunked("5\r\nhello\r\n0\r\nX: 1\r\n"),
        }.items()
    },
    # ---- header field syntax (RFC 9112 §5, RFC 9110 §5.5) ----
    **{
        f"header value with {name}": refused(req(f"X: a{char}b"))
        for name, char in [
            ("NUL", "\x00"),
            ("VT", "\x0b"),
            ("FF", "\x0c"),
            ("\\x1c", "\x1c"),
            ("\\x1d", "\x1d"),
            ("\\x1e", "\x1e"),
            ("DEL", "\x7f"),
            ("bare CR", "\r"),
            ("bare LF", "\n"),
        ]
    },
    **{
        f"header name with {name}": refused(req(f"X{char}Y: 1"))
        for name, char in [
            ("NUL", "\x00"),
            ("VT", "\x0b"),
            ("FF", "\x0c"),
            ("\\x1c", "\x1c"),
            ("\\x1d", "\x1d"),
            ("\\x1e", "\x1e"),
            ("DEL", "\x7f"),
            ("\\x85", "\x85"),
            ("bare CR", "\r"),
            ("bare LF", "\n"),
            ("SP", " "),
        ]
    },
    # 0x85 and 0xa0 are obs-text, which RFC 9110 §5.5 allows in a field VALUE: passed to the app
    # as the same bytes (no parser on the path may read 0x85 as NEL, a line break to Python's
    # str.splitlines).
    "header value with \\x85 (obs-text)": ok(
        req("X: a\x85b", start="GET /t HTTP/1.1"), headers=[["host", "h"], ["x", "a\x85b"]]
    ),
    "header value with \\xa0 (obs-text)": ok(
        req("X: a\xa0b", start="GET /t HTTP/1.1"), headers=[["host", "h"], ["x", "a\xa0b"]]
    ),
    "empty header name": refused(req(": v")),
    "header line without colon": refused(req("X")),
    # RFC 9112 §5.1: whitespace between name and colon MUST be rejected with 400.
    "space before colon": refused(req("X : 1")),
    "tab before colon": refused(req("X\t: 1")),
    # RFC 9112 §5.2: obs-fold outside message/http; a server MAY reject it with 400.
    "obs-fold with SP": refused(req("X: a", " b")),
    "obs-fold with HTAB": refused(req("X: a", "\tb")),
    # RFC 9112 §2.2: whitespace before the first field line MUST be rejected or ignored.
    "whitespace before the first header": refused(
        raw("GET /t HTTP/1.1\r\n Host: h\r\nX: 1\r\n\r\n")
    ),
    "bare LF line endings": refused(raw("GET /t HTTP/1.1\nHost: h\n\n")),
    "bare LF ends the head": refused(raw("GET /t HTTP/1.1\r\nHost: h\r\n\n")),
    # ---- HTTP version (RFC 9112 §2.3, RFC 9110 §6.2, §15.6.6) ----
    # HTTP-version is "HTTP/" DIGIT "." DIGIT, case-sensitive; anything else is not a request
    # line (400). A well-formed version with a major we do not speak gets 505.
    "HTTP/0.9 simple request (no version)": refused(raw("GET /t\r\n\r\n")),
    "HTTP/0.9 with a version": refused(raw("GET /t HTTP/0.9\r\n\r\n"), 505),
    # (The HTTP/2 preface itself, "PRI * HTTP/2.0", starts HTTP/2: test_e2e_http2.py.)
    "HTTP/2.0 request line": refused(req(start="GET /t HTTP/2.0"), 505),
    "HTTP/3.0": refused(req(start="GET /t HTTP/3.0"), 505),
    # A higher minor version of a major we implement SHOULD be processed as the highest minor we
    # speak (RFC 9110 §6.2); 505 is only for an unsupported MAJOR version (§15.6.6).
    "HTTP/1.2 is served as 1.1": ok(req(start="GET /t HTTP/1.2"), http_version="1.1"),
    "HTTP/1.9 is served as 1.1": ok(req(start="GET /t HTTP/1.9"), http_version="1.1"),
    "HTTP/1.1 followed by SP": refused(req(start="GET /t HTTP/1.1 ")),
    "HTTP/1.1x": refused(req(start="GET /t HTTP/1.1x")),
    "HTTP/1.10": refused(req(start="GET /t HTTP/1.10")),
    "HTTP/11": refused(req(start="GET /t HTTP/11")),
    "lowercase http/1.1": refused(req(start="GET /t http/1.1")),
    "HTTP/1.0 without Host": ok(raw("GET /t HTTP/1.0\r\n\r\n"), closed=True, http_version="1.0"),
    # ---- method (RFC 9110 §9.1: a token, case-sensitive) ----
    "method with @": refused(req(start="G@T /t HTTP/1.1")),
    "method with (": refused(req(start="G(T /t HTTP/1.1")),
    "method with NUL": refused(req(start="GE\x00T /t HTTP/1.1")),
    "method with \\x85": refused(req(start="GE\x85T /t HTTP/1.1")),
    "lowercase method is another method": ok(req(start="get /t HTTP/1.1"), method="get"),
    # An ASGI app cannot take over a tunnel. 501 (RFC 9110 §15.6.2): the server does not
    # support the method for any resource; a 405 would need an Allow header (§15.5.6).
    "CONNECT": refused(req(start="CONNECT h:443 HTTP/1.1"), 501),
    # ---- request target (RFC 9112 §3.2) ----
    "authority-form with GET": refused(req(start="GET h:80 HTTP/1.1")),
    "asterisk-form with OPTIONS": ok(req(start="OPTIONS * HTTP/1.1"), raw_path="*"),
    "asterisk-form with GET": refused(req(start="GET * HTTP/1.1")),
    "relative target": refused(req(start="GET t HTTP/1.1")),
    # RFC 9112 §3.2.2: a server MUST accept absolute-form, and MUST ignore Host in favour of
    # the target's authority: the app gets a Host header that matches the target.
    "absolute-form": ok(
        req(start="GET http://h/p?q=1 HTTP/1.1"),
        raw_path="/p",
        query_string="q=1",
        headers=[["host", "h"]],
    ),
    "absolute-form with a different Host": ok(
        raw("GET http://good.example:8080/p HTTP/1.1\r\nHost: evil.example\r\n\r\n"),
        raw_path="/p",
        headers=[["host", "good.example:8080"]],
    ),
    # RFC 9112 §3.2: an HTTP/1.1 request without Host is a 400, whatever the target form.
    "absolute-form without Host": refused(raw("GET http://h/p HTTP/1.1\r\n\r\n")),
    "absolute-form with userinfo": refused(req(start="GET http://u@h/p HTTP/1.1")),
    "absolute-form with empty host": refused(req(start="GET http:///p HTTP/1.1")),
    "absolute-form with another scheme": refused(req(start="GET ftp://h/p HTTP/1.1")),
    # A fragment is not part of any request-target form (RFC 9112 §3.2, RFC 9110 §7.1).
    "fragment in the path": refused(req(start="GET /t#frag HTTP/1.1")),
    "fragment in the query": refused(req(start="GET /t?a=1#frag HTTP/1.1")),
    "non-ASCII byte in the target": refused(req(start="GET /caf\xe9 HTTP/1.1")),
    "DEL in the target": refused(req(start="GET /t\x7f HTTP/1.1")),
    # ---- Host (RFC 9112 §3.2: missing on 1.1, repeated or invalid MUST get 400) ----
    "missing Host on HTTP/1.1": refused(req(start="GET /t HTTP/1.1", host=False)),
    "duplicate Host, same value": refused(req("Host: h", start="GET /t HTTP/1.1")),
    "duplicate Host, different values": refused(req("Host: evil", start="GET /t HTTP/1.1")),
    "Host with a space": refused(raw("GET /t HTTP/1.1\r\nHost: a b\r\n\r\n")),
    "Host with a slash": refused(raw("GET /t HTTP/1.1\r\nHost: a/b\r\n\r\n")),
    "Host with userinfo": refused(raw("GET /t HTTP/1.1\r\nHost: u@a\r\n\r\n")),
    "Host with \\x85": refused(raw("GET /t HTTP/1.1\r\nHost: a\x85\r\n\r\n")),
    # RFC 9112 §3.2: a target without authority is sent with an empty Host.
    "empty Host": ok(raw("GET /t HTTP/1.1\r\nHost:\r\n\r\n"), headers=[["host", ""]]),
    # ---- request line (RFC 9112 §3) ----
    "two spaces after the method": refused(req(start="GET  /t HTTP/1.1")),
    "two spaces before the version": refused(req(start="GET /t  HTTP/1.1")),
    "HTAB as separator": refused(req(start="GET\t/t HTTP/1.1")),
    "leading SP": refused(req(start=" GET /t HTTP/1.1")),
    "request line without version": refused(req(start="GET /t")),
    # RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the request line.
    "leading CRLF": ok(b"\r\n" + req(start="GET /t HTTP/1.1"), method="GET"),
    "leading CRLF CRLF": ok(b"\r\n\r\n" + req(start="GET /t HTTP/1.1"), method="GET"),
    "leading bare LF": refused(b"\n" + req(start="GET /t HTTP/1.1")),
    "leading bare CR": refused(b"\r" + req(start="GET /t HTTP/1.1")),
    # ---- limits (RFC 9112 §3 414; RFC 6585 §5 431) ----
    "request line of 8 KiB": ok(
        req(start=f"GET /{'a' * (8192 - len('GET / HTTP/1.1'))} HTTP/1.1"), method="GET"
    ),
    "request line over 8 KiB": refused(
        req(start=f"GET /{'a' * (8193 - len('GET / HTTP/1.1'))} HTTP/1.1"), 414
    ),
    "header section over 64 KiB": refused(req(*[f"X-{i}: {'v' * 1000}" for i in range(70)]), 431),
    "100 header fields": ok(req(*[f"X-{i}: 1" for i in range(99)], start="GET /t HTTP/1.1")),
    "101 header fields": refused(req(*[f"X-{i}: 1" for i in range(100)]), 431),
}


def app_calls(lines: list[str]) -> list[str]:
    """The app's call log without the probe requests the test itself sends."""
    return [line for line in lines if not line.startswith(("GET /after ", "GET /sentinel "))]


def probe(server: object) -> None:
    """A request on a new connection, answered only after anything sent before it reached the
    worker: the app's call log is complete once it is answered."""
    with RawConnection.to(server) as conn:
        conn.send(request("GET", "/sentinel", [("Connection", "close")]))
        assert conn.read_response().status == 200


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_hostile_request_is_answered_as_the_table_says(
    serve: type[Server], calls: Calls, case: Case
) -> None:
    server = serve(APP, env={"ECHO_CALLS": calls.path})
    with RawConnection.to(server) as conn:
        conn.send(case.wire)
        if case.half_close:
            conn.sock.shutdown(socket.SHUT_WR)
        if case.status is None:
            assert conn.read_until_eof() == b"", "expected no response"
        else:
            response = conn.read_response()
            assert response.status == case.status, response.raw + response.body
            if case.closed:
                assert conn.is_closed(), "the connection must be closed after this response"
            else:
                # Still open, and the next message starts exactly where we think it does.
                conn.send(request("GET", "/after"))
                assert conn.read_response().status == 200
            if case.echo is not None:
                echoed = json.loads(response.body)
                for key, value in case.echo.items():
                    assert echoed[key] == value, key
    probe(server)
    called = app_calls(calls())
    assert not any(" /smuggled " in line for line in called), called
    if case.called:
        assert len(called) == 1, called
        assert called[0].split(" ")[2] == "complete", called
    else:
        assert called == [], "the app must not be called for a refused request"


@pytest.mark.parametrize("name", INJECTIONS)
def test_response_header_injection_never_reaches_the_wire(
    serve: type[Server], calls: Calls, name: str
) -> None:
    server = serve(APP, env={"ECHO_CALLS": calls.path})
    with RawConnection.to(server) as conn:
        conn.send(request("GET", f"/inject/{name}"))
        response = conn.read_response()
        assert conn.is_closed(), "the connection must be closed after the 500"
    assert response.status == 500
    wire = response.raw + response.body
    assert b"evil" not in wire, wire
    assert response.header("set-cookie") is None
    assert b"x-a:" not in wire.lower()
    # The app saw the RuntimeError from send(), and the worker answers the next request.
    probe(server)
    assert app_calls(calls()) == [f"RuntimeError /inject/{name}"]
    server.wait_log(r"Exception in ASGI application")


def test_large_body_cut_short_reaches_the_app_only_as_a_disconnect(
    serve: type[Server], calls: Calls
) -> None:
    # Past 64 KiB the router streams the body to the app as it arrives, so the app is called;
    # a client that goes away mid-body must show up as http.disconnect, never as a whole body.
    server = serve(APP, env={"ECHO_CALLS": calls.path})
    with RawConnection.to(server) as conn:
        conn.send(req("Content-Length: 200000", body="x" * 100_000))
        conn.sock.shutdown(socket.SHUT_WR)
        assert conn.read_until_eof() == b"", "a client that left gets no response"
    probe(server)
    deadline = time.monotonic() + 10
    while not app_calls(calls()) and time.monotonic() < deadline:
        time.sleep(0.02)
    called = app_calls(calls())
    assert len(called) == 1, called
    method, path, outcome, size = called[0].split(" ")
    assert (method, path, outcome) == ("POST", "/t", "disconnect")
    assert int(size) <= 100_000
