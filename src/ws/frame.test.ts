import { describe, expect, test } from "bun:test";
import { deflateMessage } from "./deflate.ts";
import {
  CloseCode,
  encodeClose,
  encodeFrame,
  isValidCloseCode,
  Opcode,
  type WsEvent,
  WsReceiver,
} from "./frame.ts";
import type { DeflateParams } from "./handshake.ts";
import {
  byteByByte,
  clientFrame,
  concat,
  hex,
  prng,
  randomBytes,
  randomSplit,
  toHex,
  utf8,
} from "./test-util.ts";

const DEFLATE: DeflateParams = {
  serverMaxWindowBits: 15,
  clientMaxWindowBits: 15,
  responseHeader: "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
};

type Expected =
  | { text: string }
  | { binary: Uint8Array }
  | { ping: string }
  | { pong: string }
  | { close: number; reason?: string }
  | { error: number };

interface Case {
  name: string;
  input: Uint8Array;
  events: Expected[];
  deflate?: boolean;
  maxMessage?: number;
  // The input ends inside a frame on purpose (fail-fast cases end with an error anyway).
  partial?: boolean;
}

const T = Opcode.Text;
const B = Opcode.Binary;
const C = Opcode.Continuation;
const PING = Opcode.Ping;
const PONG = Opcode.Pong;
const CLOSE = Opcode.Close;
const RSV1 = 0x40;

const f = clientFrame;
const seq = concat;
const text = (s: string): Expected => ({ text: s });
const error = (code: number): Expected => ({ error: code });

function closeBody(code: number, reason: Uint8Array | string = ""): Uint8Array {
  const r = typeof reason === "string" ? utf8(reason) : reason;
  return seq(new Uint8Array([code >>> 8, code & 0xff]), r);
}

const rand = prng(0x6455);
const BIN_256 = randomBytes(256, rand);
const BIN_64K = randomBytes(65536, rand);
const BIN_200K = randomBytes(200_000, rand);
const LONG_TEXT = "ĉu la κόσμε 😀 ".repeat(5000); // ~100 KB, multibyte everywhere

function compressed(s: string | Uint8Array, bits = 15): Uint8Array {
  return deflateMessage(typeof s === "string" ? utf8(s) : s, bits);
}

