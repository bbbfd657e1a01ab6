/**
 * The workers as the router sees them: the Unix socket they connect to, which of them are
 * ready, the dispatch policy (fewest streams in flight, not round robin), and their life
 * cycle: recycling (--max-requests, --max-worker-memory) and reload generations.
 *
 * Generations: every Python process the router starts gets a generation number (0 at start,
 * +1 per reload) that its workers repeat in HELLO. Dispatch goes to one generation only; a new
 * one's workers wait until all of them are ready, then take over at once, and the old ones are
 * drained and stopped. If the new generation never gets ready, the old one keeps serving.
 */
import { readFileSync, unlinkSync } from "node:fs";
import type { Socket, UnixSocketListener } from "bun";
import { ShutdownReason } from "./bridge/codec.ts";
import { type LinkEvents, WorkerLink } from "./bridge/worker-link.ts";
import { log } from "./log.ts";

/** A request waiting for a worker (none is ready yet, or all restarted at once). */
export type Waiter = (link: WorkerLink | null) => void;

export interface PoolOptions {
  /** Workers per generation. */
  workers: number;
  /** Recycle a worker after this many requests and client WebSocket messages (0 = never). */
  maxRequests: number;
  /** A random 0..jitter is added to maxRequests per worker, so they do not recycle together. */
  maxRequestsJitter: number;
  /** Recycle a worker whose proportional memory (Pss) is above this many MiB (0 = never). */
  maxWorkerMemoryMiB: number;
  /** How long a retiring worker may take to drain before it is told to stop regardless. */
  drainTimeoutMs: number;
}

/** How often worker memory is sampled when --max-worker-memory is set. */
const MEMORY_SAMPLE_MS = 5000;

/** Pss of a process in KiB from /proc (Linux), or -1 if it cannot be read. */
export function readPssKiB(pid: number): number {
  try {
    const text = readFileSync(`/proc/${pid}/smaps_rollup`, "latin1");
    const match = /^Pss:\s+(\d+) kB/m.exec(text);
    return match ? Number(match[1]) : -1;
  } catch {
    return -1;
  }
}

export class WorkerPool implements LinkEvents {
  readonly #options: PoolOptions;
  readonly #links = new Set<WorkerLink>();
  #ready: WorkerLink[] = [];
  /** Ready workers of a generation newer than the serving one, waiting for their siblings. */
  #pending: WorkerLink[] = [];
  #generation = 0;
  #waiting: Waiter[] = [];
  #listener: UnixSocketListener<WorkerLink> | null = null;
  #everReady = false;
  #stopping = false;
  /** Per link: the use count at which it is recycled (max-requests plus its jitter). */
  readonly #recycleAt = new WeakMap<WorkerLink, number>();
  #memoryTimer: ReturnType<typeof setInterval> | null = null;
  onFirstReady: (() => void) | null = null;
  onAllClosed: (() => void) | null = null;
  /** A worker must be recycled; the owner decides how (see main.ts). Default: in place. */
  onRecycle: ((link: WorkerLink, why: string) => void) | null = null;
  /** All workers of a new generation are ready and now serve. */
  onGenerationReady: ((generation: number) => void) | null = null;
  /** A worker went away unexpectedly while the server was running (not a recycle). */
  onWorkerGone: ((link: WorkerLink) => void) | null = null;

  constructor(options: PoolOptions) {
    this.#options = options;
    if (options.maxWorkerMemoryMiB > 0) {
      this.#memoryTimer = setInterval(() => this.#checkMemory(), MEMORY_SAMPLE_MS);
      this.#memoryTimer.unref();
    }
  }

  get generation(): number {
    return this.#generation;
  }

