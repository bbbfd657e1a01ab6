import { describe, expect, test } from "bun:test";
import { HttpError } from "./errors.ts";
import {
  CHUNK_TRAILER,
  chunkHeader,
  formatDate,
  LAST_CHUNK,
  type ResponseContext,
  type ResponseFraming,
  reasonPhrase,
  serializeResponseHead,
  serializeSimpleResponse,
} from "./response.ts";

const GET11: ResponseContext = { httpVersion: "1.1", method: "GET", keepAlive: true };
const GET10: ResponseContext = { httpVersion: "1.0", method: "GET", keepAlive: false };
const GET10_KA: ResponseContext = { httpVersion: "1.0", method: "GET", keepAlive: true };
const HEAD11: ResponseContext = { httpVersion: "1.1", method: "HEAD", keepAlive: true };

const DATE_LINE = /^date: [A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/;

/** The head's lines without the final empty line; the date line replaced by "date: *". */
function lines(framing: ResponseFraming): string[] {
  expect(framing.head.endsWith("\r\n\r\n")).toBe(true);
  const out = framing.head.slice(0, -4).split("\r\n");
  return out.map((l) => (DATE_LINE.test(l) ? "date: *" : l));
}

function refuses(fn: () => unknown): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(HttpError);
  expect((caught as HttpError).code).toBe("BAD_RESPONSE_HEADER");
  expect((caught as HttpError).status).toBe(500);
  expect((caught as HttpError).side).toBe("local");
}

