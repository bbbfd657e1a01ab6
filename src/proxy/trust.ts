/**
 * The peers trusted to speak for a client (--forwarded-allow-ips): proxy headers and PROXY
 * protocol headers are honoured only from them. The option is validated on the Python side
 * (python/saltare/_options.py); this is the matcher.
 */
import { BlockList, isIP } from "node:net";

export class TrustList {
  readonly #all: boolean;
  readonly #list = new BlockList();

  /** `spec`: `*`, or a comma list of addresses and CIDR networks (IPv4 or IPv6). */
  constructor(spec: string) {
    const items = spec
      .split(",")
      .map((item) => item.trim())
      .filter((item) => item.length > 0);
    this.#all = items.includes("*");
    for (const item of items) {
      if (item === "*") continue;
      const [address = "", prefix] = item.split("/");
      const family = isIP(address);
      if (family === 0) throw new Error(`not an IP address or network: ${item}`);
      const type = family === 4 ? "ipv4" : "ipv6";
      if (prefix === undefined) this.#list.addAddress(address, type);
      else this.#list.addSubnet(address, Number(prefix), type);
    }
  }

  /** True for an address in the list (an IPv4-mapped IPv6 address counts as its IPv4 one). */
  trusts(address: string): boolean {
    if (this.#all) return true;
    let host = address;
    if (host.startsWith("::ffff:") && host.includes(".")) host = host.slice(7);
    const family = isIP(host);
    if (family === 0) return false;
    return this.#list.check(host, family === 4 ? "ipv4" : "ipv6");
  }
}
