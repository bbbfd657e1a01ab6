import { describe, expect, test } from "bun:test";
import { HttpError } from "../http1/errors.ts";
import type { H2Event, H2Options } from "./connection.ts";
import { ErrorCode } from "./errors.ts";
import { Flag, FrameType, SettingId } from "./frames.ts";
import {
  block,
  byteByByte,
  concat,
  continuation,
  data,
  frame,
  GET,
  goaway,
  Harness,
  headers,
  hex,
  type OutFrame,
  PREFACE,
  ping,
  post,
  priority,
  prng,
  randomSplit,
  rst,
  settings,
  settingsAck,
  show,
  windowUpdate,
} from "./test-util.ts";

const E = ErrorCode;
const OPEN = concat(PREFACE, settings());

/** A clock the tests move by hand. */
function clock(): { t: number; now: () => number } {
  const c = { t: 0, now: () => c.t };
  return c;
}

type Ev = Record<string, unknown>;

/** Events with data as latin1 text, for readable expectations. */
function norm(ev: H2Event): Ev {
  if (ev.type === "data") {
    return { ...ev, data: Buffer.from(ev.data).toString("latin1") };
  }
  return { ...ev };
}

function req(stream: number, over: Ev = {}): Ev {
  return {
    type: "request",
    stream,
    method: "GET",
    scheme: "https",
    authority: "a.test",
    path: "/",
    headers: [],
    contentLength: -1,
    endStream: true,
    ...over,
  };
}

const reset = (stream: number, code: number, remote = false): Ev => ({
  type: "reset",
  stream,
  code,
  remote,
});
const rejected = (stream: number, code: number, status = 0): Ev => ({
  type: "rejected",
  stream,
  status,
  code,
});
const dataEv = (stream: number, text: string, endStream = false): Ev => ({
  type: "data",
  stream,
  data: text,
  endStream,
});
const error = (code: number): Ev => ({ type: "error", code });

interface Case {
  name: string;
  input: Uint8Array;
  /** Frames the server writes (as show() prints them), HELLO excluded when it applies. */
  frames: string[];
  /** Events; "message" fields are not compared, other fields of `rejected`/`error` are. */
  events: Ev[];
  options?: Partial<H2Options>;
  /** The input does not start with OPEN. */
  raw?: boolean;
}

function conn(name: string, input: Uint8Array, code: number, last = 0, events: Ev[] = []): Case {
  return { name, input, frames: [`GOAWAY ${last} ${code}`], events: [...events, error(code)] };
}

/** A stream error: RST_STREAM, then the connection still answers a PING. */
function streamErr(
  name: string,
  input: Uint8Array,
  frames: string[],
  events: Ev[],
  options?: Partial<H2Options>,
): Case {
  const c: Case = {
    name,
    input: concat(input, ping("stillok!")),
    frames: [...frames, "PING ACK stillok!"],
    events,
  };
  if (options !== undefined) c.options = options;
  return c;
}

const FIXED = { now: () => 0 }; // the rate limits never refill
const RAPID: Partial<H2Options> = { resetBurst: 10, now: () => 0 };
const SMALL_WINDOW: Partial<H2Options> = { initialWindowSize: 100 };
// GET and post() lists are 172 and 179 bytes as RFC 7541 §4.1 counts them.
const TINY_LIST: Partial<H2Options> = { maxHeaderListSize: 200 };
const ONE_STREAM: Partial<H2Options> = { maxConcurrentStreams: 1 };
const CONN_64K: Partial<H2Options> = { connectionWindowSize: 65535, initialWindowSize: 1 << 20 };

const u32 = (v: number): number[] => [
  (v >>> 24) & 0xff,
  (v >>> 16) & 0xff,
  (v >>> 8) & 0xff,
  v & 0xff,
];
const setting = (id: number, value: number): Uint8Array => settings([id, value]);
const K16 = "x".repeat(16384);

