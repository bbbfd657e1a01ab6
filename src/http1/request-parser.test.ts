import { describe, expect, test } from "bun:test";
import type { HttpErrorCode } from "./errors.ts";
import {
  type ParseEvent,
  type ParserLimits,
  type RequestHead,
  RequestParser,
} from "./request-parser.ts";

type Expected =
  | { head: Partial<RequestHead> }
  | { body: string }
  | "end"
  | { error: HttpErrorCode; status: number };

interface Case {
  name: string;
  input: string; // latin1: one char per byte
  events: Expected[];
  eof?: boolean;
  limits?: ParserLimits;
}

const SMALL: ParserLimits = { maxRequestLine: 64, maxHeaderBytes: 256, maxHeaders: 4 };

const GET = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";

function err(code: HttpErrorCode, status = 400): Expected {
  return { error: code, status };
}

/** A request with the given extra header lines (each without CRLF) and raw tail. */
function req(lines: string[], tail = "", start = "POST /p HTTP/1.1"): string {
  return `${start}\r\nHost: h\r\n${lines.map((l) => `${l}\r\n`).join("")}\r\n${tail}`;
}

function rejects(name: string, input: string, code: HttpErrorCode, status = 400): Case {
  return { name, input, events: [err(code, status)] };
}

/** A chunked request whose body `tail` is refused with BAD_CHUNK right after the head. */
function chunkRejects(name: string, tail: string): Case {
  return {
    name,
    input: req(["Transfer-Encoding: chunked"], tail),
    events: [{ head: { bodyKind: "chunked" } }, err("BAD_CHUNK")],
  };
}

function headerValueRejected(label: string, ch: string): Case {
  return rejects(
    `a header value containing ${label} is refused`,
    req([`X: a${ch}b`]),
    "BAD_HEADER",
  );
}

