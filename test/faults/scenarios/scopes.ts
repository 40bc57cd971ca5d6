/**
 * Scope shadowing: one bundle pushed to the public store and to villages in every order, over
 * HTTP and with `links claims ingest` beside the running node, at once, and through quarantine
 * (held in a village, pushed elsewhere, then approved over HTTP or with the CLI). A copy in one
 * scope must never make the bundle look stored in another: every scope it was pushed to stores
 * it (its own file), indexes it once and serves it; the scopes it was not pushed to do not have
 * it; a second push answers duplicate; `links claims reindex` gives the same rows, twice.
 */
import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { links, linksOk } from "../../e2e/harness.ts";
import { startNode, type RunningNode } from "../../e2e/node.ts";
import { bundleText, makeBundle, signingKey } from "../lib/bundles.ts";
import { checkDataDir, compareWithRebuild } from "../lib/datadir.ts";
import { figures, type Sizes } from "../lib/scale.ts";
import { runScenarioOnce } from "../lib/suite.ts";
import { makeVillage, type TestVillage } from "../lib/village.ts";

/** A step: push to a scope ("public", "a", "b") over HTTP or with the CLI, or hold it in b's quarantine. */
type Step = `${"public" | "a" | "b"}:${"http" | "cli"}` | "b:hold";
interface Order {
  name: string;
  steps: Step[];
  /** all steps at once instead of one after the other */
  together?: boolean;
  /** how b's quarantine entry is approved at the end */
  approve?: "http" | "cli";
}

export const ORDERS: Order[] = [
  { name: "public, then village a", steps: ["public:http", "a:http"] },
  { name: "village a, then public", steps: ["a:http", "public:http"] },
  { name: "village a, then village b", steps: ["a:http", "b:http"] },
  { name: "public with the CLI, then village a over HTTP", steps: ["public:cli", "a:http"] },
  { name: "public over HTTP, then village a with the CLI", steps: ["public:http", "a:cli"] },
  { name: "village a, public, village b, all with the CLI", steps: ["a:cli", "public:cli", "b:cli"] },
  { name: "public, village a and village b at once", steps: ["public:http", "a:http", "b:http"], together: true },
  { name: "quarantined in b, then public, approved over HTTP", steps: ["b:hold", "public:http"], approve: "http" },
  { name: "public, then quarantined in b, approved with the CLI", steps: ["public:http", "b:hold"], approve: "cli" },
  { name: "village a, then quarantined in b, approved over HTTP", steps: ["a:http", "b:hold"], approve: "http" },
  { name: "quarantined in b, then village a and public, approved with the CLI", steps: ["b:hold", "a:cli", "public:http"], approve: "cli" },
];

const HELD = "links.held";

export interface ScopesResult {
  attempts: number;
  /** a step that answered other than accepted (or quarantined for a hold) */
  refused: string[];
  /** a scope the bundle was pushed to that does not hold it: no file, no rows, or not served */
  shadowed: string[];
  /** a scope holding the bundle with rows twice */
  doubled: string[];
  /** a scope the bundle was never pushed to that has it */
  leaked: string[];
  /** a second push answering other than duplicate */
  badRepush: string[];
  identicalReindexes: boolean;
  equalToRebuild: boolean;
  corrupt: string[];
}

