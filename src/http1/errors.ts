/**
 * Every failure the HTTP/1.1 codec can report: stable code, HTTP status to answer with, which
 * side broke the rules ("peer" = the client sent something invalid, "local" = our own
 * application produced something we refuse to put on the wire), and the default message.
 * The docs render this table; codes never change meaning once released.
 */
export const HTTP_ERRORS = {
  BAD_REQUEST_LINE: { status: 400, side: "peer", message: "Malformed request line" },
  BAD_METHOD: { status: 400, side: "peer", message: "Request method is not a valid token" },
  BAD_TARGET: { status: 400, side: "peer", message: "Invalid request target" },
  URI_TOO_LONG: { status: 414, side: "peer", message: "Request line too long" },
  UNSUPPORTED_VERSION: { status: 505, side: "peer", message: "HTTP version not supported" },
  METHOD_NOT_IMPLEMENTED: { status: 501, side: "peer", message: "Method not implemented" },
  BAD_LINE_ENDING: { status: 400, side: "peer", message: "Line not terminated by CRLF" },
  BAD_HEADER: { status: 400, side: "peer", message: "Malformed header field" },
  HEADERS_TOO_LARGE: {
    status: 431,
    side: "peer",
    message: "Request header fields too large",
  },
  TOO_MANY_HEADERS: { status: 431, side: "peer", message: "Too many request header fields" },
  BAD_HOST: { status: 400, side: "peer", message: "Missing, repeated or invalid Host header" },
  BAD_CONTENT_LENGTH: { status: 400, side: "peer", message: "Invalid Content-Length" },
  CONFLICTING_FRAMING: {
    status: 400,
    side: "peer",
    message: "Both Content-Length and Transfer-Encoding present",
  },
  BAD_TRANSFER_ENCODING: {
    status: 400,
    side: "peer",
    message: "Transfer-Encoding is not allowed in HTTP/1.0",
  },
  CHUNKED_NOT_FINAL: {
    status: 400,
    side: "peer",
    message: "Transfer-Encoding does not end with a single chunked coding",
  },
  UNSUPPORTED_TRANSFER_ENCODING: {
    status: 501,
    side: "peer",
    message: "Unsupported Transfer-Encoding",
  },
  BAD_CHUNK: { status: 400, side: "peer", message: "Malformed chunked encoding" },
  INCOMPLETE_MESSAGE: {
    status: 400,
    side: "peer",
    message: "Connection closed before the request was complete",
  },
  BAD_RESPONSE_HEADER: {
    status: 500,
    side: "local",
    message: "Application sent an invalid response status or header",
  },
} as const satisfies Record<string, { status: number; side: "peer" | "local"; message: string }>;

/** A stable identifier for one failure kind of the HTTP/1.1 codec. */
export type HttpErrorCode = keyof typeof HTTP_ERRORS;

/**
 * A protocol failure: `code` names the failure kind, `status` is the HTTP status to answer
 * with (when a response can still be sent), `side` says who broke the rules.
 */
export class HttpError extends Error {
  readonly code: HttpErrorCode;
  readonly status: number;
  readonly side: "peer" | "local";

  constructor(code: HttpErrorCode, message?: string) {
    const entry = HTTP_ERRORS[code];
    super(message ?? entry.message);
    this.name = "HttpError";
    this.code = code;
    this.status = entry.status;
    this.side = entry.side;
  }
}
