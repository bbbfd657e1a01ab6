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
