import { describe, expect, test } from "bun:test";
import { parseForwarded, parseNode, resolveForwarded } from "./forwarded.ts";
import { TrustList } from "./trust.ts";

const trust = new TrustList("127.0.0.1,10.0.0.0/8");
const resolve = (...headers: string[]) => resolveForwarded(headers, trust);

describe("X-Forwarded-For", () => {
  test("the rightmost hop that is not a trusted proxy is the client", () => {
    // A client forged the first entry; the trusted proxies appended the rest.
    expect(resolve("X-Forwarded-For", "6.6.6.6, 203.0.113.7, 10.0.0.2")).toEqual({
      host: "203.0.113.7",
      port: "0",
      scheme: null,
    });
  });

  test("when every hop is trusted, the leftmost is the client", () => {
    expect(resolve("x-forwarded-for", "10.1.1.1, 10.0.0.2")?.host).toBe("10.1.1.1");
  });

  test("repeated headers are one list, in order", () => {
    expect(resolve("x-forwarded-for", "6.6.6.6", "x-forwarded-for", "198.51.100.1")?.host).toBe(
      "198.51.100.1",
    );
  });

  test("a hop with a port keeps it; a garbage hop becomes an unknown client", () => {
    expect(resolve("x-forwarded-for", "198.51.100.1:4711")).toMatchObject({
      host: "198.51.100.1",
      port: "4711",
    });
    expect(resolve("x-forwarded-for", "<script>")).toMatchObject({ host: "" });
  });
});

describe("X-Forwarded-Proto", () => {
  test("sets the scheme; the value nearest to us wins", () => {
    expect(resolve("x-forwarded-proto", "http, https")).toEqual({
      host: null,
      port: null,
      scheme: "https",
    });
    expect(resolve("X-Forwarded-Proto", "WSS")?.scheme).toBe("https");
  });

  test("an unknown scheme is ignored", () => {
    expect(resolve("x-forwarded-proto", "gopher")).toBeNull();
  });
});

describe("Forwarded (RFC 7239)", () => {
  test("for, proto and quoted IPv6 with a port", () => {
    expect(resolve("forwarded", 'for="[2001:db8:cafe::17]:4711";proto=https')).toEqual({
      host: "2001:db8:cafe::17",
      port: "4711",
      scheme: "https",
    });
  });

  test("the rightmost untrusted element is the client, with its own proto", () => {
    const value = "for=6.6.6.6;proto=http, for=198.51.100.9;proto=https, for=10.0.0.3;proto=http";
    expect(resolve("Forwarded", value)).toEqual({
      host: "198.51.100.9",
      port: "0",
      scheme: "https",
    });
  });

  test("wins over X-Forwarded-For", () => {
    expect(resolve("x-forwarded-for", "192.0.2.1", "forwarded", "for=192.0.2.2")?.host).toBe(
      "192.0.2.2",
    );
  });

  test("unknown and obfuscated identifiers give an unknown client", () => {
    expect(resolve("forwarded", "for=unknown")?.host).toBe("");
    expect(resolve("forwarded", "for=_hidden;proto=https")).toEqual({
      host: "",
      port: "0",
      scheme: "https",
    });
  });

  test.each([['for="unterminated'], ["for=1.2.3.4;for=5.6.7.8"], ["for"], ["for=a b"], [""]])(
    "malformed %p is ignored as a whole",
    (value) => {
      expect(parseForwarded(value)).toBeNull();
      expect(resolve("forwarded", value)).toBeNull();
    },
  );

  test("quoted-pairs and empty elements parse", () => {
    expect(parseForwarded('for="1.2.3.4";by=x, ;for=\\"x')).toBeNull();
    expect(parseForwarded('for="1\\.2.3.4"')).toEqual([{ node: "1.2.3.4", proto: null }]);
  });
});

describe("parseNode", () => {
  test.each([
    ["192.0.2.1", { host: "192.0.2.1", port: "0" }],
    ["192.0.2.1:80", { host: "192.0.2.1", port: "80" }],
    ["[::1]:8080", { host: "::1", port: "8080" }],
    ["2001:db8::1", { host: "2001:db8::1", port: "0" }],
    ["::ffff:192.0.2.1", { host: "192.0.2.1", port: "0" }],
    ["[::1", null],
    ["1.2.3.4:99999", null],
    ["example.com", null],
  ])("%p", (node, expected) => {
    expect(parseNode(node)).toEqual(expected);
  });
});

test("no proxy headers: nothing changes", () => {
  expect(resolve("host", "example.com", "user-agent", "x")).toBeNull();
});
