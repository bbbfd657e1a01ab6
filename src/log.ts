/**
 * The router's log lines on stderr, in the same shape as the workers' (python/saltare/_logging.py):
 * `LEVEL:    message` (text) or one JSON object per line (json).
 */

const LEVELS = { trace: 5, debug: 10, info: 20, warning: 30, error: 40, critical: 50 } as const;
export type LogLevel = keyof typeof LEVELS;
export type LogFormat = "text" | "json";

let threshold: number = LEVELS.info;
let format: LogFormat = "text";

export function setLogLevel(level: LogLevel): void {
  threshold = LEVELS[level];
}

export function setLogFormat(value: LogFormat): void {
  format = value;
}

/** JSON text of `value` with every character outside printable ASCII escaped as \uXXXX. */
export function asciiJson(value: unknown): string {
  const text = JSON.stringify(value);
  // JSON.stringify escapes quotes, backslashes and C0 controls; DEL, C1 controls and
  // non-ASCII (latin1 bytes of a raw request) are left as they are, so escape them too: a log
  // line is then plain ASCII whatever a client sent.
  return /[^\x20-\x7e]/.test(text) ? text.replace(/[^\x20-\x7e]/g, escapeChar) : text;
}

function escapeChar(c: string): string {
  return `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;
}

export function formatLogLine(level: LogLevel, message: string, now: Date = new Date()): string {
  if (format === "json") {
    const entry = {
      time: now.toISOString(),
      level,
      logger: "saltare.router",
      pid: process.pid,
      message,
    };
    return `${asciiJson(entry)}\n`;
  }
  return `${`${level.toUpperCase()}:`.padEnd(10)}${message}\n`;
}

function emit(level: LogLevel, message: string): void {
  if (LEVELS[level] < threshold) return;
  // One write per line keeps lines from different processes from interleaving.
  process.stderr.write(formatLogLine(level, message));
}

export const log = {
  trace: (message: string) => emit("trace", message),
  debug: (message: string) => emit("debug", message),
  info: (message: string) => emit("info", message),
  warning: (message: string) => emit("warning", message),
  error: (message: string) => emit("error", message),
};
