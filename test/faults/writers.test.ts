/**
 * Concurrent writers at scale: more `links` processes of every kind against a busy node.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { makeTempDir, type TempDir } from "../e2e/harness.ts";
import { faultsSizes } from "./lib/scale.ts";
import { runWriters, type WritersResult } from "./scenarios/writers.ts";

const sizes = faultsSizes();
let tmp: TempDir;
let r: WritersResult;

beforeAll(async () => {
  tmp = makeTempDir("links-faults-writers-");
  r = await runWriters({ dir: tmp.path, processes: sizes.writerProcesses, pushes: sizes.writerPushes });
}, 10 * 60_000);
afterAll(() => tmp.remove());

describe(`when the node and ${sizes.writerProcesses * 7} links processes write one village at the same time`, () => {
  test("no update is lost and every quarantined bundle ends exactly one way", () => {
    expect(r.processes).toBeGreaterThan(0);
    expect(r.problems).toEqual([]);
  });
  test("no line is torn and every file parses", () => {
    expect(r.corrupt).toEqual([]);
    expect(r.torn).toEqual([]);
  });
});
