import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { closeSync, constants, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openCreatingParents, writeAll } from "../../../src/storage/open.ts";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "links-open-"));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe("writeAll", () => {
  test.each([
    ["ASCII text", '{"a":1}\n'],
    ["text with two-, three- and four-byte characters", '{"name":"Zoë ☃ 😀"}\n'],
    ["a long text", `${"x".repeat(300_000)}é\n`],
  ])("writes %s as its UTF-8 bytes, and bytes as they are, one after the other", (_what, text) => {
    const file = join(dir, "deep", "out.jsonl");
    const fd = openCreatingParents(file, constants.O_CREAT | constants.O_WRONLY | constants.O_APPEND);
    try {
      writeAll(fd, text);
      writeAll(fd, new Uint8Array([0x7b, 0x7d, 0x0a]));
    } finally {
      closeSync(fd);
    }
    expect(readFileSync(file)).toEqual(Buffer.concat([Buffer.from(text, "utf8"), Buffer.from("{}\n")]));
  });

  test("a failing descriptor throws rather than writing part of the data silently", () => {
    const fd = openSync(join(dir, "read-only"), "w+");
    closeSync(fd);
    const readOnly = openSync(join(dir, "read-only"), "r");
    try {
      expect(() => writeAll(readOnly, "text")).toThrow();
    } finally {
      closeSync(readOnly);
    }
  });
});
