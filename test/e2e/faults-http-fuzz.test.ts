/**
 * A few thousand fuzzed requests against a running node (`npm run test:faults` sends 100k):
 * zero 5xx, every error JSON {detail, code}, the node alive at the end.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { makeTempDir, type TempDir } from "./harness.ts";
import { runHttpFuzz, type FuzzResult } from "../faults/scenarios/http-fuzz.ts";
import { faultsSeed, SIZES } from "../faults/lib/scale.ts";

let tmp: TempDir;
let r: FuzzResult;

beforeAll(async () => {
  tmp = makeTempDir("links-faults-fuzz-");
  r = await runHttpFuzz({ dir: tmp.path, requests: SIZES.fast.fuzzRequests, concurrency: SIZES.fast.fuzzConcurrency, seed: faultsSeed() });
}, 120_000);
afterAll(() => tmp.remove());

describe("when a running node gets thousands of fuzzed requests", () => {
  test("it really was fuzzed, deep: bundles were accepted and quarantined", () => {
    expect(r.sent).toBeGreaterThan(SIZES.fast.fuzzRequests * 0.9);
    expect(r.accepted).toBeGreaterThan(0);
    expect(r.quarantined).toBeGreaterThan(0);
  });
  test("no answer is a 5xx, none hangs, every error is JSON {detail, code} without host paths", () => {
    expect(r.failures).toEqual([]);
  });
  test("the node is alive at the end and logged no unexpected failure", () => {
    expect(r.aliveAtEnd).toBe(true);
    expect(r.serverErrorLines).toEqual([]);
  });
  test("every file it wrote parses, and nothing outside its data directory was served or touched", () => {
    expect(r.corruptFiles).toEqual([]);
    expect(r.canaryServed).toBe(0);
    expect(r.outsideChanged).toEqual([]);
  });
});
