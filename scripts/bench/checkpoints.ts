/**
 * What the tamper-evident audit log costs: village inbox ingest (unique signed 10-claim bundles,
 * concurrency 16) with checkpoint signing on (the default, every 2 s) and off
 * (`--checkpoint-interval 0`), in alternating pairs in the same run on fresh data directories,
 * so both see the same disk; the medians are compared. Also: how many checkpoints were signed, how large
 * the audit index is beside the audit file, how fast `links audit verify` reads the result, and,
 * in this process, what the node's signer spends per audit row (index catch-up and signing).
 * Usage: bun scripts/bench/checkpoints.ts [--seconds 5] [--pairs 3]
 */
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { toJsonText, type JsonValue } from "../../src/core/canonical.ts";
import { auditRow } from "../../src/storage/audit.ts";
import { AuditIndex } from "../../src/storage/audit-index.ts";
import { CheckpointSigner } from "../../src/storage/checkpoints.ts";
import { loadNodeIdentity } from "../../src/storage/node-identity.ts";
import { DataPaths } from "../../src/storage/paths.ts";
import { benchVillage, closedLoop, fmt, makeBundles, run, startNode, tempDir, wrkPath, wrkPost, type LoadResult } from "./lib.ts";

const seconds = Number(process.argv[process.argv.indexOf("--seconds") + 1]) || 5;
const CONCURRENCY = 16;
const pairs = Number(process.argv[process.argv.indexOf("--pairs") + 1]) || 3;
/** off/on pairs, the order swapped in every other pair so neither mode always runs on a fresher disk */
const MODES = Array.from({ length: pairs }, (_, i) => (i % 2 === 0 ? ["off", "on"] : ["on", "off"]) as Array<"on" | "off">).flat();

function size(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

function lineCount(path: string): number {
  try {
    return readFileSync(path, "utf8").split("\n").filter(Boolean).length;
  } catch {
    return 0;
  }
}

/** The signer's own work, without HTTP: catch up on `count` new audit rows in 5 villages, sign them. */
async function signerCost(count: number): Promise<Array<[string, string]>> {
  const dir = tempDir("links-bench-signer-");
  try {
    const paths = new DataPaths(dir.path);
    const lines = Array.from({ length: count }, (_, i) =>
      toJsonText(auditRow({ action: "ingest.accept", village_id: `v${i % 5}`, bundle_id: i.toString(16).padStart(32, "0"), actor: "bench", issuer_key_hash: "a".repeat(64), policy_hash: "0123456789abcdef" }) as unknown as JsonValue),
    );
    await Bun.write(paths.auditFile(), `${lines.join("\n")}\n`);
    const index = new AuditIndex(paths);
    const signer = new CheckpointSigner(paths, index, loadNodeIdentity(paths, { name: "bench" }));
    let t = performance.now();
    index.catchUp();
    const catchUpMs = performance.now() - t;
    t = performance.now();
    const signed = await signer.signGrown();
    const signMs = performance.now() - t;
    index.close();
    return [
      ["signer: audit index catch-up", `${fmt(count)} rows in ${fmt(catchUpMs)} ms (${fmt((catchUpMs * 1000) / count, 1)} µs per row)`],
      ["signer: one signing pass", `${signed} checkpoints in ${fmt(signMs, 1)} ms (two fdatasyncs included)`],
    ];
  } finally {
    dir.removeAtExit();
  }
}

export async function checkpointsBench(): Promise<Array<[string, string]>> {
  // more than a run can take here (the ingest benchmark sees about 2,000 bundles/s at most)
  const perRun = Math.ceil(3000 * seconds);
  const bodies = makeBundles(perRun * MODES.length, 10, "bench-node", "cp");
  const rates: Record<"on" | "off", number[]> = { on: [], off: [] };
  const p99: Record<"on" | "off", number[]> = { on: [], off: [] };
  const rows: Array<[string, string]> = [];
  // every run's data directory is removed at the end: deleting files just before a run slows the
  // file creation it measures
  const dirs: Array<{ data: string; removeAtExit(): void; on: boolean }> = [];
  for (const [k, mode] of MODES.entries()) {
    const { dir, data, token } = await benchVillage(`links-bench-cp-${mode}-`);
    const node = await startNode(data, mode === "off" ? ["--checkpoint-interval", "0"] : []);
    const slice = bodies.slice(k * perRun, (k + 1) * perRun);
    const url = `${node.url}/villages/bench/inbox`;
    let r: LoadResult;
    try {
      const wrk = wrkPath();
      if (wrk) {
        const file = `${dir.path}/bodies.jsonl`;
        await Bun.write(file, `${slice.join("\n")}\n`);
        r = await wrkPost({ url, token, bodiesFile: file, firstBody: 0, bodyCount: slice.length, connections: CONCURRENCY, seconds });
      } else {
        let next = 0;
        const headers = { authorization: `Bearer ${token}`, "content-type": "application/json" };
        r = await closedLoop(CONCURRENCY, seconds, () => (next < slice.length ? new Request(url, { method: "POST", headers, body: slice[next++] }) : null));
      }
    } finally {
      await node.stop();
    }
    const ok = r.statuses[200] ?? 0;
    rates[mode].push(ok / r.seconds);
    p99[mode].push(r.p99);
    rows.push([`ingest c=${CONCURRENCY}, checkpoints ${mode} (run ${k + 1})`, `${fmt(ok / r.seconds)} bundles/s, p99 ${fmt(r.p99, 2)} ms`]);
    if (mode === "on") {
      const kept = lineCount(join(data, "store/audit/checkpoints.jsonl"));
      rows.push([`  checkpoints signed in that run`, `${fmt(kept)} (${fmt(ok)} bundles accepted)`]);
    }
    dirs.push({ data, removeAtExit: () => dir.removeAtExit(), on: mode === "on" });
  }
  const last = dirs.filter((d) => d.on).pop();
  if (last) {
    // the last run with signing on: its audit file, index and checkpoints
    const audit = join(last.data, "store/audit/audit.log.jsonl");
    const rowsInLog = lineCount(audit);
    const t = performance.now();
    await run(["audit", "verify", "--data", last.data]);
    const verifySeconds = (performance.now() - t) / 1000;
    rows.push(["audit index beside the audit file", `${fmt(size(join(last.data, "store/index/audit.sqlite")) / 1e6, 1)} MB for ${fmt(size(audit) / 1e6, 1)} MB of rows`]);
    rows.push(["links audit verify (process start included)", `${fmt(rowsInLog)} rows in ${fmt(verifySeconds, 2)} s (${fmt(rowsInLog / verifySeconds)} rows/s)`]);
  }
  for (const d of dirs) d.removeAtExit();
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
  const off = median(rates.off);
  const on = median(rates.on);
  rows.push(...(await signerCost(20_000)));
  rows.push(["ingest with checkpoints on vs off (median)", `${fmt(on)} vs ${fmt(off)} bundles/s: ${fmt(((on - off) / off) * 100, 1)}%; p99 ${fmt(median(p99.on), 2)} vs ${fmt(median(p99.off), 2)} ms`]);
  return rows;
}

if (import.meta.main) {
  for (const [k, v] of await checkpointsBench()) console.log(`${k.padEnd(48)} ${v}`);
}
