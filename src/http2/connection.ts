// The server side of one HTTP/2 connection (RFC 9113), sans I/O: bytes from the client go in
// through feed(), events come out of next(), bytes for the client go out through the sink.

import { HttpError } from "../http1/errors.ts";
import { connectionError, ErrorCode, H2Error, streamError } from "./errors.ts";
import {
  CLIENT_PREFACE,
  DEFAULT_HEADER_TABLE_SIZE,
  DEFAULT_MAX_FRAME_SIZE,
  DEFAULT_WINDOW,
  encodeGoaway,
  encodeHeaders,
  encodePing,
  encodeRstStream,
  encodeSettings,
  encodeWindowUpdate,
  Flag,
  FRAME_HEADER_SIZE,
  FrameType,
  forEachSetting,
  MAX_FRAME_SIZE_LIMIT,
  MAX_WINDOW,
  paddedEnd,
  parseGoaway,
  parseHeadersPayload,
  parsePriority,
  parseRstStream,
  parseWindowUpdate,
  readU31,
  SETTINGS_ACK,
  SettingId,
  writeDataHeader,
} from "./frames.ts";
import { HeaderListTooLargeError, HpackDecoder, HpackEncoder } from "./hpack.ts";
import { checkTrailers, MalformedError, parseRequestHead } from "./request-head.ts";
import { prepareResponseFields } from "./response-fields.ts";

/** Limits and protections of an H2Connection; every field has a default (DEFAULT_H2_OPTIONS). */
export interface H2Options {
  /** SETTINGS_MAX_CONCURRENT_STREAMS we advertise and enforce (REFUSED_STREAM past it). */
  maxConcurrentStreams: number;
  /** SETTINGS_INITIAL_WINDOW_SIZE: request body bytes a client may send per stream before the
   * application consumes them. */
  initialWindowSize: number;
  /** Receive window of the whole connection (raised from 65535 by a WINDOW_UPDATE at start). */
  connectionWindowSize: number;
  /** SETTINGS_MAX_FRAME_SIZE: largest frame payload we accept. */
  maxFrameSize: number;
  /** SETTINGS_MAX_HEADER_LIST_SIZE: larger request header lists are answered 431. */
  maxHeaderListSize: number;
  /** SETTINGS_HEADER_TABLE_SIZE: the HPACK dynamic table the client may fill, per connection. */
  headerTableSize: number;
  /** Largest compressed header block (HEADERS + CONTINUATION) buffered; past it, GOAWAY
   * ENHANCE_YOUR_CALM (CVE-2024-27316). */
  maxHeaderBlockSize: number;
  /** CONTINUATION frames allowed in one header block (CVE-2024-27316). */
  maxContinuationFrames: number;
  /** Rapid reset (CVE-2023-44487, and CVE-2025-8671 for resets the client provokes): a token
   * bucket of `resetBurst` resets refilled at `resetRate` per second; empty: ENHANCE_YOUR_CALM. */
  resetBurst: number;
  resetRate: number;
  /** Empty DATA/HEADERS/CONTINUATION frames that end nothing (CVE-2019-9518): token bucket. */
  emptyFrameBurst: number;
  emptyFrameRate: number;
  /** Control frames we may owe (PING/SETTINGS ACKs, RST_STREAM) while the sink is blocked
   * (CVE-2019-9512, -9514, -9515); past it, ENHANCE_YOUR_CALM. */
  maxOwedControlFrames: number;
  /** A "writable" event fires when a stream's queued response bytes fall to this or below. */
  writableThreshold: number;
  /** Milliseconds from a monotonic clock; used only by the rate limits. */
  now: () => number;
}

export const DEFAULT_H2_OPTIONS: Readonly<H2Options> = Object.freeze({
  maxConcurrentStreams: 100,
  initialWindowSize: DEFAULT_WINDOW,
  connectionWindowSize: 256 * 1024,
  maxFrameSize: DEFAULT_MAX_FRAME_SIZE,
  maxHeaderListSize: 64 * 1024,
  headerTableSize: DEFAULT_HEADER_TABLE_SIZE,
  maxHeaderBlockSize: 64 * 1024,
  maxContinuationFrames: 32,
  resetBurst: 1000,
  resetRate: 33,
  emptyFrameBurst: 100,
  emptyFrameRate: 20,
  maxOwedControlFrames: 1000,
  writableThreshold: 16 * 1024,
  now: () => performance.now(),
});

/** Where the connection writes. Returning false says the transport is backed up: DATA is then
 * held in the per-stream queues until drained() is called. */
export interface H2Sink {
  write(bytes: Uint8Array): boolean | undefined;
}

/**
 * What the connection reports. Strings are latin1; header lists are flat
 * [name, value, ...], names lowercase, pseudo-headers removed, Cookie fields joined.
 * - request: a new stream's request head; `endStream` means no body follows.
 * - data: request body bytes (owned by the event); call consumed() once the application has
 *   taken them, or the client stops sending. The last one has `endStream` (possibly empty).
 * - trailers: the request's trailer section; it ends the request body.
 * - reset: the stream is gone, reset by the client (`remote`) or by us because the client broke
 *   a rule; stop working on it.
 * - rejected: a stream refused before any request event (malformed, over the concurrency limit,
 *   or headers over the list limit, which got a 431 response: `status` 431, else 0). For logs.
 * - writable: the stream's queued response bytes fell to `buffered` <= writableThreshold after
 *   a sendData() that left bytes queued.
 * - goaway: the client will open no more streams.
 * - error: a connection error; GOAWAY is already written. Terminal: every stream is gone, flush
 *   and close.
 */
export type H2Event =
  | {
      type: "request";
      stream: number;
      method: string;
      scheme: string;
      authority: string;
      path: string;
      headers: string[];
      contentLength: number;
      endStream: boolean;
    }
  | { type: "data"; stream: number; data: Uint8Array; endStream: boolean }
  | { type: "trailers"; stream: number; headers: string[] }
  | { type: "reset"; stream: number; code: number; remote: boolean }
  | { type: "rejected"; stream: number; status: number; code: number; message: string }
  | { type: "writable"; stream: number; buffered: number }
  | { type: "goaway"; lastStreamId: number; code: number; debug: string }
  | { type: "error"; code: number; message: string };

/** One open or half-closed stream (RFC 9113 §5.1). Closed streams are not kept. */
class Stream {
  readonly id: number;
  // ---- receiving the request ----
  remoteClosed: boolean;
  recvWindow: number; // DATA bytes the client may still send on this stream
  unconsumed = 0; // delivered in data events, not yet consumed()
  pendingUpdate = 0; // returned by the application, not yet sent as WINDOW_UPDATE
  readonly expectedLength: number; // content-length, -1 if none
  receivedLength = 0;
  // ---- sending the response ----
  final = false; // final (non-1xx) response HEADERS written
  endQueued = false; // the end of the response is queued
  localClosed = false; // END_STREAM written
  sendWindow: number;
  chunks: Uint8Array[] | null = null;
  chunkOffset = 0; // bytes of chunks[0] already sent
  queued = 0;
  trailers: Uint8Array | null = null;
  wantsWritable = false;

  constructor(id: number, remoteClosed: boolean, recv: number, send: number, length: number) {
    this.id = id;
    this.remoteClosed = remoteClosed;
    this.recvWindow = recv;
    this.sendWindow = send;
    this.expectedLength = length;
  }
}

interface Resolved extends H2Options {
  preface: Uint8Array; // our SETTINGS and the connection WINDOW_UPDATE
}