const CASES: Case[] = [
  // ---- accepted requests ----
  {
    name: "a simple GET yields a full head and an end",
    input: GET,
    events: [
      {
        head: {
          method: "GET",
          target: "/",
          rawPath: "/",
          query: "",
          httpVersion: "1.1",
          headers: ["Host", "a"],
          keepAlive: true,
          bodyKind: "none",
          contentLength: 0,
          expectContinue: false,
          upgrade: null,
        },
      },
      "end",
    ],
  },
  {
    name: "the path and the query are split at the first question mark, bytes kept raw",
    input: "GET /a%20b/c?x=1&y=%2F?z HTTP/1.1\r\nHost: a\r\n\r\n",
    events: [
      { head: { target: "/a%20b/c?x=1&y=%2F?z", rawPath: "/a%20b/c", query: "x=1&y=%2F?z" } },
      "end",
    ],
  },
  {
    name: "an empty query after a question mark is the empty string",
    input: "GET /p? HTTP/1.1\r\nHost: a\r\n\r\n",
    events: [{ head: { rawPath: "/p", query: "" } }, "end"],
  },
  {
    name: "header order, duplicates and name case are kept",
    input: "GET / HTTP/1.1\r\nX-A: 1\r\nx-a: 2\r\nHost: h\r\nX-B: 3\r\nX-A: 4\r\n\r\n",
    events: [
      { head: { headers: ["X-A", "1", "x-a", "2", "Host", "h", "X-B", "3", "X-A", "4"] } },
      "end",
    ],
  },
  {
    name: "optional whitespace around header values is removed, inner whitespace kept",
    input: "GET / HTTP/1.1\r\nHost:a\r\nX:   v  \t\r\nY:\r\nZ:\t a \tb \t\r\nW: \r\n\r\n",
    events: [{ head: { headers: ["Host", "a", "X", "v", "Y", "", "Z", "a \tb", "W", ""] } }, "end"],
  },
  {
    name: "obs-text bytes in a header value are passed through as latin1",
    input: "GET / HTTP/1.1\r\nHost: a\r\nX: caf\xe9 \x80\xff\r\n\r\n",
    events: [{ head: { headers: ["Host", "a", "X", "caf\xe9 \x80\xff"] } }, "end"],
  },
  {
    name: "extension methods made of token characters are accepted",
    input: "M-SEARCH / HTTP/1.1\r\nHost: a\r\n\r\nPURGE /x HTTP/1.1\r\nHost: a\r\n\r\n",
    events: [{ head: { method: "M-SEARCH" } }, "end", { head: { method: "PURGE" } }, "end"],
  },
  {
    name: "a Content-Length body is delivered and then the message ends",
    input: req(["Content-Length: 5"], "hello"),
    events: [{ head: { bodyKind: "length", contentLength: 5 } }, { body: "hello" }, "end"],
  },
  {
    name: "Content-Length: 0 means a body of length zero",
    input: req(["content-length: 0"]),
    events: [{ head: { bodyKind: "length", contentLength: 0 } }, "end"],
  },
  {
    name: "Content-Length with leading zeros is a decimal number",
    input: req(["Content-Length: 007"], "1234567"),
    events: [{ head: { contentLength: 7 } }, { body: "1234567" }, "end"],
  },
  {
    name: "a chunked body with extensions is de-chunked",
    input: req(
      ["Transfer-Encoding: chunked"],
      '5\r\nhello\r\n6;ext=1;foo\r\n world\r\nA ; q="x y"\r\n0123456789\r\n0\r\n\r\n',
    ),
    events: [
      { head: { bodyKind: "chunked", contentLength: 0 } },
      { body: "hello world0123456789" },
      "end",
    ],
  },
  {
    name: "chunk sizes may be upper case hex with leading zeros",
    input: req(["Transfer-Encoding: CHUNKED"], "0000F\r\n0123456789abcde\r\n000\r\n\r\n"),
    events: [{ head: { bodyKind: "chunked" } }, { body: "0123456789abcde" }, "end"],
  },
  {
    name: "chunked trailers are parsed and discarded",
    input: req(["Transfer-Encoding: chunked"], "3\r\nabc\r\n0\r\nX-T: 1\r\nY:  2 \r\n\r\n"),
    events: [{ head: { bodyKind: "chunked" } }, { body: "abc" }, "end"],
  },
  {
    name: "an empty chunked body is just the last chunk",
    input: req(["Transfer-Encoding: chunked"], "0\r\n\r\n"),
    events: [{ head: { bodyKind: "chunked" } }, "end"],
  },
  {
    name: "two pipelined GETs in one chunk are parsed one after the other",
    input: `${GET}GET /two HTTP/1.1\r\nHost: b\r\n\r\n`,
    events: [{ head: { target: "/" } }, "end", { head: { target: "/two" } }, "end"],
  },
  {
    name: "three pipelined requests with bodies are parsed in order",
    input:
      req(["Content-Length: 3"], "abc") +
      req(["Transfer-Encoding: chunked"], "2\r\nde\r\n0\r\n\r\n", "PUT /q HTTP/1.1") +
      "DELETE /r HTTP/1.1\r\nHost: c\r\n\r\n",
    events: [
      { head: { method: "POST", contentLength: 3 } },
      { body: "abc" },
      "end",
      { head: { method: "PUT", bodyKind: "chunked" } },
      { body: "de" },
      "end",
      { head: { method: "DELETE", rawPath: "/r" } },
      "end",
    ],
  },
  {
    name: "a stray CRLF after a body before the next request is ignored",
    input: `${req(["Content-Length: 2"], "hi")}\r\n${GET}`,
    events: [
      { head: { method: "POST" } },
      { body: "hi" },
      "end",
      { head: { method: "GET" } },
      "end",
    ],
  },
  {
    name: "a few empty lines before the first request line are ignored",
    input: `\r\n\r\n${GET}`,
    events: [{ head: { method: "GET" } }, "end"],
  },
  {
    name: "HTTP/1.0 without Host is accepted and not persistent by default",
    input: "GET /old HTTP/1.0\r\n\r\n",
    events: [{ head: { httpVersion: "1.0", keepAlive: false, headers: [] } }, "end"],
  },
  {
    name: "HTTP/1.0 with Connection: keep-alive is persistent",
    input: "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
    events: [{ head: { httpVersion: "1.0", keepAlive: true } }, "end"],
  },
  {
    name: "HTTP/1.0 with a Content-Length body is accepted",
    input: "POST / HTTP/1.0\r\nContent-Length: 2\r\n\r\nok",
    events: [{ head: { httpVersion: "1.0", bodyKind: "length" } }, { body: "ok" }, "end"],
  },
  {
    name: "HTTP/1.1 with Connection: close is not persistent",
    input: "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    events: [{ head: { keepAlive: false } }, "end"],
  },
  {
    name: "a close token anywhere in any Connection header wins over keep-alive",
    input: "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\nconnection: foo , CLOSE\r\n\r\n",
    events: [{ head: { keepAlive: false } }, "end"],
  },
  {
    name: "an absolute-form target gives the path and query of the URI",
    input: "GET http://example.com:8080/p/q?x=1 HTTP/1.1\r\nHost: example.com:8080\r\n\r\n",
    events: [
      {
        head: {
          target: "http://example.com:8080/p/q?x=1",
          rawPath: "/p/q",
          query: "x=1",
        },
      },
      "end",
    ],
  },
  {
    name: "an absolute-form target without a path has the path /",
    input:
      "GET HTTPS://[::1]:8443?q HTTP/1.1\r\nHost: [::1]:8443\r\n\r\nGET http://h HTTP/1.1\r\nHost: h\r\n\r\n",
    events: [
      { head: { rawPath: "/", query: "q" } },
      "end",
      { head: { rawPath: "/", query: "" } },
      "end",
    ],
  },
  {
    name: "with an absolute-form target, Host says the target's authority whatever was sent",
    input: "GET http://good.example:8080/p HTTP/1.1\r\nX: 1\r\nHOST: evil.example\r\n\r\n",
    events: [{ head: { headers: ["X", "1", "HOST", "good.example:8080"] } }, "end"],
  },
  {
    name: "an HTTP/1.0 absolute-form request without Host gets the target's authority as Host",
    input: "GET http://h:81/p HTTP/1.0\r\nX: 1\r\n\r\n",
    events: [{ head: { headers: ["X", "1", "host", "h:81"] } }, "end"],
  },
  {
    name: "Transfer-Encoding chunked with OWS and in any case is chunked",
    input: req(["Transfer-Encoding: \tChunKed \t"], "1\r\na\r\n0\r\n\r\n"),
    events: [{ head: { bodyKind: "chunked" } }, { body: "a" }, "end"],
  },
  {
    name: "OPTIONS * is accepted with the path *",
    input: "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
    events: [{ head: { method: "OPTIONS", target: "*", rawPath: "*", query: "" } }, "end"],
  },
  {
    name: "Expect: 100-continue is reported for HTTP/1.1",
    input: req(["Expect: 100-Continue", "Content-Length: 1"], "x"),
    events: [{ head: { expectContinue: true } }, { body: "x" }, "end"],
  },
  {
    name: "Expect: 100-continue is ignored for HTTP/1.0",
    input: "POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx",
    events: [{ head: { expectContinue: false } }, { body: "x" }, "end"],
  },
  {
    name: "Upgrade is reported, lowercased, when Connection lists upgrade",
    input:
      "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\nUpgrade: WebSocket\r\n\r\n",
    events: [{ head: { upgrade: "websocket", keepAlive: true } }, "end"],
  },
  {
    name: "Upgrade without the upgrade connection token is ignored",
    input: "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n",
    events: [{ head: { upgrade: null } }, "end"],
  },
  {
    name: "an empty Host value is accepted",
    input: "GET / HTTP/1.1\r\nHost:\r\n\r\n",
    events: [{ head: { headers: ["Host", ""] } }, "end"],
  },
  {
    name: "a head exactly at the limits is accepted",
    // 64-byte request line, 4 headers, 256 bytes in all.
    input: `GET /${"a".repeat(64 - 14)} HTTP/1.1\r\nHost: a\r\nB: 1\r\nC: 1\r\nD: ${"d".repeat(256 - 66 - 9 - 6 - 6 - 2 - 5)}\r\n\r\n`,
    limits: SMALL,
    events: [{ head: { method: "GET" } }, "end"],
  },
  {
    name: "end of input between requests is clean",
    input: `${GET}\r\n`,
    eof: true,
    events: [{ head: { method: "GET" } }, "end"],
  },

  // ---- framing defences (RFC 9112 §6) ----
  rejects(
    "Content-Length together with Transfer-Encoding is refused",
    req(["Content-Length: 5", "Transfer-Encoding: chunked"], "0\r\n\r\n"),
    "CONFLICTING_FRAMING",
  ),
  rejects(
    "Transfer-Encoding before Content-Length is refused too",
    req(["Transfer-Encoding: chunked", "Content-Length: 5"], "0\r\n\r\n"),
    "CONFLICTING_FRAMING",
  ),
  rejects(
    "a Content-Length list is refused",
    req(["Content-Length: 5, 5"], "hello"),
    "BAD_CONTENT_LENGTH",
  ),
  rejects(
    "a repeated Content-Length is refused even if equal",
    req(["Content-Length: 5", "Content-Length: 5"], "hello"),
    "BAD_CONTENT_LENGTH",
  ),
  rejects(
    "a signed Content-Length is refused",
    req(["Content-Length: +5"], "hello"),
    "BAD_CONTENT_LENGTH",
  ),
  rejects(
    "a negative Content-Length is refused",
    req(["Content-Length: -1"]),
    "BAD_CONTENT_LENGTH",
  ),
  rejects("a hex Content-Length is refused", req(["Content-Length: 0x5"]), "BAD_CONTENT_LENGTH"),
  rejects(
    "a Content-Length with inner space is refused",
    req(["Content-Length: 1 2"]),
    "BAD_CONTENT_LENGTH",
  ),
  rejects("an empty Content-Length is refused", req(["Content-Length:"]), "BAD_CONTENT_LENGTH"),
  rejects(
    "a Content-Length of 16 digits is refused",
    req(["Content-Length: 1234567890123456"]),
    "BAD_CONTENT_LENGTH",
  ),
  rejects(
    "Transfer-Encoding gzip, chunked is not implemented",
    req(["Transfer-Encoding: gzip, chunked"], "0\r\n\r\n"),
    "UNSUPPORTED_TRANSFER_ENCODING",
    501,
  ),
  rejects(
    "two Transfer-Encoding fields gzip then chunked are one list: not implemented",
    req(["Transfer-Encoding: gzip", "Transfer-Encoding: chunked"], "0\r\n\r\n"),
    "UNSUPPORTED_TRANSFER_ENCODING",
    501,
  ),
  rejects(
    "Transfer-Encoding chunked, chunked is refused",
    req(["Transfer-Encoding: chunked, chunked"], "0\r\n\r\n"),
    "CHUNKED_NOT_FINAL",
  ),
  rejects(
    "two Transfer-Encoding chunked fields are refused",
    req(["Transfer-Encoding: chunked", "Transfer-Encoding: chunked"], "0\r\n\r\n"),
    "CHUNKED_NOT_FINAL",
  ),
  rejects(
    "Transfer-Encoding chunked then an empty field is refused",
    req(["Transfer-Encoding: chunked", "Transfer-Encoding: "], "0\r\n\r\n"),
    "CHUNKED_NOT_FINAL",
  ),
  rejects(
    "Transfer-Encoding chunked, identity is refused (chunked not final)",
    req(["Transfer-Encoding: chunked, identity"], "0\r\n\r\n"),
    "CHUNKED_NOT_FINAL",
  ),
  rejects(
    "Transfer-Encoding chunked, gzip is refused (chunked not final)",
    req(["Transfer-Encoding: chunked, gzip"], "0\r\n\r\n"),
    "CHUNKED_NOT_FINAL",
  ),
  rejects(
    "Transfer-Encoding gzip alone is refused (chunked not final)",
    req(["Transfer-Encoding: gzip"], "0\r\n\r\n"),
    "CHUNKED_NOT_FINAL",
  ),
  rejects(
    "Transfer-Encoding xchunked is refused",
    req(["Transfer-Encoding: xchunked"], "0\r\n\r\n"),
    "CHUNKED_NOT_FINAL",
  ),
  rejects(
    "Transfer-Encoding chunkedx is refused",
    req(["Transfer-Encoding: chunkedx"], "0\r\n\r\n"),
    "CHUNKED_NOT_FINAL",
  ),
  rejects(
    "Transfer-Encoding with an inner space is refused",
    req(["Transfer-Encoding: chun ked"], "0\r\n\r\n"),
    "CHUNKED_NOT_FINAL",
  ),
  rejects(
    "Transfer-Encoding chunked with a trailing comma is refused",
    req(["Transfer-Encoding: chunked,"], "0\r\n\r\n"),
    "CHUNKED_NOT_FINAL",
  ),
  rejects(
    "Transfer-Encoding chunked with a leading comma is refused",
    req(["Transfer-Encoding: , chunked"], "0\r\n\r\n"),
    "CHUNKED_NOT_FINAL",
  ),
  rejects(
    "an empty Transfer-Encoding is refused",
    req(["Transfer-Encoding:"], "0\r\n\r\n"),
    "CHUNKED_NOT_FINAL",
  ),
  rejects(
    "Transfer-Encoding with a leading vertical tab is refused",
    req(["Transfer-Encoding: \x0bchunked"], "0\r\n\r\n"),
    "BAD_HEADER",
  ),
  rejects(
    "Transfer-Encoding folded onto a continuation line is refused",
    req(["Transfer-Encoding:", " chunked"], "0\r\n\r\n"),
    "BAD_HEADER",
  ),
  rejects(
    "Transfer-Encoding followed by a vertical tab is refused",
    req(["Transfer-Encoding: chunked\x0b"], "0\r\n\r\n"),
    "BAD_HEADER",
  ),
  rejects(
    "Transfer-Encoding in HTTP/1.0 is refused",
    "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "BAD_TRANSFER_ENCODING",
  ),

  // ---- chunked encoding (RFC 9112 §7.1) ----
  chunkRejects("a 0x chunk size is refused", "0x5\r\nhello\r\n0\r\n\r\n"),
  chunkRejects("a negative chunk size is refused", "-1\r\n"),
  chunkRejects("a signed chunk size is refused", "+5\r\nhello\r\n"),
  chunkRejects("a chunk size after a space is refused", " 5\r\nhello\r\n"),
  chunkRejects("a chunk size with trailing space is refused", "5 \r\nhello\r\n"),
  chunkRejects("an empty chunk size is refused", "\r\nhello\r\n"),
  chunkRejects(
    "a chunk size of 16 hex digits is refused",
    "0000000000000005\r\nhello\r\n0\r\n\r\n",
  ),
  chunkRejects("a chunk size beyond 2^53 is refused", "fffffffffffffff\r\n"),
  chunkRejects("a chunk size line ended by a bare LF is refused", "5\nhello\r\n0\r\n\r\n"),
  chunkRejects(
    "a chunk extension with a control byte is refused",
    "5;a=\x01\r\nhello\r\n0\r\n\r\n",
  ),
  chunkRejects(
    "a chunk size line longer than 4 KiB is refused",
    `5;${"a".repeat(5000)}\r\nhello\r\n0\r\n\r\n`,
  ),
  {
    name: "chunk data followed by XX instead of CRLF is refused",
    input: req(["Transfer-Encoding: chunked"], "5\r\nhelloXX0\r\n\r\n"),
    events: [{ head: { bodyKind: "chunked" } }, { body: "hello" }, err("BAD_CHUNK")],
  },
  {
    name: "chunk data followed by CR and a non-LF byte is refused",
    input: req(["Transfer-Encoding: chunked"], "5\r\nhello\rX0\r\n\r\n"),
    events: [{ head: { bodyKind: "chunked" } }, { body: "hello" }, err("BAD_CHUNK")],
  },
  {
    name: "a trailer field with a control byte is refused",
    input: req(["Transfer-Encoding: chunked"], "1\r\na\r\n0\r\nX: \x00\r\n\r\n"),
    events: [{ head: {} }, { body: "a" }, err("BAD_HEADER")],
  },
  {
    name: "too many trailer fields are refused",
    input: req(
      ["Transfer-Encoding: chunked"],
      "1\r\na\r\n0\r\nA: 1\r\nB: 1\r\nC: 1\r\nD: 1\r\nE: 1\r\n\r\n",
    ),
    limits: SMALL,
    events: [{ head: {} }, { body: "a" }, err("TOO_MANY_HEADERS", 431)],
  },
  {
    name: "a truncated chunked body at end of input is an incomplete message",
    input: req(["Transfer-Encoding: chunked"], "5\r\nhel"),
    eof: true,
    events: [{ head: {} }, { body: "hel" }, err("INCOMPLETE_MESSAGE")],
  },
  {
    name: "a chunked body missing its last chunk at end of input is an incomplete message",
    input: req(["Transfer-Encoding: chunked"], "5\r\nhello\r\n"),
    eof: true,
    events: [{ head: {} }, { body: "hello" }, err("INCOMPLETE_MESSAGE")],
  },
  {
    name: "a truncated Content-Length body at end of input is an incomplete message",
    input: req(["Content-Length: 10"], "hello"),
    eof: true,
    events: [{ head: {} }, { body: "hello" }, err("INCOMPLETE_MESSAGE")],
  },
  {
    name: "a truncated head at end of input is an incomplete message",
    input: "GET / HTTP/1.1\r\nHost: a\r\n",
    eof: true,
    events: [err("INCOMPLETE_MESSAGE")],
  },

  // ---- header fields (RFC 9112 §5, RFC 9110 §5.5) ----
  headerValueRejected("NUL", "\x00"),
  headerValueRejected("VT", "\x0b"),
  headerValueRejected("FF", "\x0c"),
  headerValueRejected("0x1c", "\x1c"),
  headerValueRejected("0x1d", "\x1d"),
  headerValueRejected("0x1e", "\x1e"),
  headerValueRejected("DEL", "\x7f"),
  headerValueRejected("a bare CR", "\r"),
  rejects("a bare CR just before CRLF is refused", req(["X: a\r"]), "BAD_HEADER"),
  rejects("a 0x85 byte in a header name is refused", req(["X\x85Y: 1"]), "BAD_HEADER"),
  rejects(
    "a space before the colon is refused",
    req(["Content-Length : 5"], "hello"),
    "BAD_HEADER",
  ),
  rejects("a tab before the colon is refused", req(["X\t: 5"]), "BAD_HEADER"),
  rejects("an empty header name is refused", req([": v"]), "BAD_HEADER"),
  rejects("a header line without a colon is refused", req(["NoColon"]), "BAD_HEADER"),
  rejects("obs-fold is refused", req(["X: a", " b"]), "BAD_HEADER"),
  rejects("obs-fold with a tab is refused", req(["X: a", "\tb"]), "BAD_HEADER"),
  rejects("bare LF line endings are refused", "GET / HTTP/1.1\nHost: a\n\n", "BAD_LINE_ENDING"),
  rejects(
    "a bare LF after a header line is refused",
    "GET / HTTP/1.1\r\nHost: a\n\r\n",
    "BAD_LINE_ENDING",
  ),
  rejects(
    "a bare LF as the final empty line is refused",
    "GET / HTTP/1.1\r\nHost: a\r\n\n",
    "BAD_LINE_ENDING",
  ),
  rejects("a bare LF before the request line is refused", `\n${GET}`, "BAD_LINE_ENDING"),
  rejects(
    "more than a few empty lines before the request line are refused",
    `${"\r\n".repeat(5)}${GET}`,
    "BAD_REQUEST_LINE",
  ),

  // ---- request line (RFC 9112 §3) ----
  rejects(
    "HTTP/2.0 is not supported",
    "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    "UNSUPPORTED_VERSION",
    505,
  ),
  rejects("HTTP/0.9 is not supported", "GET / HTTP/0.9\r\n\r\n", "UNSUPPORTED_VERSION", 505),
  rejects(
    "HTTP/3.0 is not supported",
    "GET / HTTP/3.0\r\nHost: a\r\n\r\n",
    "UNSUPPORTED_VERSION",
    505,
  ),
  {
    name: "HTTP/1.2 and HTTP/1.9 are served as HTTP/1.1",
    input: "GET / HTTP/1.2\r\nHost: a\r\n\r\nGET / HTTP/1.9\r\nHost: a\r\n\r\n",
    events: [
      { head: { httpVersion: "1.1", keepAlive: true } },
      "end",
      { head: { httpVersion: "1.1", keepAlive: true } },
      "end",
    ],
  },
  rejects("HTTP/1.10 is malformed", "GET / HTTP/1.10\r\nHost: a\r\n\r\n", "BAD_REQUEST_LINE"),
  rejects(
    "a version without minor is malformed",
    "GET / HTTP/1\r\nHost: a\r\n\r\n",
    "BAD_REQUEST_LINE",
  ),
  rejects("HTTP/1.1x is malformed", "GET / HTTP/1.1x\r\nHost: a\r\n\r\n", "BAD_REQUEST_LINE"),
  rejects(
    "a lowercase http version is malformed",
    "GET / http/1.1\r\nHost: a\r\n\r\n",
    "BAD_REQUEST_LINE",
  ),
  rejects("a missing version is malformed", "GET /\r\nHost: a\r\n\r\n", "BAD_REQUEST_LINE"),
  rejects(
    "a trailing space after the version is malformed",
    "GET / HTTP/1.1 \r\nHost: a\r\n\r\n",
    "BAD_REQUEST_LINE",
  ),
  rejects(
    "two spaces after the method are malformed",
    "GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
    "BAD_REQUEST_LINE",
  ),
  rejects("a tab separator is malformed", "GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", "BAD_REQUEST_LINE"),
  rejects("a leading space is malformed", " GET / HTTP/1.1\r\nHost: a\r\n\r\n", "BAD_REQUEST_LINE"),
  rejects(
    "a method with a parenthesis is refused",
    "G(T / HTTP/1.1\r\nHost: a\r\n\r\n",
    "BAD_METHOD",
  ),
  rejects(
    "a method with a NUL byte is refused",
    "GE\x00T / HTTP/1.1\r\nHost: a\r\n\r\n",
    "BAD_METHOD",
  ),
  rejects(
    "a bare CR in the request line is refused",
    "GET /\r HTTP/1.1\r\nHost: a\r\n\r\n",
    "BAD_TARGET",
  ),
  rejects(
    "CONNECT is not implemented",
    "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
    "METHOD_NOT_IMPLEMENTED",
    501,
  ),
  rejects("asterisk-form with GET is refused", "GET * HTTP/1.1\r\nHost: a\r\n\r\n", "BAD_TARGET"),
  rejects(
    "authority-form with GET is refused",
    "GET example.com:80 HTTP/1.1\r\nHost: a\r\n\r\n",
    "BAD_TARGET",
  ),
  rejects(
    "a relative target is refused",
    "GET index.html HTTP/1.1\r\nHost: a\r\n\r\n",
    "BAD_TARGET",
  ),
  rejects(
    "an ftp absolute-form target is refused",
    "GET ftp://h/ HTTP/1.1\r\nHost: h\r\n\r\n",
    "BAD_TARGET",
  ),
  rejects(
    "an absolute-form target with an empty host is refused",
    "GET http:///x HTTP/1.1\r\nHost: h\r\n\r\n",
    "BAD_TARGET",
  ),
  rejects(
    "an absolute-form target with userinfo is refused",
    "GET http://u@h/ HTTP/1.1\r\nHost: h\r\n\r\n",
    "BAD_TARGET",
  ),
  rejects(
    "a DEL byte in the target is refused",
    "GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n",
    "BAD_TARGET",
  ),
  rejects(
    "a fragment in the path is refused",
    "GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n",
    "BAD_TARGET",
  ),
  rejects(
    "a fragment in the query is refused",
    "GET /a?x=1#b HTTP/1.1\r\nHost: a\r\n\r\n",
    "BAD_TARGET",
  ),
  rejects(
    "a fragment in an absolute-form target is refused",
    "GET http://h/a#b HTTP/1.1\r\nHost: h\r\n\r\n",
    "BAD_TARGET",
  ),
  rejects(
    "an absolute-form target without Host is refused in HTTP/1.1",
    "GET http://h/a HTTP/1.1\r\n\r\n",
    "BAD_HOST",
  ),
  rejects(
    "an absolute-form target does not excuse an invalid Host",
    "GET http://h/a HTTP/1.1\r\nHost: a b\r\n\r\n",
    "BAD_HOST",
  ),
  rejects(
    "a non-ASCII byte in the target is refused",
    "GET /caf\xe9 HTTP/1.1\r\nHost: a\r\n\r\n",
    "BAD_TARGET",
  ),

  // ---- Host (RFC 9112 §3.2) ----
  rejects("HTTP/1.1 without Host is refused", "GET / HTTP/1.1\r\nX: 1\r\n\r\n", "BAD_HOST"),
  rejects(
    "two Host headers are refused",
    "GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n",
    "BAD_HOST",
  ),
  rejects(
    "two Host headers are refused in HTTP/1.0 too",
    "GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n",
    "BAD_HOST",
  ),
  rejects("a Host with a space is refused", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", "BAD_HOST"),
  rejects("a Host with a slash is refused", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", "BAD_HOST"),
  rejects("a Host with userinfo is refused", "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", "BAD_HOST"),

  // ---- limits ----
  {
    name: "a request line over the limit is refused before its end arrives",
    input: `GET /${"a".repeat(200)}`,
    limits: SMALL,
    events: [err("URI_TOO_LONG", 414)],
  },
  {
    name: "a complete request line one byte over the limit is refused",
    input: `GET /${"a".repeat(64 - 13)} HTTP/1.1\r\nHost: a\r\n\r\n`,
    limits: SMALL,
    events: [err("URI_TOO_LONG", 414)],
  },
  {
    name: "a head over the byte limit is refused before its end arrives",
    input: `GET / HTTP/1.1\r\nHost: a\r\nX: ${"x".repeat(300)}`,
    limits: SMALL,
    events: [err("HEADERS_TOO_LARGE", 431)],
  },
  {
    name: "a complete head one byte over the limit is refused",
    input: `GET /${"a".repeat(64 - 14)} HTTP/1.1\r\nHost: a\r\nB: 1\r\nC: 1\r\nD: ${"d".repeat(256 - 66 - 9 - 6 - 6 - 2 - 4)}\r\n\r\n`,
    limits: SMALL,
    events: [err("HEADERS_TOO_LARGE", 431)],
  },
  {
    name: "more header fields than the limit are refused",
    input: "GET / HTTP/1.1\r\nHost: a\r\nB: 1\r\nC: 1\r\nD: 1\r\nE: 1\r\n\r\n",
    limits: SMALL,
    events: [err("TOO_MANY_HEADERS", 431)],
  },
  {
    name: "an error after a valid pipelined request comes after its end",
    input: `${GET}BAD\r\n\r\n`,
    events: [{ head: { method: "GET" } }, "end", err("BAD_REQUEST_LINE")],
  },
];

type Actual = { head: RequestHead } | { body: string } | "end" | { error: string; status: number };

function latin1(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, "latin1"));
}

