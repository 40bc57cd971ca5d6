/**
 * Input files named on the command line: read whole (readInputFile) or a piece at a time
 * (input-stream), a file that cannot be read is the same clear error either way.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readInputFile } from "../../../src/cli/common.ts";
import { forEachArrayElement, forEachLine, inputSize, MAX_INPUT_RECORD_CHARS } from "../../../src/cli/input-stream.ts";
import { LinksError } from "../../../src/core/errors.ts";

const dir = mkdtempSync(join(tmpdir(), "links-input-files-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function failure(fn: () => unknown): { code: string; detail: string } {
  try {
    fn();
  } catch (e) {
    if (e instanceof LinksError) return { code: e.code, detail: e.detail };
    throw e;
  }
  throw new Error("did not fail");
}

const readers: Array<[string, (path: string) => unknown]> = [
  ["read whole", (p) => readInputFile(p, "edges file")],
  ["read by lines", (p) => forEachLine(p, "edges file", () => {})],
  ["read by array elements", (p) => forEachArrayElement(p, "edges file", () => {})],
  ["sized", (p) => inputSize(p, "edges file")],
];

describe.each(readers)("an input file %s", (_, read) => {
  test("that does not exist is not_found, naming it", () => {
    const missing = join(dir, "none.json");
    expect(failure(() => read(missing))).toEqual({ code: "not_found", detail: `edges file not found: ${missing}` });
  });

  test("that is a directory is invalid_argument, naming it", () => {
    expect(failure(() => read(dir))).toEqual({ code: "invalid_argument", detail: `edges file is a directory: ${dir}` });
  });
});

/**
 * A file that never ends (/dev/zero, an endless pipe) or one huge line or element is refused as
 * input_too_large once past the bound, instead of being read until memory runs out.
 */
describe("an input without end", () => {
  test("read whole: /dev/zero is input_too_large once past the limit", () => {
    expect(failure(() => readInputFile("/dev/zero", "bundle file", 1 << 20))).toEqual({
      code: "input_too_large",
      detail: `bundle file /dev/zero is larger than ${1 << 20} bytes`,
    });
  });

  test("read whole: a file of exactly the limit is read", () => {
    const file = join(dir, "exact.json");
    writeFileSync(file, "x".repeat(4096));
    expect(readInputFile(file, "bundle file", 4096).length).toBe(4096);
    expect(failure(() => readInputFile(file, "bundle file", 4095)).code).toBe("input_too_large");
  });

  test("by lines: /dev/zero (one line that never ends) is input_too_large, naming the line", () => {
    let lines = 0;
    const f = failure(() => forEachLine("/dev/zero", "observations file", () => lines++));
    expect(f.code).toBe("input_too_large");
    expect(f.detail).toContain("line 1 is longer than");
    expect(lines).toBe(0);
  });

  test("by array elements: an element longer than the bound is input_too_large, naming it", () => {
    const file = join(dir, "endless-element.json");
    writeFileSync(file, `[{"from_entity_id":"a"},"${"a".repeat(MAX_INPUT_RECORD_CHARS + 10)}"]`);
    const seen: string[] = [];
    const f = failure(() => forEachArrayElement(file, "edges file", (t) => seen.push(t)));
    expect(f).toEqual({ code: "input_too_large", detail: `edges file ${file}: element 2 is longer than ${MAX_INPUT_RECORD_CHARS} characters` });
    expect(seen).toEqual(['{"from_entity_id":"a"}']);
  });
});
