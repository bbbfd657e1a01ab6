import { HttpError, type HttpErrorCode } from "./errors.ts";

/** Size limits applied while parsing a request head (and chunked trailers). */
export interface ParserLimits {
  maxRequestLine: number;
  maxHeaderBytes: number;
  maxHeaders: number;
}

/** Limits used when the server passes none. */
export const DEFAULT_LIMITS: ParserLimits = {
  maxRequestLine: 8192,
  maxHeaderBytes: 65536,
  maxHeaders: 100,
};

/**
 * A parsed request head. All strings are latin1 "binary" strings: one char per received byte.
 * `headers` is flat `[name, value, name, value, ...]` in received order, duplicates kept, names
 * as received, values without leading/trailing whitespace; with an absolute-form target the
 * Host value is the target's authority (appended as "host" to an HTTP/1.0 request without one).
 */
export interface RequestHead {
  method: string;
  target: string;
  rawPath: string;
  query: string;
  httpVersion: "1.0" | "1.1";
  headers: string[];
  keepAlive: boolean;
  bodyKind: "none" | "length" | "chunked";
  contentLength: number;
  expectContinue: boolean;
  upgrade: string | null;
}

/**
 * What the parser produced. A `body` event's `data` may be a view into a fed chunk: it is only
 * guaranteed valid until the next `feed()`. After `end` the parser is paused until
 * `startNext()`; `error` is terminal.
 */
export type ParseEvent =
  | { type: "head"; head: RequestHead }
  | { type: "body"; data: Uint8Array }
  | { type: "end" }
  | { type: "error"; error: HttpError };

// Measured in Bun 1.4.4 on a 300-byte head: Buffer.prototype.latin1Slice called on a plain
// Uint8Array ~40 ns, Buffer#toString("latin1") ~47 ns, TextDecoder("latin1") ~50 ns but it is
// really windows-1252 (WHATWG Encoding), which maps 0x80-0x9F to other code points, so it would
// corrupt obs-text. latin1Slice is both the fastest and the exact one.
const latin1Slice = (
  Buffer.prototype as unknown as {
    latin1Slice: (this: Uint8Array, start: number, end: number) => string;
  }
).latin1Slice;

const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const HTAB = 0x09;

// RFC 9110 §5.6.2: tchar.
const TOKEN = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") {
  TOKEN[c.charCodeAt(0)] = 1;
}

// RFC 9110 §5.5: field-value chars are VCHAR / obs-text / SP / HTAB. Everything else (NUL, CR,
// LF, the other CTLs, DEL) is refused, never replaced: RFC 9110 §5.5 allows rejecting, and
// smuggling attacks live in the difference between parsers that replace and parsers that don't.
const FIELD_CHAR = new Uint8Array(256);
FIELD_CHAR[HTAB] = 1;
for (let c = 0x20; c <= 0xff; c++) FIELD_CHAR[c] = c === 0x7f ? 0 : 1;

// RFC 3986 §3.2.2 host (reg-name: unreserved / pct-encoded / sub-delims; IP-literal brackets)
// plus ":" for the port (RFC 9110 §7.2). A character class, not the full grammar: enough to keep
// "@", "/", whitespace and controls out of what the application receives as the authority.
const HOST_CHAR = new Uint8Array(256);
for (const c of "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~%!$&'()*+,;=:[]") {
  HOST_CHAR[c.charCodeAt(0)] = 1;
}

const HEX = new Int8Array(256).fill(-1);
for (let i = 0; i < 16; i++) {
  HEX["0123456789abcdef".charCodeAt(i)] = i;
  HEX["0123456789ABCDEF".charCodeAt(i)] = i;
}

// RFC 9112 §2.2: a server SHOULD ignore at least one empty line received before the
// request-line. We allow a few (clients that send a stray CRLF after a POST body) and refuse an
// endless stream of them.
const MAX_EMPTY_LINES = 4;
// RFC 9112 §7.1.1 puts no limit on chunk extensions; we bound a chunk-size line (size plus
// extensions) so a peer cannot make us buffer without limit.
const MAX_CHUNK_LINE = 4096;
const MAX_CONTENT_LENGTH_DIGITS = 15;
const MAX_CHUNK_SIZE_DIGITS = 15;

