/**
 * The Python side, when the router is the top process (the `saltare` command line): the
 * router spawns one Python child that either is the only worker (workers = 1) or the zygote
 * that forks the workers (python/saltare/_child.py). A child that dies is started again;
 * one that cannot start stops the router with the child's exit status.
 */
import type { Subprocess } from "bun";
import { log } from "./log.ts";

/** Exit statuses of python/saltare/_child.py. */
const EXIT_IMPORT_FAILED = 1;
const EXIT_STARTUP_FAILED = 3;
const EXIT_CRASH_LOOP = 4;
const CRASH_LIMIT = 5;
const CRASH_WINDOW_MS = 10_000;

export interface ChildSpec {
  python: string;
  env: Record<string, string | undefined>;
  /** The child is a zygote (several workers): SIGTERM tells it to stop replacing them. */
  zygote: boolean;
  /** Reload generation (0 = the first start); its workers say it in HELLO. */
  generation: number;
}

export class PythonChild {
  readonly #spec: ChildSpec;
  readonly #onFatal: (code: number) => void;
  #proc: Subprocess | null = null;
  #stopping = false;
  #everReady = false;
  #deaths: number[] = [];
  onExited: (() => void) | null = null;

  constructor(spec: ChildSpec, onFatal: (code: number) => void) {
    this.#spec = spec;
    this.#onFatal = onFatal;
  }

  get running(): boolean {
    return this.#proc !== null;
  }

  get generation(): number {
    return this.#spec.generation;
  }

  /** A worker announced READY: from now on a death is a crash, not a failed start. */
  markReady(): void {
    this.#everReady = true;
  }

  start(): void {
    const proc = Bun.spawn([this.#spec.python, "-m", "saltare._child"], {
      env: this.#spec.env,
      stdin: "ignore",
      stdout: "inherit",
      stderr: "inherit",
      onExit: (_p, exitCode, signalCode) => this.#exited(exitCode, signalCode),
    });
    this.#proc = proc;
    log.debug(`Started Python child [${proc.pid}]`);
  }

  /** Graceful stop: the zygote stops replacing workers (they get SHUTDOWN frames). */
  stop(): void {
    this.#stopping = true;
    // A lone worker stops when the router sends it SHUTDOWN after the drain.
    if (this.#spec.zygote) this.#proc?.kill("SIGTERM");
  }

  kill(): void {
    this.#stopping = true;
    this.#proc?.kill("SIGKILL");
  }

  #exited(exitCode: number | null, signalCode: number | string | null): void {
    const pid = this.#proc?.pid;
    this.#proc = null;
    if (this.#stopping) {
      this.onExited?.();
      return;
    }
    const how = signalCode !== null ? `signal ${signalCode}` : `exit status ${exitCode}`;
    if (exitCode === EXIT_STARTUP_FAILED) {
      log.error("Application startup failed. Exiting.");
      this.#onFatal(EXIT_STARTUP_FAILED);
      return;
    }
    if (exitCode === EXIT_CRASH_LOOP) {
      this.#onFatal(1);
      return;
    }
    if (!this.#everReady) {
      if (exitCode !== EXIT_IMPORT_FAILED)
        log.error(`The Python process exited before it was ready (${how})`);
      this.#onFatal(1);
      return;
    }
    const now = Date.now();
    this.#deaths = this.#deaths.filter((t) => now - t < CRASH_WINDOW_MS);
    this.#deaths.push(now);
    if (this.#deaths.length > CRASH_LIMIT) {
      log.error(`Worker [${pid}] died (${how}); ${this.#deaths.length} deaths in 10 s, giving up`);
      this.#onFatal(1);
      return;
    }
    log.warning(`Worker [${pid}] died (${how}); starting a new one`);
    this.start();
  }
}
