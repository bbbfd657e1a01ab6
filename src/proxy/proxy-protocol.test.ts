import { describe, expect, test } from "bun:test";
import { parseProxyHeader } from "./proxy-protocol.ts";

const enc = (s: string) => new Uint8Array(Buffer.from(s, "latin1"));

function v2(command: number, family: number, addresses: number[], tlv: number[] = []): Uint8Array {
  const body = [...addresses, ...tlv];
  return new Uint8Array([
    0x0d,
    0x0a,
    0x0d,
    0x0a,
    0x00,
    0x0d,
    0x0a,
    0x51,
    0x55,
    0x49,
    0x54,
    0x0a,
    0x20 | command,
    family,
    body.length >> 8,
    body.length & 255,
    ...body,
  ]);
}

/** Feed `bytes` growing one byte at a time: "more" until the last byte, then the result. */
function byteByByte(bytes: Uint8Array) {
  for (let i = 1; i < bytes.byteLength; i++) {
    const partial = parseProxyHeader(bytes.subarray(0, i));
    if (partial.state !== "more") return partial;
  }
  return parseProxyHeader(bytes);
}

describe("PROXY protocol v1", () => {
  test("a TCP4 line gives the source address and how many bytes it took", () => {
    const bytes = enc("PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\nGET / HTTP/1.1\r\n");
    expect(parseProxyHeader(bytes)).toEqual({
      state: "done",
      consumed: 45,
      source: { host: "192.0.2.1", port: 56324 },
    });
  });

  test("a TCP6 line parses, and so does every prefix of it but the whole as 'more'", () => {
    const bytes = enc("PROXY TCP6 2001:db8::1 2001:db8::2 1234 80\r\n");
    expect(byteByByte(bytes)).toEqual({
      state: "done",
      consumed: bytes.byteLength,
      source: { host: "2001:db8::1", port: 1234 },
    });
  });

  test("UNKNOWN keeps the connection's own address", () => {
    expect(parseProxyHeader(enc("PROXY UNKNOWN\r\n"))).toEqual({
      state: "done",
      consumed: 15,
      source: null,
    });
  });

  test.each([
    ["family mismatch", "PROXY TCP4 2001:db8::1 192.0.2.1 1 2\r\n"],
    ["port out of range", "PROXY TCP4 192.0.2.1 192.0.2.2 70000 2\r\n"],
    ["leading zero port", "PROXY TCP4 192.0.2.1 192.0.2.2 080 2\r\n"],
    ["missing field", "PROXY TCP4 192.0.2.1 192.0.2.2 80\r\n"],
    ["bad protocol", "PROXY UDP4 192.0.2.1 192.0.2.2 1 2\r\n"],
    ["not a header", "GET / HTTP/1.1\r\n"],
  ])("rejects %s", (_name, text) => {
    expect(parseProxyHeader(enc(text)).state).toBe("error");
  });

  test("a line without CRLF within 107 bytes is an error, shorter is 'more'", () => {
    expect(parseProxyHeader(enc(`PROXY TCP4 ${"1".repeat(50)}`)).state).toBe("more");
    expect(parseProxyHeader(enc(`PROXY TCP4 ${"1".repeat(120)}`)).state).toBe("error");
  });
});

describe("PROXY protocol v2", () => {
  test("PROXY over TCP/IPv4 gives the source address; TLVs are skipped", () => {
    const bytes = v2(
      1,
      0x11,
      [192, 0, 2, 1, 198, 51, 100, 2, 0xdc, 0x04, 0x01, 0xbb],
      [1, 0, 1, 0x68],
    );
    const withRest = new Uint8Array([...bytes, 0x47, 0x45, 0x54]);
    expect(byteByByte(withRest)).toEqual({
      state: "done",
      consumed: bytes.byteLength,
      source: { host: "192.0.2.1", port: 56324 },
    });
  });

  test("PROXY over TCP/IPv6 gives a compact IPv6 address", () => {
    const src = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    const dst = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
    const result = parseProxyHeader(v2(1, 0x21, [...src, ...dst, 0x04, 0xd2, 0, 80]));
    expect(result).toEqual({
      state: "done",
      consumed: 52,
      source: { host: "2001:db8::1", port: 1234 },
    });
  });

  test("an IPv4-mapped IPv6 source is reported as IPv4", () => {
    const src = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 2, 3];
    const result = parseProxyHeader(v2(1, 0x21, [...src, ...src, 0, 1, 0, 2]));
    expect(result.state === "done" && result.source).toEqual({ host: "10.1.2.3", port: 1 });
  });

  test("LOCAL (a health check from the proxy) keeps the connection's own address", () => {
    expect(parseProxyHeader(v2(0, 0x00, []))).toEqual({
      state: "done",
      consumed: 16,
      source: null,
    });
  });

  test("a Unix-socket source has no address to report", () => {
    const result = parseProxyHeader(v2(1, 0x31, new Array(216).fill(0)));
    expect(result).toEqual({ state: "done", consumed: 232, source: null });
  });

  test.each([
    [
      "version 1 in the version nibble",
      (() => {
        const b = v2(1, 0x11, new Array(12).fill(0));
        b[12] = 0x11;
        return b;
      })(),
    ],
    [
      "an unknown command",
      (() => {
        const b = v2(1, 0x11, new Array(12).fill(0));
        b[12] = 0x2f;
        return b;
      })(),
    ],
    ["an IPv4 block that is too short", v2(1, 0x11, [1, 2, 3, 4])],
  ])("rejects %s", (_name, bytes) => {
    expect(parseProxyHeader(bytes).state).toBe("error");
  });
});