const CASES: Case[] = [
  // ---- RFC 6455 §5.7 examples ----
  {
    name: "the §5.7 unmasked single-frame text is refused from a client (§5.1)",
    input: hex("81 05 48 65 6c 6c 6f"),
    events: [error(1002)],
  },
  {
    name: "the §5.7 masked single-frame text is the message Hello",
    input: hex("81 85 37 fa 21 3d 7f 9f 4d 51 58"),
    events: [text("Hello")],
  },
  {
    name: "the §5.7 fragmented text (Hel + lo), masked, is one message",
    input: seq(f(T, "Hel", { fin: false }), f(C, "lo")),
    events: [text("Hello")],
  },
  {
    name: "the §5.7 unmasked ping is refused from a client",
    input: hex("89 05 48 65 6c 6c 6f"),
    events: [error(1002)],
  },
  {
    name: "a masked ping carries its payload",
    input: f(PING, "Hello"),
    events: [{ ping: "Hello" }],
  },
  {
    name: "the §5.7 masked pong carries Hello",
    input: hex("8a 85 37 fa 21 3d 7f 9f 4d 51 58"),
    events: [{ pong: "Hello" }],
  },
  {
    name: "a 256-byte binary message uses the 16-bit length (§5.7)",
    input: f(B, BIN_256),
    events: [{ binary: BIN_256 }],
  },
  {
    name: "a 64 KiB binary message uses the 64-bit length (§5.7)",
    input: f(B, BIN_64K),
    events: [{ binary: BIN_64K }],
  },

  // ---- accepted streams ----
  {
    name: "several messages and control frames in one stream keep their order",
    input: seq(f(T, "a"), f(PING, ""), f(B, BIN_256), f(PONG, "p"), f(T, "b")),
    events: [text("a"), { ping: "" }, { binary: BIN_256 }, { pong: "p" }, text("b")],
  },
  {
    name: "control frames may be interleaved with fragments (§5.4)",
    input: seq(f(T, "Hel", { fin: false }), f(PING, "x"), f(C, "l", { fin: false }), f(C, "o")),
    events: [{ ping: "x" }, text("Hello")],
  },
  {
    name: "empty text and binary messages and empty fragments are delivered",
    input: seq(f(T, ""), f(B, new Uint8Array(0)), f(T, "", { fin: false }), f(C, "")),
    events: [text(""), { binary: new Uint8Array(0) }, text("")],
  },
  {
    name: "a UTF-8 sequence split across fragments is valid",
    input: seq(
      f(T, hex("ce ba e1"), { fin: false }),
      f(C, hex("bd b9 cf 83"), { fin: false }),
      f(C, hex("ce bc ce b5")),
    ),
    events: [text("κόσμε")],
  },
  {
    name: "a large multibyte text in many fragments is validated and reassembled",
    input: (() => {
      const bytes = utf8(LONG_TEXT);
      const parts: Uint8Array[] = [];
      const step = 7919;
      for (let at = 0; at < bytes.length; at += step) {
        const last = at + step >= bytes.length;
        parts.push(f(at === 0 ? T : C, bytes.subarray(at, at + step), { fin: last }));
      }
      return seq(...parts);
    })(),
    events: [text(LONG_TEXT)],
  },
  {
    name: "a 200 KB binary frame is received whole",
    input: f(B, BIN_200K),
    events: [{ binary: BIN_200K }],
  },
  {
    name: "a close frame without a body reports 1005",
    input: f(CLOSE, ""),
    events: [{ close: 1005, reason: "" }],
  },
  {
    name: "a close frame with code and UTF-8 reason is reported",
    input: f(CLOSE, closeBody(1000, "bye κ")),
    events: [{ close: 1000, reason: "bye κ" }],
  },
  {
    name: "bytes after a close frame are ignored (§5.5.1)",
    input: seq(f(T, "a"), f(CLOSE, closeBody(1001)), f(T, "after"), hex("ff ff ff")),
    events: [text("a"), { close: 1001, reason: "" }],
  },
  {
    name: "a close frame in the middle of a fragmented message drops the partial message",
    input: seq(f(T, "Hel", { fin: false }), f(CLOSE, closeBody(1000))),
    events: [{ close: 1000, reason: "" }],
  },
  ...[
    1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999,
  ].map(
    (code): Case => ({
      name: `close code ${code} is accepted`,
      input: f(CLOSE, closeBody(code, "r")),
      events: [{ close: code, reason: "r" }],
    }),
  ),
  {
    name: "a frame whose bytes never all arrive yields nothing yet",
    input: f(T, "Hello").subarray(0, 9),
    events: [],
    partial: true,
  },

  // ---- RFC 7692 permessage-deflate ----
  {
    name: "the RFC 7692 §7.2.3.1 compressed Hello (masked) inflates",
    input: f(T, hex("f2 48 cd c9 c9 07 00"), { rsv: RSV1 }),
    events: [text("Hello")],
    deflate: true,
  },
  {
    name: "the RFC 7692 §7.2.3.1 fragmented compressed Hello inflates",
    input: seq(f(T, hex("f2 48 cd"), { rsv: RSV1, fin: false }), f(C, hex("c9 c9 07 00"))),
    events: [text("Hello")],
    deflate: true,
  },
  {
    name: "the RFC 7692 §7.2.3.3 stored block inflates",
    input: f(T, hex("00 05 00 fa ff 48 65 6c 6c 6f 00"), { rsv: RSV1 }),
    events: [text("Hello")],
    deflate: true,
  },
  {
    name: "the RFC 7692 §7.2.3.4 BFINAL block inflates",
    input: f(T, hex("f3 48 cd c9 c9 07 00 00"), { rsv: RSV1 }),
    events: [text("Hello")],
    deflate: true,
  },
  {
    name: "the RFC 7692 §7.2.3.5 two DEFLATE blocks inflate",
    input: f(T, hex("f2 48 05 00 00 00 ff ff ca c9 c9 07 00"), { rsv: RSV1 }),
    events: [text("Hello")],
    deflate: true,
  },
  {
    name: "compressed and uncompressed messages may alternate, with pings between fragments",
    input: seq(
      f(B, compressed(BIN_64K), { rsv: RSV1 }),
      f(T, "plain"),
      f(T, compressed(LONG_TEXT).subarray(0, 100), { rsv: RSV1, fin: false }),
      f(PING, "p"),
      f(C, compressed(LONG_TEXT).subarray(100)),
    ),
    events: [{ binary: BIN_64K }, text("plain"), { ping: "p" }, text(LONG_TEXT)],
    deflate: true,
  },
  {
    name: "a compressed message of exactly maxMessage bytes is accepted",
    input: f(B, compressed(new Uint8Array(1000)), { rsv: RSV1 }),
    events: [{ binary: new Uint8Array(1000) }],
    deflate: true,
    maxMessage: 1000,
  },

  // ---- protocol errors (1002) ----
  {
    name: "an unmasked binary frame is refused",
    input: f(B, "x", { mask: null }),
    events: [error(1002)],
  },
  {
    name: "RSV1 without a negotiated extension is refused",
    input: f(T, "x", { rsv: RSV1 }),
    events: [error(1002)],
  },
  { name: "RSV2 is refused", input: f(T, "x", { rsv: 0x20 }), events: [error(1002)] },
  { name: "RSV3 is refused", input: f(T, "x", { rsv: 0x10 }), events: [error(1002)] },
  {
    name: "RSV2 is refused even with permessage-deflate",
    input: f(T, "x", { rsv: 0x20 }),
    events: [error(1002)],
    deflate: true,
  },
  {
    name: "RSV1 on a continuation frame is refused (RFC 7692 §6.1)",
    input: seq(
      f(T, compressed("ab").subarray(0, 1), { rsv: RSV1, fin: false }),
      f(C, "x", { rsv: RSV1 }),
    ),
    events: [error(1002)],
    deflate: true,
  },
  {
    name: "RSV1 on a ping is refused (RFC 7692 §6.1)",
    input: f(PING, "x", { rsv: RSV1 }),
    events: [error(1002)],
    deflate: true,
  },
  ...[3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf].map(
    (op): Case => ({
      name: `reserved opcode ${op} is refused`,
      input: f(op, "x"),
      events: [error(1002)],
    }),
  ),
  {
    name: "a ping longer than 125 bytes is refused (§5.5)",
    input: f(PING, new Uint8Array(126)),
    events: [error(1002)],
  },
  {
    name: "a fragmented ping is refused (§5.5)",
    input: f(PING, "x", { fin: false }),
    events: [error(1002)],
  },
  {
    name: "a fragmented close is refused (§5.5)",
    input: f(CLOSE, closeBody(1000), { fin: false }),
    events: [error(1002)],
  },
  {
    name: "a continuation frame without a started message is refused",
    input: f(C, "x"),
    events: [error(1002)],
  },
  {
    name: "a continuation after a finished message is refused",
    input: seq(f(T, "a"), f(C, "x")),
    events: [text("a"), error(1002)],
  },
  {
    name: "a new text frame inside a fragmented message is refused",
    input: seq(f(T, "a", { fin: false }), f(T, "b")),
    events: [error(1002)],
  },
  {
    name: "a new binary frame inside a fragmented message is refused",
    input: seq(f(B, "a", { fin: false }), f(B, "b")),
    events: [error(1002)],
  },
  {
    name: "a close frame with a 1-byte body is refused",
    input: f(CLOSE, hex("03")),
    events: [error(1002)],
  },
  ...[0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535].map(
    (code): Case => ({
      name: `close code ${code} is refused`,
      input: f(CLOSE, closeBody(code)),
      events: [error(1002)],
    }),
  ),
  {
    name: "a 64-bit length with the most significant bit set is refused",
    input: seq(hex("82 ff 80 00 00 00 00 00 00 01"), hex("37 fa 21 3d 00")),
    events: [error(1002)],
    maxMessage: Number.POSITIVE_INFINITY,
  },
  {
    name: "a 16-bit length for a 5-byte payload (non-minimal) is refused",
    input: f(T, "Hello", { lengthForm: 16 }),
    events: [error(1002)],
  },
  {
    name: "a 64-bit length for a 200-byte payload (non-minimal) is refused",
    input: f(B, new Uint8Array(200), { lengthForm: 64 }),
    events: [error(1002)],
  },
  {
    name: "events before a protocol error are still delivered",
    input: seq(f(T, "a"), f(PING, "p"), f(B, "b", { mask: null })),
    events: [text("a"), { ping: "p" }, error(1002)],
  },

  // ---- invalid UTF-8 (1007) ----
  ...(
    [
      ["an overlong 2-byte NUL", "c0 80"],
      ["an overlong 3-byte slash", "e0 80 af"],
      ["an overlong 4-byte code point", "f0 8f bf bf"],
      ["a UTF-16 high surrogate", "ed a0 80"],
      ["a UTF-16 low surrogate", "ed bf bf"],
      ["a code point above U+10FFFF", "f4 90 80 80"],
      ["the byte F5", "f5 80 80 80"],
      ["the byte FE", "fe"],
      ["a lone continuation byte", "61 80 62"],
      ["a 2-byte lead followed by ASCII", "c3 41"],
    ] as const
  ).map(
    ([label, bytes]): Case => ({
      name: `a text message with ${label} is refused with 1007`,
      input: f(T, seq(utf8("ok "), hex(bytes), utf8(" tail"))),
      events: [error(1007)],
    }),
  ),
  {
    name: "a text message ending inside a UTF-8 sequence is refused with 1007",
    input: f(T, seq(utf8("abc"), hex("ce"))),
    events: [error(1007)],
  },
  {
    name: "a fragmented text message ending inside a UTF-8 sequence is refused with 1007",
    input: seq(f(T, hex("ce ba e1"), { fin: false }), f(C, hex("bd"))),
    events: [error(1007)],
  },
  {
    name: "invalid UTF-8 in a first fragment fails before the next fragment arrives",
    input: f(T, seq(utf8("κόσμε"), hex("ed a0 80"), utf8("edited")), { fin: false }),
    events: [error(1007)],
  },
  {
    name: "invalid UTF-8 fails within a frame whose end has not arrived",
    input: f(T, seq(utf8("hello"), hex("f4 90 80 80"), new Uint8Array(100))).subarray(0, 6 + 9),
    events: [error(1007)],
    partial: true,
  },
  {
    name: "binary messages are not UTF-8 validated",
    input: f(B, hex("c0 80 ff fe")),
    events: [{ binary: hex("c0 80 ff fe") }],
  },
  {
    name: "a close reason with invalid UTF-8 is refused with 1007",
    input: f(CLOSE, closeBody(1000, hex("ce ba ff"))),
    events: [error(1007)],
  },
  {
    name: "a compressed text that inflates to invalid UTF-8 is refused with 1007",
    input: f(T, compressed(hex("68 69 ed a0 80")), { rsv: RSV1 }),
    events: [error(1007)],
    deflate: true,
  },
  {
    name: "compressed data that is not DEFLATE is refused with 1007",
    input: f(B, hex("ff ff ff ff"), { rsv: RSV1 }),
    events: [error(1007)],
    deflate: true,
  },

  // ---- too big (1009) ----
  {
    name: "a frame announcing more than maxMessage is refused from its header alone",
    input: f(B, new Uint8Array(1001)).subarray(0, 8),
    events: [error(1009)],
    maxMessage: 1000,
    partial: true,
  },
  {
    name: "a 64-bit length announcing terabytes is refused from its header alone",
    input: hex("82 ff 00 00 01 00 00 00 00 00"),
    events: [error(1009)],
    maxMessage: 1 << 20,
    partial: true,
  },
  {
    name: "a message of exactly maxMessage bytes is accepted",
    input: f(B, new Uint8Array(1000)),
    events: [{ binary: new Uint8Array(1000) }],
    maxMessage: 1000,
  },
  {
    name: "fragments adding up to more than maxMessage are refused at the fragment that overflows",
    input: seq(f(B, new Uint8Array(600), { fin: false }), f(C, new Uint8Array(600)).subarray(0, 8)),
    events: [error(1009)],
    maxMessage: 1000,
    partial: true,
  },
  {
    name: "a compressed message inflating past maxMessage is refused with 1009",
    input: f(B, compressed(new Uint8Array(1001)), { rsv: RSV1 }),
    events: [error(1009)],
    deflate: true,
    maxMessage: 1000,
  },
  {
    name: "a decompression bomb is refused with 1009",
    input: f(T, compressed(new Uint8Array(8 << 20).fill(0x61)), { rsv: RSV1 }),
    events: [error(1009)],
    deflate: true,
    maxMessage: 1 << 20,
  },
  {
    name: "a message queued before a too-big compressed one is still delivered",
    input: seq(f(T, "first"), f(B, compressed(new Uint8Array(5000)), { rsv: RSV1 }), f(T, "never")),
    events: [text("first"), error(1009)],
    deflate: true,
    maxMessage: 1000,
  },
];

