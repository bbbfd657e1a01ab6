// Measures what an idle H2Connection costs: N connections past the preface and SETTINGS
// exchange (and optionally one browser-like request each, which fills the HPACK table), heap
// growth divided by N. Not part of saltare.
//
//   node_modules/.bin/bun --smol src/http2/testdata/idle-memory.ts [N]

import { heapStats } from "bun:jsc";
import { H2Connection } from "../connection.ts";
import { headers, PREFACE, settings, settingsAck } from "../test-util.ts";

const N = Number(process.argv[2] ?? 10000);
const OPTIONS = {};
const sink = { write: (): boolean => true };

// The GC heap, and RSS: JSC keeps string characters in malloc memory outside the GC heap,
// so the HPACK table's contents show in RSS only.
function heap(): { gc: number; rss: number } {
  Bun.gc(true);
  Bun.gc(true);
  return { gc: heapStats().heapSize, rss: process.memoryUsage().rss };
}

// Typical browser request headers (about 600 bytes): every one indexed by the client's
// encoder, so the server's decoder table holds them while the connection sits idle.
const BROWSER = [
  ":method",
  "GET",
  ":scheme",
  "https",
  ":path",
  "/",
  ":authority",
  "www.example.com",
  "user-agent",
  "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
  "accept",
  "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8",
  "accept-language",
  "en-US,en;q=0.9",
  "accept-encoding",
  "gzip, deflate, br, zstd",
  "sec-ch-ua",
  '"Chromium";v="126", "Not.A/Brand";v="24"',
  "sec-fetch-mode",
  "navigate",
  "cookie",
  "session=0123456789abcdef0123456789abcdef; theme=dark; consent=yes",
];

function indexedBlock(fields: string[]): Uint8Array {
  // Literal with incremental indexing, new name (RFC 7541 §6.2.1), lengths < 127.
  const out: number[] = [];
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i] as string;
    const value = fields[i + 1] as string;
    out.push(
      0x40,
      name.length,
      ...Buffer.from(name, "latin1"),
      value.length,
      ...Buffer.from(value, "latin1"),
    );
  }
  return Uint8Array.from(out);
}

function measure(withRequest: boolean, freshOptions = false): string {
  const keep: H2Connection[] = [];
  const before = heap();
  for (let i = 0; i < N; i++) {
    // A caller may build its options literal per connection: equal options are shared.
    const conn = new H2Connection(freshOptions ? { maxConcurrentStreams: 100 } : OPTIONS, sink);
    conn.feed(PREFACE.slice());
    conn.feed(settings());
    conn.feed(settingsAck());
    if (withRequest) {
      conn.feed(headers(1, indexedBlock(BROWSER), { endStream: true }));
      while (conn.next() !== null) {}
      conn.respond(1, 200, ["content-type", "text/html", "content-length", "0"], true);
    }
    while (conn.next() !== null) {}
    if (!conn.idle) throw new Error("not idle");
    keep.push(conn);
  }
  const after = heap();
  if (keep.length !== N) throw new Error("lost connections");
  const gc = ((after.gc - before.gc) / N).toFixed(0);
  const rss = ((after.rss - before.rss) / N).toFixed(0);
  return `GC heap ${gc} B, RSS ${rss} B per connection`;
}

console.log(`N=${N} idle after preface + SETTINGS: ${measure(false)}`);
console.log(`N=${N} idle after one browser-like request: ${measure(true)}`);
console.log(`N=${N} idle, an options literal per connection: ${measure(false, true)}`);
