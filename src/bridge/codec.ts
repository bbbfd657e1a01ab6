/**
 * Router side of the router–worker wire protocol, version 2 (docs/protocol.md).
 *
 * Sans-I/O: FrameDecoder turns bytes into frames, the encode* functions turn frames into bytes.
 * Head strings are "binary" (latin1) strings, one char per byte, because HTTP field values may
 * carry obs-text bytes 0x80–0xFF (RFC 9110 §5.5) that are not UTF-8.
 */

export const VERSION = 2;
export const HEADER_SIZE = 10;
export const MAX_PAYLOAD = 16 * 1024 * 1024;
export const INITIAL_WINDOW = 262144;
export const MAX_WINDOW = 2 ** 31 - 1;

export const FrameType = {
  REQUEST: 0x01,
  BODY: 0x02,
  RESPONSE: 0x03,
  WINDOW: 0x04,
  RESET: 0x05,
  CONTINUE: 0x06,
  MESSAGE: 0x07,
  CLOSE: 0x08,
  HELLO: 0x10,
  READY: 0x11,
  SHUTDOWN: 0x12,
  PING: 0x13,
  PONG: 0x14,
} as const;

export const FLAG_END = 0x01;
/** On REQUEST only: the request expects 100-continue (docs/protocol.md, "Expect: 100-continue"). */
export const FLAG_CONTINUE = 0x02;

/** MESSAGE kinds (docs/protocol.md, "WebSocket streams"). */
export const MessageKind = { TEXT: 1, BINARY: 2 } as const;

export const ResetCode = { CLIENT_GONE: 0, APP_ERROR: 1, PROTOCOL: 2 } as const;

/** The peer broke docs/protocol.md; the receiver closes the socket. */
export class ProtocolError extends Error {
  readonly code = "PROTOCOL_ERROR";

  constructor(message = "peer broke the router-worker protocol") {
    super(message);
    this.name = "ProtocolError";
  }
}

export type FrameSink = (type: number, flags: number, stream: number, payload: Uint8Array) => void;

/** 1 for a frame type in the spec's table, 2 for a control type, 0 otherwise. */
const KIND = new Uint8Array(256);
for (const t of Object.values(FrameType)) KIND[t] = t >= FrameType.HELLO ? 2 : 1;

// Buffer's latin1 helpers work on any Uint8Array and are the fastest way between bytes and
// binary strings in Bun (TextDecoder("latin1") is really windows-1252). Not in @types/node.
type Latin1Slice = (this: Uint8Array, start: number, end: number) => string;
const latin1Slice = (Buffer.prototype as unknown as { latin1Slice: Latin1Slice }).latin1Slice;

const utf8Decoder = new TextDecoder();
const utf8Encoder = new TextEncoder();
const EMPTY = new Uint8Array(0);

/**
 * Frames at least this big are allocated without zero-filling (Buffer.allocUnsafe): measured in
 * Bun 1.4, that is ~40% faster from 4 KiB up (64 KiB: 3.5 µs vs 5.4 µs) and slower below it.
 */
const UNZEROED_FROM = 4096;

/** A buffer for a frame whose every byte the caller writes. */
function allocFrame(size: number): Uint8Array {
  return size >= UNZEROED_FROM ? Buffer.allocUnsafe(size) : new Uint8Array(size);
}

/** Pending buffers up to this size are kept for the next partial frame; bigger ones are dropped. */
const KEEP_PENDING = 64 * 1024;

function u32(b: Uint8Array, o: number): number {
  return (
    (b[o] as number) * 0x1000000 +
    (((b[o + 1] as number) << 16) | ((b[o + 2] as number) << 8) | (b[o + 3] as number))
  );
}

function u16(b: Uint8Array, o: number): number {
  return ((b[o] as number) << 8) | (b[o + 1] as number);
}

function putU32(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 24;
  b[o + 1] = v >>> 16;
  b[o + 2] = v >>> 8;
  b[o + 3] = v;
}

function putHeader(b: Uint8Array, length: number, type: number, flags: number, stream: number) {
  putU32(b, 0, length);
  b[4] = type;
  b[5] = flags;
  putU32(b, 6, stream);
}