const S_HEAD = 0;
const S_LENGTH = 1;
const S_CHUNK_SIZE = 2;
const S_CHUNK_DATA = 3;
const S_CHUNK_CRLF = 4;
const S_TRAILERS = 5;
const S_END = 6; // message complete, "end" not yet returned
const S_PAUSED = 7;
const S_ERROR = 8;

const END_EVENT: ParseEvent = Object.freeze({ type: "end" });

/**
 * Strict sans-I/O HTTP/1.1 request parser: `feed()` bytes, pull events with `next()`.
 * Holds no buffer while idle; copies bytes only when a head or a chunk line is split across
 * fed chunks.
 */
export class RequestParser {
  readonly #limits: ParserLimits;
  // Unconsumed bytes are #buf[#start, #end). #owned: #buf is ours (may have spare capacity
  // after #end, always zero-filled), not a chunk given to feed().
  #buf: Uint8Array | null = null;
  #start = 0;
  #end = 0;
  #owned = false;
  #state = S_HEAD;
  // S_LENGTH / S_CHUNK_DATA: body bytes left; S_HEAD: empty lines skipped so far.
  #remaining = 0;
  // Line scanning of a head or trailer section, offsets relative to #start.
  #scan = 0;
  #lineStart = 0;
  #lines = 0;
  #error: ParseEvent | null = null;
  #eof = false;

  constructor(limits: ParserLimits = DEFAULT_LIMITS) {
    this.#limits = limits;
  }

  /** Bytes held inside the parser (received but not yet returned as events). */
  get buffered(): number {
    return this.#end - this.#start;
  }