type Actual = Expected;

function normalize(ev: WsEvent): Actual {
  switch (ev.type) {
    case "message":
      return ev.binary ? { binary: ev.data } : { text: new TextDecoder().decode(ev.data) };
    case "ping":
      return { ping: Buffer.from(ev.data).toString("latin1") };
    case "pong":
      return { pong: Buffer.from(ev.data).toString("latin1") };
    case "close":
      return { close: ev.code, reason: ev.reason };
    case "error":
      return { error: ev.closeCode };
  }
}

/** Feeds `pieces`, draining events after each, and checks the terminal-state rules. */
function run(pieces: Uint8Array[], c: Case): Actual[] {
  const rx = new WsReceiver({
    maxMessage: c.maxMessage ?? 16 << 20,
    deflate: c.deflate === true ? DEFLATE : null,
  });
  const out: Actual[] = [];
  let terminal: WsEvent | null = null;
  let closed = false;
  for (const piece of pieces) {
    rx.feed(piece);
    piece.fill(0xee); // the receiver must not keep a view into a fed chunk
    for (;;) {
      const ev = rx.next();
      if (ev === null) break;
      if (terminal !== null) {
        expect(ev).toBe(terminal); // an error is returned again, and nothing else
        break;
      }
      expect(closed).toBe(false); // nothing after a close
      out.push(normalize(ev));
      if (ev.type === "error") terminal = ev;
      if (ev.type === "close") closed = true;
    }
  }
  if (terminal !== null) {
    expect(rx.next()).toBe(terminal);
    expect(rx.buffered).toBe(0);
    expect(rx.idle).toBe(true);
  } else if (closed) {
    expect(rx.next()).toBeNull();
    expect(rx.buffered).toBe(0);
    expect(rx.idle).toBe(true);
  } else if (c.partial !== true) {
    // Between messages with the queue drained, nothing is held.
    expect(rx.buffered).toBe(0);
    expect(rx.idle).toBe(true);
  }
  return out;
}