describe("serializeResponseHead", () => {
  test("a length-framed response gets server and date first, then the app headers in order", () => {
    const f = serializeResponseHead(
      200,
      ["Content-Type", "text/plain", "content-length", "5", "X-B", "2", "x-b", "1"],
      GET11,
      "saltare",
    );
    expect(lines(f)).toEqual([
      "HTTP/1.1 200 OK",
      "server: saltare",
      "date: *",
      "Content-Type: text/plain",
      "content-length: 5",
      "X-B: 2",
      "x-b: 1",
    ]);
    expect(f).toMatchObject({ mode: "length", contentLength: 5, keepAlive: true });
  });

  test("an HTTP/1.0 client is answered with an HTTP/1.1 status line", () => {
    const f = serializeResponseHead(404, ["content-length", "0"], GET10, "s");
    expect(f.head.startsWith("HTTP/1.1 404 Not Found\r\n")).toBe(true);
  });

  test("the app's own server and date headers replace ours, whatever their case", () => {
    const f = serializeResponseHead(
      200,
      ["Server", "mine", "DATE", "Thu, 01 Jan 1970 00:00:00 GMT", "content-length", "0"],
      GET11,
      "saltare",
    );
    expect(lines(f)).toEqual([
      "HTTP/1.1 200 OK",
      "Server: mine",
      "DATE: Thu, 01 Jan 1970 00:00:00 GMT",
      "content-length: 0",
    ]);
  });

  test("an empty server name sends no server header", () => {
    const f = serializeResponseHead(200, ["content-length", "0"], GET11, "");
    expect(lines(f)).toEqual(["HTTP/1.1 200 OK", "date: *", "content-length: 0"]);
  });

  test("HTTP/1.1 without content-length is chunked and says so", () => {
    const f = serializeResponseHead(200, ["x", "1"], GET11, "s");
    expect(lines(f)).toEqual([
      "HTTP/1.1 200 OK",
      "server: s",
      "date: *",
      "x: 1",
      "transfer-encoding: chunked",
    ]);
    expect(f).toMatchObject({ mode: "chunked", contentLength: -1, keepAlive: true });
  });

  test("an app that sends transfer-encoding: chunked itself gets chunked mode without a second header", () => {
    const f = serializeResponseHead(200, ["Transfer-Encoding", "Chunked"], GET11, "s");
    expect(lines(f)).toEqual([
      "HTTP/1.1 200 OK",
      "server: s",
      "date: *",
      "Transfer-Encoding: Chunked",
    ]);
    expect(f.mode).toBe("chunked");
  });

  test("an app transfer-encoding that does not end in chunked is close-delimited", () => {
    const f = serializeResponseHead(200, ["transfer-encoding", "gzip"], GET11, "s");
    expect(f).toMatchObject({ mode: "close", keepAlive: false });
    expect(lines(f)).toContain("connection: close");
  });

  test("HTTP/1.0 without content-length is close-delimited and closes the connection", () => {
    const f = serializeResponseHead(200, [], GET10_KA, "s");
    expect(f).toMatchObject({ mode: "close", contentLength: -1, keepAlive: false });
    expect(lines(f)).toEqual(["HTTP/1.1 200 OK", "server: s", "date: *", "connection: close"]);
  });

  test("HTTP/1.0 keep-alive with content-length answers connection: keep-alive", () => {
    const f = serializeResponseHead(200, ["content-length", "3"], GET10_KA, "s");
    expect(f).toMatchObject({ mode: "length", contentLength: 3, keepAlive: true });
    expect(lines(f)).toEqual([
      "HTTP/1.1 200 OK",
      "server: s",
      "date: *",
      "content-length: 3",
      "connection: keep-alive",
    ]);
  });

  test("HTTP/1.0 without keep-alive answers connection: close", () => {
    const f = serializeResponseHead(200, ["content-length", "3"], GET10, "s");
    expect(f).toMatchObject({ mode: "length", keepAlive: false });
    expect(lines(f)).toContain("connection: close");
  });

  test("a HEAD response keeps content-length but has no body", () => {
    const f = serializeResponseHead(200, ["content-length", "1234"], HEAD11, "s");
    expect(f).toMatchObject({ mode: "none", contentLength: -1, keepAlive: true });
    expect(lines(f)).toEqual(["HTTP/1.1 200 OK", "server: s", "date: *", "content-length: 1234"]);
  });

  test("a HEAD response without content-length gets no transfer-encoding", () => {
    const f = serializeResponseHead(200, [], HEAD11, "s");
    expect(f.mode).toBe("none");
    expect(f.head).not.toContain("transfer-encoding");
  });

  for (const status of [100, 101, 103, 204, 304]) {
    test(`a ${status} response has no body and no transfer-encoding`, () => {
      const f = serializeResponseHead(status, [], GET11, "s");
      expect(f).toMatchObject({ mode: "none", contentLength: -1 });
      expect(f.head).not.toContain("transfer-encoding");
      expect(f.head.startsWith(`HTTP/1.1 ${status} ${reasonPhrase(status)}\r\n`)).toBe(true);
    });
  }

  test("a 304 with content-length keeps the header but frames no body", () => {
    const f = serializeResponseHead(304, ["content-length", "10"], GET11, "s");
    expect(f.mode).toBe("none");
    expect(lines(f)).toContain("content-length: 10");
  });

  test("connection: close from the app ends keep-alive and is not repeated", () => {
    const f = serializeResponseHead(
      200,
      ["Connection", "Close", "content-length", "0"],
      GET11,
      "s",
    );
    expect(f.keepAlive).toBe(false);
    expect(lines(f)).toEqual([
      "HTTP/1.1 200 OK",
      "server: s",
      "date: *",
      "Connection: Close",
      "content-length: 0",
    ]);
  });

  test("a request that is not keep-alive gets connection: close added", () => {
    const f = serializeResponseHead(
      200,
      ["content-length", "0"],
      { ...GET11, keepAlive: false },
      "s",
    );
    expect(f.keepAlive).toBe(false);
    expect(lines(f)).toEqual([
      "HTTP/1.1 200 OK",
      "server: s",
      "date: *",
      "content-length: 0",
      "connection: close",
    ]);
  });

  test("an app connection header is kept as the only one even when we close", () => {
    const f = serializeResponseHead(
      200,
      ["connection", "keep-alive", "content-length", "0"],
      { ...GET11, keepAlive: false },
      "s",
    );
    expect(f.keepAlive).toBe(false);
    expect(f.head.match(/connection/gi)?.length).toBe(1);
  });

  test("a repeated identical content-length is accepted", () => {
    const f = serializeResponseHead(
      200,
      ["content-length", "2", "Content-Length", "2"],
      GET11,
      "s",
    );
    expect(f).toMatchObject({ mode: "length", contentLength: 2 });
  });

  test("two different content-length values are refused", () => {
    refuses(() =>
      serializeResponseHead(200, ["content-length", "2", "content-length", "3"], GET11, "s"),
    );
  });

  for (const bad of ["abc", "-1", "+1", "1 2", "", "0x10", "1234567890123456", "1,1"]) {
    test(`an invalid content-length ${JSON.stringify(bad)} is refused`, () => {
      refuses(() => serializeResponseHead(200, ["content-length", bad], GET11, "s"));
    });
  }

  test("content-length together with transfer-encoding is refused", () => {
    refuses(() =>
      serializeResponseHead(
        200,
        ["content-length", "2", "transfer-encoding", "chunked"],
        GET11,
        "s",
      ),
    );
  });

  for (const [label, value] of [
    ["CR", "a\rb"],
    ["LF", "a\nb"],
    ["CRLF injection", "a\r\nSet-Cookie: x=1"],
    ["NUL", "a\x00b"],
    ["ESC", "a\x1bb"],
    ["DEL", "a\x7fb"],
    ["a char above 0xFF", "caf\u0100"],
  ] as const) {
    test(`a header value with ${label} is refused`, () => {
      refuses(() => serializeResponseHead(200, ["x-a", value], GET11, "s"));
    });
  }

  for (const [label, name] of [
    ["empty", ""],
    ["with a space", "x a"],
    ["with a colon", "x:a"],
    ["with CR", "x\r"],
    ["with LF", "x\ny"],
    ["with NUL", "x\x00"],
    ["with obs-text", "caf\xe9"],
  ] as const) {
    test(`a header name ${label} is refused`, () => {
      refuses(() => serializeResponseHead(200, [name, "v"], GET11, "s"));
    });
  }

  test("a server name with CRLF is refused", () => {
    refuses(() => serializeResponseHead(200, [], GET11, "s\r\nx: y"));
  });

  test("tabs and obs-text are allowed in header values", () => {
    const f = serializeResponseHead(200, ["x", "a\tb caf\xe9", "content-length", "0"], GET11, "s");
    expect(lines(f)).toContain("x: a\tb caf\xe9");
  });

  test("an odd-length header list is refused", () => {
    refuses(() => serializeResponseHead(200, ["x"], GET11, "s"));
  });

  for (const status of [99, 600, 1000, 200.5, Number.NaN, -200]) {
    test(`status ${status} is refused`, () => {
      refuses(() => serializeResponseHead(status, [], GET11, "s"));
    });
  }

  test("an unknown status gets an empty reason phrase", () => {
    const f = serializeResponseHead(599, ["content-length", "0"], GET11, "s");
    expect(f.head.startsWith("HTTP/1.1 599 \r\n")).toBe(true);
  });
});