  /** True between requests when no byte of a next request has been received. */
  get idle(): boolean {
    return (this.#state === S_HEAD || this.#state === S_PAUSED) && this.#end === this.#start;
  }

  /** Appends received bytes. The parser may keep a reference to `data`: do not reuse it. */
  feed(data: Uint8Array): void {
    const len = data.length;
    if (len === 0 || this.#state === S_ERROR) return;
    const buf = this.#buf;
    if (buf === null) {
      this.#buf = data;
      this.#start = 0;
      this.#end = len;
      this.#owned = false;
      return;
    }
    if (this.#owned && buf.length - this.#end >= len) {
      buf.set(data, this.#end);
      this.#end += len;
      return;
    }
    const live = this.#end - this.#start;
    const need = live + len;
    const grown = new Uint8Array(Math.max(256, need + Math.min(need, 16384)));
    grown.set(buf.subarray(this.#start, this.#end), 0);
    grown.set(data, live);
    this.#buf = grown;
    this.#start = 0;
    this.#end = need;
    this.#owned = true;
  }

  /** The peer will send nothing more: a partly received message becomes an error. */
  feedEof(): void {
    this.#eof = true;
  }

  /** After an `end` event, starts parsing the next (pipelined) request. */
  startNext(): void {
    if (this.#state === S_ERROR) return;
    if (this.#state !== S_PAUSED) {
      throw new Error("RequestParser.startNext() called before the message ended");
    }
    this.#state = S_HEAD;
    this.#remaining = 0;
  }

  /**
   * Returns the next event, or null when more bytes are needed or the parser is paused after
   * `end`. `maxBody` caps the size of one body event.
   */
  next(maxBody = Number.POSITIVE_INFINITY): ParseEvent | null {
    if (!(maxBody >= 1)) throw new RangeError("maxBody must be at least 1");
    try {
      return this.#next(maxBody);
    } catch (e) {
      if (!(e instanceof HttpError)) throw e;
      this.#state = S_ERROR;
      this.#release();
      this.#error = { type: "error", error: e };
      return this.#error;
    }
  }

  #next(maxBody: number): ParseEvent | null {
    for (;;) {
      switch (this.#state) {
        case S_HEAD:
          return this.#readHead();
        case S_END:
          this.#state = S_PAUSED;
          return END_EVENT;
        case S_PAUSED:
          return null;
        case S_LENGTH:
        case S_CHUNK_DATA: {
          const avail = this.#end - this.#start;
          if (avail === 0) return this.#needMore();
          const n = Math.min(avail, this.#remaining, maxBody);
          const start = this.#start;
          const data = (this.#buf as Uint8Array).subarray(start, start + n);
          this.#consume(n);
          this.#remaining -= n;
          if (this.#remaining === 0) {
            this.#state = this.#state === S_LENGTH ? S_END : S_CHUNK_CRLF;
          }
          return { type: "body", data };
        }
        case S_CHUNK_CRLF: {
          // RFC 9112 §7.1: chunk-data is followed by exactly CRLF.
          const avail = this.#end - this.#start;
          if (avail === 0) return this.#needMore();
          const buf = this.#buf as Uint8Array;
          if (buf[this.#start] !== CR) throw bad("BAD_CHUNK", "Chunk data not followed by CRLF");
          if (avail < 2) return this.#needMore();
          if (buf[this.#start + 1] !== LF) {
            throw bad("BAD_CHUNK", "Chunk data not followed by CRLF");
          }
          this.#consume(2);
          this.#state = S_CHUNK_SIZE;
          continue;
        }
        case S_CHUNK_SIZE:
          if (!this.#readChunkSize()) return this.#needMore();
          continue;
        case S_TRAILERS: {
          const sectionEnd = this.#scanSection(false);
          if (sectionEnd < 0) return this.#needMore();
          // RFC 9112 §7.1.2: trailer fields are validated like header fields, then discarded
          // (nothing in ASGI carries request trailers).
          const s = latin1Slice.call(this.#buf as Uint8Array, this.#start, sectionEnd);
          this.#consume(sectionEnd - this.#start);
          parseFieldLines(s, 0);
          this.#state = S_END;
          continue;
        }
        default:
          return this.#error;
      }
    }
  }

  #needMore(): null {
    const live = this.#end - this.#start;
    if (this.#eof && (live > 0 || this.#state !== S_HEAD)) {
      throw bad("INCOMPLETE_MESSAGE");
    }
    // Waiting for more bytes: keep only the leftover, not the whole chunk it came in.
    if (live > 0 && !this.#owned) {
      const own = new Uint8Array(Math.max(256, live * 2));
      own.set((this.#buf as Uint8Array).subarray(this.#start, this.#end), 0);
      this.#buf = own;
      this.#start = 0;
      this.#end = live;
      this.#owned = true;
    }
    return null;
  }

  #consume(n: number): void {
    this.#start += n;
    if (this.#start === this.#end) this.#release();
  }

  #release(): void {
    this.#buf = null;
    this.#start = 0;
    this.#end = 0;
    this.#owned = false;
  }

  #readHead(): ParseEvent | null {
    if (this.#scan === 0) {
      // RFC 9112 §2.2: skip empty lines before the request-line.
      while (this.#end - this.#start > 0) {
        const buf = this.#buf as Uint8Array;
        const b = buf[this.#start];
        if (b === LF) throw bad("BAD_LINE_ENDING");
        if (b !== CR) break;
        if (this.#end - this.#start < 2) return this.#needMore();
        if (buf[this.#start + 1] !== LF) break; // a bare CR: refused by the request-line parse
        if (++this.#remaining > MAX_EMPTY_LINES) {
          throw bad("BAD_REQUEST_LINE", "Too many empty lines before the request line");
        }
        this.#consume(2);
      }
      if (this.#end === this.#start) return this.#needMore();
    }
    const headEnd = this.#scanSection(true);
    if (headEnd < 0) return this.#needMore();
    const s = latin1Slice.call(this.#buf as Uint8Array, this.#start, headEnd);
    this.#consume(headEnd - this.#start);
    this.#remaining = 0;
    const head = parseHead(s);
    if (head.bodyKind === "chunked") {
      this.#state = S_CHUNK_SIZE;
    } else if (head.contentLength > 0) {
      this.#state = S_LENGTH;
      this.#remaining = head.contentLength;
    } else {
      this.#state = S_END;
    }
    return { type: "head", head };
  }

  /**
   * Finds the end of a head (isHead) or trailer section: the index just after the empty line,
   * or -1 when more bytes are needed. Enforces CRLF line endings and the size limits as bytes
   * arrive, so an oversized head is refused without waiting for its end.
   */
  #scanSection(isHead: boolean): number {
    const buf = this.#buf;
    if (buf === null) return -1;
    const limits = this.#limits;
    const base = this.#start;
    const end = this.#end;
    let from = base + this.#scan;
    let lineStart = base + this.#lineStart;
    let lines = this.#lines;
    for (;;) {
      // Bytes after #end in an owned buffer are zero, so indexOf never finds a stale LF there.
      const lf = from < end ? buf.indexOf(LF, from) : -1;
      if (lf < 0 || lf >= end) {
        if (isHead && lines === 0 && end - lineStart > limits.maxRequestLine + 1) {
          throw bad("URI_TOO_LONG");
        }
        if (end - base > limits.maxHeaderBytes) throw bad("HEADERS_TOO_LARGE");
        this.#scan = end - base;
        this.#lineStart = lineStart - base;
        this.#lines = lines;
        return -1;
      }
      // RFC 9112 §2.2 lets a recipient accept a bare LF as a line terminator; we refuse it, as
      // a lone LF is read differently by different parsers (request smuggling).
      if (lf === lineStart || buf[lf - 1] !== CR) throw bad("BAD_LINE_ENDING");
      const lineLen = lf - 1 - lineStart;
      if (isHead && lines === 0) {
        if (lineLen > limits.maxRequestLine) throw bad("URI_TOO_LONG");
      }
      if (lf + 1 - base > limits.maxHeaderBytes) throw bad("HEADERS_TOO_LARGE");
      if (lineLen === 0 && (lines > 0 || !isHead)) {
        this.#scan = 0;
        this.#lineStart = 0;
        this.#lines = 0;
        return lf + 1;
      }
      if ((isHead ? lines : lines + 1) > limits.maxHeaders) throw bad("TOO_MANY_HEADERS");
      lines++;
      lineStart = lf + 1;
      from = lf + 1;
    }
  }

  /** Reads one chunk-size line (RFC 9112 §7.1); false when more bytes are needed. */
  #readChunkSize(): boolean {
    const buf = this.#buf;
    if (buf === null) return false;
    const start = this.#start;
    const end = this.#end;
    const from = start + this.#scan;
    const lf = from < end ? buf.indexOf(LF, from) : -1;
    if (lf < 0 || lf >= end) {
      if (end - start > MAX_CHUNK_LINE) throw bad("BAD_CHUNK", "Chunk size line too long");
      this.#scan = end - start;
      return false;
    }
    this.#scan = 0;
    if (lf - start > MAX_CHUNK_LINE) throw bad("BAD_CHUNK", "Chunk size line too long");
    if (lf === start || buf[lf - 1] !== CR) throw bad("BAD_CHUNK", "Chunk line not ended by CRLF");
    const lineEnd = lf - 1;
    // chunk-size = 1*HEXDIG; no sign, no "0x", no whitespace before it.
    let i = start;
    let size = 0;
    for (; i < lineEnd; i++) {
      const v = HEX[buf[i] as number] as number;
      if (v < 0) break;
      size = size * 16 + v;
    }
    const digits = i - start;
    if (digits === 0) throw bad("BAD_CHUNK", "Missing or invalid chunk size");
    if (digits > MAX_CHUNK_SIZE_DIGITS || size > Number.MAX_SAFE_INTEGER) {
      throw bad("BAD_CHUNK", "Chunk size too large");
    }
    if (i < lineEnd) {
      // chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] ): allowed and ignored,
      // but it must start with ";" and may hold no control characters.
      while (i < lineEnd && (buf[i] === SP || buf[i] === HTAB)) i++;
      if (buf[i] !== 0x3b) throw bad("BAD_CHUNK", "Invalid chunk size");
      for (; i < lineEnd; i++) {
        if (FIELD_CHAR[buf[i] as number] === 0) throw bad("BAD_CHUNK", "Invalid chunk extension");
      }
    }
    this.#consume(lf + 1 - start);
    if (size === 0) {
      this.#state = S_TRAILERS;
    } else {
      this.#state = S_CHUNK_DATA;
      this.#remaining = size;
    }
    return true;
  }
}

function bad(code: HttpErrorCode, message?: string): HttpError {
  return new HttpError(code, message);
}

/** `name` equals `lower` ignoring ASCII case; `lower` is lowercase letters and "-" only. */
export function eqLower(name: string, lower: string): boolean {
  if (name.length !== lower.length) return false;
  for (let i = 0; i < name.length; i++) {
    // Only "A"-"Z" map onto letters with |0x20 among token chars, and "-" stays "-".
    if ((name.charCodeAt(i) | 0x20) !== lower.charCodeAt(i)) return false;
  }
  return true;
}

function isOws(c: number): boolean {
  return c === SP || c === HTAB;
}

/**
 * Parses field lines from `pos` up to the terminating empty line of `s` (whose every line is
 * known to end in CRLF). Returns them flat as [name, value, ...].
 */
function parseFieldLines(s: string, pos: number): string[] {
  const fields: string[] = [];
  for (;;) {
    const eol = s.indexOf("\r\n", pos);
    if (eol === pos || eol < 0) return fields;
    const c0 = s.charCodeAt(pos);
    // RFC 9112 §5.2: obs-fold is refused (a server MAY reject it with 400).
    if (isOws(c0)) throw bad("BAD_HEADER", "Obsolete line folding is not allowed");
    let j = pos;
    while (j < eol && TOKEN[s.charCodeAt(j)] === 1) j++;
    // RFC 9112 §5.1: no whitespace between field name and colon (MUST reject with 400).
    if (j === pos) throw bad("BAD_HEADER", "Empty or invalid header name");
    if (j === eol || s.charCodeAt(j) !== 0x3a) {
      throw bad("BAD_HEADER", "Invalid character in header name");
    }
    let vs = j + 1;
    while (vs < eol && isOws(s.charCodeAt(vs))) vs++;
    let ve = eol;
    while (ve > vs && isOws(s.charCodeAt(ve - 1))) ve--;
    for (let k = vs; k < ve; k++) {
      if (FIELD_CHAR[s.charCodeAt(k)] !== 1) {
        throw bad("BAD_HEADER", "Invalid character in header value");
      }
    }
    fields.push(s.slice(pos, j), s.slice(vs, ve));
    pos = eol + 2;
  }
}

/**
 * Checks a Transfer-Encoding list. RFC 9112 §6.3 item 4: unless chunked is the final coding,
 * the body length cannot be known and the server MUST answer 400; chunked MUST NOT be applied
 * twice (§6.1). An empty list element is legal (RFC 9110 §5.6.1), but parsers disagree on
 * whether "chunked," ends in chunked, so it is refused like a repeated Content-Length. With
 * chunked last, other codings before it are well framed but not implemented: 501 (§6.1).
 */
function checkTransferCodings(te: string): void {
  const codings = te.split(",");
  const last = codings.length - 1;
  for (let i = 0; i <= last; i++) {
    const coding = trimOws(codings[i] as string);
    if (coding.length === 0) throw bad("CHUNKED_NOT_FINAL", "Empty transfer coding");
    if (eqLower(coding, "chunked") !== (i === last)) throw bad("CHUNKED_NOT_FINAL");
  }
  if (last > 0) throw bad("UNSUPPORTED_TRANSFER_ENCODING");
}

function trimOws(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && isOws(s.charCodeAt(a))) a++;
  while (b > a && isOws(s.charCodeAt(b - 1))) b--;
  return s.slice(a, b);
}

function isHost(s: string, allowEmpty: boolean): boolean {
  if (s.length === 0) return allowEmpty;
  for (let i = 0; i < s.length; i++) {
    if (HOST_CHAR[s.charCodeAt(i)] !== 1) return false;
  }
  return true;
}

function startsWithLower(s: string, prefix: string): boolean {
  return s.length >= prefix.length && eqLower(s.slice(0, prefix.length), prefix);
}

/** Parses a complete head (request-line through the empty line) in one pass. */
function parseHead(s: string): RequestHead {
  // RFC 9112 §3: request-line = method SP request-target SP HTTP-version CRLF, single SPs.
  const lineEnd = s.indexOf("\r\n");
  const sp1 = s.indexOf(" ");
  const sp2 = sp1 < 0 ? -1 : s.indexOf(" ", sp1 + 1);
  if (sp1 <= 0 || sp2 < 0 || sp2 > lineEnd || sp2 === sp1 + 1) throw bad("BAD_REQUEST_LINE");
  const version = s.slice(sp2 + 1, lineEnd);
  let httpVersion: "1.0" | "1.1";
  if (version === "HTTP/1.1") {
    httpVersion = "1.1";
  } else if (version === "HTTP/1.0") {
    httpVersion = "1.0";
  } else if (!/^HTTP\/[0-9]\.[0-9]$/.test(version)) {
    // RFC 9112 §2.3: HTTP-version is "HTTP/" DIGIT "." DIGIT, case-sensitive.
    throw bad("BAD_REQUEST_LINE");
  } else if (version.charCodeAt(5) === 0x31) {
    // RFC 9110 §6.2: a higher minor version of a major version we implement SHOULD be
    // processed as the highest minor version we speak (HTTP/1.2 is an HTTP/1.1 request).
    httpVersion = "1.1";
  } else {
    // RFC 9110 §15.6.6: 505 is for a major version we do not speak (HTTP/0.9, the HTTP/2.0
    // preface, HTTP/3.0).
    throw bad("UNSUPPORTED_VERSION");
  }
  const method = s.slice(0, sp1);
  for (let i = 0; i < sp1; i++) {
    if (TOKEN[s.charCodeAt(i)] !== 1) throw bad("BAD_METHOD");
  }
  // An ASGI application has no way to take over a tunnel, so CONNECT (RFC 9110 §9.3.6) is
  // answered 501 (RFC 9110 §15.6.2: a method the server supports for no resource) rather than
  // 400: the request is well formed. Not 405, which MUST carry an Allow list (§15.5.6) and
  // says the method works on some other resource.
  if (method === "CONNECT") throw bad("METHOD_NOT_IMPLEMENTED", "CONNECT is not supported");

  const target = s.slice(sp1 + 1, sp2);
  for (let i = 0; i < target.length; i++) {
    const c = target.charCodeAt(i);
    if (c < 0x21 || c > 0x7e) throw bad("BAD_TARGET", "Invalid character in request target");
    // RFC 9112 §3.2: no request-target form has a fragment; a "#" would reach the app as part
    // of the path or query, where other parsers on the path stop at it.
    if (c === 0x23) throw bad("BAD_TARGET", "Fragment in request target");
  }
  let rawPath: string;
  let query = "";
  let authority: string | null = null;
  const c0 = target.charCodeAt(0);
  if (c0 === 0x2f) {
    // RFC 9112 §3.2.1 origin-form.
    const q = target.indexOf("?");
    if (q < 0) {
      rawPath = target;
    } else {
      rawPath = target.slice(0, q);
      query = target.slice(q + 1);
    }
  } else if (target === "*") {
    // RFC 9112 §3.2.4: asterisk-form is only for a server-wide OPTIONS.
    if (method !== "OPTIONS") throw bad("BAD_TARGET", "Asterisk-form is only allowed with OPTIONS");
    rawPath = "*";
  } else {
    // RFC 9112 §3.2.2 absolute-form (a server MUST accept it); authority-form (§3.2.3) belongs
    // to CONNECT only and anything else is not a request-target.
    const schemeLen = startsWithLower(target, "http://")
      ? 7
      : startsWithLower(target, "https://")
        ? 8
        : 0;
    if (schemeLen === 0) throw bad("BAD_TARGET");
    let p = schemeLen;
    while (p < target.length && target.charCodeAt(p) !== 0x2f && target.charCodeAt(p) !== 0x3f) {
      p++;
    }
    // RFC 9110 §4.2.1: an http(s) URI with an empty host MUST be rejected; userinfo ("@") is
    // refused by the host character class (RFC 9110 §4.2.4).
    authority = target.slice(schemeLen, p);
    if (!isHost(authority, false)) {
      throw bad("BAD_TARGET", "Invalid authority in absolute-form target");
    }
    const rest = target.slice(p);
    const q = rest.indexOf("?");
    const path = q < 0 ? rest : rest.slice(0, q);
    rawPath = path === "" ? "/" : path;
    if (q >= 0) query = rest.slice(q + 1);
  }

  const headers = parseFieldLines(s, lineEnd + 2);
  let hosts = 0;
  let hostIndex = -1;
  let contentLength = -1;
  // All Transfer-Encoding fields as one list (RFC 9110 §5.3), or null when there is none.
  let te: string | null = null;
  let close = false;
  let keepAliveToken = false;
  let upgradeToken = false;
  let upgrade: string | null = null;
  let expectContinue = false;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i] as string;
    const value = headers[i + 1] as string;
    switch (name.length) {
      case 4:
        if (eqLower(name, "host")) {
          // RFC 9112 §3.2: more than one Host, or an invalid one, MUST get a 400.
          if (++hosts > 1) throw bad("BAD_HOST", "More than one Host header");
          if (!isHost(value, true)) throw bad("BAD_HOST", "Invalid Host header");
          hostIndex = i;
        }
        break;
      case 6:
        if (eqLower(name, "expect") && eqLower(value, "100-continue")) expectContinue = true;
        break;
      case 7:
        if (eqLower(name, "upgrade")) {
          const v = value.toLowerCase();
          upgrade = upgrade === null ? v : `${upgrade}, ${v}`;
        }
        break;
      case 10:
        if (eqLower(name, "connection")) {
          // RFC 9110 §7.6.1: a comma-separated list of case-insensitive tokens.
          for (const part of value.split(",")) {
            const token = part.trim().toLowerCase();
            if (token === "close") close = true;
            else if (token === "keep-alive") keepAliveToken = true;
            else if (token === "upgrade") upgradeToken = true;
          }
        }
        break;
      case 14:
        if (eqLower(name, "content-length")) {
          // RFC 9112 §6.3 item 5: repeated or list-valued Content-Length is refused outright,
          // even "5, 5", so no two parsers on the path can disagree about the length.
          if (contentLength >= 0) throw bad("BAD_CONTENT_LENGTH", "Repeated Content-Length");
          if (value.length === 0 || value.length > MAX_CONTENT_LENGTH_DIGITS) {
            throw bad("BAD_CONTENT_LENGTH");
          }
          let n = 0;
          for (let k = 0; k < value.length; k++) {
            const d = value.charCodeAt(k) - 0x30;
            if (d < 0 || d > 9) throw bad("BAD_CONTENT_LENGTH");
            n = n * 10 + d;
          }
          contentLength = n;
        }
        break;
      case 17:
        if (eqLower(name, "transfer-encoding")) te = te === null ? value : `${te},${value}`;
        break;
    }
  }
  if (httpVersion === "1.1" && hosts === 0) throw bad("BAD_HOST", "Missing Host header");
  if (authority !== null) {
    // RFC 9112 §3.2.2: with an absolute-form target the server MUST ignore Host and use the
    // target's authority. The app reads Host, so Host is made to say what the target says
    // (validated above all the same: RFC 9112 §3.2 wants a 400 for an invalid one).
    if (hostIndex >= 0) headers[hostIndex + 1] = authority;
    else headers.push("host", authority);
  }
  let bodyKind: RequestHead["bodyKind"] = "none";
  if (te !== null) {
    // RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 request means faulty framing.
    if (httpVersion === "1.0") throw bad("BAD_TRANSFER_ENCODING");
    // RFC 9112 §6.1: a server MAY reject a request with both; we always do (smuggling).
    if (contentLength >= 0) throw bad("CONFLICTING_FRAMING");
    checkTransferCodings(te);
    bodyKind = "chunked";
  } else if (contentLength >= 0) {
    bodyKind = "length";
  }
  return {
    method,
    target,
    rawPath,
    query,
    httpVersion,
    headers,
    // RFC 9112 §9.3: 1.1 is persistent unless "close"; 1.0 only with "keep-alive".
    keepAlive: !close && (httpVersion === "1.1" || keepAliveToken),
    bodyKind,
    contentLength: Math.max(contentLength, 0),
    // RFC 9110 §10.1.1: a 100-continue expectation in an HTTP/1.0 request MUST be ignored.
    expectContinue: expectContinue && httpVersion === "1.1",
    // RFC 9110 §7.8: Upgrade counts only when listed in Connection, and never in HTTP/1.0.
    upgrade: upgradeToken && httpVersion === "1.1" ? upgrade : null,
  };
}
