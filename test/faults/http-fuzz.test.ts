/**
 * 100k fuzzed requests (FAULTS_SCALE=full; 20k at ci) against a running node: zero 5xx, every
 * error JSON {detail, code}, the node alive at the end.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { makeTempDir, type TempDir } from "../e2e/harness.ts";
import { faultsSeed, faultsSizes } from "./lib/scale.ts";
import { runHttpFuzz, type FuzzResult } from "./scenarios/http-fuzz.ts";

const sizes = faultsSizes();
let tmp: TempDir;
let r: FuzzResult;

beforeAll(async () => {
  tmp = makeTempDir("links-faults-fuzz-");
  r = await runHttpFuzz({ dir: tmp.path, requests: sizes.fuzzRequests, concurrency: sizes.fuzzConcurrency, seed: faultsSeed() });
}, 30 * 60_000);
afterAll(() => tmp.remove());

describe(`when a running node gets ${sizes.fuzzRequests} fuzzed requests`, () => {
  test("it really was fuzzed, deep: bundles were accepted, quarantined, approved or rejected", () => {
    expect(r.sent).toBeGreaterThan(sizes.fuzzRequests * 0.9);
    expect(r.accepted).toBeGreaterThan(sizes.fuzzRequests / 200);
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
