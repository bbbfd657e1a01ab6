// HPACK (RFC 7541): the header compression of HTTP/2.
//
// Names and values are latin1 "binary" strings, one char per byte, as everywhere in the router.

import { ErrorCode, H2Error } from "./errors.ts";
import { huffmanDecode, huffmanEncode, huffmanLength } from "./huffman.ts";

/** RFC 7541 Appendix A: the static table, index 1-61 (index 0 is unused). */
// biome-ignore format: a table
export const STATIC_TABLE: ReadonlyArray<readonly [string, string]> = [
  ["", ""],
  [":authority", ""], [":method", "GET"], [":method", "POST"], [":path", "/"],
  [":path", "/index.html"], [":scheme", "http"], [":scheme", "https"], [":status", "200"],
  [":status", "204"], [":status", "206"], [":status", "304"], [":status", "400"],
  [":status", "404"], [":status", "500"], ["accept-charset", ""],
  ["accept-encoding", "gzip, deflate"], ["accept-language", ""], ["accept-ranges", ""],
  ["accept", ""], ["access-control-allow-origin", ""], ["age", ""], ["allow", ""],
  ["authorization", ""], ["cache-control", ""], ["content-disposition", ""],
  ["content-encoding", ""], ["content-language", ""], ["content-length", ""],
  ["content-location", ""], ["content-range", ""], ["content-type", ""], ["cookie", ""],
  ["date", ""], ["etag", ""], ["expect", ""], ["expires", ""], ["from", ""], ["host", ""],
  ["if-match", ""], ["if-modified-since", ""], ["if-none-match", ""], ["if-range", ""],
  ["if-unmodified-since", ""], ["last-modified", ""], ["link", ""], ["location", ""],
  ["max-forwards", ""], ["proxy-authenticate", ""], ["proxy-authorization", ""], ["range", ""],
  ["referer", ""], ["refresh", ""], ["retry-after", ""], ["server", ""], ["set-cookie", ""],
  ["strict-transport-security", ""], ["transfer-encoding", ""], ["user-agent", ""], ["vary", ""],
  ["via", ""], ["www-authenticate", ""],
];

const STATIC_COUNT = 61;

/** RFC 7541 §4.1: an entry's size is its name and value lengths in octets plus 32. */
export const ENTRY_OVERHEAD = 32;

/**
 * The header block could not be decoded (RFC 7541 §2.3.2, §4.2, §5, §6): the decoder's state
 * may be out of step with the peer's encoder, so this is a connection error COMPRESSION_ERROR
 * (RFC 9113 §4.3).
 */
export class HpackError extends H2Error {
  constructor(message: string) {
    super(ErrorCode.COMPRESSION_ERROR, 0, message);
    this.name = "HpackError";
  }
}

/**
 * The decoded header list is larger than the limit (RFC 9113 §6.5.2 SETTINGS_MAX_HEADER_LIST_SIZE,
 * counted as RFC 7541 §4.1 does). The whole block was decoded, so the dynamic table is in step
 * and the connection can go on: the caller answers 431 on that stream (RFC 9113 §10.5.1).
 */
export class HeaderListTooLargeError extends Error {
  readonly code = "HEADER_LIST_TOO_LARGE";
  readonly status = 431;
  readonly size: number;

  constructor(size: number, limit: number) {
    super(`Header list of ${size} bytes exceeds the limit of ${limit}`);
    this.name = "HeaderListTooLargeError";
    this.size = size;
  }
}

// See request-parser.ts: the fastest exact way from bytes to a latin1 string in Bun.
const latin1Slice = (
  Buffer.prototype as unknown as {
    latin1Slice: (this: Uint8Array, start: number, end: number) => string;
  }
).latin1Slice;

// Huffman output goes here before becoming a string. Shared by all decoders (single thread);
// a string larger than SCRATCH_KEEP gets a buffer of its own, so one huge header does not pin
// memory for the life of the process.
const SCRATCH_KEEP = 16384;
let scratch = new Uint8Array(1024);

// RFC 7541 §5.1 allows any number of continuation bytes, but no length or index we accept
// needs more than 4 (2^28); a fifth byte means a value we refuse anyway or zero padding meant
// to make us loop.
const MAX_INT_BYTES = 4;

