// Incremental UTF-8 validation (RFC 3629 §4) for WebSocket text messages and close reasons.
// RFC 6455 §8.1 makes invalid UTF-8 in a text message a reason to fail the connection, and the
// Autobahn suite (section 6) checks that a server fails *fast*: as soon as the first byte that
// cannot be part of any valid sequence arrives, not when the message ends. TextDecoder with
// `stream: true` could do that, but it allocates a string for every piece and cannot tell "bad"
// from "incomplete" without decoding; this DFA only moves a small integer along.
//
// The automaton is built from the RFC 3629 ABNF rather than copied as an opaque table, so the
// rules can be read here:
//   UTF8-1 = %x00-7F
//   UTF8-2 = %xC2-DF UTF8-tail
//   UTF8-3 = %xE0 %xA0-BF UTF8-tail / %xE1-EC 2UTF8-tail / %xED %x80-9F UTF8-tail
//          / %xEE-EF 2UTF8-tail
//   UTF8-4 = %xF0 %x90-BF 2UTF8-tail / %xF1-F3 3UTF8-tail / %xF4 %x80-8F 2UTF8-tail
// C0/C1 (overlong 2-byte), E0 80-9F (overlong 3-byte), ED A0-BF (UTF-16 surrogates),
// F0 80-8F (overlong 4-byte), F4 90+ and F5-FF (beyond U+10FFFF) are all rejected on the byte
// where they become impossible.

/** The validator state between whole code points. */
export const UTF8_ACCEPT = 0;
/** The sticky failure state. */
export const UTF8_REJECT = 8;

// States: how many continuation bytes are still needed and which range the next one must fall
// in. The numbering is internal; only ACCEPT and REJECT are meaningful outside.
const NEED1 = 1; // one 80-BF byte
const NEED2 = 2; // two 80-BF bytes
const NEED3 = 3; // three 80-BF bytes
const AFTER_E0 = 4; // A0-BF, then one more
const AFTER_ED = 5; // 80-9F, then one more
const AFTER_F0 = 6; // 90-BF, then two more
const AFTER_F4 = 7; // 80-8F, then two more
const STATES = 9;

// TRANSITIONS[state * 256 + byte] = next state.
const TRANSITIONS = new Uint8Array(STATES * 256).fill(UTF8_REJECT);
function range(state: number, lo: number, hi: number, next: number): void {
  for (let b = lo; b <= hi; b++) TRANSITIONS[state * 256 + b] = next;
}
range(UTF8_ACCEPT, 0x00, 0x7f, UTF8_ACCEPT);
range(UTF8_ACCEPT, 0xc2, 0xdf, NEED1);
range(UTF8_ACCEPT, 0xe0, 0xe0, AFTER_E0);
range(UTF8_ACCEPT, 0xe1, 0xec, NEED2);
range(UTF8_ACCEPT, 0xed, 0xed, AFTER_ED);
range(UTF8_ACCEPT, 0xee, 0xef, NEED2);
range(UTF8_ACCEPT, 0xf0, 0xf0, AFTER_F0);
range(UTF8_ACCEPT, 0xf1, 0xf3, NEED3);
range(UTF8_ACCEPT, 0xf4, 0xf4, AFTER_F4);
range(NEED1, 0x80, 0xbf, UTF8_ACCEPT);
range(NEED2, 0x80, 0xbf, NEED1);
range(NEED3, 0x80, 0xbf, NEED2);
range(AFTER_E0, 0xa0, 0xbf, NEED1);
range(AFTER_ED, 0x80, 0x9f, NEED1);
range(AFTER_F0, 0x90, 0xbf, NEED2);
range(AFTER_F4, 0x80, 0x8f, NEED2);
// REJECT stays REJECT (the fill above).

/**
 * Advances the validator over `bytes[start, end)` from `state` and returns the new state:
 * UTF8_ACCEPT when the bytes so far end on a code point boundary, UTF8_REJECT as soon as they
 * cannot be valid whatever follows, anything else while a sequence is incomplete.
 */
export function utf8Step(state: number, bytes: Uint8Array, start: number, end: number): number {
  let s = state;
  let i = start;
  while (i < end) {
    if (s === UTF8_ACCEPT) {
      // ASCII fast path: most text payloads are mostly ASCII.
      while (i < end && (bytes[i] as number) < 0x80) i++;
      if (i === end) break;
    }
    s = TRANSITIONS[s * 256 + (bytes[i] as number)] as number;
    if (s === UTF8_REJECT) return UTF8_REJECT;
    i++;
  }
  return s;
}

/** True when `bytes` is complete, valid UTF-8. */
export function isValidUtf8(bytes: Uint8Array): boolean {
  return utf8Step(UTF8_ACCEPT, bytes, 0, bytes.length) === UTF8_ACCEPT;
}