export async function runScopes(o: { dir: string; rounds: number }): Promise<ScopesResult> {
  const data = join(o.dir, "data");
  const a = await makeVillage(data, "a", { members: ["bob"], scratch: o.dir, policy: { allowed_predicates: ["links.weighted_to", HELD] } });
  const b = await makeVillage(data, "b", { members: ["carol"], scratch: o.dir });
  const villages: Record<string, TestVillage> = { a, b };
  const pusherOf: Record<string, string> = { a: "bob", b: "carol" };
  const key = signingKey();
  const node = await startNode(data, ["--trust-proxy", "127.0.0.1"]);
  const out: ScopesResult = { attempts: 0, refused: [], shadowed: [], doubled: [], leaked: [], badRepush: [], identicalReindexes: false, equalToRebuild: false, corrupt: [] };
  let address = 0;

  const httpPush = async (scope: string, text: string) => {
    // Through the trusted proxy as a TLS terminator would send it: a token needs X-Forwarded-Proto.
    const headers: Record<string, string> = { "content-type": "application/json", "x-forwarded-proto": "https" };
    if (scope === "public") headers["x-forwarded-for"] = `10.9.${(address >> 8) & 255}.${address++ & 255}`;
    else headers.authorization = `Bearer ${villages[scope]?.tokens[pusherOf[scope] as string]}`;
    const res = await fetch(`${node.url}${scope === "public" ? "/inbox" : `/villages/${scope}/inbox`}`, { method: "POST", headers, body: text });
    return ((await res.json()) as { status?: string; code?: string }).status ?? `${res.status}`;
  };
  const cliPush = async (scope: string, file: string) => {
    const r = await links(["claims", "ingest", file, "--json", "--data", data, ...(scope === "public" ? [] : ["--village-id", scope])]);
    try {
      return (JSON.parse(r.stdout) as { status: string }).status;
    } catch {
      return `exit ${r.code}: ${r.stderr.trim().slice(0, 200)}`;
    }
  };

  const attempts: Array<{ order: Order; id: string; subject: string; text: string; scopes: string[] }> = [];
  try {
    for (let round = 0; round < o.rounds; round++) {
      for (const order of ORDERS) {
        const subject = `scopes:${round}:${ORDERS.indexOf(order)}`;
        const bundle = makeBundle(key, "scopes", { subject, predicate: order.approve ? HELD : "links.weighted_to" });
        const text = bundleText(bundle);
        const file = join(o.dir, `${bundle.bundle_id}.json`);
        writeFileSync(file, text);
        const run = async (step: Step) => {
          const [scope, how] = step.split(":") as [string, string];
          const status = how === "cli" ? await cliPush(scope, file) : await httpPush(scope, text);
          const want = how === "hold" ? "quarantined" : "accepted";
          if (status !== want) out.refused.push(`${order.name} ${bundle.bundle_id}: ${step} answered ${status}, not ${want}`);
        };
        if (order.together) await Promise.all(order.steps.map(run));
        else for (const step of order.steps) await run(step);
        attempts.push({ order, id: bundle.bundle_id, subject, text, scopes: [...new Set(order.steps.map((s) => s.split(":")[0] as string))] });
        out.attempts++;
      }
    }

    // b's held bundles: allow the predicate, then approve, half over HTTP and half with the CLI.
    const current = (JSON.parse((await linksOk(["villages", "show", "b", "--json", "--data", data])).stdout) as { policy: Record<string, unknown> }).policy;
    const policy = join(o.dir, "b-allows-held.json");
    writeFileSync(policy, JSON.stringify({ ...current, allowed_predicates: ["links.weighted_to", HELD] }));
    await linksOk(["policy", "apply-local", "b", policy, "--data", data]);
    for (const t of attempts.filter((x) => x.order.approve)) {
      if (t.order.approve === "http") {
        const res = await fetch(`${node.url}/villages/b/quarantine/${t.id}/approve`, { method: "POST", headers: { authorization: `Bearer ${b.tokens.alice}`, "x-forwarded-proto": "https" } });
        if (res.status !== 200) out.refused.push(`${t.order.name} ${t.id}: approval over HTTP answered ${res.status} ${await res.text()}`);
      } else {
        const r = await links(["quarantine", "approve", t.id, "--village-id", "b", "--data", data]);
        if (r.code !== 0) out.refused.push(`${t.order.name} ${t.id}: approval with the CLI exited ${r.code} ${r.stderr.trim()}`);
      }
    }

    await judge(node, data, villages, pusherOf, attempts, out);
    for (const t of attempts) {
      for (const scope of t.scopes) {
        const status = await httpPush(scope, t.text);
        if (status !== "duplicate") out.badRepush.push(`${t.order.name} ${t.id}: a second push to ${scope} answered ${status}`);
      }
    }

    const cmp = await compareWithRebuild(data, join(o.dir, "rebuild"));
    out.equalToRebuild = cmp.live === cmp.rebuilt && cmp.onlyLive.length + cmp.onlyRebuilt.length === 0;
    const first = readFileSync(join(o.dir, "rebuild", "store/index/claims.jsonl"), "utf8");
    await linksOk(["claims", "reindex", "--data", join(o.dir, "rebuild")]);
    out.identicalReindexes = readFileSync(join(o.dir, "rebuild", "store/index/claims.jsonl"), "utf8") === first;
  } finally {
    await node.stop();
  }
  const integrity = checkDataDir(data);
  out.corrupt = [...integrity.corrupt, ...integrity.tornLastLines];
  figures("scope shadowing", {
    orders: ORDERS.length,
    attempts: out.attempts,
    pushes: attempts.reduce((n, t) => n + t.order.steps.length, 0),
    refused: out.refused.length,
    shadowed: out.shadowed.length,
    indexed_twice: out.doubled.length,
    leaked_to_other_scopes: out.leaked.length,
    second_push_not_duplicate: out.badRepush.length,
    reindex_twice_identical: out.identicalReindexes,
    live_index_equals_rebuild: out.equalToRebuild,
  });
  for (const p of [...out.refused, ...out.shadowed, ...out.doubled, ...out.leaked, ...out.badRepush].slice(0, 10)) console.log(`[faults] scope shadowing PROBLEM: ${p}`);
  return out;
}

