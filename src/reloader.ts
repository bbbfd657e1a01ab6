/**
 * `--reload` for development: watch the app's Python sources and ask for a reload when one
 * changes. Polling, once a second, rather than inotify: it needs no native watcher, works the
 * same on every filesystem (bind mounts, network shares, containers), and a development tree
 * of a few thousand files costs well under a millisecond of stat calls per second.
 */
import { type Dirent, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { log } from "./log.ts";

const POLL_MS = 1000;
/** Directories that hold no app code of interest (and can be huge). */
const SKIP = new Set(["node_modules", "__pycache__", "venv", "build", "dist", "site-packages"]);
/** Beyond this many files the watcher stops looking further (and says so once). */
const MAX_FILES = 20_000;

function snapshot(root: string): Map<string, number> {
  const files = new Map<string, number>();
  const stack = [root];
  while (stack.length > 0 && files.size < MAX_FILES) {
    const dir = stack.pop() as string;
    let entries: Dirent[];
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      continue;
    }
    for (const entry of entries) {
      const name = String(entry.name);
      if (name.startsWith(".")) continue;
      const path = join(dir, name);
      if (entry.isDirectory()) {
        if (!SKIP.has(name)) stack.push(path);
      } else if (name.endsWith(".py")) {
        try {
          files.set(path, statSync(path).mtimeMs);
        } catch {
          // removed meanwhile
        }
      }
    }
  }
  return files;
}

/** Poll `root` for changed, added or removed .py files; returns a function that stops it. */
export function watchSources(root: string, onChange: (path: string) => void): () => void {
  let last = snapshot(root);
  if (last.size >= MAX_FILES) {
    log.warning(`--reload watches only the first ${MAX_FILES} .py files under ${root}`);
  }
  log.info(`Watching ${last.size} .py file(s) under ${root} for changes`);
  const timer = setInterval(() => {
    const now = snapshot(root);
    let changed: string | null = null;
    for (const [path, mtime] of now) {
      if (last.get(path) !== mtime) {
        changed = path;
        break;
      }
    }
    if (changed === null && now.size !== last.size) {
      for (const path of last.keys()) {
        if (!now.has(path)) {
          changed = path;
          break;
        }
      }
    }
    last = now;
    if (changed !== null) onChange(changed);
  }, POLL_MS);
  timer.unref();
  return () => clearInterval(timer);
}
