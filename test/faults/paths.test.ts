/**
 * Traversal tricks in every id position over HTTP and in every CLI command that takes an id.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { makeTempDir, type TempDir } from "../e2e/harness.ts";
import { faultsSizes } from "./lib/scale.ts";
import { runPaths, TRICKS, type PathsResult } from "./scenarios/paths.ts";

let tmp: TempDir;
let r: PathsResult;

beforeAll(async () => {
  tmp = makeTempDir("links-faults-paths-");
  r = await runPaths({ dir: tmp.path, cliSample: faultsSizes().fullPathCorpus ? TRICKS.length : 4 });
}, 10 * 60_000);
afterAll(() => tmp.remove());

describe("when every id position gets traversal tricks", () => {
  test("no answer or command serves the canary or the neighbouring village, accepts its token, or fails badly", () => {
    expect(r.problems).toEqual([]);
  });
  test("nothing outside the data directory changed, and every file inside it has a name the layout allows", () => {
    expect(r.outsideChanged).toEqual([]);
    expect(r.offLayout).toEqual([]);
  });
});
