import { DeflateDataError, inflateMessage } from "./deflate.ts";
import type { DeflateParams } from "./handshake.ts";
import { UTF8_ACCEPT, UTF8_REJECT, utf8Step } from "./utf8.ts";

/** Frame opcodes (RFC 6455 §5.2, §11.8). */
export const Opcode = {
  Continuation: 0x0,
  Text: 0x1,
  Binary: 0x2,
  Close: 0x8,
  Ping: 0x9,
  Pong: 0xa,
} as const;

/** Close status codes (RFC 6455 §7.4.1 and the IANA "WebSocket Close Code Number" registry). */
export const CloseCode = {
  Normal: 1000,
  GoingAway: 1001,
  ProtocolError: 1002,
  Unsupported: 1003,
  NoStatus: 1005,
  Abnormal: 1006,
  InvalidPayload: 1007,
  Policy: 1008,
  TooBig: 1009,
  MandatoryExtension: 1010,
  InternalError: 1011,
  ServiceRestart: 1012,
  TryAgainLater: 1013,
  BadGateway: 1014,
} as const;

/**
 * What the receiver produced. `data` is owned by the event (never a view into a fed chunk).
 * `close` and `error` are terminal: after `close` next() returns null, after `error` it returns
 * the same error event again.
 */
export type WsEvent =
  | { type: "message"; binary: boolean; data: Uint8Array }
  | { type: "ping"; data: Uint8Array }
  | { type: "pong"; data: Uint8Array }
  | { type: "close"; code: number; reason: string }
  | { type: "error"; closeCode: number; reason: string };

/** Receiver settings: the largest message accepted (after decompression) and the agreed
 * permessage-deflate parameters, null when none was negotiated. */
export interface WsReceiverOptions {
  maxMessage: number;
  deflate: DeflateParams | null;
}

/**
 * True for a close code that may appear in a Close frame on the wire (RFC 6455 §7.4): the
 * codes defined in §7.4.1 except 1004 (reserved), 1005, 1006 and 1015 (never sent), the ones
 * IANA registered later (1012 Service Restart, 1013 Try Again Later, 1014 Bad Gateway, which
 * the Autobahn suite accepts), and 3000-4999 (§7.4.2: libraries/frameworks and private use).
 * 0-999, 1016-2999 (reserved for future RFCs) and 5000+ are refused.
 */
export function isValidCloseCode(code: number): boolean {
  if (!Number.isInteger(code)) return false;
  if (code >= 1000 && code <= 1014) return code !== 1004 && code !== 1005 && code !== 1006;
  return code >= 3000 && code <= 4999;
}

/**
 * Serializes one server-to-client frame (RFC 6455 §5.2): never masked (§5.1), the payload
 * length in its shortest form (§5.2 "the minimal number of bytes MUST be used"). `rsv1` marks
 * the first frame of a compressed message (RFC 7692 §6).
 */