const CASES: Case[] = [
  // ---- §3.4 connection preface ----
  {
    name: "an HTTP/1.1 request instead of the preface is a PROTOCOL_ERROR",
    input: new Uint8Array(Buffer.from("GET / HTTP/1.1\r\nHost: a\r\n\r\n")),
    frames: ["SETTINGS 3", "WINDOW_UPDATE 0 196609", "GOAWAY 0 1"],
    events: [error(E.PROTOCOL_ERROR)],
    raw: true,
  },
  {
    name: "a preface followed by a frame other than SETTINGS is a PROTOCOL_ERROR",
    input: concat(PREFACE, ping()),
    frames: ["SETTINGS 3", "WINDOW_UPDATE 0 196609", "GOAWAY 0 1"],
    events: [error(E.PROTOCOL_ERROR)],
    raw: true,
  },
  {
    name: "a preface followed by a SETTINGS ACK is a PROTOCOL_ERROR",
    input: concat(PREFACE, settingsAck()),
    frames: ["SETTINGS 3", "WINDOW_UPDATE 0 196609", "GOAWAY 0 1"],
    events: [error(E.PROTOCOL_ERROR)],
    raw: true,
  },
  {
    name: "the preface and the client SETTINGS alone produce no event",
    input: new Uint8Array(0),
    frames: [],
    events: [],
  },

  // ---- a small conversation ----
  {
    name: "a GET, a POST with a body and trailers, a PING and the client's GOAWAY",
    input: concat(
      headers(1, GET, { endStream: true }),
      headers(3, post("/up", ["content-type", "text/plain", "cookie", "a=1", "cookie", "b=2"])),
      data(3, "hello "),
      ping("pingpong"),
      data(3, "world"),
      headers(3, ["x-checksum", "abc"], { endStream: true }),
      goaway(0, E.NO_ERROR, "bye"),
    ),
    frames: ["PING ACK pingpong"],
    events: [
      req(1),
      req(3, {
        method: "POST",
        path: "/up",
        headers: ["content-type", "text/plain", "cookie", "a=1; b=2"],
        endStream: false,
      }),
      dataEv(3, "hello "),
      dataEv(3, "world"),
      { type: "trailers", stream: 3, headers: ["x-checksum", "abc"] },
      { type: "goaway", lastStreamId: 0, code: 0, debug: "bye" },
    ],
  },
  {
    name: "the host header stands in for a missing :authority",
    input: headers(1, [":method", "GET", ":scheme", "http", ":path", "/x?y", "host", "h.test"], {
      endStream: true,
    }),
    frames: [],
    events: [
      req(1, { scheme: "http", path: "/x?y", authority: "h.test", headers: ["host", "h.test"] }),
    ],
  },
  {
    name: "a header block split over HEADERS and CONTINUATION frames is one request",
    input: (() => {
      const b = block([...GET, "x-long", "y".repeat(300)]);
      return concat(
        headers(1, b.subarray(0, 10), { endHeaders: false, endStream: true }),
        continuation(1, b.subarray(10, 100), false),
        continuation(1, b.subarray(100), true),
      );
    })(),
    frames: [],
    events: [req(1, { headers: ["x-long", "y".repeat(300)] })],
  },
  {
    name: "padded HEADERS with a priority block and padded DATA are read correctly",
    input: concat(
      headers(1, post(), { pad: 7, priority: { dependency: 0, weight: 200, exclusive: true } }),
      data(1, "abc", true, 20),
    ),
    frames: [],
    events: [req(1, { method: "POST", path: "/upload", endStream: false }), dataEv(1, "abc", true)],
  },
  {
    name: "an empty DATA frame with END_STREAM ends the body",
    input: concat(headers(1, post()), data(1, "x"), data(1, "", true)),
    frames: [],
    events: [
      req(1, { method: "POST", path: "/upload", endStream: false }),
      dataEv(1, "x"),
      dataEv(1, "", true),
    ],
  },
  {
    name: "unknown frame types and unknown settings are ignored (§4.1, §6.5.2)",
    input: concat(
      frame(0xfa, 0xff, 0, "junk"),
      frame(0x10, 0, 1, "x"),
      setting(0x99, 7),
      headers(1, GET, { endStream: true }),
    ),
    frames: ["SETTINGS ACK"],
    events: [req(1)],
  },
  {
    name: "PRIORITY on an idle stream is accepted and does not use up the stream id",
    input: concat(priority(3, 0), priority(5, 1), headers(3, GET, { endStream: true })),
    frames: [],
    events: [req(3)],
  },
  {
    name: "WINDOW_UPDATE and RST_STREAM on a closed stream are ignored (§5.1)",
    input: concat(headers(1, post()), rst(1, E.CANCEL), windowUpdate(1, 10), rst(1, E.CANCEL)),
    frames: [],
    events: [
      req(1, { method: "POST", path: "/upload", endStream: false }),
      reset(1, E.CANCEL, true),
    ],
  },
  {
    name: "SETTINGS are acknowledged in order, including an empty one",
    input: concat(settings(), setting(SettingId.MAX_FRAME_SIZE, 20000), settings()),
    frames: ["SETTINGS ACK", "SETTINGS ACK", "SETTINGS ACK"],
    events: [],
  },
  {
    name: "a PING ACK from the client is not answered",
    input: ping("abcdefgh", true),
    frames: [],
    events: [],
  },

  // ---- connection errors (§5.4.1) ----
  conn(
    "a frame over SETTINGS_MAX_FRAME_SIZE is a FRAME_SIZE_ERROR before its payload arrives (§4.2)",
    frame(FrameType.DATA, 0, 1, [], 16385),
    E.FRAME_SIZE_ERROR,
  ),
  conn("DATA on stream 0 (§6.1)", data(0, "x"), E.PROTOCOL_ERROR),
  conn("DATA on an idle stream (§5.1)", data(1, "x"), E.PROTOCOL_ERROR),
  conn("DATA on an even (server) stream (§5.1.1)", data(2, "x"), E.PROTOCOL_ERROR),
  conn(
    "DATA with padding as long as its payload (§6.1)",
    frame(FrameType.DATA, Flag.PADDED, 1, [3, 0, 0]),
    E.PROTOCOL_ERROR,
  ),
  conn(
    "a PADDED DATA frame without a Pad Length",
    frame(FrameType.DATA, Flag.PADDED, 1, []),
    E.FRAME_SIZE_ERROR,
  ),
  conn("HEADERS on stream 0 (§6.2)", headers(0, GET), E.PROTOCOL_ERROR),
  conn("HEADERS on an even stream id (§5.1.1)", headers(2, GET), E.PROTOCOL_ERROR),
  conn(
    "HEADERS with a stream id lower than a previous one (§5.1.1)",
    concat(headers(5, GET, { endStream: true }), headers(3, GET, { endStream: true })),
    E.PROTOCOL_ERROR,
    5,
    [req(5)],
  ),
  streamErr(
    "HEADERS on a stream the client reset is a stream STREAM_CLOSED (§5.1 closed)",
    concat(headers(1, post()), rst(1, E.CANCEL), headers(1, ["x", "y"], { endStream: true })),
    ["RST 1 5"],
    [req(1, { method: "POST", path: "/upload", endStream: false }), reset(1, E.CANCEL, true)],
  ),
  conn(
    "HEADERS with padding longer than the fragment (§6.2)",
    frame(FrameType.HEADERS, Flag.PADDED | Flag.END_HEADERS, 1, [5, 0x82, 0]),
    E.PROTOCOL_ERROR,
  ),
  conn(
    "HEADERS with the PRIORITY flag but no room for the priority block",
    frame(FrameType.HEADERS, Flag.PRIORITY | Flag.END_HEADERS, 1, [0, 0, 0]),
    E.FRAME_SIZE_ERROR,
  ),
  conn(
    "a PING in the middle of a header block (§6.10)",
    concat(headers(1, GET, { endHeaders: false }), ping()),
    E.PROTOCOL_ERROR,
  ),
  conn(
    "a CONTINUATION for another stream in the middle of a header block (§6.10)",
    concat(
      headers(1, block(GET).subarray(0, 3), { endHeaders: false }),
      continuation(3, block([]), true),
    ),
    E.PROTOCOL_ERROR,
  ),
  conn(
    "an unknown frame type in the middle of a header block (§6.10)",
    concat(headers(1, GET, { endHeaders: false }), frame(0xfa, 0, 0, "x")),
    E.PROTOCOL_ERROR,
  ),
  conn(
    "a CONTINUATION without a header block (§6.10)",
    continuation(1, block(GET), true),
    E.PROTOCOL_ERROR,
  ),
  conn(
    "a CONTINUATION after a complete header block (§6.10)",
    concat(headers(1, GET), continuation(1, block([]), true)),
    E.PROTOCOL_ERROR,
    1,
    [req(1, { endStream: false })],
  ),
  conn("an invalid HPACK block (§4.3)", headers(1, hex("80")), E.COMPRESSION_ERROR),
  conn(
    "a Huffman string with EOS in a header block (RFC 7541 §5.2)",
    headers(1, hex("00 84 ff ff ff ff 01 61")),
    E.COMPRESSION_ERROR,
  ),
  conn("PRIORITY on stream 0 (§6.3)", priority(0, 1), E.PROTOCOL_ERROR),
  conn("RST_STREAM on stream 0 (§6.4)", rst(0, 0), E.PROTOCOL_ERROR),
  conn("RST_STREAM on an idle stream (§6.4)", rst(1, 0), E.PROTOCOL_ERROR),
  conn(
    "RST_STREAM of 3 bytes (§6.4)",
    frame(FrameType.RST_STREAM, 0, 1, [0, 0, 0]),
    E.FRAME_SIZE_ERROR,
  ),
  conn("SETTINGS on a stream (§6.5)", frame(FrameType.SETTINGS, 0, 1, []), E.PROTOCOL_ERROR),
  conn(
    "SETTINGS of 5 bytes (§6.5)",
    frame(FrameType.SETTINGS, 0, 0, [0, 1, 0, 0, 0]),
    E.FRAME_SIZE_ERROR,
  ),
  conn(
    "a SETTINGS ACK with a payload (§6.5)",
    frame(FrameType.SETTINGS, Flag.ACK, 0, [0, 1, 0, 0, 0, 0]),
    E.FRAME_SIZE_ERROR,
  ),
  conn("SETTINGS_ENABLE_PUSH of 2 (§6.5.2)", setting(SettingId.ENABLE_PUSH, 2), E.PROTOCOL_ERROR),
  conn(
    "SETTINGS_INITIAL_WINDOW_SIZE of 2^31 (§6.5.2)",
    setting(SettingId.INITIAL_WINDOW_SIZE, 0x80000000),
    E.FLOW_CONTROL_ERROR,
  ),
  conn(
    "SETTINGS_MAX_FRAME_SIZE of 16383 (§6.5.2)",
    setting(SettingId.MAX_FRAME_SIZE, 16383),
    E.PROTOCOL_ERROR,
  ),
  conn(
    "SETTINGS_MAX_FRAME_SIZE of 2^24 (§6.5.2)",
    setting(SettingId.MAX_FRAME_SIZE, 1 << 24),
    E.PROTOCOL_ERROR,
  ),
  conn(
    "SETTINGS_ENABLE_CONNECT_PROTOCOL of 2 (RFC 8441 §3)",
    setting(SettingId.ENABLE_CONNECT_PROTOCOL, 2),
    E.PROTOCOL_ERROR,
  ),
  conn(
    "PUSH_PROMISE from a client (§8.4)",
    frame(FrameType.PUSH_PROMISE, Flag.END_HEADERS, 1, [0, 0, 0, 2]),
    E.PROTOCOL_ERROR,
  ),
  conn("PING on a stream (§6.7)", frame(FrameType.PING, 0, 1, "12345678"), E.PROTOCOL_ERROR),
  conn("PING of 7 bytes (§6.7)", frame(FrameType.PING, 0, 0, "1234567"), E.FRAME_SIZE_ERROR),
  conn(
    "GOAWAY on a stream (§6.8)",
    frame(FrameType.GOAWAY, 0, 1, [0, 0, 0, 0, 0, 0, 0, 0]),
    E.PROTOCOL_ERROR,
  ),
  conn(
    "GOAWAY of 7 bytes (§6.8)",
    frame(FrameType.GOAWAY, 0, 0, [0, 0, 0, 0, 0, 0, 0]),
    E.FRAME_SIZE_ERROR,
  ),
  conn(
    "WINDOW_UPDATE of 3 bytes (§6.9)",
    frame(FrameType.WINDOW_UPDATE, 0, 0, [0, 0, 1]),
    E.FRAME_SIZE_ERROR,
  ),
  conn("a connection WINDOW_UPDATE of 0 (§6.9)", windowUpdate(0, 0), E.PROTOCOL_ERROR),
  conn(
    "a connection window above 2^31-1 (§6.9.1)",
    windowUpdate(0, 0x7fffffff),
    E.FLOW_CONTROL_ERROR,
  ),
  conn("WINDOW_UPDATE on an idle stream (§5.1)", windowUpdate(1, 1), E.PROTOCOL_ERROR),
  conn(
    "SETTINGS_INITIAL_WINDOW_SIZE pushing an open stream's window above 2^31-1 (§6.9.2)",
    concat(
      headers(1, GET, { endStream: true }),
      windowUpdate(1, 0x7fffffff - 65535),
      setting(SettingId.INITIAL_WINDOW_SIZE, 65536),
    ),
    E.FLOW_CONTROL_ERROR,
    1,
    [req(1)],
  ),
  {
    name: "PRIORITY of 4 bytes on an idle stream becomes a connection FRAME_SIZE_ERROR (no RST on idle)",
    input: frame(FrameType.PRIORITY, 0, 9, [0, 0, 0, 1]),
    frames: ["GOAWAY 0 6"],
    events: [error(E.FRAME_SIZE_ERROR)],
  },
  {
    name: "DATA beyond the connection window is a FLOW_CONTROL_ERROR (§6.9.1)",
    input: concat(
      settingsAck(),
      headers(1, post()),
      data(1, K16),
      data(1, K16),
      data(1, K16),
      data(1, K16.slice(1)),
      data(1, "xx"),
    ),
    frames: ["GOAWAY 1 3"],
    events: [
      req(1, { method: "POST", path: "/upload", endStream: false }),
      dataEv(1, K16),
      dataEv(1, K16),
      dataEv(1, K16),
      dataEv(1, K16.slice(1)),
      error(E.FLOW_CONTROL_ERROR),
    ],
    options: CONN_64K,
  },

  // ---- flood protections ----
  {
    name: "CONTINUATION frames past maxContinuationFrames are ENHANCE_YOUR_CALM (CVE-2024-27316)",
    input: concat(
      headers(1, block(GET), { endHeaders: false }),
      ...Array.from({ length: 33 }, () => continuation(1, block(["a", "b"]), false)),
    ),
    frames: ["GOAWAY 0 11"],
    events: [error(E.ENHANCE_YOUR_CALM)],
  },
  {
    name: "a header block past maxHeaderBlockSize is ENHANCE_YOUR_CALM (CVE-2024-27316)",
    input: concat(
      headers(1, block(["x", "y".repeat(16000)]), { endHeaders: false }),
      continuation(1, block(["x", "y".repeat(16000)]), false),
      continuation(1, block(["x", "y".repeat(16000)]), false),
      continuation(1, block(["x", "y".repeat(16000)]), false),
      continuation(1, block(["x", "y".repeat(16000)]), false),
    ),
    frames: ["GOAWAY 0 11"],
    events: [error(E.ENHANCE_YOUR_CALM)],
  },
  {
    name: "empty DATA frames past the burst are ENHANCE_YOUR_CALM (CVE-2019-9518)",
    input: concat(headers(1, post()), ...Array.from({ length: 101 }, () => data(1, ""))),
    frames: ["GOAWAY 1 11"],
    events: [
      req(1, { method: "POST", path: "/upload", endStream: false }),
      error(E.ENHANCE_YOUR_CALM),
    ],
    options: FIXED,
  },
  {
    name: "empty CONTINUATION frames past the burst are ENHANCE_YOUR_CALM",
    input: concat(
      headers(1, block(GET), { endHeaders: false }),
      ...Array.from({ length: 30 }, () => continuation(1, new Uint8Array(0), false)),
    ),
    frames: ["GOAWAY 0 11"],
    events: [error(E.ENHANCE_YOUR_CALM)],
    options: { emptyFrameBurst: 20, now: () => 0 },
  },
  {
    name: "streams opened and reset past the burst are ENHANCE_YOUR_CALM (CVE-2023-44487)",
    input: concat(
      ...Array.from({ length: 11 }, (_, i) =>
        concat(headers(2 * i + 1, GET), rst(2 * i + 1, E.CANCEL)),
      ),
    ),
    frames: ["GOAWAY 21 11"],
    events: [
      ...Array.from({ length: 11 }, (_, i) => [
        req(2 * i + 1, { endStream: false }),
        reset(2 * i + 1, E.CANCEL, true),
      ]).flat(),
      error(E.ENHANCE_YOUR_CALM),
    ],
    options: RAPID,
  },
  {
    name: "resets the client provokes count too (CVE-2025-8671)",
    input: concat(
      ...Array.from({ length: 11 }, (_, i) =>
        concat(headers(2 * i + 1, GET), windowUpdate(2 * i + 1, 0)),
      ),
    ),
    frames: [
      ...Array.from({ length: 10 }, (_, i) => `RST ${2 * i + 1} 1`),
      "RST 21 1",
      "GOAWAY 21 11",
    ],
    events: [
      ...Array.from({ length: 11 }, (_, i) => [
        req(2 * i + 1, { endStream: false }),
        reset(2 * i + 1, E.PROTOCOL_ERROR),
      ]).flat(),
      error(E.ENHANCE_YOUR_CALM),
    ],
    options: RAPID,
  },

  // ---- stream errors (§5.4.2) ----
  streamErr(
    "DATA after END_STREAM is a stream STREAM_CLOSED (§5.1 half-closed remote)",
    concat(headers(1, GET, { endStream: true }), data(1, "x")),
    ["RST 1 5"],
    [req(1), reset(1, E.STREAM_CLOSED)],
  ),
  streamErr(
    "DATA on a stream the client reset is a stream STREAM_CLOSED (§5.1 closed)",
    concat(headers(1, post()), rst(1, E.CANCEL), data(1, "x")),
    ["RST 1 5"],
    [req(1, { method: "POST", path: "/upload", endStream: false }), reset(1, E.CANCEL, true)],
  ),
  streamErr(
    "DATA beyond the stream window is a stream FLOW_CONTROL_ERROR (§6.9.1)",
    concat(settingsAck(), headers(1, post()), data(1, "x".repeat(101))),
    ["RST 1 3"],
    [req(1, { method: "POST", path: "/upload", endStream: false }), reset(1, E.FLOW_CONTROL_ERROR)],
    SMALL_WINDOW,
  ),
  streamErr(
    "more DATA than content-length is a stream PROTOCOL_ERROR (§8.1.1)",
    concat(headers(1, post("/u", ["content-length", "3"])), data(1, "abcd")),
    ["RST 1 1"],
    [
      req(1, {
        method: "POST",
        path: "/u",
        headers: ["content-length", "3"],
        contentLength: 3,
        endStream: false,
      }),
      reset(1, E.PROTOCOL_ERROR),
    ],
  ),
  streamErr(
    "less DATA than content-length at END_STREAM is a stream PROTOCOL_ERROR (§8.1.1)",
    concat(headers(1, post("/u", ["content-length", "3"])), data(1, "ab", true)),
    ["RST 1 1"],
    [
      req(1, {
        method: "POST",
        path: "/u",
        headers: ["content-length", "3"],
        contentLength: 3,
        endStream: false,
      }),
      reset(1, E.PROTOCOL_ERROR),
    ],
  ),
  streamErr(
    "trailers ending a body shorter than content-length are a stream PROTOCOL_ERROR (§8.1.1)",
    concat(
      headers(1, post("/u", ["content-length", "3"])),
      data(1, "ab"),
      headers(1, ["x", "y"], { endStream: true }),
    ),
    ["RST 1 1"],
    [
      req(1, {
        method: "POST",
        path: "/u",
        headers: ["content-length", "3"],
        contentLength: 3,
        endStream: false,
      }),
      dataEv(1, "ab"),
      reset(1, E.PROTOCOL_ERROR),
    ],
  ),
  streamErr(
    "trailers without END_STREAM are a stream PROTOCOL_ERROR (§8.1)",
    concat(headers(1, post()), headers(1, ["x", "y"])),
    ["RST 1 1"],
    [req(1, { method: "POST", path: "/upload", endStream: false }), reset(1, E.PROTOCOL_ERROR)],
  ),
  streamErr(
    "trailers with a pseudo-header are a stream PROTOCOL_ERROR (§8.1)",
    concat(headers(1, post()), headers(1, [":path", "/"], { endStream: true })),
    ["RST 1 1"],
    [req(1, { method: "POST", path: "/upload", endStream: false }), reset(1, E.PROTOCOL_ERROR)],
  ),
  streamErr(
    "HEADERS after END_STREAM is a stream STREAM_CLOSED (§5.1)",
    concat(headers(1, GET, { endStream: true }), headers(1, ["x", "y"], { endStream: true })),
    ["RST 1 5"],
    [req(1), reset(1, E.STREAM_CLOSED)],
  ),
  streamErr(
    "a stream WINDOW_UPDATE of 0 is a stream PROTOCOL_ERROR (§6.9)",
    concat(headers(1, GET, { endStream: true }), windowUpdate(1, 0)),
    ["RST 1 1"],
    [req(1), reset(1, E.PROTOCOL_ERROR)],
  ),
  streamErr(
    "a stream window above 2^31-1 is a stream FLOW_CONTROL_ERROR (§6.9.1)",
    concat(headers(1, GET, { endStream: true }), windowUpdate(1, 0x7fffffff)),
    ["RST 1 3"],
    [req(1), reset(1, E.FLOW_CONTROL_ERROR)],
  ),
  streamErr(
    "PRIORITY of 4 bytes on an open stream is a stream FRAME_SIZE_ERROR (§6.3)",
    concat(headers(1, GET, { endStream: true }), frame(FrameType.PRIORITY, 0, 1, [0, 0, 0, 0])),
    ["RST 1 6"],
    [req(1), reset(1, E.FRAME_SIZE_ERROR)],
  ),
  streamErr(
    "PRIORITY making an open stream depend on itself is a stream PROTOCOL_ERROR",
    concat(headers(1, GET, { endStream: true }), priority(1, 1)),
    ["RST 1 1"],
    [req(1), reset(1, E.PROTOCOL_ERROR)],
  ),
  streamErr(
    "HEADERS depending on its own stream is refused with PROTOCOL_ERROR",
    headers(1, GET, { endStream: true, priority: { dependency: 1 } }),
    ["RST 1 1"],
    [rejected(1, E.PROTOCOL_ERROR)],
  ),
  streamErr(
    "a stream over SETTINGS_MAX_CONCURRENT_STREAMS is REFUSED_STREAM (§5.1.2)",
    concat(headers(1, GET, { endStream: true }), headers(3, GET, { endStream: true })),
    ["RST 3 7"],
    [req(1), rejected(3, E.REFUSED_STREAM)],
    ONE_STREAM,
  ),
  streamErr(
    "a header list over SETTINGS_MAX_HEADER_LIST_SIZE is answered 431, its body ignored",
    concat(
      headers(1, post("/u", ["x", "y".repeat(100)])),
      data(1, "ignored"),
      headers(3, GET, { endStream: true }),
    ),
    ['HEADERS 1 [":status","431"] END', "RST 1 0"],
    [rejected(1, E.NO_ERROR, 431), req(3)],
    TINY_LIST,
  ),
  streamErr(
    "a header list over the limit with END_STREAM gets 431 without a reset",
    headers(1, [...GET, "x", "y".repeat(100)], { endStream: true }),
    ['HEADERS 1 [":status","431"] END'],
    [rejected(1, E.NO_ERROR, 431)],
    TINY_LIST,
  ),
  streamErr(
    "trailers over the header list limit are a stream ENHANCE_YOUR_CALM",
    concat(headers(1, post()), headers(1, ["x", "y".repeat(200)], { endStream: true })),
    ["RST 1 11"],
    [req(1, { method: "POST", path: "/upload", endStream: false }), reset(1, E.ENHANCE_YOUR_CALM)],
    TINY_LIST,
  ),
  streamErr(
    "content-length with END_STREAM on HEADERS is refused (§8.1.1)",
    headers(1, post("/", ["content-length", "1"]), { endStream: true }),
    ["RST 1 1"],
    [rejected(1, E.PROTOCOL_ERROR)],
  ),
  streamErr(
    "DATA and trailers after we refused a stream are ignored (§5.1 closed)",
    concat(
      headers(1, post("/", ["TE", "trailers"])),
      data(1, "abc"),
      headers(1, ["x", "y"], { endStream: true }),
      headers(3, GET, { endStream: true }),
    ),
    ["RST 1 1"],
    [rejected(1, E.PROTOCOL_ERROR), req(3)],
  ),
  ...(
    [
      ["a missing :method", [":scheme", "https", ":path", "/", ":authority", "a"]],
      ["an uppercase field name", [...GET, "X-Up", "1"]],
      ["a connection header (§8.2.2)", [...GET, "connection", "keep-alive"]],
      ["transfer-encoding (§8.2.2)", [...GET, "transfer-encoding", "chunked"]],
      ["TE other than trailers (§8.2.2)", [...GET, "te", "gzip"]],
      ["a pseudo-header after a regular field (§8.3)", [":method", "GET", "x", "1", ":path", "/"]],
      ["a :status pseudo-header in a request (§8.3.1)", [...GET, ":status", "200"]],
      ["a :protocol pseudo-header without extended CONNECT", [...GET, ":protocol", "websocket"]],
      ["a value with a leading space (§8.2.1)", [...GET, "x", " y"]],
      ["a value with NUL (§8.2.1)", [...GET, "x", "a\0b"]],
      ["no :authority and no host (§8.3.1)", [":method", "GET", ":scheme", "https", ":path", "/"]],
    ] as Array<[string, string[]]>
  ).map(([what, fields]) =>
    streamErr(
      `a request with ${what} is refused with PROTOCOL_ERROR`,
      headers(1, fields, { endStream: true }),
      ["RST 1 1"],
      [rejected(1, E.PROTOCOL_ERROR)],
    ),
  ),
];

