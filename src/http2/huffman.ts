// The HPACK Huffman code (RFC 7541 §5.2, Appendix B).
//
// Appendix B is a canonical Huffman code: sorted by (length, symbol), each code is the previous
// one plus one, shifted left by the growth in length. So the table is stored as its 257 code
// lengths and the codes are derived at load; huffman.test.ts checks every derived code against
// Appendix B as printed.

// Code length in bits of symbols 0-255 and of EOS (256).
// biome-ignore format: a table
const LENGTHS = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28,
  28, 28, 28, 28, 28, 28, 28, 28, 6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5, 5,
  6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, 13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
  7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, 15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, 6,
  7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, 20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23,
  23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, 22, 21, 20, 22,
  22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22,
  23, 22, 22, 23, 26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19, 21, 26, 27,
  27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, 20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25,
  24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, 30,
];

const EOS = 256;

/** Code length in bits of each symbol (index 256 is EOS). */
export const HUFFMAN_LENGTHS = Uint8Array.from(LENGTHS);
/** The code of each symbol, right-aligned (index 256 is EOS). */
export const HUFFMAN_CODES = new Uint32Array(257);

{
  const order = Array.from({ length: 257 }, (_, s) => s).sort(
    (a, b) => (LENGTHS[a] as number) - (LENGTHS[b] as number) || a - b,
  );
  let code = 0;
  let prevLen = LENGTHS[order[0] as number] as number;
  for (let i = 0; i < order.length; i++) {
    const s = order[i] as number;
    const len = LENGTHS[s] as number;
    if (i > 0) code = (code + 1) * 2 ** (len - prevLen);
    prevLen = len;
    HUFFMAN_CODES[s] = code;
  }
}

// ---- decoding: a finite state machine consuming 4 bits at a time ----
//
// The states are the 256 internal nodes of the code tree (0 = root). For a state and a nibble,
// DECODE holds the next state, the symbol completed on the way (at most one: the shortest code
// is 5 bits) and whether EOS was reached (§5.2: a string containing EOS is a decoding error).

const children = new Int16Array(512).fill(-1); // [node*2 + bit] -> child node or ~symbol
const depth = new Uint8Array(256);
const allOnes = new Uint8Array(256); // the path from the root to this node is all 1 bits
{
  let nodes = 1;
  allOnes[0] = 1;
  for (let s = 0; s <= EOS; s++) {
    const len = HUFFMAN_LENGTHS[s] as number;
    const code = HUFFMAN_CODES[s] as number;
    let node = 0;
    for (let i = len - 1; i >= 0; i--) {
      const bit = Math.floor(code / 2 ** i) & 1;
      const slot = node * 2 + bit;
      if (i === 0) {
        children[slot] = ~s;
      } else {
        if (children[slot] === -1) {
          depth[nodes] = (depth[node] as number) + 1;
          allOnes[nodes] = (allOnes[node] as number) & bit;
          children[slot] = nodes++;
        }
        node = children[slot] as number;
      }
    }
  }
}

const F_EMIT = 0x100; // bits 8-16: symbol + 1 (0 = none)
const F_FAIL = 0x20000;
const DECODE = new Int32Array(256 * 16);
for (let state = 0; state < 256; state++) {
  for (let nibble = 0; nibble < 16; nibble++) {
    let node = state;
    let emit = 0;
    let fail = 0;
    for (let i = 3; i >= 0; i--) {
      const child = children[node * 2 + ((nibble >> i) & 1)] as number;
      if (child >= 0) {
        node = child;
        continue;
      }
      const sym = ~child;
      if (sym === EOS) fail = F_FAIL;
      emit = (sym + 1) * F_EMIT;
      node = 0;
    }
    DECODE[state * 16 + nibble] = node | emit | fail;
  }
}

// §5.2: at the end of a string the bits since the last symbol are padding: at most 7 bits, all
// ones (the most significant bits of EOS). Otherwise the string is malformed.
const ACCEPTS = new Uint8Array(256);
for (let s = 0; s < 256; s++) {
  ACCEPTS[s] = s === 0 || (allOnes[s] === 1 && (depth[s] as number) <= 7) ? 1 : 0;
}

/**
 * Decodes the Huffman-coded bytes src[start, end) into out (which must have room for
 * (end - start) * 8 / 5 bytes) and returns the decoded length, or -1 when the input is not a
 * valid encoding (EOS inside, padding longer than 7 bits or not all ones).
 */
export function huffmanDecode(
  src: Uint8Array,
  start: number,
  end: number,
  out: Uint8Array,
): number {
  let state = 0;
  let n = 0;
  for (let i = start; i < end; i++) {
    const b = src[i] as number;
    let t = DECODE[state * 16 + (b >> 4)] as number;
    if ((t & F_FAIL) !== 0) return -1;
    if (t >= F_EMIT) out[n++] = ((t >> 8) & 0x1ff) - 1;
    state = t & 0xff;
    t = DECODE[state * 16 + (b & 0xf)] as number;
    if ((t & F_FAIL) !== 0) return -1;
    if (t >= F_EMIT) out[n++] = ((t >> 8) & 0x1ff) - 1;
    state = t & 0xff;
  }
  return ACCEPTS[state] === 1 ? n : -1;
}

/** Bytes the Huffman encoding of the latin1 string `s` takes. */
export function huffmanLength(s: string): number {
  let bits = 0;
  for (let i = 0; i < s.length; i++) bits += HUFFMAN_LENGTHS[s.charCodeAt(i) & 0xff] as number;
  return (bits + 7) >>> 3;
}

/**
 * Writes the Huffman encoding of the latin1 string `s` at out[at] (room for huffmanLength(s)
 * bytes) and returns the offset after it. The last byte is padded with the top bits of EOS.
 */
export function huffmanEncode(s: string, out: Uint8Array, at: number): number {
  let cur = 0; // bits of the byte being filled, left-aligned
  let free = 8; // bits still free in it
  let p = at;
  for (let i = 0; i < s.length; i++) {
    const sym = s.charCodeAt(i) & 0xff;
    let code = HUFFMAN_CODES[sym] as number;
    let len = HUFFMAN_LENGTHS[sym] as number;
    while (len >= free) {
      len -= free;
      out[p++] = cur | (code >>> len);
      code &= (1 << len) - 1;
      cur = 0;
      free = 8;
    }
    if (len > 0) {
      free -= len;
      cur |= code << free;
    }
  }
  if (free < 8) out[p++] = cur | ((1 << free) - 1);
  return p;
}
