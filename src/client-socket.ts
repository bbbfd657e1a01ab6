/**
 * Small pieces every kind of client connection (HTTP/1.1, HTTP/2, WebSocket) needs from its
 * socket: peer address formatting, and writes that keep what the kernel did not take.
 *
 * Bun's `socket.write()` returns how many bytes the kernel took and buffers nothing itself, so
 * each connection keeps the rest in its own queue (null while empty: most of the time) and
 * writes it on `drain`.
 */
import type { Socket } from "bun";
import type { Metrics } from "./observe/metrics.ts";

/** Dual-stack sockets report IPv4 peers as ::ffff:a.b.c.d; ASGI apps expect a.b.c.d. */
export function ipv4(address: string): string {
  return address.startsWith("::ffff:") && address.includes(".") ? address.slice(7) : address;
}

/** host:port, with brackets around an IPv6 host (RFC 3986 §3.2.2). */
export function joinHostPort(host: string, port: string): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * Write `data`; returns the part the socket did not take (a view into `data`), or null when
 * it took everything.
 */
export function writeOrRest(
  socket: Socket<unknown>,
  data: Uint8Array,
  metrics: Metrics | null,
): Uint8Array | null {
  const written = socket.write(data);
  if (metrics !== null && written > 0) metrics.bytesSent += written;
  return written < data.byteLength ? data.subarray(Math.max(written, 0)) : null;
}

/**
 * On `drain`: write queued chunks in order until the socket stops taking them. Returns the
 * bytes written; the queue is empty afterwards if and only if it all went out.
 */
export function flushQueue(
  socket: Socket<unknown>,
  queue: Uint8Array[],
  metrics: Metrics | null,
): number {
  let total = 0;
  while (queue.length > 0) {
    const chunk = queue[0] as Uint8Array;
    const rest = writeOrRest(socket, chunk, metrics);
    total += chunk.byteLength - (rest === null ? 0 : rest.byteLength);
    if (rest !== null) {
      queue[0] = rest;
      break;
    }
    queue.shift();
  }
  return total;
}