function check(c: Case, pieces: Uint8Array[]): void {
  const actual = run(pieces, c);
  expect(actual.length).toBe(c.events.length);
  for (let i = 0; i < c.events.length; i++) {
    const e = c.events[i] as Expected;
    const a = actual[i] as Actual;
    if ("text" in e && "text" in a && e.text.length > 200) {
      // Avoid printing 100 KB on failure; compare lengths first, then content.
      expect(a.text.length).toBe(e.text.length);
      expect(a.text === e.text).toBe(true);
    } else {
      expect(a).toEqual(e);
    }
  }
}

describe("WsReceiver: frame table", () => {
  for (const [index, c] of CASES.entries()) {
    test(`${c.name} (fed whole)`, () => {
      check(c, [c.input.slice()]);
    });
    test(`${c.name} (fed one byte at a time)`, () => {
      check(c, byteByByte(c.input));
    });
    test(`${c.name} (fed at 50 random splittings)`, () => {
      const r = prng(0xf4a3e + index);
      for (let round = 0; round < 50; round++) check(c, randomSplit(c.input, r, 12));
    });
  }
});

describe("WsReceiver: behaviour", () => {
  test("buffered counts a partial header, a partial message and queued payloads", () => {
    const rx = new WsReceiver({ maxMessage: 1 << 20, deflate: null });
    const frame = f(B, new Uint8Array(300));
    rx.feed(frame.subarray(0, 3)); // part of the 8-byte header
    expect(rx.buffered).toBe(3);
    expect(rx.idle).toBe(false);
    rx.feed(frame.subarray(3, 8 + 100));
    expect(rx.buffered).toBe(100);
    rx.feed(frame.subarray(108));
    expect(rx.buffered).toBe(300); // complete, queued, not yet taken
    expect(rx.idle).toBe(false);
    const ev = rx.next();
    expect(ev?.type).toBe("message");
    expect(rx.buffered).toBe(0);
    expect(rx.idle).toBe(true);
    expect(rx.next()).toBeNull();
  });

  test("atMessageBoundary is false inside a fragmented message, even with nothing buffered", () => {
    const rx = new WsReceiver({ maxMessage: 1 << 20, deflate: null });
    expect(rx.atMessageBoundary).toBe(true);
    rx.feed(clientFrame(0x1, new Uint8Array(0), { fin: false }));
    expect(rx.next()).toBeNull();
    expect(rx.atMessageBoundary).toBe(false);
    rx.feed(clientFrame(0x0, "ok"));
    const ev = rx.next();
    expect(ev?.type === "message" && Buffer.from(ev.data).toString()).toBe("ok");
    expect(rx.atMessageBoundary).toBe(true);
  });

  test("a message's data stays valid after later feeds", () => {
    const rx = new WsReceiver({ maxMessage: 1 << 20, deflate: null });
    rx.feed(f(T, "first"));
    const first = rx.next();
    rx.feed(f(T, "second"));
    expect(first?.type === "message" && new TextDecoder().decode(first.data)).toBe("first");
  });

  test("input fed after an error is ignored and the error is returned again", () => {
    const rx = new WsReceiver({ maxMessage: 1 << 20, deflate: null });
    rx.feed(f(C, "x"));
    const ev = rx.next();
    expect(ev).toEqual({ type: "error", closeCode: 1002, reason: expect.any(String) });
    rx.feed(f(T, "ok"));
    expect(rx.next()).toBe(ev);
    expect(rx.buffered).toBe(0);
  });

  test("a frame announcing a large length reserves memory only as its bytes arrive", () => {
    const rx = new WsReceiver({ maxMessage: 256 << 20, deflate: null });
    const frame = f(B, new Uint8Array(0), { declaredLength: 200 << 20, lengthForm: 64 });
    rx.feed(frame);
    rx.feed(new Uint8Array(10));
    expect(rx.buffered).toBe(10);
    expect(rx.allocated).toBe(64 * 1024); // not 200 MiB
    rx.feed(new Uint8Array(100_000));
    expect(rx.buffered).toBe(100_010);
    expect(rx.allocated).toBe(256 * 1024); // grows by 4x as bytes arrive
  });

  test("a message that fits the eager size is allocated exactly once, at its size", () => {
    const rx = new WsReceiver({ maxMessage: 1 << 20, deflate: null });
    const frame = f(B, new Uint8Array(5000).fill(3));
    rx.feed(frame.subarray(0, 1000));
    expect(rx.allocated).toBe(5000);
    rx.feed(frame.subarray(1000));
    const ev = rx.next();
    expect(ev?.type === "message" && ev.data.length).toBe(5000);
    expect(ev?.type === "message" && ev.data.buffer.byteLength).toBe(5000);
    expect(rx.allocated).toBe(0);
  });

  test("many tiny fragments grow the message buffer geometrically, not per fragment", () => {
    const rx = new WsReceiver({ maxMessage: 1 << 20, deflate: null });
    rx.feed(f(B, hex("00"), { fin: false }));
    for (let i = 1; i < 5000; i++) rx.feed(f(C, hex("01"), { fin: false }));
    expect(rx.buffered).toBe(5000);
    expect(rx.allocated).toBe(4 ** 7); // 1, 4, 16, ... 16384: 8 allocations for 5000 frames
    rx.feed(f(C, hex("02")));
    const ev = rx.next();
    expect(ev?.type === "message" && ev.data.length).toBe(5001);
    expect(ev?.type === "message" && ev.data[5000]).toBe(2);
    expect(rx.allocated).toBe(0);
  });

  test("random streams of fragmented, interleaved messages round-trip at random splits", () => {
    const r = prng(0xabcdef);
    for (let round = 0; round < 40; round++) {
      const frames: Uint8Array[] = [];
      const expected: Expected[] = [];
      const nMessages = 1 + Math.floor(r() * 6);
      for (let m = 0; m < nMessages; m++) {
        const binary = r() < 0.5;
        const size = Math.floor(r() ** 3 * 100_000);
        const data = binary ? randomBytes(size, r) : utf8("ä€😀x".repeat(size >>> 3));
        const nFrames = 1 + Math.floor(r() * 5);
        const mask = [0, 0, 0, 0].map(() => Math.floor(r() * 256));
        let at = 0;
        for (let k = 0; k < nFrames; k++) {
          const last = k === nFrames - 1;
          const end = last
            ? data.length
            : Math.min(data.length, at + Math.floor(r() * (data.length + 1)));
          frames.push(
            f(k === 0 ? (binary ? B : T) : C, data.subarray(at, end), { fin: last, mask }),
          );
          at = end;
          if (!last && r() < 0.3) {
            frames.push(f(PING, "i", { mask }));
            expected.push({ ping: "i" });
          }
        }
        expected.push(binary ? { binary: data } : { text: new TextDecoder().decode(data) });
      }
      const c: Case = { name: "random", input: seq(...frames), events: expected };
      check(c, randomSplit(c.input, r, 30));
    }
  });
});

