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
