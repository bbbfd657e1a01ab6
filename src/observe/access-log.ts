/**
 * --access-log: one JSON object per completed request on stderr. Everything a client
 * controls (path, user agent) is escaped to printable ASCII, so a request cannot forge or
 * break log lines (log injection, CWE-117); each line is one write, so lines from the
 * router and the workers never interleave.
 */
import { asciiJson } from "../log.ts";

export interface AccessEntry {
  method: string;
  /** The request target's path and query as received (latin1: one char per byte). */
  path: string;
  status: number;
  /** Response bytes handed to the socket: head and body, with chunked framing. */
  bytes: number;
  latencyUs: number;
  /** "host:port", or null when unknown (Unix socket without proxy information). */
  client: string | null;
  userAgent: string | null;
  httpVersion: string;
}

export function formatAccessLine(entry: AccessEntry, time: string): string {
  return `${asciiJson({
    time,
    method: entry.method,
    path: entry.path,
    status: entry.status,
    bytes: entry.bytes,
    latency_us: entry.latencyUs,
    client: entry.client,
    user_agent: entry.userAgent,
    http_version: entry.httpVersion,
  })}\n`;
}

export class AccessLog {
  readonly #exclude: Set<string>;
  #lastMs = 0;
  #lastIso = "";
  readonly #write: (line: string) => void;

  constructor(exclude: string[], write: (line: string) => void = defaultWrite) {
    this.#exclude = new Set(exclude);
    this.#write = write;
  }

  /** True if requests for this path (without query) are left out. */
  excludes(path: string): boolean {
    return this.#exclude.size > 0 && this.#exclude.has(path);
  }

  write(entry: AccessEntry): void {
    const now = Date.now();
    if (now !== this.#lastMs) {
      this.#lastMs = now;
      this.#lastIso = new Date(now).toISOString();
    }
    this.#write(formatAccessLine(entry, this.#lastIso));
  }
}

function defaultWrite(line: string): void {
  process.stderr.write(line);
}