/** What the server writes for OPEN with the case's options, then the case's frames. */
function expectedFrames(c: Case): string[] {
  if (c.raw === true) return c.frames;
  const h = new Harness(c.options ?? {});
  h.feed(OPEN.slice());
  return [...h.frames().map(show), ...c.frames];
}

function run(c: Case, pieces: Uint8Array[]): { frames: string[]; events: Ev[]; h: Harness } {
  const h = new Harness(c.options ?? {});
  for (const p of pieces) h.feed(p);
  const events = h.takeEvents().map(norm);
  for (const ev of events) {
    if (ev.type === "rejected" || ev.type === "error") delete ev.message;
  }
  return { frames: h.frames().map(show), events, h };
}

function check(c: Case, pieces: Uint8Array[]): void {
  const { frames, events, h } = run(c, pieces);
  expect(frames).toEqual(expectedFrames(c));
  expect(events).toEqual(c.events);
  const failed = c.events.some((e) => e.type === "error");
  expect(h.conn.failed).toBe(failed);
  expect(h.conn.next()).toBeNull();
  if (failed) {
    // Terminal: more input changes nothing.
    h.feed(headers(101, GET, { endStream: true }), ping());
    expect(h.takeEvents()).toEqual([]);
    expect(h.frames()).toEqual([]);
    expect(h.conn.finished).toBe(true);
  }
}

