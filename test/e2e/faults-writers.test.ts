/**
 * The node and `links` processes writing one village at once: no lost update, no torn line,
 * each quarantined bundle decided exactly once.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { makeTempDir, type TempDir } from "./harness.ts";
import { runWriters, type WritersResult } from "../faults/scenarios/writers.ts";
import { SIZES } from "../faults/lib/scale.ts";

let tmp: TempDir;
let r: WritersResult;

beforeAll(async () => {
  tmp = makeTempDir("links-faults-writers-");
  r = await runWriters({ dir: tmp.path, processes: SIZES.fast.writerProcesses, pushes: SIZES.fast.writerPushes });
}, 120_000);
afterAll(() => tmp.remove());

describe("when the node and links processes write one village at the same time", () => {
  test("no update is lost and every quarantined bundle ends exactly one way", () => {
    expect(r.processes).toBeGreaterThan(0);
    expect(r.problems).toEqual([]);
  });
  test("no line is torn and every file parses", () => {
    expect(r.corrupt).toEqual([]);
    expect(r.torn).toEqual([]);
  });
});
