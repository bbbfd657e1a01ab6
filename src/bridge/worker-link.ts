/**
 * One worker's end of the router: the Unix socket to a Python worker, the streams multiplexed
 * on it, and the frames between them (docs/protocol.md). It knows nothing about HTTP/1.1; a
 * client connection implements {@link StreamHandler} and gets the worker's answers through it.
 */
import type { Socket } from "bun";
import { log } from "../log.ts";
import { noteTransient } from "../memory.ts";
import {
  decodeClose,
  decodeHello,
  decodeMessage,
  decodeReset,
  decodeResponse,
  decodeWindow,
  encodeBody,
  encodeClose,
  encodeControl,
  encodeMessage,
  encodeRequest,
  encodeReset,
  encodeShutdown,
  encodeWindow,
  FLAG_END,
  FrameDecoder,
  FrameType,
  ProtocolError,
  type RequestHeadFields,
  ResetCode,
  ShutdownReason,
  VERSION,
} from "./codec.ts";

/** What a stream's owner (a client connection) hears from the worker. */
export interface StreamHandler {
  /** True once the stream is an accepted WebSocket (counted apart from requests in flight). */
  readonly webSocket: boolean;
  onResponse(status: number, headers: string[], body: Uint8Array, end: boolean): void;
  onBody(body: Uint8Array, end: boolean): void;
  /** The app failed after its response started (APP_ERROR) or broke the protocol. */
  onReset(code: number): void;
  /** The worker granted `increment` more request-body bytes. */
  onWindow(increment: number): void;
  /** The worker went away with this stream open. */
  onWorkerLost(): void;
  /** The link is no longer congested (after {@link WorkerLink.waitWritable}). */
  onWritable(): void;
  /** The app started reading a body sent with the CONTINUE flag. */
  onContinue(): void;
  /** A WebSocket message part from the app (END on its last part). */
  onMessage(kind: number, data: Uint8Array, end: boolean): void;
  /** The app closed its WebSocket; the stream is forgotten. */
  onWsClose(code: number, reason: string): void;
  /** The worker is being retired: a WebSocket closes with 1012 so its client reconnects. */
  onWorkerRetiring(): void;
}

/** Request-body chunks at least this large are sent to the worker without being copied. */
const ZERO_COPY_FROM = 16 * 1024;
const EMPTY_BODY = new Uint8Array(0);

function setPayloadLength(frame: Uint8Array, length: number): void {
  new DataView(frame.buffer, frame.byteOffset, 4).setUint32(0, length);
}

export interface LinkEvents {
  ready(link: WorkerLink): void;
  closed(link: WorkerLink): void;
  /** The link's write queue drained below the congestion mark. */
  writable(link: WorkerLink): void;
  /** A retiring link has no stream left. */
  drained(link: WorkerLink): void;
  /** A stream was opened or a client message sent: the recycling count moved. */
  used(link: WorkerLink): void;
}

/**
 * Bytes queued for a worker that does not read (a loop blocked by CPU-bound app code) above
 * which it gets no new requests until it catches up. Without this mark every new request
 * would pile up in the router; with it, they wait in their sockets' kernel buffers.
 */
const CONGESTED_BYTES = 1024 * 1024;

export class WorkerLink {
  readonly #socket: Socket<WorkerLink>;
  readonly #events: LinkEvents;
  readonly #decoder = new FrameDecoder();
  readonly #streams = new Map<number, StreamHandler>();
  #nextId = 1;
  #queue: Uint8Array[] = [];
  #queuedBytes = 0;
  /** Streams that stopped forwarding request bodies while the link was congested. */
  #blocked: StreamHandler[] = [];
  #closed = false;
  #shutdownSent = false;
  pid = 0;
  slot = -1;
  ready = false;
  /** Streams opened and not yet finished: the dispatch policy's measure of load. */
  inFlight = 0;
  /** Accepted WebSockets on this worker (they are pinned to it for their lifetime). */
  webSockets = 0;
  /** Reload generation of the Python process that started this worker (from HELLO). */
  generation = 0;
  /** Requests and client WebSocket messages handed to this worker: --max-requests counts these. */
  uses = 0;
  /** No new streams: the worker is drained, then told to stop or recycle. */
  retiring = false;