describe("encodeFrame", () => {
  const cases: Array<[string, () => Uint8Array, string]> = [
    ["the §5.7 single-frame unmasked text", () => encodeFrame(T, utf8("Hello")), "810548656c6c6f"],
    ["the §5.7 first fragment", () => encodeFrame(T, utf8("Hel"), false), "010348656c"],
    ["the §5.7 last fragment", () => encodeFrame(C, utf8("lo")), "80026c6f"],
    ["the §5.7 unmasked ping", () => encodeFrame(PING, utf8("Hello")), "890548656c6c6f"],
    [
      "the RFC 7692 §7.2.3.1 compressed frame",
      () => encodeFrame(T, hex("f2 48 cd c9 c9 07 00"), true, true),
      "c107f248cdc9c90700",
    ],
    ["an empty pong", () => encodeFrame(PONG, new Uint8Array(0)), "8a00"],
  ];
  for (const [name, make, expected] of cases) {
    test(`encodes ${name}`, () => {
      expect(toHex(make())).toBe(expected);
    });
  }

  test("uses the shortest length form at every boundary (§5.2)", () => {
    const heads: Array<[number, string]> = [
      [125, "827d"],
      [126, "827e007e"],
      [256, "827e0100"], // §5.7: 256 bytes
      [65535, "827effff"],
      [65536, "827f0000000000010000"], // §5.7: 64 KiB
      [70000, "827f0000000000011170"],
    ];
    for (const [len, head] of heads) {
      const out = encodeFrame(B, new Uint8Array(len).fill(7));
      expect(toHex(out.subarray(0, head.length / 2))).toBe(head);
      expect(out.length).toBe(head.length / 2 + len);
      expect(out[out.length - 1]).toBe(7);
    }
  });

  test("refuses control frames over 125 bytes, fragmented or compressed, and bad opcodes", () => {
    expect(() => encodeFrame(PING, new Uint8Array(126))).toThrow(RangeError);
    expect(() => encodeFrame(PING, new Uint8Array(1), false)).toThrow(RangeError);
    expect(() => encodeFrame(CLOSE, new Uint8Array(2), true, true)).toThrow(RangeError);
    expect(() => encodeFrame(3, new Uint8Array(1))).toThrow(RangeError);
    expect(() => encodeFrame(16, new Uint8Array(1))).toThrow(RangeError);
  });

  test("frames it encodes are read back once a client would mask them", () => {
    const server = encodeFrame(B, BIN_64K);
    // Turn it into a client frame: set MASK and insert a zero key (XOR with 0 keeps the bytes).
    const head = server.subarray(0, 10);
    const masked = seq(head, new Uint8Array(4), server.subarray(10));
    masked[1] = (masked[1] as number) | 0x80;
    const rx = new WsReceiver({ maxMessage: 1 << 20, deflate: null });
    rx.feed(masked);
    const ev = rx.next();
    expect(ev?.type === "message" && ev.data).toEqual(BIN_64K);
  });
});

