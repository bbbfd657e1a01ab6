// Character classes and field lists (RFC 9113 §8.2) shared by request validation and response
// encoding.

/** Lowercase tchars. */
// RFC 9113 §8.2.1 allows any name without 0x00-0x20, A-Z, 0x7f-0xff and ":"; like the HTTP/1.1 parser we
// go further and accept only lowercase tchars (RFC 9110 §5.6.2), so both front doors hand the
// application the same alphabet.
export const NAME_CHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz") {
  NAME_CHAR[c.charCodeAt(0)] = 1;
}

/** Bytes allowed in a field value. */
// RFC 9113 §8.2.1 forbids NUL, CR and LF in values; RFC 9110 §5.5 (field-value = VCHAR, obs-text, SP,
// HTAB) refuses the other CTLs and DEL too, as the HTTP/1.1 parser does.
export const VALUE_CHAR = new Uint8Array(256);
VALUE_CHAR[0x09] = 1;
for (let c = 0x20; c <= 0xff; c++) VALUE_CHAR[c] = c === 0x7f ? 0 : 1;

/** RFC 9113 §8.2.2: fields that only mean something on one HTTP/1.1 connection. */
export const CONNECTION_SPECIFIC = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
]);
