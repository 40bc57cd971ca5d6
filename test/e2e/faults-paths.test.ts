/**
 * Traversal tricks in every id position over HTTP and (a sample) on the command line: nothing
 * outside the data directory is served, read into a decision, or changed.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { makeTempDir, type TempDir } from "./harness.ts";
import { runPaths, type PathsResult } from "../faults/scenarios/paths.ts";

let tmp: TempDir;
let r: PathsResult;

beforeAll(async () => {
  tmp = makeTempDir("links-faults-paths-");
  r = await runPaths({ dir: tmp.path, cliSample: 4 });
}, 120_000);
afterAll(() => tmp.remove());

describe("when every id position gets traversal tricks", () => {
  test("no answer serves the canary or the neighbouring village, accepts its token, or is a 5xx", () => {
    expect(r.httpRequests).toBeGreaterThan(500);
    expect(r.problems).toEqual([]);
  });
  test("nothing outside the data directory changed, and every file inside it has a name the layout allows", () => {
    expect(r.outsideChanged).toEqual([]);
    expect(r.offLayout).toEqual([]);
  });
});