// Options are resolved (validated, SETTINGS built) once and the result shared by every
// connection created with them: by object identity, and by value when the clock is the
// default one, so a caller building a fresh options literal per connection costs nothing.
const resolvedCache = new WeakMap<object, Resolved>();
const resolvedByValue = new Map<string, Resolved>();
const MAX_BY_VALUE = 64;
const OPTION_NAMES = (Object.keys(DEFAULT_H2_OPTIONS) as Array<keyof H2Options>).filter(
  (k) => k !== "now",
);

function resolve(options: Partial<H2Options>): Resolved {
  const cached = resolvedCache.get(options);
  if (cached !== undefined) return cached;
  const o: H2Options = { ...DEFAULT_H2_OPTIONS, ...options };
  let key: string | null = null;
  if (o.now === DEFAULT_H2_OPTIONS.now) {
    key = OPTION_NAMES.map((k) => o[k]).join(",");
    const shared = resolvedByValue.get(key);
    if (shared !== undefined) {
      resolvedCache.set(options, shared);
      return shared;
    }
  }
  const int = (name: keyof H2Options, min: number, max: number): void => {
    const v = o[name] as number;
    if (!Number.isInteger(v) || v < min || v > max) {
      throw new RangeError(`H2 option ${name} must be an integer from ${min} to ${max}, got ${v}`);
    }
  };
  int("maxConcurrentStreams", 1, 0xffffffff);
  int("initialWindowSize", 0, MAX_WINDOW);
  int("connectionWindowSize", DEFAULT_WINDOW, MAX_WINDOW);
  int("maxFrameSize", DEFAULT_MAX_FRAME_SIZE, MAX_FRAME_SIZE_LIMIT);
  int("maxHeaderListSize", 0, 0xffffffff);
  int("headerTableSize", 0, 0xffffffff);
  int("maxHeaderBlockSize", 1, 0xffffffff);
  int("maxContinuationFrames", 0, 0xffffffff);
  int("resetBurst", 1, 0xffffffff);
  int("emptyFrameBurst", 1, 0xffffffff);
  int("maxOwedControlFrames", 1, 0xffffffff);
  int("writableThreshold", 0, Number.MAX_SAFE_INTEGER);
  if (!(o.resetRate >= 0) || !(o.emptyFrameRate >= 0)) {
    throw new RangeError("H2 options resetRate and emptyFrameRate must be >= 0");
  }
  // §3.4: the server preface is a SETTINGS frame, sent first. Parameters at their protocol
  // default are left out; ENABLE_PUSH is left out (§6.5.2: a server MAY omit it).
  const params: Array<[number, number]> = [
    [SettingId.MAX_CONCURRENT_STREAMS, o.maxConcurrentStreams],
  ];
  if (o.initialWindowSize !== DEFAULT_WINDOW) {
    params.push([SettingId.INITIAL_WINDOW_SIZE, o.initialWindowSize]);
  }
  if (o.maxFrameSize !== DEFAULT_MAX_FRAME_SIZE) {
    params.push([SettingId.MAX_FRAME_SIZE, o.maxFrameSize]);
  }
  if (o.headerTableSize !== DEFAULT_HEADER_TABLE_SIZE) {
    params.push([SettingId.HEADER_TABLE_SIZE, o.headerTableSize]);
  }
  params.push([SettingId.MAX_HEADER_LIST_SIZE, o.maxHeaderListSize]);
  // RFC 9218 §2.1: we ignore RFC 7540 priorities, and say so.
  params.push([SettingId.NO_RFC7540_PRIORITIES, 1]);
  const settings = encodeSettings(params);
  const raise = o.connectionWindowSize - DEFAULT_WINDOW;
  let preface = settings;
  if (raise > 0) {
    const wu = encodeWindowUpdate(0, raise);
    preface = new Uint8Array(settings.length + wu.length);
    preface.set(settings, 0);
    preface.set(wu, settings.length);
  }
  const resolved: Resolved = Object.freeze({ ...o, preface });
  resolvedCache.set(options, resolved);
  if (key !== null && resolvedByValue.size < MAX_BY_VALUE) resolvedByValue.set(key, resolved);
  return resolved;
}

// How a closed stream ended, remembered for a while (see #remember).
const GONE_UNKNOWN = 0;
const GONE_CLOSED = 1; // END_STREAM both ways
const GONE_RESET_BY_PEER = 2;
const GONE_RESET_BY_US = 3;
const RECENT = 32;

// GOAWAY progress (§6.8).
const GOAWAY_NONE = 0;
const GOAWAY_DRAINING = 1; // GOAWAY(2^31-1) and a PING sent, waiting for the PING ACK
const GOAWAY_FINAL = 2;

// The opaque data of the PING that times a graceful shutdown.
const SHUTDOWN_PING = new Uint8Array([0x73, 0x61, 0x6c, 0x74, 0x61, 0x72, 0x65, 0x21]);

// A payload split across feeds is allocated for at most this many bytes before they arrive, so
// a peer announcing a large frame (when maxFrameSize is raised) and sending a trickle cannot
// make us reserve the whole length.
const EAGER_PAYLOAD = 16384;

/**
 * The server side of one HTTP/2 connection (RFC 9113 + RFC 7541), without I/O.
 *
 * The constructor writes our SETTINGS (the server preface, §3.4) to the sink. Then: feed()
 * received bytes; after that call, and after every other method, drain next() until it returns
 * null. Responses go out with respond(), sendData() and sendTrailers(); each call writes what
 * it can to the sink at once (one write per call). DATA waits in per-stream queues while the
 * client's flow-control windows (§5.2) or a blocked sink hold it.
 *
 * A stream ends for the caller when it has queued the end of its response (respond() or
 * sendData() with `endStream`, or sendTrailers()) or when a reset event arrives; events that
 * still come for it can be ignored, and its unconsumed request bytes are returned to the
 * client's window when it closes. The codec closes the stream once the END_STREAM is written;
 * if the request is still being sent then, it follows with RST_STREAM NO_ERROR (§8.1), so
 * the caller never needs resetStream(NO_ERROR) after a complete response (that would drop a
 * response still queued behind flow control).
 *
 * Idle (no streams, nothing half-received), the connection holds the HPACK decoder's dynamic
 * table (at most headerTableSize bytes, as the client fills it), a 32-entry record of recently
 * closed streams once one closed, and its scalar fields: no per-stream objects, no buffers.
 */
export class H2Connection {
  readonly #o: Resolved;
  readonly #sink: H2Sink;
  readonly #decoder: HpackDecoder;
  readonly #encoder = new HpackEncoder();

  // ---- reading frames ----
  #prefaceLeft: number = CLIENT_PREFACE.length;
  #gotSettings = false;
  #hdr: Uint8Array | null = null; // a frame header split across feeds
  #hdrLen = 0;
  #frameLen = -1; // payload length of the frame being received, -1 between frames
  #frameType = 0;
  #frameFlags = 0;
  #frameStream = 0;
  #payload: Uint8Array | null = null; // a payload split across feeds
  #payloadLen = 0;

  // ---- a header block spread over HEADERS + CONTINUATION (§6.10) ----
  #hbStream = 0;
  #hbEndStream = false;
  #hbSelfDependent = false;
  #hbBuf: Uint8Array | null = null;
  #hbLen = 0;
  #hbFrames = 0;

