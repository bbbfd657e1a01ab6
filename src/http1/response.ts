import { HttpError } from "./errors.ts";

/** What the request said that shapes the response framing. */
export interface ResponseContext {
  httpVersion: "1.0" | "1.1";
  method: string;
  keepAlive: boolean;
}

/**
 * A serialized response head and how its body must be framed: `contentLength` is the declared
 * length in "length" mode, else -1; `keepAlive` is false when the connection must close after
 * this response.
 */
export interface ResponseFraming {
  head: string;
  mode: "length" | "chunked" | "close" | "none";
  contentLength: number;
  keepAlive: boolean;
}

/** Goes after the bytes of every chunk. */
export const CHUNK_TRAILER = "\r\n";
/** Ends a chunked body (RFC 9112 §7.1: last-chunk, no trailers, CRLF). */
export const LAST_CHUNK = "0\r\n\r\n";

// RFC 9110 §15, plus 418/425 from RFC 9110 and 103 (RFC 8297), 428/429/431/511 (RFC 6585).
const REASONS: Record<number, string> = {
  100: "Continue",
  101: "Switching Protocols",
  102: "Processing",
  103: "Early Hints",
  200: "OK",
  201: "Created",
  202: "Accepted",
  203: "Non-Authoritative Information",
  204: "No Content",
  205: "Reset Content",
  206: "Partial Content",
  207: "Multi-Status",
  208: "Already Reported",
  226: "IM Used",
  300: "Multiple Choices",
  301: "Moved Permanently",
  302: "Found",
  303: "See Other",
  304: "Not Modified",
  305: "Use Proxy",
  307: "Temporary Redirect",
  308: "Permanent Redirect",
  400: "Bad Request",
  401: "Unauthorized",
  402: "Payment Required",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  406: "Not Acceptable",
  407: "Proxy Authentication Required",
  408: "Request Timeout",
  409: "Conflict",
  410: "Gone",
  411: "Length Required",
  412: "Precondition Failed",
  413: "Content Too Large",
  414: "URI Too Long",
  415: "Unsupported Media Type",
  416: "Range Not Satisfiable",
  417: "Expectation Failed",
  418: "I'm a teapot",
  421: "Misdirected Request",
  422: "Unprocessable Content",
  423: "Locked",
  424: "Failed Dependency",
  425: "Too Early",
  426: "Upgrade Required",
  428: "Precondition Required",
  429: "Too Many Requests",
  431: "Request Header Fields Too Large",
  451: "Unavailable For Legal Reasons",
  500: "Internal Server Error",
  501: "Not Implemented",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
  505: "HTTP Version Not Supported",
  506: "Variant Also Negotiates",
  507: "Insufficient Storage",
  508: "Loop Detected",
  510: "Not Extended",
  511: "Network Authentication Required",
};

/** The standard reason phrase for `status`, or "" (RFC 9112 §4: reason-phrase is optional). */
export function reasonPhrase(status: number): string {
  return REASONS[status] ?? "";
}

const STATUS_LINES = new Map<number, string>();

function statusLine(status: number): string {
  let line = STATUS_LINES.get(status);
  if (line === undefined) {
    // Always "HTTP/1.1", also to 1.0 clients (RFC 9110 §6.2: the version is the sender's
    // capability; uvicorn and h11 do the same).
    line = `HTTP/1.1 ${status} ${reasonPhrase(status)}\r\n`;
    STATUS_LINES.set(status, line);
  }
  return line;
}

let dateSecond = -1;
let dateString = "";

/** IMF-fixdate for `nowMs` (RFC 9110 §5.6.7), recomputed at most once per second. */
export function formatDate(nowMs: number): string {
  const second = Math.floor(nowMs / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    // Date#toUTCString is specified (ECMA-262 §21.4.4.43) as "Www, DD Mmm YYYY HH:MM:SS GMT",
    // which is exactly IMF-fixdate for years 1000-9999.
    dateString = new Date(second * 1000).toUTCString();
  }
  return dateString;
}

/** The line that starts a chunk of `length` bytes (RFC 9112 §7.1), e.g. "1a\r\n". */
export function chunkHeader(length: number): string {
  // A zero-size chunk would be the last-chunk and end the body early.
  if (!Number.isSafeInteger(length) || length <= 0) {
    throw new RangeError(`chunk length must be a positive integer, got ${length}`);
  }
  return `${length.toString(16)}\r\n`;
}

function isTokenChar(c: number): boolean {
  // RFC 9110 §5.6.2 tchar.
  return (
    (c >= 0x61 && c <= 0x7a) ||
    (c >= 0x41 && c <= 0x5a) ||
    (c >= 0x30 && c <= 0x39) ||
    (c >= 0x23 && c <= 0x27) || // # $ % & '
    c === 0x21 ||
    c === 0x2a ||
    c === 0x2b ||
    c === 0x2d ||
    c === 0x2e ||
    c === 0x5e ||
    c === 0x5f ||
    c === 0x60 ||
    c === 0x7c ||
    c === 0x7e
  );
}

function checkName(name: string): void {
  if (name.length === 0) throw badHeader("empty header name");
  for (let i = 0; i < name.length; i++) {
    if (!isTokenChar(name.charCodeAt(i)))
      throw badHeader(`invalid header name ${JSON.stringify(name)}`);
  }
}

function checkValue(name: string, value: string): void {
  // RFC 9110 §5.5: no CR, LF, NUL or other CTL (HTAB excepted) may reach the wire, and no
  // char above 0xFF (it has no single-byte latin1 form).
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f || c > 0xff) {
      throw badHeader(`invalid character in the value of header ${JSON.stringify(name)}`);
    }
  }
}

