// Client bytes made by another implementation (Python h2 and hpack, see
// testdata/gen_h2_vectors.py) must yield the events the generator recorded.

import { describe, expect, test } from "bun:test";
import type { H2Event } from "./connection.ts";
import { HpackDecoder } from "./hpack.ts";
import { byteByByte, Harness, hex, prng, randomSplit } from "./test-util.ts";
import vectors from "./testdata/h2-vectors.json";

interface Conversation {
  name: string;
  bytes: string;
  events: Array<Record<string, unknown>>;
}

function norm(ev: H2Event): Record<string, unknown> {
  if (ev.type === "data") return { ...ev, data: Buffer.from(ev.data).toString("latin1") };
  return { ...ev };
}

function replay(pieces: Uint8Array[]): Array<Record<string, unknown>> {
  const h = new Harness();
  h.feed(...pieces);
  expect(h.conn.failed).toBe(false);
  return h.takeEvents().map(norm);
}

describe("client byte streams from Python h2", () => {
  for (const [index, c] of (vectors.conversations as Conversation[]).entries()) {
    const input = hex(c.bytes);
    test(`${c.name} (fed whole)`, () => {
      expect(replay([input.slice()])).toEqual(c.events);
    });
    test(`${c.name} (fed one byte at a time)`, () => {
      expect(replay(byteByByte(input))).toEqual(c.events);
    });
    test(`${c.name} (fed at 10 random splittings)`, () => {
      const r = prng(0x4242 + index);
      for (let round = 0; round < 10; round++) {
        expect(replay(randomSplit(input, r, 40))).toEqual(c.events);
      }
    });
  }
});

describe("header blocks from Python hpack", () => {
  for (const seq of vectors.hpack) {
    test(`${seq.blocks.length} blocks, Huffman ${seq.huffman}, table size ${seq.tableSize}, decode as encoded`, () => {
      const d = new HpackDecoder(4096);
      for (const b of seq.blocks) expect(d.decode(hex(b.hex))).toEqual(b.fields);
    });
  }
});