/**
 * An HPACK decoder for one connection's request header blocks. Decodes complete blocks (the
 * caller joins HEADERS and CONTINUATION fragments first). The dynamic table is bounded by the
 * SETTINGS_HEADER_TABLE_SIZE the decoder is given; empty, it holds no arrays.
 */
export class HpackDecoder {
  // Limit on the table size the encoder may pick (our SETTINGS_HEADER_TABLE_SIZE in force).
  #settingsMax: number;
  // The table size the encoder picked with its last size update (RFC 7541 §4.2).
  #maxSize: number;
  // ≥ 0: the settings limit fell below #maxSize, so the next block must start with a size
  // update at most this large (RFC 7541 §4.2).
  #requiredUpdate = -1;
  readonly #maxListSize: number;
  // Entries oldest first in [#first, length); the newest is dynamic index 1 (RFC 7541 §2.3.3).
  #names: string[] | null = null;
  #values: string[] | null = null;
  #first = 0;
  #size = 0;
  // Decoding cursor, valid during decode().
  #pos = 0;

  /**
   * `tableSize`: the SETTINGS_HEADER_TABLE_SIZE in force (4096 until the peer acknowledges a
   * different one); `maxHeaderListSize`: decoded lists larger than this raise
   * HeaderListTooLargeError.
   */
  constructor(tableSize = 4096, maxHeaderListSize = Number.POSITIVE_INFINITY) {
    this.#settingsMax = tableSize;
    this.#maxSize = tableSize;
    this.#maxListSize = maxHeaderListSize;
  }

  /** Bytes in the dynamic table, counted as RFC 7541 §4.1 does. */
  get tableSize(): number {
    return this.#size;
  }

  /** Entries in the dynamic table. */
  get tableLength(): number {
    return this.#names === null ? 0 : this.#names.length - this.#first;
  }

  /** The table size limit the encoder last chose. */
  get maxTableSize(): number {
    return this.#maxSize;
  }

