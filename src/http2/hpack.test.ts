import { describe, expect, test } from "bun:test";
import { ErrorCode } from "./errors.ts";
import {
  HeaderListTooLargeError,
  HpackDecoder,
  HpackEncoder,
  HpackError,
  STATIC_TABLE,
} from "./hpack.ts";
import { hex, prng, toHex } from "./test-util.ts";

type Entry = [string, string];

interface Step {
  block: string; // hex
  fields: Entry[];
  table: Entry[]; // newest first
  size: number;
}

/** Decodes each step's block in turn with one decoder and checks its fields and table. */
function runSteps(steps: Step[], tableSize = 4096): void {
  const d = new HpackDecoder(tableSize);
  for (const step of steps) {
    const flat = d.decode(hex(step.block));
    const fields: Entry[] = [];
    for (let i = 0; i < flat.length; i += 2) {
      fields.push([flat[i] as string, flat[i + 1] as string]);
    }
    expect(fields).toEqual(step.fields);
    const table: Entry[] = [];
    for (let i = 1; i <= d.tableLength; i++) table.push(d.entry(i) as Entry);
    expect(table).toEqual(step.table);
    expect(d.tableSize).toBe(step.size);
  }
}

const REQ1: Entry[] = [
  [":method", "GET"],
  [":scheme", "http"],
  [":path", "/"],
  [":authority", "www.example.com"],
];
const REQ2: Entry[] = [...REQ1, ["cache-control", "no-cache"]];
const REQ3: Entry[] = [
  [":method", "GET"],
  [":scheme", "https"],
  [":path", "/index.html"],
  [":authority", "www.example.com"],
  ["custom-key", "custom-value"],
];
const T1: Entry[] = [[":authority", "www.example.com"]];
const T2: Entry[] = [["cache-control", "no-cache"], ...T1];
const T3: Entry[] = [["custom-key", "custom-value"], ...T2];

const DATE1 = "Mon, 21 Oct 2013 20:13:21 GMT";
const DATE2 = "Mon, 21 Oct 2013 20:13:22 GMT";
const LOCATION = "https://www.example.com";
const COOKIE = "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1";
const RES1: Entry[] = [
  [":status", "302"],
  ["cache-control", "private"],
  ["date", DATE1],
  ["location", LOCATION],
];
const RES2: Entry[] = [[":status", "307"], ...RES1.slice(1)];
const RES3: Entry[] = [
  [":status", "200"],
  ["cache-control", "private"],
  ["date", DATE2],
  ["location", LOCATION],
  ["content-encoding", "gzip"],
  ["set-cookie", COOKIE],
];
const RT1: Entry[] = [
  ["location", LOCATION],
  ["date", DATE1],
  ["cache-control", "private"],
  [":status", "302"],
];
const RT2: Entry[] = [[":status", "307"], ...RT1.slice(0, 3)];
const RT3: Entry[] = [
  ["set-cookie", COOKIE],
  ["content-encoding", "gzip"],
  ["date", DATE2],
];

