/**
 * The router process.
 *
 * Started two ways (see RouterConfig.mode):
 * - spawn: the `saltare` command replaced itself with this process (exec), so the router is
 *   the top of the tree. It spawns the Python side (src/children.ts) and owns the signals:
 *   SIGTERM/SIGINT drain, a second one exits at once.
 * - attached: `saltare.run()` started the router as a child of the Python supervisor. stdout
 *   carries JSON events for it ("listening", "ready"); stdin is a pipe from it: the line
 *   "drain" starts a graceful stop and EOF means the supervisor is gone (exit at once, no
 *   orphans).
 */
import { lstatSync, mkdtempSync, rmSync, unlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PythonChild } from "./children.ts";
import { type ConfigError, parseConfig, type RouterConfig } from "./config.ts";
import { log, setLogFormat, setLogLevel } from "./log.ts";
import { createObservers } from "./observe/endpoints.ts";
import { watchSources } from "./reloader.ts";
import {
  type ClientConnection,
  listen,
  type ServerContext,
  SWEEP_INTERVAL_MS,
  sweepDeadlines,
} from "./server.ts";
import { WorkerPool } from "./workers.ts";

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
  delete process.env.SALTARE_ROUTER_CONFIG;
  setLogLevel(config.log_level);
  setLogFormat(config.log_format);
  const spawnMode = config.mode === "spawn";
  const emit = (name: string, fields: Record<string, unknown> = {}) => {
    if (!spawnMode) process.stdout.write(`${JSON.stringify({ event: name, ...fields })}\n`);
  };

  let workdir: string | null = null;
  if (config.worker_socket === null) {
    // A private directory (mode 0700) keeps other users away from the worker socket.
    workdir = mkdtempSync(join(tmpdir(), "saltare-"));
    config.worker_socket = join(workdir, "workers.sock");
  }
  const pool = new WorkerPool({
    workers: config.workers,
    maxRequests: config.max_requests,
    maxRequestsJitter: config.max_requests_jitter,
    maxWorkerMemoryMiB: config.max_worker_memory,
    drainTimeoutMs: config.shutdown_timeout * 1000,
  });
  pool.listen(config.worker_socket);

  const connections = new Set<ClientConnection>();
  let stopping = false;
  /** The Python process whose workers serve (spawn mode). */
  let child: PythonChild | null = null;
  /** A reload in progress: the new Python process, until all its workers are ready. */
  let candidate: PythonChild | null = null;
  /** Replaced Python processes still finishing their requests. */
  const retired = new Set<PythonChild>();
  let ctx: ServerContext;
  let stopListening: () => void;

  const cleanup = () => {
    pool.close();
    // An inherited socket's file belongs to whoever created it (systemd removes its own).
    if (config.uds !== null && config.fd === null) removeStaleSocket(config.uds);
    if (workdir !== null) rmSync(workdir, { recursive: true, force: true });
  };
  const exit = (code: number): never => {
    child?.kill();
    candidate?.kill();
    for (const old of retired) old.kill();
    cleanup();
    process.exit(code);
  };

  try {
    if (config.uds !== null && config.fd === null) removeStaleSocket(config.uds);
    const observers = createObservers(config, pool, () => connections.size);
    const started = listen({
      config,
      pool,
      scheme: "http",
      connections,
      draining: false,
      observers,
      observing: observers.metrics !== null || observers.accessLog !== null,
      onConnectionClosed: () => {
        if (stopping && connections.size === 0) pool.shutdown();
      },
    });
    ctx = started.ctx;
    const { listener, address } = started;
    stopListening = () => listener.stop(false);
    emit("listening", { address });
    pool.onFirstReady = () => {
      child?.markReady();
      const workers = config.workers > 1 ? ` with ${config.workers} workers` : "";
      log.info(`saltare${workers} listening on ${address} (press CTRL+C to quit)`);
      emit("ready");
    };
  } catch (err) {
    log.error(describeListenError(config, err));
    cleanup();
    return 1;
  }

  // One timer for every connection's deadline (see Http1Connection.checkDeadline).
  setInterval(() => {
    if (connections.size > 0) sweepDeadlines(connections);
  }, SWEEP_INTERVAL_MS).unref();

  let allClosed = false;
  const finish = () => {
    if (!allClosed || (child?.running ?? false)) return;
    log.info("Finished server process");
    exit(0);
  };
  pool.onAllClosed = () => {
    allClosed = true;
    finish();
  };

  const makeChild = (generation: number): PythonChild => {
    const env: Record<string, string | undefined> = { ...process.env };
    // Socket activation was meant for this process, not for the Python side.
    delete env.LISTEN_FDS;
    delete env.LISTEN_PID;
    delete env.LISTEN_FDNAMES;
    env.SALTARE_CHILD_CONFIG = JSON.stringify({ ...config, generation });
    if (config.python_path !== null) {
      env.PYTHONPATH = [config.python_path, env.PYTHONPATH].filter(Boolean).join(":");
    }
    const spec = {
      python: config.python ?? "python3",
      env,
      zygote: config.workers > 1,
      generation,
    };
    const made: PythonChild = new PythonChild(spec, (code) => {
      if (made === candidate) {
        // The new code cannot start (import error, failed startup, crash loop): keep serving
        // with what runs now. The child's own output above says why.
        log.error(`Reload failed (status ${code}); the previous workers keep serving`);
        candidate = null;
        made.kill();
        pool.abandonGeneration(generation);
      } else if (made === child) {
        exit(code);
      }
    });
    made.onExited = () => {
      retired.delete(made);
      finish();
    };
    return made;
  };

  /**
   * Start a fresh Python process (a new generation: the app is imported anew, so code changes
   * take effect); its workers take over once all of them are ready (WorkerPool), and the
   * current ones are drained. SIGHUP, --reload and recycling a lone worker end up here.
   */
  const reload = (why: string) => {
    if (!spawnMode) {
      log.warning(
        `Reload (${why}) is only available when saltare is started from the command line`,
      );
      return;
    }
    if (stopping || candidate !== null) return;
    const generation = pool.generation + 1;
    log.info(`Reloading (${why}): starting generation ${generation}`);
    candidate = makeChild(generation);
    candidate.start();
  };

  pool.onGenerationReady = (generation) => {
    if (candidate === null || candidate.generation !== generation) return;
    const old = child;
    child = candidate;
    candidate = null;
    child.markReady();
    if (old !== null) {
      retired.add(old);
      old.stop();
    }
  };
  pool.onRecycle = (link, why) => {
    // A lone worker has no zygote to fork its replacement: a new Python process starts first,
    // so that requests never wait for a worker. Forked workers are replaced in place.
    if (spawnMode && config.workers === 1) reload(`recycling the worker: ${why}`);
    else pool.recycleInPlace(link, why);
  };

  if (spawnMode) {
    child = makeChild(0);
    child.start();
    process.on("SIGHUP", () => reload("SIGHUP"));
    if (config.reload) watchSources(config.app_dir, (path) => reload(`${path} changed`));
  }

  let signals = 0;
  const drain = () => {
    if (stopping) return;
    stopping = true;
    ctx.draining = true;
    stopListening();
    log.info("Shutting down: waiting for in-flight requests to finish");
    child?.stop();
    for (const conn of connections) conn.closeIfIdle();
    if (connections.size === 0) {
      pool.shutdown();
      return;
    }
    // In-flight requests get shutdown_timeout; then the workers are told to stop anyway.
    setTimeout(() => {
      if (connections.size > 0) {
        log.warning(`${connections.size} connection(s) still busy after the shutdown timeout`);
        for (const conn of [...connections]) conn.abandon();
      }
      pool.shutdown();
    }, config.shutdown_timeout * 1000).unref();
  };
  const onSignal = () => {
    signals++;
    if (signals >= 2) {
      log.warning("Second signal: stopping at once");
      exit(1);
    }
    drain();
  };

  if (spawnMode) {
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
  } else {
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
  }
  return -1;
}

const code = main();
if (code >= 0) process.exit(code);
