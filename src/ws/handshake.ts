import { createHash } from "node:crypto";

// RFC 6455 §4.2 server side of the opening handshake and RFC 7692 §5/§7.1 permessage-deflate
// negotiation. Header lists are flat latin1 `[name, value, name, value, ...]` with names in
// their received case and values already trimmed of OWS (as RequestParser produces them).

/**
 * The agreed permessage-deflate parameters. `serverMaxWindowBits` is the window our deflate
 * may use (8..15), `clientMaxWindowBits` the largest window the client said it will use (15
 * when it said nothing), `responseHeader` the Sec-WebSocket-Extensions value to answer with.
 * Context takeover is never agreed (see negotiateDeflate).
 */
export interface DeflateParams {
  serverMaxWindowBits: number;
  clientMaxWindowBits: number;
  responseHeader: string;
}

/** The outcome of checkUpgrade: what to accept with, or the error response to send. */
export type UpgradeResult =
  | { ok: true; key: string; subprotocols: string[]; deflate: DeflateParams | null }
  | { ok: false; status: number; reason: string; headers: string[] };

// RFC 6455 §1.3 / §4.2.2 item 5.4.
const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
// §4.1: the key is a base64-encoded 16-byte nonce, i.e. 22 base64 characters and "==".
const KEY_PATTERN = /^[A-Za-z0-9+/]{22}==$/;

// RFC 9110 §5.6.2: tchar.
const TOKEN = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") {
  TOKEN[c.charCodeAt(0)] = 1;
}

function isTokenChar(c: number): boolean {
  return c < 128 && TOKEN[c] === 1;
}

function eqLower(a: string, lowerB: string): boolean {
  return a.length === lowerB.length && a.toLowerCase() === lowerB;
}

/** The values of every header named `lowerName`, in order. */
function values(headers: string[], lowerName: string): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < headers.length; i += 2) {
    if (eqLower(headers[i] as string, lowerName)) out.push(headers[i + 1] as string);
  }
  return out;
}

/** True when some header named `lowerName` lists `lowerToken` (RFC 9110 §5.6.1 lists). */
function hasToken(headers: string[], lowerName: string, lowerToken: string): boolean {
  for (const value of values(headers, lowerName)) {
    for (const part of value.split(",")) {
      if (part.trim().toLowerCase() === lowerToken) return true;
    }
  }
  return false;
}

/**
 * True when the request asks to be upgraded to WebSocket: an Upgrade header lists the token
 * "websocket" (RFC 6455 §4.2.1 item 3, case-insensitive). Everything else, the method
 * included, is judged by checkUpgrade, so a malformed attempt gets a WebSocket-specific error.
 */
export function isWebSocketUpgrade(_method: string, headers: string[]): boolean {
  return hasToken(headers, "upgrade", "websocket");
}

function refuse(reason: string, status = 400, headers: string[] = []): UpgradeResult {
  return { ok: false, status, reason, headers };
}

/**
 * Validates an opening handshake request (RFC 6455 §4.2.1). `httpVersion` is "1.1" (as
 * RequestParser reports it) or "HTTP/1.1". On success returns the client's key, its
 * subprotocols in order (all Sec-WebSocket-Protocol headers, comma-split) and the agreed
 * permessage-deflate parameters; otherwise the status, a reason and extra response headers.
 */
export function checkUpgrade(
  method: string,
  httpVersion: string,
  headers: string[],
): UpgradeResult {
  // §4.2.1 item 1: "An HTTP/1.1 or higher GET request". §4.2.1 asks for "an appropriate
  // error code (such as 400 Bad Request)" for a handshake that does not match.
  if (method !== "GET") return refuse("WebSocket handshake must use GET");
  if (httpVersion !== "1.1" && httpVersion !== "HTTP/1.1") {
    return refuse("WebSocket handshake requires HTTP/1.1");
  }
  // §4.2.1 item 2.
  if (values(headers, "host").length === 0) return refuse("Missing Host header");
  // §4.2.1 items 3 and 4.
  if (!hasToken(headers, "upgrade", "websocket")) {
    return refuse("Upgrade header does not list websocket");
  }
  if (!hasToken(headers, "connection", "upgrade")) {
    return refuse("Connection header does not list upgrade");
  }
  // §4.2.1 item 6 and §4.4: a version we do not speak gets 426 with the versions we do.
  // RFC 9110 §15.5.22: a 426 MUST carry Upgrade, and RFC 9110 §7.8 makes a sender of Upgrade
  // list "upgrade" in Connection too.
  const versions = values(headers, "sec-websocket-version");
  if (versions.length !== 1 || versions[0] !== "13") {
    return refuse("Unsupported or missing Sec-WebSocket-Version", 426, [
      "sec-websocket-version",
      "13",
      "upgrade",
      "websocket",
      "connection",
      "upgrade",
    ]);
  }
  // §4.2.1 item 5 and §11.3.1: exactly one key, base64 of 16 bytes.
  const keys = values(headers, "sec-websocket-key");
  if (keys.length !== 1) return refuse("Missing or repeated Sec-WebSocket-Key");
  const key = keys[0] as string;
  if (!KEY_PATTERN.test(key)) return refuse("Sec-WebSocket-Key is not base64 of 16 bytes");

  // §4.2.1 item 8 / §11.3.4: the subprotocols, in the client's order of preference.
  const subprotocols: string[] = [];
  for (const value of values(headers, "sec-websocket-protocol")) {
    for (const part of value.split(",")) {
      const p = part.trim();
      if (p !== "") subprotocols.push(p);
    }
  }
  return { ok: true, key, subprotocols, deflate: negotiateDeflate(headers) };
}