/** Feeds `pieces` and collects normalized events; adjacent body events are merged. */
function run(pieces: Uint8Array[], c: Case, maxBody?: number): Actual[] {
  const parser = new RequestParser(c.limits);
  const out: Actual[] = [];
  let errorEvent: ParseEvent | null = null;
  const drain = (): void => {
    for (;;) {
      const ev = parser.next(maxBody);
      if (ev === null) return;
      if (errorEvent !== null) {
        // Terminal: the very same error event again, nothing else.
        expect(ev).toBe(errorEvent);
        return;
      }
      switch (ev.type) {
        case "head":
          out.push({ head: ev.head });
          break;
        case "body": {
          expect(ev.data.length).toBeGreaterThan(0);
          if (maxBody !== undefined) expect(ev.data.length).toBeLessThanOrEqual(maxBody);
          // Copy now: the view is only valid until the next feed().
          const text = Buffer.from(ev.data).toString("latin1");
          const last = out[out.length - 1];
          if (last !== undefined && typeof last === "object" && "body" in last) last.body += text;
          else out.push({ body: text });
          break;
        }
        case "end":
          out.push("end");
          expect(parser.next(maxBody)).toBeNull(); // paused until startNext()
          parser.startNext();
          break;
        case "error":
          out.push({ error: ev.error.code, status: ev.error.status });
          errorEvent = ev;
          expect(parser.next(maxBody)).toBe(ev);
          return;
      }
    }
  };
  for (const piece of pieces) {
    parser.feed(piece);
    drain();
  }
  if (c.eof) {
    parser.feedEof();
    drain();
  }
  if (errorEvent === null) {
    expect(parser.buffered).toBe(0);
    expect(parser.idle).toBe(true);
  }
  return out;
}