function badHeader(length: number, type: number): never {
  if (length > MAX_PAYLOAD) {
    throw new ProtocolError(`peer sent frame length ${length} > MAX_PAYLOAD ${MAX_PAYLOAD}`);
  }
  throw new ProtocolError(`peer sent unknown frame type 0x${type.toString(16).padStart(2, "0")}`);
}

/** Splits a byte stream into frames; keeps a partial frame until the rest arrives. */
export class FrameDecoder {
  /** Holds the partial frame (header included); whole frames in a chunk never touch it. */
  #pending: Uint8Array = EMPTY;
  #have = 0;
  /** Size of the partial frame once its header is complete, else 0. */
  #need = 0;

  /** Bytes held back as the start of an incomplete frame. */
  get buffered(): number {
    return this.#have;
  }

  /**
   * Calls sink for every frame completed by data. The payload may be a view into data or into
   * the decoder's own buffer: it is valid only during the call. Throws ProtocolError on a bad
   * frame header; after that the decoder (like the socket) is not to be used again.
   */
  feed(data: Uint8Array, sink: FrameSink): void {
    const size = data.length;
    let off = this.#have > 0 ? this.#complete(data, sink) : 0;
    while (size - off >= HEADER_SIZE) {
      const length = u32(data, off);
      const type = data[off + 4] as number;
      if (length > MAX_PAYLOAD || KIND[type] === 0) badHeader(length, type);
      const start = off + HEADER_SIZE;
      const end = start + length;
      if (end > size) break;
      sink(type, data[off + 5] as number, u32(data, off + 6), data.subarray(start, end));
      off = end;
    }
    if (off < size) this.#stash(data, off);
  }

  /** Keeps data[off:], the start of a frame, until the rest of it arrives. */
  #stash(data: Uint8Array, off: number): void {
    const rest = data.length - off;
    const need = rest >= HEADER_SIZE ? HEADER_SIZE + u32(data, off) : 0;
    const capacity = Math.max(need, HEADER_SIZE);
    if (this.#pending.length < capacity) {
      this.#pending = new Uint8Array(Math.max(need, KEEP_PENDING));
    }
    this.#pending.set(data.subarray(off), 0);
    this.#have = rest;
    this.#need = need;
  }

  /** Extends the partial frame from data; returns how many bytes of data were used. */
  #complete(data: Uint8Array, sink: FrameSink): number {
    let pending = this.#pending;
    let have = this.#have;
    let off = 0;
    if (this.#need === 0) {
      const take = Math.min(HEADER_SIZE - have, data.length);
      for (; off < take; off++) pending[have++] = data[off] as number;
      if (have < HEADER_SIZE) {
        this.#have = have;
        return off;
      }
      const length = u32(pending, 0);
      const type = pending[4] as number;
      if (length > MAX_PAYLOAD || KIND[type] === 0) badHeader(length, type);
      const need = HEADER_SIZE + length;
      if (pending.length < need) {
        const grown = new Uint8Array(need);
        grown.set(pending.subarray(0, HEADER_SIZE));
        this.#pending = pending = grown;
      }
      this.#need = need;
    }
    const need = this.#need;
    const take = Math.min(need - have, data.length - off);
    if (take > 0) {
      pending.set(off === 0 && take === data.length ? data : data.subarray(off, off + take), have);
      have += take;
      off += take;
    }
    if (have < need) {
      this.#have = have;
      return off;
    }
    // Reset first, so the decoder is consistent even if the sink throws.
    this.#have = 0;
    this.#need = 0;
    if (pending.length > KEEP_PENDING) this.#pending = EMPTY;
    sink(pending[4] as number, pending[5] as number, u32(pending, 6), pending.subarray(10, need));
    return off;
  }
}

/** The fixed fields of a request head (docs/protocol.md, "Request head"), as binary strings. */
export interface RequestHeadFields {
  method: string;
  scheme: string;
  httpVersion: string;
  rawPath: string;
  query: string;
  clientHost: string;
  clientPort: string;
  serverHost: string;
  serverPort: string;
  /** Flat [name, value, ...]; the encoder lowercases the names. */
  headers: string[];
}

/** Writes a binary string at b[o]; returns the offset after it. */
function putString(b: Uint8Array, o: number, s: string): number {
  const n = s.length;
  for (let i = 0; i < n; i++) b[o + i] = s.charCodeAt(i);
  return o + n;
}