describe("H2Connection: frame table", () => {
  for (const [index, c] of CASES.entries()) {
    const input = c.raw === true ? c.input : concat(OPEN, c.input);
    test(`${c.name} (fed whole)`, () => check(c, [input.slice()]));
    test(`${c.name} (fed one byte at a time)`, () => check(c, byteByByte(input)));
    test(`${c.name} (fed at 20 random splittings)`, () => {
      const r = prng(0x9113 + index);
      for (let round = 0; round < 20; round++) check(c, randomSplit(input, r, 16));
    });
  }
});

// ---------------------------------------------------------------------------------------------

/** A harness past the preface, its hello frames and events taken. */
function open(
  options: Partial<H2Options> = {},
  clientSettings: Array<[number, number]> = [],
): Harness {
  const h = new Harness(options);
  h.feed(PREFACE, settings(...clientSettings));
  h.frames();
  return h;
}

const shows = (h: Harness): string[] => h.frames().map(show);
const evs = (h: Harness): Ev[] => h.takeEvents().map(norm);

describe("H2Connection: a whole conversation, client bytes fed at any split", () => {
  type Step =
    | { client: Uint8Array; frames: string[]; events: Ev[] }
    | { server: (h: Harness) => void; frames: string[] };
  const big = new Uint8Array(100000).fill(0x62);
  const script = (): Step[] => [
    {
      client: concat(OPEN, headers(1, post("/up", ["content-length", "3"])), data(1, "abc")),
      frames: ["SETTINGS 3", "WINDOW_UPDATE 0 196609", "SETTINGS ACK"],
      events: [
        req(1, {
          method: "POST",
          path: "/up",
          headers: ["content-length", "3"],
          contentLength: 3,
          endStream: false,
        }),
        dataEv(1, "abc"),
      ],
    },
    {
      server: (h) => {
        h.conn.respond(1, 200, ["content-type", "application/octet-stream"], false);
        expect(h.conn.sendData(1, big, true)).toBe(100000 - 65535);
      },
      frames: [
        'HEADERS 1 [":status","200","content-type","application/octet-stream"]',
        "DATA 1 16384",
        "DATA 1 16384",
        "DATA 1 16384",
        "DATA 1 16383",
      ],
    },
    {
      client: concat(
        settingsAck(),
        windowUpdate(0, 40000),
        windowUpdate(1, 20000),
        data(1, "", true),
      ),
      frames: ["DATA 1 16384", "DATA 1 3616"],
      events: [dataEv(1, "", true), { type: "writable", stream: 1, buffered: 14465 }],
    },
    { client: ping("abcdefgh"), frames: ["PING ACK abcdefgh"], events: [] },
    { server: (h) => h.conn.consumed(1, 3), frames: [] },
    { client: concat(windowUpdate(1, 20000)), frames: ["DATA 1 14465 END"], events: [] },
    {
      client: concat(
        headers(3, GET),
        rst(3, E.CANCEL),
        priority(5, 3),
        headers(7, GET, { endStream: true }),
      ),
      frames: [],
      events: [req(3, { endStream: false }), reset(3, E.CANCEL, true), req(7)],
    },
    {
      server: (h) => h.conn.respond(7, 404, ["content-length", "0"], true),
      frames: ['HEADERS 7 [":status","404","content-length","0"] END'],
    },
    {
      client: goaway(0, E.NO_ERROR),
      frames: [],
      events: [{ type: "goaway", lastStreamId: 0, code: 0, debug: "" }],
    },
  ];

  function play(split: (b: Uint8Array) => Uint8Array[]): void {
    const h = new Harness();
    for (const step of script()) {
      if ("client" in step) {
        h.feed(...split(step.client));
        // A writable event comes when the feed that moved the window ends, so its place among
        // the other events depends on where the input was split.
        const key = (e: Ev): string => JSON.stringify(e);
        expect(evs(h).map(key).sort()).toEqual(step.events.map(key).sort());
      } else {
        step.server(h);
      }
      expect(shows(h)).toEqual(step.frames);
    }
    expect(h.conn.finished).toBe(true);
    expect(h.conn.idle).toBe(true);
  }

  test("fed whole", () => play((b) => [b.slice()]));
  test("fed one byte at a time", () => play(byteByByte));
  test("fed at 50 random splittings", () => {
    const r = prng(0x2024);
    for (let round = 0; round < 50; round++) play((b) => randomSplit(b, r, 20));
  });
});

