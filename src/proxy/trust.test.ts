import { describe, expect, test } from "bun:test";
import { TrustList } from "./trust.ts";

describe("TrustList", () => {
  test("matches single addresses and CIDR networks of both families", () => {
    const trust = new TrustList("127.0.0.1, 10.0.0.0/8,2001:db8::/32 , ::1");
    expect(trust.trusts("127.0.0.1")).toBe(true);
    expect(trust.trusts("127.0.0.2")).toBe(false);
    expect(trust.trusts("10.200.3.4")).toBe(true);
    expect(trust.trusts("11.0.0.1")).toBe(false);
    expect(trust.trusts("2001:db8:1::5")).toBe(true);
    expect(trust.trusts("2001:db9::5")).toBe(false);
    expect(trust.trusts("::1")).toBe(true);
  });

  test("an IPv4-mapped IPv6 peer is matched as its IPv4 address", () => {
    expect(new TrustList("127.0.0.1").trusts("::ffff:127.0.0.1")).toBe(true);
  });

  test("* trusts everyone; garbage and empty addresses are never trusted otherwise", () => {
    expect(new TrustList("*").trusts("203.0.113.9")).toBe(true);
    const trust = new TrustList("127.0.0.1");
    expect(trust.trusts("")).toBe(false);
    expect(trust.trusts("unknown")).toBe(false);
  });

  test("a bad entry is refused at construction", () => {
    expect(() => new TrustList("localhost")).toThrow("not an IP address");
  });
});
