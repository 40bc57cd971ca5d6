/**
 * Crash consistency: clients push bundles to a real node, the node is killed with SIGKILL at a
 * random moment, restarted, and the data directory is judged from outside: every bundle that got
 * a 200 is stored, verifies and is indexed once; no file is corrupt; the index equals what
 * `links claims reindex` rebuilds from the stored bundles. Bundles whose request was in flight
 * at the kill (outcome unknown to the client) are pushed again, as a client would, and must then
 * be stored and indexed once too.
 */
import { describe, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { startNode, type RunningNode } from "../../e2e/node.ts";
import { bundleText, makeBundle, signingKey } from "../lib/bundles.ts";
import { auditRows, checkDataDir, checkStored, compareWithRebuild } from "../lib/datadir.ts";
import { faultsSeed, figures, type Sizes } from "../lib/scale.ts";
import { runScenarioOnce } from "../lib/suite.ts";
import { makeVillage, push } from "../lib/village.ts";

export interface CrashOptions {
  /** scratch directory (the data directory and rebuild copies go in it) */
  dir: string;
  rounds: number;
  clients: number;
  seed: number;
  /** the kill comes this many ms after the clients start, uniformly at random */
  killAfterMs?: [number, number];
}

export interface CrashRound {
  round: number;
  killAfterMs: number;
  acked: number;
  inFlight: number;
  inFlightStored: number;
  torn: string[];
  tempFiles: number;
  /** files or lines that did not parse right after the kill, before the restart repaired them */
  tornBeforeRestart: number;
}

export interface CrashResult {
  rounds: CrashRound[];
  /** bundles that got a 200 accepted (summed over rounds) */
  acked: number;
  /** acknowledged + re-pushed bundles found stored and verifying at the end */
  verified: number;
  /** acknowledged bundles not stored at some check */
  lost: string[];
  notVerifying: string[];
  /** stored bundles without exactly one index row */
  badlyIndexed: string[];
  corrupt: string[];
  /** round: differences between the live index and a rebuild */
  rebuildMismatches: string[];
  /** answers that were neither 200 nor a connection cut by the kill */
  unexpected: string[];
  /** re-pushed in-flight bundles: first status seen */
  rePushStatuses: Record<string, number>;
  restarts: number;
  /** stored bundles without an ingest.accept audit row, and with more than one */
  auditMissing: string[];
  auditDuplicated: string[];
}

/** A small seeded PRNG (mulberry32), so a round's kill moments can be replayed from the seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export async function runCrash(o: CrashOptions): Promise<CrashResult> {
  const random = prng(o.seed);
  const [minKill, maxKill] = o.killAfterMs ?? [60, 900];
  const data = join(o.dir, "data");
  const members = ["c0", "c1", "c2", "c3"];
  const v = await makeVillage(data, "crash", { members, scratch: o.dir });
  const keys = [signingKey(), signingKey()];
  const acked = new Set<string>();
  const everStored = new Set<string>();
  const result: CrashResult = {
    rounds: [],
    acked: 0,
    verified: 0,
    lost: [],
    notVerifying: [],
    badlyIndexed: [],
    corrupt: [],
    rebuildMismatches: [],
    unexpected: [],
    rePushStatuses: {},
    restarts: 0,
    auditMissing: [],
    auditDuplicated: [],
  };

  let node: RunningNode = await startNode(data);
  try {
    for (let round = 1; round <= o.rounds; round++) {
      const killAfterMs = Math.round(minKill + random() * (maxKill - minKill));
      let killed = false;
      const inFlight: string[] = [];
      const inFlightIds: string[] = [];
      let roundAcked = 0;
      const url = node.url;
      const client = async (c: number) => {
        const token = v.tokens[members[c % members.length] as string] as string;
        for (;;) {
          if (killed) return;
          const b = makeBundle(keys[c % keys.length]!, `r${round}c${c}`);
          const text = bundleText(b);
          try {
            const r = await push(url, v.vid, token, text);
            if (r.status === 200 && r.body.status === "accepted") {
              acked.add(b.bundle_id);
              roundAcked++;
            } else {
              result.unexpected.push(`round ${round}: ${r.status} ${JSON.stringify(r.body).slice(0, 160)}`);
            }
          } catch {
            // the connection died: the node was killed with this request in flight
            inFlight.push(text);
            inFlightIds.push(b.bundle_id);
            return;
          }
        }
      };
      const running = Array.from({ length: o.clients }, (_, c) => client(c));
      await Bun.sleep(killAfterMs);
      killed = true;
      await node.kill();
      await Promise.all(running);

      // The directory as the crash left it: files the node writes without fsync (its log makes
      // them durable) may be torn here; the restart must repair them.
      const crashed = checkDataDir(data);

      node = await startNode(data);
      result.restarts++;
      // A client that lost its answer pushes again: 200 accepted or 200 duplicate.
      let inFlightStored = 0;
      for (let i = 0; i < inFlight.length; i++) {
        const r = await push(node.url, v.vid, v.tokens.alice as string, inFlight[i] as string);
        const key = `${r.status} ${String(r.body.status ?? r.body.code)}`;
        result.rePushStatuses[key] = (result.rePushStatuses[key] ?? 0) + 1;
        if (r.status === 200) {
          everStored.add(inFlightIds[i] as string);
          if (r.body.status === "duplicate") inFlightStored++;
        } else {
          result.unexpected.push(`round ${round} re-push: ${r.status} ${JSON.stringify(r.body).slice(0, 160)}`);
        }
      }
      for (const id of acked) everStored.add(id);

      const after = checkDataDir(data);
      result.corrupt.push(...after.corrupt.map((c) => `round ${round}: ${c}`));

      const stored = checkStored(data, v.vid, everStored);
      const lostNow = stored.missing.filter((id) => acked.has(id));
      result.lost.push(...lostNow.map((id) => `round ${round}: ${id}`));
      result.notVerifying.push(...stored.notVerifying.map((s) => `round ${round}: ${s}`));
      result.badlyIndexed.push(...stored.badlyIndexed.map((s) => `round ${round}: ${s}`));
      const copy = join(o.dir, `rebuild-${round}`);
      const cmp = await compareWithRebuild(data, copy);
      rmSync(copy, { recursive: true, force: true });
      if (cmp.onlyLive.length > 0 || cmp.onlyRebuilt.length > 0 || cmp.live !== cmp.rebuilt) {
        result.rebuildMismatches.push(
          `round ${round}: live ${cmp.live} rows, rebuilt ${cmp.rebuilt}; never indexed: ${cmp.unindexedBundles.join(",") || "-"}; only live: ${cmp.onlyLive.length}`,
        );
      }
      const r: CrashRound = {
        round,
        killAfterMs,
        acked: roundAcked,
        inFlight: inFlight.length,
        inFlightStored,
        torn: after.tornLastLines,
        tempFiles: after.tempFiles.length,
        tornBeforeRestart: crashed.corrupt.length + crashed.tornLastLines.length,
      };
      result.rounds.push(r);
      figures(`crash round ${round}/${o.rounds}`, {
        kill_after_ms: killAfterMs,
        acked: roundAcked,
        in_flight_at_kill: inFlight.length,
        in_flight_already_stored: inFlightStored,
        torn_before_restart: r.tornBeforeRestart,
        torn_last_lines: after.tornLastLines.length,
        temp_files_left: after.tempFiles.length,
        index_rows: cmp.live,
        rebuild_rows: cmp.rebuilt,
      });
    }
    const final = checkStored(data, v.vid, everStored);
    result.acked = acked.size;
    result.verified = final.verified;
    const accepts = new Map<string, number>();
    for (const row of auditRows(data)) {
      if (row.action === "ingest.accept" && row.village_id === v.vid) accepts.set(String(row.bundle_id), (accepts.get(String(row.bundle_id)) ?? 0) + 1);
    }
    for (const id of everStored) {
      const n = accepts.get(id) ?? 0;
      if (n === 0) result.auditMissing.push(id);
      if (n > 1) result.auditDuplicated.push(`${id}: ${n}`);
    }
  } finally {
    await node.stop();
  }
  const inFlightTotal = result.rounds.reduce((n, r) => n + r.inFlight, 0);
  figures("crash", {
    rounds: o.rounds,
    clients: o.clients,
    seed: o.seed,
    crashes_survived: result.restarts,
    acked_200: result.acked,
    in_flight_at_kill: inFlightTotal,
    bundles_verified_after_crashes: result.verified,
    lost: result.lost.length,
    badly_indexed: result.badlyIndexed.length,
    corrupt_files: result.corrupt.length,
    torn_before_restart_repaired: result.rounds.reduce((n, r) => n + r.tornBeforeRestart, 0),
    torn_last_lines: result.rounds.reduce((n, r) => n + r.torn.length, 0),
    temp_files_left: result.rounds.reduce((n, r) => n + r.tempFiles, 0),
    index_rebuild_mismatches: result.rebuildMismatches.length,
    audit_accept_missing: result.auditMissing.length,
    audit_accept_duplicated: result.auditDuplicated.length,
  });
  return result;
}

/**
 * The crash tests, sized by the caller: `npm test` (SIZES.fast) and `npm run test:faults`
 * (faultsSizes()). `ackedAbove`: how many pushes answered 200 show the clients really pushed.
 */
export function crashSuite(sizes: Sizes, opts: { timeoutMs: number; ackedAbove: number }): void {
  const result = runScenarioOnce("links-faults-crash-", opts.timeoutMs, (dir) =>
    runCrash({ dir, rounds: sizes.crashRounds, clients: sizes.crashClients, seed: faultsSeed() }),
  );

  describe(`when the node is killed with SIGKILL ${sizes.crashRounds} times while ${sizes.crashClients} clients push`, () => {
    test("it comes back every time and the clients really pushed", () => {
      const r = result();
      expect(r.restarts).toBe(sizes.crashRounds);
      expect(r.acked).toBeGreaterThan(opts.ackedAbove);
    });
    test("every bundle that got a 200 is stored and verifies: lost 0", () => {
      const r = result();
      expect(r.lost).toEqual([]);
      expect(r.notVerifying).toEqual([]);
    });
    test("every stored bundle is indexed exactly once, and the index equals a rebuild after every crash", () => {
      const r = result();
      expect(r.badlyIndexed).toEqual([]);
      expect(r.rebuildMismatches).toEqual([]);
    });
    test("no file is corrupt after a restart (a torn last JSONL line is at most reported)", () => {
      expect(result().corrupt).toEqual([]);
    });
    test("every stored bundle has exactly one ingest.accept audit row", () => {
      const r = result();
      expect(r.auditMissing).toEqual([]);
      expect(r.auditDuplicated).toEqual([]);
    });
    test("every answer was a 200 or a connection cut by the kill", () => {
      expect(result().unexpected).toEqual([]);
    });
  });
}
