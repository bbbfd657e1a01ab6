/**
 * The router's configuration. The Python side owns the option table (python/saltare/_options.py)
 * and validates every value; the router receives the result as JSON in SALTARE_ROUTER_CONFIG
 * and only checks that the fields it needs are present with the right types.
 */
export interface RouterConfig {
  host: string;
  port: number;
  uds: string | null;
  workers: number;
  max_requests: number;
  max_requests_jitter: number;
  max_worker_memory: number;
  reload: boolean;
  app_dir: string;
  /** Reload generation of the Python process this config is for (router to child). */
  generation?: number;
  /** Unix socket the workers connect to; in spawn mode the router picks one. */
  worker_socket: string | null;
  log_level: "critical" | "error" | "warning" | "info" | "debug" | "trace";
  ssl_certfile: string | null;
  ssl_keyfile: string | null;
  ssl_keyfile_password: string | null;
  ssl_ca_certs: string | null;
  ssl_cert_reqs: "none" | "optional" | "required";
  ssl_min_version: "1.2" | "1.3";
  ssl_ciphers: string | null;
  http2: boolean;
  http2_max_concurrent_streams: number;
  keep_alive_timeout: number;
  header_timeout: number;
  body_timeout: number;
  write_timeout: number;
  max_request_body: number;
  max_concurrent_connections: number;
  max_keepalive_requests: number;
  ws_max_size: number;
  ws_keepalive_timeout: number;
  ws_per_message_deflate: boolean;
  shutdown_timeout: number;
  /** Octal mode for the --uds socket file (null: whatever the umask gives). */
  uds_permissions: number | null;
  /** An inherited listening socket to serve on instead of binding host/port or uds. */
  fd: number | null;
  /** What the Python side found `fd` to be: its family and local address. */
  fd_family: "unix" | "inet" | null;
  fd_address: string | null;
  fd_port: number | null;
  log_format: "text" | "json";
  access_log: boolean;
  access_log_exclude: string[];
  metrics_path: string | null;
  health_path: string | null;
  proxy_headers: boolean;
  forwarded_allow_ips: string;
  proxy_protocol: boolean;
  /**
   * "spawn": the router is the top process and starts the Python side itself (command line);
   * "attached": a Python supervisor started the router (saltare.run) and owns the workers.
   */
  mode: "spawn" | "attached";
  /** spawn mode: interpreter for the Python side, and where the saltare package lives. */
  python: string | null;
  python_path: string | null;
}

type FieldKind = "string" | "number" | "boolean" | "string?" | "number?" | "string[]";

const FIELDS: Record<Exclude<keyof RouterConfig, "generation">, FieldKind> = {
  host: "string",
  port: "number",
  uds: "string?",
  workers: "number",
  max_requests: "number",
  max_requests_jitter: "number",
  max_worker_memory: "number",
  reload: "boolean",
  app_dir: "string",
  worker_socket: "string?",
  log_level: "string",
  ssl_certfile: "string?",
  ssl_keyfile: "string?",
  ssl_keyfile_password: "string?",
  ssl_ca_certs: "string?",
  ssl_cert_reqs: "string",
  ssl_min_version: "string",
  ssl_ciphers: "string?",
  http2: "boolean",
  http2_max_concurrent_streams: "number",
  keep_alive_timeout: "number",
  header_timeout: "number",
  body_timeout: "number",
  write_timeout: "number",
  max_request_body: "number",
  max_concurrent_connections: "number",
  max_keepalive_requests: "number",
  ws_max_size: "number",
  ws_keepalive_timeout: "number",
  ws_per_message_deflate: "boolean",
  shutdown_timeout: "number",
  uds_permissions: "number?",
  fd: "number?",
  fd_family: "string?",
  fd_address: "string?",
  fd_port: "number?",
  log_format: "string",
  access_log: "boolean",
  access_log_exclude: "string[]",
  metrics_path: "string?",
  health_path: "string?",
  proxy_headers: "boolean",
  forwarded_allow_ips: "string",
  proxy_protocol: "boolean",
  mode: "string",
  python: "string?",
  python_path: "string?",
};

export class ConfigError extends Error {
  readonly code = "BAD_ROUTER_CONFIG";
}

/** Parse and shape-check the JSON handed over by the supervisor. */
export function parseConfig(json: string | undefined): RouterConfig {
  if (!json) {
    throw new ConfigError("SALTARE_ROUTER_CONFIG is not set: start saltare through its CLI");
  }
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch {
    throw new ConfigError("SALTARE_ROUTER_CONFIG is not valid JSON");
  }
  if (typeof raw !== "object" || raw === null) {
    throw new ConfigError("SALTARE_ROUTER_CONFIG must be a JSON object");
  }
  const obj = raw as Record<string, unknown>;
  for (const [name, kind] of Object.entries(FIELDS)) {
    const value = obj[name];
    let ok: boolean;
    if (kind === "string?" || kind === "number?") {
      ok = value === null || value === undefined || typeof value === kind.slice(0, -1);
      obj[name] = value ?? null;
    } else if (kind === "string[]") {
      ok = Array.isArray(value) && value.every((item) => typeof item === "string");
    } else {
      ok = typeof value === kind;
    }
    if (!ok) {
      throw new ConfigError(`router config field ${name} must be ${kind}, got ${typeof value}`);
    }
  }
  return obj as unknown as RouterConfig;
}
