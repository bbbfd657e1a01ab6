/**
 * A client connection after a WebSocket upgrade (RFC 6455): the router's half of one ASGI
 * websocket. It reads frames with the sans-I/O receiver in src/ws, answers pings, runs the
 * close handshake and keepalive, and trades whole messages with the worker as MESSAGE and
 * CLOSE frames (docs/protocol.md, "WebSocket streams").
 *
 * Memory is the point: an idle WebSocket holds this object, its receiver (no buffers between
 * messages) and Bun's socket; no zlib state (permessage-deflate is negotiated without context
 * takeover, src/ws/handshake.ts) and no timer object (the shared 100 ms sweep drives pings).
 */
import type { Socket } from "bun";
import { INITIAL_WINDOW, MessageKind } from "./bridge/codec.ts";
import type { StreamHandler, WorkerLink } from "./bridge/worker-link.ts";
import { flushQueue, writeOrRest } from "./client-socket.ts";
import { log } from "./log.ts";
import { noteTransient } from "./memory.ts";
import type { ClientConnection, ServerContext } from "./server.ts";
import { deflateMessage } from "./ws/deflate.ts";
import { CloseCode, encodeClose, encodeFrame, Opcode, WsReceiver } from "./ws/frame.ts";
import type { DeflateParams } from "./ws/handshake.ts";

/** How long the peer gets to answer our close frame before the TCP connection is dropped. */
const CLOSE_TIMEOUT_MS = 5000;

/**
 * Messages from the app at least this big are compressed when permessage-deflate was agreed;
 * below it, deflate's per-message setup costs more time than the few bytes it could save (RFC
 * 7692 §6 lets each message choose, by the RSV1 bit).
 */
const DEFLATE_FROM = 512;

const EMPTY = new Uint8Array(0);

/** A complete client message the worker has no credit for yet (reading is paused). */
interface HeldMessage {
  kind: number;
  data: Uint8Array;
  offset: number;
}

export class WsConnection implements StreamHandler, ClientConnection {
  readonly webSocket = true;
  readonly #socket: Socket<ClientConnection>;
  readonly #ctx: ServerContext;
  #link: WorkerLink | null;
  readonly #stream: number;
  readonly #deflate: DeflateParams | null;
  /**
   * Frame parser; dropped whenever it holds nothing (no partial frame or message, no queued
   * event), so an idle WebSocket does not keep its ~200 bytes of parser state.
   */
  #receiver: WsReceiver | null = null;
  /** Bytes the socket did not take yet (null while nothing waits). */
  #out: Uint8Array[] | null = null;
  /** Message bytes the worker still accepts (docs/protocol.md, flow control). */
  #credit = INITIAL_WINDOW;
  #held: HeldMessage | null = null;
  /** Parts of a message from the app that is to be compressed whole. */
  #parts: Uint8Array[] | null = null;
  /** Fragments of an uncompressed message from the app already sent: continue with opcode 0. */
  #fragmenting = false;
  /** Credit to give back to the worker once queued bytes have been written. */
  #owed = 0;
  #paused = false;
  /** A close frame has been sent; the connection ends when the peer answers or time runs out. */
  #closeSent = false;
  #closed = false;
  /** onClose has run: the connection left the server's set. */
  #released = false;
  /** performance.now() of the last frame from the peer, and of our last ping. */
  #lastSeen: number;
  #lastPing = 0;
  #closeDeadline = 0;

  constructor(
    socket: Socket<ClientConnection>,
    ctx: ServerContext,
    link: WorkerLink,
    stream: number,
    deflate: DeflateParams | null,
    pending: Uint8Array[] | null,
  ) {
    this.#socket = socket;
    this.#ctx = ctx;
    this.#link = link;
    this.#stream = stream;
    this.#deflate = deflate;
    this.#out = pending;
    this.#lastSeen = performance.now();
  }

  get idle(): boolean {
    return false;
  }

  // -- from the client ----------------------------------------------------------------------

  onData(chunk: Uint8Array): void {
    noteTransient(chunk.byteLength);
    const metrics = this.#ctx.observers.metrics;
    if (metrics !== null) metrics.bytesReceived += chunk.byteLength;
    if (this.#closed) return;
    this.#lastSeen = performance.now();
    let receiver = this.#receiver;
    if (receiver === null) {
      receiver = new WsReceiver({
        maxMessage: this.#ctx.config.ws_max_size,
        deflate: this.#deflate,
      });
      this.#receiver = receiver;
    }
    receiver.feed(chunk);
    this.#pump();
  }

  #pump(): void {
    const receiver = this.#receiver;
    if (receiver === null) return;
    this.#drain(receiver);
    if (receiver.atMessageBoundary && this.#held === null && this.#receiver === receiver) {
      this.#receiver = null;
    }
  }

