import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import {
  decodeClose,
  decodeHello,
  decodeMessage,
  decodeRequest,
  decodeReset,
  decodeResponse,
  decodeShutdown,
  decodeWindow,
  encodeBody,
  encodeClose,
  encodeContinue,
  encodeControl,
  encodeHello,
  encodeMessage,
  encodeRequest,
  encodeReset,
  encodeResponse,
  encodeShutdown,
  encodeWindow,
  FLAG_CONTINUE,
  FLAG_END,
  FrameDecoder,
  FrameType,
  HEADER_SIZE,
  INITIAL_WINDOW,
  MAX_PAYLOAD,
  MAX_WINDOW,
  MessageKind,
  ProtocolError,
  ResetCode,
  VERSION,
} from "./codec.ts";

// The vector file's format is documented in tests/vectors/generate.py.
type ByteSpec = string | { hex: string } | { repeat: string; length: number };
interface FrameSpec {
  type: number;
  flags: number;
  stream: number;
  payload?: ByteSpec;
  request?: { fields: ByteSpec[]; body: ByteSpec };
  response?: { status: number; headers: ByteSpec[]; body: ByteSpec };
  window?: { increment: number };
  reset?: { code: number; reason: string };
  close?: { code: number; reason: string };
  message?: { kind: number; data: ByteSpec };
  hello?: { version: number; pid: number; slot: number; generation: number };
  shutdown?: { reason: number };
}
interface Vector {
  name: string;
  description: string;
  wire: ByteSpec[];
  frames?: FrameSpec[];
  reencoded?: ByteSpec[];
  error?: { stage: "frame" | "payload"; contains: string };
}
type Frame = [type: number, flags: number, stream: number, payload: Uint8Array];

const ROOT = join(import.meta.dir, "..", "..");
const SPEC = readFileSync(join(ROOT, "docs", "protocol.md"), "utf8");
const VECTORS: Vector[] = JSON.parse(
  readFileSync(join(ROOT, "tests", "vectors", "frames.json"), "ascii"),
).vectors;
const VALID = VECTORS.filter((v) => v.error === undefined);
const FRAME_ERRORS = VECTORS.filter((v) => v.error?.stage === "frame");
const PAYLOAD_ERRORS = VECTORS.filter((v) => v.error?.stage === "payload");
/** The frame that follows a vector in the trailing-bytes tests: a PING. */
const NEXT_FRAME = encodeControl(FrameType.PING, new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]));

function hexBytes(hex: string): Uint8Array {
  return new Uint8Array(Buffer.from(hex, "hex"));
}

function toBytes(spec: ByteSpec): Uint8Array {
  if (typeof spec === "string") return new Uint8Array(Buffer.from(spec, "latin1"));
  if ("hex" in spec) return hexBytes(spec.hex);
  const pattern = hexBytes(spec.repeat);
  const out = new Uint8Array(spec.length);
  for (let i = 0; i < spec.length; i++) out[i] = pattern[i % pattern.length] as number;
  return out;
}

/** Head strings decode to binary strings, so a JSON latin1 string compares as it is. */
function toLatin1(spec: ByteSpec): string {
  return Buffer.from(toBytes(spec)).toString("latin1");
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function wire(specs: ByteSpec[]): Uint8Array {
  return concat(specs.map(toBytes));
}

/** Feeds data cut at the given offsets; copies each payload, which is valid only in the sink. */
function feedChunks(data: Uint8Array, cuts: number[]): { decoder: FrameDecoder; frames: Frame[] } {
  const decoder = new FrameDecoder();
  const frames: Frame[] = [];
  let start = 0;
  for (const cut of [...cuts, data.length]) {
    decoder.feed(data.subarray(start, cut), (type, flags, stream, payload) => {
      frames.push([type, flags, stream, payload.slice()]);
    });
    start = cut;
  }
  return { decoder, frames };
}

function hashName(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** mulberry32: a small seeded PRNG, so a failing split can be reproduced. */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomCuts(name: string, size: number, rounds = 20): number[][] {
  const random = rng(hashName(name));
  const out: number[][] = [];
  for (let r = 0; r < rounds; r++) {
    const cuts = new Set<number>();
    const count = 1 + Math.floor(random() * 12);
    for (let i = 0; i < count && size > 1; i++) cuts.add(1 + Math.floor(random() * (size - 1)));
    out.push([...cuts].sort((x, y) => x - y));
  }
  return out;
}

function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i);
}

