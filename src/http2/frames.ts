// HTTP/2 frames (RFC 9113 §4, §6): the 9-byte frame header, the payload layouts of every frame
// type, and serializers for the frames a server sends. No state: connection.ts decides what a
// frame means for the connection.

import { connectionError, ErrorCode, H2Error, streamError } from "./errors.ts";

export { ErrorCode, H2Error };

/** Frame types (RFC 9113 §6). */
export const FrameType = {
  DATA: 0x0,
  HEADERS: 0x1,
  PRIORITY: 0x2,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PUSH_PROMISE: 0x5,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;

/** Frame flags (RFC 9113 §6); ACK and END_STREAM share bit 0x1 on different frame types. */
export const Flag = {
  END_STREAM: 0x1,
  ACK: 0x1,
  END_HEADERS: 0x4,
  PADDED: 0x8,
  PRIORITY: 0x20,
} as const;

/** SETTINGS parameters (RFC 9113 §6.5.2; 8 is RFC 8441 §3, 9 is RFC 9218 §2.1). */
export const SettingId = {
  HEADER_TABLE_SIZE: 0x1,
  ENABLE_PUSH: 0x2,
  MAX_CONCURRENT_STREAMS: 0x3,
  INITIAL_WINDOW_SIZE: 0x4,
  MAX_FRAME_SIZE: 0x5,
  MAX_HEADER_LIST_SIZE: 0x6,
  ENABLE_CONNECT_PROTOCOL: 0x8,
  NO_RFC7540_PRIORITIES: 0x9,
} as const;

export const FRAME_HEADER_SIZE = 9;
/** §4.2: SETTINGS_MAX_FRAME_SIZE starts at 2^14 and may be raised up to 2^24-1. */
export const DEFAULT_MAX_FRAME_SIZE = 16384;
export const MAX_FRAME_SIZE_LIMIT = 0xffffff;
/** §6.9.1: a flow-control window may not exceed 2^31-1. */
export const MAX_WINDOW = 0x7fffffff;
/** §6.9.2: the initial window of streams and of the connection. */
export const DEFAULT_WINDOW = 65535;
/** RFC 7541 §4.2 / RFC 9113 §6.5.2: SETTINGS_HEADER_TABLE_SIZE starts at 4096. */
export const DEFAULT_HEADER_TABLE_SIZE = 4096;

/** §3.4: the client connection preface, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n". */
export const CLIENT_PREFACE = new Uint8Array(
  Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1"),
);

/** The fields of a frame header (§4.1). */
export interface FrameHeader {
  length: number;
  type: number;
  flags: number;
  stream: number;
}

/** Reads the 9-byte frame header at b[at]; the reserved bit of the stream id is ignored (§4.1). */
export function readFrameHeader(b: Uint8Array, at: number): FrameHeader {
  return {
    length: ((b[at] as number) << 16) | ((b[at + 1] as number) << 8) | (b[at + 2] as number),
    type: b[at + 3] as number,
    flags: b[at + 4] as number,
    stream: readU31(b, at + 5),
  };
}

/** Writes a frame header at out[at]; the reserved bit is sent as 0 (§4.1). */
export function writeFrameHeader(
  out: Uint8Array,
  at: number,
  length: number,
  type: number,
  flags: number,
  stream: number,
): void {
  out[at] = length >>> 16;
  out[at + 1] = (length >>> 8) & 0xff;
  out[at + 2] = length & 0xff;
  out[at + 3] = type;
  out[at + 4] = flags;
  writeU32(out, at + 5, stream & MAX_WINDOW);
}

export function readU31(b: Uint8Array, at: number): number {
  return (
    (((b[at] as number) & 0x7f) << 24) |
    ((b[at + 1] as number) << 16) |
    ((b[at + 2] as number) << 8) |
    (b[at + 3] as number)
  );
}

export function readU32(b: Uint8Array, at: number): number {
  return (
    (b[at] as number) * 0x1000000 +
    (((b[at + 1] as number) << 16) | ((b[at + 2] as number) << 8) | (b[at + 3] as number))
  );
}

function writeU32(out: Uint8Array, at: number, v: number): void {
  out[at] = (v >>> 24) & 0xff;
  out[at + 1] = (v >>> 16) & 0xff;
  out[at + 2] = (v >>> 8) & 0xff;
  out[at + 3] = v & 0xff;
}

// ---- payload layouts of received frames ----

/**
 * Strips the padding of a DATA or HEADERS payload (§6.1, §6.2): returns the end of the content,
 * which starts at 1 when PADDED (plus `fixed` more bytes of fixed fields). A payload too short
 * for its Pad Length and fixed fields is a FRAME_SIZE_ERROR (§4.2); padding longer than what
 * remains is a connection error PROTOCOL_ERROR.
 */
export function paddedEnd(flags: number, payload: Uint8Array, fixed = 0): number {
  const padded = (flags & Flag.PADDED) !== 0;
  const before = fixed + (padded ? 1 : 0);
  if (payload.length < before) {
    throw connectionError(ErrorCode.FRAME_SIZE_ERROR, "Frame too short for its fixed fields");
  }
  if (!padded) return payload.length;
  const pad = payload[0] as number;
  if (pad > payload.length - before) {
    throw connectionError(ErrorCode.PROTOCOL_ERROR, "Padding longer than the frame payload");
  }
  return payload.length - pad;
}

/** The stream dependency part of HEADERS (§6.2) and PRIORITY (§6.3) frames. */
export interface Priority {
  exclusive: boolean;
  dependency: number;
  weight: number; // 1-256
}

/** Where the field block fragment of a HEADERS payload lies, and its priority block if any. */
export interface HeadersPayload {
  start: number;
  end: number;
  priority: Priority | null;
}

/**
 * Parses a HEADERS payload (§6.2). A priority naming the stream itself is the caller's to
 * refuse (a stream error), after it has decoded the field block to keep HPACK in step.
 */
export function parseHeadersPayload(flags: number, payload: Uint8Array): HeadersPayload {
  const hasPriority = (flags & Flag.PRIORITY) !== 0;
  const end = paddedEnd(flags, payload, hasPriority ? 5 : 0);
  let start = (flags & Flag.PADDED) !== 0 ? 1 : 0;
  let priority: Priority | null = null;
  if (hasPriority) {
    priority = readPriority(payload, start);
    start += 5;
  }
  return { start, end, priority };
}

function readPriority(b: Uint8Array, at: number): Priority {
  return {
    exclusive: ((b[at] as number) & 0x80) !== 0,
    dependency: readU31(b, at),
    weight: (b[at + 4] as number) + 1,
  };
}

/** Parses a PRIORITY payload (§6.3): 5 bytes, else a stream error FRAME_SIZE_ERROR. */
export function parsePriority(stream: number, payload: Uint8Array): Priority {
  if (payload.length !== 5) {
    throw streamError(ErrorCode.FRAME_SIZE_ERROR, stream, "PRIORITY frame not 5 bytes long");
  }
  const priority = readPriority(payload, 0);
  // RFC 7540 §5.3.1, kept by RFC 9113 §5.3.2 for PRIORITY: a stream cannot depend on itself.
  if (priority.dependency === stream) {
    throw streamError(ErrorCode.PROTOCOL_ERROR, stream, "Stream depends on itself");
  }
  return priority;
}

/** The error code of a RST_STREAM payload (§6.4: exactly 4 bytes). */
export function parseRstStream(payload: Uint8Array): number {
  if (payload.length !== 4) {
    throw connectionError(ErrorCode.FRAME_SIZE_ERROR, "RST_STREAM frame not 4 bytes long");
  }
  return readU32(payload, 0);
}

/**
 * Calls `each(id, value)` for the parameters of a SETTINGS payload (§6.5.1: 6 bytes each,
 * else a connection error FRAME_SIZE_ERROR). Values are not checked here.
 */
export function forEachSetting(
  payload: Uint8Array,
  each: (id: number, value: number) => void,
): void {
  if (payload.length % 6 !== 0) {
    throw connectionError(ErrorCode.FRAME_SIZE_ERROR, "SETTINGS length not a multiple of 6");
  }
  for (let at = 0; at < payload.length; at += 6) {
    each(((payload[at] as number) << 8) | (payload[at + 1] as number), readU32(payload, at + 2));
  }
}

/** The fields of a GOAWAY payload (§6.8); `debug` is the opaque debug data as latin1. */
export interface Goaway {
  lastStreamId: number;
  code: number;
  debug: string;
}

/** Longest debug text kept from a peer's GOAWAY: it is for logs, not for memory. */
const MAX_DEBUG = 256;

export function parseGoaway(payload: Uint8Array): Goaway {
  if (payload.length < 8) {
    throw connectionError(ErrorCode.FRAME_SIZE_ERROR, "GOAWAY frame shorter than 8 bytes");
  }
  const debugEnd = Math.min(payload.length, 8 + MAX_DEBUG);
  return {
    lastStreamId: readU31(payload, 0),
    code: readU32(payload, 4),
    debug: Buffer.from(payload.buffer, payload.byteOffset + 8, debugEnd - 8).toString("latin1"),
  };
}

/** The increment of a WINDOW_UPDATE payload (§6.9: exactly 4 bytes; 0 is checked by the caller). */
export function parseWindowUpdate(payload: Uint8Array): number {
  if (payload.length !== 4) {
    throw connectionError(ErrorCode.FRAME_SIZE_ERROR, "WINDOW_UPDATE frame not 4 bytes long");
  }
  return readU31(payload, 0);
}

// ---- serializers for the frames a server sends ----

function frame(type: number, flags: number, stream: number, length: number): Uint8Array {
  const out = new Uint8Array(FRAME_HEADER_SIZE + length);
  writeFrameHeader(out, 0, length, type, flags, stream);
  return out;
}

/** A SETTINGS frame (§6.5) with [id, value] parameters in order. */
export function encodeSettings(params: ReadonlyArray<readonly [number, number]>): Uint8Array {
  const out = frame(FrameType.SETTINGS, 0, 0, params.length * 6);
  let at = FRAME_HEADER_SIZE;
  for (const [id, value] of params) {
    out[at] = id >>> 8;
    out[at + 1] = id & 0xff;
    writeU32(out, at + 2, value);
    at += 6;
  }
  return out;
}

/** §6.5.3: the acknowledgement of the peer's SETTINGS, an empty SETTINGS frame with ACK. */
export const SETTINGS_ACK: Uint8Array = frame(FrameType.SETTINGS, Flag.ACK, 0, 0);

/** A PING frame (§6.7) with its 8 bytes of opaque data. */
export function encodePing(data: Uint8Array, ack: boolean): Uint8Array {
  if (data.length !== 8) throw new RangeError("PING data must be 8 bytes");
  const out = frame(FrameType.PING, ack ? Flag.ACK : 0, 0, 8);
  out.set(data, FRAME_HEADER_SIZE);
  return out;
}

/** A GOAWAY frame (§6.8); `debug` is latin1 text, cut at 256 bytes. */
export function encodeGoaway(lastStreamId: number, code: number, debug = ""): Uint8Array {
  const text = debug.length > MAX_DEBUG ? debug.slice(0, MAX_DEBUG) : debug;
  const out = frame(FrameType.GOAWAY, 0, 0, 8 + text.length);
  writeU32(out, FRAME_HEADER_SIZE, lastStreamId & MAX_WINDOW);
  writeU32(out, FRAME_HEADER_SIZE + 4, code);
  for (let i = 0; i < text.length; i++) out[FRAME_HEADER_SIZE + 8 + i] = text.charCodeAt(i) & 0xff;
  return out;
}

/** A RST_STREAM frame (§6.4). */
export function encodeRstStream(stream: number, code: number): Uint8Array {
  const out = frame(FrameType.RST_STREAM, 0, stream, 4);
  writeU32(out, FRAME_HEADER_SIZE, code);
  return out;
}

/** A WINDOW_UPDATE frame (§6.9); the increment must be 1 to 2^31-1. */
export function encodeWindowUpdate(stream: number, increment: number): Uint8Array {
  if (!(increment >= 1 && increment <= MAX_WINDOW)) {
    throw new RangeError(`Invalid WINDOW_UPDATE increment ${increment}`);
  }
  const out = frame(FrameType.WINDOW_UPDATE, 0, stream, 4);
  writeU32(out, FRAME_HEADER_SIZE, increment);
  return out;
}

/**
 * A field block as one HEADERS frame followed by as many CONTINUATION frames as frames of at
 * most `maxFrameSize` bytes need (§6.2, §6.10), END_HEADERS on the last one, END_STREAM on the
 * HEADERS frame when `endStream` (§6.2: it belongs to HEADERS, not to CONTINUATION).
 */
export function encodeHeaders(
  stream: number,
  block: Uint8Array,
  endStream: boolean,
  maxFrameSize: number,
): Uint8Array {
  const frames = Math.max(1, Math.ceil(block.length / maxFrameSize));
  const out = new Uint8Array(block.length + frames * FRAME_HEADER_SIZE);
  let at = 0;
  for (let i = 0; i < frames; i++) {
    const from = i * maxFrameSize;
    const len = Math.min(maxFrameSize, block.length - from);
    const last = i === frames - 1;
    const type = i === 0 ? FrameType.HEADERS : FrameType.CONTINUATION;
    const flags = (last ? Flag.END_HEADERS : 0) | (i === 0 && endStream ? Flag.END_STREAM : 0);
    writeFrameHeader(out, at, len, type, flags, stream);
    out.set(block.subarray(from, from + len), at + FRAME_HEADER_SIZE);
    at += FRAME_HEADER_SIZE + len;
  }
  return out;
}

/** Writes the header of a DATA frame (§6.1, never padded) carrying `length` bytes. */
export function writeDataHeader(
  out: Uint8Array,
  at: number,
  stream: number,
  length: number,
  endStream: boolean,
): void {
  writeFrameHeader(out, at, length, FrameType.DATA, endStream ? Flag.END_STREAM : 0, stream);
}