function normalize(expected: Expected[], actual: Actual[]): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    const e = expected[i] as Expected;
    const a = actual[i] as Actual;
    if (typeof e === "object" && "head" in e) {
      expect(typeof a === "object" && "head" in a).toBe(true);
      expect((a as { head: RequestHead }).head).toMatchObject(e.head);
    } else {
      expect(a).toEqual(e);
    }
  }
}

// mulberry32: a small seeded PRNG so random splittings are reproducible.
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomSplit(bytes: Uint8Array, rand: () => number): Uint8Array[] {
  const cuts = new Set<number>();
  const n = 1 + Math.floor(rand() * Math.min(8, bytes.length));
  for (let i = 0; i < n; i++) cuts.add(1 + Math.floor(rand() * (bytes.length - 1)));
  const sorted = [...cuts].sort((a, b) => a - b);
  const pieces: Uint8Array[] = [];
  let prev = 0;
  for (const cut of [...sorted, bytes.length]) {
    // Each piece is a separate copy, like a socket read.
    if (cut > prev) pieces.push(bytes.slice(prev, cut));
    prev = cut;
  }
  return pieces;
}

describe("RequestParser: request table", () => {
  for (const [index, c] of CASES.entries()) {
    const bytes = latin1(c.input);
    test(`${c.name} (fed whole)`, () => {
      normalize(c.events, run([bytes], c));
    });
    test(`${c.name} (fed one byte at a time)`, () => {
      const pieces: Uint8Array[] = [];
      for (let i = 0; i < bytes.length; i++) pieces.push(bytes.slice(i, i + 1));
      normalize(c.events, run(pieces, c));
    });
    test(`${c.name} (fed in 200 random splittings, body events of at most 3 bytes)`, () => {
      const rand = prng(0x5a17 + index);
      for (let round = 0; round < 200; round++) {
        normalize(c.events, run(randomSplit(bytes, rand), c, round % 2 === 0 ? 3 : undefined));
      }
    });
  }
});