/** A decoded frame in the vector file's form (binary strings, bytes as Uint8Array). */
function describeFrame([type, flags, stream, payload]: Frame): Record<string, unknown> {
  const out: Record<string, unknown> = { type, flags, stream };
  if (type === FrameType.REQUEST) out.request = decodeRequest(payload);
  else if (type === FrameType.RESPONSE) out.response = decodeResponse(payload);
  else if (type === FrameType.WINDOW) out.window = { increment: decodeWindow(payload) };
  else if (type === FrameType.RESET) out.reset = decodeReset(payload);
  else if (type === FrameType.CLOSE) out.close = decodeClose(payload);
  else if (type === FrameType.MESSAGE) out.message = decodeMessage(payload);
  else if (type === FrameType.HELLO) out.hello = decodeHello(payload);
  else if (type === FrameType.SHUTDOWN) out.shutdown = { reason: decodeShutdown(payload) };
  else out.payload = payload;
  return out;
}

function expectedFrame(spec: FrameSpec): Record<string, unknown> {
  const out: Record<string, unknown> = { type: spec.type, flags: spec.flags, stream: spec.stream };
  if (spec.request) {
    out.request = { fields: spec.request.fields.map(toLatin1), body: toBytes(spec.request.body) };
  } else if (spec.response) {
    out.response = {
      status: spec.response.status,
      headers: spec.response.headers.map(toLatin1),
      body: toBytes(spec.response.body),
    };
  } else if (spec.window) out.window = spec.window;
  else if (spec.reset) out.reset = spec.reset;
  else if (spec.close) out.close = spec.close;
  else if (spec.message) {
    out.message = { kind: spec.message.kind, data: toBytes(spec.message.data) };
  } else if (spec.hello) out.hello = spec.hello;
  else if (spec.shutdown) out.shutdown = spec.shutdown;
  else if (spec.payload !== undefined) out.payload = toBytes(spec.payload);
  return out;
}

function expectFrames(frames: Frame[], vector: Vector): void {
  expect(frames.map(describeFrame)).toEqual((vector.frames ?? []).map(expectedFrame));
}

/** Encodes a decoded frame again from its decoded fields, with this codec's encoders. */
function reencode([type, flags, stream, payload]: Frame): Uint8Array {
  const end = (flags & FLAG_END) !== 0;
  switch (type) {
    case FrameType.REQUEST: {
      const { fields: f, body } = decodeRequest(payload);
      const head = {
        method: f[0] ?? "",
        scheme: f[1] ?? "",
        httpVersion: f[2] ?? "",
        rawPath: f[3] ?? "",
        query: f[4] ?? "",
        clientHost: f[5] ?? "",
        clientPort: f[6] ?? "",
        serverHost: f[7] ?? "",
        serverPort: f[8] ?? "",
        headers: f.slice(9),
      };
      return encodeRequest(stream, head, body, end, (flags & FLAG_CONTINUE) !== 0);
    }
    case FrameType.RESPONSE: {
      const { status, headers, body } = decodeResponse(payload);
      return encodeResponse(stream, status, headers, body, end);
    }
    case FrameType.BODY:
      return encodeBody(stream, payload, end);
    case FrameType.WINDOW:
      return encodeWindow(stream, decodeWindow(payload));
    case FrameType.RESET: {
      const { code, reason } = decodeReset(payload);
      return encodeReset(stream, code, reason);
    }
    case FrameType.CLOSE: {
      const { code, reason } = decodeClose(payload);
      return encodeClose(stream, code, reason);
    }
    case FrameType.MESSAGE: {
      const { kind, data } = decodeMessage(payload);
      return encodeMessage(stream, kind, data, end);
    }
    case FrameType.CONTINUE:
      return encodeContinue(stream);
    case FrameType.HELLO: {
      const { version, pid, slot, generation } = decodeHello(payload);
      expect(version).toBe(VERSION);
      return encodeHello(pid, slot, generation);
    }
    case FrameType.SHUTDOWN:
      return encodeShutdown(decodeShutdown(payload));
    default:
      return encodeControl(type, payload);
  }
}

