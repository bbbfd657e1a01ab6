/**
 * Client connections: Bun.listen sockets (TCP or Unix) driving the sans-I/O HTTP/1.1 codec in
 * src/http1 and handing each request to a worker stream (src/bridge/worker-link.ts).
 *
 * One request at a time per connection (RFC 9112 §9.3.2: pipelined requests are answered in
 * order, so the next one is parsed only when the previous response is done). Bun's write()
 * returns how many bytes the kernel took and buffers nothing, so unwritten bytes are kept here
 * and written on `drain`; the worker gets response credit back only once its bytes are out.
 */
import { chmodSync } from "node:fs";
import type { Socket, SocketHandler, SocketListener } from "bun";
import { INITIAL_WINDOW, type RequestHeadFields } from "./bridge/codec.ts";
import type { StreamHandler, WorkerLink } from "./bridge/worker-link.ts";
import { flushQueue, ipv4, joinHostPort, writeOrRest } from "./client-socket.ts";
import type { RouterConfig } from "./config.ts";
import { H2Session } from "./h2-session.ts";
import { HttpError } from "./http1/errors.ts";
import {
  DEFAULT_LIMITS,
  eqLower,
  type RequestHead,
  RequestParser,
} from "./http1/request-parser.ts";
import {
  CHUNK_TRAILER,
  chunkHeader,
  LAST_CHUNK,
  type ResponseFraming,
  serializeResponseHead,
  serializeSimpleResponse,
} from "./http1/response.ts";
import { log } from "./log.ts";
import { noteTransient } from "./memory.ts";
import type { AccessLog } from "./observe/access-log.ts";
import type { Metrics } from "./observe/metrics.ts";
import { type ForwardedClient, resolveForwarded } from "./proxy/forwarded.ts";
import { parseProxyHeader } from "./proxy/proxy-protocol.ts";
import type { TrustList } from "./proxy/trust.ts";
import { tlsHeadPairs, tlsOptions } from "./tls.ts";
import { WsConnection } from "./websocket.ts";
import type { WorkerPool } from "./workers.ts";
import {
  checkUpgrade,
  type DeflateParams,
  isWebSocketUpgrade,
  serializeHandshake,
} from "./ws/handshake.ts";

export const SERVER_NAME = "saltare";

/** Body bytes collected before dispatch, so a small request travels as one frame. */
const PREDISPATCH_BODY = 64 * 1024;
/** Pipelined bytes buffered while a response is pending before reading is paused. */
const MAX_PIPELINE_BUFFER = 64 * 1024;

/** Response chunks at least this large are written without being copied. */
const ZERO_COPY_FROM = 16 * 1024;

const CONTINUE = Buffer.from("HTTP/1.1 100 Continue\r\n\r\n", "latin1");
const EMPTY = new Uint8Array(0);

/** What the listener's socket handlers and the deadline sweep need from any connection. */
export interface ClientConnection {
  onData(chunk: Uint8Array): void;
  onDrain(): void;
  onClose(): void;
  /** Called by the shared sweep with the current time (performance.now()). */
  checkDeadline(now: number): void;
  /** The server is draining: close now if nothing is in progress (a WebSocket says 1001). */
  closeIfIdle(): void;
  /** The shutdown timeout ran out: end whatever is still in progress. */
  abandon(): void;
}

/** A response the router gives itself (--metrics-path, --health-path). */
export interface LocalAnswer {
  status: number;
  headers: string[];
  body: string;
}

/** Paths the router answers without a worker. */
export interface LocalEndpoints {
  has(path: string): boolean;
  answer(path: string, draining: boolean): LocalAnswer;
}

/**
 * The operational options (all off by default). Each is null when off, and the request path
 * then pays one null check per hook, nothing more.
 */
export interface Observers {
  metrics: Metrics | null;
  accessLog: AccessLog | null;
  endpoints: LocalEndpoints | null;
  /** --proxy-headers and --proxy-protocol: the peers trusted to speak for clients. */
  trust: TrustList | null;
  proxyHeaders: boolean;
  proxyProtocol: boolean;
}

/** Shared by all connections of one listener. */
export interface ServerContext {
  config: RouterConfig;
  pool: WorkerPool;
  scheme: "http" | "https";
  serverHost: string;
  serverPort: string;
  /** Clients connect over a Unix socket (no peer address). */
  unix: boolean;
  connections: Set<ClientConnection>;
  draining: boolean;
  onConnectionClosed(): void;
  observers: Observers;
  /** Requests record a start time and their response size (metrics or access log on). */
  observing: boolean;
}

/** The client a PROXY protocol header named for a connection. */
export interface Peer {
  host: string;
  port: number;
}

/**
 * The request in progress on a connection and its response. It exists only while a request
 * is being handled, so an idle keep-alive connection carries none of these fields.
 */
