/**
 * Resident memory of the server's processes, read from /proc (Linux). Reading smaps_rollup
 * makes the kernel walk the process's page tables (~0.1 ms for a worker), so samples are
 * cached: scrapes closer together than {@link SAMPLE_INTERVAL_MS} share one.
 */
import { readdirSync, readFileSync } from "node:fs";

export const SAMPLE_INTERVAL_MS = 1000;

export interface ProcessMemory {
  /** Resident set size in bytes (shared pages counted in full). */
  rss: number;
  /** Proportional set size in bytes (shared pages divided among their users). */
  pss: number;
}

/** Parse the `Rss:` and `Pss:` lines of /proc/PID/smaps_rollup (values in kB). */
export function parseSmapsRollup(text: string): ProcessMemory | null {
  const rss = /^Rss:\s+(\d+) kB/m.exec(text);
  const pss = /^Pss:\s+(\d+) kB/m.exec(text);
  if (rss === null || pss === null) return null;
  return { rss: Number(rss[1]) * 1024, pss: Number(pss[1]) * 1024 };
}

export function readProcessMemory(pid: number): ProcessMemory | null {
  try {
    return parseSmapsRollup(readFileSync(`/proc/${pid}/smaps_rollup`, "latin1"));
  } catch {
    return null; // gone, or not Linux
  }
}

/** `root` and all its descendants, from /proc/PID/task/TID/children. */
export function processTree(root: number): number[] {
  const result = [root];
  for (let i = 0; i < result.length; i++) {
    const pid = result[i] as number;
    let tasks: string[];
    try {
      tasks = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue;
    }
    for (const task of tasks) {
      try {
        const children = readFileSync(`/proc/${pid}/task/${task}/children`, "latin1");
        for (const child of children.split(" ")) if (child.trim()) result.push(Number(child));
      } catch {
        // the thread ended meanwhile
      }
    }
  }
  return result;
}

export interface MemorySample {
  byPid: Map<number, ProcessMemory>;
  treeRss: number;
  treePss: number;
}

export class MemorySampler {
  readonly #root: number;
  #last: MemorySample | null = null;
  #at = -Infinity;

  /** `root`: the top of the server's process tree. */
  constructor(root: number) {
    this.#root = root;
  }

  sample(now: number = performance.now()): MemorySample {
    if (this.#last !== null && now - this.#at < SAMPLE_INTERVAL_MS) return this.#last;
    const byPid = new Map<number, ProcessMemory>();
    let treeRss = 0;
    let treePss = 0;
    for (const pid of processTree(this.#root)) {
      const mem = readProcessMemory(pid);
      if (mem === null) continue;
      byPid.set(pid, mem);
      treeRss += mem.rss;
      treePss += mem.pss;
    }
    this.#last = { byPid, treeRss, treePss };
    this.#at = now;
    return this.#last;
  }
}
