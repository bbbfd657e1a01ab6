/**
 * A client connection speaking HTTP/2 (RFC 9113): over TLS when ALPN chose "h2", or in clear
 * text when the client opened with the HTTP/2 preface ("prior knowledge", §3.3). The sans-I/O
 * codec in src/http2 does the framing, HPACK, flow control and flood protections; this class
 * connects its streams to worker streams exactly like an HTTP/1.1 exchange (same wire
 * protocol, same limits), so the Python side cannot tell the difference except by
 * `http_version` "2".
 *
 * Backpressure is end to end: request DATA is returned to the client's window (consumed())
 * only once it has been handed to the worker within the worker's credit; response bytes get
 * the worker's credit back only when the codec has written them to the socket.
 */
import type { Socket } from "bun";
import { INITIAL_WINDOW, type RequestHeadFields } from "./bridge/codec.ts";
import type { StreamHandler, WorkerLink } from "./bridge/worker-link.ts";
import { flushQueue, ipv4, joinHostPort, writeOrRest } from "./client-socket.ts";
import { HttpError } from "./http1/errors.ts";
import { formatDate } from "./http1/response.ts";
import { H2Connection, type H2Event } from "./http2/connection.ts";
import { ErrorCode } from "./http2/errors.ts";
import { log } from "./log.ts";
import { noteTransient } from "./memory.ts";
import { userAgentOf } from "./observe/access-log.ts";
import { type ForwardedClient, resolveForwarded } from "./proxy/forwarded.ts";
import type { TrustList } from "./proxy/trust.ts";
import { type ClientConnection, type Peer, SERVER_NAME, type ServerContext } from "./server.ts";
import { tlsHeadPairs } from "./tls.ts";

const EMPTY = new Uint8Array(0);

/** One request/response on an HTTP/2 connection, as a worker stream's handler. */
class H2Stream implements StreamHandler {
  readonly webSocket = false;
  readonly session: H2Session;
  readonly id: number;
  link: WorkerLink | null = null;
  workerStream = 0;
  /** Request-body bytes the worker still accepts. */
  credit = INITIAL_WINDOW;
  /** Request DATA not yet forwarded (no credit, or not dispatched yet). */
  held: Uint8Array[] | null = null;
  heldEnd = false;
  reqDone = false;
  reqBytes = 0;
  respStarted = false;
  respDone = false;
  /** Response credit to return to the worker when the codec's queue for this stream drains. */
  owed = 0;
  awaitingContinue = false;
  /** Observed streams only (metrics, access log): see Http1Connection's Exchange. */
  status = 0;
  startedAt = 0;
  sent = 0;
  recorded = false;
  local = false;
  counted = false;
  method = "";
  target = "";
  headers: string[] | null = null;
  forwarded: ForwardedClient | null = null;

  constructor(session: H2Session, id: number) {
    this.session = session;
    this.id = id;
  }

  onResponse(status: number, headers: string[], body: Uint8Array, end: boolean): void {
    this.session.respond(this, status, headers, body, end);
  }
  onBody(body: Uint8Array, end: boolean): void {
    this.session.body(this, body, end);
  }
  onReset(_code: number): void {
    this.respDone = true;
    this.link = null;
    this.session.reset(this, ErrorCode.INTERNAL_ERROR);
  }
  onWindow(increment: number): void {
    this.credit += increment;
    this.session.forward(this);
  }
  onWorkerLost(): void {
    this.link = null;
    if (this.respDone) return;
    this.respDone = true;
    if (!this.respStarted) {
      log.error("Worker died while handling a request; answering 502");
      this.session.simple(this, 502, "Bad Gateway");
    } else {
      this.session.reset(this, ErrorCode.INTERNAL_ERROR);
    }
  }
  onWritable(): void {
    this.session.forward(this);
  }
  onContinue(): void {
    if (this.awaitingContinue && !this.respStarted) {
      this.awaitingContinue = false;
      this.session.interim(this, 100);
    }
  }
  onMessage(): void {}
  onWsClose(): void {}
  onWorkerRetiring(): void {}
}

export class H2Session implements ClientConnection {
  readonly #socket: Socket<ClientConnection>;
  readonly #ctx: ServerContext;
  readonly #conn: H2Connection;
  #streams: Map<number, H2Stream> | null = null;
  #out: Uint8Array[] | null = null;
  #closed = false;
  #closing = false;
  /** performance.now() when the connection last had no stream (keep-alive deadline base). */
  #idleSince: number;
  #writeDeadline = 0;

