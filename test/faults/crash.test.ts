/**
 * Crash consistency at scale: FAULTS_SCALE=full kills the node 20 times while 16 clients push.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { makeTempDir, type TempDir } from "../e2e/harness.ts";
import { faultsSeed, faultsSizes } from "./lib/scale.ts";
import { runCrash, type CrashResult } from "./scenarios/crash.ts";

const sizes = faultsSizes();
let tmp: TempDir;
let r: CrashResult;

beforeAll(async () => {
  tmp = makeTempDir("links-faults-crash-");
  r = await runCrash({ dir: tmp.path, rounds: sizes.crashRounds, clients: sizes.crashClients, seed: faultsSeed() });
}, 20 * 60_000);
afterAll(() => tmp.remove());

describe(`when the node is killed with SIGKILL ${sizes.crashRounds} times while ${sizes.crashClients} clients push`, () => {
  test("it comes back every time and the clients really pushed", () => {
    expect(r.restarts).toBe(sizes.crashRounds);
    expect(r.acked).toBeGreaterThan(sizes.crashRounds * 10);
  });
  test("every bundle that got a 200 is stored and verifies: lost 0", () => {
    expect(r.lost).toEqual([]);
    expect(r.notVerifying).toEqual([]);
  });
  test("every stored bundle is indexed exactly once, and the index equals a rebuild after every crash", () => {
    expect(r.badlyIndexed).toEqual([]);
    expect(r.rebuildMismatches).toEqual([]);
  });
  test("no file is corrupt after a restart", () => {
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
