import { describe, expect, test } from "bun:test";
import { ErrorCode } from "./errors.ts";
import {
  encodeGoaway,
  encodeHeaders,
  encodePing,
  encodeRstStream,
  encodeSettings,
  encodeWindowUpdate,
  Flag,
  FrameType,
  forEachSetting,
  H2Error,
  paddedEnd,
  parseGoaway,
  parseHeadersPayload,
  parsePriority,
  parseRstStream,
  parseWindowUpdate,
  readFrameHeader,
  SETTINGS_ACK,
  SettingId,
  writeDataHeader,
  writeFrameHeader,
} from "./frames.ts";
import { hex, toHex } from "./test-util.ts";

function thrown(f: () => unknown): H2Error {
  try {
    f();
  } catch (e) {
    if (e instanceof H2Error) return e;
    throw e;
  }
  throw new Error("did not throw");
}

describe("frame header (§4.1)", () => {
  const vectors: Array<[string, { length: number; type: number; flags: number; stream: number }]> =
    [
      ["000000 04 00 00000000", { length: 0, type: 4, flags: 0, stream: 0 }],
      ["000005 01 25 00000003", { length: 5, type: 1, flags: 0x25, stream: 3 }],
      ["ffffff 00 01 7fffffff", { length: 0xffffff, type: 0, flags: 1, stream: 0x7fffffff }],
      ["004000 09 04 00010001", { length: 16384, type: 9, flags: 4, stream: 65537 }],
    ];
  for (const [bytes, header] of vectors) {
    test(`${bytes} reads and writes as ${JSON.stringify(header)}`, () => {
      expect(readFrameHeader(hex(bytes), 0)).toEqual(header);
      const out = new Uint8Array(9);
      writeFrameHeader(out, 0, header.length, header.type, header.flags, header.stream);
      expect(toHex(out)).toBe(toHex(hex(bytes)));
    });
  }

  test("the reserved bit of the stream id is ignored on read and cleared on write", () => {
    expect(readFrameHeader(hex("000000 00 00 80000005"), 0).stream).toBe(5);
    const out = new Uint8Array(9);
    writeFrameHeader(out, 0, 0, 0, 0, 0xffffffff);
    expect(toHex(out)).toBe("0000000000" + "7fffffff");
  });

  test("a header is read at any offset", () => {
    expect(readFrameHeader(hex("aa bb 000003 08 00 00000001"), 2)).toEqual({
      length: 3,
      type: 8,
      flags: 0,
      stream: 1,
    });
  });
});

describe("serializers", () => {
  test("SETTINGS (§6.5.1) and its ACK", () => {
    expect(
      toHex(
        encodeSettings([
          [SettingId.MAX_CONCURRENT_STREAMS, 100],
          [SettingId.INITIAL_WINDOW_SIZE, 0x7fffffff],
        ]),
      ),
    ).toBe("00000c040000000000" + "000300000064" + "00047fffffff");
    expect(toHex(SETTINGS_ACK)).toBe("000000040100000000");
  });

  test("PING (§6.7) with and without ACK", () => {
    const d = hex("0102030405060708");
    expect(toHex(encodePing(d, false))).toBe("000008060000000000" + "0102030405060708");
    expect(toHex(encodePing(d, true))).toBe("000008060100000000" + "0102030405060708");
    expect(() => encodePing(new Uint8Array(7), false)).toThrow(RangeError);
  });

  test("GOAWAY (§6.8) with debug text cut at 256 bytes", () => {
    expect(toHex(encodeGoaway(5, ErrorCode.PROTOCOL_ERROR, "hi"))).toBe(
      "00000a070000000000" + "00000005" + "00000001" + "6869",
    );
    expect(encodeGoaway(0, 0, "x".repeat(1000)).length).toBe(9 + 8 + 256);
  });

  test("RST_STREAM (§6.4) and WINDOW_UPDATE (§6.9)", () => {
    expect(toHex(encodeRstStream(3, ErrorCode.CANCEL))).toBe("000004030000000003" + "00000008");
    expect(toHex(encodeWindowUpdate(0, 65536))).toBe("000004080000000000" + "00010000");
    expect(() => encodeWindowUpdate(1, 0)).toThrow(RangeError);
    expect(() => encodeWindowUpdate(1, 2 ** 31)).toThrow(RangeError);
  });

  test("a DATA frame header (§6.1)", () => {
    const out = new Uint8Array(9);
    writeDataHeader(out, 0, 7, 300, true);
    expect(toHex(out)).toBe("00012c000100000007");
  });

  test("HEADERS fitting one frame carries END_HEADERS and END_STREAM", () => {
    expect(toHex(encodeHeaders(1, hex("8889"), true, 16384))).toBe("000002010500000001" + "8889");
    expect(toHex(encodeHeaders(1, new Uint8Array(0), false, 16384))).toBe("000000010400000001");
  });

  test("a larger block is split into HEADERS and CONTINUATION frames (§6.10)", () => {
    const block = Uint8Array.from({ length: 40 }, (_, i) => i);
    const out = encodeHeaders(3, block, true, 16);
    const frames: string[] = [];
    let at = 0;
    while (at < out.length) {
      const h = readFrameHeader(out, at);
      frames.push(`${h.type}/${h.flags}/${h.stream}/${h.length}`);
      at += 9 + h.length;
    }
    // END_STREAM stays on HEADERS (§6.2); END_HEADERS on the last frame only.
    expect(frames).toEqual([
      `${FrameType.HEADERS}/${Flag.END_STREAM}/3/16`,
      `${FrameType.CONTINUATION}/0/3/16`,
      `${FrameType.CONTINUATION}/${Flag.END_HEADERS}/3/8`,
    ]);
    const joined = [...out.subarray(9, 25), ...out.subarray(34, 50), ...out.subarray(59)];
    expect(joined).toEqual([...block]);
  });
});