describe("H2Connection: window boundaries", () => {
  test("DATA exactly filling the stream and connection windows is accepted", () => {
    const h = open({ connectionWindowSize: 65535 });
    h.feed(
      headers(1, post()),
      data(1, "x".repeat(16384)),
      data(1, "x".repeat(16384)),
      data(1, "x".repeat(16384)),
      data(1, "x".repeat(16383)),
    );
    expect(h.conn.failed).toBe(false);
    expect(evs(h).length).toBe(5);
    h.feed(data(1, "", true)); // an empty frame needs no window
    expect(evs(h)).toEqual([dataEv(1, "", true)]);
  });

  test("windows may reach exactly 2^31-1 (§6.9.1)", () => {
    const h = open();
    h.feed(
      headers(1, GET, { endStream: true }),
      windowUpdate(0, 0x7fffffff - 65535),
      windowUpdate(1, 0x7fffffff - 65535),
    );
    expect(h.conn.failed).toBe(false);
    expect(shows(h)).toEqual([]);
    h.feed(windowUpdate(1, 1));
    expect(shows(h)).toEqual(["RST 1 3"]);
    h.feed(windowUpdate(0, 1));
    expect(shows(h)).toEqual(["GOAWAY 1 3"]);
  });

  test("SETTINGS_INITIAL_WINDOW_SIZE of exactly 2^31-1 is accepted", () => {
    const h = open({}, [[SettingId.INITIAL_WINDOW_SIZE, 0x7fffffff]]);
    h.feed(headers(1, GET, { endStream: true }));
    expect(h.conn.failed).toBe(false);
  });
});