export function encodeFrame(
  opcode: number,
  payload: Uint8Array,
  fin = true,
  rsv1 = false,
): Uint8Array {
  if (!Number.isInteger(opcode) || opcode < 0 || opcode > 0xf || RESERVED_OPCODE[opcode] === 1) {
    throw new RangeError(`Invalid WebSocket opcode ${opcode}`);
  }
  const len = payload.length;
  if (opcode >= 0x8 && (len > 125 || !fin || rsv1)) {
    // §5.5: control frames are short, never fragmented; RFC 7692 §6.1: never compressed.
    throw new RangeError("A control frame must be final, uncompressed and at most 125 bytes");
  }
  const head = len < 126 ? 2 : len < 0x10000 ? 4 : 10;
  const out = new Uint8Array(head + len);
  out[0] = (fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | opcode;
  if (len < 126) {
    out[1] = len;
  } else if (len < 0x10000) {
    out[1] = 126;
    out[2] = len >>> 8;
    out[3] = len & 0xff;
  } else {
    out[1] = 127;
    const hi = Math.floor(len / 0x100000000);
    const lo = len >>> 0;
    out[2] = 0;
    out[3] = 0;
    out[4] = (hi >>> 8) & 0xff; // payloads are far below 2^48
    out[5] = hi & 0xff;
    out[6] = lo >>> 24;
    out[7] = (lo >>> 16) & 0xff;
    out[8] = (lo >>> 8) & 0xff;
    out[9] = lo & 0xff;
  }
  out.set(payload, head);
  return out;
}

const MAX_CLOSE_REASON = 123; // §5.5: 125-byte control payload minus the 2-byte code
const encoder = new TextEncoder();

/**
 * A whole Close frame (RFC 6455 §5.5.1) with `code` and `reason` (UTF-8, cut at 123 bytes on a
 * code point boundary). Code 1005 ("no status") yields a Close frame with an empty body, as
 * §7.4.1 forbids putting 1005 on the wire; other codes must pass isValidCloseCode.
 */
export function encodeClose(code: number, reason: string): Uint8Array {
  if (code === CloseCode.NoStatus) return encodeFrame(Opcode.Close, new Uint8Array(0));
  if (!isValidCloseCode(code)) throw new RangeError(`Close code ${code} may not be sent`);
  let bytes = encoder.encode(reason);
  if (bytes.length > MAX_CLOSE_REASON) {
    let cut = MAX_CLOSE_REASON;
    // Back up over continuation bytes (10xxxxxx) to the start of the cut code point.
    while (cut > 0 && ((bytes[cut] as number) & 0xc0) === 0x80) cut--;
    bytes = bytes.subarray(0, cut);
  }
  const payload = new Uint8Array(2 + bytes.length);
  payload[0] = code >>> 8;
  payload[1] = code & 0xff;
  payload.set(bytes, 2);
  return encodeFrame(Opcode.Close, payload);
}

// §5.2: opcodes 0x3-0x7 and 0xB-0xF are reserved.
const RESERVED_OPCODE = new Uint8Array(16);
for (const op of [3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf]) RESERVED_OPCODE[op] = 1;

// Bun runs on little-endian machines; the word-wise unmask needs to know, the byte loop not.
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

// A frame's payload is allocated for at most this many bytes before they arrive, so a peer
// announcing a large frame and then sending a trickle cannot make us reserve the whole length.
const EAGER_BYTES = 64 * 1024;
// Past EAGER_BYTES the buffer grows by this factor: at most 1/3 of a large frame is copied a
// second time, and what we hold stays within 4x what the peer actually sent.
const GROWTH = 4;

const S_HEADER = 0;
const S_PAYLOAD = 1;
const S_DONE = 2; // after a close frame or an error: input is ignored

const decoder = new TextDecoder("utf-8", { fatal: true });

type Queued = WsEvent | { type: "compressed"; binary: boolean; data: Uint8Array };

/**
 * Sans-I/O RFC 6455 frame receiver for the server side (+ RFC 7692 permessage-deflate).
 * `feed()` parses as far as the bytes go and copies (unmasking on the way) only payload bytes,
 * each once (frames over EAGER_BYTES: up to a third again, see GROWTH); `next()` hands out whole
 * messages and control frames in order. Compressed
 * messages are inflated lazily in `next()`, so what waits in the queue is bounded by what the
 * peer sent, not by what it expands to. Between messages, with the queue drained, the receiver
 * holds no buffer at all.
 */
export class WsReceiver {
  readonly #maxMessage: number;
  readonly #compressedLimit: number;
  readonly #deflate: boolean;
  #state = S_HEADER;

  // Header bytes of a frame whose header is split across fed chunks (at most 14).
  #hdr: Uint8Array | null = null;
  #hdrLen = 0;

  // The frame being received.
  #fin = false;
  #opcode = 0;
  #mask = 0; // the 4 masking-key bytes, first byte in the low 8 bits
  #remaining = 0; // payload bytes of this frame still to come
  #framePos = 0; // payload bytes of this frame received so far (masking-key phase)

  // A control frame's payload (§5.5: at most 125 bytes), kept apart from the fragmented
  // message it may interrupt (§5.4).
  #ctl: Uint8Array | null = null;
  #ctlLen = 0;

  // The data message being assembled; #msgOpcode is 0 when none is open.
  #msgOpcode = 0;
  #msgCompressed = false;
  #msg: Uint8Array | null = null;
  #msgLen = 0;
  #utf8 = UTF8_ACCEPT;

  #queue: Array<Queued | undefined> | null = null;
  #queueHead = 0;
  #queuedBytes = 0;
  #terminal: WsEvent | null = null; // an error, once returned, is returned again

  constructor(options: WsReceiverOptions) {
    const max = options.maxMessage;
    if (!(max >= 0)) throw new RangeError("maxMessage must be a non-negative number");
    this.#maxMessage = max;
    // Compressed data can be a little larger than what it expands to (stored blocks): allow
    // zlib's deflateBound overhead before refusing a message on its compressed size alone.
    this.#compressedLimit = max + Math.floor(max / 4096) + Math.floor(max / 16384) + 64;
    this.#deflate = options.deflate !== null;
  }

  /** Bytes held: a partial frame header, a partial message or control payload, and the
   * payloads of events not yet returned by next(). */
  get buffered(): number {
    return this.#hdrLen + this.#msgLen + this.#ctlLen + this.#queuedBytes;
  }

  /** Bytes of buffer capacity allocated (≥ buffered): what this receiver costs in memory. */
  get allocated(): number {
    return (
      (this.#hdr?.length ?? 0) +
      (this.#msg?.length ?? 0) +
      (this.#ctl?.length ?? 0) +
      this.#queuedBytes
    );
  }

  /** True when the receiver holds no buffer (between messages, queue drained). */
  get idle(): boolean {
    return this.#hdr === null && this.#msg === null && this.#ctl === null && this.#queue === null;
  }

  /**
   * Idle, between frames, not inside a fragmented message and not finished: a new receiver
   * would continue exactly where this one is, so the owner may drop it until more bytes come.
   */
  get atMessageBoundary(): boolean {
    return (
      this.idle && this.#state === S_HEADER && this.#msgOpcode === 0 && this.#terminal === null
    );
  }

  /** Parses received bytes. `chunk` is not kept: it may be reused once this returns. */
  feed(chunk: Uint8Array): void {
    let pos = 0;
    const end = chunk.length;
    while (pos < end && this.#state !== S_DONE) {
      pos =
        this.#state === S_HEADER
          ? this.#readHeader(chunk, pos, end)
          : this.#readPayload(chunk, pos, end);
    }
  }

  /** The next event, or null when more bytes are needed (or after a close event). */
  next(): WsEvent | null {
    if (this.#terminal !== null) return this.#terminal;
    const queue = this.#queue;
    if (queue === null) return null;
    const item = queue[this.#queueHead] as Queued;
    queue[this.#queueHead] = undefined; // let the payload be collected once handed out
    this.#queueHead++;
    if (this.#queueHead === queue.length) {
      this.#queue = null;
      this.#queueHead = 0;
    }
    switch (item.type) {
      case "message":
      case "ping":
      case "pong":
        this.#queuedBytes -= item.data.length;
        return item;
      case "compressed":
        this.#queuedBytes -= item.data.length;
        return this.#inflate(item.binary, item.data);
      case "error":
        this.#terminal = item;
        this.#release();
        return item;
      case "close":
        this.#release();
        return item;
    }
  }

  #inflate(binary: boolean, data: Uint8Array): WsEvent {
    let out: Uint8Array | null;
    try {
      out = inflateMessage(data, this.#maxMessage);
    } catch (e) {
      if (!(e instanceof DeflateDataError)) throw e;
      // The frames were well formed, their data was not: the §7.4.1 code for bad data.
      return this.#lateError(CloseCode.InvalidPayload, "Invalid compressed data");
    }
    if (out === null) {
      return this.#lateError(CloseCode.TooBig, "Message too big after decompression");
    }
    // RFC 7692 §6: the UTF-8 rule of RFC 6455 §8.1 applies to the decompressed text.
    if (!binary && utf8Step(UTF8_ACCEPT, out, 0, out.length) !== UTF8_ACCEPT) {
      return this.#lateError(CloseCode.InvalidPayload, "Invalid UTF-8 in text message");
    }
    return { type: "message", binary, data: out };
  }

  /** An error found in next(): it ends the stream and drops whatever was queued after it. */
  #lateError(closeCode: number, reason: string): WsEvent {
    this.#state = S_DONE;
    this.#release();
    this.#terminal = fail(closeCode, reason);
    return this.#terminal;
  }

  #release(): void {
    this.#dropPartial();
    this.#queue = null;
    this.#queueHead = 0;
    this.#queuedBytes = 0;
  }

  #dropPartial(): void {
    this.#hdr = null;
    this.#hdrLen = 0;
    this.#ctl = null;
    this.#ctlLen = 0;
    this.#msg = null;
    this.#msgLen = 0;
    this.#msgOpcode = 0;
  }

  #push(item: Queued): void {
    if (item.type !== "close" && item.type !== "error") this.#queuedBytes += item.data.length;
    if (this.#queue === null) this.#queue = [item];
    else this.#queue.push(item);
  }

  /** Queues a terminal error after what is already queued and stops parsing. */
  #error(closeCode: number, reason: string): void {
    this.#state = S_DONE;
    this.#dropPartial();
    this.#push(fail(closeCode, reason));
  }

  // ---- frame header (RFC 6455 §5.2) ----

  #readHeader(chunk: Uint8Array, pos: number, end: number): number {
    if (this.#hdrLen === 0) {
      // Fast path: the whole header is in this chunk.
      const avail = end - pos;
      if (avail >= 2 && avail >= headerSize(chunk[pos + 1] as number)) {
        if (!this.#checkHeader(chunk, pos, avail)) return end;
        return pos + this.#startFrame(chunk, pos);
      }
      const hdr = new Uint8Array(14);
      hdr.set(chunk.subarray(pos, end), 0);
      this.#hdr = hdr;
      this.#hdrLen = avail;
      // Fail fast on what we have (first two bytes, extended length) before the rest arrives.
      this.#checkHeader(hdr, 0, avail);
      return end;
    }
    const hdr = this.#hdr as Uint8Array;
    let p = pos;
    while (this.#hdrLen < 2 && p < end) hdr[this.#hdrLen++] = chunk[p++] as number;
    if (this.#hdrLen >= 2) {
      const take = Math.min(headerSize(hdr[1] as number) - this.#hdrLen, end - p);
      hdr.set(chunk.subarray(p, p + take), this.#hdrLen);
      this.#hdrLen += take;
      p += take;
    }
    if (!this.#checkHeader(hdr, 0, this.#hdrLen)) return end;
    if (this.#hdrLen < 2 || this.#hdrLen < headerSize(hdr[1] as number)) return end;
    this.#startFrame(hdr, 0);
    this.#hdr = null;
    this.#hdrLen = 0;
    return p;
  }

  /**
   * Validates the header bytes src[at, at + avail) that have arrived, as far as they go:
   * everything but the masking key can be judged before the key arrives. Queues the error and
   * returns false when the frame is refused.
   */
  #checkHeader(src: Uint8Array, at: number, avail: number): boolean {
    if (avail < 2) return true;
    const b0 = src[at] as number;
    const b1 = src[at + 1] as number;
    const opcode = b0 & 0x0f;
    const fin = (b0 & 0x80) !== 0;
    const rsv1 = (b0 & 0x40) !== 0;
    const len7 = b1 & 0x7f;
    let problem: string | null = null;
    if ((b0 & 0x30) !== 0) {
      // §5.2: RSV2/RSV3 MUST be 0 unless an extension defines them; none we offer does.
      problem = "Reserved bits RSV2/RSV3 set";
    } else if (RESERVED_OPCODE[opcode] === 1) {
      problem = `Reserved opcode ${opcode}`; // §5.2: MUST _Fail the WebSocket Connection_
    } else if (opcode >= 0x8) {
      // §5.5: control frames are at most 125 bytes and MUST NOT be fragmented.
      if (!fin) problem = "Fragmented control frame";
      else if (len7 > 125) problem = "Control frame longer than 125 bytes";
      // RFC 7692 §6.1: RSV1 is never set on a control frame.
      else if (rsv1) problem = "RSV1 set on a control frame";
    } else if (opcode === Opcode.Continuation) {
      // §5.4: a continuation frame belongs to a started message.
      if (this.#msgOpcode === 0) problem = "Continuation frame without a started message";
      // RFC 7692 §6.1: RSV1 only on the first frame of a message.
      else if (rsv1) problem = "RSV1 set on a continuation frame";
    } else if (this.#msgOpcode !== 0) {
      // §5.4: fragments of one message are not interleaved with another data message.
      problem = "New data frame inside a fragmented message";
    } else if (rsv1 && !this.#deflate) {
      // §5.2 / RFC 7692 §6: RSV1 means "compressed" only once permessage-deflate is agreed.
      problem = "RSV1 set without a negotiated extension";
    }
    if (problem === null && (b1 & 0x80) === 0) {
      // §5.1: "The server MUST close the connection upon receiving a frame that is not
      // masked"; §7.4.1 has no more specific code than 1002 for it.
      problem = "Unmasked client frame";
    }
    if (problem !== null) return this.#refuse(CloseCode.ProtocolError, problem);
    if (opcode >= 0x8 || len7 < 126) return this.#checkSize(b0, len7);
    if (len7 === 126) {
      if (avail < 4) return true;
      const len = ((src[at + 2] as number) << 8) | (src[at + 3] as number);
      // §5.2: "the minimal number of bytes MUST be used to encode the length". A header that
      // breaks a MUST of the framing is refused like any other malformed frame.
      if (len < 126) return this.#refuse(CloseCode.ProtocolError, "Non-minimal frame length");
      return this.#checkSize(b0, len);
    }
    if (avail < 10) return true;
    const hi = readU32(src, at + 2);
    // §5.2: "the most significant bit MUST be 0".
    if (hi >= 0x80000000) {
      return this.#refuse(CloseCode.ProtocolError, "Frame length with the top bit set");
    }
    const len = hi * 0x100000000 + readU32(src, at + 6);
    if (len < 0x10000) return this.#refuse(CloseCode.ProtocolError, "Non-minimal frame length");
    return this.#checkSize(b0, len);
  }

  #refuse(closeCode: number, reason: string): false {
    this.#error(closeCode, reason);
    return false;
  }

  /** Refuses a data frame that would take its message over the limit, before buffering it. */
  #checkSize(b0: number, len: number): boolean {
    const opcode = b0 & 0x0f;
    if (opcode >= 0x8) return true; // ≤ 125, checked above
    const compressed = opcode === Opcode.Continuation ? this.#msgCompressed : (b0 & 0x40) !== 0;
    // Uncompressed: the limit applies to the payload as is. Compressed: this only bounds what
    // we buffer; the real limit is applied while inflating (inflateMessage's maxSize).
    const limit = compressed ? this.#compressedLimit : this.#maxMessage;
    if (this.#msgLen + len <= limit) return true;
    return this.#refuse(CloseCode.TooBig, "Message too big");
  }

  /** Starts the frame whose complete, validated header is at src[at]; returns its size. */
  #startFrame(src: Uint8Array, at: number): number {
    const b0 = src[at] as number;
    const b1 = src[at + 1] as number;
    const size = headerSize(b1);
    const len7 = b1 & 0x7f;
    const len =
      len7 < 126
        ? len7
        : len7 === 126
          ? ((src[at + 2] as number) << 8) | (src[at + 3] as number)
          : readU32(src, at + 2) * 0x100000000 + readU32(src, at + 6);
    const m = at + size - 4;
    this.#mask =
      ((src[m] as number) |
        ((src[m + 1] as number) << 8) |
        ((src[m + 2] as number) << 16) |
        ((src[m + 3] as number) << 24)) >>>
      0;
    const opcode = b0 & 0x0f;
    this.#fin = (b0 & 0x80) !== 0;
    this.#opcode = opcode;
    this.#remaining = len;
    this.#framePos = 0;
    if (opcode >= 0x8) {
      this.#ctl = len === 0 ? null : new Uint8Array(len);
      this.#ctlLen = 0;
    } else if (opcode !== Opcode.Continuation) {
      this.#msgOpcode = opcode;
      this.#msgCompressed = (b0 & 0x40) !== 0;
      this.#utf8 = UTF8_ACCEPT;
    }
    this.#state = S_PAYLOAD;
    if (len === 0) this.#endFrame();
    return size;
  }

  // ---- payload ----

  #readPayload(chunk: Uint8Array, pos: number, end: number): number {
    const n = Math.min(this.#remaining, end - pos);
    const piece = chunk.subarray(pos, pos + n);
    if (this.#opcode >= 0x8) {
      const ctl = this.#ctl as Uint8Array;
      ctl.set(piece, this.#ctlLen);
      unmask(ctl, this.#ctlLen, this.#ctlLen + n, this.#mask, this.#framePos);
      this.#ctlLen += n;
    } else {
      const buf = this.#reserve(n);
      const from = this.#msgLen;
      buf.set(piece, from);
      unmask(buf, from, from + n, this.#mask, this.#framePos);
      this.#msgLen += n;
      if (this.#msgOpcode === Opcode.Text && !this.#msgCompressed) {
        // Fail fast (Autobahn section 6): validate as bytes arrive, not when the message ends.
        this.#utf8 = utf8Step(this.#utf8, buf, from, from + n);
        if (this.#utf8 === UTF8_REJECT) {
          this.#error(CloseCode.InvalidPayload, "Invalid UTF-8 in text message");
          return end;
        }
      }
    }
    this.#framePos += n;
    this.#remaining -= n;
    if (this.#remaining === 0) this.#endFrame();
    return pos + n;
  }

  /**
   * The message buffer with room for `n` more bytes. A frame of at most EAGER_BYTES that
   * starts a message gets exactly its size; past that the buffer grows by GROWTH as bytes
   * arrive, never beyond the end of a final frame (known) or the limit (non-final frames).
   */
  #reserve(n: number): Uint8Array {
    const buf = this.#msg;
    const need = this.#msgLen + n;
    if (buf !== null && buf.length >= need) return buf;
    const frameEnd = this.#msgLen + this.#remaining;
    const ceiling = this.#fin
      ? frameEnd
      : this.#msgCompressed
        ? this.#compressedLimit
        : this.#maxMessage;
    const wanted = buf === null ? Math.max(EAGER_BYTES, need) : Math.max(buf.length * GROWTH, need);
    const cap = Math.max(need, Math.min(wanted, ceiling, buf === null ? frameEnd : ceiling));
    const grown = new Uint8Array(cap);
    if (buf !== null) grown.set(buf.subarray(0, this.#msgLen), 0);
    this.#msg = grown;
    return grown;
  }

  #endFrame(): void {
    this.#state = S_HEADER;
    const opcode = this.#opcode;
    if (opcode >= 0x8) {
      const data = this.#ctl ?? new Uint8Array(0);
      this.#ctl = null;
      this.#ctlLen = 0;
      if (opcode === Opcode.Ping) this.#push({ type: "ping", data });
      else if (opcode === Opcode.Pong) this.#push({ type: "pong", data });
      else this.#closeFrame(data);
      return;
    }
    if (!this.#fin) return;
    const len = this.#msgLen;
    const buf = this.#msg;
    const data = buf === null ? new Uint8Array(0) : buf.length === len ? buf : buf.subarray(0, len);
    const binary = this.#msgOpcode === Opcode.Binary;
    const compressed = this.#msgCompressed;
    this.#msg = null;
    this.#msgLen = 0;
    this.#msgOpcode = 0;
    if (compressed) {
      this.#push({ type: "compressed", binary, data });
    } else if (!binary && this.#utf8 !== UTF8_ACCEPT) {
      // §8.1: a text message must end on a code point boundary (a truncated sequence fails).
      this.#error(CloseCode.InvalidPayload, "Invalid UTF-8 in text message");
    } else {
      this.#push({ type: "message", binary, data });
    }
  }

  #closeFrame(body: Uint8Array): void {
    // §5.5.1: after a Close frame nothing more is read; a partial message is dropped.
    this.#state = S_DONE;
    this.#dropPartial();
    if (body.length === 0) {
      this.#push({ type: "close", code: CloseCode.NoStatus, reason: "" });
      return;
    }
    // §5.5.1: a body starts with a 2-byte status code, so one byte alone is malformed.
    if (body.length === 1) {
      this.#error(CloseCode.ProtocolError, "Close frame with a 1-byte body");
      return;
    }
    const code = ((body[0] as number) << 8) | (body[1] as number);
    if (!isValidCloseCode(code)) {
      this.#error(CloseCode.ProtocolError, `Invalid close code ${code}`);
      return;
    }
    // §5.5.1: the reason is UTF-8; §8.1 makes invalid UTF-8 a failure (1007).
    if (utf8Step(UTF8_ACCEPT, body, 2, body.length) !== UTF8_ACCEPT) {
      this.#error(CloseCode.InvalidPayload, "Invalid UTF-8 in close reason");
      return;
    }
    this.#push({ type: "close", code, reason: decoder.decode(body.subarray(2)) });
  }
}

function fail(closeCode: number, reason: string): WsEvent {
  return { type: "error", closeCode, reason };
}

/** Total header size from the second header byte: 2, + 2 or 8 extended length, + 4 mask. */
function headerSize(b1: number): number {
  const len7 = b1 & 0x7f;
  return 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + ((b1 & 0x80) !== 0 ? 4 : 0);
}

function readU32(b: Uint8Array, at: number): number {
  return (
    (b[at] as number) * 0x1000000 +
    (((b[at + 1] as number) << 16) | ((b[at + 2] as number) << 8) | (b[at + 3] as number))
  );
}

const keyBytes = new Uint8Array(4);
const keyWord = new Uint32Array(keyBytes.buffer);

/**
 * XORs buf[start, end) in place with the masking key (§5.3), `phase` being the index within
 * the frame payload of buf[start]. Word-wise in the aligned middle for large payloads.
 */
function unmask(buf: Uint8Array, start: number, end: number, mask: number, phase: number): void {
  let i = start;
  let p = phase & 3;
  if (end - start >= 32 && LITTLE_ENDIAN) {
    while (((buf.byteOffset + i) & 3) !== 0) {
      buf[i] = (buf[i] as number) ^ ((mask >>> (p << 3)) & 0xff);
      p = (p + 1) & 3;
      i++;
    }
    const words = (end - i) >>> 2;
    for (let k = 0; k < 4; k++) keyBytes[k] = (mask >>> (((p + k) & 3) << 3)) & 0xff;
    const key = keyWord[0] as number;
    const w = new Uint32Array(buf.buffer, buf.byteOffset + i, words);
    for (let k = 0; k < words; k++) w[k] = (w[k] as number) ^ key;
    i += words << 2;
  }
  for (; i < end; i++) {
    buf[i] = (buf[i] as number) ^ ((mask >>> (p << 3)) & 0xff);
    p = (p + 1) & 3;
  }
}
