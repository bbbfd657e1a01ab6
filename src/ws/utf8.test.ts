import { describe, expect, test } from "bun:test";
import { prng } from "./test-util.ts";
import { isValidUtf8, UTF8_ACCEPT, UTF8_REJECT, utf8Step } from "./utf8.ts";

const strict = new TextDecoder("utf-8", { fatal: true });

function whatwgValid(b: Uint8Array): boolean {
  try {
    strict.decode(b);
    return true;
  } catch {
    return false;
  }
}

function bytes(...b: number[]): Uint8Array {
  return new Uint8Array(b);
}

describe("UTF-8 validator (RFC 3629)", () => {
  const cases: Array<[string, Uint8Array, boolean]> = [
    ["empty", bytes(), true],
    ["ASCII", bytes(0x41, 0x00, 0x7f), true],
    ["2-byte U+0080 and U+07FF", bytes(0xc2, 0x80, 0xdf, 0xbf), true],
    [
      "3-byte U+0800, U+D7FF, U+E000, U+FFFF",
      bytes(0xe0, 0xa0, 0x80, 0xed, 0x9f, 0xbf, 0xee, 0x80, 0x80, 0xef, 0xbf, 0xbf),
      true,
    ],
    ["4-byte U+10000 and U+10FFFF", bytes(0xf0, 0x90, 0x80, 0x80, 0xf4, 0x8f, 0xbf, 0xbf), true],
    ["overlong C0 80", bytes(0xc0, 0x80), false],
    ["overlong C1 BF", bytes(0xc1, 0xbf), false],
    ["overlong E0 9F BF", bytes(0xe0, 0x9f, 0xbf), false],
    ["overlong F0 8F BF BF", bytes(0xf0, 0x8f, 0xbf, 0xbf), false],
    ["surrogate ED A0 80", bytes(0xed, 0xa0, 0x80), false],
    ["surrogate ED BF BF", bytes(0xed, 0xbf, 0xbf), false],
    ["U+110000 (F4 90 80 80)", bytes(0xf4, 0x90, 0x80, 0x80), false],
    ["F5 lead", bytes(0xf5, 0x80, 0x80, 0x80), false],
    ["FF", bytes(0xff), false],
    ["lone continuation", bytes(0x80), false],
    ["truncated 2-byte", bytes(0xc3), false],
    ["truncated 4-byte", bytes(0xf0, 0x9f, 0x98), false],
    ["5-byte form", bytes(0xf8, 0x88, 0x80, 0x80, 0x80), false],
  ];
  for (const [name, b, valid] of cases) {
    test(`${name} is ${valid ? "valid" : "invalid"}`, () => {
      expect(isValidUtf8(b)).toBe(valid);
      expect(whatwgValid(b)).toBe(valid); // the reference agrees with the table
    });
  }

  test("rejects on the first impossible byte, not at the end", () => {
    expect(utf8Step(UTF8_ACCEPT, bytes(0xf4, 0x90), 0, 2)).toBe(UTF8_REJECT);
    expect(utf8Step(UTF8_ACCEPT, bytes(0xed, 0xa0), 0, 2)).toBe(UTF8_REJECT);
    expect(utf8Step(UTF8_ACCEPT, bytes(0xe0, 0x80), 0, 2)).toBe(UTF8_REJECT);
    // Incomplete but still possible: neither accepted nor rejected.
    const s = utf8Step(UTF8_ACCEPT, bytes(0xf0, 0x9f), 0, 2);
    expect(s).not.toBe(UTF8_ACCEPT);
    expect(s).not.toBe(UTF8_REJECT);
    expect(utf8Step(s, bytes(0x98, 0x80), 0, 2)).toBe(UTF8_ACCEPT);
  });

  test("agrees with a strict TextDecoder on random byte strings, whole and split", () => {
    const r = prng(0x7f8);
    // Bias towards bytes that form sequences, so both outcomes are common.
    const pool = [
      0x41, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc2, 0xdf, 0xe0, 0xe1, 0xed, 0xef, 0xf0,
      0xf4, 0xf5, 0xff,
    ];
    let valid = 0;
    for (let round = 0; round < 20_000; round++) {
      const n = Math.floor(r() * 8);
      const b = new Uint8Array(n);
      for (let i = 0; i < n; i++) b[i] = pool[Math.floor(r() * pool.length)] as number;
      const expected = whatwgValid(b);
      if (expected) valid++;
      expect(isValidUtf8(b)).toBe(expected);
      const cut = Math.floor(r() * (n + 1));
      const s = utf8Step(utf8Step(UTF8_ACCEPT, b, 0, cut), b, cut, n);
      expect(s === UTF8_ACCEPT).toBe(expected);
    }
    expect(valid).toBeGreaterThan(1000);
  });

  test("accepts every Unicode scalar value encoded by TextEncoder", () => {
    const enc = new TextEncoder();
    for (let cp = 0; cp <= 0x10ffff; cp += cp < 0x800 ? 1 : 61) {
      if (cp >= 0xd800 && cp <= 0xdfff) continue;
      expect(isValidUtf8(enc.encode(String.fromCodePoint(cp)))).toBe(true);
    }
  });
});