describe("H2Connection: responses", () => {
  test("a response with headers and a body, and the stream is forgotten afterwards", () => {
    const h = open();
    h.feed(headers(1, GET, { endStream: true }));
    h.takeEvents();
    expect(
      h.conn.respond(1, 200, ["Content-Type", "text/plain", "content-length", "5"], false),
    ).toBe(true);
    expect(h.conn.sendData(1, new Uint8Array(Buffer.from("hello")), true)).toBe(0);
    expect(shows(h)).toEqual([
      'HEADERS 1 [":status","200","content-type","text/plain","content-length","5"]',
      "DATA 1 5 END",
    ]);
    expect(h.conn.activeStreams).toBe(0);
    expect(h.conn.idle).toBe(true);
    // The stream is gone: calls for it report so instead of throwing.
    expect(h.conn.respond(1, 200, [], true)).toBe(false);
    expect(h.conn.sendData(1, new Uint8Array(1), true)).toBe(-1);
  });

  test("connection-specific response fields are dropped, names lowercased, values trimmed", () => {
    const h = open();
    h.feed(headers(1, GET, { endStream: true }));
    h.conn.respond(
      1,
      204,
      [
        "Connection",
        "close",
        "Keep-Alive",
        "5",
        "Transfer-Encoding",
        "chunked",
        "Upgrade",
        "h2c",
        "X-A",
        " v\t",
        "proxy-connection",
        "x",
      ],
      true,
    );
    expect(shows(h)).toEqual(['HEADERS 1 [":status","204","x-a","v"] END']);
  });

  test("invalid statuses and fields throw HttpError BAD_RESPONSE_HEADER and send nothing", () => {
    const h = open();
    h.feed(headers(1, GET, { endStream: true }));
    const bad: Array<[number, string[]]> = [
      [101, []],
      [99, []],
      [600, []],
      [200.5, []],
      [200, ["bad name", "x"]],
      [200, [":status", "200"]],
      [200, ["x", "a\r\nb"]],
      [200, ["x", "a\0"]],
      [200, ["x", "\u0100"]],
      [200, ["x"]],
    ];
    for (const [status, fields] of bad) {
      let err: unknown;
      try {
        h.conn.respond(1, status, fields, true);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(HttpError);
      expect((err as HttpError).code).toBe("BAD_RESPONSE_HEADER");
    }
    expect(shows(h)).toEqual([]);
    expect(h.conn.respond(1, 200, [], true)).toBe(true);
  });

  test("1xx responses may precede the final one; calls out of order throw", () => {
    const h = open();
    h.feed(headers(1, post()));
    expect(() => h.conn.sendData(1, new Uint8Array(1), false)).toThrow();
    expect(() => h.conn.respond(1, 100, [], true)).toThrow();
    h.conn.respond(1, 100, [], false);
    h.conn.respond(1, 103, ["link", "</a.css>; rel=preload"], false);
    h.conn.respond(1, 200, [], false);
    expect(() => h.conn.respond(1, 200, [], false)).toThrow();
    h.conn.sendData(1, new Uint8Array(0), true);
    // The response is complete and the stream closed (RST NO_ERROR, see below): it is gone.
    expect(h.conn.sendData(1, new Uint8Array(1), false)).toBe(-1);
    expect(shows(h)).toEqual([
      'HEADERS 1 [":status","100"]',
      'HEADERS 1 [":status","103","link","</a.css>; rel=preload"]',
      'HEADERS 1 [":status","200"]',
      "DATA 1 0 END",
      "RST 1 0",
    ]);
  });

  test("a complete response before the request body ends is followed by RST_STREAM NO_ERROR (§8.1)", () => {
    const h = open({ connectionWindowSize: 65535 });
    h.feed(headers(1, post()), data(1, "part"));
    expect(evs(h).length).toBe(2);
    h.conn.respond(1, 413, [], true);
    expect(shows(h)).toEqual(['HEADERS 1 [":status","413"] END', "RST 1 0"]);
    expect(h.conn.activeStreams).toBe(0);
    // The client's in-flight DATA is ignored, but still returned to the connection window.
    h.feed(
      data(1, "x".repeat(16384)),
      data(1, "x".repeat(16384)),
      data(1, "x".repeat(16384)),
      data(1, "", true),
    );
    expect(evs(h)).toEqual([]);
    // 4 unconsumed bytes returned at the reset + 2 frames cross half the window.
    expect(shows(h)).toEqual(["WINDOW_UPDATE 0 32772"]);
  });

  test("trailers follow the queued body and end the stream", () => {
    const h = open();
    h.feed(headers(1, GET, { endStream: true }));
    h.conn.respond(1, 200, ["trailer", "x-sum"], false);
    h.conn.sendData(1, new Uint8Array(70000), false);
    expect(h.conn.sendTrailers(1, ["X-Sum", "42"])).toBe(true);
    expect(shows(h)).toEqual([
      'HEADERS 1 [":status","200","trailer","x-sum"]',
      "DATA 1 16384",
      "DATA 1 16384",
      "DATA 1 16384",
      "DATA 1 16383",
    ]);
    h.feed(windowUpdate(0, 10000), windowUpdate(1, 10000));
    expect(shows(h)).toEqual(["DATA 1 4465", 'HEADERS 1 ["x-sum","42"] END']);
    expect(h.conn.activeStreams).toBe(0);
  });

  test("a header block larger than the client's frame size is split into CONTINUATION frames", () => {
    const h = open();
    h.feed(headers(1, GET, { endStream: true }));
    const big = "v".repeat(40000);
    h.conn.respond(1, 200, ["x-big", big], true);
    const frames = h.frames();
    expect(frames.length).toBe(1);
    expect(frames[0]?.fields).toEqual([":status", "200", "x-big", big]);
    expect(h.writes.length).toBe(0);
  });

  test("resetStream sends RST_STREAM, drops queued data and gives no event", () => {
    const h = open();
    h.feed(headers(1, GET, { endStream: true }));
    h.conn.respond(1, 200, [], false);
    h.conn.sendData(1, new Uint8Array(100000), false);
    expect(h.conn.buffered).toBe(100000 - 65535);
    h.conn.resetStream(1, E.INTERNAL_ERROR);
    expect(shows(h).slice(-1)).toEqual(["RST 1 2"]);
    expect(h.conn.buffered).toBe(0);
    expect(h.conn.bufferedAmount(1)).toBe(0);
    expect(evs(h)).toEqual([req(1)]);
    // Window updates for it are ignored from now on.
    h.feed(windowUpdate(1, 1000), windowUpdate(0, 1000));
    expect(shows(h)).toEqual([]);
  });
});

describe("H2Connection: closed streams (§5.1)", () => {
  test("DATA or HEADERS on a stream closed by END_STREAM both ways is a connection STREAM_CLOSED", () => {
    for (const late of [data(1, "x"), headers(1, ["x", "y"], { endStream: true })]) {
      const h = open();
      h.feed(headers(1, GET, { endStream: true }));
      h.conn.respond(1, 200, [], true);
      shows(h);
      h.feed(late);
      expect(shows(h)).toEqual(["GOAWAY 1 5"]);
    }
  });

  test("frames on a stream we reset are ignored, also when the reset is long past", () => {
    const h = open();
    h.feed(headers(1, post()));
    h.conn.resetStream(1, E.CANCEL);
    h.feed(data(1, "x"), headers(1, ["x", "y"], { endStream: true }));
    expect(shows(h)).toEqual(["RST 1 8"]);
    // 40 more streams closed since: stream 1 is no longer remembered. DATA is then a stream
    // error (harmless), while HEADERS cannot be told from a reused stream id.
    const h2 = open();
    h2.feed(headers(1, post()));
    h2.conn.resetStream(1, E.CANCEL);
    for (let i = 1; i <= 40; i++) {
      for (const x of [h, h2]) {
        x.feed(headers(2 * i + 1, GET, { endStream: true }));
        x.conn.respond(2 * i + 1, 204, [], true);
      }
    }
    shows(h);
    shows(h2);
    h.feed(data(1, "x"));
    expect(shows(h)).toEqual(["RST 1 5"]);
    h2.feed(headers(1, ["x", "y"], { endStream: true }));
    expect(shows(h2)).toEqual(["GOAWAY 81 1"]);
  });
});

describe("H2Connection: sending under flow control (§5.2, §6.9)", () => {
  test("DATA waits for both the stream and the connection window", () => {
    const h = open();
    h.feed(headers(1, GET, { endStream: true }));
    h.conn.respond(1, 200, [], false);
    expect(h.conn.sendData(1, new Uint8Array(70000), true)).toBe(70000 - 65535);
    shows(h);
    h.feed(windowUpdate(1, 100000));
    expect(shows(h)).toEqual([]); // the connection window is still empty
    h.feed(windowUpdate(0, 1000));
    expect(shows(h)).toEqual(["DATA 1 1000"]);
    h.feed(windowUpdate(0, 5000));
    expect(shows(h)).toEqual(["DATA 1 3465 END"]);
    expect(h.conn.activeStreams).toBe(0);
  });

  test("an empty DATA frame with END_STREAM is sent with no window left", () => {
    const h = open({}, [[SettingId.INITIAL_WINDOW_SIZE, 0]]);
    h.feed(headers(1, GET, { endStream: true }));
    h.conn.respond(1, 200, [], false);
    expect(h.conn.sendData(1, new Uint8Array(10), false)).toBe(10);
    expect(shows(h)).toEqual(['HEADERS 1 [":status","200"]']);
    h.feed(windowUpdate(1, 10));
    expect(shows(h)).toEqual(["DATA 1 10"]);
    expect(h.conn.sendData(1, new Uint8Array(0), true)).toBe(0);
    expect(shows(h)).toEqual(["DATA 1 0 END"]);
  });

  test("a smaller SETTINGS_INITIAL_WINDOW_SIZE can make a window negative (§6.9.2)", () => {
    const h = open();
    h.feed(headers(1, GET, { endStream: true }));
    h.conn.respond(1, 200, [], false);
    h.conn.sendData(1, new Uint8Array(60000), false);
    expect(shows(h).slice(1)).toEqual([
      "DATA 1 16384",
      "DATA 1 16384",
      "DATA 1 16384",
      "DATA 1 10848",
    ]);
    h.feed(windowUpdate(0, 100000), setting(SettingId.INITIAL_WINDOW_SIZE, 50000)); // window: -10000
    h.conn.sendData(1, new Uint8Array(100), false);
    expect(shows(h)).toEqual(["SETTINGS ACK"]);
    h.feed(windowUpdate(1, 10050));
    expect(shows(h)).toEqual(["DATA 1 50"]);
    h.feed(setting(SettingId.INITIAL_WINDOW_SIZE, 50050)); // +50
    expect(shows(h)).toEqual(["SETTINGS ACK", "DATA 1 50"]);
  });

  test("DATA frames follow the client's SETTINGS_MAX_FRAME_SIZE", () => {
    const h = open({}, [
      [SettingId.MAX_FRAME_SIZE, 40000],
      [SettingId.INITIAL_WINDOW_SIZE, 1 << 20],
    ]);
    h.feed(windowUpdate(0, 1 << 20), headers(1, GET, { endStream: true }));
    h.conn.respond(1, 200, [], false);
    h.conn.sendData(1, new Uint8Array(100000), true);
    expect(shows(h).slice(1)).toEqual(["DATA 1 40000", "DATA 1 40000", "DATA 1 20000 END"]);
  });

  test("streams share the connection window round-robin, one frame each per round", () => {
    const h = open({}, [[SettingId.INITIAL_WINDOW_SIZE, 1 << 20]]);
    h.feed(headers(1, GET, { endStream: true }), headers(3, GET, { endStream: true }));
    h.conn.respond(1, 200, [], false);
    h.conn.respond(3, 200, [], false);
    shows(h);
    h.conn.sendData(1, new Uint8Array(100000), true);
    h.conn.sendData(3, new Uint8Array(100000), true);
    expect(shows(h)).toEqual(["DATA 1 16384", "DATA 1 16384", "DATA 1 16384", "DATA 1 16383"]);
    h.feed(windowUpdate(0, 65536));
    expect(shows(h)).toEqual(["DATA 1 16384", "DATA 3 16384", "DATA 1 16384", "DATA 3 16384"]);
  });

  test("a blocked sink holds DATA back until drained(); control frames still go", () => {
    const h = open();
    h.feed(headers(1, GET, { endStream: true }));
    h.conn.respond(1, 200, [], false);
    shows(h);
    h.sinkAccepts = false;
    expect(h.conn.sendData(1, new Uint8Array(1000), false)).toBe(0); // this write blocks the sink
    expect(h.conn.sendData(1, new Uint8Array(1000), false)).toBe(1000);
    h.feed(ping("blocked!"));
    expect(shows(h)).toEqual(["DATA 1 1000", "PING ACK blocked!"]);
    expect(h.conn.bufferedAmount(1)).toBe(1000);
    h.sinkAccepts = true;
    h.conn.drained();
    expect(shows(h)).toEqual(["DATA 1 1000"]);
    expect(h.conn.bufferedAmount(1)).toBe(0);
  });

  test("a writable event tells when a stream's queue falls to the threshold", () => {
    const h = open({ writableThreshold: 1000 });
    h.feed(headers(1, GET, { endStream: true }));
    h.conn.respond(1, 200, [], false);
    expect(h.conn.sendData(1, new Uint8Array(70000), false)).toBe(4465);
    expect(evs(h)).toEqual([req(1)]);
    h.feed(windowUpdate(0, 3000), windowUpdate(1, 3000));
    expect(evs(h)).toEqual([]); // 1465 left
    h.feed(windowUpdate(0, 1000), windowUpdate(1, 1000));
    expect(evs(h)).toEqual([{ type: "writable", stream: 1, buffered: 465 }]);
    h.feed(windowUpdate(0, 10000), windowUpdate(1, 10000));
    expect(evs(h)).toEqual([]); // once per sendData that left bytes queued
    // No event for a stream that sends its end in the same round.
    expect(h.conn.sendData(1, new Uint8Array(20000), true)).toBe(20000 - 9535);
    h.feed(windowUpdate(0, 20000), windowUpdate(1, 20000));
    expect(evs(h)).toEqual([]);
    expect(h.conn.activeStreams).toBe(0);
  });
});

describe("H2Connection: receiving under flow control (§5.2, §6.9)", () => {
  test("consumed bytes go back in WINDOW_UPDATE frames once half a window is due", () => {
    const h = open({ connectionWindowSize: 65535 });
    h.feed(
      headers(1, post()),
      data(1, "x".repeat(16384)),
      data(1, "x".repeat(16384)),
      data(1, "x".repeat(10000)),
    );
    expect(h.conn.idle).toBe(false);
    expect(shows(h)).toEqual([]);
    h.conn.consumed(1, 20000);
    expect(shows(h)).toEqual([]);
    h.conn.consumed(1, 20000); // 40000 >= 32767 for both windows
    expect(shows(h)).toEqual(["WINDOW_UPDATE 1 40000", "WINDOW_UPDATE 0 40000"]);
    h.conn.consumed(1, 999999); // capped at what was delivered (2768)
    h.conn.consumed(1, 1);
    expect(shows(h)).toEqual([]);
  });

  test("padding is returned without waiting for the application", () => {
    const h = open({ connectionWindowSize: 65535 });
    h.feed(headers(1, post()), data(1, "ab", false, 200), data(1, "x".repeat(16000), false, 255));
    h.feed(
      data(1, "", false, 255),
      data(1, "", false, 255),
      data(1, "", false, 255),
      data(1, "", false, 255),
      data(1, "", false, 255),
      data(1, "", false, 255),
      data(1, "", false, 255),
      data(1, "", false, 255),
    );
    // 201 + 256 + 8*256 = 2505 padding bytes, not enough yet; more padding crosses half.
    expect(shows(h)).toEqual([]);
    for (let i = 0; i < 120; i++) h.feed(data(1, "", false, 255));
    const f = shows(h);
    expect(f).toEqual(["WINDOW_UPDATE 1 32969", "WINDOW_UPDATE 0 32969"]);
  });

  test("a stream that closes returns its unconsumed bytes to the connection window", () => {
    const h = open({ connectionWindowSize: 65535 });
    h.feed(
      headers(1, post()),
      data(1, "x".repeat(16384)),
      data(1, "x".repeat(16384)),
      data(1, "x".repeat(16384)),
    );
    h.feed(rst(1, E.CANCEL));
    expect(shows(h)).toEqual(["WINDOW_UPDATE 0 49152"]);
    h.conn.consumed(1, 49152); // ignored: already returned
    expect(shows(h)).toEqual([]);
  });

  test("a smaller initial window takes effect when the client acknowledges our SETTINGS", () => {
    const h = open({ initialWindowSize: 1000 });
    h.feed(headers(1, post()), data(1, "x".repeat(5000))); // allowed: 65535 until the ACK
    h.feed(settingsAck()); // stream 1 window: 65535 - 5000 - 64535 = -4000
    h.feed(data(1, "y"));
    expect(shows(h)).toEqual(["RST 1 3"]);
    h.feed(headers(3, post()), data(3, "x".repeat(1000)));
    expect(shows(h)).toEqual([]);
    h.feed(data(3, "x"));
    expect(shows(h)).toEqual(["RST 3 3"]);
  });
});

describe("H2Connection: shutdown (§6.8)", () => {
  test("a graceful GOAWAY announces 2^31-1 and a PING, then the last processed stream", () => {
    const h = open();
    h.feed(headers(1, GET, { endStream: true }));
    h.conn.goAway();
    expect(shows(h)).toEqual(["GOAWAY 2147483647 0", "PING saltare!"]);
    expect(h.conn.finished).toBe(false);
    h.feed(headers(3, GET, { endStream: true })); // sent before the client saw our GOAWAY
    h.feed(ping("saltare!", true));
    expect(shows(h)).toEqual(["GOAWAY 3 0"]);
    h.feed(headers(5, GET, { endStream: true })); // after the final GOAWAY: ignored
    expect(evs(h)).toEqual([req(1), req(3)]);
    expect(h.conn.finished).toBe(false);
    h.conn.respond(1, 200, [], true);
    h.conn.respond(3, 200, [], true);
    expect(h.conn.finished).toBe(true);
  });

  test("frames of streams above the final GOAWAY's last-stream-id are ignored (§6.8)", () => {
    const h = open({ connectionWindowSize: 65535 });
    h.feed(headers(1, GET, { endStream: true }));
    h.conn.goAway();
    h.conn.goAway();
    shows(h);
    // The client opened 3 before it saw the GOAWAY: its HEADERS, DATA, trailers, RST.
    h.feed(headers(3, post()), data(3, "x".repeat(16384)), data(3, "x".repeat(16384)));
    h.feed(headers(3, ["x", "y"], { endStream: true }), rst(3, E.CANCEL), windowUpdate(3, 5));
    h.feed(headers(5, GET, { endStream: true }));
    expect(evs(h)).toEqual([req(1)]);
    // Only the connection window is kept in step (§6.9).
    expect(shows(h)).toEqual(["WINDOW_UPDATE 0 32768"]);
    expect(h.conn.failed).toBe(false);
    h.conn.respond(1, 200, [], true);
    expect(h.conn.finished).toBe(true);
  });

  test("a second goAway() sends the final GOAWAY without waiting for the PING", () => {
    const h = open();
    h.feed(headers(1, GET, { endStream: true }));
    h.conn.goAway();
    h.conn.goAway();
    expect(shows(h)).toEqual(["GOAWAY 2147483647 0", "PING saltare!", "GOAWAY 1 0"]);
  });

  test("goAway with an error code sends the final GOAWAY at once", () => {
    const h = open();
    h.conn.goAway(E.INTERNAL_ERROR);
    expect(shows(h)).toEqual(["GOAWAY 0 2"]);
    expect(h.conn.finished).toBe(true);
  });

  test("after the client's GOAWAY the connection finishes when its streams are done", () => {
    const h = open();
    h.feed(headers(1, GET, { endStream: true }), goaway(0, E.NO_ERROR));
    expect(h.conn.finished).toBe(false);
    h.conn.respond(1, 200, [], true);
    expect(h.conn.finished).toBe(true);
  });
});

describe("H2Connection: floods", () => {
  test("PING ACKs owed to a client that does not read are capped (CVE-2019-9512)", () => {
    const h = open({ maxOwedControlFrames: 50 });
    h.sinkAccepts = false;
    h.feed(ping()); // the write that finds the sink blocked
    for (let i = 0; i < 50; i++) h.feed(ping());
    expect(h.conn.failed).toBe(false);
    h.feed(ping());
    expect(h.conn.failed).toBe(true);
    expect(evs(h)).toEqual([
      {
        type: "error",
        code: E.ENHANCE_YOUR_CALM,
        message: "Peer does not read our control frames",
      },
    ]);
  });

  test("SETTINGS ACKs owed are capped too, and drained() clears the count (CVE-2019-9515)", () => {
    const h = open({ maxOwedControlFrames: 50 });
    h.sinkAccepts = false;
    h.feed(ping()); // blocks
    for (let i = 0; i < 49; i++) h.feed(settings());
    h.sinkAccepts = true;
    h.conn.drained();
    h.sinkAccepts = false;
    for (let i = 0; i < 51; i++) h.feed(settings());
    expect(h.conn.failed).toBe(false);
    h.feed(settings());
    expect(h.conn.failed).toBe(true);
  });

  test("the reset budget refills with time, so a steady trickle of cancels is fine", () => {
    const c = clock();
    const h = open({ resetBurst: 5, resetRate: 10, now: c.now });
    for (let i = 0; i < 100; i++) {
      c.t += 100; // one reset per 100 ms = the refill rate
      h.feed(headers(2 * i + 1, GET), rst(2 * i + 1, E.CANCEL));
    }
    expect(h.conn.failed).toBe(false);
    for (let i = 100; i < 106; i++) h.feed(headers(2 * i + 1, GET), rst(2 * i + 1, E.CANCEL));
    expect(h.conn.failed).toBe(true);
  });

  test("a client reset after our response completed is not counted", () => {
    const h = open({ resetBurst: 2, now: () => 0 });
    for (let i = 0; i < 20; i++) {
      const id = 2 * i + 1;
      h.feed(headers(id, GET, { endStream: true }));
      h.conn.respond(id, 200, [], true);
      h.feed(rst(id, E.CANCEL)); // arrives after the stream closed: ignored
    }
    expect(h.conn.failed).toBe(false);
  });
});

describe("H2Connection: memory", () => {
  test("an idle connection holds no stream, buffer or queued event", () => {
    const h = open();
    expect(h.conn.idle).toBe(true);
    h.conn.feed(headers(1, GET, { endStream: true }).subarray(0, 5));
    expect(h.conn.idle).toBe(false); // a partial frame header
    h.conn.feed(headers(1, GET, { endStream: true }).subarray(5, 20));
    expect(h.conn.idle).toBe(false); // a partial payload
    h.conn.feed(headers(1, GET, { endStream: true }).subarray(20));
    expect(h.conn.idle).toBe(false); // an event waiting
    h.drain();
    expect(h.conn.idle).toBe(false); // an open stream
    h.conn.respond(1, 200, [], true);
    expect(h.conn.idle).toBe(true);
    expect(h.conn.activeStreams).toBe(0);
  });

  test("our SETTINGS advertise the configured limits", () => {
    const h = new Harness({
      maxConcurrentStreams: 7,
      initialWindowSize: 1000,
      maxFrameSize: 32768,
      maxHeaderListSize: 8192,
      headerTableSize: 1024,
      connectionWindowSize: 65535,
    });
    const [f] = h.frames() as [OutFrame];
    const params: number[][] = [];
    for (let i = 0; i < f.payload.length; i += 6) {
      params.push([
        ((f.payload[i] as number) << 8) | (f.payload[i + 1] as number),
        Buffer.from(f.payload.subarray(i + 2, i + 6)).readUInt32BE(0),
      ]);
    }
    expect(params).toEqual([
      [SettingId.MAX_CONCURRENT_STREAMS, 7],
      [SettingId.INITIAL_WINDOW_SIZE, 1000],
      [SettingId.MAX_FRAME_SIZE, 32768],
      [SettingId.HEADER_TABLE_SIZE, 1024],
      [SettingId.MAX_HEADER_LIST_SIZE, 8192],
      [SettingId.NO_RFC7540_PRIORITIES, 1],
    ]);
  });

  test("invalid options are refused with the option's name", () => {
    expect(() => new Harness({ maxFrameSize: 100 })).toThrow(/maxFrameSize/);
    expect(() => new Harness({ initialWindowSize: 2 ** 31 })).toThrow(/initialWindowSize/);
    expect(() => new Harness({ connectionWindowSize: 1000 })).toThrow(/connectionWindowSize/);
  });

  test("a smaller header table takes effect after the ACK and requires a size update", () => {
    const h = open({ headerTableSize: 0 });
    // Before the ACK the client may still index into a 4096-byte table.
    h.feed(headers(1, hex("8287 84 41 06 612e74657374"), { endStream: true }));
    expect(evs(h)).toEqual([req(1)]);
    h.feed(settingsAck());
    // Now the first block must start with a size update to 0.
    h.feed(headers(3, hex("8287 84 be"), { endStream: true }));
    expect(h.conn.failed).toBe(true);
    expect(evs(h)).toEqual([
      {
        type: "error",
        code: E.COMPRESSION_ERROR,
        message: "Missing dynamic table size update after a smaller limit",
      },
    ]);
    const h2 = open({ headerTableSize: 0 });
    h2.feed(settingsAck(), headers(1, hex("20 8287 84 01 06 612e74657374"), { endStream: true }));
    expect(evs(h2)).toEqual([req(1)]);
  });
});

void u32;
