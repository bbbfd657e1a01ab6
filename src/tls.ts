/**
 * TLS for the client listener: Bun's BoringSSL on the same `Bun.listen` sockets, so HTTP/1.1
 * and WebSockets run unchanged on top. The Python side has already checked that the files load
 * and fit together (python/saltare/_options.py), so errors here are not expected.
 */
import { readFileSync } from "node:fs";
import type { TLSOptions } from "bun";
import type { RouterConfig } from "./config.ts";

// BoringSSL's SSL_OP_NO_* bits (include/openssl/ssl.h), for the minimum version. TLS 1.0 and
// 1.1 are always off: RFC 8996 deprecates them.
const SSL_OP_NO_TLSv1 = 0x04000000;
const SSL_OP_NO_TLSv1_2 = 0x08000000;
const SSL_OP_NO_TLSv1_1 = 0x10000000;

/** ALPN protocol list in wire format (RFC 7301 §3.1): length-prefixed names, in preference order. */
function alpn(protocols: string[]): Buffer {
  return Buffer.from(protocols.map((p) => String.fromCharCode(p.length) + p).join(""), "latin1");
}

/** The `tls` option of Bun.listen for this configuration, or null when TLS is off. */
export function tlsOptions(config: RouterConfig, protocols: string[]): TLSOptions | null {
  if (config.ssl_certfile === null || config.ssl_keyfile === null) return null;
  let secureOptions = SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1;
  if (config.ssl_min_version === "1.3") secureOptions |= SSL_OP_NO_TLSv1_2;
  const options: TLSOptions = {
    cert: readFileSync(config.ssl_certfile, "utf8"),
    key: readFileSync(config.ssl_keyfile, "utf8"),
    secureOptions,
    ALPNProtocols: alpn(protocols),
    // Frees the TLS read/write buffers of idle connections (SSL_MODE_RELEASE_BUFFERS): memory
    // per idle connection is the point of this server; measured in docs/tls.md.
    lowMemoryMode: true,
  };
  if (config.ssl_keyfile_password !== null) options.passphrase = config.ssl_keyfile_password;
  if (config.ssl_ciphers !== null) options.ciphers = config.ssl_ciphers;
  if (config.ssl_ca_certs !== null) options.ca = readFileSync(config.ssl_ca_certs, "utf8");
  if (config.ssl_cert_reqs !== "none") {
    options.requestCert = true;
    // required: BoringSSL ends the handshake for a missing or unverifiable certificate.
    // optional: the handshake completes; the listener drops a connection whose certificate
    // was sent but does not verify (a client may still send none).
    options.rejectUnauthorized = config.ssl_cert_reqs === "required";
  }
  return options;
}

// IANA TLS version numbers (RFC 8446 §4.2.1) for the names Bun's getTLSVersion() returns.
const TLS_VERSIONS: Record<string, number> = { "TLSv1.2": 0x0303, "TLSv1.3": 0x0304 };

// IANA cipher suite numbers (TLS Cipher Suites registry) of what BoringSSL negotiates by default.
const CIPHER_SUITES: Record<string, number> = {
  TLS_AES_128_GCM_SHA256: 0x1301,
  TLS_AES_256_GCM_SHA384: 0x1302,
  TLS_CHACHA20_POLY1305_SHA256: 0x1303,
  TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256: 0xc02b,
  TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384: 0xc02c,
  TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256: 0xc02f,
  TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384: 0xc030,
  TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256: 0xcca8,
  TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256: 0xcca9,
  "ECDHE-ECDSA-AES128-GCM-SHA256": 0xc02b,
  "ECDHE-ECDSA-AES256-GCM-SHA384": 0xc02c,
  "ECDHE-RSA-AES128-GCM-SHA256": 0xc02f,
  "ECDHE-RSA-AES256-GCM-SHA384": 0xc030,
  "ECDHE-RSA-CHACHA20-POLY1305": 0xcca8,
  "ECDHE-ECDSA-CHACHA20-POLY1305": 0xcca9,
};

/** The subset of a Bun TLS socket this module reads. */
interface TlsSocket {
  getTLSVersion(): string;
  getCipher(): { name?: string; standardName?: string } | null;
  getPeerCertificate(): unknown;
  readonly authorized?: boolean;
  readonly authorizationError?: unknown;
}

function pem(der: Uint8Array): string {
  const b64 = Buffer.from(der).toString("base64");
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN CERTIFICATE-----\n${lines.join("\n")}\n-----END CERTIFICATE-----\n`;
}

/** RFC 4514 string of a certificate subject as Bun/Node give it ({CN: "...", O: "..."}). */
function rfc4514(subject: Record<string, unknown>): string {
  const escapeValue = (v: string) =>
    v.replace(/([,+"\\<>;=])/g, "\\$1").replace(/^([ #])|( )$/g, "\\$1$2");
  const parts: string[] = [];
  for (const [key, value] of Object.entries(subject)) {
    for (const v of Array.isArray(value) ? value : [value])
      parts.push(`${key}=${escapeValue(String(v))}`);
  }
  // RFC 4514 §2.1: the most specific RDN first, the reverse of the certificate's order.
  return parts.reverse().join(",");
}

/** UTF-8 text as a binary string (one char per byte), as head fields are carried. */
function binary(text: string): string {
  return Buffer.from(text, "utf8").toString("latin1");
}

/**
 * The TLS facts of a connection for the ASGI `tls` scope extension, as request-head pairs
 * whose names start with ":" (docs/protocol.md, "Request head"): computed once per
 * connection by the caller and appended to every request's headers.
 */
export function tlsHeadPairs(socket: TlsSocket): string[] {
  const out: string[] = [];
  const version = TLS_VERSIONS[socket.getTLSVersion()];
  if (version !== undefined) out.push(":tls-version", String(version));
  const cipher = socket.getCipher();
  const suite = CIPHER_SUITES[cipher?.standardName ?? ""] ?? CIPHER_SUITES[cipher?.name ?? ""];
  if (suite !== undefined) out.push(":tls-cipher", String(suite));
  type Peer = { raw?: Uint8Array; subject?: Record<string, unknown> };
  let peer: Peer | null;
  try {
    peer = (socket.getPeerCertificate() as Peer | null) ?? null;
  } catch {
    peer = null;
  }
  if (peer !== null && peer.raw !== undefined) {
    out.push(":tls-client-cert", pem(peer.raw));
    if (peer.subject !== undefined) out.push(":tls-client-name", binary(rfc4514(peer.subject)));
    if (socket.authorized === false && socket.authorizationError) {
      out.push(":tls-client-error", binary(String(socket.authorizationError)));
    }
  }
  return out;
}
