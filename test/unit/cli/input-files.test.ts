/**
 * Input files named on the command line: read whole (readInputFile) or a piece at a time
 * (input-stream), a file that cannot be read is the same clear error either way.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readInputFile } from "../../../src/cli/common.ts";
import { forEachArrayElement, forEachLine, inputSize } from "../../../src/cli/input-stream.ts";
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
