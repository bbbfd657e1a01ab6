/**
 * The operational options wired together: metrics counters, the access log, the paths the
 * router answers itself (--metrics-path, --health-path) and the proxy trust list.
 */
import type { RouterConfig } from "../config.ts";
import { TrustList } from "../proxy/trust.ts";
import type { LocalAnswer, LocalEndpoints, Observers } from "../server.ts";
import type { WorkerPool } from "../workers.ts";
import { AccessLog } from "./access-log.ts";
import { CONTENT_TYPE, Metrics } from "./metrics.ts";
import { MemorySampler } from "./process-memory.ts";

const TEXT = "text/plain; charset=utf-8";

export function createObservers(
  config: RouterConfig,
  pool: WorkerPool,
  openConnections: () => number,
): Observers {
  const metrics = config.metrics_path !== null ? new Metrics() : null;
  if (metrics !== null) pool.onWorkerGone = () => metrics.workerRestarts++;
  const useTrust = config.proxy_headers || config.proxy_protocol;
  const endpoints = localEndpoints(config, pool, metrics, openConnections);
  return {
    metrics,
    accessLog: config.access_log ? new AccessLog(config.access_log_exclude) : null,
    endpoints,
    trust: useTrust ? new TrustList(config.forwarded_allow_ips) : null,
    proxyHeaders: config.proxy_headers,
    proxyProtocol: config.proxy_protocol,
  };
}

function localEndpoints(
  config: RouterConfig,
  pool: WorkerPool,
  metrics: Metrics | null,
  openConnections: () => number,
): LocalEndpoints | null {
  const metricsPath = config.metrics_path;
  const healthPath = config.health_path;
  if (metricsPath === null && healthPath === null) return null;
  // The tree's top: the router itself from the command line, the Python supervisor when
  // saltare.run() started the router.
  const sampler = new MemorySampler(config.mode === "spawn" ? process.pid : process.ppid);
  return {
    has: (path) => path === metricsPath || path === healthPath,
    answer(path, draining): LocalAnswer {
      if (path === metricsPath && metrics !== null) {
        const body = metrics.render({
          openConnections: openConnections(),
          readyWorkers: pool.readyCount,
          workers: pool.workers(),
          routerPid: process.pid,
          memory: sampler.sample(),
        });
        return { status: 200, headers: ["content-type", CONTENT_TYPE], body };
      }
      // Health: can a request be dispatched now?
      if (draining) return { status: 503, headers: ["content-type", TEXT], body: "draining\n" };
      if (pool.readyCount === 0) {
        return { status: 503, headers: ["content-type", TEXT], body: "no worker ready\n" };
      }
      return { status: 200, headers: ["content-type", TEXT], body: "ok\n" };
    },
  };
}