/** Like putString, lowercasing ASCII A–Z only: names are tokens (RFC 9110 §5.1). */
function putLowerString(b: Uint8Array, o: number, s: string): number {
  const n = s.length;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    b[o + i] = c >= 0x41 && c <= 0x5a ? c | 0x20 : c;
  }
  return o + n;
}

/**
 * A REQUEST frame: head, then the first body bytes. Strings are binary strings (chars above
 * U+00FF are truncated to their low byte); the caller has already refused NUL and other control
 * bytes in the head (docs/protocol.md, "Head blocks").
 */
export function encodeRequest(
  stream: number,
  head: RequestHeadFields,
  body: Uint8Array | null,
  end: boolean,
  expectContinue = false,
): Uint8Array {
  const headers = head.headers;
  const count = headers.length;
  if (count & 1) throw new TypeError("request headers must be flat [name, value, ...] pairs");
  let headLength =
    head.method.length +
    head.scheme.length +
    head.httpVersion.length +
    head.rawPath.length +
    head.query.length +
    head.clientHost.length +
    head.clientPort.length +
    head.serverHost.length +
    head.serverPort.length +
    8 +
    count;
  for (let i = 0; i < count; i++) headLength += (headers[i] as string).length;
  const bodyLength = body === null ? 0 : body.length;
  const payloadLength = 4 + headLength + bodyLength;
  const b = allocFrame(HEADER_SIZE + payloadLength);
  const flags = (end ? FLAG_END : 0) | (expectContinue ? FLAG_CONTINUE : 0);
  putHeader(b, payloadLength, FrameType.REQUEST, flags, stream);
  putU32(b, 10, headLength);
  let o = putString(b, 14, head.method);
  b[o++] = 0;
  o = putString(b, o, head.scheme);
  b[o++] = 0;
  o = putString(b, o, head.httpVersion);
  b[o++] = 0;
  o = putString(b, o, head.rawPath);
  b[o++] = 0;
  o = putString(b, o, head.query);
  b[o++] = 0;
  o = putString(b, o, head.clientHost);
  b[o++] = 0;
  o = putString(b, o, head.clientPort);
  b[o++] = 0;
  o = putString(b, o, head.serverHost);
  b[o++] = 0;
  o = putString(b, o, head.serverPort);
  for (let i = 0; i < count; i += 2) {
    b[o++] = 0;
    o = putLowerString(b, o, headers[i] as string);
    b[o++] = 0;
    o = putString(b, o, headers[i + 1] as string);
  }
  if (body !== null && bodyLength > 0) b.set(body, o);
  return b;
}

/** A RESPONSE frame with the headers as given (binary strings, not lowercased). For tests. */
export function encodeResponse(
  stream: number,
  status: number,
  headers: string[],
  body: Uint8Array | null,
  end: boolean,
): Uint8Array {
  const count = headers.length;
  if (count & 1) throw new TypeError("response headers must be flat [name, value, ...] pairs");
  let headLength = count > 0 ? count - 1 : 0;
  for (let i = 0; i < count; i++) headLength += (headers[i] as string).length;
  const bodyLength = body === null ? 0 : body.length;
  const payloadLength = 6 + headLength + bodyLength;
  const b = new Uint8Array(HEADER_SIZE + payloadLength);
  putHeader(b, payloadLength, FrameType.RESPONSE, end ? FLAG_END : 0, stream);
  b[10] = status >>> 8;
  b[11] = status;
  putU32(b, 12, headLength);
  let o = 16;
  for (let i = 0; i < count; i++) o = putString(b, i > 0 ? o + 1 : o, headers[i] as string);
  if (body !== null && bodyLength > 0) b.set(body, o);
  return b;
}

/** A BODY frame. */
export function encodeBody(stream: number, data: Uint8Array, end: boolean): Uint8Array {
  const b = allocFrame(HEADER_SIZE + data.length);
  putHeader(b, data.length, FrameType.BODY, end ? FLAG_END : 0, stream);
  b.set(data, HEADER_SIZE);
  return b;
}

/** A WINDOW frame granting increment more body bytes on stream. */
export function encodeWindow(stream: number, increment: number): Uint8Array {
  const b = new Uint8Array(HEADER_SIZE + 4);
  putHeader(b, 4, FrameType.WINDOW, 0, stream);
  putU32(b, 10, increment);
  return b;
}

