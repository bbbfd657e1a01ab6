// Helpers shared by the src/http2 tests (not imported by the codec itself): a client that
// builds frames, and a harness that runs an H2Connection and reads back what it wrote.

import { H2Connection, type H2Event, type H2Options } from "./connection.ts";
import { CLIENT_PREFACE, Flag, FRAME_HEADER_SIZE, FrameType, readFrameHeader } from "./frames.ts";
import { HpackDecoder } from "./hpack.ts";

export { byteByByte, concat, hex, prng, randomSplit, toHex } from "../ws/test-util.ts";

export const PREFACE = CLIENT_PREFACE;

const latin1 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, "latin1"));

/** One frame: 9-byte header (§4.1) and payload; `length` overrides the announced length. */
export function frame(
  type: number,
  flags: number,
  stream: number,
  payload: Uint8Array | readonly number[] | string = [],
  length?: number,
): Uint8Array {
  const body =
    typeof payload === "string"
      ? latin1(payload)
      : payload instanceof Uint8Array
        ? payload
        : Uint8Array.from(payload);
  const len = length ?? body.length;
  const out = new Uint8Array(FRAME_HEADER_SIZE + body.length);
  out[0] = len >>> 16;
  out[1] = (len >>> 8) & 0xff;
  out[2] = len & 0xff;
  out[3] = type;
  out[4] = flags;
  out[5] = (stream >>> 24) & 0xff;
  out[6] = (stream >>> 16) & 0xff;
  out[7] = (stream >>> 8) & 0xff;
  out[8] = stream & 0xff;
  out.set(body, FRAME_HEADER_SIZE);
  return out;
}