describe("chunk framing", () => {
  test("a chunk header is the hex length and CRLF", () => {
    expect(chunkHeader(26)).toBe("1a\r\n");
    expect(chunkHeader(1)).toBe("1\r\n");
    expect(chunkHeader(65536)).toBe("10000\r\n");
    expect(CHUNK_TRAILER).toBe("\r\n");
    expect(LAST_CHUNK).toBe("0\r\n\r\n");
  });

  test("a zero or invalid chunk length is refused, as it would end the body", () => {
    expect(() => chunkHeader(0)).toThrow(RangeError);
    expect(() => chunkHeader(-1)).toThrow(RangeError);
    expect(() => chunkHeader(1.5)).toThrow(RangeError);
  });
});

describe("formatDate", () => {
  test("formats IMF-fixdate", () => {
    expect(formatDate(0)).toBe("Thu, 01 Jan 1970 00:00:00 GMT");
    expect(formatDate(Date.UTC(2024, 1, 29, 13, 5, 9))).toBe("Thu, 29 Feb 2024 13:05:09 GMT");
  });

  test("is stable within a second and changes with the next one", () => {
    const base = Date.UTC(2030, 5, 1, 0, 0, 0);
    expect(formatDate(base + 999)).toBe("Sat, 01 Jun 2030 00:00:00 GMT");
    expect(formatDate(base + 1)).toBe("Sat, 01 Jun 2030 00:00:00 GMT");
    expect(formatDate(base + 1000)).toBe("Sat, 01 Jun 2030 00:00:01 GMT");
  });
});

describe("reasonPhrase", () => {
  test("knows the standard phrases", () => {
    expect(reasonPhrase(200)).toBe("OK");
    expect(reasonPhrase(413)).toBe("Content Too Large");
    expect(reasonPhrase(431)).toBe("Request Header Fields Too Large");
    expect(reasonPhrase(505)).toBe("HTTP Version Not Supported");
    expect(reasonPhrase(299)).toBe("");
  });
});

describe("serializeSimpleResponse", () => {
  test("a closing error response is complete, with content-length and connection: close", () => {
    const wire = serializeSimpleResponse(400, "Invalid Host header", false, "saltare");
    const [head, body] = wire.split("\r\n\r\n");
    expect(head?.split("\r\n").map((l) => (DATE_LINE.test(l) ? "date: *" : l))).toEqual([
      "HTTP/1.1 400 Bad Request",
      "server: saltare",
      "date: *",
      "content-type: text/plain; charset=utf-8",
      "content-length: 19",
      "connection: close",
    ]);
    expect(body).toBe("Invalid Host header");
  });

  test("a keep-alive response has no connection header", () => {
    const wire = serializeSimpleResponse(413, "too big", true, "s");
    expect(wire).not.toContain("connection:");
    expect(wire.endsWith("\r\n\r\ntoo big")).toBe(true);
  });

  test("the body is UTF-8 encoded and its byte length is declared", () => {
    const wire = serializeSimpleResponse(500, "é€", false, "s");
    expect(wire).toContain("content-length: 5\r\n");
    expect(Buffer.from(wire, "latin1").subarray(-5).toString("utf8")).toBe("é€");
  });
});