class Exchange {
  link: WorkerLink | null = null;
  stream = 0;
  dispatched = false;
  waitingForWorker = false;
  /** The whole request body has been read (and forwarded, once dispatched). */
  reqDone = false;
  reqBytes = 0;
  /** Request-body bytes the worker still accepts (docs/protocol.md, flow control). */
  reqCredit = INITIAL_WINDOW;
  /** Body bytes read before dispatch, sent with the REQUEST frame. */
  pending: Uint8Array[] | null = null;
  pendingBytes = 0;
  respStarted = false;
  respDone = false;
  framing: ResponseFraming | null = null;
  respRemaining = 0;
  /** Response credit to give back once queued bytes have been written. */
  owedCredit = 0;
  /** Expect: 100-continue that is still unanswered (docs/protocol.md, CONTINUE). */
  awaitingContinue = false;
  /** A valid WebSocket handshake: the client's key and the compression agreed, if any. */
  ws: { key: string; deflate: DeflateParams | null; subprotocols: string[] } | null = null;
  /** The response status, once it started. */
  status = 0;
  /** Observed requests only (ServerContext.observing): start time and response bytes. */
  startedAt = 0;
  sent = 0;
  /** Counted in the metrics and the access log already (once per request). */
  recorded = false;
  /** Answered by the router itself (LocalEndpoints), not counted as app traffic. */
  local = false;
  /** Client and scheme from trusted proxy headers (--proxy-headers), if any. */
  forwarded: ForwardedClient | null = null;
  readonly head: RequestHead;

  constructor(head: RequestHead) {
    this.head = head;
  }
}

export class Http1Connection implements StreamHandler, ClientConnection {
  readonly webSocket = false;
  readonly #socket: Socket<ClientConnection>;
  readonly #ctx: ServerContext;
  /** Allocated when request bytes arrive and dropped again once the connection is idle. */
  #parser: RequestParser | null = null;
  #ex: Exchange | null = null;
  /** Bytes the socket did not take yet (null while nothing waits: most of the time). */
  #out: Uint8Array[] | null = null;
  #closing = false;
  #closed = false;
  #paused = false;
  #served = 0;
  /**
   * When this connection must have made progress (ms, performance.now() clock; 0 = none):
   * the whole head within header_timeout of its first byte (an absolute deadline, so a client
   * dribbling a byte at a time is still cut off), or the next request within
   * keep_alive_timeout of the previous response, or the request body within body_timeout
   * of the moment the server was ready to read it. Checked by {@link sweepDeadlines}, one
   * timer for all connections instead of one per connection.
   */
  #deadline = 0;
  /**
   * When queued response bytes must have moved (0 = nothing queued): write_timeout after the
   * last write that made progress, like nginx's send_timeout, so a client that reads slowly
   * but steadily is served and one that stopped reading is cut off.
   */
  #writeDeadline = 0;
  /** The client a PROXY protocol header named, if any (else the socket's peer). */
  readonly #peer: Peer | null;

  constructor(socket: Socket<ClientConnection>, ctx: ServerContext, peer: Peer | null = null) {
    this.#socket = socket;
    this.#ctx = ctx;
    this.#peer = peer;
    this.#deadline = performance.now() + ctx.config.header_timeout * 1000;
  }

  get idle(): boolean {
    return this.#ex === null && (this.#parser === null || this.#parser.idle) && this.#out === null;
  }

  // -- socket events ------------------------------------------------------------------------