/** A RESET frame; reason is sent as UTF-8. */
export function encodeReset(stream: number, code: number, reason = ""): Uint8Array {
  return encodeCodeReason(FrameType.RESET, stream, code, reason);
}

/** A CLOSE frame on a WebSocket stream; reason is sent as UTF-8. */
export function encodeClose(stream: number, code: number, reason = ""): Uint8Array {
  return encodeCodeReason(FrameType.CLOSE, stream, code, reason);
}

function encodeCodeReason(type: number, stream: number, code: number, reason: string) {
  const text = reason === "" ? EMPTY : utf8Encoder.encode(reason);
  const b = new Uint8Array(HEADER_SIZE + 2 + text.length);
  putHeader(b, 2 + text.length, type, 0, stream);
  b[10] = code >>> 8;
  b[11] = code;
  b.set(text, 12);
  return b;
}

/** A MESSAGE frame: one part of a WebSocket message (END on its last part). */
export function encodeMessage(
  stream: number,
  kind: number,
  data: Uint8Array,
  end: boolean,
): Uint8Array {
  const b = allocFrame(HEADER_SIZE + 1 + data.length);
  putHeader(b, 1 + data.length, FrameType.MESSAGE, end ? FLAG_END : 0, stream);
  b[HEADER_SIZE] = kind;
  b.set(data, HEADER_SIZE + 1);
  return b;
}

/** A CONTINUE frame (worker to router). For tests. */
export function encodeContinue(stream: number): Uint8Array {
  const b = new Uint8Array(HEADER_SIZE);
  putHeader(b, 0, FrameType.CONTINUE, 0, stream);
  return b;
}

/** A control frame on stream 0: SHUTDOWN, PING, PONG (or READY, for tests). */
export function encodeControl(type: number, payload: Uint8Array = EMPTY): Uint8Array {
  if (KIND[type] !== 2 || type === FrameType.HELLO) {
    throw new RangeError(`0x${type.toString(16)} is not a control frame type; use its encoder`);
  }
  const b = new Uint8Array(HEADER_SIZE + payload.length);
  putHeader(b, payload.length, type, 0, 0);
  b.set(payload, HEADER_SIZE);
  return b;
}

/** The HELLO frame a worker sends first, carrying this module's VERSION. For tests. */
export function encodeHello(pid: number, slot: number, generation = 0): Uint8Array {
  const b = new Uint8Array(HEADER_SIZE + 10);
  putHeader(b, 10, FrameType.HELLO, 0, 0);
  b[10] = VERSION >>> 8;
  b[11] = VERSION;
  putU32(b, 12, pid);
  b[16] = slot >>> 8;
  b[17] = slot;
  b[18] = generation >>> 8;
  b[19] = generation;
  return b;
}

/** SHUTDOWN reasons (docs/protocol.md, "Control frames"). */
export const ShutdownReason = { STOP: 0, RECYCLE: 1 } as const;

/** A SHUTDOWN frame with its reason. */
export function encodeShutdown(reason: number): Uint8Array {
  const b = new Uint8Array(HEADER_SIZE + 1);
  putHeader(b, 1, FrameType.SHUTDOWN, 0, 0);
  b[10] = reason;
  return b;
}

/** A SHUTDOWN payload's reason. For tests. */
export function decodeShutdown(payload: Uint8Array): number {
  if (payload.length !== 1) {
    throw new ProtocolError(`peer sent a SHUTDOWN payload of ${payload.length} bytes, not 1`);
  }
  return payload[0] as number;
}

/** Splits a head block into its fields; an empty block has none. */
function splitHead(payload: Uint8Array, start: number, end: number): string[] {
  return start === end ? [] : latin1Slice.call(payload, start, end).split("\0");
}

export interface DecodedResponse {
  status: number;
  /** Flat [name, value, ...] as binary strings, exactly as the application gave them. */
  headers: string[];
  /** A view into the payload. */
  body: Uint8Array;
}

