/** The router's log lines on stderr, in the same `LEVEL:    message` shape as the workers'. */

const LEVELS = { trace: 5, debug: 10, info: 20, warning: 30, error: 40, critical: 50 } as const;
export type LogLevel = keyof typeof LEVELS;

let threshold: number = LEVELS.info;

export function setLogLevel(level: LogLevel): void {
  threshold = LEVELS[level];
}

function emit(level: LogLevel, message: string): void {
  if (LEVELS[level] < threshold) return;
  const prefix = `${level.toUpperCase()}:`.padEnd(10);
  // One write per line keeps lines from different processes from interleaving.
  process.stderr.write(`${prefix}${message}\n`);
}

export const log = {
  trace: (message: string) => emit("trace", message),
  debug: (message: string) => emit("debug", message),
  info: (message: string) => emit("info", message),
  warning: (message: string) => emit("warning", message),
  error: (message: string) => emit("error", message),
};
