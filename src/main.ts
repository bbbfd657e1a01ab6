/**
 * The router process, started by the Python supervisor (python/saltare/_supervisor.py).
 *
 * stdout carries one JSON event per line for the supervisor ("listening", "ready"); logs go to
 * stderr. stdin is a pipe from the supervisor: the line "drain" starts a graceful stop, and EOF
 * means the supervisor is gone, so the router exits at once (no orphans).
 */
import { lstatSync, unlinkSync } from "node:fs";
import { type ConfigError, parseConfig, type RouterConfig } from "./config.ts";
import { log, setLogLevel } from "./log.ts";
import { type Http1Connection, listen, type ServerContext } from "./server.ts";
import { WorkerPool } from "./workers.ts";

function event(name: string, fields: Record<string, unknown> = {}): void {
  process.stdout.write(`${JSON.stringify({ event: name, ...fields })}\n`);
}

function removeStaleSocket(path: string): void {
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
  } catch {
    // does not exist
  }
}

function describeListenError(config: RouterConfig, err: unknown): string {
  const code = (err as { code?: string }).code ?? "";
  const where = config.uds !== null ? config.uds : `${config.host}:${config.port}`;
  if (code === "EADDRINUSE") return `cannot listen on ${where}: address already in use`;
  if (code === "EACCES") return `cannot listen on ${where}: permission denied`;
  if (code === "EADDRNOTAVAIL") return `cannot listen on ${where}: address not available`;
  return `cannot listen on ${where}: ${err instanceof Error ? err.message : String(err)}`;
}

function main(): number {
  let config: RouterConfig;
  try {
    config = parseConfig(process.env.SALTARE_ROUTER_CONFIG);
  } catch (err) {
    log.error((err as ConfigError).message);
    return 2;
  }
  setLogLevel(config.log_level);
  const pool = new WorkerPool(config.workers);
  pool.listen(config.worker_socket);

  const connections = new Set<Http1Connection>();
  let stopping = false;
  let ctx: ServerContext;
  let stopListening: () => void;
  try {
    if (config.uds !== null) removeStaleSocket(config.uds);
    const started = listen({
      config,
      pool,
      scheme: "http",
      connections,
      draining: false,
      onConnectionClosed: () => {
        if (stopping && connections.size === 0) pool.shutdown();
      },
    });
    ctx = started.ctx;
    const { listener, address } = started;
    stopListening = () => listener.stop(false);
    event("listening", { address });
    pool.onFirstReady = () => {
      log.info(`saltare ${config.workers > 1 ? `with ${config.workers} workers ` : ""}listening on ${address} (press CTRL+C to quit)`);
      event("ready");
    };
  } catch (err) {
    log.error(describeListenError(config, err));
    pool.close();
    return 1;
  }

  const exit = (code: number) => {
    pool.close();
    if (config.uds !== null) removeStaleSocket(config.uds);
    process.exit(code);
  };
  pool.onAllClosed = () => {
    log.info("Finished server process");
    exit(0);
  };

  const drain = () => {
    if (stopping) return;
    stopping = true;
    ctx.draining = true;
    stopListening();
    log.info("Waiting for in-flight requests to finish");
    for (const conn of connections) conn.closeIfIdle();
    if (connections.size === 0) {
      pool.shutdown();
      return;
    }
    // In-flight requests get shutdown_timeout; then their connections are cut.
    setTimeout(() => {
      if (connections.size > 0) {
        log.warning(`Cancelling ${connections.size} connection(s) still open after the shutdown timeout`);
      }
      for (const conn of connections) conn.closeIfIdle();
      pool.shutdown();
    }, config.shutdown_timeout * 1000).unref();
  };

  process.on("SIGTERM", drain);
  // Ctrl-C reaches every process of the terminal's group; the supervisor turns it into "drain".
  process.on("SIGINT", () => {});
  process.stdin.on("data", (chunk: Buffer) => {
    if (chunk.toString("latin1").includes("drain")) drain();
  });
  process.stdin.on("end", () => {
    log.warning("Supervisor went away; exiting");
    exit(1);
  });
  return -1;
}

const code = main();
if (code >= 0) process.exit(code);
