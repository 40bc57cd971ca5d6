/**
 * Concurrent writers on one village: a running node taking pushes and quarantine decisions over
 * HTTP while `links` processes add and revoke members, change issuer lists, apply policies and
 * approve or reject the same quarantined bundles. Afterwards: no lost update (members, tokens,
 * issuer lists and policy match what the audit log says happened, in its order), each
 * quarantined bundle ended exactly one way, nothing is indexed twice, no line is torn.
 */
import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { errorCode, lastLine, links, linksOk, type RunResult } from "../../e2e/harness.ts";
import { startNode } from "../../e2e/node.ts";
import { bundleText, makeBundle, signingKey } from "../lib/bundles.ts";
import { auditRows, checkDataDir, checkStored, compareWithRebuild, indexCounts } from "../lib/datadir.ts";
import { figures, type Sizes } from "../lib/scale.ts";
import { runScenarioOnce } from "../lib/suite.ts";
import { HIGH_RATE, makeVillage, push } from "../lib/village.ts";

export interface WritersResult {
  processes: number;
  pushes: number;
  problems: string[];
  corrupt: string[];
  torn: string[];
  heldApprovedTwice: number;
  heldRaced: number;
}

const VID = "busy";
const HELD = "links.held";

export async function runWriters(o: { dir: string; processes: number; pushes: number }): Promise<WritersResult> {
  const data = join(o.dir, "data");
  const n = o.processes;
  const revocable = Array.from({ length: n }, (_, i) => `old-${i}`);
  const v = await makeVillage(data, VID, { members: ["bob", ...revocable], scratch: o.dir });
  const problems: string[] = [];
  const key = signingKey();
  const node = await startNode(data);
  const cliRuns: Array<{ what: string; r: RunResult }> = [];
  let pushes = 0;
  let raceStored = 0;
  let raceRejected = 0;
  let httpApprovalsWon = 0;
  try {
    // Bundles held by the policy (predicate not allowed yet), then a policy that allows them.
    const held: string[] = [];
    for (let i = 0; i < 2 * n; i++) {
      const r = await push(node.url, VID, v.tokens.bob as string, bundleText(makeBundle(key, `held-${i}`, { predicate: HELD })));
      if (r.status !== 202) problems.push(`holding bundle ${i}: ${r.status} ${JSON.stringify(r.body)}`);
      held.push(String(r.body.bundle_id));
    }
    // whole policies (apply-local refuses a partial one without --merge or --replace)
    const base = (JSON.parse(readFileSync(join(data, "villages", VID, "village.json"), "utf8")) as { policy: Record<string, unknown> }).policy;
    const policyOf = (i: number) => ({ ...base, rate_limit_per_min: HIGH_RATE, allowed_predicates: ["links.weighted_to", HELD], max_window_days: 100 + i });
    const first = join(o.dir, "policy-first.json");
    writeFileSync(first, JSON.stringify(policyOf(0)));
    await linksOk(["policy", "apply-local", VID, first, "--data", data]);
    const policyFiles = Array.from({ length: n }, (_, i) => {
      const f = join(o.dir, `policy-${i + 1}.json`);
      writeFileSync(f, JSON.stringify(policyOf(i + 1)));
      return f;
    });

    const cli = (what: string, args: string[]) => links([...args, "--data", data]).then((r) => void cliRuns.push({ what, r }));
    const admin = { authorization: `Bearer ${v.tokens.alice}`, "content-type": "application/json" };
    const httpDecisions: Array<{ id: string; kind: string; status: number; body: string }> = [];
    const httpDecide = async (id: string, kind: "approve" | "reject") => {
      // a head start for the CLI, which has to start a process first
      await Bun.sleep(Math.random() * 300);
      const res = await fetch(`${node.url}/villages/${VID}/quarantine/${id}/${kind}`, {
        method: "POST",
        headers: admin,
        body: kind === "reject" ? JSON.stringify({ reason: "race" }) : undefined,
      });
      httpDecisions.push({ id, kind, status: res.status, body: await res.text() });
    };
    const accepted: string[] = [];
    const pusher = async (c: number) => {
      for (let i = c; i < o.pushes; i += 4) {
        const r = await push(node.url, VID, v.tokens.bob as string, bundleText(makeBundle(key, `push-${i}`)));
        pushes++;
        if (r.status === 200 && r.body.status === "accepted") accepted.push(String(r.body.bundle_id));
        else problems.push(`push ${i}: ${r.status} ${JSON.stringify(r.body)}`);
      }
    };

    const jobs: Promise<void>[] = [];
    for (let c = 0; c < 4; c++) jobs.push(pusher(c));
    for (let i = 0; i < n; i++) {
      jobs.push(cli("add-member", ["villages", "add-member", VID, `new-${i}`]));
      jobs.push(cli("revoke-member", ["villages", "revoke-member", VID, revocable[i] as string]));
      jobs.push(cli("block-issuer-id", ["villages", "block-issuer-id", VID, `blocked-${i}`]));
      jobs.push(cli("block-issuer-key", ["villages", "block-issuer-key", VID, (i.toString(16).padStart(2, "0")).repeat(32)]));
      jobs.push(cli("apply-local", ["policy", "apply-local", VID, policyFiles[i] as string]));
      // held[2i]: approved twice at once (CLI and HTTP); held[2i+1]: rejected by the CLI while HTTP approves
      jobs.push(cli(`approve ${held[2 * i]}`, ["quarantine", "approve", held[2 * i] as string, "--village-id", VID]));
      jobs.push(httpDecide(held[2 * i] as string, "approve"));
      jobs.push(cli(`reject ${held[2 * i + 1]}`, ["quarantine", "reject", held[2 * i + 1] as string, "--village-id", VID, "--reason", "race"]));
      jobs.push(httpDecide(held[2 * i + 1] as string, "approve"));
    }
    await Promise.all(jobs);

    // Every process either did its job or lost a race it was allowed to lose.
    for (const { what, r } of cliRuns) {
      const code = errorCode(r.stderr);
      const lostRace = (what.startsWith("approve") || what.startsWith("reject")) && r.code === 1 && (code === "not_found" || code === "bundle_not_found");
      if (r.code !== 0 && !lostRace) problems.push(`${what}: exit ${r.code} ${r.stderr.trim().slice(0, 200)}`);
    }
    for (const d of httpDecisions) {
      if (d.status !== 200 && !(d.status === 404 && /not_found/.test(d.body))) problems.push(`HTTP ${d.kind} ${d.id}: ${d.status} ${d.body.slice(0, 200)}`);
    }

    // Members: the new ones with working tokens, the revoked ones refused.
    const members = JSON.parse((await linksOk(["villages", "members", VID, "--json", "--data", data])).stdout) as Array<{ member_id: string; revoked: boolean }>;
    const byId = new Map(members.map((m) => [m.member_id, m]));
    for (let i = 0; i < n; i++) {
      if (byId.get(`new-${i}`)?.revoked !== false) problems.push(`member new-${i} is missing or revoked`);
      if (byId.get(revocable[i] as string)?.revoked !== true) problems.push(`member ${revocable[i]} is not revoked`);
      const gone = await fetch(`${node.url}/villages/${VID}/claims?limit=1`, { headers: { authorization: `Bearer ${v.tokens[revocable[i] as string]}` } });
      if (gone.status !== 401) problems.push(`the revoked token of ${revocable[i]} answers ${gone.status}`);
    }
    for (const { what, r } of cliRuns.filter((c) => c.what === "add-member")) {
      const res = await fetch(`${node.url}/villages/${VID}/claims?limit=1`, { headers: { authorization: `Bearer ${lastLine(r.stdout)}` } });
      if (res.status !== 200) problems.push(`a token printed by ${what} answers ${res.status}`);
    }

    // Policy: the history is the order of the village lock. Every row is either one of the
    // policies applied with apply-local, or the row before it plus exactly the one issuer an
    // edit added: an edit built on a stale policy (a lost update) fits neither.
    const rows = auditRows(data).filter((r) => r.village_id === VID);
    const village = JSON.parse(readFileSync(join(data, "villages", VID, "village.json"), "utf8")) as { policy: Record<string, unknown> };
    const history = readFileSync(join(data, "villages", VID, "policy_history.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as { policy: Record<string, unknown> });
    const applied = new Set(policyFiles.map((f) => JSON.stringify(sortKeys(JSON.parse(readFileSync(f as string, "utf8"))))));
    const list = (p: Record<string, unknown>, k: string) => ((p[k] as string[]) ?? []).slice();
    for (let i = 3; i < history.length; i++) {
      const prev = history[i - 1]!.policy;
      const cur = history[i]!.policy;
      if (applied.has(JSON.stringify(sortKeys(cur)))) continue;
      const grew = ["issuer_id_blocklist", "issuer_blocklist"].filter((k) => JSON.stringify(list(cur, k)) !== JSON.stringify(list(prev, k)));
      const same = JSON.stringify(sortKeys({ ...cur, issuer_id_blocklist: 0, issuer_blocklist: 0 })) === JSON.stringify(sortKeys({ ...prev, issuer_id_blocklist: 0, issuer_blocklist: 0 }));
      const k = grew[0] as string;
      const oneMore = grew.length === 1 && list(cur, k).length === list(prev, k).length + 1 && list(prev, k).every((x) => list(cur, k).includes(x));
      if (!same || !oneMore) problems.push(`policy_history row ${i} is neither an applied policy nor the row before it plus one issuer`);
    }
    if (JSON.stringify(sortKeys(village.policy)) !== JSON.stringify(sortKeys(history[history.length - 1]?.policy ?? {}))) {
      problems.push("village.json's policy is not the last row of its policy history");
    }
    // genesis, 2 before, then n apply-local and 2n issuer edits
    if (history.length !== 3 * n + 3) problems.push(`policy_history has ${history.length} rows, expected ${3 * n + 3}`);
    const counted = (action: string) => rows.filter((r) => r.action === action).length;
    for (const [action, want] of [["member.add", n + 1 + 1 + n], ["member.revoke", n], ["issuer.block", 2 * n], ["policy.apply", 3 * n + 3]] as const) {
      if (counted(action) !== want) problems.push(`${counted(action)} ${action} audit rows, expected ${want}`);
    }

    // Quarantine: each held bundle ended exactly one way.
    const counts = indexCounts(data);
    for (let i = 0; i < n; i++) {
      if (existsSync(join(data, "store/bundles", VID, `${held[2 * i + 1]}.json`))) raceStored++;
      else raceRejected++;
    }
    httpApprovalsWon = httpDecisions.filter((d) => d.kind === "approve" && d.status === 200).length;
    for (let i = 0; i < n; i++) {
      for (const [id, mayReject] of [[held[2 * i] as string, false], [held[2 * i + 1] as string, true]] as const) {
        const stored = existsSync(join(data, "store/bundles", VID, `${id}.json`));
        const rejected = existsSync(join(data, "store/rejected", VID, `${id}.json`));
        const stillHeld = existsSync(join(data, "store/quarantine", VID, `${id}.json`)) || existsSync(join(data, "store/quarantine", VID, "meta", `${id}.json`));
        const approvals = rows.filter((r) => r.bundle_id === id && r.action === "quarantine.approve").length;
        const rejections = rows.filter((r) => r.bundle_id === id && r.action === "quarantine.reject").length;
        const outcome = `${id}: stored=${stored} rejected=${rejected} held=${stillHeld} approve_rows=${approvals} reject_rows=${rejections} index_rows=${counts.get(id) ?? 0}`;
        const one = stored ? !rejected && approvals === 1 && rejections === 0 && counts.get(id) === 1 : rejected && mayReject && approvals === 0 && rejections === 1 && !counts.has(id);
        if (!one || stillHeld) problems.push(`held bundle did not end exactly one way: ${outcome}`);
      }
    }

    const st = checkStored(data, VID, accepted);
    problems.push(...st.missing.map((id) => `accepted push ${id} is not stored`), ...st.badlyIndexed.map((s) => `accepted push ${s}`));
    const cmp = await compareWithRebuild(data, join(o.dir, "rebuild"));
    if (cmp.live !== cmp.rebuilt || cmp.onlyLive.length + cmp.onlyRebuilt.length > 0) problems.push(`index differs from a rebuild: live ${cmp.live}, rebuilt ${cmp.rebuilt}`);
  } finally {
    await node.stop();
  }
  const integrity = checkDataDir(data);
  const result: WritersResult = {
    processes: cliRuns.length,
    pushes,
    problems,
    corrupt: integrity.corrupt,
    torn: integrity.tornLastLines,
    heldApprovedTwice: n,
    heldRaced: n,
  };
  figures("concurrent writers", {
    cli_processes: result.processes,
    http_pushes: pushes,
    double_approvals: n,
    approve_reject_races: n,
    races_won_by_http_approve: httpApprovalsWon,
    reject_races_ended_stored: raceStored,
    reject_races_ended_rejected: raceRejected,
    jsonl_lines_checked: integrity.jsonlLines,
    torn_lines: integrity.tornLastLines.length + integrity.corrupt.length,
    lost_updates: problems.length,
  });
  for (const p of problems.slice(0, 10)) console.log(`[faults] concurrent writers PROBLEM: ${p}`);
  return result;
}

/** A JSON value with object keys in sorted order, to compare policies by content. */
function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === "object") return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]));
  return v;
}

/**
 * The concurrent writers tests, sized by the caller: `npm test` (SIZES.fast) and
 * `npm run test:faults` (faultsSizes()). Each of the 7 kinds of `links` process runs
 * `writerProcesses` times.
 */
export function writersSuite(sizes: Sizes, opts: { timeoutMs: number }): void {
  const result = runScenarioOnce("links-faults-writers-", opts.timeoutMs, (dir) =>
    runWriters({ dir, processes: sizes.writerProcesses, pushes: sizes.writerPushes }),
  );

  describe(`when the node and ${sizes.writerProcesses * 7} links processes write one village at the same time`, () => {
    test("no update is lost and every quarantined bundle ends exactly one way", () => {
      const r = result();
      expect(r.processes).toBeGreaterThan(0);
      expect(r.problems).toEqual([]);
    });
    test("no line is torn and every file parses", () => {
      const r = result();
      expect(r.corrupt).toEqual([]);
      expect(r.torn).toEqual([]);
    });
  });
}