  /** Dynamic table entry `i` (1 = newest) as [name, value], for tests and diagnostics. */
  entry(i: number): [string, string] | undefined {
    const names = this.#names;
    if (names === null || i < 1 || i > names.length - this.#first) return undefined;
    const at = names.length - i;
    return [names[at] as string, (this.#values as string[])[at] as string];
  }

  /**
   * A new SETTINGS_HEADER_TABLE_SIZE took effect (the peer acknowledged it). When it is below
   * the size the encoder uses, the encoder must shrink its table with a size update at the
   * start of its next block (RFC 7541 §4.2); that is then required.
   */
  setSettingsTableSize(size: number): void {
    this.#settingsMax = size;
    if (size < this.#maxSize) this.#requiredUpdate = size;
  }

  /**
   * Decodes one complete header block into flat [name, value, ...]. Throws HpackError when the
   * block is invalid, HeaderListTooLargeError when it decodes to more than the list limit (the
   * table is updated all the same: RFC 9113 §4.3 wants every block processed).
   */
  decode(block: Uint8Array, start = 0, end = block.length): string[] {
    const fields: string[] = [];
    let listSize = 0;
    let sawField = false;
    let smallestUpdate = Number.POSITIVE_INFINITY;
    this.#pos = start;
    while (this.#pos < end) {
      const b = block[this.#pos] as number;
      if ((b & 0xe0) === 0x20) {
        // §6.3 dynamic table size update: only at the beginning of a block (§4.2).
        if (sawField) throw new HpackError("Dynamic table size update after a header field");
        const size = this.#int(block, end, 5);
        if (size > this.#settingsMax) {
          throw new HpackError(`Dynamic table size update to ${size} above the limit`);
        }
        smallestUpdate = Math.min(smallestUpdate, size);
        this.#maxSize = size;
        this.#evict(size);
        continue;
      }
      if (!sawField) {
        sawField = true;
        this.#checkRequiredUpdate(smallestUpdate);
      }
      let name: string;
      let value: string;
      if ((b & 0x80) !== 0) {
        // §6.1 indexed header field.
        const index = this.#int(block, end, 7);
        if (index === 0) throw new HpackError("Indexed header field with index 0");
        name = this.#name(index);
        value = this.#value(index);
      } else {
        // §6.2.1 with incremental indexing (01), §6.2.2 without (0000), §6.2.3 never (0001).
        const indexing = (b & 0xc0) === 0x40;
        const index = this.#int(block, end, indexing ? 6 : 4);
        name = index === 0 ? this.#string(block, end) : this.#name(index);
        value = this.#string(block, end);
        if (indexing) this.#insert(name, value);
      }
      listSize += name.length + value.length + ENTRY_OVERHEAD;
      if (listSize <= this.#maxListSize) fields.push(name, value);
    }
    if (!sawField) this.#checkRequiredUpdate(smallestUpdate);
    if (listSize > this.#maxListSize) {
      throw new HeaderListTooLargeError(listSize, this.#maxListSize);
    }
    return fields;
  }

  #checkRequiredUpdate(smallest: number): void {
    if (this.#requiredUpdate < 0) return;
    if (smallest > this.#requiredUpdate) {
      throw new HpackError("Missing dynamic table size update after a smaller limit");
    }
    this.#requiredUpdate = -1;
  }

  /** §5.1: an integer with an N-bit prefix at #pos. */
  #int(b: Uint8Array, end: number, prefixBits: number): number {
    const mask = (1 << prefixBits) - 1;
    let value = (b[this.#pos++] as number) & mask;
    if (value < mask) return value;
    let shift = 0;
    for (let i = 0; i < MAX_INT_BYTES; i++) {
      if (this.#pos >= end) throw new HpackError("Truncated integer");
      const byte = b[this.#pos++] as number;
      value += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) return value;
      shift += 7;
    }
    throw new HpackError("Integer too large");
  }

  /** §5.2: a string literal at #pos. */
  #string(b: Uint8Array, end: number): string {
    if (this.#pos >= end) throw new HpackError("Truncated header block");
    const huffman = ((b[this.#pos] as number) & 0x80) !== 0;
    const len = this.#int(b, end, 7);
    const from = this.#pos;
    if (len > end - from) throw new HpackError("String literal longer than the block");
    this.#pos = from + len;
    if (!huffman) return latin1Slice.call(b, from, from + len);
    // Each decoded byte takes at least 5 bits.
    const room = Math.ceil((len * 8) / 5);
    let out = scratch;
    if (room > out.length) {
      out = new Uint8Array(Math.max(room, out.length * 2));
      if (out.length <= SCRATCH_KEEP) scratch = out;
    }
    const n = huffmanDecode(b, from, from + len, out);
    if (n < 0) throw new HpackError("Invalid Huffman-encoded string");
    return latin1Slice.call(out, 0, n);
  }

  #name(index: number): string {
    if (index <= STATIC_COUNT) return (STATIC_TABLE[index] as readonly [string, string])[0];
    return (this.#names as string[])[this.#dynamicAt(index)] as string;
  }

  #value(index: number): string {
    if (index <= STATIC_COUNT) return (STATIC_TABLE[index] as readonly [string, string])[1];
    return (this.#values as string[])[this.#dynamicAt(index)] as string;
  }

  /** Array position of dynamic table index `index` (62 = newest); §2.3.3: out of range fails. */
  #dynamicAt(index: number): number {
    const d = index - STATIC_COUNT;
    const names = this.#names;
    if (names === null || d > names.length - this.#first) {
      throw new HpackError(`Header table index ${index} out of range`);
    }
    return names.length - d;
  }

  /** §4.4: adds an entry, evicting old ones; one larger than the table empties it. */
  #insert(name: string, value: string): void {
    const size = name.length + value.length + ENTRY_OVERHEAD;
    if (size > this.#maxSize) {
      this.#clear();
      return;
    }
    this.#evict(this.#maxSize - size);
    if (this.#names === null) {
      this.#names = [name];
      this.#values = [value];
    } else {
      this.#names.push(name);
      (this.#values as string[]).push(value);
    }
    this.#size += size;
  }

  /** §4.3: evicts oldest entries until the table takes at most `limit` bytes. */
  #evict(limit: number): void {
    const names = this.#names;
    if (names === null) return;
    const values = this.#values as string[];
    while (this.#size > limit) {
      const at = this.#first++;
      this.#size -= (names[at] as string).length + (values[at] as string).length + ENTRY_OVERHEAD;
      names[at] = "";
      values[at] = "";
    }
    if (this.#first === names.length) {
      this.#clear();
    } else if (this.#first >= 32 && this.#first * 2 >= names.length) {
      names.splice(0, this.#first);
      values.splice(0, this.#first);
      this.#first = 0;
    }
  }

  #clear(): void {
    this.#names = null;
    this.#values = null;
    this.#first = 0;
    this.#size = 0;
  }
}

// ---- encoder ----

const STATIC_NAME = new Map<string, number>();
const STATIC_STATUS = new Map<number, number>();
for (let i = STATIC_COUNT; i >= 1; i--) {
  const [name, value] = STATIC_TABLE[i] as readonly [string, string];
  STATIC_NAME.set(name, i); // the lowest index wins
  if (name === ":status") STATIC_STATUS.set(Number(value), i);
}

// RFC 7541 §7.1.3: credentials are sent "never indexed" so an intermediary re-encoding the
// block keeps them out of its tables as well.
const NEVER_INDEXED = new Set(["authorization", "proxy-authorization", "cookie", "set-cookie"]);

let out = new Uint8Array(4096);

function ensure(at: number, more: number): void {
  if (at + more <= out.length) return;
  const grown = new Uint8Array(Math.max(out.length * 2, at + more));
  grown.set(out.subarray(0, at), 0);
  out = grown;
}

/** §5.1: writes `value` with an N-bit prefix, `first` holding the representation's high bits. */
function writeInt(at: number, value: number, prefixBits: number, first: number): number {
  const mask = (1 << prefixBits) - 1;
  if (value < mask) {
    out[at] = first | value;
    return at + 1;
  }
  out[at++] = first | mask;
  let rest = value - mask;
  while (rest >= 0x80) {
    out[at++] = (rest & 0x7f) | 0x80;
    rest = Math.floor(rest / 128);
  }
  out[at++] = rest;
  return at;
}

/** §5.2: a string literal, Huffman-coded when that is shorter. */
function writeString(at: number, s: string): number {
  const hlen = huffmanLength(s);
  if (hlen < s.length) {
    ensure(at, hlen + 5);
    const p = writeInt(at, hlen, 7, 0x80);
    return huffmanEncode(s, out, p);
  }
  ensure(at, s.length + 5);
  let p = writeInt(at, s.length, 7, 0);
  for (let i = 0; i < s.length; i++) out[p++] = s.charCodeAt(i);
  return p;
}

/**
 * An HPACK encoder for one connection's response header blocks that never uses the dynamic
 * table: fields are static-table references or literals without indexing (RFC 7541 §6.1,
 * §6.2.2), so it holds no table, only a flag. The first block starts with a size update to 0
 * (§6.3): it shrinks the peer decoder's view of our table to what we use, which answers any
 * SETTINGS_HEADER_TABLE_SIZE the peer sends now or later (§4.2; nghttp2 requires an update
 * when the setting goes below 4096).
 */
export class HpackEncoder {
  #first = true;

  /**
   * Encodes `:status` (when `status` > 0) and then the flat [name, value, ...] fields, which
   * must be valid lowercase names and latin1 values (not checked here).
   */
  encode(status: number, fields: readonly string[]): Uint8Array {
    let at = 0;
    ensure(0, 16);
    if (this.#first) {
      this.#first = false;
      out[at++] = 0x20;
    }
    if (status > 0) {
      const full = STATIC_STATUS.get(status);
      if (full !== undefined) {
        out[at++] = 0x80 | full;
      } else {
        out[at++] = 0x08; // literal without indexing, name = static index 8 (":status")
        at = writeString(at, String(status));
      }
    }
    for (let i = 0; i + 1 < fields.length; i += 2) {
      const name = fields[i] as string;
      const value = fields[i + 1] as string;
      ensure(at, 8);
      // Of the static table's name-value pairs only ":status" ones occur in responses.
      const first = NEVER_INDEXED.has(name) ? 0x10 : 0x00;
      const index = STATIC_NAME.get(name);
      if (index !== undefined) {
        at = writeInt(at, index, 4, first);
      } else {
        out[at++] = first;
        at = writeString(at, name);
      }
      at = writeString(at, value);
    }
    return out.slice(0, at);
  }
}