  listen(path: string): void {
    try {
      unlinkSync(path);
    } catch {
      // not there: fine
    }
    this.#listener = Bun.listen<WorkerLink>({
      unix: path,
      socket: {
        open: (socket: Socket<WorkerLink>) => {
          const link = new WorkerLink(socket, this);
          socket.data = link;
          this.#links.add(link);
        },
        data: (socket, data) => socket.data.onData(data),
        drain: (socket) => socket.data.onDrain(),
        close: (socket) => socket.data?.onClose(),
        error: (socket, error) => {
          log.debug(`worker socket error: ${error.message}`);
          socket.data?.onClose();
        },
      },
    });
  }

  /**
   * The ready, uncongested worker with the fewest requests in flight, or null. Open WebSockets
   * break ties: an idle WebSocket costs no work now, but it is pinned to its worker, so new
   * ones are spread over the workers instead of all landing on the first idle one.
   */
  pick(): WorkerLink | null {
    const ready = this.#ready;
    let best: WorkerLink | null = null;
    for (let i = 0; i < ready.length; i++) {
      const link = ready[i] as WorkerLink;
      if (link.congested) continue;
      if (
        best === null ||
        link.inFlight < best.inFlight ||
        (link.inFlight === best.inFlight && link.webSockets < best.webSockets)
      ) {
        best = link;
        if (link.inFlight === 0 && link.webSockets === 0) break;
      }
    }
    return best;
  }

  /** Workers ready to take requests now. */
  get readyCount(): number {
    return this.#ready.length;
  }

  /** Slot and pid of every connected worker that said HELLO. */
  workers(): { slot: number; pid: number }[] {
    const result: { slot: number; pid: number }[] = [];
    for (const link of this.#links)
      if (link.slot >= 0) result.push({ slot: link.slot, pid: link.pid });
    return result;
  }

  /** Call `waiter` with a worker as soon as one is ready (or with null when stopping). */
  wait(waiter: Waiter): void {
    this.#waiting.push(waiter);
  }

  /** Every worker the router knows, ready or not (for metrics and logs). */
  get links(): ReadonlySet<WorkerLink> {
    return this.#links;
  }

  // -- LinkEvents -------------------------------------------------------------------------------

  ready(link: WorkerLink): void {
    if (this.#stopping) {
      link.shutdown();
      return;
    }
    const { maxRequests, maxRequestsJitter } = this.#options;
    if (maxRequests > 0) {
      const jitter = Math.floor(Math.random() * (maxRequestsJitter + 1));
      this.#recycleAt.set(link, maxRequests + jitter);
    }
    if (link.generation > this.#generation) {
      this.#pending.push(link);
      log.debug(`Worker ${link.slot} [${link.pid}] of generation ${link.generation} ready`);
      const siblings = this.#pending.filter((l) => l.generation === link.generation);
      if (siblings.length >= this.#options.workers) this.#promote(link.generation);
      return;
    }
    if (link.generation < this.#generation) {
      // A late worker of a generation that was replaced meanwhile.
      link.retire();
      return;
    }
    this.#ready.push(link);
    log.debug(`Worker ${link.slot} [${link.pid}] ready`);
    if (!this.#everReady && this.#ready.length >= this.#options.workers) {
      this.#everReady = true;
      this.onFirstReady?.();
    }
    this.#wakeWaiters();
  }

  /** A new generation is complete: it serves from now on, the previous one drains. */
  #promote(generation: number): void {
    const old = this.#ready;
    this.#ready = this.#pending.filter((l) => l.generation === generation);
    this.#pending = this.#pending.filter((l) => l.generation > generation);
    this.#generation = generation;
    for (const link of this.#links) {
      if (link.generation < generation) this.#retire(link, ShutdownReason.STOP);
    }
    log.info(
      `Reload complete: generation ${generation} serves with ${this.#ready.length} worker(s); ` +
        `${old.length} previous worker(s) draining`,
    );
    this.#everReady = true;
    this.onGenerationReady?.(generation);
    this.#wakeWaiters();
  }

  /** Forget the workers of a generation that failed to start (its process is gone). */
  abandonGeneration(generation: number): void {
    this.#pending = this.#pending.filter((l) => l.generation !== generation);
    for (const link of this.#links) {
      if (link.generation === generation && !this.#ready.includes(link)) link.shutdown();
    }
  }

  writable(_link: WorkerLink): void {
    if (!this.#stopping) this.#wakeWaiters();
  }

  used(link: WorkerLink): void {
    const at = this.#recycleAt.get(link);
    if (at !== undefined && link.uses >= at && !link.retiring) {
      this.#recycleAt.delete(link);
      this.#recycle(link, `served ${link.uses} requests and messages (--max-requests)`);
    }
  }

  drained(link: WorkerLink): void {
    const reason = this.#retireReason.get(link) ?? ShutdownReason.STOP;
    link.shutdown(reason);
  }

  readonly #retireReason = new WeakMap<WorkerLink, number>();

  #recycle(link: WorkerLink, why: string): void {
    if (this.#stopping || link.retiring) return;
    if (this.onRecycle !== null) this.onRecycle(link, why);
    else this.recycleInPlace(link, why);
  }

  /**
   * Drain the worker and stop it with reason "recycle": its supervisor forks a fresh one into
   * the same slot. Meanwhile the other workers (or, with one worker, the waiting queue) take
   * the requests.
   */
  recycleInPlace(link: WorkerLink, why: string): void {
    log.info(`Recycling worker ${link.slot} [${link.pid}]: ${why}`);
    this.#retire(link, ShutdownReason.RECYCLE);
  }

  #retire(link: WorkerLink, reason: number): void {
    if (link.retiring) return;
    this.#retireReason.set(link, reason);
    this.#ready = this.#ready.filter((l) => l !== link);
    link.retire();
    // A stream that never ends (a stuck request) must not keep the old worker forever.
    setTimeout(() => {
      if (!link.closed) link.shutdown(reason);
    }, this.#options.drainTimeoutMs).unref();
  }

  #checkMemory(): void {
    const limitKiB = this.#options.maxWorkerMemoryMiB * 1024;
    for (const link of this.#ready) {
      if (link.retiring || link.pid === 0) continue;
      const pss = readPssKiB(link.pid);
      if (pss > limitKiB) {
        this.#recycle(
          link,
          `memory ${(pss / 1024).toFixed(1)} MiB over ${this.#options.maxWorkerMemoryMiB} MiB (--max-worker-memory)`,
        );
      }
    }
  }

  /** Hand waiting requests to workers while one can take them; the rest keep waiting. */
  #wakeWaiters(): void {
    while (this.#waiting.length > 0) {
      const link = this.pick();
      if (link === null) return;
      const waiter = this.#waiting.shift() as Waiter;
      waiter(link);
    }
  }

  closed(link: WorkerLink): void {
    this.#links.delete(link);
    this.#ready = this.#ready.filter((l) => l !== link);
    this.#pending = this.#pending.filter((l) => l !== link);
    if (!this.#stopping && link.slot >= 0 && !link.retiring) {
      log.debug(`Worker ${link.slot} [${link.pid}] disconnected`);
      this.onWorkerGone?.(link);
    }
    if (this.#stopping && this.#links.size === 0) this.onAllClosed?.();
  }

  /** Send SHUTDOWN to every worker; onAllClosed fires when the last one has gone. */
  shutdown(): void {
    this.#stopping = true;
    if (this.#memoryTimer !== null) clearInterval(this.#memoryTimer);
    this.#ready = [];
    this.#pending = [];
    const waiting = this.#waiting;
    this.#waiting = [];
    for (const waiter of waiting) waiter(null);
    for (const link of this.#links) link.shutdown();
    if (this.#links.size === 0) this.onAllClosed?.();
  }

  close(): void {
    this.#listener?.stop(true);
    this.#listener = null;
  }
}
