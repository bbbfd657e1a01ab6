// A development server for checking H2Connection against real clients (curl, nghttp, h2load,
// h2spec, Python h2): cleartext HTTP/2 with prior knowledge on Bun.listen. Not part of saltare.
//
//   node_modules/.bin/bun src/http2/testdata/interop-server.ts [port]   prints "listening PORT"
//
// GET /size/N answers N bytes, produced as the client's windows and the socket allow; POST
// echoes the request body as it arrives; anything else answers "hello PATH". (The set of
// answered streams grows for the life of a connection: fine for a test server.)

import type { Socket } from "bun";
import { H2Connection, type H2Event, type H2Options } from "../connection.ts";

interface Download {
  left: number;
}

interface State {
  conn: H2Connection;
  out: Uint8Array[] | null; // bytes the socket did not take yet
  downloads: Map<number, Download>;
  answered: Set<number>; // streams whose response started (echo only from then on)
}

const OPTIONS: Partial<H2Options> = { maxConcurrentStreams: 128 };
const CHUNK = new Uint8Array(64 * 1024).fill(0x61);
const HIGH_WATER = 256 * 1024;

function write(socket: Socket<State>, bytes: Uint8Array): boolean {
  const st = socket.data;
  if (st.out !== null) {
    st.out.push(bytes);
    return false;
  }
  const n = socket.write(bytes);
  if (n < bytes.length) {
    st.out = [bytes.subarray(Math.max(n, 0))];
    return false;
  }
  return true;
}

function pump(socket: Socket<State>, stream: number, d: Download): void {
  const conn = socket.data.conn;
  while (d.left > 0 && conn.bufferedAmount(stream) < HIGH_WATER) {
    const n = Math.min(d.left, CHUNK.length);
    d.left -= n;
    if (conn.sendData(stream, CHUNK.subarray(0, n), d.left === 0) < 0) d.left = 0;
  }
  if (d.left === 0) socket.data.downloads.delete(stream);
}

// RESPOND_DELAY_MS=n answers requests n ms later, as an application would: with immediate
// answers, a test client's frames that follow a request in a later read find the stream
// already complete (h2spec's stream-state tests then see a normal close, not an error).
const DELAY = Number(process.env.RESPOND_DELAY_MS ?? 0);

type Request = Extract<H2Event, { type: "request" }>;

function answer(socket: Socket<State>, ev: Request): void {
  const st = socket.data;
  const conn = st.conn;
  st.answered.add(ev.stream);
  const m = /^\/size\/(\d+)$/.exec(ev.path);
  if (m !== null) {
    const size = Number(m[1]);
    conn.respond(ev.stream, 200, ["content-length", String(size)], size === 0);
    if (size > 0) {
      const d = { left: size };
      st.downloads.set(ev.stream, d);
      pump(socket, ev.stream, d);
    }
  } else if (ev.method === "POST" || ev.method === "PUT") {
    conn.respond(ev.stream, 200, ["content-type", "application/octet-stream"], false);
    if (ev.endStream) conn.sendData(ev.stream, new Uint8Array(0), true);
  } else {
    const body = new TextEncoder().encode(`hello ${ev.path}\n`);
    conn.respond(
      ev.stream,
      200,
      ["content-type", "text/plain", "content-length", String(body.length)],
      false,
    );
    conn.sendData(ev.stream, body, true);
  }
}

function handle(socket: Socket<State>): void {
  const st = socket.data;
  const conn = st.conn;
  for (let ev = conn.next(); ev !== null; ev = conn.next()) {
    if (ev.type === "request" && DELAY > 0) {
      const request = ev;
      setTimeout(() => {
        answer(socket, request);
        handle(socket);
      }, DELAY);
      continue;
    }
    switch (ev.type) {
      case "request":
        answer(socket, ev);
        break;
      case "data":
        // With RESPOND_DELAY_MS, a body arriving before the response is dropped.
        if (st.answered.has(ev.stream)) conn.sendData(ev.stream, ev.data, ev.endStream);
        conn.consumed(ev.stream, ev.data.length);
        break;
      case "trailers":
        if (st.answered.has(ev.stream)) conn.sendData(ev.stream, new Uint8Array(0), true);
        break;
      case "writable": {
        const d = st.downloads.get(ev.stream);
        if (d !== undefined) pump(socket, ev.stream, d);
        break;
      }
      case "reset":
        st.downloads.delete(ev.stream);
        st.answered.delete(ev.stream);
        break;
      case "error":
        socket.end();
        return;
      default:
        break;
    }
  }
  if (conn.finished && st.out === null) socket.end();
}

const listener = Bun.listen<State>({
  hostname: "127.0.0.1",
  port: Number(process.argv[2] ?? 0),
  socket: {
    open(socket) {
      socket.data = {
        conn: null as unknown as H2Connection,
        out: null,
        downloads: new Map(),
        answered: new Set(),
      };
      socket.data.conn = new H2Connection(OPTIONS, { write: (b) => write(socket, b) });
    },
    data(socket, data) {
      socket.data.conn.feed(data);
      handle(socket);
    },
    drain(socket) {
      const st = socket.data;
      const out = st.out;
      if (out === null) return;
      st.out = null;
      for (let i = 0; i < out.length; i++) {
        if (!write(socket, out[i] as Uint8Array)) {
          // write() queued the rest of this piece; the later pieces follow it.
          for (const rest of out.slice(i + 1)) write(socket, rest);
          return;
        }
      }
      st.conn.drained();
      for (const [stream, d] of st.downloads) pump(socket, stream, d);
      handle(socket);
    },
    close() {},
  },
});

console.log(`listening ${listener.port}`);