describe("decoding the shared vectors", () => {
  for (const v of VALID) {
    test(`${v.name}: fed whole, it decodes to its frames`, () => {
      const { decoder, frames } = feedChunks(wire(v.wire), []);
      expectFrames(frames, v);
      expect(decoder.buffered).toBe(0);
    });

    test(`${v.name}: fed one byte at a time, it decodes to the same frames`, () => {
      const data = wire(v.wire);
      const { decoder, frames } = feedChunks(data, range(1, data.length));
      expectFrames(frames, v);
      expect(decoder.buffered).toBe(0);
    });

    test(`${v.name}: split at random points, it decodes to the same frames`, () => {
      const data = wire(v.wire);
      for (const cuts of randomCuts(v.name, data.length)) {
        const { decoder, frames } = feedChunks(data, cuts);
        expectFrames(frames, v);
        expect(decoder.buffered).toBe(0);
      }
    });

    test(`${v.name}: trailing bytes of a next frame stay buffered until it completes`, () => {
      const data = wire(v.wire);
      for (let keep = 1; keep < NEXT_FRAME.length; keep++) {
        const decoder = new FrameDecoder();
        const frames: Frame[] = [];
        const sink = (type: number, flags: number, stream: number, payload: Uint8Array) => {
          frames.push([type, flags, stream, payload.slice()]);
        };
        decoder.feed(concat([data, NEXT_FRAME.subarray(0, keep)]), sink);
        expectFrames(frames, v);
        expect(decoder.buffered).toBe(keep);
        frames.length = 0;
        decoder.feed(NEXT_FRAME.subarray(keep), sink);
        expect(frames).toEqual([[FrameType.PING, 0, 0, NEXT_FRAME.subarray(HEADER_SIZE)]]);
        expect(decoder.buffered).toBe(0);
      }
    });

    test(`${v.name}: re-encoding the decoded fields gives back the exact bytes`, () => {
      const { frames } = feedChunks(wire(v.wire), []);
      expect(concat(frames.map(reencode))).toEqual(wire(v.reencoded ?? v.wire));
    });
  }
});