/** The Sec-WebSocket-Accept value for a client key (RFC 6455 §4.2.2 item 5.4). */
export function acceptKey(key: string): string {
  return createHash("sha1")
    .update(key + GUID, "latin1")
    .digest("base64");
}

// ---- Sec-WebSocket-Extensions (RFC 6455 §9.1) ----

/** One extension offer: its name and parameters (value null for a valueless parameter). */
export interface ExtensionOffer {
  name: string;
  params: Array<[string, string | null]>;
}

function isOws(c: number): boolean {
  return c === 0x20 || c === 0x09;
}

/**
 * Parses one Sec-WebSocket-Extensions value (RFC 6455 §9.1):
 *   extension-list = 1#extension
 *   extension = extension-token *( ";" extension-param )
 *   extension-param = token [ "=" (token | quoted-string) ]
 * "When using the quoted-string syntax variant, the value after quoted-string unescaping MUST
 * conform to the 'token' ABNF." A malformed element yields null (its offer is declined, the
 * next ones still count); empty list elements are skipped (RFC 9110 §5.6.1).
 */
export function parseExtensions(value: string): Array<ExtensionOffer | null> {
  const out: Array<ExtensionOffer | null> = [];
  const n = value.length;
  let i = 0;
  const skipOws = (): void => {
    while (i < n && isOws(value.charCodeAt(i))) i++;
  };
  const token = (): string => {
    const start = i;
    while (i < n && isTokenChar(value.charCodeAt(i))) i++;
    return value.slice(start, i);
  };
  // Moves past the rest of a malformed element, honouring quoted strings.
  const skipElement = (): void => {
    let quoted = false;
    for (; i < n; i++) {
      const c = value.charCodeAt(i);
      if (quoted) {
        if (c === 0x5c) i++;
        else if (c === 0x22) quoted = false;
      } else if (c === 0x22) {
        quoted = true;
      } else if (c === 0x2c) {
        return;
      }
    }
  };
  while (i < n) {
    skipOws();
    if (i < n && value.charCodeAt(i) === 0x2c) {
      i++;
      continue;
    }
    if (i >= n) break;
    const name = token();
    let ok = name !== "";
    const params: Array<[string, string | null]> = [];
    while (ok) {
      skipOws();
      if (i >= n || value.charCodeAt(i) === 0x2c) break;
      if (value.charCodeAt(i) !== 0x3b) {
        ok = false;
        break;
      }
      i++;
      skipOws();
      const pname = token();
      if (pname === "") {
        ok = false;
        break;
      }
      skipOws();
      let pvalue: string | null = null;
      if (i < n && value.charCodeAt(i) === 0x3d) {
        i++;
        skipOws();
        if (i < n && value.charCodeAt(i) === 0x22) {
          // quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE (RFC 9110 §5.6.4)
          i++;
          let s = "";
          let closed = false;
          while (i < n) {
            const c = value.charCodeAt(i);
            if (c === 0x22) {
              closed = true;
              i++;
              break;
            }
            if (c === 0x5c && i + 1 < n) i++;
            s += value[i];
            i++;
          }
          if (!closed || s === "" || ![...s].every((ch) => isTokenChar(ch.charCodeAt(0)))) {
            ok = false;
            break;
          }
          pvalue = s;
        } else {
          pvalue = token();
          if (pvalue === "") {
            ok = false;
            break;
          }
        }
      }
      params.push([pname, pvalue]);
    }
    if (ok) {
      out.push({ name, params });
      if (i < n) i++; // the comma
    } else {
      out.push(null);
      skipElement();
      if (i < n) i++;
    }
  }
  return out;
}

// RFC 7692 §7.1.2.1 / §7.1.2.2: "a decimal integer value without leading zeroes between 8 to
// 15, inclusive".
const WINDOW_BITS = /^(?:8|9|1[0-5])$/;