  constructor(socket: Socket<WorkerLink>, events: LinkEvents) {
    this.#socket = socket;
    this.#events = events;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Too much is already waiting to be written to this worker: dispatch elsewhere. */
  get congested(): boolean {
    return this.#queuedBytes > CONGESTED_BYTES;
  }

  /** Call `handler.onWritable()` once this link is no longer congested. */
  waitWritable(handler: StreamHandler): void {
    if (!this.#blocked.includes(handler)) this.#blocked.push(handler);
  }

  // -- streams --------------------------------------------------------------------------------

  /** Open a stream with its request head (and the body bytes already available). */
  openStream(
    head: RequestHeadFields,
    body: Uint8Array | null,
    end: boolean,
    handler: StreamHandler,
    expectContinue = false,
  ): number {
    let id = this.#nextId;
    while (this.#streams.has(id)) id = id >= 0xffffffff ? 1 : id + 1;
    this.#nextId = id >= 0xffffffff ? 1 : id + 1;
    this.#streams.set(id, handler);
    this.inFlight++;
    this.uses++;
    this.#write(encodeRequest(id, head, body, end, expectContinue));
    this.#events.used(this);
    return id;
  }

  sendBody(id: number, data: Uint8Array, end: boolean): void {
    if (!this.#streams.has(id)) return;
    if (data.byteLength < ZERO_COPY_FROM) {
      this.#write(encodeBody(id, data, end));
      return;
    }
    // Large chunks: the 10-byte header, then the client's bytes as they are (no copy).
    this.#write(encodeBody(id, EMPTY_BODY, end), data.byteLength);
    this.#write(data);
  }

  /**
   * The app accepted the WebSocket on stream `id`: from now on `handler` owns it, and it counts
   * as a WebSocket instead of a request in flight.
   */
  upgrade(id: number, handler: StreamHandler): void {
    if (!this.#streams.has(id)) return;
    this.#streams.set(id, handler);
    this.inFlight--;
    this.webSockets++;
  }

  /** A client WebSocket message (or part of one) for the app. */
  sendMessage(id: number, kind: number, data: Uint8Array, end: boolean): void {
    if (!this.#streams.has(id)) return;
    if (data.byteLength < ZERO_COPY_FROM) {
      this.#write(encodeMessage(id, kind, data, end));
      return;
    }
    const header = encodeMessage(id, kind, EMPTY_BODY, end);
    this.#write(header, data.byteLength + 1);
    this.#write(data);
  }

  /** Count one whole client message towards --max-requests (WebSocket-only workers recycle too). */
  countMessage(): void {
    this.uses++;
    this.#events.used(this);
  }

  /** The client closed the WebSocket (or went away): tell the app and forget the stream. */
  sendClose(id: number, code: number, reason: string): void {
    if (this.#forget(id)) this.#write(encodeClose(id, code, reason));
  }

  /** Give the worker `increment` more bytes of response credit on stream `id`. */
  grant(id: number, increment: number): void {
    if (increment > 0 && this.#streams.has(id)) this.#write(encodeWindow(id, increment));
  }

  /** The client is gone (or the router gave up): tell the worker and forget the stream. */
  cancel(id: number): void {
    if (this.#forget(id)) this.#write(encodeReset(id, ResetCode.CLIENT_GONE));
  }

  /** The response completed: forget the stream (late frames for it are ignored). */
  finish(id: number): void {
    this.#forget(id);
  }

  #forget(id: number): boolean {
    const handler = this.#streams.get(id);
    if (handler === undefined) return false;
    this.#streams.delete(id);
    if (handler.webSocket) this.webSockets--;
    else this.inFlight--;
    if (this.retiring && this.#streams.size === 0) this.#events.drained(this);
    return true;
  }

  /** No stream in flight or open. */
  get empty(): boolean {
    return this.#streams.size === 0;
  }

  /** Stop dispatching here; WebSockets are asked to close (1012) so that the worker drains. */
  retire(): void {
    if (this.retiring) return;
    this.retiring = true;
    for (const handler of [...this.#streams.values()]) {
      if (handler.webSocket) handler.onWorkerRetiring();
    }
    if (this.#streams.size === 0) this.#events.drained(this);
  }

  shutdown(reason: number = ShutdownReason.STOP): void {
    if (this.#shutdownSent || this.#closed) return;
    this.#shutdownSent = true;
    this.#write(encodeShutdown(reason));
  }

  // -- socket events --------------------------------------------------------------------------

  onData(data: Uint8Array): void {
    noteTransient(data.byteLength);
    try {
      this.#decoder.feed(data, this.#onFrame);
    } catch (err) {
      const detail = err instanceof ProtocolError ? err.message : String(err);
      log.error(`Protocol error from worker ${this.slot} [${this.pid}]: ${detail}`);
      this.#socket.terminate();
    }
  }

  onDrain(): void {
    const wasCongested = this.congested;
    const queue = this.#queue;
    while (queue.length > 0) {
      const chunk = queue[0] as Uint8Array;
      const written = Math.max(this.#socket.write(chunk), 0);
      this.#queuedBytes -= written;
      if (written < chunk.byteLength) {
        queue[0] = chunk.subarray(written);
        break;
      }
      queue.shift();
    }
    if (wasCongested && !this.congested) {
      const blocked = this.#blocked;
      this.#blocked = [];
      for (const handler of blocked) handler.onWritable();
      this.#events.writable(this);
    }
  }

  onClose(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.ready = false;
    const handlers = [...this.#streams.values()];
    this.#streams.clear();
    this.#blocked = [];
    this.inFlight = 0;
    this.webSockets = 0;
    for (const handler of handlers) handler.onWorkerLost();
    this.#events.closed(this);
  }

  /**
   * Write bytes to the worker; unwritten bytes are copied into the queue (the caller's
   * buffer may be a view that does not outlive this call). `bodyLength` patches the length
   * field of a header whose body follows in the next write.
   */
  #write(frame: Uint8Array, bodyLength = 0): void {
    if (this.#closed) return;
    if (bodyLength > 0) setPayloadLength(frame, bodyLength);
    if (this.#queue.length > 0) {
      this.#queue.push(frame.slice());
      this.#queuedBytes += frame.byteLength;
      return;
    }
    const written = Math.max(this.#socket.write(frame), 0);
    if (written < frame.byteLength) {
      this.#queue.push(frame.slice(written));
      this.#queuedBytes += frame.byteLength - written;
    }
  }

  readonly #onFrame = (type: number, flags: number, stream: number, payload: Uint8Array): void => {
    try {
      this.#dispatchFrame(type, flags, stream, payload);
    } catch (err) {
      if (err instanceof ProtocolError) throw err;
      // A bug while handling one stream must not take down the worker's other streams.
      log.error(
        `Internal error handling frame ${type} of stream ${stream}: ${(err as Error).stack ?? err}`,
      );
      const handler = this.#streams.get(stream);
      if (handler !== undefined) {
        this.cancel(stream);
        handler.onReset(ResetCode.PROTOCOL);
      }
    }
  };

  #dispatchFrame(type: number, flags: number, stream: number, payload: Uint8Array): void {
    switch (type) {
      case FrameType.RESPONSE: {
        const handler = this.#streams.get(stream);
        if (handler === undefined) return;
        const end = (flags & FLAG_END) !== 0;
        if (end) this.#forget(stream);
        const response = decodeResponse(payload);
        handler.onResponse(response.status, response.headers, response.body, end);
        return;
      }
      case FrameType.BODY: {
        const handler = this.#streams.get(stream);
        if (handler === undefined) return;
        const end = (flags & FLAG_END) !== 0;
        if (end) this.#forget(stream);
        handler.onBody(payload, end);
        return;
      }
      case FrameType.WINDOW: {
        this.#streams.get(stream)?.onWindow(decodeWindow(payload));
        return;
      }
      case FrameType.CONTINUE: {
        this.#streams.get(stream)?.onContinue();
        return;
      }
      case FrameType.MESSAGE: {
        const handler = this.#streams.get(stream);
        if (handler === undefined) return;
        const message = decodeMessage(payload);
        handler.onMessage(message.kind, message.data, (flags & FLAG_END) !== 0);
        return;
      }
      case FrameType.CLOSE: {
        const handler = this.#streams.get(stream);
        if (handler === undefined) return;
        this.#forget(stream);
        const close = decodeClose(payload);
        handler.onWsClose(close.code, close.reason);
        return;
      }
      case FrameType.RESET: {
        const handler = this.#streams.get(stream);
        if (handler === undefined) return;
        this.#forget(stream);
        handler.onReset(decodeReset(payload).code);
        return;
      }
      case FrameType.HELLO: {
        const hello = decodeHello(payload);
        if (hello.version !== VERSION) {
          log.error(
            `Worker [${hello.pid}] speaks protocol version ${hello.version}, router speaks ${VERSION}`,
          );
          this.#socket.terminate();
          return;
        }
        this.pid = hello.pid;
        this.slot = hello.slot;
        this.generation = hello.generation;
        return;
      }
      case FrameType.READY: {
        this.ready = true;
        this.#events.ready(this);
        return;
      }
      case FrameType.PING: {
        this.#write(encodeControl(FrameType.PONG, payload));
        return;
      }
      default:
        return;
    }
  }
}