describe("payload parsers", () => {
  test("paddedEnd strips padding and refuses too much of it (§6.1)", () => {
    expect(paddedEnd(0, hex("616263"))).toBe(3);
    expect(paddedEnd(Flag.PADDED, hex("02 61 00 00"))).toBe(2);
    expect(paddedEnd(Flag.PADDED, hex("00"))).toBe(1);
    expect(paddedEnd(Flag.PADDED, hex("03 61 00 00"))).toBe(1); // all padding, no data
    const tooMuch = thrown(() => paddedEnd(Flag.PADDED, hex("04 61 00 00")));
    expect([tooMuch.code, tooMuch.stream]).toEqual([ErrorCode.PROTOCOL_ERROR, 0]);
    const none = thrown(() => paddedEnd(Flag.PADDED, new Uint8Array(0)));
    expect(none.code).toBe(ErrorCode.FRAME_SIZE_ERROR);
  });

  test("HEADERS with padding and priority (§6.2)", () => {
    const p = hex("02 80000003 ff 82 84 0000");
    expect(parseHeadersPayload(Flag.PADDED | Flag.PRIORITY, p)).toEqual({
      start: 6,
      end: 8,
      priority: { exclusive: true, dependency: 3, weight: 256 },
    });
    expect(parseHeadersPayload(0, hex("82"))).toEqual({ start: 0, end: 1, priority: null });
    // Padding that eats into the priority block is a PROTOCOL_ERROR; too short a payload a
    // FRAME_SIZE_ERROR.
    expect(
      thrown(() => parseHeadersPayload(Flag.PADDED | Flag.PRIORITY, hex("05 00000000 0f"))).code,
    ).toBe(ErrorCode.PROTOCOL_ERROR);
    expect(thrown(() => parseHeadersPayload(Flag.PRIORITY, hex("00000000"))).code).toBe(
      ErrorCode.FRAME_SIZE_ERROR,
    );
  });

  test("PRIORITY (§6.3): 5 bytes, not depending on itself, both stream errors", () => {
    expect(parsePriority(5, hex("00000003 0f"))).toEqual({
      exclusive: false,
      dependency: 3,
      weight: 16,
    });
    const size = thrown(() => parsePriority(5, hex("00000003")));
    expect([size.code, size.stream]).toEqual([ErrorCode.FRAME_SIZE_ERROR, 5]);
    const self = thrown(() => parsePriority(5, hex("00000005 0f")));
    expect([self.code, self.stream]).toEqual([ErrorCode.PROTOCOL_ERROR, 5]);
  });

  test("RST_STREAM, WINDOW_UPDATE and GOAWAY payloads (§6.4, §6.9, §6.8)", () => {
    expect(parseRstStream(hex("00000008"))).toBe(8);
    expect(parseRstStream(hex("ffffffff"))).toBe(0xffffffff);
    expect(thrown(() => parseRstStream(hex("000008"))).code).toBe(ErrorCode.FRAME_SIZE_ERROR);
    expect(parseWindowUpdate(hex("80000010"))).toBe(16); // reserved bit ignored
    expect(thrown(() => parseWindowUpdate(hex("0000000010"))).code).toBe(
      ErrorCode.FRAME_SIZE_ERROR,
    );
    expect(parseGoaway(hex("80000007 0000000b 6869"))).toEqual({
      lastStreamId: 7,
      code: 11,
      debug: "hi",
    });
    expect(parseGoaway(new Uint8Array(8 + 1000)).debug.length).toBe(256);
    expect(thrown(() => parseGoaway(hex("00000000 000000"))).code).toBe(ErrorCode.FRAME_SIZE_ERROR);
  });

  test("SETTINGS parameters are read in order; a partial one is a FRAME_SIZE_ERROR (§6.5)", () => {
    const seen: number[][] = [];
    forEachSetting(hex("0001 00001000 0004 7fffffff 00ff 00000001"), (id, v) => seen.push([id, v]));
    expect(seen).toEqual([
      [1, 4096],
      [4, 0x7fffffff],
      [255, 1],
    ]);
    expect(thrown(() => forEachSetting(hex("0001 000010"), () => {})).code).toBe(
      ErrorCode.FRAME_SIZE_ERROR,
    );
  });
});