describe("encodeClose", () => {
  test("encodes a code and a reason", () => {
    expect(toHex(encodeClose(1000, "bye"))).toBe("880503e8627965");
  });

  test("encodes 1005 as a close frame without a body (§7.4.1: 1005 is never on the wire)", () => {
    expect(toHex(encodeClose(CloseCode.NoStatus, "ignored"))).toBe("8800");
  });

  test("cuts a long reason to 123 bytes without splitting a UTF-8 sequence", () => {
    const cases: Array<[string, number]> = [
      ["a".repeat(200), 123],
      ["é".repeat(100), 122], // 2-byte: 61 fit
      ["€".repeat(100), 123], // 3-byte: 41 fit exactly
      [`a${"😀".repeat(40)}`, 121], // 4-byte: 1 + 30 * 4
      ["ab€".repeat(30), 122], // 24 x 5 bytes + "ab"; the next € would need 3
    ];
    for (const [reason, bytes] of cases) {
      const frame = encodeClose(4000, reason);
      expect(frame[1]).toBe(2 + bytes);
      const text = new TextDecoder("utf-8", { fatal: true }).decode(frame.subarray(4));
      expect(reason.startsWith(text)).toBe(true);
    }
  });

  test("refuses codes that may not be sent", () => {
    for (const code of [0, 999, 1004, 1006, 1015, 2000, 5000]) {
      expect(() => encodeClose(code, "")).toThrow(RangeError);
    }
  });

  test("its frames are accepted by the receiver with the same code and reason", () => {
    const frame = encodeClose(4321, "κόσμε");
    const masked = seq(frame.subarray(0, 2), new Uint8Array(4), frame.subarray(2));
    masked[1] = (masked[1] as number) | 0x80;
    const rx = new WsReceiver({ maxMessage: 100, deflate: null });
    rx.feed(masked);
    expect(rx.next()).toEqual({ type: "close", code: 4321, reason: "κόσμε" });
  });
});

describe("isValidCloseCode", () => {
  const valid = [
    1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999,
  ];
  const invalid = [-1, 0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2999, 5000, 65535, 1000.5];
  for (const code of valid)
    test(`${code} may be sent`, () => expect(isValidCloseCode(code)).toBe(true));
  for (const code of invalid) {
    test(`${code} may not be sent`, () => expect(isValidCloseCode(code)).toBe(false));
  }
});
