// Helpers shared by the src/ws tests (not imported by the codec itself).

/** mulberry32: a small seeded PRNG so random splittings are reproducible. */
export function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Splits `bytes` at up to `maxCuts` random points; each piece is a separate copy. */
export function randomSplit(bytes: Uint8Array, rand: () => number, maxCuts = 8): Uint8Array[] {
  if (bytes.length < 2) return [bytes.slice()];
  const cuts = new Set<number>();
  const n = 1 + Math.floor(rand() * Math.min(maxCuts, bytes.length - 1));
  for (let i = 0; i < n; i++) cuts.add(1 + Math.floor(rand() * (bytes.length - 1)));
  const pieces: Uint8Array[] = [];
  let prev = 0;
  for (const cut of [...[...cuts].sort((a, b) => a - b), bytes.length]) {
    if (cut > prev) pieces.push(bytes.slice(prev, cut));
    prev = cut;
  }
  return pieces;
}

/** Every byte as its own piece. */
export function byteByByte(bytes: Uint8Array): Uint8Array[] {
  const pieces: Uint8Array[] = [];
  for (let i = 0; i < bytes.length; i++) pieces.push(bytes.slice(i, i + 1));
  return pieces;
}

export function hex(s: string): Uint8Array {
  const clean = s.replace(/0x/g, "").replace(/[\s,]/g, "");
  return new Uint8Array(Buffer.from(clean, "hex"));
}

export function toHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.length).toString("hex");
}

export function utf8(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** The masking key of the RFC 6455 §5.7 examples. */
export const RFC_MASK = [0x37, 0xfa, 0x21, 0x3d] as const;

export interface ClientFrameOptions {
  fin?: boolean;
  rsv?: number; // RSV bits as they sit in the first byte (0x40 RSV1, 0x20 RSV2, 0x10 RSV3)
  mask?: readonly number[] | null; // null: unmasked
  lengthForm?: 7 | 16 | 64; // force a (possibly non-minimal) length encoding
  declaredLength?: number; // announce this length instead of the payload's
}

/** A client-to-server frame, masked by default (RFC 6455 §5.2, §5.3). */
export function clientFrame(
  opcode: number,
  payload: Uint8Array | string,
  options: ClientFrameOptions = {},
): Uint8Array {
  const data = typeof payload === "string" ? utf8(payload) : payload;
  const mask = options.mask === undefined ? RFC_MASK : options.mask;
  const len = options.declaredLength ?? data.length;
  const form = options.lengthForm ?? (len < 126 ? 7 : len < 0x10000 ? 16 : 64);
  const head: number[] = [((options.fin ?? true) ? 0x80 : 0) | (options.rsv ?? 0) | opcode];
  const maskBit = mask === null ? 0 : 0x80;
  if (form === 7) {
    head.push(maskBit | len);
  } else if (form === 16) {
    head.push(maskBit | 126, len >>> 8, len & 0xff);
  } else {
    const hi = Math.floor(len / 0x100000000);
    head.push(maskBit | 127, hi >>> 24, (hi >>> 16) & 0xff, (hi >>> 8) & 0xff, hi & 0xff);
    head.push(len >>> 24, (len >>> 16) & 0xff, (len >>> 8) & 0xff, len & 0xff);
  }
  if (mask !== null) head.push(...mask);
  const out = new Uint8Array(head.length + data.length);
  out.set(head, 0);
  for (let i = 0; i < data.length; i++) {
    out[head.length + i] = (data[i] as number) ^ (mask === null ? 0 : (mask[i & 3] as number));
  }
  return out;
}

/** Deterministic pseudo-random bytes. */
export function randomBytes(n: number, rand: () => number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.floor(rand() * 256);
  return out;
}
