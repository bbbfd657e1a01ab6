/**
 * Server-wide counters and their Prometheus text exposition (format 0.0.4), answered by the
 * router at --metrics-path without involving a worker. The counters are plain numbers bumped
 * by the connection code (src/server.ts, src/websocket.ts) only when metrics are on.
 */
import type { MemorySample } from "./process-memory.ts";

/** Upper bounds (seconds) of the request duration histogram. */
export const DURATION_BUCKETS = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
] as const;

export const CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** What the metrics page needs from the rest of the router at scrape time. */
export interface MetricsView {
  openConnections: number;
  readyWorkers: number;
  workers: { slot: number; pid: number }[];
  routerPid: number;
  memory: MemorySample | null;
}

export class Metrics {
  /** HTTP requests received and not yet answered (WebSockets count once accepted: below). */
  inFlight = 0;
  webSockets = 0;
  bytesSent = 0;
  bytesReceived = 0;
  workerRestarts = 0;
  /** Responses by status class: index 1 = 1xx … 5 = 5xx. */
  readonly responses = [0, 0, 0, 0, 0, 0];
  /** Non-cumulative bucket counts; the last slot is +Inf. */
  readonly buckets: number[] = new Array(DURATION_BUCKETS.length + 1).fill(0);
  durationSum = 0;
  durationCount = 0;

  /** A response was completed (or cut off) after `seconds`. */
  observe(status: number, seconds: number): void {
    const cls = (status / 100) | 0;
    if (cls >= 1 && cls <= 5) this.responses[cls] = (this.responses[cls] as number) + 1;
    let i = 0;
    while (i < DURATION_BUCKETS.length && seconds > (DURATION_BUCKETS[i] as number)) i++;
    this.buckets[i] = (this.buckets[i] as number) + 1;
    this.durationSum += seconds;
    this.durationCount++;
  }

  render(view: MetricsView): string {
    const out: string[] = [];
    const metric = (name: string, type: string, help: string, samples: string[]) => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, ...samples);
    };
    metric("saltare_open_connections", "gauge", "Client connections open now.", [
      `saltare_open_connections ${view.openConnections}`,
    ]);
    metric("saltare_in_flight_requests", "gauge", "HTTP requests received and not yet answered.", [
      `saltare_in_flight_requests ${this.inFlight}`,
    ]);
    metric(
      "saltare_requests_total",
      "counter",
      "HTTP responses sent (or cut off after they started), by status class.",
      [1, 2, 3, 4, 5].map((c) => `saltare_requests_total{status="${c}xx"} ${this.responses[c]}`),
    );
    metric(
      "saltare_bytes_sent_total",
      "counter",
      "Bytes written to client sockets (HTTP and WebSocket).",
      [`saltare_bytes_sent_total ${this.bytesSent}`],
    );
    metric(
      "saltare_bytes_received_total",
      "counter",
      "Bytes read from client sockets (HTTP and WebSocket).",
      [`saltare_bytes_received_total ${this.bytesReceived}`],
    );
    metric("saltare_websocket_connections", "gauge", "Accepted WebSockets open now.", [
      `saltare_websocket_connections ${this.webSockets}`,
    ]);
    const buckets: string[] = [];
    let cumulative = 0;
    for (let i = 0; i <= DURATION_BUCKETS.length; i++) {
      cumulative += this.buckets[i] as number;
      const le = i < DURATION_BUCKETS.length ? String(DURATION_BUCKETS[i]) : "+Inf";
      buckets.push(`saltare_request_duration_seconds_bucket{le="${le}"} ${cumulative}`);
    }
    buckets.push(`saltare_request_duration_seconds_sum ${this.durationSum}`);
    buckets.push(`saltare_request_duration_seconds_count ${this.durationCount}`);
    metric(
      "saltare_request_duration_seconds",
      "histogram",
      "Time from a complete request head to the last response byte handed to the socket.",
      buckets,
    );
    metric("saltare_workers_ready", "gauge", "Workers ready to take requests.", [
      `saltare_workers_ready ${view.readyWorkers}`,
    ]);
    metric(
      "saltare_worker_restarts_total",
      "counter",
      "Workers that went away while the server was running (each is replaced).",
      [`saltare_worker_restarts_total ${this.workerRestarts}`],
    );
    const memory = view.memory;
    if (memory !== null) {
      const rss: string[] = [];
      const pss: string[] = [];
      for (const { slot, pid } of view.workers) {
        const mem = memory.byPid.get(pid);
        if (mem === undefined) continue;
        rss.push(`saltare_worker_resident_memory_bytes{worker="${slot}",pid="${pid}"} ${mem.rss}`);
        pss.push(
          `saltare_worker_proportional_memory_bytes{worker="${slot}",pid="${pid}"} ${mem.pss}`,
        );
      }
      metric(
        "saltare_worker_resident_memory_bytes",
        "gauge",
        "Resident memory (RSS) of each worker, shared pages counted in full.",
        rss,
      );
      metric(
        "saltare_worker_proportional_memory_bytes",
        "gauge",
        "Proportional memory (Pss) of each worker: shared pages divided among their users.",
        pss,
      );
      const router = memory.byPid.get(view.routerPid);
      if (router !== undefined) {
        metric(
          "saltare_router_resident_memory_bytes",
          "gauge",
          "Resident memory (RSS) of the router.",
          [`saltare_router_resident_memory_bytes ${router.rss}`],
        );
      }
      metric(
        "saltare_tree_proportional_memory_bytes",
        "gauge",
        "Pss summed over the whole process tree: what the server costs the machine.",
        [`saltare_tree_proportional_memory_bytes ${memory.treePss}`],
      );
      metric(
        "saltare_tree_resident_memory_bytes",
        "gauge",
        "RSS summed over the process tree (shared pages counted in every process using them).",
        [`saltare_tree_resident_memory_bytes ${memory.treeRss}`],
      );
    }
    out.push("");
    return out.join("\n");
  }
}
