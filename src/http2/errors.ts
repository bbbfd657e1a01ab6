/** HTTP/2 error codes (RFC 9113 §7), sent in RST_STREAM and GOAWAY frames. */
export const ErrorCode = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  INTERNAL_ERROR: 0x2,
  FLOW_CONTROL_ERROR: 0x3,
  SETTINGS_TIMEOUT: 0x4,
  STREAM_CLOSED: 0x5,
  FRAME_SIZE_ERROR: 0x6,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  CONNECT_ERROR: 0xa,
  ENHANCE_YOUR_CALM: 0xb,
  INADEQUATE_SECURITY: 0xc,
  HTTP_1_1_REQUIRED: 0xd,
} as const;

const NAMES = Object.fromEntries(Object.entries(ErrorCode).map(([k, v]) => [v, k]));

/** The RFC 9113 §7 name of an error code ("PROTOCOL_ERROR"), or "0x..." for an unknown one. */
export function errorName(code: number): string {
  return NAMES[code] ?? `0x${code.toString(16)}`;
}

/**
 * A violation of RFC 9113 by the peer, found while reading its frames. `stream` is 0 for a
 * connection error (RFC 9113 §5.4.1: GOAWAY, then close) and the stream's id for a stream
 * error (§5.4.2: RST_STREAM, the connection lives on). `code` is the §7 error code to send.
 */
export class H2Error extends Error {
  readonly code: number;
  readonly stream: number;

  constructor(code: number, stream: number, message: string) {
    super(message);
    this.name = "H2Error";
    this.code = code;
    this.stream = stream;
  }
}

/** A connection error (RFC 9113 §5.4.1). */
export function connectionError(code: number, message: string): H2Error {
  return new H2Error(code, 0, message);
}

/** A stream error (RFC 9113 §5.4.2). */
export function streamError(code: number, stream: number, message: string): H2Error {
  return new H2Error(code, stream, message);
}