function expectProtocolError(run: () => unknown, contains: string): void {
  let error: unknown;
  try {
    run();
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(ProtocolError);
  expect((error as ProtocolError).code).toBe("PROTOCOL_ERROR");
  expect((error as ProtocolError).message).toContain(contains);
}

describe("invalid input", () => {
  for (const v of FRAME_ERRORS) {
    test(`${v.name}: is a protocol error however it is split`, () => {
      const data = wire(v.wire);
      for (const cuts of [[], range(1, data.length), ...randomCuts(v.name, data.length, 5)]) {
        expectProtocolError(() => feedChunks(data, cuts), v.error?.contains ?? "?");
      }
    });

    test(`${v.name}: is refused as soon as the header is in, before the payload`, () => {
      const data = wire(v.wire);
      const decoder = new FrameDecoder();
      const sink = () => {};
      decoder.feed(data.subarray(0, HEADER_SIZE - 1), sink);
      expect(() => decoder.feed(data.subarray(HEADER_SIZE - 1, HEADER_SIZE), sink)).toThrow(
        ProtocolError,
      );
    });
  }

  for (const v of PAYLOAD_ERRORS) {
    test(`${v.name}: is a protocol error when its payload is decoded`, () => {
      const { frames } = feedChunks(wire(v.wire), []);
      expect(frames.map(([type, flags, stream]) => ({ type, flags, stream }))).toEqual(
        v.frames ?? [],
      );
      expectProtocolError(() => describeFrame(frames[0] as Frame), v.error?.contains ?? "?");
    });
  }

  test("a frame of exactly MAX_PAYLOAD is accepted and waits for its payload", () => {
    const decoder = new FrameDecoder();
    const frames: Frame[] = [];
    const sink = (type: number, flags: number, stream: number, payload: Uint8Array) => {
      frames.push([type, flags, stream, payload]);
    };
    const header = encodeBody(1, new Uint8Array(0), false);
    header.set([1, 0, 0, 0], 0); // length = 2^24 = MAX_PAYLOAD
    decoder.feed(header, sink);
    expect(decoder.buffered).toBe(HEADER_SIZE);
    decoder.feed(new Uint8Array(MAX_PAYLOAD - 1), sink);
    expect(frames).toEqual([]);
    decoder.feed(new Uint8Array([33]), sink);
    expect(frames.length).toBe(1);
    expect(frames[0]?.[3].length).toBe(MAX_PAYLOAD);
    expect(frames[0]?.[3][MAX_PAYLOAD - 1]).toBe(33);
    expect(decoder.buffered).toBe(0);
  });

  test("a protocol error is an Error with a stable code and name", () => {
    const error = new ProtocolError("x");
    expect(error).toBeInstanceOf(Error);
    expect(error.code).toBe("PROTOCOL_ERROR");
    expect(error.name).toBe("ProtocolError");
  });

  test("a RESET reason that is not UTF-8 decodes with replacement characters", () => {
    expect(decodeReset(new Uint8Array([0, 2, 0x62, 0xff]))).toEqual({ code: 2, reason: "b\ufffd" });
  });
});

describe("encoding", () => {
  const head = {
    method: "GET",
    scheme: "http",
    httpVersion: "1.1",
    rawPath: "/",
    query: "",
    clientHost: "",
    clientPort: "",
    serverHost: "/tmp/s.sock",
    serverPort: "",
  };

  test("encodeRequest lowercases ASCII header names only and keeps values as they are", () => {
    const frame = encodeRequest(
      1,
      { ...head, headers: ["Content-TYPE", "Text/Plain", "X-\u00c9T\u00c9", "caf\u00e9"] },
      null,
      true,
    );
    expect(decodeRequest(frame.subarray(HEADER_SIZE)).fields.slice(9)).toEqual([
      "content-type",
      "Text/Plain",
      "x-\u00c9t\u00c9",
      "caf\u00e9",
    ]);
  });

  test("encodeRequest treats a null body like an empty one", () => {
    const frame = encodeRequest(1, { ...head, headers: [] }, null, false);
    expect(frame).toEqual(encodeRequest(1, { ...head, headers: [] }, new Uint8Array(0), false));
  });

  test("encodeRequest refuses headers that are not name, value pairs", () => {
    expect(() => encodeRequest(1, { ...head, headers: ["host"] }, null, true)).toThrow(TypeError);
  });

  test("encodeControl refuses frame types that have their own encoder", () => {
    expect(() => encodeControl(FrameType.BODY)).toThrow(RangeError);
    expect(() => encodeControl(FrameType.HELLO)).toThrow(RangeError);
    expect(encodeControl(FrameType.SHUTDOWN)).toEqual(
      new Uint8Array([0, 0, 0, 0, 0x12, 0, 0, 0, 0, 0]),
    );
  });

  test("a whole frame in one chunk reaches the sink as a view, without a copy", () => {
    const data = concat([encodeBody(5, new Uint8Array([1, 2, 3]), true), NEXT_FRAME]);
    const seen: Uint8Array[] = [];
    new FrameDecoder().feed(data, (_t, _f, _s, payload) => seen.push(payload));
    expect(seen.map((p) => p.buffer === data.buffer)).toEqual([true, true]);
  });
});

describe("the spec and the code agree", () => {
  function find(pattern: RegExp): string {
    const match = pattern.exec(SPEC);
    if (match?.[1] === undefined) throw new Error(`spec has no match for ${pattern}`);
    return match[1];
  }

  test("frame type constants match the table in the spec", () => {
    const rows = [...SPEC.matchAll(/^\| (0x[0-9a-f]{2}) \| ([A-Z]+)\s*\|/gm)];
    const table = Object.fromEntries(rows.map((m) => [m[2], Number.parseInt(m[1] ?? "", 16)]));
    expect(table).toEqual(FrameType);
  });

  test("reset code constants match the table in the spec", () => {
    const rows = [...SPEC.matchAll(/^\| (\d+)\s+\| ([A-Z_]+)\s*\|/gm)];
    expect(Object.fromEntries(rows.map((m) => [m[2], Number(m[1])]))).toEqual(ResetCode);
  });

  test("numeric constants match the spec text", () => {
    const superscript = (s: string) => Number([...s].map((c) => "⁰¹²³⁴⁵⁶⁷⁸⁹".indexOf(c)).join(""));
    expect(Number(find(/^# .*, version (\d+)$/m))).toBe(VERSION);
    expect(Number(find(/(\d+)-byte header/))).toBe(HEADER_SIZE);
    expect(Number(find(/`MAX_PAYLOAD` \((\d+) MiB\)/)) * 1024 * 1024).toBe(MAX_PAYLOAD);
    expect(Number(find(/`INITIAL_WINDOW` = (\d+) bytes/))).toBe(INITIAL_WINDOW);
    expect(2 ** superscript(find(/window above 2([⁰¹²³⁴⁵⁶⁷⁸⁹]+)\u22121/)) - 1).toBe(MAX_WINDOW);
    expect(Number.parseInt(find(/bit 0 \((0x[0-9a-f]+)\) = END/), 16)).toBe(FLAG_END);
    expect(Number.parseInt(find(/bit 1 \((0x[0-9a-f]+)\) = CONTINUE/), 16)).toBe(FLAG_CONTINUE);
    expect(Number(find(/`u8 kind` \((\d) = text/))).toBe(MessageKind.TEXT);
    expect(Number(find(/`u8 kind` \(\d = text, (\d) = binary/))).toBe(MessageKind.BINARY);
  });

  test("the frame header layout matches the spec", () => {
    const rows = [...SPEC.matchAll(/^(\d+)\s+(\d+)\s+(length|type|flags|stream)\b/gm)];
    const frame = encodeControl(FrameType.PING, new Uint8Array(3));
    frame[5] = 0xa5;
    frame.set([1, 2, 3, 4], 6);
    const values: Record<string, number> = {
      length: 3,
      type: 0x13,
      flags: 0xa5,
      stream: 0x01020304,
    };
    expect(rows.map((m) => m[3])).toEqual(["length", "type", "flags", "stream"]);
    expect(rows.reduce((n, m) => n + Number(m[2]), 0)).toBe(HEADER_SIZE);
    for (const [, offset, size, name] of rows) {
      const bytes = frame.subarray(Number(offset), Number(offset) + Number(size));
      expect(bytes.reduce((n, b) => n * 256 + b, 0)).toBe(values[name ?? ""] ?? -1);
    }
  });

  test("fixed payload fields have the sizes in the spec", () => {
    const fixedBytes = (name: string) => {
      const row = find(new RegExp(`^\\| 0x[0-9a-f]{2} \\| ${name}\\s*\\|.*\\|([^|]*)\\|$`, "m"));
      return [...row.matchAll(/`u(\d+) \w+`/g)].reduce((n, m) => n + Number(m[1]) / 8, 0);
    };
    const request = encodeRequest(
      1,
      {
        method: "",
        scheme: "",
        httpVersion: "",
        rawPath: "",
        query: "",
        clientHost: "",
        clientPort: "",
        serverHost: "",
        serverPort: "",
        headers: [],
      },
      null,
      true,
    );
    expect(request.length - HEADER_SIZE - 8).toBe(fixedBytes("REQUEST")); // 8 NULs
    expect(encodeResponse(1, 200, [], null, true).length - HEADER_SIZE).toBe(
      fixedBytes("RESPONSE"),
    );
    expect(encodeWindow(1, 1).length - HEADER_SIZE).toBe(fixedBytes("WINDOW"));
    expect(encodeReset(1, 0).length - HEADER_SIZE).toBe(fixedBytes("RESET"));
    expect(encodeClose(1, 1000).length - HEADER_SIZE).toBe(fixedBytes("CLOSE"));
    expect(encodeMessage(1, 1, new Uint8Array(0), true).length - HEADER_SIZE).toBe(
      fixedBytes("MESSAGE"),
    );
    expect(encodeContinue(1).length - HEADER_SIZE).toBe(fixedBytes("CONTINUE"));
    expect(encodeHello(1, 2).length - HEADER_SIZE).toBe(fixedBytes("HELLO"));
    expect(encodeShutdown(0).length - HEADER_SIZE).toBe(fixedBytes("SHUTDOWN"));
    // HELLO's fields in the spec's order: u16 version, u32 pid, u16 slot, u16 generation.
    expect(decodeHello(hexBytes("00010000abcd00070009"))).toEqual({
      version: 1,
      pid: 0xabcd,
      slot: 7,
      generation: 9,
    });
  });

  test("the vectors cover every frame type", () => {
    const types = new Set(VALID.flatMap((v) => (v.frames ?? []).map((f) => f.type)));
    expect([...types].sort((a, b) => a - b)).toEqual(
      Object.values(FrameType).sort((a, b) => a - b),
    );
  });
});