  /** The client a PROXY protocol header named, if any (else the socket's peer). */
  readonly #peer: Peer | null;

  constructor(
    socket: Socket<ClientConnection>,
    ctx: ServerContext,
    first: Uint8Array | null,
    peer: Peer | null = null,
  ) {
    this.#socket = socket;
    this.#ctx = ctx;
    this.#peer = peer;
    const config = ctx.config;
    this.#conn = new H2Connection(
      {
        maxConcurrentStreams: config.http2_max_concurrent_streams,
        // The same 256 KiB per stream the worker grants: a body the app does not read stops
        // at the client after one window, as with HTTP/1.1.
        initialWindowSize: INITIAL_WINDOW,
        connectionWindowSize: 4 * INITIAL_WINDOW,
        maxHeaderListSize: 64 * 1024,
      },
      { write: (bytes) => this.#write(bytes) },
    );
    this.#idleSince = performance.now();
    if (first !== null) this.onData(first);
  }

  // -- socket events --------------------------------------------------------------------------

  onData(chunk: Uint8Array): void {
    noteTransient(chunk.byteLength);
    const metrics = this.#ctx.observers.metrics;
    if (metrics !== null) metrics.bytesReceived += chunk.byteLength;
    if (this.#closed) return;
    this.#conn.feed(chunk);
    this.#events();
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
    this.#conn.drained();
    this.#events();
    this.#maybeFinish();
  }

  onClose(): void {
    if (this.#closed) return;
    this.#closed = true;
    const streams = this.#streams;
    this.#streams = null;
    if (streams !== null) {
      for (const s of streams.values()) {
        if (s.link !== null && !s.respDone) s.link.cancel(s.workerStream);
        this.#uncount(s);
      }
    }
    this.#out = null;
    this.#ctx.connections.delete(this);
    this.#ctx.onConnectionClosed();
  }

  checkDeadline(now: number): void {
    if (this.#closed) return;
    if (this.#writeDeadline !== 0 && now >= this.#writeDeadline) {
      log.debug("Write timeout: the HTTP/2 client did not read; closing");
      this.#socket.terminate();
      return;
    }
    if (this.#streams === null && !this.#closing) {
      if (now - this.#idleSince >= this.#ctx.config.keep_alive_timeout * 1000) {
        // RFC 9113 §9.1: an idle connection is closed with GOAWAY.
        this.#closing = true;
        this.#conn.goAway(ErrorCode.NO_ERROR);
        this.#conn.goAway(ErrorCode.NO_ERROR); // second call: the final GOAWAY at once
        this.#maybeFinish(true);
      }
    }
  }

  closeIfIdle(): void {
    // Drain: GOAWAY (graceful, §6.8); streams already started are served.
    this.#closing = true;
    this.#conn.goAway(ErrorCode.NO_ERROR);
    if (this.#streams === null) this.#conn.goAway(ErrorCode.NO_ERROR);
    this.#maybeFinish();
  }

  abandon(): void {
    const streams = this.#streams;
    if (streams !== null) {
      for (const s of [...streams.values()]) {
        if (s.link !== null && !s.respDone) s.link.cancel(s.workerStream);
        if (!s.respStarted) this.simple(s, 503, "Service Unavailable");
        else this.reset(s, ErrorCode.CANCEL);
      }
    }
    this.#conn.goAway(ErrorCode.NO_ERROR);
    this.#conn.goAway(ErrorCode.NO_ERROR);
    this.#maybeFinish(true);
  }

  // -- codec events ---------------------------------------------------------------------------

  #events(): void {
    const conn = this.#conn;
    for (let ev = conn.next(); ev !== null; ev = conn.next()) this.#event(ev);
    this.#maybeFinish();
  }

  #event(ev: H2Event): void {
    switch (ev.type) {
      case "request":
        this.#request(ev);
        return;
      case "data": {
        const s = this.#streams?.get(ev.stream);
        if (s === undefined) return;
        s.reqBytes += ev.data.byteLength;
        if (s.reqBytes > this.#ctx.config.max_request_body) {
          if (s.link !== null && !s.respDone) s.link.cancel(s.workerStream);
          s.link = null;
          if (!s.respStarted) this.simple(s, 413, "Request Entity Too Large");
          else this.reset(s, ErrorCode.CANCEL);
          return;
        }
        s.awaitingContinue = false;
        if (ev.data.byteLength > 0) {
          if (s.held === null) s.held = [];
          s.held.push(ev.data);
        }
        if (ev.endStream) s.heldEnd = true;
        this.forward(s);
        return;
      }
      case "trailers": {
        // ASGI has no request trailers: they end the body.
        const s = this.#streams?.get(ev.stream);
        if (s === undefined) return;
        s.heldEnd = true;
        this.forward(s);
        return;
      }
      case "reset": {
        const s = this.#streams?.get(ev.stream);
        if (s === undefined) return;
        if (s.link !== null && !s.respDone) s.link.cancel(s.workerStream);
        s.link = null;
        s.respDone = true;
        this.#forget(s);
        return;
      }
      case "writable": {
        const s = this.#streams?.get(ev.stream);
        if (s !== undefined && s.owed > 0 && s.link !== null && !s.respDone) {
          s.link.grant(s.workerStream, s.owed);
          s.owed = 0;
        }
        return;
      }
      case "rejected":
        log.debug(`HTTP/2 stream ${ev.stream} refused: ${ev.message}`);
        return;
      case "goaway":
        this.#closing = true;
        return;
      case "error":
        log.debug(`HTTP/2 connection error: ${ev.message}`);
        this.#closing = true;
        return;
    }
  }

  #request(ev: Extract<H2Event, { type: "request" }>): void {
    const config = this.#ctx.config;
    const s = new H2Stream(this, ev.stream);
    if (this.#streams === null) this.#streams = new Map();
    this.#streams.set(ev.stream, s);
    const ctx = this.#ctx;
    const observers = ctx.observers;
    const target = ev.path;
    const qmark = target.indexOf("?");
    if (observers.endpoints?.has(qmark < 0 ? target : target.slice(0, qmark))) s.local = true;
    if (ctx.observing) {
      s.startedAt = performance.now();
      s.method = ev.method;
      s.target = target;
      s.headers = ev.headers;
      if (observers.metrics !== null && !s.local) {
        observers.metrics.inFlight++;
        s.counted = true;
      }
    }
    if (observers.proxyHeaders) {
      // Same rule as HTTP/1.1: only a trusted peer (or our own Unix socket) speaks for clients.
      const trust = observers.trust as TrustList;
      const peer = this.#peer;
      const trusted =
        peer !== null
          ? trust.trusts(peer.host)
          : ctx.unix || trust.trusts(this.#socket.remoteAddress);
      if (trusted) {
        s.forwarded = resolveForwarded(ev.headers, trust);
      }
    }
    if (ev.contentLength > config.max_request_body) {
      this.simple(s, 413, "Request Entity Too Large");
      return;
    }
    if (ev.method === "CONNECT") {
      this.simple(s, 501, "Not Implemented");
      return;
    }
    const path = ev.path;
    const q = path.indexOf("?");
    const rawPath = q < 0 ? path : path.slice(0, q);
    const query = q < 0 ? "" : path.slice(q + 1);
    const headers = ev.headers;
    let hasHost = false;
    let expectContinue = false;
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i] as string;
      if (name === "host") hasHost = true;
      else if (name === "expect" && (headers[i + 1] as string).toLowerCase() === "100-continue") {
        expectContinue = true;
      }
    }
    // RFC 9113 §8.3.1: :authority stands for Host; apps (and ASGI frameworks building URLs)
    // look for a host header, so it is given one when the client sent none.
    const fieldsHeaders =
      hasHost || ev.authority === "" ? headers : ["host", ev.authority, ...headers];
    s.reqDone = ev.endStream;
    s.awaitingContinue = expectContinue && !ev.endStream;
    if (s.local) {
      this.#answerLocally(s, rawPath);
      return;
    }
    const socket = this.#socket;
    const uds = this.#ctx.unix;
    const peer = this.#peer;
    let clientHost = peer !== null ? peer.host : uds ? "" : ipv4(socket.remoteAddress);
    let clientPort = peer !== null ? String(peer.port) : uds ? "" : String(socket.remotePort);
    let scheme = this.#ctx.scheme;
    const forwarded = s.forwarded;
    if (forwarded !== null) {
      if (forwarded.host !== null) {
        clientHost = forwarded.host;
        clientPort = forwarded.host === "" ? "" : (forwarded.port as string);
      }
      if (forwarded.scheme !== null) scheme = forwarded.scheme;
    }
    const fields: RequestHeadFields = {
      method: ev.method,
      scheme,
      httpVersion: "2",
      rawPath,
      query,
      clientHost,
      clientPort,
      serverHost: this.#ctx.serverHost,
      serverPort: this.#ctx.serverPort,
      headers:
        this.#ctx.scheme === "https"
          ? [...fieldsHeaders, ...tlsHeadPairs(this.#socket)]
          : fieldsHeaders,
    };
    const link = this.#ctx.pool.pick();
    if (link === null) {
      this.#ctx.pool.wait((ready) => {
        if (this.#closed || this.#streams?.get(s.id) !== s) return;
        if (ready === null) {
          this.simple(s, 503, "Service Unavailable");
          return;
        }
        this.#open(s, ready, fields);
      });
      return;
    }
    this.#open(s, link, fields);
  }

  #open(s: H2Stream, link: WorkerLink, fields: RequestHeadFields): void {
    s.link = link;
    s.workerStream = link.openStream(fields, null, s.reqDone, s, s.awaitingContinue);
    this.forward(s);
  }

  /** Hand held request DATA to the worker within its credit; return it to the client's window. */
  forward(s: H2Stream): void {
    const link = s.link;
    if (link === null || s.respDone || s.reqDone) return;
    const held = s.held;
    while (held !== null && held.length > 0 && s.credit > 0) {
      if (link.congested) {
        link.waitWritable(s);
        return;
      }
      const chunk = held[0] as Uint8Array;
      const part = chunk.byteLength <= s.credit ? chunk : chunk.subarray(0, s.credit);
      if (part === chunk) held.shift();
      else held[0] = chunk.subarray(part.byteLength);
      s.credit -= part.byteLength;
      const last = s.heldEnd && held.length === 0;
      link.sendBody(s.workerStream, part, last);
      this.#conn.consumed(s.id, part.byteLength);
      if (last) {
        s.reqDone = true;
        s.held = null;
        return;
      }
    }
    if (s.heldEnd && (held === null || held.length === 0)) {
      s.reqDone = true;
      s.held = null;
      link.sendBody(s.workerStream, EMPTY, true);
    }
  }

  // -- responses --------------------------------------------------------------------------------

  respond(s: H2Stream, status: number, headers: string[], body: Uint8Array, end: boolean): void {
    if (this.#closed || s.respDone) return;
    s.respStarted = true;
    s.awaitingContinue = false;
    s.status = status;
    const fields = [...headers, "server", SERVER_NAME, "date", formatDate(Date.now())];
    try {
      this.#conn.respond(s.id, status, fields, end && body.byteLength === 0);
    } catch (err) {
      const detail = err instanceof HttpError ? err.message : String(err);
      log.error(`Invalid response from the application: ${detail}`);
      if (s.link !== null) s.link.cancel(s.workerStream);
      s.link = null;
      s.respStarted = false;
      this.simple(s, 500, "Internal Server Error");
      return;
    }
    if (end && body.byteLength === 0) {
      this.#finish(s);
      return;
    }
    this.body(s, body, end);
  }

  body(s: H2Stream, data: Uint8Array, end: boolean): void {
    if (this.#closed || s.respDone || !s.respStarted) return;
    // The codec keeps `data` by reference until written; frame payloads are views that die
    // with this call, so it gets a copy.
    const queued = this.#conn.sendData(s.id, data.byteLength > 0 ? data.slice() : EMPTY, end);
    s.sent += data.byteLength;
    if (end) {
      this.#finish(s);
      return;
    }
    if (queued > 0) s.owed += data.byteLength;
    else if (data.byteLength > 0) s.link?.grant(s.workerStream, data.byteLength);
  }

  interim(s: H2Stream, status: number): void {
    if (!this.#closed) this.#conn.respond(s.id, status, [], false);
  }

  /** A router-generated answer (the app never saw the request, or lost its worker). */
  simple(s: H2Stream, status: number, message: string): void {
    if (this.#closed || s.respStarted) return;
    s.respStarted = true;
    s.status = status;
    const body = Buffer.from(`${message}\n`, "utf8");
    s.sent += body.byteLength;
    this.#conn.respond(
      s.id,
      status,
      ["content-type", "text/plain; charset=utf-8", "content-length", String(body.byteLength)],
      false,
    );
    this.#conn.sendData(s.id, body, true);
    if (s.link !== null && !s.respDone) s.link.cancel(s.workerStream);
    s.link = null;
    // (If the client is still sending its body, the codec resets the stream with NO_ERROR
    // once this response is written, RFC 9113 §8.1.)
    this.#finish(s);
  }

  reset(s: H2Stream, code: number): void {
    // A response cut off after it started still counts, as with HTTP/1.1.
    if (s.respStarted && this.#ctx.observing) this.#record(s);
    s.respDone = true;
    this.#conn.resetStream(s.id, code);
    this.#forget(s);
  }

  #finish(s: H2Stream): void {
    s.respDone = true;
    s.link = null;
    if (this.#ctx.observing) this.#record(s);
    this.#forget(s);
  }

  // -- observability (see the same section of Http1Connection) --------------------------------

  #record(s: H2Stream): void {
    if (s.recorded) return;
    s.recorded = true;
    const observers = this.#ctx.observers;
    const elapsed = performance.now() - s.startedAt;
    const metrics = observers.metrics;
    if (metrics !== null && !s.local) metrics.observe(s.status, elapsed / 1000);
    const accessLog = observers.accessLog;
    const target = s.target;
    const qmark = target.indexOf("?");
    if (accessLog === null || accessLog.excludes(qmark < 0 ? target : target.slice(0, qmark))) {
      return;
    }
    let client: string | null;
    const forwarded = s.forwarded;
    if (forwarded !== null && forwarded.host !== null) {
      client =
        forwarded.host === "" ? null : joinHostPort(forwarded.host, forwarded.port as string);
    } else if (this.#peer !== null) {
      client = joinHostPort(this.#peer.host, String(this.#peer.port));
    } else if (this.#ctx.unix) {
      client = null;
    } else {
      client = joinHostPort(ipv4(this.#socket.remoteAddress), String(this.#socket.remotePort));
    }
    accessLog.write({
      method: s.method,
      path: target,
      status: s.status,
      // HTTP/2: body bytes of the stream (its headers are HPACK-compressed per connection).
      bytes: s.sent,
      latencyUs: Math.round(elapsed * 1000),
      client,
      userAgent: userAgentOf(s.headers ?? []),
      httpVersion: "2",
    });
  }

  #uncount(s: H2Stream): void {
    if (!s.counted) return;
    s.counted = false;
    const metrics = this.#ctx.observers.metrics;
    if (metrics !== null) metrics.inFlight--;
  }

  /** A path the router answers itself (--metrics-path, --health-path). */
  #answerLocally(s: H2Stream, path: string): void {
    const endpoints = this.#ctx.observers.endpoints;
    if (endpoints === null) return;
    const answer = endpoints.answer(path, this.#ctx.draining);
    const body = Buffer.from(answer.body, "utf8");
    this.respond(
      s,
      answer.status,
      [...answer.headers, "content-length", String(body.byteLength)],
      body,
      true,
    );
  }

  #forget(s: H2Stream): void {
    this.#uncount(s);
    const streams = this.#streams;
    if (streams === null || streams.get(s.id) !== s) return;
    streams.delete(s.id);
    if (streams.size === 0) {
      this.#streams = null;
      this.#idleSince = performance.now();
    }
  }

  // -- output -----------------------------------------------------------------------------------

  /** The codec's sink: false tells it the socket is backed up. */
  #write(bytes: Uint8Array): boolean {
    if (this.#closed) return false;
    if (this.#out !== null) {
      this.#out.push(bytes);
      return false;
    }
    const rest = writeOrRest(this.#socket, bytes, this.#ctx.observers.metrics);
    if (rest === null) return true;
    this.#out = [rest];
    this.#writeDeadline = performance.now() + this.#ctx.config.write_timeout * 1000;
    return false;
  }

  #maybeFinish(force = false): void {
    if (this.#closed) return;
    if ((this.#conn.finished || (force && this.#closing)) && this.#out === null) {
      this.#socket.end();
    }
  }
}