describe("RequestParser: behaviour", () => {
  test("body events are split to maxBody bytes", () => {
    const parser = new RequestParser();
    parser.feed(latin1(req(["Content-Length: 10"], "0123456789")));
    expect(parser.next(4)?.type).toBe("head");
    const sizes: number[] = [];
    for (let ev = parser.next(4); ev?.type === "body"; ev = parser.next(4))
      sizes.push(ev.data.length);
    expect(sizes).toEqual([4, 4, 2]);
  });

  test("chunked body events are split to maxBody bytes within each chunk", () => {
    const parser = new RequestParser();
    parser.feed(latin1(req(["Transfer-Encoding: chunked"], "5\r\nabcde\r\n3\r\nfgh\r\n0\r\n\r\n")));
    expect(parser.next(2)?.type).toBe("head");
    const bodies: string[] = [];
    let ev = parser.next(2);
    for (; ev?.type === "body"; ev = parser.next(2)) bodies.push(Buffer.from(ev.data).toString());
    expect(bodies).toEqual(["ab", "cd", "e", "fg", "h"]);
    expect(ev?.type).toBe("end");
  });

  test("body bytes fed whole are returned as views without copying", () => {
    const parser = new RequestParser();
    const chunk = latin1(req(["Content-Length: 5"], "hello"));
    parser.feed(chunk);
    parser.next();
    const ev = parser.next();
    expect(ev?.type).toBe("body");
    if (ev?.type !== "body") return;
    expect(ev.data.buffer).toBe(chunk.buffer);
    expect(ev.data.byteOffset).toBe(chunk.length - 5);
  });

  test("a head split across chunks does not depend on the first chunk staying intact", () => {
    const parser = new RequestParser();
    const first = latin1("GET /split HTTP/1.1\r\nHo");
    parser.feed(first);
    expect(parser.next()).toBeNull();
    first.fill(0x21); // the parser must have kept its own copy of the leftover
    parser.feed(latin1("st: a\r\n\r\n"));
    const ev = parser.next();
    expect(ev?.type === "head" && ev.head.target).toBe("/split");
  });

  test("idle and buffered track bytes of the next request", () => {
    const parser = new RequestParser();
    expect(parser.idle).toBe(true);
    expect(parser.buffered).toBe(0);
    parser.feed(latin1("GET / HTTP/1.1\r\n"));
    expect(parser.next()).toBeNull();
    expect(parser.idle).toBe(false);
    expect(parser.buffered).toBe(16);
    parser.feed(latin1(`Host: a\r\n\r\nGET /2`));
    expect(parser.next()?.type).toBe("head");
    expect(parser.next()?.type).toBe("end");
    expect(parser.idle).toBe(false);
    expect(parser.buffered).toBe(6);
    parser.startNext();
    parser.feed(latin1(" HTTP/1.1\r\nHost: a\r\n\r\n"));
    expect(parser.next()?.type).toBe("head");
    expect(parser.next()?.type).toBe("end");
    expect(parser.idle).toBe(true);
    expect(parser.buffered).toBe(0);
  });

  test("next() returns null while paused after end, even with pipelined bytes", () => {
    const parser = new RequestParser();
    parser.feed(latin1(GET + GET));
    expect(parser.next()?.type).toBe("head");
    expect(parser.next()?.type).toBe("end");
    expect(parser.next()).toBeNull();
    expect(parser.next()).toBeNull();
    parser.startNext();
    expect(parser.next()?.type).toBe("head");
  });

  test("startNext() before the end of a message is a programming error", () => {
    const parser = new RequestParser();
    parser.feed(latin1(req(["Content-Length: 5"], "he")));
    expect(parser.next()?.type).toBe("head");
    expect(() => parser.startNext()).toThrow();
  });

  test("end of input on a fresh parser is clean", () => {
    const parser = new RequestParser();
    parser.feedEof();
    expect(parser.next()).toBeNull();
  });

  test("end of input after a lone CR is an incomplete message", () => {
    const parser = new RequestParser();
    parser.feed(latin1("\r"));
    expect(parser.next()).toBeNull();
    parser.feedEof();
    const ev = parser.next();
    expect(ev?.type === "error" && ev.error.code).toBe("INCOMPLETE_MESSAGE");
  });

  test("bytes fed after an error are dropped", () => {
    const parser = new RequestParser();
    parser.feed(latin1("BAD\r\n\r\n"));
    const ev = parser.next();
    expect(ev?.type).toBe("error");
    parser.feed(latin1(GET));
    expect(parser.buffered).toBe(0);
    expect(parser.next()).toBe(ev);
  });

  test("a maxBody below 1 is refused", () => {
    expect(() => new RequestParser().next(0)).toThrow(RangeError);
  });

  test("default limits accept an 8 KiB request line and refuse one byte more", () => {
    const ok = `GET /${"a".repeat(8192 - 14)} HTTP/1.1`;
    expect(ok.length).toBe(8192);
    const p1 = new RequestParser();
    p1.feed(latin1(`${ok}\r\nHost: a\r\n\r\n`));
    expect(p1.next()?.type).toBe("head");
    const p2 = new RequestParser();
    p2.feed(latin1(`GET /${"a".repeat(8192 - 13)} HTTP/1.1\r\nHost: a\r\n\r\n`));
    const ev = p2.next();
    expect(ev?.type === "error" && ev.error.status).toBe(414);
  });
});
