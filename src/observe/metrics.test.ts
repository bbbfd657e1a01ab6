import { describe, expect, test } from "bun:test";
import { AccessLog, BATCH_BYTES, formatAccessLine } from "./access-log.ts";
import { Metrics } from "./metrics.ts";
import { parseSmapsRollup } from "./process-memory.ts";

describe("Metrics", () => {
  test("responses are counted by status class and the histogram is cumulative", () => {
    const m = new Metrics();
    m.observe(200, 0.0005);
    m.observe(404, 0.2);
    m.observe(503, 30);
    const text = m.render({
      openConnections: 2,
      readyWorkers: 1,
      workers: [],
      routerPid: 1,
      memory: null,
    });
    expect(text).toContain('saltare_requests_total{status="2xx"} 1\n');
    expect(text).toContain('saltare_requests_total{status="4xx"} 1\n');
    expect(text).toContain('saltare_requests_total{status="5xx"} 1\n');
    expect(text).toContain('saltare_request_duration_seconds_bucket{le="0.001"} 1\n');
    expect(text).toContain('saltare_request_duration_seconds_bucket{le="0.25"} 2\n');
    expect(text).toContain('saltare_request_duration_seconds_bucket{le="10"} 2\n');
    expect(text).toContain('saltare_request_duration_seconds_bucket{le="+Inf"} 3\n');
    expect(text).toContain("saltare_request_duration_seconds_count 3\n");
    expect(text).toContain("saltare_open_connections 2\n");
    expect(text.endsWith("\n")).toBe(true);
  });

  test("memory gauges appear per worker when a sample exists", () => {
    const m = new Metrics();
    const byPid = new Map([
      [10, { rss: 3000, pss: 2000 }],
      [11, { rss: 5000, pss: 1000 }],
    ]);
    const text = m.render({
      openConnections: 0,
      readyWorkers: 1,
      workers: [{ slot: 0, pid: 11 }],
      routerPid: 10,
      memory: { byPid, treeRss: 8000, treePss: 3000 },
    });
    expect(text).toContain('saltare_worker_resident_memory_bytes{worker="0",pid="11"} 5000\n');
    expect(text).toContain("saltare_router_resident_memory_bytes 3000\n");
    expect(text).toContain("saltare_tree_proportional_memory_bytes 3000\n");
  });
});

test("smaps_rollup: Rss and Pss in bytes", () => {
  const text = "00400000-7fff [rollup]\nRss:               12345 kB\nPss:                6000 kB\n";
  expect(parseSmapsRollup(text)).toEqual({ rss: 12345 * 1024, pss: 6000 * 1024 });
  expect(parseSmapsRollup("nothing")).toBeNull();
});

describe("access log lines", () => {
  const entry = {
    method: "GET",
    path: "/",
    status: 200,
    bytes: 10,
    latencyUs: 5,
    client: "127.0.0.1:5000",
    userAgent: "curl",
    httpVersion: "1.1",
  };

  test("are one JSON object and one line", () => {
    const line = formatAccessLine(entry, "2026-01-01T00:00:00.000Z");
    expect(line.endsWith("\n")).toBe(true);
    expect(line.slice(0, -1)).not.toContain("\n");
    expect(JSON.parse(line)).toEqual({
      time: "2026-01-01T00:00:00.000Z",
      method: "GET",
      path: "/",
      status: 200,
      bytes: 10,
      latency_us: 5,
      client: "127.0.0.1:5000",
      user_agent: "curl",
      http_version: "1.1",
    });
  });

  test("escape control characters, quotes, backslashes and every non-ASCII byte", () => {
    const hostile = '/a"b\\c\r\n{"fake":1}\x1b[31m\x7f\xff\u0085';
    const line = formatAccessLine({ ...entry, path: hostile, userAgent: "\t\x00" }, "t");
    const body = line.slice(0, -1);
    expect(/^[\x20-\x7e]*$/.test(body)).toBe(true);
    const parsed = JSON.parse(line);
    expect(parsed.path).toBe(hostile);
    expect(parsed.user_agent).toBe("\t\x00");
  });
});

describe("access log batching", () => {
  const entry = {
    method: "GET",
    path: "/",
    status: 200,
    bytes: 1,
    latencyUs: 1,
    client: null,
    userAgent: null,
    httpVersion: "1.1",
  };

  test("lines of one event-loop turn go out in one write of whole lines", async () => {
    const writes: string[] = [];
    const accessLog = new AccessLog([], (lines) => writes.push(lines));
    for (let i = 0; i < 5; i++) accessLog.write({ ...entry, path: `/${i}` });
    expect(writes).toEqual([]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(writes.length).toBe(1);
    expect((writes[0] as string).split("\n").filter(Boolean).length).toBe(5);
  });

  test("no write is larger than PIPE_BUF unless a single line is", () => {
    const writes: string[] = [];
    const accessLog = new AccessLog([], (lines) => writes.push(lines));
    for (let i = 0; i < 200; i++) accessLog.write({ ...entry, path: `/${"x".repeat(100)}` });
    accessLog.flush();
    expect(writes.length).toBeGreaterThan(1);
    for (const lines of writes) {
      expect(lines.length).toBeLessThanOrEqual(BATCH_BYTES);
      expect(lines.endsWith("\n")).toBe(true);
    }
    expect(writes.join("").split("\n").filter(Boolean).length).toBe(200);
  });
});