  // ---- streams ----
  #streams: Map<number, Stream> | null = null;
  #sendable: Set<Stream> | null = null; // streams with DATA, trailers or an end queued
  #lastStreamId = 0; // highest stream id the client used (§5.1.1)
  #lastProcessed = 0; // highest stream id we acted on (GOAWAY's last-stream-id, §6.8)
  #recent: Uint32Array | null = null;
  #recentAt = 0;
  #queuedTotal = 0;
  #writable: Stream[] | null = null; // streams whose queue fell to writableThreshold

  // ---- flow control (§5.2, §6.9) ----
  #connSend: number = DEFAULT_WINDOW; // what we may still send on the connection
  #peerInitial: number = DEFAULT_WINDOW; // the client's SETTINGS_INITIAL_WINDOW_SIZE
  #peerMaxFrame: number = DEFAULT_MAX_FRAME_SIZE;
  #connRecv: number; // what the client may still send on the connection
  #connPending = 0; // consumed or discarded bytes not yet returned by WINDOW_UPDATE
  #recvInitial: number = DEFAULT_WINDOW; // our initial stream window as the client sees it
  #settingsAcked = false;

  // ---- protections ----
  #resetTokens: number;
  #resetTime = 0;
  #emptyTokens: number;
  #emptyTime = 0;
  #owed = 0;

  // ---- output and events ----
  #out: Uint8Array[] | null = null;
  #outLen = 0;
  #blocked = false;
  #events: Array<H2Event | undefined> | null = null;
  #eventHead = 0;

  // ---- shutdown ----
  #goaway = GOAWAY_NONE;
  #goawayLast = MAX_WINDOW;
  #peerGoaway = false;
  #dead = false;

  /**
   * `options` may be partial; pass the same object to every connection so that it is
   * validated and its SETTINGS frame built once. Writes our SETTINGS to `sink` at once.
   */
  constructor(options: Partial<H2Options>, sink: H2Sink) {
    const o = resolve(options);
    this.#o = o;
    this.#sink = sink;
    this.#decoder = new HpackDecoder(DEFAULT_HEADER_TABLE_SIZE, o.maxHeaderListSize);
    this.#connRecv = o.connectionWindowSize;
    this.#resetTokens = o.resetBurst;
    this.#emptyTokens = o.emptyFrameBurst;
    // Copies of shared bytes: the sink may keep what it is given.
    this.#write(o.preface.slice());
    this.#flushOut();
  }

  /** Streams open or half-closed (§5.1.2: what MAX_CONCURRENT_STREAMS counts). */
  get activeStreams(): number {
    return this.#streams === null ? 0 : this.#streams.size;
  }

  /** No stream, no partly received frame or header block, no event waiting. */
  get idle(): boolean {
    return (
      this.#streams === null &&
      this.#frameLen < 0 &&
      this.#hdr === null &&
      this.#hbStream === 0 &&
      this.#events === null
    );
  }

  /** Response bytes queued in all streams, not yet written to the sink. */
  get buffered(): number {
    return this.#queuedTotal;
  }

  /** Response bytes queued for `stream` (0 when it is unknown). */
  bufferedAmount(stream: number): number {
    return this.#streams?.get(stream)?.queued ?? 0;
  }

  /** True after a connection error: nothing more is read or sent but what is queued. */
  get failed(): boolean {
    return this.#dead;
  }