  #drain(receiver: WsReceiver): void {
    while (!this.#closed && this.#held === null) {
      const link = this.#link;
      if (link?.congested) {
        this.#pause();
        link.waitWritable(this);
        return;
      }
      const ev = receiver.next();
      if (ev === null) return;
      switch (ev.type) {
        case "message":
          if (this.#closeSent || link === null) break; // closing: data is discarded (§5.5.1)
          this.#forward(ev.binary ? MessageKind.BINARY : MessageKind.TEXT, ev.data);
          break;
        case "ping":
          // RFC 6455 §5.5.2: answer with a pong carrying the same application data.
          if (!this.#closeSent) this.#write(encodeFrame(Opcode.Pong, ev.data));
          break;
        case "pong":
          break;
        case "close":
          this.#peerClosed(ev.code, ev.reason);
          return;
        case "error":
          log.debug(`WebSocket protocol error from the client: ${ev.reason}`);
          this.#fail(ev.closeCode, ev.reason);
          return;
      }
    }
  }

  /** Send a client message to the worker, as far as its credit goes; hold the rest. */
  #forward(kind: number, data: Uint8Array): void {
    const link = this.#link as WorkerLink;
    link.countMessage();
    if (data.byteLength <= this.#credit) {
      this.#credit -= data.byteLength;
      link.sendMessage(this.#stream, kind, data, true);
      return;
    }
    this.#held = { kind, data, offset: 0 };
    this.#sendHeld();
  }

  #sendHeld(): void {
    const held = this.#held;
    const link = this.#link;
    if (held === null) return;
    if (link === null) {
      this.#held = null;
      return;
    }
    const rest = held.data.byteLength - held.offset;
    const part = Math.min(rest, this.#credit);
    if (part > 0 || rest === 0) {
      const end = part === rest;
      link.sendMessage(
        this.#stream,
        held.kind,
        held.data.subarray(held.offset, held.offset + part),
        end,
      );
      this.#credit -= part;
      held.offset += part;
      if (end) {
        this.#held = null;
        this.#resume();
        return;
      }
    }
    // The app is not taking messages: stop reading, so TCP pushes back on the client.
    this.#pause();
  }

  #peerClosed(code: number, reason: string): void {
    if (!this.#closeSent) {
      // RFC 6455 §5.5.1: answer a close with a close, echoing the status code.
      this.#closeSent = true;
      // (encodeClose sends an empty body for 1005, "no status received".)
      this.#write(encodeClose(code, ""));
    }
    this.#tellWorkerClosed(code, reason);
    // §7.1.1: the server closes the TCP connection first once the handshake is done.
    this.#endAfterWrite();
  }

