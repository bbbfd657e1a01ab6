/**
 * The PROXY protocol header (HAProxy's proxy-protocol.txt, versions 1 and 2), sent by a load
 * balancer as the first bytes of a connection to say which client it carries. Sans-I/O: the
 * caller passes everything received so far and gets back "more", the parsed header with how
 * many bytes it took, or an error.
 */
import { isIP } from "node:net";

/** Version 2 signature (proxy-protocol.txt §2.2). */
const V2_SIGNATURE = new Uint8Array([
  0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
]);
const V1_PREFIX = new Uint8Array([0x50, 0x52, 0x4f, 0x58, 0x59, 0x20]); // "PROXY "
/** §2.1: a version 1 line is at most 107 bytes with its CRLF. */
const V1_MAX = 107;

export type ProxyHeader =
  | { state: "more" }
  | {
      state: "done";
      /** Bytes of the header; what follows belongs to the proxied connection. */
      consumed: number;
      /** The original client, or null (LOCAL command, UNKNOWN or a non-IP family). */
      source: { host: string; port: number } | null;
    }
  | { state: "error"; reason: string };

const MORE: ProxyHeader = { state: "more" };

function startsWith(buf: Uint8Array, prefix: Uint8Array): "yes" | "no" | "maybe" {
  const n = Math.min(buf.byteLength, prefix.byteLength);
  for (let i = 0; i < n; i++) if (buf[i] !== prefix[i]) return "no";
  return n === prefix.byteLength ? "yes" : "maybe";
}

export function parseProxyHeader(buf: Uint8Array): ProxyHeader {
  const v2 = startsWith(buf, V2_SIGNATURE);
  if (v2 === "yes") return parseV2(buf);
  const v1 = startsWith(buf, V1_PREFIX);
  if (v1 === "yes") return parseV1(buf);
  if (v1 === "maybe" || v2 === "maybe") return MORE;
  return { state: "error", reason: "no PROXY protocol header" };
}

function parseV1(buf: Uint8Array): ProxyHeader {
  let end = -1;
  const limit = Math.min(buf.byteLength, V1_MAX);
  for (let i = 0; i + 1 < limit; i++) {
    if (buf[i] === 0x0d && buf[i + 1] === 0x0a) {
      end = i;
      break;
    }
  }
  if (end < 0) {
    return buf.byteLength >= V1_MAX ? { state: "error", reason: "PROXY v1 line too long" } : MORE;
  }
  const line = Buffer.from(buf.buffer, buf.byteOffset, end).toString("latin1");
  const parts = line.split(" ");
  const consumed = end + 2;
  if (parts[1] === "UNKNOWN") return { state: "done", consumed, source: null };
  if (parts.length !== 6 || (parts[1] !== "TCP4" && parts[1] !== "TCP6")) {
    return { state: "error", reason: "malformed PROXY v1 line" };
  }
  const family = parts[1] === "TCP4" ? 4 : 6;
  const [, , src = "", dst = "", sport = "", dport = ""] = parts;
  if (isIP(src) !== family || isIP(dst) !== family || !isPort(sport) || !isPort(dport)) {
    return { state: "error", reason: "malformed PROXY v1 addresses" };
  }
  return { state: "done", consumed, source: { host: src, port: Number(sport) } };
}

function isPort(text: string): boolean {
  // §2.1: decimal, no leading zero, 0..65535.
  return /^(0|[1-9]\d{0,4})$/.test(text) && Number(text) <= 65535;
}

function parseV2(buf: Uint8Array): ProxyHeader {
  if (buf.byteLength < 16) return MORE;
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const verCmd = buf[12] as number;
  const famProto = buf[13] as number;
  const length = view.getUint16(14);
  if (verCmd >> 4 !== 2) return { state: "error", reason: "unsupported PROXY protocol version" };
  const command = verCmd & 0x0f;
  if (command > 1) return { state: "error", reason: "unknown PROXY v2 command" };
  const consumed = 16 + length;
  if (buf.byteLength < consumed) return MORE;
  // LOCAL (0): a health check from the proxy itself; the connection's own address stays.
  if (command === 0) return { state: "done", consumed, source: null };
  const family = famProto >> 4;
  if (family === 1) {
    if (length < 12) return { state: "error", reason: "PROXY v2 address block too short" };
    const host = `${buf[16]}.${buf[17]}.${buf[18]}.${buf[19]}`;
    return { state: "done", consumed, source: { host, port: view.getUint16(24) } };
  }
  if (family === 2) {
    if (length < 36) return { state: "error", reason: "PROXY v2 address block too short" };
    const groups: string[] = [];
    for (let i = 0; i < 8; i++) groups.push(view.getUint16(16 + 2 * i).toString(16));
    return {
      state: "done",
      consumed,
      source: { host: compactIpv6(groups), port: view.getUint16(48) },
    };
  }
  // AF_UNSPEC or AF_UNIX: no IP address to report.
  return { state: "done", consumed, source: null };
}

/** RFC 5952 §4.2.2: the longest run of two or more zero groups becomes "::". */
function compactIpv6(groups: string[]): string {
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== "0") {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === "0") j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  if (bestStart < 0) return groups.join(":");
  const head = groups.slice(0, bestStart).join(":");
  const tail = groups.slice(bestStart + bestLength).join(":");
  const v6 = `${head}::${tail}`;
  // An IPv4-mapped address is reported as the IPv4 address, like the socket layer does.
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(v6);
  if (mapped !== null) {
    const hi = Number.parseInt(mapped[1] as string, 16);
    const lo = Number.parseInt(mapped[2] as string, 16);
    return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  return v6;
}