  onData(chunk: Uint8Array): void {
    noteTransient(chunk.byteLength);
    const metrics = this.#ctx.observers.metrics;
    if (metrics !== null) metrics.bytesReceived += chunk.byteLength;
    if (this.#closing) return;
    let parser = this.#parser;
    if (
      parser === null &&
      this.#served === 0 &&
      this.#ctx.config.http2 &&
      chunk.byteLength >= 3 &&
      chunk[0] === 0x50 &&
      chunk[1] === 0x52 &&
      chunk[2] === 0x49
    ) {
      // "PRI": the HTTP/2 connection preface (RFC 9113 §3.4), a client with prior knowledge.
      this.switchToHttp2(chunk);
      return;
    }
    if (parser === null) {
      parser = new RequestParser(DEFAULT_LIMITS);
      this.#parser = parser;
    }
    if (this.#ex === null && parser.idle) {
      this.#deadline = performance.now() + this.#ctx.config.header_timeout * 1000;
    }
    parser.feed(chunk);
    this.#pump();
  }

  onDrain(): void {
    const out = this.#out;
    if (out !== null) {
      const written = flushQueue(this.#socket, out, this.#ctx.observers.metrics);
      if (out.length > 0) {
        if (written > 0) {
          this.#writeDeadline = performance.now() + this.#ctx.config.write_timeout * 1000;
        }
        return;
      }
    }
    this.#out = null;
    this.#writeDeadline = 0;
    const ex = this.#ex;
    if (ex !== null && ex.owedCredit > 0) {
      if (ex.link !== null && !ex.respDone) ex.link.grant(ex.stream, ex.owedCredit);
      ex.owedCredit = 0;
    }
    if (this.#closing) this.#socket.end();
  }

  /** Called by the sweep with the current time; closes the connection if it is overdue. */
  checkDeadline(now: number): void {
    if (this.#writeDeadline !== 0 && now >= this.#writeDeadline) {
      // The client stopped reading its response: nothing more can be said to it.
      log.debug("Write timeout: the client did not read its response; closing");
      this.#writeDeadline = 0;
      const ex = this.#ex;
      if (ex !== null && ex.link !== null && !ex.respDone) ex.link.cancel(ex.stream);
      this.#closing = true;
      this.#socket.terminate();
      return;
    }
    if (this.#deadline === 0 || now < this.#deadline || this.#closing) return;
    const ex = this.#ex;
    if (ex !== null) {
      if (ex.reqDone) {
        this.#deadline = 0;
        return;
      }
      if (this.#paused) {
        // Reading is paused because the app or its worker is not taking the body: the wait is
        // the server's, not the client's, so the client's time does not run meanwhile.
        this.#deadline = now + this.#ctx.config.body_timeout * 1000;
        return;
      }
      this.#deadline = 0;
      log.debug("Body timeout: the request body did not arrive in time");
      if (ex.link !== null && !ex.respDone) ex.link.cancel(ex.stream);
      if (!ex.respStarted) this.#fail(408, "Request Timeout");
      else this.#abort();
      return;
    }
    this.#deadline = 0;
    // An idle keep-alive connection closes quietly (RFC 9112 §9.6); a client that started a
    // request but did not finish its head within the timeout gets 408 first.
    if (this.#parser !== null && !this.#parser.idle) this.#fail(408, "Request Timeout");
    else this.#close();
  }

  onClose(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closing = true;
    const ex = this.#ex;
    if (ex !== null && ex.link !== null && !ex.respDone) ex.link.cancel(ex.stream);
    if (ex !== null && this.#ctx.observing) {
      // A response cut off by a write timeout still counts; a client that left before any
      // response does not (there is no status to report).
      if (ex.respStarted) this.#record(ex, ex.status);
      this.#exchangeEnded(ex);
    }
    this.#ex = null;
    this.#parser = null;
    this.#out = null;
    this.#ctx.connections.delete(this);
    this.#ctx.onConnectionClosed();
  }

  /** Hand a fresh connection over to HTTP/2 (ALPN "h2", or the preface in clear text). */
  switchToHttp2(first: Uint8Array | null): void {
    if (this.#served > 0 || this.#ex !== null || this.#closed) return;
    this.#closing = true;
    this.#closed = true;
    this.#parser = null;
    this.#deadline = 0;
    const session = new H2Session(this.#socket, this.#ctx, null, this.#peer);
    this.#socket.data = session;
    this.#ctx.connections.delete(this);
    this.#ctx.connections.add(session);
    if (first !== null) {
      // Counted by this connection already; the session counts it again.
      const metrics = this.#ctx.observers.metrics;
      if (metrics !== null) metrics.bytesReceived -= first.byteLength;
      session.onData(first);
    }
  }

  /** Close now if idle (used when the server starts draining). */
  closeIfIdle(): void {
    if (this.idle) this.#close();
  }

  /**
   * The shutdown timeout ran out with this connection still busy: a request whose response has
   * not started gets 503 (the app is told the client is gone); anything else is cut off.
   */
  abandon(): void {
    const ex = this.#ex;
    if (ex !== null && ex.link !== null && !ex.respDone) ex.link.cancel(ex.stream);
    if (ex !== null && !ex.respStarted) this.#fail(503, "Service Unavailable");
    else this.#abort();
  }

  // -- request side ---------------------------------------------------------------------------

  #pump(): void {
    const parser = this.#parser;
    if (parser === null) return;
    while (!this.#closing) {
      const ex = this.#ex;
      if (ex === null) {
        const ev = parser.next();
        if (ev === null) {
          if (this.#deadline !== 0) this.checkDeadline(performance.now());
          return;
        }
        if (ev.type === "head") {
          this.#startRequest(ev.head);
          continue;
        }
        if (ev.type === "error") {
          this.#rejectRequest(ev.error);
          return;
        }
        return; // body/end cannot come before a head
      }
      if (ex.reqDone) {
        // Response pending: keep pipelined bytes, but not without bound.
        if (parser.buffered > MAX_PIPELINE_BUFFER) this.#pause();
        return;
      }
      if (ex.dispatched && ex.link?.congested) {
        // The worker is not reading: stop reading this client until it catches up, so that
        // request bodies wait in the kernel instead of piling up in the router.
        this.#pause();
        ex.link.waitWritable(this);
        return;
      }
      const limit = ex.dispatched ? ex.reqCredit : PREDISPATCH_BODY - ex.pendingBytes;
      if (limit <= 0) {
        if (!ex.dispatched) this.#dispatch(ex);
        else this.#pause();
        if (ex.reqCredit <= 0 || !ex.dispatched) return;
        continue;
      }
      const ev = parser.next(limit);
      if (ev === null) {
        if (!ex.dispatched && ex.pendingBytes >= PREDISPATCH_BODY) this.#dispatch(ex);
        return;
      }
      if (ev.type === "body") {
        if (ex.awaitingContinue) {
          // The client sent the body without waiting for 100 (RFC 9110 §10.1.1 allows it).
          ex.awaitingContinue = false;
          this.#deadline = performance.now() + this.#ctx.config.body_timeout * 1000;
        }
        ex.reqBytes += ev.data.byteLength;
        if (ex.reqBytes > this.#ctx.config.max_request_body) {
          this.#bodyTooLarge(ex);
          return;
        }
        if (!ex.dispatched) {
          // Parser views are only valid until the next feed: keep a copy.
          if (ex.pending === null) ex.pending = [];
          ex.pending.push(ev.data.slice());
          ex.pendingBytes += ev.data.byteLength;
        } else {
          ex.reqCredit -= ev.data.byteLength;
          (ex.link as WorkerLink).sendBody(ex.stream, ev.data, false);
        }
        continue;
      }
      if (ev.type === "end") {
        ex.reqDone = true;
        this.#deadline = 0;
        if (!ex.dispatched) this.#dispatch(ex);
        else if (ex.link !== null) ex.link.sendBody(ex.stream, EMPTY, true);
        continue;
      }
      if (ev.type === "error") {
        this.#rejectRequest(ev.error);
        return;
      }
    }
  }

  #startRequest(head: RequestHead): void {
    const ctx = this.#ctx;
    const config = ctx.config;
    const ex = new Exchange(head);
    this.#ex = ex;
    const endpoints = ctx.observers.endpoints;
    if (endpoints?.has(head.rawPath)) ex.local = true;
    if (ctx.observing) {
      ex.startedAt = performance.now();
      const metrics = ctx.observers.metrics;
      if (metrics !== null && !ex.local) metrics.inFlight++;
    }
    if (ctx.observers.proxyHeaders) ex.forwarded = this.#forwardedFor(head);
    // Once the head is in, the client owes the body (if any); the response is the app's pace.
    this.#deadline = head.bodyKind === "none" ? 0 : performance.now() + config.body_timeout * 1000;
    if (head.bodyKind === "length" && head.contentLength > config.max_request_body) {
      // Declared too large: answer before reading any of it (the connection closes).
      this.#fail(413, "Request Entity Too Large");
      return;
    }
    if (head.upgrade !== null && isWebSocketUpgrade(head.method, head.headers)) {
      // RFC 6455 §4.2.1: a broken handshake is answered here; the app sees only valid ones.
      const check = checkUpgrade(head.method, head.httpVersion, head.headers);
      if (!check.ok) {
        this.#fail(check.status, check.reason, check.headers);
        return;
      }
      if (head.bodyKind !== "none") {
        this.#fail(400, "Bad Request");
        return;
      }
      const deflate = config.ws_per_message_deflate ? check.deflate : null;
      ex.ws = { key: check.key, deflate, subprotocols: check.subprotocols };
    }
    if (head.expectContinue && head.bodyKind !== "none" && head.httpVersion === "1.1") {
      // RFC 9110 §10.1.1: the client waits for "100 Continue" before sending the body. It is
      // sent only when the app asks for the body (the worker's CONTINUE frame), so a request
      // the app answers without reading (401, 413...) never makes the client upload it. The
      // body clock starts then, not now. (An HTTP/1.0 expectation is ignored, as §10.1.1 says.)
      ex.awaitingContinue = true;
      this.#deadline = 0;
      this.#dispatch(ex);
      return;
    }
    if (head.bodyKind === "length" && head.contentLength > PREDISPATCH_BODY) {
      // Too big to collect first: stream it to the worker as it arrives.
      this.#dispatch(ex);
    }
  }

  onContinue(): void {
    const ex = this.#ex;
    if (ex === null || !ex.awaitingContinue || ex.respStarted || this.#closing) return;
    ex.awaitingContinue = false;
    this.#write(CONTINUE);
    if (!ex.reqDone) this.#deadline = performance.now() + this.#ctx.config.body_timeout * 1000;
  }

  #dispatch(ex: Exchange): void {
    if (ex.dispatched || ex.waitingForWorker) return;
    if (ex.local) {
      this.#answerLocally(ex);
      return;
    }
    const link = this.#ctx.pool.pick();
    if (link === null) {
      ex.waitingForWorker = true;
      this.#pause();
      this.#ctx.pool.wait((ready) => {
        ex.waitingForWorker = false;
        if (this.#closing || this.#ex !== ex) return;
        if (ready === null) {
          this.#fail(503, "Service Unavailable");
          return;
        }
        this.#openStream(ex, ready);
        this.#resume();
        this.#pump();
      });
      return;
    }
    this.#openStream(ex, link);
  }

  #openStream(ex: Exchange, link: WorkerLink): void {
    const head = ex.head;
    const socket = this.#socket;
    let body: Uint8Array | null = null;
    const pending = ex.pending;
    if (pending !== null && pending.length === 1) body = pending[0] as Uint8Array;
    else if (pending !== null && pending.length > 1) body = Buffer.concat(pending);
    const sent = ex.pendingBytes;
    ex.pending = null;
    ex.pendingBytes = 0;
    let scheme = this.#ctx.scheme;
    let clientHost: string;
    let clientPort: string;
    const forwarded = ex.forwarded;
    const peer = this.#peer;
    if (forwarded !== null && forwarded.host !== null) {
      clientHost = forwarded.host;
      clientPort = forwarded.host === "" ? "" : (forwarded.port as string);
    } else if (peer !== null) {
      clientHost = peer.host;
      clientPort = String(peer.port);
    } else if (this.#ctx.unix) {
      clientHost = "";
      clientPort = "";
    } else {
      clientHost = ipv4(socket.remoteAddress);
      clientPort = String(socket.remotePort);
    }
    if (forwarded !== null && forwarded.scheme !== null) scheme = forwarded.scheme;
    const fields: RequestHeadFields = {
      method: head.method,
      scheme: ex.ws === null ? scheme : scheme === "https" ? "wss" : "ws",
      httpVersion: head.httpVersion,
      rawPath: head.rawPath,
      query: head.query,
      clientHost,
      clientPort,
      serverHost: this.#ctx.serverHost,
      serverPort: this.#ctx.serverPort,
      // Over TLS, the facts for the ASGI `tls` extension ride along as ":tls-*" pairs. They
      // are computed per request, not kept per connection: an idle TLS connection should not
      // hold a client certificate's PEM.
      headers:
        this.#ctx.scheme === "https" ? [...head.headers, ...tlsHeadPairs(socket)] : head.headers,
    };
    ex.link = link;
    ex.dispatched = true;
    ex.reqCredit -= sent;
    ex.stream = link.openStream(fields, body, ex.reqDone, this, ex.awaitingContinue);
  }

  #bodyTooLarge(ex: Exchange): void {
    if (ex.link !== null && !ex.respDone) ex.link.cancel(ex.stream);
    if (!ex.respStarted) this.#fail(413, "Request Entity Too Large");
    else this.#abort();
  }

  #rejectRequest(error: HttpError): void {
    log.debug(`Rejected request: ${error.code} (${error.message})`);
    const ex = this.#ex;
    if (ex !== null && ex.link !== null && !ex.respDone) ex.link.cancel(ex.stream);
    if (ex === null || !ex.respStarted) this.#fail(error.status, error.message);
    else this.#abort();
  }

  // -- flow control ----------------------------------------------------------------------------

  onWindow(increment: number): void {
    const ex = this.#ex;
    if (ex === null) return;
    ex.reqCredit += increment;
    if (ex.reqCredit > 0) {
      this.#resume();
      this.#pump();
    }
  }

  onWritable(): void {
    if (this.#closing || this.#ex === null) return;
    this.#resume();
    this.#pump();
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

  // -- response side ---------------------------------------------------------------------------

  onResponse(status: number, headers: string[], body: Uint8Array, end: boolean): void {
    const ex = this.#ex;
    if (this.#closing || ex === null) return;
    if (status === 101) {
      this.#acceptWebSocket(ex, headers);
      return;
    }
    const req = ex.head;
    const limit = this.#ctx.config.max_keepalive_requests;
    const keepAlive =
      req.keepAlive &&
      ex.reqDone &&
      !this.#ctx.draining &&
      (limit === 0 || this.#served + 1 < limit);
    let framing: ResponseFraming;
    try {
      framing = serializeResponseHead(
        status,
        headers,
        { httpVersion: req.httpVersion, method: req.method, keepAlive },
        SERVER_NAME,
      );
    } catch (err) {
      const detail = err instanceof HttpError ? err.message : String(err);
      log.error(`Invalid response from the application: ${detail}`);
      ex.link?.cancel(ex.stream);
      this.#fail(500, "Internal Server Error");
      return;
    }
    ex.framing = framing;
    ex.respStarted = true;
    ex.status = status;
    // An answer without reading the body: no 100 any more (RFC 9110 §10.1.1), and the unread
    // body means the connection closes after this response (keepAlive needs reqDone).
    ex.awaitingContinue = false;
    ex.respRemaining = framing.contentLength;
    this.#sendBody(ex, framing.head, body, end);
  }

  /** The app accepted a WebSocket: send the 101 and hand the socket to a WsConnection. */
  #acceptWebSocket(ex: Exchange, headers: string[]): void {
    const ws = ex.ws;
    const link = ex.link as WorkerLink;
    let handshake: string;
    try {
      if (ws === null) throw new HttpError("BAD_RESPONSE_HEADER", "status 101 outside a WebSocket");
      let subprotocol: string | null = null;
      const extra: string[] = [];
      for (let i = 0; i < headers.length; i += 2) {
        const name = headers[i] as string;
        const value = headers[i + 1] as string;
        if (name.toLowerCase() === "sec-websocket-protocol") subprotocol = value;
        else extra.push(name, value);
      }
      if (subprotocol !== null && !ws.subprotocols.includes(subprotocol)) {
        // RFC 6455 §4.2.2: the server must pick one of the subprotocols the client offered.
        throw new HttpError(
          "BAD_RESPONSE_HEADER",
          `subprotocol ${JSON.stringify(subprotocol)} was not offered by the client`,
        );
      }
      handshake = serializeHandshake(ws.key, subprotocol, ws.deflate, extra);
    } catch (err) {
      const detail = err instanceof Error ? err.message : String(err);
      log.error(`Invalid WebSocket accept from the application: ${detail}`);
      link.cancel(ex.stream);
      this.#fail(500, "Internal Server Error");
      return;
    }
    this.#write(Buffer.from(handshake, "latin1"));
    if (this.#ctx.observing) {
      this.#record(ex, 101);
      this.#exchangeEnded(ex);
      const metrics = this.#ctx.observers.metrics;
      if (metrics !== null) metrics.webSockets++;
    }
    const socket = this.#socket;
    const conn = new WsConnection(
      socket,
      this.#ctx,
      link,
      ex.stream,
      (ws as { deflate: DeflateParams | null }).deflate,
      this.#out,
    );
    // This object is done: the socket's events go to the WebSocket connection from now on.
    this.#out = null;
    this.#ex = null;
    this.#parser = null;
    this.#closing = true;
    this.#closed = true;
    this.#deadline = 0;
    this.#writeDeadline = 0;
    socket.data = conn;
    this.#ctx.connections.delete(this);
    this.#ctx.connections.add(conn);
    link.upgrade(ex.stream, conn);
    if (this.#paused) socket.resume();
  }

  onMessage(): void {}
  onWsClose(): void {}
  onWorkerRetiring(): void {}

  onBody(body: Uint8Array, end: boolean): void {
    const ex = this.#ex;
    if (this.#closing || ex === null || ex.framing === null) return;
    this.#sendBody(ex, "", body, end);
  }

  #sendBody(ex: Exchange, head: string, body: Uint8Array, end: boolean): void {
    const framing = ex.framing as ResponseFraming;
    let size = body.byteLength;
    let prefix = head;
    let suffix = "";
    switch (framing.mode) {
      case "none":
        size = 0;
        break;
      case "length":
        if (size > ex.respRemaining) {
          log.error(
            `Response body longer than its content-length (${framing.contentLength}); closing`,
          );
          this.#writeParts(prefix, body.subarray(0, ex.respRemaining), "");
          this.#abort();
          return;
        }
        ex.respRemaining -= size;
        if (end && ex.respRemaining > 0) {
          log.error(
            `Response body shorter than its content-length (${framing.contentLength}); closing`,
          );
          this.#writeParts(prefix, body, "");
          this.#abort();
          return;
        }
        break;
      case "chunked":
        if (size > 0) {
          prefix += chunkHeader(size);
          suffix = CHUNK_TRAILER;
        }
        if (end) suffix += LAST_CHUNK;
        break;
      case "close":
        break;
    }
    const queued = this.#writeParts(prefix, size > 0 ? body : EMPTY, suffix);
    if (end) {
      this.#finishResponse(ex);
      return;
    }
    // Credit goes back to the worker once its bytes have left for the client's socket.
    const credit = body.byteLength;
    if (queued) ex.owedCredit += credit;
    else (ex.link as WorkerLink).grant(ex.stream, credit);
  }

  /** Write head/body/suffix; returns true if some of it had to be queued. */
  #writeParts(prefix: string, body: Uint8Array, suffix: string): boolean {
    const total = prefix.length + body.byteLength + suffix.length;
    if (total === 0) return this.#out !== null;
    if (body.byteLength >= ZERO_COPY_FROM) {
      // Large chunks go out as they are, without a copy; the few extra bytes of framing cost
      // a syscall each, far less than copying (and later collecting) the body.
      if (prefix.length > 0) this.#write(Buffer.from(prefix, "latin1"));
      this.#write(body);
      return suffix.length > 0 ? this.#write(Buffer.from(suffix, "latin1")) : this.#out !== null;
    }
    const buffer = Buffer.allocUnsafe(total);
    let offset = 0;
    if (prefix.length > 0) offset += buffer.write(prefix, 0, "latin1");
    if (body.byteLength > 0) {
      buffer.set(body, offset);
      offset += body.byteLength;
    }
    if (suffix.length > 0) buffer.write(suffix, offset, "latin1");
    return this.#write(buffer);
  }

  #finishResponse(ex: Exchange): void {
    const framing = ex.framing as ResponseFraming;
    ex.respDone = true;
    this.#served++;
    if (this.#ctx.observing) {
      this.#record(ex, ex.status);
      this.#exchangeEnded(ex);
    }
    this.#ex = null;
    if (!framing.keepAlive || this.#ctx.draining) {
      this.#closeAfterWrite();
      return;
    }
    const parser = this.#parser as RequestParser;
    parser.startNext();
    const now = performance.now();
    if (parser.idle) {
      // Nothing of a next request yet: the idle connection keeps no parser.
      this.#parser = null;
      this.#deadline = now + this.#ctx.config.keep_alive_timeout * 1000;
    } else {
      this.#deadline = now + this.#ctx.config.header_timeout * 1000;
    }
    this.#resume();
    this.#pump();
  }

  onReset(_code: number): void {
    // The app failed after starting its response: the only honest signal left for the
    // client is to close without completing the message (no chunked terminator).
    const ex = this.#ex;
    if (ex !== null) {
      ex.respDone = true;
      ex.link = null;
    }
    this.#abort();
  }

  onWorkerLost(): void {
    const ex = this.#ex;
    if (ex === null) return;
    ex.link = null;
    ex.respDone = true;
    if (this.#closing) return;
    if (!ex.respStarted) {
      log.error("Worker died while handling a request; answering 502");
      this.#fail(502, "Bad Gateway");
    } else {
      this.#abort();
    }
  }

  // -- output and closing ------------------------------------------------------------------------

  /** Write or queue bytes; returns true if anything is queued afterwards. */
  #write(data: Uint8Array): boolean {
    if (this.#closed) return false;
    if (this.#ctx.observing) {
      const ex = this.#ex;
      if (ex !== null) ex.sent += data.byteLength;
    }
    // Queued bytes are copied: `data` may be a view into a worker frame that dies with the call.
    if (this.#out !== null) {
      this.#out.push(data.slice());
      return true;
    }
    const rest = writeOrRest(this.#socket, data, this.#ctx.observers.metrics);
    if (rest === null) return false;
    this.#out = [rest.slice()];
    this.#writeDeadline = performance.now() + this.#ctx.config.write_timeout * 1000;
    return true;
  }

  /** Answer with a router-generated error response and close (the app never sees it). */
  #fail(status: number, message: string, headers: string[] = []): void {
    if (this.#closing) return;
    const response = Buffer.from(
      serializeSimpleResponse(status, `${message}\n`, false, SERVER_NAME, headers),
      "latin1",
    );
    this.#write(response);
    if (this.#ctx.observing) this.#recordFailure(status, response.byteLength);
    this.#closeAfterWrite();
  }

  #closeAfterWrite(): void {
    this.#closing = true;
    this.#resume();
    if (this.#out === null) this.#socket.end();
  }

  #abort(): void {
    const ex = this.#ex;
    if (ex?.respStarted && this.#ctx.observing) this.#record(ex, ex.status);
    this.#closing = true;
    if (this.#out === null) this.#socket.end();
  }

  // -- observability (only with --metrics-path, --access-log or --health-path) ------------

  /** Count a request in the metrics and write its access log line; once per request. */
  #record(ex: Exchange, status: number): void {
    if (ex.recorded) return;
    ex.recorded = true;
    const observers = this.#ctx.observers;
    const elapsed = performance.now() - ex.startedAt;
    const metrics = observers.metrics;
    if (metrics !== null && !ex.local) metrics.observe(status, elapsed / 1000);
    const accessLog = observers.accessLog;
    if (accessLog === null || accessLog.excludes(ex.head.rawPath)) return;
    const head = ex.head;
    let userAgent: string | null = null;
    for (let i = 0; i < head.headers.length; i += 2) {
      if (eqLower(head.headers[i] as string, "user-agent")) {
        userAgent = head.headers[i + 1] as string;
        break;
      }
    }
    accessLog.write({
      method: head.method,
      path: head.query.length > 0 ? `${head.rawPath}?${head.query}` : head.rawPath,
      status,
      bytes: ex.sent,
      latencyUs: Math.round(elapsed * 1000),
      client: this.#clientLabel(ex),
      userAgent,
      httpVersion: head.httpVersion,
    });
  }

  /** A router-generated error response (#fail), with or without a parsed request. */
  #recordFailure(status: number, bytes: number): void {
    const ex = this.#ex;
    if (ex !== null) {
      this.#record(ex, status);
      return;
    }
    // No request head (it was malformed or incomplete): counted, logged without a request.
    const metrics = this.#ctx.observers.metrics;
    if (metrics !== null) metrics.observe(status, 0);
    const accessLog = this.#ctx.observers.accessLog;
    if (accessLog !== null) {
      accessLog.write({
        method: "",
        path: "",
        status,
        bytes,
        latencyUs: 0,
        client: this.#clientLabel(null),
        userAgent: null,
        httpVersion: "",
      });
    }
  }

  /** The exchange is over (answered, upgraded or its connection closed). */
  #exchangeEnded(ex: Exchange): void {
    const metrics = this.#ctx.observers.metrics;
    if (metrics !== null && !ex.local) metrics.inFlight--;
  }

  #clientLabel(ex: Exchange | null): string | null {
    const forwarded = ex?.forwarded ?? null;
    if (forwarded !== null && forwarded.host !== null) {
      return forwarded.host === "" ? null : joinHostPort(forwarded.host, forwarded.port as string);
    }
    const peer = this.#peer;
    if (peer !== null) return joinHostPort(peer.host, String(peer.port));
    if (this.#ctx.unix) return null;
    return joinHostPort(ipv4(this.#socket.remoteAddress), String(this.#socket.remotePort));
  }

  /** Proxy headers count only from a trusted peer; anyone else's are passed on untouched. */
  #forwardedFor(head: RequestHead): ForwardedClient | null {
    const trust = this.#ctx.observers.trust as TrustList;
    // A Unix socket peer is a local process allowed to open the socket file: trusted
    // (limit who that is with --uds-permissions).
    const peer = this.#peer;
    const trusted =
      peer !== null
        ? trust.trusts(peer.host)
        : this.#ctx.unix || trust.trusts(this.#socket.remoteAddress);
    return trusted ? resolveForwarded(head.headers, trust) : null;
  }

  /** Answer a LocalEndpoints path (metrics, health) as if it were the app's response. */
  #answerLocally(ex: Exchange): void {
    ex.dispatched = true;
    if (ex.reqDone) {
      // Answer on the next turn, as a worker would: #pump is still running for this request.
      queueMicrotask(() => {
        if (this.#ex === ex && !this.#closing) this.#answerNow(ex);
      });
    } else {
      // A body we will not read: answering now closes the connection after the response.
      this.#answerNow(ex);
    }
  }

  #answerNow(ex: Exchange): void {
    const endpoints = this.#ctx.observers.endpoints as LocalEndpoints;
    const answer = endpoints.answer(ex.head.rawPath, this.#ctx.draining);
    const body = Buffer.from(answer.body, "utf8");
    const headers = [...answer.headers, "content-length", String(body.byteLength)];
    this.onResponse(answer.status, headers, body, true);
  }

  #close(): void {
    this.#closing = true;
    this.#socket.end();
  }
}

/**
 * The first bytes of a connection from a trusted peer with --proxy-protocol: collect the
 * PROXY header, then hand the socket to an HTTP connection that reports the client the header
 * named. A connection whose header is missing or malformed is closed without an answer
 * (proxy-protocol.txt §2: a receiver must not guess).
 */
class ProxyPreamble implements ClientConnection {
  readonly #socket: Socket<ClientConnection>;
  readonly #ctx: ServerContext;
  #buf: Uint8Array = new Uint8Array(0);
  readonly #deadline: number;
  #done = false;

  constructor(socket: Socket<ClientConnection>, ctx: ServerContext) {
    this.#socket = socket;
    this.#ctx = ctx;
    this.#deadline = performance.now() + ctx.config.header_timeout * 1000;
  }

  onData(chunk: Uint8Array): void {
    if (this.#done) return;
    const metrics = this.#ctx.observers.metrics;
    if (metrics !== null) metrics.bytesReceived += chunk.byteLength;
    const buf = this.#buf.byteLength === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    const result = parseProxyHeader(buf);
    if (result.state === "more") {
      this.#buf = buf.slice();
      return;
    }
    this.#done = true;
    if (result.state === "error") {
      log.debug(`PROXY protocol: ${result.reason}; closing`);
      this.#socket.terminate();
      return;
    }
    // LOCAL or UNKNOWN: the proxy speaks for itself; the socket's own peer stays.
    const conn = new Http1Connection(this.#socket, this.#ctx, result.source);
    this.#socket.data = conn;
    this.#ctx.connections.delete(this);
    this.#ctx.connections.add(conn);
    const rest = buf.subarray(result.consumed);
    if (rest.byteLength > 0) {
      // Counted above already.
      if (metrics !== null) metrics.bytesReceived -= rest.byteLength;
      conn.onData(rest.slice());
    }
  }

  onDrain(): void {}

  onClose(): void {
    if (this.#done && this.#socket.data !== this) return;
    this.#done = true;
    this.#ctx.connections.delete(this);
    this.#ctx.onConnectionClosed();
  }

  checkDeadline(now: number): void {
    if (!this.#done && now >= this.#deadline) {
      this.#done = true;
      this.#socket.terminate();
    }
  }

  closeIfIdle(): void {
    this.#socket.end();
  }

  abandon(): void {
    this.#socket.terminate();
  }
}

function hasPeerCertificate(socket: Socket<ClientConnection>): boolean {
  try {
    const cert = socket.getPeerCertificate() as { raw?: unknown } | null;
    return cert !== null && cert !== undefined && cert.raw !== undefined;
  } catch {
    return false;
  }
}

/** Granularity of connection deadlines. */
export const SWEEP_INTERVAL_MS = 100;

/** Close every connection whose deadline has passed. */
export function sweepDeadlines(connections: Set<ClientConnection>): void {
  const now = performance.now();
  for (const conn of connections) conn.checkDeadline(now);
}

/** Start listening; throws with a clear message if the address cannot be used. */
export function listen(ctx: Omit<ServerContext, "serverHost" | "serverPort" | "unix">): {
  listener: SocketListener<ClientConnection>;
  ctx: ServerContext;
  address: string;
} {
  const config = ctx.config;
  const full = ctx as ServerContext;
  const handlers = {
    open(socket: Socket<ClientConnection>) {
      if (full.connections.size >= config.max_concurrent_connections || full.draining) {
        // Accept and close at once: the listen backlog stays drained and existing
        // connections are unaffected.
        socket.end();
        return;
      }
      const observers = full.observers;
      let conn: ClientConnection;
      if (
        observers.proxyProtocol &&
        (full.unix || (observers.trust as TrustList).trusts(socket.remoteAddress))
      ) {
        conn = new ProxyPreamble(socket, full);
      } else {
        conn = new Http1Connection(socket, full);
      }
      socket.data = conn;
      full.connections.add(conn);
    },
    data(socket: Socket<ClientConnection>, data: Buffer) {
      socket.data?.onData(data);
    },
    drain(socket: Socket<ClientConnection>) {
      socket.data?.onDrain();
    },
    close(socket: Socket<ClientConnection>) {
      socket.data?.onClose();
    },
    error(socket: Socket<ClientConnection>, error: Error) {
      log.debug(`client socket error: ${error.message}`);
      socket.data?.onClose();
    },
    handshake(socket: Socket<ClientConnection>, _success: boolean, error: Error | null) {
      // --ssl-cert-reqs optional: a certificate that was sent must verify (none is fine).
      if (error !== null && config.ssl_cert_reqs === "optional" && hasPeerCertificate(socket)) {
        log.debug(`client certificate refused: ${error.message}`);
        socket.terminate();
        return;
      }
      const conn = socket.data;
      if (socket.alpnProtocol === "h2" && conn instanceof Http1Connection) conn.switchToHttp2(null);
    },
  };
  let listener: SocketListener<ClientConnection>;
  let address: string;
  if (config.fd !== null) {
    // An inherited listening socket (--fd, systemd socket activation). The Python side
    // looked at it (python/saltare/_listen.py) and says what it is.
    listener = Bun.listen<ClientConnection>({ fd: config.fd, socket: handlers } as never);
    full.unix = config.fd_family === "unix";
    full.serverHost = config.fd_address ?? "";
    full.serverPort = config.fd_port === null ? "" : String(config.fd_port);
    if (full.unix) address = `unix:${full.serverHost}`;
    else {
      const host = full.serverHost.includes(":") ? `[${full.serverHost}]` : full.serverHost;
      address = `http://${host}:${full.serverPort}`;
    }
  } else if (config.uds !== null) {
    listener = listenUnix(config.uds, config.uds_permissions, handlers);
    full.unix = true;
    full.serverHost = config.uds;
    full.serverPort = "";
    address = `unix:${config.uds}`;
  } else {
    const tls = tlsOptions(config, config.http2 ? ["h2", "http/1.1"] : ["http/1.1"]);
    const tcp = Bun.listen<ClientConnection>({
      hostname: config.host,
      port: config.port,
      socket: handlers,
      ...(tls === null ? {} : { tls }),
    });
    listener = tcp;
    full.unix = false;
    full.scheme = tls === null ? "http" : "https";
    full.serverHost = config.host;
    full.serverPort = String(tcp.port);
    const host = config.host.includes(":") ? `[${config.host}]` : config.host;
    address = `${full.scheme}://${host}:${tcp.port}`;
  }
  return { listener, ctx: full, address };
}

/**
 * Bind a Unix socket with the file mode asked for. The umask is closed during the bind, so
 * the socket never exists with a wider mode than `mode`, then chmod sets exactly `mode`.
 */
function listenUnix(
  path: string,
  mode: number | null,
  handlers: SocketHandler<ClientConnection>,
): SocketListener<ClientConnection> {
  if (mode === null) return Bun.listen<ClientConnection>({ unix: path, socket: handlers });
  const previous = process.umask(0o777);
  try {
    const listener = Bun.listen<ClientConnection>({ unix: path, socket: handlers });
    chmodSync(path, mode);
    return listener;
  } finally {
    process.umask(previous);
  }
}