  /**
   * True when the connection has nothing left to do and the socket can be closed once the
   * sink's data is flushed: after a connection error, or after a GOAWAY (ours, final, or the
   * client's) once every stream is done.
   */
  get finished(): boolean {
    if (this.#dead) return true;
    return (
      (this.#goaway === GOAWAY_FINAL || this.#peerGoaway) &&
      this.#streams === null &&
      this.#queuedTotal === 0
    );
  }

  /** Parses received bytes. The connection keeps no reference to `chunk`. */
  feed(chunk: Uint8Array): void {
    if (this.#dead) return;
    try {
      this.#read(chunk);
    } catch (e) {
      if (!(e instanceof H2Error)) throw e;
      this.#fail(e.code, e.message);
    }
    this.#pump();
  }

  /** The next event, or null. After the error event, always null. */
  next(): H2Event | null {
    const q = this.#events;
    if (q === null) return null;
    const ev = q[this.#eventHead] as H2Event;
    q[this.#eventHead++] = undefined;
    if (this.#eventHead === q.length) {
      this.#events = null;
      this.#eventHead = 0;
    }
    return ev;
  }

  /**
   * Sends response HEADERS for `stream` (RFC 9113 §8.1): a 1xx informational response (never
   * with `endStream`, any number of them) or the final one. `headers` are the application's
   * flat [name, value, ...], prepared by prepareResponseFields (lowercased, connection-specific
   * fields dropped). Returns false when the stream is gone (reset meanwhile). Throws HttpError
   * BAD_RESPONSE_HEADER for a status or field that cannot be sent, Error when called out of
   * order.
   */
  respond(stream: number, status: number, headers: readonly string[], endStream: boolean): boolean {
    const s = this.#streams?.get(stream);
    if (s === undefined) return false;
    if (s.final) throw new Error(`HTTP/2 stream ${stream}: response already started`);
    // §8.6 (101 does not exist in HTTP/2) and RFC 9110 §15: three digits.
    if (!Number.isInteger(status) || status < 100 || status > 599 || status === 101) {
      throw new HttpError("BAD_RESPONSE_HEADER", `Invalid response status ${status}`);
    }
    const informational = status < 200;
    if (informational && endStream) {
      // §8.1: an informational response cannot end the stream.
      throw new Error(`HTTP/2 stream ${stream}: a 1xx response cannot end the stream`);
    }
    const block = this.#encoder.encode(status, prepareResponseFields(headers));
    this.#write(encodeHeaders(stream, block, endStream, this.#peerMaxFrame));
    if (!informational) s.final = true;
    if (endStream) {
      s.endQueued = true;
      this.#localEnd(s);
    }
    this.#pump();
    return true;
  }

  /**
   * Queues response body bytes (and the end of the response with `endStream`) and sends what
   * the flow-control windows allow. `data` is kept by reference until sent: do not reuse it.
   * Returns the bytes still queued for the stream (the caller's backpressure: a "writable"
   * event follows when they fall to writableThreshold), or -1 when the stream is gone.
   */
  sendData(stream: number, data: Uint8Array, endStream: boolean): number {
    const s = this.#streams?.get(stream);
    if (s === undefined) return -1;
    if (!s.final) throw new Error(`HTTP/2 stream ${stream}: DATA before the response headers`);
    if (s.endQueued) throw new Error(`HTTP/2 stream ${stream}: DATA after the end of the response`);
    if (data.length > 0) {
      if (s.chunks === null) s.chunks = [data];
      else s.chunks.push(data);
      s.queued += data.length;
      this.#queuedTotal += data.length;
    }
    if (endStream) s.endQueued = true;
    if (data.length > 0 || endStream) this.#schedule(s);
    this.#pump();
    if (s.queued > 0) s.wantsWritable = true;
    return s.queued;
  }

  /**
   * Queues the response's trailer section, which ends it (§8.1), after the queued DATA.
   * Returns false when the stream is gone.
   */
  sendTrailers(stream: number, headers: readonly string[]): boolean {
    const s = this.#streams?.get(stream);
    if (s === undefined) return false;
    if (!s.final) throw new Error(`HTTP/2 stream ${stream}: trailers before the response headers`);
    if (s.endQueued) throw new Error(`HTTP/2 stream ${stream}: trailers after the end`);
    s.trailers = this.#encoder.encode(0, prepareResponseFields(headers));
    s.endQueued = true;
    this.#schedule(s);
    this.#pump();
    return true;
  }

  /**
   * The application consumed `bytes` of the stream's request body: they are returned to the
   * client's windows, in WINDOW_UPDATE frames sent once half a window has been consumed.
   * Bytes of streams that closed are returned automatically; calls for them are ignored.
   */
  consumed(stream: number, bytes: number): void {
    const s = this.#streams?.get(stream);
    if (s === undefined || !(bytes > 0)) return;
    const n = Math.min(bytes, s.unconsumed);
    s.unconsumed -= n;
    this.#creditStream(s, n);
    this.#creditConnection(n);
    this.#pump();
  }

  /** Resets `stream` (RST_STREAM with `code`, default CANCEL) and forgets it; no event. */
  resetStream(stream: number, code: number = ErrorCode.CANCEL): void {
    const s = this.#streams?.get(stream);
    if (s === undefined) return;
    this.#write(encodeRstStream(stream, code));
    this.#close(s, GONE_RESET_BY_US);
    this.#pump();
  }

  /**
   * Starts closing the connection (§6.8). With NO_ERROR, gracefully: GOAWAY with last stream
   * id 2^31-1 and a PING; when the PING is acknowledged (new streams sent before our GOAWAY
   * have arrived by then) or at a second call, the final GOAWAY with the last stream we
   * processed. Streams up to it are served; `finished` becomes true when they are done. With
   * another code, the final GOAWAY at once.
   */
  goAway(code: number = ErrorCode.NO_ERROR): void {
    if (this.#dead || this.#goaway === GOAWAY_FINAL) return;
    if (code === ErrorCode.NO_ERROR && this.#goaway === GOAWAY_NONE) {
      this.#goaway = GOAWAY_DRAINING;
      this.#write(encodeGoaway(MAX_WINDOW, ErrorCode.NO_ERROR));
      this.#write(encodePing(SHUTDOWN_PING, false));
    } else {
      this.#finalGoaway(code);
    }
    this.#pump();
  }

  /** The sink drained after returning false: send the DATA it held back. */
  drained(): void {
    this.#blocked = false;
    this.#owed = 0;
    this.#pump();
  }

  // ================= reading =================

  #read(chunk: Uint8Array): void {
    let pos = 0;
    const end = chunk.length;
    if (this.#prefaceLeft > 0) {
      // §3.4: the client preface, checked byte by byte so a wrong one fails at once.
      const at = CLIENT_PREFACE.length - this.#prefaceLeft;
      const n = Math.min(this.#prefaceLeft, end);
      for (let i = 0; i < n; i++) {
        if (chunk[i] !== CLIENT_PREFACE[at + i]) {
          throw connectionError(ErrorCode.PROTOCOL_ERROR, "Invalid connection preface");
        }
      }
      this.#prefaceLeft -= n;
      pos = n;
    }
    while (pos < end && !this.#dead) {
      if (this.#frameLen < 0) {
        // A frame header (§4.1).
        let h: Uint8Array;
        let at: number;
        if (this.#hdrLen === 0 && end - pos >= FRAME_HEADER_SIZE) {
          h = chunk;
          at = pos;
          pos += FRAME_HEADER_SIZE;
        } else {
          if (this.#hdr === null) this.#hdr = new Uint8Array(FRAME_HEADER_SIZE);
          const take = Math.min(FRAME_HEADER_SIZE - this.#hdrLen, end - pos);
          this.#hdr.set(chunk.subarray(pos, pos + take), this.#hdrLen);
          this.#hdrLen += take;
          pos += take;
          if (this.#hdrLen < FRAME_HEADER_SIZE) return;
          h = this.#hdr;
          at = 0;
          this.#hdr = null;
          this.#hdrLen = 0;
        }
        const len =
          ((h[at] as number) << 16) | ((h[at + 1] as number) << 8) | (h[at + 2] as number);
        // §4.2: larger than our SETTINGS_MAX_FRAME_SIZE. Refused before any payload is read.
        if (len > this.#o.maxFrameSize) {
          throw connectionError(ErrorCode.FRAME_SIZE_ERROR, `Frame of ${len} bytes is too large`);
        }
        this.#frameType = h[at + 3] as number;
        this.#frameFlags = h[at + 4] as number;
        this.#frameStream = readU31(h, at + 5);
        if (end - pos >= len) {
          this.#dispatch(chunk.subarray(pos, pos + len));
          pos += len;
          continue;
        }
        this.#frameLen = len;
        this.#payload = new Uint8Array(Math.min(len, EAGER_PAYLOAD));
        this.#payloadLen = 0;
      }
      let payload = this.#payload as Uint8Array;
      const take = Math.min(this.#frameLen - this.#payloadLen, end - pos);
      const need = this.#payloadLen + take;
      if (need > payload.length) {
        const grown = new Uint8Array(Math.min(this.#frameLen, Math.max(need, payload.length * 2)));
        grown.set(payload.subarray(0, this.#payloadLen), 0);
        payload = grown;
        this.#payload = grown;
      }
      payload.set(chunk.subarray(pos, pos + take), this.#payloadLen);
      this.#payloadLen = need;
      pos += take;
      if (need < this.#frameLen) return;
      this.#frameLen = -1;
      this.#payload = null;
      this.#payloadLen = 0;
      this.#dispatch(payload);
    }
  }

  /** Handles one frame; a stream error resets that stream and reading goes on. */
  #dispatch(payload: Uint8Array): void {
    try {
      this.#frame(this.#frameType, this.#frameFlags, this.#frameStream, payload);
    } catch (e) {
      if (!(e instanceof H2Error)) throw e;
      try {
        if (e.stream === 0) this.#fail(e.code, e.message);
        else this.#streamError(e.stream, e.code);
      } catch (e2) {
        if (!(e2 instanceof H2Error)) throw e2;
        this.#fail(e2.code, e2.message);
      }
    }
  }

  #frame(type: number, flags: number, id: number, payload: Uint8Array): void {
    // §3.4: the client preface ends with a SETTINGS frame.
    if (!this.#gotSettings && (type !== FrameType.SETTINGS || (flags & Flag.ACK) !== 0)) {
      throw connectionError(ErrorCode.PROTOCOL_ERROR, "Client preface not followed by SETTINGS");
    }
    // §6.10: a header block is a contiguous sequence of frames; nothing may come in between.
    if (this.#hbStream !== 0 && (type !== FrameType.CONTINUATION || id !== this.#hbStream)) {
      throw connectionError(ErrorCode.PROTOCOL_ERROR, "Frame inside a header block");
    }
    switch (type) {
      case FrameType.DATA:
        this.#onData(flags, id, payload);
        return;
      case FrameType.HEADERS:
        this.#onHeaders(flags, id, payload);
        return;
      case FrameType.PRIORITY:
        if (id === 0) throw connectionError(ErrorCode.PROTOCOL_ERROR, "PRIORITY on stream 0");
        // §5.3.2: priority signals are ignored, but the frame is checked (§6.3).
        parsePriority(id, payload);
        return;
      case FrameType.RST_STREAM:
        this.#onRstStream(id, payload);
        return;
      case FrameType.SETTINGS:
        this.#onSettings(flags, id, payload);
        return;
      case FrameType.PUSH_PROMISE:
        // §8.4: a client cannot push.
        throw connectionError(ErrorCode.PROTOCOL_ERROR, "PUSH_PROMISE from a client");
      case FrameType.PING:
        this.#onPing(flags, id, payload);
        return;
      case FrameType.GOAWAY:
        this.#onGoaway(id, payload);
        return;
      case FrameType.WINDOW_UPDATE:
        this.#onWindowUpdate(id, payload);
        return;
      case FrameType.CONTINUATION:
        this.#onContinuation(flags, payload);
        return;
      default:
        // §4.1, §5.5: frames of unknown types are ignored (outside a header block).
        return;
    }
  }

  /** §6.8: after our final GOAWAY, frames of streams above its last-stream-id are ignored. */
  #ignoredAfterGoaway(id: number): boolean {
    return this.#goaway === GOAWAY_FINAL && id > this.#goawayLast;
  }

  /** §5.1: a stream id the client has not used yet is idle; even ids are ours and never used. */
  #isIdle(id: number): boolean {
    return id > this.#lastStreamId || (id & 1) === 0;
  }

  #onData(flags: number, id: number, payload: Uint8Array): void {
    if (id === 0) throw connectionError(ErrorCode.PROTOCOL_ERROR, "DATA on stream 0");
    const end = paddedEnd(flags, payload);
    const start = (flags & Flag.PADDED) !== 0 ? 1 : 0;
    const size = payload.length;
    const dataLen = end - start;
    const endStream = (flags & Flag.END_STREAM) !== 0;
    // §6.9.1: the whole payload, padding included, counts against the connection window,
    // also on a stream that is gone.
    if (size > this.#connRecv) {
      throw connectionError(ErrorCode.FLOW_CONTROL_ERROR, "DATA beyond the connection window");
    }
    this.#connRecv -= size;
    const s = this.#streams?.get(id);
    if (s === undefined) {
      // §5.1 idle: only HEADERS and PRIORITY.
      if (this.#isIdle(id)) {
        throw connectionError(ErrorCode.PROTOCOL_ERROR, "DATA on an idle stream");
      }
      this.#creditConnection(size);
      if (this.#ignoredAfterGoaway(id)) return;
      // §5.1 closed: frames after our RST_STREAM are ignored; after END_STREAM both ways a
      // connection error; after the client's RST_STREAM (or long ago) a stream error.
      const gone = this.#recall(id);
      if (gone === GONE_RESET_BY_US) return;
      if (gone === GONE_CLOSED) {
        throw connectionError(ErrorCode.STREAM_CLOSED, "DATA on a closed stream");
      }
      throw streamError(ErrorCode.STREAM_CLOSED, id, "DATA on a closed stream");
    }
    if (s.remoteClosed) {
      // §5.1 half-closed (remote).
      this.#creditConnection(size);
      throw streamError(ErrorCode.STREAM_CLOSED, id, "DATA after END_STREAM");
    }
    if (size > s.recvWindow) {
      // §6.9.1: beyond the stream's window.
      this.#creditConnection(size);
      throw streamError(ErrorCode.FLOW_CONTROL_ERROR, id, "DATA beyond the stream window");
    }
    s.recvWindow -= size;
    if (size > dataLen) {
      // Padding never reaches the application, so it is returned here.
      this.#creditStream(s, size - dataLen);
      this.#creditConnection(size - dataLen);
    }
    // CVE-2019-9518: a frame with no payload at all that does not end the stream does nothing.
    if (size === 0 && !endStream) this.#takeEmpty();
    // Counted before the checks below, so that resetting the stream returns them.
    s.unconsumed += dataLen;
    s.receivedLength += dataLen;
    const expected = s.expectedLength;
    // §8.1.1: a content-length that DATA does not match makes the request malformed.
    if (
      expected >= 0 &&
      (s.receivedLength > expected || (endStream && s.receivedLength !== expected))
    ) {
      throw streamError(ErrorCode.PROTOCOL_ERROR, id, "DATA length differs from content-length");
    }
    if (dataLen > 0 || endStream) {
      this.#emit({ type: "data", stream: id, data: payload.slice(start, end), endStream });
    }
    if (endStream) {
      s.remoteClosed = true;
      if (s.localClosed) this.#close(s, GONE_CLOSED);
    }
  }

  #onHeaders(flags: number, id: number, payload: Uint8Array): void {
    if (id === 0) throw connectionError(ErrorCode.PROTOCOL_ERROR, "HEADERS on stream 0");
    const { start, end, priority } = parseHeadersPayload(flags, payload);
    const selfDependent = priority !== null && priority.dependency === id;
    const endStream = (flags & Flag.END_STREAM) !== 0;
    if ((flags & Flag.END_HEADERS) !== 0) {
      this.#onHeaderBlock(id, payload, start, end, endStream, selfDependent);
      return;
    }
    const len = end - start;
    if (len > this.#o.maxHeaderBlockSize) throw tooLargeBlock();
    if (len === 0) this.#takeEmpty();
    const buf = new Uint8Array(Math.min(Math.max(len * 2, 1024), this.#o.maxHeaderBlockSize));
    buf.set(payload.subarray(start, end), 0);
    this.#hbBuf = buf;
    this.#hbLen = len;
    this.#hbStream = id;
    this.#hbEndStream = endStream;
    this.#hbSelfDependent = selfDependent;
    this.#hbFrames = 0;
  }

  #onContinuation(flags: number, payload: Uint8Array): void {
    // §6.10: only after HEADERS without END_HEADERS (same stream: checked in #frame).
    if (this.#hbStream === 0) {
      throw connectionError(ErrorCode.PROTOCOL_ERROR, "CONTINUATION without a header block");
    }
    if (++this.#hbFrames > this.#o.maxContinuationFrames) {
      throw connectionError(ErrorCode.ENHANCE_YOUR_CALM, "Too many CONTINUATION frames");
    }
    const len = payload.length;
    const total = this.#hbLen + len;
    if (total > this.#o.maxHeaderBlockSize) throw tooLargeBlock();
    const endHeaders = (flags & Flag.END_HEADERS) !== 0;
    if (len === 0 && !endHeaders) this.#takeEmpty();
    let buf = this.#hbBuf as Uint8Array;
    if (total > buf.length) {
      const grown = new Uint8Array(
        Math.min(Math.max(total, buf.length * 2), this.#o.maxHeaderBlockSize),
      );
      grown.set(buf.subarray(0, this.#hbLen), 0);
      buf = grown;
      this.#hbBuf = grown;
    }
    buf.set(payload, this.#hbLen);
    this.#hbLen = total;
    if (!endHeaders) return;
    const id = this.#hbStream;
    this.#hbStream = 0;
    this.#hbBuf = null;
    this.#hbLen = 0;
    this.#onHeaderBlock(id, buf, 0, total, this.#hbEndStream, this.#hbSelfDependent);
  }

  /** A complete header block: a new request, or trailers of an open one. */
  #onHeaderBlock(
    id: number,
    block: Uint8Array,
    start: number,
    end: number,
    endStream: boolean,
    selfDependent: boolean,
  ): void {
    // §4.3: every block is decoded, whatever becomes of the stream, to keep HPACK in step.
    // An HpackError is a connection error COMPRESSION_ERROR.
    let fields: string[] = [];
    let tooLarge = false;
    try {
      fields = this.#decoder.decode(block, start, end);
    } catch (e) {
      if (!(e instanceof HeaderListTooLargeError)) throw e;
      tooLarge = true;
    }
    const s = this.#streams?.get(id);
    if (s !== undefined) {
      this.#onTrailers(s, fields, tooLarge, endStream, selfDependent);
      return;
    }
    // §5.1.1: a client opens odd-numbered streams, each above all it opened before.
    if ((id & 1) === 0) {
      throw connectionError(ErrorCode.PROTOCOL_ERROR, "Even stream id from a client");
    }
    if (this.#ignoredAfterGoaway(id)) {
      this.#lastStreamId = Math.max(this.#lastStreamId, id);
      return;
    }
    if (id <= this.#lastStreamId) {
      // §5.1 closed, as for DATA; a stream id never used is a §5.1.1 violation.
      const gone = this.#recall(id);
      if (gone === GONE_RESET_BY_US) return;
      if (gone === GONE_RESET_BY_PEER) {
        throw streamError(ErrorCode.STREAM_CLOSED, id, "HEADERS after RST_STREAM");
      }
      if (gone === GONE_CLOSED) {
        throw connectionError(ErrorCode.STREAM_CLOSED, "HEADERS on a closed stream");
      }
      throw connectionError(ErrorCode.PROTOCOL_ERROR, "Stream id lower than a previous one");
    }
    this.#lastStreamId = id;
    if (selfDependent) {
      this.#reject(id, ErrorCode.PROTOCOL_ERROR, "Stream depends on itself");
      return;
    }
    // §5.1.2: over our SETTINGS_MAX_CONCURRENT_STREAMS (also before the client saw it).
    if (this.activeStreams >= this.#o.maxConcurrentStreams) {
      this.#reject(id, ErrorCode.REFUSED_STREAM, "Too many concurrent streams");
      return;
    }
    if (tooLarge) {
      this.#answer431(id, endStream);
      return;
    }
    let head: ReturnType<typeof parseRequestHead>;
    try {
      head = parseRequestHead(fields);
    } catch (e) {
      if (!(e instanceof MalformedError)) throw e;
      this.#reject(id, ErrorCode.PROTOCOL_ERROR, e.message);
      return;
    }
    // §8.1.1: content-length promises DATA that END_STREAM on HEADERS rules out.
    if (endStream && head.contentLength > 0) {
      this.#reject(id, ErrorCode.PROTOCOL_ERROR, "content-length with no DATA");
      return;
    }
    const s2 = new Stream(id, endStream, this.#recvInitial, this.#peerInitial, head.contentLength);
    if (this.#streams === null) this.#streams = new Map();
    this.#streams.set(id, s2);
    this.#lastProcessed = id;
    this.#emit({
      type: "request",
      stream: id,
      method: head.method,
      scheme: head.scheme,
      authority: head.authority,
      path: head.path,
      headers: head.headers,
      contentLength: head.contentLength,
      endStream,
    });
  }

  #onTrailers(
    s: Stream,
    fields: string[],
    tooLarge: boolean,
    endStream: boolean,
    selfDependent: boolean,
  ): void {
    const id = s.id;
    if (selfDependent) throw streamError(ErrorCode.PROTOCOL_ERROR, id, "Stream depends on itself");
    // §5.1 half-closed (remote).
    if (s.remoteClosed) throw streamError(ErrorCode.STREAM_CLOSED, id, "HEADERS after END_STREAM");
    // §8.1: a second HEADERS is the trailer section and ends the stream.
    if (!endStream) throw streamError(ErrorCode.PROTOCOL_ERROR, id, "Trailers without END_STREAM");
    if (tooLarge) throw streamError(ErrorCode.ENHANCE_YOUR_CALM, id, "Trailers too large");
    try {
      checkTrailers(fields);
    } catch (e) {
      if (!(e instanceof MalformedError)) throw e;
      throw streamError(ErrorCode.PROTOCOL_ERROR, id, e.message);
    }
    if (s.expectedLength >= 0 && s.receivedLength !== s.expectedLength) {
      throw streamError(ErrorCode.PROTOCOL_ERROR, id, "DATA length differs from content-length");
    }
    this.#emit({ type: "trailers", stream: id, headers: fields });
    s.remoteClosed = true;
    if (s.localClosed) this.#close(s, GONE_CLOSED);
  }

  /** Refuses a new stream with RST_STREAM (a stream error the client caused). */
  #reject(id: number, code: number, message: string): void {
    this.#write(encodeRstStream(id, code));
    this.#owe();
    this.#remember(id, GONE_RESET_BY_US);
    this.#emit({ type: "rejected", stream: id, status: 0, code, message });
    this.#takeReset();
  }

  /** RFC 9113 §10.5.1: a header list over our limit gets 431, then the stream is closed. */
  #answer431(id: number, endStream: boolean): void {
    this.#lastProcessed = id;
    this.#write(encodeHeaders(id, this.#encoder.encode(431, []), true, this.#peerMaxFrame));
    // §8.1: the response is complete; NO_ERROR asks the client to stop sending its body.
    if (!endStream) this.#write(encodeRstStream(id, ErrorCode.NO_ERROR));
    this.#remember(id, endStream ? GONE_CLOSED : GONE_RESET_BY_US);
    this.#emit({
      type: "rejected",
      stream: id,
      status: 431,
      code: ErrorCode.NO_ERROR,
      message: "Request header list too large",
    });
  }

  #onRstStream(id: number, payload: Uint8Array): void {
    if (id === 0) throw connectionError(ErrorCode.PROTOCOL_ERROR, "RST_STREAM on stream 0");
    const code = parseRstStream(payload);
    // §6.4: RST_STREAM on an idle stream is a connection error.
    if (this.#isIdle(id)) {
      throw connectionError(ErrorCode.PROTOCOL_ERROR, "RST_STREAM on an idle stream");
    }
    const s = this.#streams?.get(id);
    if (s === undefined) return; // §5.1 closed: ignored
    const unfinished = !s.localClosed;
    this.#close(s, GONE_RESET_BY_PEER);
    this.#emit({ type: "reset", stream: id, code, remote: true });
    // CVE-2023-44487: streams opened and reset before we could answer cost us work each.
    if (unfinished) this.#takeReset();
  }

  #onSettings(flags: number, id: number, payload: Uint8Array): void {
    if (id !== 0) throw connectionError(ErrorCode.PROTOCOL_ERROR, "SETTINGS on a stream");
    if ((flags & Flag.ACK) !== 0) {
      // §6.5: an ACK is empty.
      if (payload.length !== 0) {
        throw connectionError(ErrorCode.FRAME_SIZE_ERROR, "SETTINGS ACK with a payload");
      }
      this.#onSettingsAck();
      return;
    }
    forEachSetting(payload, (param, value) => this.#applySetting(param, value));
    this.#gotSettings = true;
    // §6.5.3: acknowledge at once.
    this.#write(SETTINGS_ACK.slice());
    this.#owe();
  }

  #applySetting(param: number, value: number): void {
    switch (param) {
      case SettingId.ENABLE_PUSH:
      case SettingId.ENABLE_CONNECT_PROTOCOL:
      case SettingId.NO_RFC7540_PRIORITIES:
        // §6.5.2, RFC 8441 §3, RFC 9218 §2.1: 0 or 1.
        if (value > 1) {
          throw connectionError(ErrorCode.PROTOCOL_ERROR, `SETTINGS ${param} value ${value}`);
        }
        return;
      case SettingId.INITIAL_WINDOW_SIZE: {
        if (value > MAX_WINDOW) {
          throw connectionError(
            ErrorCode.FLOW_CONTROL_ERROR,
            "SETTINGS_INITIAL_WINDOW_SIZE above 2^31-1",
          );
        }
        // §6.9.2: the change applies to every open stream's window, which may go negative
        // but not above 2^31-1.
        const delta = value - this.#peerInitial;
        this.#peerInitial = value;
        if (this.#streams !== null && delta !== 0) {
          for (const s of this.#streams.values()) {
            s.sendWindow += delta;
            if (s.sendWindow > MAX_WINDOW) {
              throw connectionError(ErrorCode.FLOW_CONTROL_ERROR, "Stream window above 2^31-1");
            }
          }
        }
        return;
      }
      case SettingId.MAX_FRAME_SIZE:
        if (value < DEFAULT_MAX_FRAME_SIZE || value > MAX_FRAME_SIZE_LIMIT) {
          throw connectionError(ErrorCode.PROTOCOL_ERROR, `SETTINGS_MAX_FRAME_SIZE ${value}`);
        }
        this.#peerMaxFrame = value;
        return;
      default:
        // HEADER_TABLE_SIZE: our encoder keeps no table (see HpackEncoder).
        // MAX_CONCURRENT_STREAMS: limits pushes, which we never send.
        // MAX_HEADER_LIST_SIZE: advisory (§6.5.2); the application's headers are sent as is.
        // Unknown parameters MUST be ignored (§6.5.2).
        return;
    }
  }

  /** The client applied our SETTINGS (§6.5.3): our window size and table size take effect. */
  #onSettingsAck(): void {
    if (this.#settingsAcked) return;
    this.#settingsAcked = true;
    const delta = this.#o.initialWindowSize - this.#recvInitial;
    this.#recvInitial = this.#o.initialWindowSize;
    if (delta !== 0 && this.#streams !== null) {
      for (const s of this.#streams.values()) s.recvWindow += delta;
    }
    if (this.#o.headerTableSize !== DEFAULT_HEADER_TABLE_SIZE) {
      this.#decoder.setSettingsTableSize(this.#o.headerTableSize);
    }
  }

  #onPing(flags: number, id: number, payload: Uint8Array): void {
    if (id !== 0) throw connectionError(ErrorCode.PROTOCOL_ERROR, "PING on a stream");
    if (payload.length !== 8) {
      throw connectionError(ErrorCode.FRAME_SIZE_ERROR, "PING not 8 bytes long");
    }
    if ((flags & Flag.ACK) !== 0) {
      if (this.#goaway === GOAWAY_DRAINING && equal8(payload, SHUTDOWN_PING)) {
        this.#finalGoaway(ErrorCode.NO_ERROR);
      }
      return;
    }
    // §6.7: answer with the same data and ACK.
    this.#write(encodePing(payload, true));
    this.#owe();
  }

  #onGoaway(id: number, payload: Uint8Array): void {
    if (id !== 0) throw connectionError(ErrorCode.PROTOCOL_ERROR, "GOAWAY on a stream");
    const g = parseGoaway(payload);
    this.#peerGoaway = true;
    this.#emit({ type: "goaway", lastStreamId: g.lastStreamId, code: g.code, debug: g.debug });
  }

  #onWindowUpdate(id: number, payload: Uint8Array): void {
    const increment = parseWindowUpdate(payload);
    if (id === 0) {
      // §6.9: a zero increment on the connection is a connection error.
      if (increment === 0) throw connectionError(ErrorCode.PROTOCOL_ERROR, "WINDOW_UPDATE of 0");
      // §6.9.1: a window above 2^31-1.
      if (this.#connSend + increment > MAX_WINDOW) {
        throw connectionError(ErrorCode.FLOW_CONTROL_ERROR, "Connection window above 2^31-1");
      }
      this.#connSend += increment;
      return;
    }
    if (this.#isIdle(id)) {
      throw connectionError(ErrorCode.PROTOCOL_ERROR, "WINDOW_UPDATE on an idle stream");
    }
    const s = this.#streams?.get(id);
    if (s === undefined) return; // §5.1 closed: ignored
    if (increment === 0) throw streamError(ErrorCode.PROTOCOL_ERROR, id, "WINDOW_UPDATE of 0");
    if (s.sendWindow + increment > MAX_WINDOW) {
      throw streamError(ErrorCode.FLOW_CONTROL_ERROR, id, "Stream window above 2^31-1");
    }
    s.sendWindow += increment;
  }

  // ================= errors and protections =================

  /** §5.4.2: RST_STREAM for a stream the client broke a rule on; the connection lives on. */
  #streamError(id: number, code: number): void {
    const s = this.#streams?.get(id);
    if (s !== undefined) {
      this.#write(encodeRstStream(id, code));
      this.#close(s, GONE_RESET_BY_US);
      this.#emit({ type: "reset", stream: id, code, remote: false });
    } else if (this.#isIdle(id)) {
      // §6.4: no RST_STREAM on an idle stream; the error becomes the connection's.
      this.#fail(code, `Stream error ${code} on idle stream ${id}`);
      return;
    } else {
      this.#write(encodeRstStream(id, code));
      this.#remember(id, GONE_RESET_BY_US);
    }
    this.#owe();
    // CVE-2025-8671 ("MadeYouReset"): resets the client provokes count like its own.
    this.#takeReset();
  }

  /** §5.4.1: GOAWAY with the error, then nothing more but the error event. */
  #fail(code: number, message: string): void {
    if (this.#dead) return;
    this.#dead = true;
    this.#write(encodeGoaway(this.#lastProcessed, code, message));
    this.#streams = null;
    this.#sendable = null;
    this.#queuedTotal = 0;
    this.#hdr = null;
    this.#hdrLen = 0;
    this.#payload = null;
    this.#frameLen = -1;
    this.#hbBuf = null;
    this.#hbStream = 0;
    this.#emit({ type: "error", code, message });
  }

  #takeReset(): void {
    const now = this.#o.now();
    const tokens = Math.min(
      this.#o.resetBurst,
      this.#resetTokens + ((now - this.#resetTime) * this.#o.resetRate) / 1000,
    );
    this.#resetTime = now;
    if (tokens < 1) {
      this.#resetTokens = tokens;
      throw connectionError(ErrorCode.ENHANCE_YOUR_CALM, "Too many streams reset");
    }
    this.#resetTokens = tokens - 1;
  }

  #takeEmpty(): void {
    const now = this.#o.now();
    const tokens = Math.min(
      this.#o.emptyFrameBurst,
      this.#emptyTokens + ((now - this.#emptyTime) * this.#o.emptyFrameRate) / 1000,
    );
    this.#emptyTime = now;
    if (tokens < 1) {
      this.#emptyTokens = tokens;
      throw connectionError(ErrorCode.ENHANCE_YOUR_CALM, "Too many empty frames");
    }
    this.#emptyTokens = tokens - 1;
  }

  /** A control frame the client made us write: bounded while it does not read them. */
  #owe(): void {
    if (!this.#blocked) return;
    if (++this.#owed > this.#o.maxOwedControlFrames) {
      throw connectionError(ErrorCode.ENHANCE_YOUR_CALM, "Peer does not read our control frames");
    }
  }

  // ================= streams =================

  /** Forgets a stream; its unconsumed request bytes go back to the connection window. */
  #close(s: Stream, how: number): void {
    const streams = this.#streams;
    if (streams === null || !streams.delete(s.id)) return;
    if (streams.size === 0) this.#streams = null;
    if (this.#sendable !== null) {
      this.#sendable.delete(s);
      if (this.#sendable.size === 0) this.#sendable = null;
    }
    this.#queuedTotal -= s.queued;
    s.queued = 0;
    s.chunks = null;
    s.trailers = null;
    if (s.unconsumed > 0) {
      this.#creditConnection(s.unconsumed);
      s.unconsumed = 0;
    }
    this.#remember(s.id, how);
  }

  /** Our END_STREAM is written. */
  #localEnd(s: Stream): void {
    s.localClosed = true;
    if (s.remoteClosed) {
      this.#close(s, GONE_CLOSED);
    } else {
      // §8.1: a complete response before the whole request; RST_STREAM NO_ERROR asks the
      // client to stop sending the body (and returns its window).
      this.#write(encodeRstStream(s.id, ErrorCode.NO_ERROR));
      this.#close(s, GONE_RESET_BY_US);
    }
  }

  /**
   * Remembers how a stream ended, for the last RECENT streams, because §5.1 (closed) treats
   * later frames on it according to how it closed. Older streams count as never seen. Client
   * streams are odd, so (id >>> 1) * 4 + how fits in 32 bits (0 = empty slot).
   */
  #remember(id: number, how: number): void {
    if (this.#recent === null) this.#recent = new Uint32Array(RECENT);
    this.#recent[this.#recentAt] = (id >>> 1) * 4 + how;
    this.#recentAt = (this.#recentAt + 1) % RECENT;
  }

  #recall(id: number): number {
    const r = this.#recent;
    if (r === null || (id & 1) === 0) return GONE_UNKNOWN;
    const key = (id >>> 1) * 4;
    for (let i = 0; i < RECENT; i++) {
      const v = r[i] as number;
      if (v !== 0 && v - (v & 3) === key) return v & 3;
    }
    return GONE_UNKNOWN;
  }

  /** Returns `n` bytes to the stream's window, by WINDOW_UPDATE once half a window is due. */
  #creditStream(s: Stream, n: number): void {
    if (s.remoteClosed) return; // the client sends nothing more on it
    s.pendingUpdate += n;
    if (s.pendingUpdate >= Math.max(1, this.#recvInitial >>> 1)) {
      const inc = s.pendingUpdate;
      s.pendingUpdate = 0;
      s.recvWindow += inc;
      this.#write(encodeWindowUpdate(s.id, inc));
    }
  }

  /** Returns `n` bytes to the connection window, by WINDOW_UPDATE once half a window is due. */
  #creditConnection(n: number): void {
    this.#connPending += n;
    if (this.#connPending >= this.#o.connectionWindowSize >>> 1) {
      const inc = this.#connPending;
      this.#connPending = 0;
      this.#connRecv += inc;
      this.#write(encodeWindowUpdate(0, inc));
    }
  }

  // ================= sending =================

  #schedule(s: Stream): void {
    if (this.#sendable === null) this.#sendable = new Set([s]);
    else this.#sendable.add(s);
  }

  #finalGoaway(code: number): void {
    this.#goaway = GOAWAY_FINAL;
    this.#goawayLast = this.#lastProcessed;
    this.#write(encodeGoaway(this.#lastProcessed, code));
  }

  /** Sends what the windows allow, then writes everything out. */
  #pump(): void {
    if (!this.#dead && !this.#blocked && this.#sendable !== null) this.#sendQueued();
    const writable = this.#writable;
    if (writable !== null) {
      // After the whole round, so a stream that also sent its end gets no event.
      this.#writable = null;
      for (const s of writable) {
        if (this.#streams?.get(s.id) === s) {
          this.#emit({ type: "writable", stream: s.id, buffered: s.queued });
        }
      }
    }
    this.#flushOut();
  }

  /** Round-robin over streams with something queued, one frame each per round. */
  #sendQueued(): void {
    let progress = true;
    while (progress && this.#sendable !== null) {
      progress = false;
      for (const s of this.#sendable) {
        if (this.#sendFrame(s)) progress = true;
        if (s.queued === 0 && (!s.endQueued || s.localClosed)) this.#sendable?.delete(s);
      }
      if (this.#sendable?.size === 0) this.#sendable = null;
    }
  }

  /** Writes the next DATA (or trailers, or the bare end) of `s`; false when it cannot. */
  #sendFrame(s: Stream): boolean {
    if (s.queued > 0) {
      const n = Math.min(s.queued, s.sendWindow, this.#connSend, this.#peerMaxFrame);
      if (n <= 0) return false;
      const last = n === s.queued && s.endQueued && s.trailers === null;
      const head = new Uint8Array(FRAME_HEADER_SIZE);
      writeDataHeader(head, 0, s.id, n, last);
      this.#write(head);
      this.#takeChunks(s, n);
      s.sendWindow -= n;
      this.#connSend -= n;
      s.queued -= n;
      this.#queuedTotal -= n;
      if (last) {
        this.#localEnd(s);
      } else if (s.wantsWritable && s.queued <= this.#o.writableThreshold) {
        s.wantsWritable = false;
        if (this.#writable === null) this.#writable = [s];
        else this.#writable.push(s);
      }
      return true;
    }
    if (!s.endQueued || s.localClosed) return false;
    if (s.trailers !== null) {
      this.#write(encodeHeaders(s.id, s.trailers, true, this.#peerMaxFrame));
      s.trailers = null;
    } else {
      // A DATA frame of 0 bytes carries END_STREAM; it needs no window (§6.9).
      const head = new Uint8Array(FRAME_HEADER_SIZE);
      writeDataHeader(head, 0, s.id, 0, true);
      this.#write(head);
    }
    this.#localEnd(s);
    return true;
  }

  /** Moves the first `n` queued bytes of `s` to the output, as views. */
  #takeChunks(s: Stream, n: number): void {
    const chunks = s.chunks as Uint8Array[];
    let left = n;
    while (left > 0) {
      const c = chunks[0] as Uint8Array;
      const avail = c.length - s.chunkOffset;
      if (avail > left) {
        this.#write(c.subarray(s.chunkOffset, s.chunkOffset + left));
        s.chunkOffset += left;
        return;
      }
      this.#write(s.chunkOffset === 0 ? c : c.subarray(s.chunkOffset));
      chunks.shift();
      s.chunkOffset = 0;
      left -= avail;
    }
    if (chunks.length === 0) s.chunks = null;
  }

  // ================= output and events =================

  #write(bytes: Uint8Array): void {
    if (this.#out === null) this.#out = [bytes];
    else this.#out.push(bytes);
    this.#outLen += bytes.length;
  }

  /** Hands everything written since the last flush to the sink in one piece. */
  #flushOut(): void {
    const parts = this.#out;
    if (parts === null) return;
    let bytes: Uint8Array;
    if (parts.length === 1) {
      bytes = parts[0] as Uint8Array;
    } else {
      bytes = new Uint8Array(this.#outLen);
      let at = 0;
      for (const p of parts) {
        bytes.set(p, at);
        at += p.length;
      }
    }
    this.#out = null;
    this.#outLen = 0;
    if (this.#sink.write(bytes) === false) this.#blocked = true;
  }

  #emit(ev: H2Event): void {
    if (this.#events === null) this.#events = [ev];
    else this.#events.push(ev);
  }
}

function tooLargeBlock(): H2Error {
  return connectionError(ErrorCode.ENHANCE_YOUR_CALM, "Header block too large");
}

function equal8(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < 8; i++) if (a[i] !== b[i]) return false;
  return true;
}
