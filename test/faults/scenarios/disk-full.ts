/**
 * Disk full: the data directory sits on a small tmpfs that a filler file fills up. Every write
 * must answer a clear 507 storage_full (or 503) as JSON, nothing half-written may remain, reads
 * keep working, and the node takes writes again as soon as space returns. Besides "completely
 * full", the space left is stepped through 0..N pages, so writes fail at every point of their
 * sequence (bundle file, index row, pointer, audit row, log).
 */
import { describe, expect, test } from "bun:test";
import { closeSync, ftruncateSync, mkdirSync, openSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";
import { errorCode, links } from "../../e2e/harness.ts";
import { startNode, type RunningNode } from "../../e2e/node.ts";
import { bundleText, makeBundle, signingKey } from "../lib/bundles.ts";
import { checkDataDir, checkStored, compareWithRebuild } from "../lib/datadir.ts";
import { errorContractProblem } from "../lib/http.ts";
import { figures, type Sizes } from "../lib/scale.ts";
import { runScenarioOnce } from "../lib/suite.ts";
import { HIGH_RATE, makeVillage, push } from "../lib/village.ts";

const PAGE = 4096;

/** Mounts a tmpfs of `size` at dir; returns why not when it cannot (not root, no mount). */
export function mountTmpfs(dir: string, size: string): string | null {
  mkdirSync(dir, { recursive: true });
  const r = Bun.spawnSync(["mount", "-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir], { stderr: "pipe", stdout: "ignore" });
  if (r.exitCode === 0) return null;
  return `mount -t tmpfs failed (exit ${r.exitCode}): ${r.stderr.toString().trim() || "no message"}`;
}

export function unmount(dir: string): void {
  const r = Bun.spawnSync(["umount", dir], { stderr: "pipe" });
  if (r.exitCode !== 0) Bun.spawnSync(["umount", "-l", dir]);
}

/** Writes a filler file until ENOSPC; returns its size. */
export function fillUp(file: string): number {
  const fd = openSync(file, "w");
  const chunk = Buffer.alloc(256 * 1024, 0x61);
  let size = 0;
  try {
    for (;;) {
      try {
        const n = writeSync(fd, chunk);
        size += n;
        if (n === 0) break;
      } catch (e) {
        if ((e as { code?: string }).code === "ENOSPC") break;
        throw e;
      }
    }
  } finally {
    closeSync(fd);
  }
  return size;
}

/** Gives `pages` pages back by shortening the filler. */
function leaveFree(file: string, fullSize: number, pages: number): void {
  const fd = openSync(file, "r+");
  try {
    ftruncateSync(fd, Math.max(0, fullSize - pages * PAGE));
  } finally {
    closeSync(fd);
  }
}

export interface DiskFullResult {
  skipped: string | null;
  /** write attempts while completely full, by "status code" */
  fullAnswers: Record<string, number>;
  /** write attempts while a few pages were free, by "status code" */
  steppedAnswers: Record<string, number>;
  /** answers that were not 200/202/507/503 or broke the error contract */
  badAnswers: string[];
  /** reads (GET) that failed while the disk was full */
  failedReads: string[];
  cliOutcomes: Record<string, number>;
  badCli: string[];
  corrupt: string[];
  /** files whose last line was torn, each check (reported, allowed once per file) */
  torn: string[];
  tempFiles: string[];
  /** pushes that got 507/503 and then, with space back, 200 on a retry */
  retriedOk: number;
  retriedBad: string[];
  recoveredPush: number;
  /** after recovery: bundles not stored/verifying/indexed once, index vs rebuild */
  lost: string[];
  badlyIndexed: string[];
  rebuildMismatch: string | null;
  /** the same check after a restart of the node */
  lostAfterRestart: string[];
  aliveAtEnd: boolean;
  /** the node's own error log lines (level "error"), first few */
  serverErrors: string[];
}

export async function runDiskFull(o: { dir: string; steps: number; attemptsWhenFull: number }): Promise<DiskFullResult> {
  const result: DiskFullResult = {
    skipped: null,
    fullAnswers: {},
    steppedAnswers: {},
    badAnswers: [],
    failedReads: [],
    cliOutcomes: {},
    badCli: [],
    corrupt: [],
    torn: [],
    tempFiles: [],
    retriedOk: 0,
    retriedBad: [],
    recoveredPush: 0,
    lost: [],
    badlyIndexed: [],
    rebuildMismatch: null,
    lostAfterRestart: [],
    aliveAtEnd: false,
    serverErrors: [],
  };
  const mnt = join(o.dir, "mnt");
  const why = mountTmpfs(mnt, "8m");
  if (why !== null) {
    result.skipped = why;
    console.log(`[faults] disk-full: SKIPPED: ${why}`);
    return result;
  }
  const data = join(mnt, "data");
  const filler = join(mnt, "filler");
  const v = await makeVillage(data, "full", { members: ["bob"], scratch: o.dir });
  const key = signingKey();
  const accepted = new Set<string>();
  const refused: string[] = []; // bundle texts that got 507/503
  let node: RunningNode | null = null;
  const count = (m: Record<string, number>, k: string) => (m[k] = (m[k] ?? 0) + 1);

  const check = (label: string) => {
    const r = checkDataDir(data);
    result.corrupt.push(...r.corrupt.map((c) => `${label}: ${c}`));
    result.torn.push(...r.tornLastLines.map((c) => `${label}: ${c}`));
    result.tempFiles.push(...r.tempFiles.map((c) => `${label}: ${c}`));
  };

  /** One write of each kind the node takes; each answer is judged and counted. */
  const writes = async (into: Record<string, number>, label: string) => {
    const n = node as RunningNode;
    const judge = async (what: string, res: Response, bundle?: string) => {
      const text = await res.text();
      const problem = errorContractProblem(res.status, res.headers.get("content-type"), text, "POST", [data]);
      let code = "";
      try {
        code = String((JSON.parse(text) as { code?: string; status?: string }).code ?? (JSON.parse(text) as { status?: string }).status);
      } catch {
        code = "?";
      }
      count(into, `${what} ${res.status} ${code}`);
      const ok = [200, 202].includes(res.status) || (res.status === 507 && code === "storage_full") || (res.status === 503 && ["storage_error", "unavailable"].includes(code));
      if (!ok || problem) result.badAnswers.push(`${label} ${what}: ${res.status} ${problem ?? ""} ${text.slice(0, 200)}`);
      if (bundle !== undefined) {
        if (res.status === 200) accepted.add((JSON.parse(bundle) as { bundle_id: string }).bundle_id);
        else if (res.status >= 500) refused.push(bundle);
      }
    };
    const auth = { authorization: `Bearer ${v.tokens.bob}`, "content-type": "application/json" };
    const admin = { authorization: `Bearer ${v.tokens.alice}`, "content-type": "application/json" };
    const b = bundleText(makeBundle(key, label));
    await judge("village-inbox", await fetch(`${n.url}/villages/full/inbox`, { method: "POST", headers: auth, body: b }), b);
    const q = bundleText(makeBundle(key, label, { predicate: "links.not_allowed" }));
    await judge("quarantine", await fetch(`${n.url}/villages/full/inbox`, { method: "POST", headers: auth, body: q }));
    const p = bundleText(makeBundle(key, `${label}-public`));
    await judge("public-inbox", await fetch(`${n.url}/inbox`, { method: "POST", headers: { "content-type": "application/json" }, body: p }));
    const policy = JSON.stringify({ rate_limit_per_min: HIGH_RATE, max_window_days: 30 + Math.floor(Math.random() * 1000) });
    await judge("policy", await fetch(`${n.url}/villages/full/policy`, { method: "POST", headers: admin, body: policy }));
    const held = (await (await fetch(`${n.url}/villages/full/quarantine`, { headers: admin })).json()) as { entries?: Array<{ bundle_id: string }> };
    const first = held.entries?.[0]?.bundle_id;
    if (first) {
      await judge(
        "quarantine-reject",
        await fetch(`${n.url}/villages/full/quarantine/${first}/reject`, { method: "POST", headers: admin, body: JSON.stringify({ reason: "disk full test" }) }),
      );
    }
  };

  const reads = async (label: string) => {
    const n = node as RunningNode;
    const auth = { authorization: `Bearer ${v.tokens.bob}` };
    for (const path of ["/healthz", "/villages/full/claims?limit=5", "/villages/full/claims/latest", "/villages/full/policy/latest"]) {
      const res = await fetch(`${n.url}${path}`, { headers: auth });
      const text = await res.text();
      if (res.status !== 200) result.failedReads.push(`${label} GET ${path}: ${res.status} ${text.slice(0, 160)}`);
    }
  };

  try {
    node = await startNode(data);
    for (let i = 0; i < 5; i++) {
      const b = bundleText(makeBundle(key, "before"));
      const r = await push(node.url, "full", v.tokens.bob as string, b);
      if (r.status !== 200) result.badAnswers.push(`before filling: ${r.status} ${JSON.stringify(r.body)}`);
      else accepted.add((JSON.parse(b) as { bundle_id: string }).bundle_id);
    }

    // Completely full.
    const fullSize = fillUp(filler);
    for (let i = 0; i < o.attemptsWhenFull; i++) await writes(result.fullAnswers, `full-${i}`);
    await reads("full");
    for (const [what, args] of [
      ["add-member", ["villages", "add-member", "full", `m-${Date.now()}`, "--data", data]],
      ["allow-issuer-id", ["villages", "allow-issuer-id", "full", `issuer-${Date.now()}`, "--data", data]],
    ] as const) {
      const r = await links([...args]);
      const code = errorCode(r.stderr);
      count(result.cliOutcomes, `${what} exit ${r.code} ${code ?? ""}`.trim());
      if (!(r.code === 0 || (r.code === 1 && (code === "storage_full" || code === "storage_error")))) {
        result.badCli.push(`${what}: exit ${r.code} ${r.stderr.slice(0, 200)}`);
      }
    }
    check("full");

    // A few pages free: writes fail part-way through their sequence.
    for (let pages = 0; pages < o.steps; pages++) {
      leaveFree(filler, fullSize, pages);
      await writes(result.steppedAnswers, `free-${pages}`);
      check(`${pages} pages free`);
      // fill again what the step used or left
      rmSync(filler, { force: true });
      fillUp(filler);
    }
    await reads("stepped");

    // Space returns.
    rmSync(filler, { force: true });
    const after = bundleText(makeBundle(key, "after"));
    const r = await push(node.url, "full", v.tokens.bob as string, after);
    if (r.status === 200 && r.body.status === "accepted") {
      result.recoveredPush = 1;
      accepted.add((JSON.parse(after) as { bundle_id: string }).bundle_id);
    } else result.retriedBad.push(`first push after freeing space: ${r.status} ${JSON.stringify(r.body)}`);
    for (const b of refused) {
      const rr = await push(node.url, "full", v.tokens.bob as string, b);
      if (rr.status === 200) {
        result.retriedOk++;
        accepted.add((JSON.parse(b) as { bundle_id: string }).bundle_id);
      } else result.retriedBad.push(`retry: ${rr.status} ${JSON.stringify(rr.body)}`);
    }
    check("space back");
    const stored = checkStored(data, "full", accepted);
    result.lost = [...stored.missing, ...stored.notVerifying];
    result.badlyIndexed = stored.badlyIndexed;
    const cmp = await compareWithRebuild(data, join(o.dir, "rebuild"));
    if (cmp.live !== cmp.rebuilt || cmp.onlyLive.length + cmp.onlyRebuilt.length > 0) {
      result.rebuildMismatch = `live ${cmp.live} rows, rebuilt ${cmp.rebuilt}; never indexed: ${cmp.unindexedBundles.join(",") || "-"}; only live: ${cmp.onlyLive.join(" | ").slice(0, 300)}`;
    }
    result.aliveAtEnd = (await fetch(`${node.url}/healthz`)).status === 200;

    // And after a clean restart (whatever start-up repairs, it must not need to).
    await node.stop();
    result.serverErrors.push(...node.log().split("\n").filter((l) => l.includes('"level":"error"')));
    node = await startNode(data);
    const again = checkStored(data, "full", accepted);
    result.lostAfterRestart = [...again.missing, ...again.notVerifying, ...again.badlyIndexed];
  } finally {
    if (node) {
      result.serverErrors.push(...node
        .log()
        .split("\n")
        .filter((l) => l.includes('"level":"error"'))
        .map((l) => l.slice(0, 600)));
      await node.kill();
    }
    unmount(mnt);
  }
  for (const e of result.serverErrors.filter((l) => l.includes("\"status\":500")).slice(0, 3)) console.log(`[faults] disk-full server error: ${e}`);
  figures("disk-full", {
    attempts_when_full: Object.values(result.fullAnswers).reduce((a, b) => a + b, 0),
    attempts_with_few_pages_free: Object.values(result.steppedAnswers).reduce((a, b) => a + b, 0),
    answers_507: [...Object.entries(result.fullAnswers), ...Object.entries(result.steppedAnswers)].filter(([k]) => / 507 /.test(k)).reduce((a, [, b]) => a + b, 0),
    bad_answers: result.badAnswers.length,
    failed_reads: result.failedReads.length,
    corrupt_files: result.corrupt.length,
    torn_last_lines: result.torn.length,
    temp_files_left: result.tempFiles.length,
    retried_ok: result.retriedOk,
    lost: result.lost.length,
    badly_indexed: result.badlyIndexed.length,
    lost_after_restart: result.lostAfterRestart.length,
    index_equals_rebuild: result.rebuildMismatch === null,
    alive: result.aliveAtEnd,
  });
  console.log(`[faults] disk-full answers when full: ${JSON.stringify(result.fullAnswers)}`);
  console.log(`[faults] disk-full answers with 0..${o.steps - 1} pages free: ${JSON.stringify(result.steppedAnswers)}`);
  console.log(`[faults] disk-full CLI: ${JSON.stringify(result.cliOutcomes)}`);
  return result;
}

/**
 * The disk-full tests, sized by the caller: `npm test` (SIZES.fast) and `npm run test:faults`
 * (faultsSizes()). Needs root (mount -t tmpfs); each test passes with the reason printed otherwise.
 */
export function diskFullSuite(sizes: Sizes, opts: { timeoutMs: number }): void {
  const result = runScenarioOnce("links-faults-disk-", opts.timeoutMs, (dir) =>
    runDiskFull({ dir, steps: sizes.diskFullSteps, attemptsWhenFull: sizes.diskFullAttempts }),
  );

  describe("when the data directory's disk is full", () => {
    test("writes answer 507 storage_full (or 503) as JSON {detail, code}, never anything else", () => {
      const r = result();
      if (r.skipped) return console.log(`skipped: ${r.skipped}`);
      expect(r.badAnswers).toEqual([]);
      expect(Object.keys(r.fullAnswers).some((k) => k.includes(" 507 storage_full"))).toBe(true);
    });
    test("reads keep working", () => {
      const r = result();
      if (r.skipped) return;
      expect(r.failedReads).toEqual([]);
    });
    test("CLI writes fail with exit 1 and storage_full", () => {
      const r = result();
      if (r.skipped) return;
      expect(r.badCli).toEqual([]);
    });
    test("nothing half-written remains: every JSON file parses, every JSONL line but a torn last one", () => {
      const r = result();
      if (r.skipped) return;
      expect(r.corrupt).toEqual([]);
      expect(r.tempFiles).toEqual([]);
    });
    test("when space returns the next push is 200, retries succeed, and nothing accepted is lost", () => {
      const r = result();
      if (r.skipped) return;
      expect(r.recoveredPush).toBe(1);
      expect(r.retriedBad).toEqual([]);
      expect(r.lost).toEqual([]);
      expect(r.badlyIndexed).toEqual([]);
      expect(r.rebuildMismatch).toBeNull();
      expect(r.aliveAtEnd).toBe(true);
    });
    test("and after a restart every accepted bundle is still stored, verifies and is indexed once", () => {
      const r = result();
      if (r.skipped) return;
      expect(r.lostAfterRestart).toEqual([]);
    });
  });
}
