import { describe, expect, test } from "bun:test";
import * as zlib from "node:zlib";
import { DeflateDataError, deflateMessage, inflateMessage } from "./deflate.ts";
import { concat, hex, prng, randomBytes, toHex, utf8 } from "./test-util.ts";

const SYNC = zlib.constants.Z_SYNC_FLUSH;

describe("deflateMessage (RFC 7692 §7.2.1)", () => {
  test('compresses "Hello" to the §7.2.3.1 example bytes', () => {
    expect(toHex(deflateMessage(utf8("Hello"), 15))).toBe("f248cdc9c90700");
  });

  test("compresses an empty message to a single 00 byte (§7.2.3.6)", () => {
    expect(toHex(deflateMessage(new Uint8Array(0), 15))).toBe("00");
  });

  test("never ends with the 00 00 ff ff it strips", () => {
    const r = prng(1);
    for (const size of [1, 100, 5000, 70_000]) {
      const out = deflateMessage(randomBytes(size, r), 15);
      expect(toHex(out.subarray(out.length - 4))).not.toBe("0000ffff");
    }
  });

  test("with window bits 8 produces a stream an 8-bit inflate window reads (zlib's 9 is safe)", () => {
    const r = prng(2);
    // Repetitive data with matches at all distances, so a too-far back-reference would show.
    const data = new Uint8Array(200_000);
    for (let i = 0; i < data.length; i++) data[i] = 97 + Math.floor(r() * 4);
    const out = deflateMessage(data, 8);
    const back = zlib.inflateRawSync(concat(out, hex("00 00 ff ff")), {
      windowBits: 8,
      finishFlush: SYNC,
    });
    expect(Buffer.compare(back, data)).toBe(0);
    // Control: a 15-bit stream is not readable with an 8-bit window, so the check above bites.
    const wide = deflateMessage(data, 15);
    expect(() =>
      zlib.inflateRawSync(concat(wide, hex("00 00 ff ff")), { windowBits: 8, finishFlush: SYNC }),
    ).toThrow();
  });

  test("refuses window bits outside 8..15", () => {
    for (const bits of [7, 16, 0, 9.5]) {
      expect(() => deflateMessage(utf8("x"), bits)).toThrow(RangeError);
    }
  });
});

describe("inflateMessage (RFC 7692 §7.2.2)", () => {
  const vectors: Array<[string, string, string]> = [
    ["§7.2.3.1 one compressed block", "f2 48 cd c9 c9 07 00", "Hello"],
    ["§7.2.3.3 a stored block", "00 05 00 fa ff 48 65 6c 6c 6f 00", "Hello"],
    ["§7.2.3.4 a block with BFINAL set", "f3 48 cd c9 c9 07 00 00", "Hello"],
    ["§7.2.3.5 two DEFLATE blocks", "f2 48 05 00 00 00 ff ff ca c9 c9 07 00", "Hello"],
    ["§7.2.3.6 an empty message", "00", ""],
  ];
  for (const [name, input, expected] of vectors) {
    test(`inflates the ${name} example`, () => {
      const out = inflateMessage(hex(input), 100);
      expect(out === null ? null : new TextDecoder().decode(out)).toBe(expected);
    });
  }

  test("round-trips random and repetitive data at every window size", () => {
    const r = prng(3);
    for (let bits = 8; bits <= 15; bits++) {
      for (const size of [0, 1, 17, 1024, 65_536, 300_000]) {
        const data =
          size % 2 === 0 ? randomBytes(size, r) : utf8("abcabcabd".repeat(size)).subarray(0, size);
        const out = inflateMessage(deflateMessage(data, bits), size);
        expect(out).not.toBeNull();
        expect(Buffer.compare(out as Uint8Array, data)).toBe(0);
      }
    }
  });

  test("returns the output at exactly maxSize and null one byte below", () => {
    const packed = deflateMessage(new Uint8Array(1000).fill(1), 15);
    expect(inflateMessage(packed, 1000)?.length).toBe(1000);
    expect(inflateMessage(packed, 999)).toBeNull();
    expect(inflateMessage(deflateMessage(new Uint8Array(0), 15), 0)?.length).toBe(0);
    expect(inflateMessage(deflateMessage(utf8("x"), 15), 0)).toBeNull();
  });

  test("stops a 1 GiB decompression bomb at maxSize without allocating its size", () => {
    // 1 MiB of zeros flushed is a self-contained run of blocks; 1024 of them inflate to 1 GiB.
    const segment = deflateMessage(new Uint8Array(1 << 20), 15);
    const one = concat(segment, hex("00 00 ff ff")); // each run ends at a byte boundary
    const bomb = new Uint8Array(one.length * 1024);
    for (let i = 0; i < 1024; i++) bomb.set(one, i * one.length);
    expect(bomb.length).toBeLessThan(2 << 20);
    Bun.gc(true);
    const before = process.memoryUsage().rss;
    const started = performance.now();
    expect(inflateMessage(bomb, 1 << 20)).toBeNull();
    const ms = performance.now() - started;
    expect(process.memoryUsage().rss - before).toBeLessThan(64 << 20);
    // Inflating the whole gigabyte takes seconds; stopping at 1 MiB takes a few milliseconds.
    expect(ms).toBeLessThan(500);
    // Sanity: with a large enough limit the same input really is a gigabyte-class bomb.
    expect(inflateMessage(bomb.subarray(0, one.length * 8), 8 << 20)?.length).toBe(8 << 20);
  });

  test("throws DeflateDataError for data that is not DEFLATE", () => {
    expect(() => inflateMessage(hex("ff ff ff"), 100)).toThrow(DeflateDataError);
    expect(() => inflateMessage(hex("07"), 100)).toThrow(DeflateDataError); // reserved BTYPE 11
  });

  test("keeps inflating blocks that follow a BFINAL block, with the window carried over", () => {
    const first = "context takeover ".repeat(40);
    const finalBlock = zlib.deflateRawSync(utf8(first)); // ends the DEFLATE stream
    const rest = zlib
      .deflateRawSync(utf8(first), { finishFlush: SYNC, dictionary: utf8(first) })
      .subarray(0, -4);
    expect(rest.length).toBeLessThan(20); // back-references into the first part only
    const out = inflateMessage(concat(finalBlock, rest), 10_000);
    expect(out === null ? null : new TextDecoder().decode(out)).toBe(first + first);
  });
});
