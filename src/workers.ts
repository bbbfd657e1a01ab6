/**
 * The workers as the router sees them: the Unix socket they connect to, which of them are
 * ready, and the dispatch policy (fewest streams in flight, not round robin).
 */
import { unlinkSync } from "node:fs";
import type { Socket, UnixSocketListener } from "bun";
import { type LinkEvents, WorkerLink } from "./bridge/worker-link.ts";
import { log } from "./log.ts";

/** A request waiting for a worker (none is ready yet, or all restarted at once). */
export type Waiter = (link: WorkerLink | null) => void;

export class WorkerPool implements LinkEvents {
  readonly #expected: number;
  readonly #links = new Set<WorkerLink>();
  #ready: WorkerLink[] = [];
  #waiting: Waiter[] = [];
  #listener: UnixSocketListener<WorkerLink> | null = null;
  #everReady = false;
  #stopping = false;
  onFirstReady: (() => void) | null = null;
  onAllClosed: (() => void) | null = null;
  /** A worker went away while the server was running (it is being replaced). */
  onWorkerGone: ((link: WorkerLink) => void) | null = null;

  constructor(expected: number) {
    this.#expected = expected;
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

  ready(link: WorkerLink): void {
    if (this.#stopping) {
      link.shutdown();
      return;
    }
    this.#ready.push(link);
    log.debug(`Worker ${link.slot} [${link.pid}] ready`);
    if (!this.#everReady && this.#ready.length >= this.#expected) {
      this.#everReady = true;
      this.onFirstReady?.();
    }
    this.#wakeWaiters();
  }

  writable(_link: WorkerLink): void {
    if (!this.#stopping) this.#wakeWaiters();
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
    if (!this.#stopping && link.slot >= 0) {
      log.debug(`Worker ${link.slot} [${link.pid}] disconnected`);
      this.onWorkerGone?.(link);
    }
    if (this.#stopping && this.#links.size === 0) this.onAllClosed?.();
  }

  /** Send SHUTDOWN to every worker; onAllClosed fires when the last one has gone. */
  shutdown(): void {
    this.#stopping = true;
    this.#ready = [];
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