/**
 * Picks the first acceptable permessage-deflate offer from every Sec-WebSocket-Extensions
 * header (RFC 7692 §5: offers in order of preference), or null when none is acceptable.
 *
 * An offer is declined (RFC 7692 §7.1) when it has a parameter not defined for offers, a
 * repeated parameter, or a parameter with an invalid value: a valueless
 * server_max_window_bits, a value on a *_no_context_takeover, bits outside 8..15.
 *
 * The answer always carries server_no_context_takeover and client_no_context_takeover, so
 * neither side keeps an LZ77 window between messages and an idle connection holds no zlib
 * state. RFC 7692 allows both unconditionally:
 * - §7.1.1.1: "A server MAY include the "server_no_context_takeover" extension parameter in
 *   an extension negotiation response even if the extension negotiation offer being accepted
 *   by the extension negotiation response didn't include [it]."
 * - §7.1.1.2: "A server MAY include the "client_no_context_takeover" extension parameter in
 *   an extension negotiation response." Once it is in the agreed parameters, §7.2.2 lets the
 *   server "decompress each new message with an empty LZ77 sliding window"; without it the
 *   server MUST keep the client's window, even if the client offered the parameter (the offer
 *   alone is "just a hint").
 *
 * server_max_window_bits, when offered, is answered with the same value (§7.1.2.1 requires the
 * same or a smaller one) and our deflate uses it; 8 is honoured, see deflateMessage.
 * client_max_window_bits is never put in the answer (§7.1.2.2: optional when offered, MUST NOT
 * when not): our inflate always uses a 32 KiB window, which reads any smaller one, and with no
 * context takeover that window only exists while one message is inflated.
 */
export function negotiateDeflate(headers: string[]): DeflateParams | null {
  for (const value of values(headers, "sec-websocket-extensions")) {
    for (const offer of parseExtensions(value)) {
      if (offer === null || !eqLower(offer.name, "permessage-deflate")) continue;
      const params = acceptDeflateOffer(offer);
      if (params !== null) return params;
    }
  }
  return null;
}

function acceptDeflateOffer(offer: ExtensionOffer): DeflateParams | null {
  const seen = new Set<string>();
  let serverBits = 15;
  let serverBitsOffered = false;
  let clientBits = 15;
  for (const [rawName, value] of offer.params) {
    const name = rawName.toLowerCase();
    if (seen.has(name)) return null; // §7.1: multiple parameters with the same name
    seen.add(name);
    switch (name) {
      case "server_no_context_takeover":
      case "client_no_context_takeover":
        // §7.1.1.1 / §7.1.1.2: these parameters have no value.
        if (value !== null) return null;
        break;
      case "server_max_window_bits":
        // §7.1.2.1: has a value in an offer.
        if (value === null || !WINDOW_BITS.test(value)) return null;
        serverBits = Number(value);
        serverBitsOffered = true;
        break;
      case "client_max_window_bits":
        // §7.1.2.2: may have no value in an offer ("supports the parameter").
        if (value !== null) {
          if (!WINDOW_BITS.test(value)) return null;
          clientBits = Number(value);
        }
        break;
      default:
        return null; // §7.1: a parameter not defined for use in an offer
    }
  }
  let responseHeader = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";
  if (serverBitsOffered) responseHeader += `; server_max_window_bits=${serverBits}`;
  return { serverMaxWindowBits: serverBits, clientMaxWindowBits: clientBits, responseHeader };
}

// ---- 101 response ----

// Headers the server sets itself on a 101: extra headers with these names are skipped.
// content-length / transfer-encoding: RFC 9110 §8.6 and RFC 9112 §6.1 forbid them on a 1xx.
const OWN_HEADERS = new Set([
  "upgrade",
  "connection",
  "sec-websocket-accept",
  "sec-websocket-protocol",
  "sec-websocket-extensions",
  "content-length",
  "transfer-encoding",
]);

function checkNoCrLf(s: string): string {
  if (s.includes("\r") || s.includes("\n")) {
    throw new RangeError(`CR or LF in a WebSocket handshake header: ${JSON.stringify(s)}`);
  }
  return s;
}

/**
 * The `101 Switching Protocols` response head (RFC 6455 §4.2.2 item 5) as a latin1 string
 * ending in CRLFCRLF: upgrade, connection, sec-websocket-accept for `key`, the chosen
 * subprotocol and the deflate answer when given, then `extraHeaders` (flat [name, value, ...])
 * except those the server sets itself. Throws RangeError if any name or value has CR or LF.
 */
export function serializeHandshake(
  key: string,
  subprotocol: string | null,
  deflate: DeflateParams | null,
  extraHeaders: string[],
): string {
  if (extraHeaders.length % 2 !== 0) {
    throw new RangeError("extraHeaders must be a flat list of name/value pairs");
  }
  let head =
    "HTTP/1.1 101 Switching Protocols\r\n" +
    "upgrade: websocket\r\n" +
    "connection: Upgrade\r\n" +
    `sec-websocket-accept: ${acceptKey(checkNoCrLf(key))}\r\n`;
  if (subprotocol !== null) head += `sec-websocket-protocol: ${checkNoCrLf(subprotocol)}\r\n`;
  if (deflate !== null) {
    head += `sec-websocket-extensions: ${checkNoCrLf(deflate.responseHeader)}\r\n`;
  }
  for (let i = 0; i < extraHeaders.length; i += 2) {
    const name = checkNoCrLf(extraHeaders[i] as string);
    const value = checkNoCrLf(extraHeaders[i + 1] as string);
    if (OWN_HEADERS.has(name.toLowerCase())) continue;
    head += `${name}: ${value}\r\n`;
  }
  return `${head}\r\n`;
}
