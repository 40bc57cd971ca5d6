/**
 * Disk full at scale: more writes while full, and 0..31 pages free so every write fails at every
 * step of its sequence. Needs root (mount -t tmpfs); skipped with the reason printed otherwise.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { makeTempDir, type TempDir } from "../e2e/harness.ts";
import { faultsSizes } from "./lib/scale.ts";
import { runDiskFull, type DiskFullResult } from "./scenarios/disk-full.ts";

const full = faultsSizes().scale === "full";
let tmp: TempDir;
let r: DiskFullResult;

beforeAll(async () => {
  tmp = makeTempDir("links-faults-disk-");
  r = await runDiskFull({ dir: tmp.path, steps: full ? 32 : 16, attemptsWhenFull: full ? 10 : 4 });
}, 10 * 60_000);
afterAll(() => tmp.remove());

describe("when the data directory's disk is full", () => {
  test("writes answer 507 storage_full (or 503) as JSON {detail, code}, never anything else", () => {
    if (r.skipped) return console.log(`skipped: ${r.skipped}`);
    expect(r.badAnswers).toEqual([]);
  });
  test("reads keep working", () => {
    if (r.skipped) return;
    expect(r.failedReads).toEqual([]);
  });
  test("CLI writes fail with exit 1 and storage_full", () => {
    if (r.skipped) return;
    expect(r.badCli).toEqual([]);
  });
  test("nothing half-written remains: every JSON file parses, every JSONL line but a torn last one", () => {
    if (r.skipped) return;
    expect(r.corrupt).toEqual([]);
    expect(r.tempFiles).toEqual([]);
  });
  test("when space returns the next push is 200, retries succeed, and nothing accepted is lost", () => {
    if (r.skipped) return;
    expect(r.recoveredPush).toBe(1);
    expect(r.retriedBad).toEqual([]);
    expect(r.lost).toEqual([]);
    expect(r.badlyIndexed).toEqual([]);
    expect(r.rebuildMismatch).toBeNull();
    expect(r.aliveAtEnd).toBe(true);
  });
  test("and after a restart every accepted bundle is still stored, verifies and is indexed once", () => {
    if (r.skipped) return;
    expect(r.lostAfterRestart).toEqual([]);
  });
});
