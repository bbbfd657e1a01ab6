// What RFC 9113 §8 requires of a request's decoded header list: pseudo-header fields (§8.3.1),
// field names and values (§8.2.1), no connection-specific fields (§8.2.2), Cookie (§8.2.3),
// and the Content-Length used to check the body (§8.1.1). A violation makes the request
// malformed: a stream error PROTOCOL_ERROR (§8.1.1).

import { CONNECTION_SPECIFIC, NAME_CHAR, VALUE_CHAR } from "./fields.ts";

/** A validated request head. `headers` is flat [name, value, ...] without pseudo-headers. */
export interface H2RequestHead {
  method: string;
  /** "" for CONNECT (§8.5: no :scheme, no :path). */
  scheme: string;
  /** :authority, else the Host header, else "" (only possible with a non-http(s) scheme). */
  authority: string;
  /** "" for CONNECT. */
  path: string;
  headers: string[];
  /** The Content-Length value, -1 when absent. */
  contentLength: number;
}

/** The request (or trailer section) breaks an RFC 9113 §8 rule. */
export class MalformedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "MalformedError";
  }
}

// RFC 3986 host plus ":" port, as in the HTTP/1.1 parser; no "@" (§8.3.1: no userinfo).
const HOST_CHAR = new Uint8Array(256);
for (const c of "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~%!$&'()*+,;=:[]") {
  HOST_CHAR[c.charCodeAt(0)] = 1;
}

const TOKEN_CHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") {
  TOKEN_CHAR[c.charCodeAt(0)] = 1;
}

const MAX_CONTENT_LENGTH_DIGITS = 15;

function checkName(name: string): void {
  if (name.length === 0) throw new MalformedError("Empty field name");
  for (let i = 0; i < name.length; i++) {
    if (NAME_CHAR[name.charCodeAt(i)] !== 1) {
      throw new MalformedError(
        name.charCodeAt(i) >= 0x41 && name.charCodeAt(i) <= 0x5a
          ? "Uppercase character in a field name"
          : "Invalid character in a field name",
      );
    }
  }
}

function checkValue(value: string): void {
  const n = value.length;
  if (n === 0) return;
  // §8.2.1: no leading or trailing whitespace.
  const c0 = value.charCodeAt(0);
  const cn = value.charCodeAt(n - 1);
  if (c0 === 0x20 || c0 === 0x09 || cn === 0x20 || cn === 0x09) {
    throw new MalformedError("Whitespace at the start or end of a field value");
  }
  for (let i = 0; i < n; i++) {
    if (VALUE_CHAR[value.charCodeAt(i)] !== 1) {
      throw new MalformedError("Invalid character in a field value");
    }
  }
}

function isToken(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) if (TOKEN_CHAR[s.charCodeAt(i)] !== 1) return false;
  return true;
}

function isHost(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) if (HOST_CHAR[s.charCodeAt(i)] !== 1) return false;
  return true;
}

// RFC 3986 §3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*$/;

function checkPath(path: string, method: string): void {
  if (path.length === 0) throw new MalformedError("Empty :path");
  // §8.3.1: an absolute path, or "*" for a server-wide OPTIONS.
  if (path === "*") {
    if (method !== "OPTIONS") throw new MalformedError(":path * with a method other than OPTIONS");
    return;
  }
  if (path.charCodeAt(0) !== 0x2f) throw new MalformedError(":path does not start with /");
  // As in the HTTP/1.1 parser: visible ASCII only, and no fragment (RFC 9112 §3.2).
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c < 0x21 || c > 0x7e || c === 0x23) {
      throw new MalformedError("Invalid character in :path");
    }
  }
}

function parseContentLength(value: string): number {
  if (value.length === 0 || value.length > MAX_CONTENT_LENGTH_DIGITS) {
    throw new MalformedError("Invalid content-length");
  }
  let n = 0;
  for (let i = 0; i < value.length; i++) {
    const d = value.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) throw new MalformedError("Invalid content-length");
    n = n * 10 + d;
  }
  return n;
}

/** Checks a regular (non-pseudo) field; shared by requests and trailers. */
function checkField(name: string, value: string): void {
  checkName(name);
  checkValue(value);
  if (CONNECTION_SPECIFIC.has(name)) {
    throw new MalformedError(`Connection-specific field ${name}`);
  }
  // §8.2.2: TE may be present but only with "trailers".
  if (name === "te" && value.toLowerCase() !== "trailers") {
    throw new MalformedError("TE other than trailers");
  }
}