describe("HpackDecoder: RFC 7541 Appendix C", () => {
  test("C.1.2: 1337 with a 5-bit prefix (read as a table size update)", () => {
    const d = new HpackDecoder();
    expect(d.decode(hex("3f 9a 0a 82"))).toEqual([":method", "GET"]);
    expect(d.maxTableSize).toBe(1337);
  });

  test("C.2.1: literal with indexing adds to the table", () => {
    runSteps([
      {
        block: "400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572",
        fields: [["custom-key", "custom-header"]],
        table: [["custom-key", "custom-header"]],
        size: 55,
      },
    ]);
  });

  test("C.2.2: literal without indexing leaves the table empty", () => {
    runSteps([
      {
        block: "040c 2f73 616d 706c 652f 7061 7468",
        fields: [[":path", "/sample/path"]],
        table: [],
        size: 0,
      },
    ]);
  });

  test("C.2.3: literal never indexed leaves the table empty", () => {
    runSteps([
      {
        block: "1008 7061 7373 776f 7264 0673 6563 7265 74",
        fields: [["password", "secret"]],
        table: [],
        size: 0,
      },
    ]);
  });

  test("C.2.4: indexed field from the static table", () => {
    runSteps([{ block: "82", fields: [[":method", "GET"]], table: [], size: 0 }]);
  });

  test("C.3: three requests without Huffman share one dynamic table", () => {
    runSteps([
      {
        block: "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
        fields: REQ1,
        table: T1,
        size: 57,
      },
      { block: "8286 84be 5808 6e6f 2d63 6163 6865", fields: REQ2, table: T2, size: 110 },
      {
        block: "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
        fields: REQ3,
        table: T3,
        size: 164,
      },
    ]);
  });

  test("C.4: the same requests with Huffman coding", () => {
    runSteps([
      { block: "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff", fields: REQ1, table: T1, size: 57 },
      { block: "8286 84be 5886 a8eb 1064 9cbf", fields: REQ2, table: T2, size: 110 },
      {
        block: "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
        fields: REQ3,
        table: T3,
        size: 164,
      },
    ]);
  });

  test("C.5: three responses without Huffman, table of 256 bytes, with evictions", () => {
    runSteps(
      [
        {
          block:
            "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
          fields: RES1,
          table: RT1,
          size: 222,
        },
        { block: "4803 3330 37c1 c0bf", fields: RES2, table: RT2, size: 222 },
        {
          block:
            "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31",
          fields: RES3,
          table: RT3,
          size: 215,
        },
      ],
      256,
    );
  });

  test("C.6: the same responses with Huffman coding", () => {
    runSteps(
      [
        {
          block:
            "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
          fields: RES1,
          table: RT1,
          size: 222,
        },
        { block: "4883 640e ffc1 c0bf", fields: RES2, table: RT2, size: 222 },
        {
          block:
            "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07",
          fields: RES3,
          table: RT3,
          size: 215,
        },
      ],
      256,
    );
  });
});

describe("HpackDecoder: dynamic table", () => {
  test("an entry larger than the table empties it and is not added (§4.4)", () => {
    const d = new HpackDecoder(100);
    d.decode(hex("4003 6161 6103 6262 62")); // aaa: bbb (38 bytes)
    expect(d.tableLength).toBe(1);
    const big = "x".repeat(80);
    const blockBytes = [0x40, 0x01, 0x6e, 0x50, ...Buffer.from(big)];
    expect(d.decode(Uint8Array.from(blockBytes))).toEqual(["n", big]);
    expect(d.tableLength).toBe(0);
    expect(d.tableSize).toBe(0);
  });

  test("a new entry may reuse the name of the entry its insertion evicts (§4.4)", () => {
    const d = new HpackDecoder(70);
    d.decode(hex("4003 6161 6103 6262 62")); // aaa: bbb (38)
    // Literal with indexing, name = dynamic index 62 (aaa), value "ccc": needs eviction of aaa.
    expect(d.decode(hex("7e03 6363 63"))).toEqual(["aaa", "ccc"]);
    expect(d.entry(1)).toEqual(["aaa", "ccc"]);
    expect(d.tableLength).toBe(1);
  });

  test("a size update evicts down to the new size, and 0 empties the table (§6.3)", () => {
    const d = new HpackDecoder();
    d.decode(hex("4003 6161 6103 6262 62 4003 6363 6303 6464 64"));
    expect(d.tableLength).toBe(2);
    d.decode(hex("3f 08")); // 31 + 8 = 39: room for one entry
    expect(d.tableLength).toBe(1);
    expect(d.entry(1)).toEqual(["ccc", "ddd"]);
    d.decode(hex("20"));
    expect(d.tableLength).toBe(0);
  });

  test("many insertions keep the table within its size and the newest entries addressable", () => {
    const d = new HpackDecoder(4096);
    for (let i = 0; i < 2000; i++) {
      const name = `n${i}`;
      const value = "v".repeat(i % 50);
      const bytes = [0x40, name.length, ...Buffer.from(name), value.length, ...Buffer.from(value)];
      d.decode(Uint8Array.from(bytes));
      expect(d.tableSize).toBeLessThanOrEqual(4096);
      expect(d.entry(1)).toEqual([name, value]);
    }
    // Index 62 is the newest entry, read back by an indexed field.
    expect(d.decode(hex("be"))).toEqual(["n1999", "v".repeat(1999 % 50)]);
  });

  test("after a smaller limit takes effect, the next block must start with a size update (§4.2)", () => {
    const d = new HpackDecoder(4096);
    d.setSettingsTableSize(1024);
    expect(() => d.decode(hex("82"))).toThrow(HpackError);
    const d2 = new HpackDecoder(4096);
    d2.setSettingsTableSize(1024);
    expect(d2.decode(hex("3f e1 07 82"))).toEqual([":method", "GET"]); // update to 1024
    expect(d2.decode(hex("82"))).toEqual([":method", "GET"]); // required only once
    const d3 = new HpackDecoder(4096);
    d3.setSettingsTableSize(1024);
    // Two updates: the smallest must be within the limit, the last one sets the size.
    expect(d3.decode(hex("20 3f e1 07 82"))).toEqual([":method", "GET"]);
    expect(d3.maxTableSize).toBe(1024);
  });

  test("a larger limit needs no update and allows one up to it", () => {
    const d = new HpackDecoder(4096);
    d.setSettingsTableSize(8192);
    expect(d.decode(hex("82"))).toEqual([":method", "GET"]);
    expect(d.decode(hex("3f e1 3f 82"))).toEqual([":method", "GET"]); // 8192
    expect(d.maxTableSize).toBe(8192);
  });
});

