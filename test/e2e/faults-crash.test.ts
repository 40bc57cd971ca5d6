/**
 * kill -9 while 16 clients push (small: 2 rounds; `npm run test:faults` runs 20): nothing that
 * got a 200 is lost, nothing is corrupt, the index equals a rebuild.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { makeTempDir, type TempDir } from "./harness.ts";
import { runCrash, type CrashResult } from "../faults/scenarios/crash.ts";
import { faultsSeed, SIZES } from "../faults/lib/scale.ts";

let tmp: TempDir;
let r: CrashResult;

beforeAll(async () => {
  tmp = makeTempDir("links-faults-crash-");
  r = await runCrash({ dir: tmp.path, rounds: SIZES.fast.crashRounds, clients: SIZES.fast.crashClients, seed: faultsSeed() });
}, 60_000);
afterAll(() => tmp.remove());

describe("when the node is killed with SIGKILL while 16 clients push", () => {
  test("it comes back every time and the clients really pushed", () => {
    expect(r.restarts).toBe(SIZES.fast.crashRounds);
    expect(r.acked).toBeGreaterThan(0);
  });
  test("every bundle that got a 200 is stored and verifies: lost 0", () => {
    expect(r.lost).toEqual([]);
    expect(r.notVerifying).toEqual([]);
  });
  test("every stored bundle is indexed exactly once, and the index equals a rebuild", () => {
    expect(r.badlyIndexed).toEqual([]);
    expect(r.rebuildMismatches).toEqual([]);
  });
  test("no file is corrupt (a torn last JSONL line is at most reported)", () => {
    expect(r.corrupt).toEqual([]);
  });
  test("every stored bundle has exactly one ingest.accept audit row", () => {
    expect(r.auditMissing).toEqual([]);
    expect(r.auditDuplicated).toEqual([]);
  });
  test("every answer was a 200 or a connection cut by the kill", () => {
    expect(r.unexpected).toEqual([]);
  });
});