/**
 * Validates a decoded request header list (flat [name, value, ...]) and splits off the
 * pseudo-headers. Throws MalformedError.
 */
export function parseRequestHead(fields: string[]): H2RequestHead {
  let method: string | null = null;
  let scheme: string | null = null;
  let authority: string | null = null;
  let path: string | null = null;
  let i = 0;
  // §8.3: pseudo-header fields come first, each at most once.
  for (; i < fields.length; i += 2) {
    const name = fields[i] as string;
    if (name.charCodeAt(0) !== 0x3a) break;
    const value = fields[i + 1] as string;
    switch (name) {
      case ":method":
        if (method !== null) throw new MalformedError("Repeated :method");
        method = value;
        break;
      case ":scheme":
        if (scheme !== null) throw new MalformedError("Repeated :scheme");
        scheme = value;
        break;
      case ":authority":
        if (authority !== null) throw new MalformedError("Repeated :authority");
        authority = value;
        break;
      case ":path":
        if (path !== null) throw new MalformedError("Repeated :path");
        path = value;
        break;
      default:
        // §8.3: unknown pseudo-headers and response ones (:status) are malformed; :protocol
        // (RFC 8441) needs SETTINGS_ENABLE_CONNECT_PROTOCOL, which we do not send.
        throw new MalformedError(`Pseudo-header ${name} not allowed in a request`);
    }
  }
  if (method === null) throw new MalformedError("Missing :method");
  if (!isToken(method)) throw new MalformedError("Invalid :method");

  const headers: string[] = [];
  let contentLength = -1;
  let host: string | null = null;
  let cookie = -1; // index in `headers` of the merged cookie value
  for (; i < fields.length; i += 2) {
    const name = fields[i] as string;
    const value = fields[i + 1] as string;
    if (name.charCodeAt(0) === 0x3a) {
      throw new MalformedError("Pseudo-header after a regular field");
    }
    checkField(name, value);
    switch (name) {
      case "content-length": {
        // As in the HTTP/1.1 parser: a repeated Content-Length is refused, even if equal.
        if (contentLength >= 0) throw new MalformedError("Repeated content-length");
        contentLength = parseContentLength(value);
        break;
      }
      case "host":
        if (host !== null) throw new MalformedError("Repeated host");
        host = value;
        break;
      case "cookie":
        // §8.2.3: split cookie fields are joined with "; " before reaching an HTTP/1.1-style
        // consumer (ASGI apps read one cookie header).
        if (cookie >= 0) {
          headers[cookie] = `${headers[cookie]}; ${value}`;
          continue;
        }
        cookie = headers.length + 1;
        break;
    }
    headers.push(name, value);
  }

  if (method === "CONNECT") {
    // §8.5: CONNECT carries :authority only.
    if (scheme !== null || path !== null) {
      throw new MalformedError("CONNECT with :scheme or :path");
    }
    if (authority === null || !isHost(authority)) {
      throw new MalformedError("CONNECT without a valid :authority");
    }
    return { method, scheme: "", authority, path: "", headers, contentLength };
  }
  if (scheme === null) throw new MalformedError("Missing :scheme");
  if (!SCHEME.test(scheme)) throw new MalformedError("Invalid :scheme");
  if (path === null) throw new MalformedError("Missing :path");
  checkPath(path, method);
  if (authority !== null) {
    if (!isHost(authority)) throw new MalformedError("Invalid :authority");
    // §8.3.1: a Host naming another entity than :authority SHOULD make the request malformed.
    if (host !== null && host.toLowerCase() !== authority.toLowerCase()) {
      throw new MalformedError("Host differs from :authority");
    }
  } else if (host !== null) {
    if (!isHost(host)) throw new MalformedError("Invalid host");
    authority = host;
  } else {
    // §8.3.1: http and https have a mandatory authority, carried by :authority or Host.
    const s = scheme.toLowerCase();
    if (s === "http" || s === "https") throw new MalformedError("Missing :authority and host");
    authority = "";
  }
  return { method, scheme, authority, path, headers, contentLength };
}

/**
 * Validates a decoded trailer section (§8.1: no pseudo-headers; the field rules of §8.2) and
 * returns it unchanged.
 */
export function checkTrailers(fields: string[]): string[] {
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i] as string;
    if (name.charCodeAt(0) === 0x3a) throw new MalformedError("Pseudo-header in trailers");
    checkField(name, fields[i + 1] as string);
  }
  return fields;
}