describe("HpackDecoder: invalid blocks are COMPRESSION_ERROR", () => {
  const cases: Array<[string, string, number?]> = [
    ["an indexed field with index 0 (§6.1)", "80"],
    ["an index past the static table with an empty dynamic table (§2.3.3)", "be"],
    ["an index far past the tables", "ff 80 01"],
    ["a literal name index past the tables", "4f 20 01 61"],
    ["a size update above the SETTINGS limit (§6.3)", "3f e2 1f"],
    ["a size update after a field (§4.2)", "82 20"],
    ["a truncated integer", "ff"],
    ["an integer with too many continuation bytes", "ff 80 80 80 80 00"],
    ["a string longer than the block", "00 05 61 62"],
    ["a block ending before the value string", "00 01 61"],
    ["a block ending in the middle of the name length", "00"],
    ["a Huffman string with EOS (§5.2)", "00 84 ff ff ff ff 01 61"],
    ["a Huffman string with zero padding (§5.2)", "00 81 18 01 61"],
    ["a Huffman string with 8 bits of padding (§5.2)", "00 82 1f ff 01 61"],
    ["a size update above a small limit", "3f 02", 32],
  ];
  for (const [name, block, limit] of cases) {
    test(`refuses ${name}`, () => {
      const d = new HpackDecoder(limit ?? 4096);
      let error: unknown;
      try {
        d.decode(hex(block));
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(HpackError);
      expect((error as HpackError).code).toBe(ErrorCode.COMPRESSION_ERROR);
      expect((error as HpackError).stream).toBe(0);
    });
  }
});

describe("HpackDecoder: header list size limit", () => {
  test("a list over the limit raises HeaderListTooLargeError after updating the table", () => {
    const d = new HpackDecoder(4096, 100);
    // Two indexed literals of 4 + 36 + 32 = 72 bytes each: 144 > 100.
    const one = [0x40, 4, ...Buffer.from("name"), 36, ...Buffer.from("v".repeat(36))];
    const two = [0x40, 4, ...Buffer.from("nam2"), 36, ...Buffer.from("w".repeat(36))];
    let error: unknown;
    try {
      d.decode(Uint8Array.from([...one, ...two]));
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(HeaderListTooLargeError);
    expect((error as HeaderListTooLargeError).size).toBe(144);
    expect((error as HeaderListTooLargeError).status).toBe(431);
    // Both entries were inserted: the next block can refer to them.
    expect(d.tableLength).toBe(2);
    expect(d.decode(hex("be"))).toEqual(["nam2", "w".repeat(36)]);
  });

  test("a list exactly at the limit is accepted", () => {
    const d = new HpackDecoder(4096, 4 + 36 + 32);
    const one = [0x00, 4, ...Buffer.from("name"), 36, ...Buffer.from("v".repeat(36))];
    expect(d.decode(Uint8Array.from(one))).toEqual(["name", "v".repeat(36)]);
  });
});

describe("HpackEncoder", () => {
  test("the first block starts with a table size update to 0, later ones do not", () => {
    const e = new HpackEncoder();
    expect(toHex(e.encode(200, []))).toBe("2088");
    expect(toHex(e.encode(200, []))).toBe("88");
  });

  test("statuses of the static table are one byte, others a literal with the :status name", () => {
    const e = new HpackEncoder();
    e.encode(200, []);
    const statuses: Array<[number, string]> = [
      [200, "88"],
      [204, "89"],
      [206, "8a"],
      [304, "8b"],
      [400, "8c"],
      [404, "8d"],
      [500, "8e"],
      [201, "08821003"], // literal, name index 8, "201" Huffman-coded in 2 bytes
    ];
    for (const [status, bytes] of statuses) expect(toHex(e.encode(status, []))).toBe(bytes);
    for (const status of [100, 103, 299, 431, 599]) {
      expect(new HpackDecoder().decode(e.encode(status, []))).toEqual([":status", String(status)]);
    }
  });

  test("names in the static table are referenced, values are Huffman-coded when shorter", () => {
    const e = new HpackEncoder();
    e.encode(0, []);
    // content-type = static 31: 0x0f 0x10 (4-bit prefix, 15 + 16), then "text/plain" in Huffman.
    const out = e.encode(0, ["content-type", "text/plain"]);
    expect(toHex(out.subarray(0, 2))).toBe("0f10");
    expect((out[2] as number) & 0x80).toBe(0x80);
    expect(new HpackDecoder().decode(out)).toEqual(["content-type", "text/plain"]);
  });

  test("credentials and cookies are sent never-indexed (§7.1.3)", () => {
    const e = new HpackEncoder();
    e.encode(0, []);
    expect(toHex(e.encode(0, ["set-cookie", "a"]).subarray(0, 2))).toBe("1f28"); // 15 + 40 = 55
    expect((e.encode(0, ["x-custom", "1"])[0] as number) & 0xf0).toBe(0x00);
  });

  test("random field lists round-trip through the decoder, leaving its table empty", () => {
    const rand = prng(0x9113);
    const e = new HpackEncoder();
    const d = new HpackDecoder();
    const names = STATIC_TABLE.slice(15).map(([n]) => n);
    for (let round = 0; round < 300; round++) {
      const fields: string[] = [];
      const n = Math.floor(rand() * 12);
      for (let i = 0; i < n; i++) {
        const name =
          rand() < 0.5
            ? (names[Math.floor(rand() * names.length)] as string)
            : `x-${Math.floor(rand() * 1e6).toString(36)}`;
        let value = "";
        const len = Math.floor(rand() * (rand() < 0.1 ? 3000 : 40));
        for (let k = 0; k < len; k++) value += String.fromCharCode(0x20 + Math.floor(rand() * 224));
        fields.push(name, value);
      }
      const status = 100 + Math.floor(rand() * 500);
      expect(d.decode(e.encode(status, fields))).toEqual([":status", String(status), ...fields]);
      expect(d.tableLength).toBe(0);
    }
  });
});
