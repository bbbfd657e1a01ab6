import { HttpError } from "../http1/errors.ts";
import { CONNECTION_SPECIFIC, NAME_CHAR, VALUE_CHAR } from "./fields.ts";

function bad(detail: string): HttpError {
  return new HttpError("BAD_RESPONSE_HEADER", `Invalid response header: ${detail}`);
}

/**
 * Prepares an application's response (or trailer) fields, flat [name, value, ...] latin1, for
 * HPACK:
 * - names are lowercased: RFC 9113 §8.2.1 wants lowercase on the wire, ASGI only recommends it;
 * - connection-specific fields (§8.2.2: connection, keep-alive, proxy-connection,
 *   transfer-encoding, upgrade) are dropped silently: apps and frameworks written for
 *   HTTP/1.1 send them routinely, and refusing would break responses that work there;
 * - leading and trailing SP/HTAB are stripped from values (§8.2.1 makes the client treat such
 *   a field as malformed and reset the stream).
 * Throws HttpError "BAD_RESPONSE_HEADER" (as the HTTP/1.1 serializer does) for what can never
 * be sent: a name that is not a token, a value with CR, LF, NUL, another CTL or a char above
 * 0xFF.
 */
export function prepareResponseFields(fields: readonly string[]): string[] {
  if (fields.length % 2 !== 0) throw bad("odd number of header name/value items");
  const out: string[] = [];
  for (let i = 0; i < fields.length; i += 2) {
    const raw = fields[i] as string;
    const name = raw.toLowerCase();
    if (name.length === 0) throw bad("empty header name");
    for (let k = 0; k < name.length; k++) {
      if (NAME_CHAR[name.charCodeAt(k)] !== 1) {
        throw bad(`invalid header name ${JSON.stringify(raw)}`);
      }
    }
    if (CONNECTION_SPECIFIC.has(name)) continue;
    let value = fields[i + 1] as string;
    for (let k = 0; k < value.length; k++) {
      const c = value.charCodeAt(k);
      if (c > 0xff || VALUE_CHAR[c] !== 1) {
        throw bad(`invalid character in the value of header ${JSON.stringify(raw)}`);
      }
    }
    const n = value.length;
    if (n > 0 && (isWs(value.charCodeAt(0)) || isWs(value.charCodeAt(n - 1)))) {
      value = value.replace(/^[ \t]+|[ \t]+$/g, "");
    }
    out.push(name, value);
  }
  return out;
}

function isWs(c: number): boolean {
  return c === 0x20 || c === 0x09;
}