function badHeader(detail: string): HttpError {
  return new HttpError("BAD_RESPONSE_HEADER", `Invalid response header: ${detail}`);
}

/** `s` lowercased when it is ASCII; cheap when already lowercase. */
function lower(s: string): string {
  return s.toLowerCase();
}

function parseLength(value: string): number {
  const v = value.trim();
  if (v.length === 0 || v.length > 15) return -1;
  let n = 0;
  for (let i = 0; i < v.length; i++) {
    const d = v.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}

function hasToken(value: string, token: string): boolean {
  for (const part of value.split(",")) {
    if (lower(part.trim()) === token) return true;
  }
  return false;
}

/**
 * Builds the response head from the application's status and headers (flat
 * [name, value, ...] latin1 strings, kept in order and case) and decides the body framing.
 * Adds `server` (unless `serverName` is "") and `date` unless the app sent them, then
 * `transfer-encoding: chunked` and `connection` as framing requires. Throws an HttpError
 * "BAD_RESPONSE_HEADER" if the status or any header could not be sent safely.
 */
export function serializeResponseHead(
  status: number,
  headers: string[],
  ctx: ResponseContext,
  serverName: string,
): ResponseFraming {
  if (!Number.isInteger(status) || status < 100 || status > 599) {
    throw new HttpError("BAD_RESPONSE_HEADER", `Invalid response status ${status}`);
  }
  if (headers.length % 2 !== 0) throw badHeader("odd number of header name/value items");
  let hasServer = false;
  let hasDate = false;
  let hasConnection = false;
  let appClose = false;
  let contentLength = -1;
  let appChunked = false;
  let hasTransferEncoding = false;
  let body = "";
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i] as string;
    const value = headers[i + 1] as string;
    checkName(name);
    checkValue(name, value);
    body += `${name}: ${value}\r\n`;
    switch (name.length) {
      case 4:
        if (lower(name) === "date") hasDate = true;
        break;
      case 6:
        if (lower(name) === "server") hasServer = true;
        break;
      case 10:
        if (lower(name) === "connection") {
          hasConnection = true;
          if (hasToken(value, "close")) appClose = true;
        }
        break;
      case 14:
        if (lower(name) === "content-length") {
          const n = parseLength(value);
          if (n < 0) throw badHeader(`invalid content-length ${JSON.stringify(value)}`);
          if (contentLength >= 0 && contentLength !== n) {
            throw badHeader("two different content-length values");
          }
          contentLength = n;
        }
        break;
      case 17:
        if (lower(name) === "transfer-encoding") {
          hasTransferEncoding = true;
          // RFC 9112 §6.1: chunked must be the final coding for the body to be delimited.
          const codings = lower(value).split(",");
          appChunked = (codings[codings.length - 1] as string).trim() === "chunked";
        }
        break;
    }
  }
  // RFC 9112 §6.2: a sender MUST NOT send Content-Length with Transfer-Encoding.
  if (contentLength >= 0 && hasTransferEncoding) {
    throw badHeader("both content-length and transfer-encoding");
  }

  let keepAlive = ctx.keepAlive && !appClose;
  let mode: ResponseFraming["mode"];
  let extra = "";
  // RFC 9110 §6.4.1: responses to HEAD and 1xx/204/304 responses never have content, whatever
  // their Content-Length says (it describes the GET representation for HEAD and 304).
  if (ctx.method === "HEAD" || status < 200 || status === 204 || status === 304) {
    mode = "none";
    contentLength = -1;
  } else if (contentLength >= 0) {
    mode = "length";
  } else if (hasTransferEncoding) {
    // RFC 9112 §6.3 item 3 (responses): not ending in chunked means close-delimited.
    mode = appChunked ? "chunked" : "close";
  } else if (ctx.httpVersion === "1.1") {
    mode = "chunked";
    extra += "transfer-encoding: chunked\r\n";
  } else {
    // RFC 9112 §6.3 item 8: an HTTP/1.0 client cannot read chunked; close delimits the body.
    mode = "close";
  }
  if (mode === "close") keepAlive = false;
  if (!hasConnection) {
    if (!keepAlive) extra += "connection: close\r\n";
    // RFC 9112 §9.3: an HTTP/1.0 connection stays open only if both sides say keep-alive.
    else if (ctx.httpVersion === "1.0") extra += "connection: keep-alive\r\n";
  }

  let head = statusLine(status);
  if (!hasServer && serverName !== "") {
    checkValue("server", serverName);
    head += `server: ${serverName}\r\n`;
  }
  if (!hasDate) head += `date: ${formatDate(Date.now())}\r\n`;
  head += `${body}${extra}\r\n`;
  return { head, mode, contentLength, keepAlive };
}

/**
 * A complete response generated by the router itself (errors such as 400, 413, 502): a
 * text/plain UTF-8 body with content-length, `connection: close` unless `keepAlive`.
 * Returns a latin1 binary string (one char per byte), body included.
 */
export function serializeSimpleResponse(
  status: number,
  body: string,
  keepAlive: boolean,
  serverName: string,
  headers: string[] = [],
): string {
  const bytes = Buffer.from(body, "utf8");
  const framing = serializeResponseHead(
    status,
    [
      "content-type",
      "text/plain; charset=utf-8",
      "content-length",
      String(bytes.length),
      ...headers,
    ],
    { httpVersion: "1.1", method: "GET", keepAlive },
    serverName,
  );
  return framing.head + bytes.toString("latin1");
}