  /** Fail the connection (§7.1.7): a close frame with the reason, then the TCP close. */
  #fail(code: number, reason: string): void {
    if (!this.#closeSent) {
      this.#closeSent = true;
      this.#write(encodeClose(code, reason));
    }
    this.#tellWorkerClosed(code, reason);
    this.#endAfterWrite();
  }

  #tellWorkerClosed(code: number, reason: string): void {
    const link = this.#link;
    this.#link = null;
    this.#held = null;
    this.#parts = null;
    if (link !== null) link.sendClose(this.#stream, code, reason);
  }

  // -- from the worker ------------------------------------------------------------------------

  onMessage(kind: number, data: Uint8Array, end: boolean): void {
    if (this.#closeSent || this.#closed) return;
    const link = this.#link;
    if (link === null) return;
    const deflate = this.#deflate;
    const opcode = this.#fragmenting
      ? Opcode.Continuation
      : kind === MessageKind.TEXT
        ? Opcode.Text
        : Opcode.Binary;
    if (deflate !== null && (this.#parts !== null || !end)) {
      // A message to compress arrives in parts: keep them (the payload is a view valid only
      // during this call) and compress it whole at its end; the parts' credit goes back at
      // once so the worker can send the rest.
      if (this.#parts === null) this.#parts = [];
      this.#parts.push(data.slice());
      if (!end) {
        link.grant(this.#stream, data.byteLength);
        return;
      }
      const whole = Buffer.concat(this.#parts);
      this.#parts = null;
      this.#sendMessage(
        kind === MessageKind.TEXT ? Opcode.Text : Opcode.Binary,
        whole,
        data.byteLength,
      );
      return;
    }
    if (!end) {
      // Uncompressed and long: pass it on as fragments (§5.4) instead of collecting it.
      this.#fragmenting = true;
      const queued = this.#write(encodeFrame(opcode, data, false));
      this.#creditBack(data.byteLength, queued);
      return;
    }
    this.#fragmenting = false;
    if (opcode === Opcode.Continuation) {
      const queued = this.#write(encodeFrame(opcode, data, true));
      this.#creditBack(data.byteLength, queued);
      return;
    }
    this.#sendMessage(opcode, data, data.byteLength);
  }

  #sendMessage(opcode: number, data: Uint8Array, credit: number): void {
    const deflate = this.#deflate;
    let frame: Uint8Array;
    if (deflate !== null && data.byteLength >= DEFLATE_FROM) {
      frame = encodeFrame(opcode, deflateMessage(data, deflate.serverMaxWindowBits), true, true);
    } else {
      frame = encodeFrame(opcode, data, true);
    }
    this.#creditBack(credit, this.#write(frame));
  }

  #creditBack(bytes: number, queued: boolean): void {
    if (bytes === 0 || this.#link === null) return;
    if (queued) this.#owed += bytes;
    else this.#link.grant(this.#stream, bytes);
  }

  /** The app closed (websocket.close, or it returned or failed after accepting). */
  onWsClose(code: number, reason: string): void {
    this.#link = null;
    this.#held = null;
    if (this.#closed) return;
    if (this.#closeSent) {
      this.#endAfterWrite();
      return;
    }
    this.#closeSent = true;
    this.#write(encodeClose(code, reason));
    this.#closeDeadline = performance.now() + CLOSE_TIMEOUT_MS;
    // Keep reading: the peer's close frame completes the handshake (§5.5.1).
    this.#resume();
  }

  onWindow(increment: number): void {
    this.#credit += increment;
    if (this.#held !== null) this.#sendHeld();
    if (this.#held === null) {
      this.#resume();
      this.#pump();
    }
  }

  onWritable(): void {
    if (this.#closed) return;
    this.#resume();
    this.#pump();
  }

  onWorkerLost(): void {
    // The app's process died: the client hears 1011 (internal error) instead of a hang.
    this.#link = null;
    this.#fail(CloseCode.InternalError, "");
  }

  onReset(_code: number): void {
    this.onWorkerLost();
  }

  onResponse(): void {}
  onBody(): void {}
  onContinue(): void {}

  // -- socket ---------------------------------------------------------------------------------

  onDrain(): void {
    const out = this.#out;
    if (out !== null) {
      flushQueue(this.#socket, out, this.#ctx.observers.metrics);
      if (out.length > 0) return;
    }
    this.#out = null;
    if (this.#owed > 0) {
      this.#link?.grant(this.#stream, this.#owed);
      this.#owed = 0;
    }
    if (this.#closeSent && this.#closeDeadline === 0) this.#socket.end();
  }

  onClose(): void {
    if (!this.#closed) {
      this.#closed = true;
      // Gone without a close frame, or after it: the app hears 1006 unless it already knows.
      this.#tellWorkerClosed(1006, "");
    }
    // The keepalive reaper and abandon() mark the connection closed before the socket's close
    // event arrives; it must still leave the connection set (or a drain waits for it).
    if (this.#released) return;
    this.#released = true;
    this.#out = null;
    const metrics = this.#ctx.observers.metrics;
    if (metrics !== null) metrics.webSockets--;
    this.#ctx.connections.delete(this);
    this.#ctx.onConnectionClosed();
  }

  /** Keepalive and close-handshake deadlines, from the shared sweep. */
  checkDeadline(now: number): void {
    if (this.#closed) return;
    if (this.#closeDeadline !== 0) {
      if (now >= this.#closeDeadline) this.#socket.terminate();
      return;
    }
    const interval = this.#ctx.config.ws_keepalive_timeout * 1000;
    if (interval <= 0 || this.#closeSent) return;
    const silent = now - this.#lastSeen;
    if (silent >= 2 * interval) {
      log.debug("WebSocket peer silent for twice the keepalive interval; closing");
      this.#tellWorkerClosed(1006, "");
      this.#closed = true;
      this.#socket.terminate();
      return;
    }
    if (silent >= interval && now - this.#lastPing >= interval) {
      this.#lastPing = now;
      this.#write(encodeFrame(Opcode.Ping, EMPTY));
    }
  }

  /** Server shutdown: close with 1001 (going away); the app hears the same code. */
  closeIfIdle(): void {
    this.#goAway(CloseCode.GoingAway);
  }

  /** Its worker is being recycled or reloaded: 1012 (service restart) invites a reconnect. */
  onWorkerRetiring(): void {
    this.#goAway(CloseCode.ServiceRestart);
  }

  #goAway(code: number): void {
    if (this.#closed || this.#closeSent) return;
    this.#closeSent = true;
    this.#write(encodeClose(code, ""));
    this.#closeDeadline = performance.now() + CLOSE_TIMEOUT_MS;
    this.#tellWorkerClosed(code, "");
    this.#resume();
  }

  abandon(): void {
    if (this.#closed) return;
    this.#tellWorkerClosed(CloseCode.GoingAway, "");
    this.#closed = true;
    this.#socket.terminate();
  }

  #pause(): void {
    if (!this.#paused) {
      this.#paused = true;
      this.#socket.pause();
    }
  }

  #resume(): void {
    if (this.#paused) {
      this.#paused = false;
      this.#socket.resume();
    }
  }

  /** Write or queue bytes; returns true if anything is queued afterwards. */
  #write(data: Uint8Array): boolean {
    if (this.#closed) return false;
    if (this.#out !== null) {
      this.#out.push(data);
      return true;
    }
    const rest = writeOrRest(this.#socket, data, this.#ctx.observers.metrics);
    if (rest === null) return false;
    this.#out = [rest];
    return true;
  }

  #endAfterWrite(): void {
    this.#closeDeadline = 0;
    if (this.#out === null) this.#socket.end();
  }
}
