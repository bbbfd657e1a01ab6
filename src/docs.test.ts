import { describe, expect, test } from "bun:test";
import { HTTP_ERRORS } from "./http1/errors.ts";

const errorsDoc = await Bun.file(new URL("../docs/errors.md", import.meta.url)).text();

describe("docs/errors.md", () => {
  test("lists every HTTP error code with its status and side", () => {
    for (const [code, entry] of Object.entries(HTTP_ERRORS)) {
      const row = errorsDoc.split("\n").find((line) => line.startsWith(`| \`${code}\` |`));
      expect(row, code).toBeDefined();
      expect(row).toContain(`| ${entry.status} | ${entry.side} |`);
    }
  });

  test("lists no HTTP error code that the codec does not have", () => {
    const documented = [...errorsDoc.matchAll(/^\| `([A-Z_]+)` \| \d{3} \|/gm)].map((m) => m[1]);
    expect(documented.sort()).toEqual(Object.keys(HTTP_ERRORS).sort());
  });
});

describe("docs/deployment.md", async () => {
  const { Metrics } = await import("./observe/metrics.ts");
  const deployment = await Bun.file(new URL("../docs/deployment.md", import.meta.url)).text();

  test("documents every metric the router exposes", () => {
    const text = new Metrics().render({
      openConnections: 0,
      readyWorkers: 0,
      workers: [{ slot: 0, pid: 2 }],
      routerPid: 1,
      memory: {
        byPid: new Map([
          [1, { rss: 1, pss: 1 }],
          [2, { rss: 1, pss: 1 }],
        ]),
        treeRss: 2,
        treePss: 2,
      },
    });
    const names = [...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1] as string);
    expect(names.length).toBeGreaterThan(10);
    for (const name of names) expect(deployment, name).toContain(`\`${name}`);
  });
});