/** A RESPONSE payload. Throws ProtocolError when it is malformed. */
export function decodeResponse(payload: Uint8Array): DecodedResponse {
  const size = payload.length;
  if (size < 6) {
    throw new ProtocolError(
      `peer sent a RESPONSE payload too short for status and head_length (${size} bytes)`,
    );
  }
  const headLength = u32(payload, 2);
  const end = 6 + headLength;
  if (end > size) {
    throw new ProtocolError(
      `peer sent RESPONSE head_length ${headLength} beyond the payload (${size - 6} bytes)`,
    );
  }
  const headers = splitHead(payload, 6, end);
  if (headers.length & 1) {
    throw new ProtocolError(`peer sent a RESPONSE head of ${headers.length} fields, an odd number`);
  }
  return { status: u16(payload, 0), headers, body: payload.subarray(end) };
}

/** A REQUEST payload: the 9 fixed fields, then header name, value pairs. For tests. */
export function decodeRequest(payload: Uint8Array): { fields: string[]; body: Uint8Array } {
  const size = payload.length;
  if (size < 4) {
    throw new ProtocolError(
      `peer sent a REQUEST payload too short for head_length (${size} bytes)`,
    );
  }
  const headLength = u32(payload, 0);
  const end = 4 + headLength;
  if (end > size) {
    throw new ProtocolError(
      `peer sent REQUEST head_length ${headLength} beyond the payload (${size - 4} bytes)`,
    );
  }
  const fields = splitHead(payload, 4, end);
  if (fields.length < 9 || !(fields.length & 1)) {
    throw new ProtocolError(
      `peer sent a REQUEST head of ${fields.length} fields, not 9 + 2 per header`,
    );
  }
  return { fields, body: payload.subarray(end) };
}

/** A WINDOW payload's increment. Throws ProtocolError when it is malformed or over MAX_WINDOW. */
export function decodeWindow(payload: Uint8Array): number {
  if (payload.length !== 4) {
    throw new ProtocolError(`peer sent a WINDOW payload of ${payload.length} bytes, not 4`);
  }
  const increment = u32(payload, 0);
  if (increment > MAX_WINDOW) {
    // The window this lands on is at least the increment, so it is over MAX_WINDOW.
    throw new ProtocolError(`peer sent WINDOW increment ${increment} > MAX_WINDOW ${MAX_WINDOW}`);
  }
  return increment;
}

/** A RESET payload; a malformed UTF-8 reason is decoded with U+FFFD. */
export function decodeReset(payload: Uint8Array): { code: number; reason: string } {
  return decodeCodeReason("RESET", payload);
}

/** A CLOSE payload; a malformed UTF-8 reason is decoded with U+FFFD. */
export function decodeClose(payload: Uint8Array): { code: number; reason: string } {
  return decodeCodeReason("CLOSE", payload);
}

/** RESET and CLOSE share their layout: `u16 code`, then a UTF-8 reason. */
function decodeCodeReason(frame: string, payload: Uint8Array): { code: number; reason: string } {
  if (payload.length < 2) {
    throw new ProtocolError(
      `peer sent a ${frame} payload too short for code (${payload.length} bytes)`,
    );
  }
  const reason = payload.length === 2 ? "" : utf8Decoder.decode(payload.subarray(2));
  return { code: u16(payload, 0), reason };
}

/** A MESSAGE payload: its kind and a view of its data. Throws ProtocolError when malformed. */
export function decodeMessage(payload: Uint8Array): { kind: number; data: Uint8Array } {
  const kind = payload.length > 0 ? (payload[0] as number) : 0;
  if (kind !== MessageKind.TEXT && kind !== MessageKind.BINARY) {
    throw new ProtocolError(
      payload.length === 0
        ? "peer sent an empty MESSAGE payload (no kind byte)"
        : `peer sent MESSAGE kind ${kind}, not 1 (text) or 2 (binary)`,
    );
  }
  return { kind, data: payload.subarray(1) };
}

/** A HELLO payload. Throws ProtocolError when it is not 10 bytes. */
export function decodeHello(payload: Uint8Array): {
  version: number;
  pid: number;
  slot: number;
  generation: number;
} {
  if (payload.length !== 10) {
    // A worker of another version may send another size: report the version if it is there.
    const version = payload.length >= 2 ? ` (version ${u16(payload, 0)})` : "";
    throw new ProtocolError(
      `peer sent a HELLO payload of ${payload.length} bytes, not 10${version}`,
    );
  }
  return {
    version: u16(payload, 0),
    pid: u32(payload, 2),
    slot: u16(payload, 6),
    generation: u16(payload, 8),
  };
}