/** Each scope holds (file, one set of rows, served) exactly the bundles pushed to it. */
async function judge(
  node: RunningNode,
  data: string,
  villages: Record<string, TestVillage>,
  pusherOf: Record<string, string>,
  attempts: Array<{ order: Order; id: string; subject: string; scopes: string[] }>,
  out: ScopesResult,
): Promise<void> {
  const rows = new Map<string, number>();
  for (const line of readFileSync(join(data, "store/index/claims.jsonl"), "utf8").split("\n")) {
    if (line.trim() === "") continue;
    const r = JSON.parse(line) as { bundle_id: string; village_id: string | null };
    const k = `${r.village_id ?? "public"}/${r.bundle_id}`;
    rows.set(k, (rows.get(k) ?? 0) + 1);
  }
  for (const t of attempts) {
    for (const scope of ["public", "a", "b"]) {
      const file = join(data, "store/bundles", ...(scope === "public" ? [] : [scope]), `${t.id}.json`);
      const n = rows.get(`${scope}/${t.id}`) ?? 0;
      let served = false;
      if (scope !== "public") {
        const res = await fetch(`${node.url}/villages/${scope}/claims?subject=${encodeURIComponent(t.subject)}`, {
          headers: { authorization: `Bearer ${villages[scope]?.tokens[pusherOf[scope] as string]}`, "x-forwarded-proto": "https" },
        });
        served = ((await res.json()) as { claims?: Array<{ bundle_id: string }> }).claims?.some((c) => c.bundle_id === t.id) ?? false;
      }
      const what = `${t.order.name} ${t.id} in ${scope}: file=${existsSync(file)} rows=${n}${scope === "public" ? "" : ` served=${served}`}`;
      if (t.scopes.includes(scope)) {
        if (!existsSync(file) || n === 0 || (scope !== "public" && !served)) out.shadowed.push(what);
        else if (n > 1) out.doubled.push(what);
      } else if (existsSync(file) || n > 0 || served) out.leaked.push(what);
    }
  }
}

export function scopesSuite(sizes: Sizes, opts: { timeoutMs: number }): void {
  const result = runScenarioOnce("links-faults-scopes-", opts.timeoutMs, (dir) => runScopes({ dir, rounds: sizes.scopeRounds }));

  describe(`when one bundle is pushed to the public store and villages in ${ORDERS.length} orders (${sizes.scopeRounds} round${sizes.scopeRounds === 1 ? "" : "s"})`, () => {
    test("every push and approval is answered as stored (or held), never as a duplicate of another scope", () => {
      expect(result().refused).toEqual([]);
    });
    test("every scope it was pushed to stores, indexes and serves it once; no other scope has it", () => {
      const r = result();
      expect(r.attempts).toBe(ORDERS.length * sizes.scopeRounds);
      expect(r.shadowed).toEqual([]);
      expect(r.doubled).toEqual([]);
      expect(r.leaked).toEqual([]);
    });
    test("a second push to each scope answers duplicate", () => {
      expect(result().badRepush).toEqual([]);
    });
    test("reindex gives the live index back, the same twice", () => {
      const r = result();
      expect(r.equalToRebuild).toBe(true);
      expect(r.identicalReindexes).toBe(true);
      expect(r.corrupt).toEqual([]);
    });
  });
}