function u32(v: number): number[] {
  return [(v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff];
}

export function settings(...params: Array<[number, number]>): Uint8Array {
  const body: number[] = [];
  for (const [id, value] of params) body.push(id >>> 8, id & 0xff, ...u32(value));
  return frame(FrameType.SETTINGS, 0, 0, body);
}

export function settingsAck(): Uint8Array {
  return frame(FrameType.SETTINGS, Flag.ACK, 0);
}

export function ping(data = "12345678", ack = false): Uint8Array {
  return frame(FrameType.PING, ack ? Flag.ACK : 0, 0, data);
}

export function rst(stream: number, code: number): Uint8Array {
  return frame(FrameType.RST_STREAM, 0, stream, u32(code));
}

export function windowUpdate(stream: number, increment: number): Uint8Array {
  return frame(FrameType.WINDOW_UPDATE, 0, stream, u32(increment));
}

export function goaway(last: number, code: number, debug = ""): Uint8Array {
  return frame(FrameType.GOAWAY, 0, 0, [...u32(last), ...u32(code), ...latin1(debug)]);
}

export function priority(stream: number, dependency: number, weight = 16): Uint8Array {
  return frame(FrameType.PRIORITY, 0, stream, [...u32(dependency), weight - 1]);
}

/** A header block of literals without indexing, no Huffman (RFC 7541 §6.2.2). */
export function block(fields: readonly string[]): Uint8Array {
  const out: number[] = [];
  const str = (s: string): void => {
    intPrefix(out, s.length, 7, 0);
    for (let i = 0; i < s.length; i++) out.push(s.charCodeAt(i) & 0xff);
  };
  for (let i = 0; i < fields.length; i += 2) {
    out.push(0x00);
    str(fields[i] as string);
    str(fields[i + 1] as string);
  }
  return Uint8Array.from(out);
}

function intPrefix(out: number[], value: number, bits: number, first: number): void {
  const mask = (1 << bits) - 1;
  if (value < mask) {
    out.push(first | value);
    return;
  }
  out.push(first | mask);
  let rest = value - mask;
  while (rest >= 128) {
    out.push((rest & 0x7f) | 0x80);
    rest = Math.floor(rest / 128);
  }
  out.push(rest);
}

export const GET = [":method", "GET", ":scheme", "https", ":path", "/", ":authority", "a.test"];

export function post(path = "/upload", extra: string[] = []): string[] {
  return [":method", "POST", ":scheme", "https", ":path", path, ":authority", "a.test", ...extra];
}

export interface HeadersOptions {
  endStream?: boolean;
  endHeaders?: boolean;
  pad?: number;
  priority?: { dependency: number; weight?: number; exclusive?: boolean };
}

/** A HEADERS frame carrying `fields` (or a raw block) on `stream`. */
export function headers(
  stream: number,
  fields: readonly string[] | Uint8Array,
  o: HeadersOptions = {},
): Uint8Array {
  const fragment = fields instanceof Uint8Array ? fields : block(fields);
  let flags = 0;
  if (o.endStream === true) flags |= Flag.END_STREAM;
  if (o.endHeaders !== false) flags |= Flag.END_HEADERS;
  const body: number[] = [];
  if (o.pad !== undefined) {
    flags |= Flag.PADDED;
    body.push(o.pad);
  }
  if (o.priority !== undefined) {
    flags |= Flag.PRIORITY;
    const dep = u32(o.priority.dependency);
    if (o.priority.exclusive === true) dep[0] = (dep[0] as number) | 0x80;
    body.push(...dep, (o.priority.weight ?? 16) - 1);
  }
  body.push(...fragment);
  for (let i = 0; i < (o.pad ?? 0); i++) body.push(0);
  return frame(FrameType.HEADERS, flags, stream, body);
}

export function continuation(
  stream: number,
  fragment: Uint8Array,
  endHeaders: boolean,
): Uint8Array {
  return frame(FrameType.CONTINUATION, endHeaders ? Flag.END_HEADERS : 0, stream, fragment);
}

/** A DATA frame; `pad` adds a Pad Length byte and that many zero bytes (§6.1). */
export function data(
  stream: number,
  body: Uint8Array | string,
  endStream = false,
  pad?: number,
): Uint8Array {
  const bytes = typeof body === "string" ? latin1(body) : body;
  let flags = endStream ? Flag.END_STREAM : 0;
  if (pad === undefined) return frame(FrameType.DATA, flags, stream, bytes);
  flags |= Flag.PADDED;
  const payload = new Uint8Array(1 + bytes.length + pad);
  payload[0] = pad;
  payload.set(bytes, 1);
  return frame(FrameType.DATA, flags, stream, payload);
}

/** A frame the server wrote, with HEADERS/CONTINUATION blocks already decoded. */
export interface OutFrame {
  type: number;
  flags: number;
  stream: number;
  payload: Uint8Array;
  /** Decoded fields of a complete HEADERS (+ CONTINUATION) block. */
  fields?: string[];
}

/**
 * Runs an H2Connection the way the router will: a sink that records what is written (and may
 * report backpressure), events drained after every call.
 */
export class Harness {
  readonly conn: H2Connection;
  readonly events: H2Event[] = [];
  readonly writes: Uint8Array[] = [];
  sinkAccepts = true;
  #pending: Uint8Array = new Uint8Array(0);
  #decoder = new HpackDecoder();
  #block: number[] | null = null;
  #blockFrame: OutFrame | null = null;

  constructor(options: Partial<H2Options> = {}) {
    this.conn = new H2Connection(options, {
      write: (bytes) => {
        this.writes.push(bytes.slice());
        return this.sinkAccepts;
      },
    });
  }

  /** Feeds each piece (then overwrites it: the connection must not keep a view). */
  feed(...pieces: Uint8Array[]): this {
    for (const p of pieces) {
      this.conn.feed(p);
      p.fill(0xee);
      this.drain();
    }
    return this;
  }

  drain(): H2Event[] {
    const got: H2Event[] = [];
    for (;;) {
      const ev = this.conn.next();
      if (ev === null) break;
      got.push(ev);
      this.events.push(ev);
    }
    return got;
  }

  /** Takes the events collected so far. */
  takeEvents(): H2Event[] {
    return this.events.splice(0);
  }

  /** Parses everything written since the last call into frames. */
  frames(): OutFrame[] {
    let buf = this.#pending;
    for (const w of this.writes.splice(0)) {
      const joined = new Uint8Array(buf.length + w.length);
      joined.set(buf, 0);
      joined.set(w, buf.length);
      buf = joined;
    }
    const out: OutFrame[] = [];
    let at = 0;
    while (buf.length - at >= FRAME_HEADER_SIZE) {
      const h = readFrameHeader(buf, at);
      if (buf.length - at - FRAME_HEADER_SIZE < h.length) break;
      const payload = buf.slice(at + FRAME_HEADER_SIZE, at + FRAME_HEADER_SIZE + h.length);
      at += FRAME_HEADER_SIZE + h.length;
      const f: OutFrame = { type: h.type, flags: h.flags, stream: h.stream, payload };
      if (h.type === FrameType.HEADERS || h.type === FrameType.CONTINUATION) {
        if (h.type === FrameType.HEADERS) {
          this.#block = [];
          this.#blockFrame = f;
          out.push(f);
        }
        this.#block?.push(...payload);
        if ((h.flags & Flag.END_HEADERS) !== 0 && this.#blockFrame !== null) {
          this.#blockFrame.fields = this.#decoder.decode(Uint8Array.from(this.#block ?? []));
          this.#block = null;
          this.#blockFrame = null;
        }
        continue;
      }
      out.push(f);
    }
    this.#pending = buf.slice(at);
    return out;
  }

  /** Bytes written since the last frames() call, not yet parsed. */
  get pendingBytes(): number {
    return this.#pending.length + this.writes.reduce((n, w) => n + w.length, 0);
  }
}

/** A frame summary that reads well in test expectations. */
export function show(f: OutFrame): string {
  const u32at = (i: number): number =>
    ((f.payload[i] as number) * 0x1000000 +
      (((f.payload[i + 1] as number) << 16) |
        ((f.payload[i + 2] as number) << 8) |
        (f.payload[i + 3] as number))) >>>
    0;
  switch (f.type) {
    case FrameType.DATA:
      return `DATA ${f.stream} ${f.payload.length}${(f.flags & Flag.END_STREAM) !== 0 ? " END" : ""}`;
    case FrameType.HEADERS:
      return `HEADERS ${f.stream} ${JSON.stringify(f.fields)}${(f.flags & Flag.END_STREAM) !== 0 ? " END" : ""}`;
    case FrameType.RST_STREAM:
      return `RST ${f.stream} ${u32at(0)}`;
    case FrameType.SETTINGS:
      return (f.flags & Flag.ACK) !== 0 ? "SETTINGS ACK" : `SETTINGS ${f.payload.length / 6}`;
    case FrameType.PING:
      return `PING${(f.flags & Flag.ACK) !== 0 ? " ACK" : ""} ${Buffer.from(f.payload).toString("latin1")}`;
    case FrameType.GOAWAY:
      return `GOAWAY ${u32at(0) & 0x7fffffff} ${u32at(4)}`;
    case FrameType.WINDOW_UPDATE:
      return `WINDOW_UPDATE ${f.stream} ${u32at(0)}`;
    default:
      return `TYPE${f.type} ${f.stream}`;
  }
}
