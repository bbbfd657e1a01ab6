/**
 * Who the client really is, behind trusted proxies (--proxy-headers): sans-I/O, headers in,
 * an address and scheme out.
 *
 * Each proxy appends the address it received a request from, so the list is only as honest
 * as the hops that wrote it: the entries to the right of the last untrusted hop were written
 * by proxies we trust, everything to its left by whoever sent the request. The client is
 * therefore the rightmost hop that is not a trusted proxy (not the leftmost, which any client
 * can forge), and if every hop is trusted, the leftmost one.
 *
 * `Forwarded` (RFC 7239) wins over `X-Forwarded-For`/`X-Forwarded-Proto` when both are present.
 */
import { isIP } from "node:net";
import { eqLower } from "../http1/request-parser.ts";
import type { TrustList } from "./trust.ts";

export interface ForwardedClient {
  /**
   * Client address; "" when the proxies say it is unknown or obfuscated (RFC 7239 §6); null
   * when they did not say (only X-Forwarded-Proto): the peer's address stays.
   */
  host: string | null;
  /** Decimal port, "0" when the proxies did not say; null with a null host. */
  port: string | null;
  /** "http" or "https" when a trusted proxy said so, else null (keep the connection's). */
  scheme: "http" | "https" | null;
}

interface Hop {
  node: string;
  proto: string | null;
}

/**
 * The client described by the proxy headers of a request from a trusted peer, or null when
 * the request has none. `headers` are name/value pairs with lowercased names.
 */
export function resolveForwarded(headers: string[], trust: TrustList): ForwardedClient | null {
  let forwarded: string | null = null;
  let xff: string | null = null;
  let xfp: string | null = null;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i] as string;
    const first = name.charCodeAt(0) | 0x20;
    if (first !== 0x66 && first !== 0x78) continue; // f, x: skip the rest cheaply
    const value = headers[i + 1] as string;
    // Repeated fields are one comma-separated list (RFC 9110 §5.3).
    if (eqLower(name, "forwarded"))
      forwarded = forwarded === null ? value : `${forwarded},${value}`;
    else if (eqLower(name, "x-forwarded-for")) xff = xff === null ? value : `${xff},${value}`;
    else if (eqLower(name, "x-forwarded-proto")) xfp = xfp === null ? value : `${xfp},${value}`;
  }
  if (forwarded !== null) {
    const hops = parseForwarded(forwarded);
    if (hops !== null && hops.length > 0) return pickClient(hops, trust);
    return null; // malformed: nothing it says can be relied on
  }
  if (xff === null && xfp === null) return null;
  let result: ForwardedClient = { host: null, port: null, scheme: null };
  if (xff !== null) {
    const hops = xff
      .split(",")
      .map((node) => ({ node: node.trim(), proto: null }))
      .filter((hop) => hop.node.length > 0);
    if (hops.length > 0) result = pickClient(hops, trust);
  }
  if (xfp !== null) {
    // The nearest proxy (a trusted one) wrote the rightmost value.
    const values = xfp.split(",");
    result.scheme = normalizeScheme((values[values.length - 1] as string).trim());
  }
  return result.host === null && result.scheme === null ? null : result;
}

function pickClient(hops: Hop[], trust: TrustList): ForwardedClient {
  let index = hops.length - 1;
  while (index > 0) {
    const node = parseNode((hops[index] as Hop).node);
    if (node === null || !trust.trusts(node.host)) break;
    index--;
  }
  const hop = hops[index] as Hop;
  const node = parseNode(hop.node);
  return {
    host: node?.host ?? "",
    port: node?.port ?? "0",
    scheme: hop.proto === null ? null : normalizeScheme(hop.proto),
  };
}

function normalizeScheme(value: string): "http" | "https" | null {
  const lower = value.toLowerCase();
  if (lower === "https" || lower === "wss") return "https";
  if (lower === "http" || lower === "ws") return "http";
  return null;
}

/**
 * An address with an optional port: `192.0.2.1`, `192.0.2.1:80`, `[2001:db8::1]:80`,
 * `2001:db8::1`. Null for anything else (`unknown`, `_hidden`, garbage).
 */
export function parseNode(node: string): { host: string; port: string } | null {
  let host = node;
  let port = "0";
  if (node.startsWith("[")) {
    const close = node.indexOf("]");
    if (close < 0) return null;
    host = node.slice(1, close);
    const rest = node.slice(close + 1);
    if (rest.length > 0) {
      if (!rest.startsWith(":")) return null;
      port = rest.slice(1);
    }
    if (isIP(host) !== 6) return null;
  } else {
    const colon = node.indexOf(":");
    if (colon >= 0 && node.indexOf(":", colon + 1) < 0) {
      host = node.slice(0, colon);
      port = node.slice(colon + 1);
    }
    if (isIP(host) === 0) return null;
  }
  if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) return null;
  if (host.startsWith("::ffff:") && host.includes(".")) host = host.slice(7);
  return { host, port: String(Number(port)) };
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * RFC 7239 §4: `forwarded-element *( "," forwarded-element )`, each element
 * `[pair] *( ";" [pair] )`, a pair `token "=" ( token / quoted-string )`. Null if malformed.
 */
export function parseForwarded(value: string): Hop[] | null {
  const hops: Hop[] = [];
  let node: string | null = null;
  let proto: string | null = null;
  let i = 0;
  const n = value.length;
  const skipSpace = () => {
    while (i < n && (value[i] === " " || value[i] === "\t")) i++;
  };
  const endElement = () => {
    hops.push({ node: node ?? "unknown", proto });
    node = null;
    proto = null;
  };
  skipSpace();
  if (i === n) return null;
  while (i < n) {
    skipSpace();
    if (value[i] === ",") {
      endElement();
      i++;
      continue;
    }
    if (value[i] === ";") {
      i++;
      continue;
    }
    const eq = value.indexOf("=", i);
    if (eq < 0) return null;
    const name = value.slice(i, eq).trim().toLowerCase();
    if (!TOKEN.test(name)) return null;
    i = eq + 1;
    let pairValue: string;
    if (value[i] === '"') {
      let out = "";
      i++;
      while (i < n && value[i] !== '"') {
        if (value[i] === "\\") i++; // quoted-pair (RFC 9110 §5.6.4)
        if (i < n) out += value[i];
        i++;
      }
      if (i >= n) return null; // unterminated
      i++;
      pairValue = out;
    } else {
      let end = i;
      while (end < n && value[end] !== ";" && value[end] !== "," && value[end] !== " ") end++;
      pairValue = value.slice(i, end);
      if (!TOKEN.test(pairValue)) return null;
      i = end;
    }
    // RFC 7239 §4: a parameter must not occur more than once per element.
    if (name === "for") {
      if (node !== null) return null;
      node = pairValue;
    } else if (name === "proto") {
      if (proto !== null) return null;
      proto = pairValue;
    }
    skipSpace();
    if (i < n && value[i] !== ";" && value[i] !== ",") return null;
  }
  endElement();
  return hops;
}
