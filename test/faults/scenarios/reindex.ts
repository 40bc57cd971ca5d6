/**
 * Reindex races: clients push bundles to a real node (some to the public store and a village
 * both) while real `links claims reindex` processes rebuild the index one after another. Then:
 * every bundle that got a 200 has exactly one set of index rows in its scope and is found by a
 * village query over HTTP; a re-push answers "duplicate" only for bundles that really are
 * indexed; two reindexes with nothing pushed give identical files, equal to the live index.
 * Pushes keep being accepted while a reindex runs (a 503 would have to carry Retry-After).
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { links } from "../../e2e/harness.ts";
import { startNode } from "../../e2e/node.ts";
import { bundleText, makeBundle, signingKey } from "../lib/bundles.ts";
import { checkDataDir, compareWithRebuild } from "../lib/datadir.ts";
import { runPool } from "../lib/http.ts";
import { figures, type Sizes } from "../lib/scale.ts";
import { runScenarioOnce } from "../lib/suite.ts";
import { makeVillage } from "../lib/village.ts";

const VID = "busy";
const CLIENTS = 4;

export interface ReindexRaceResult {
  reindexes: number;
  reindexFailures: string[];
  pushesDuringReindex: number;
  acked: number;
  carriedOver: number;
  /** acknowledged (scope, bundle) without exactly one set of rows */
  missingRows: string[];
  doubleRows: string[];
  /** acknowledged village bundles a query by subject over HTTP did not find */
  notQueryable: string[];
  /** re-pushes answering other than duplicate, or duplicate for a bundle without rows */
  badRepush: string[];
  /** answers other than 200 (and 503 with Retry-After) while pushing */
  unexpected: string[];
  unavailable: number;
  identicalReindexes: boolean;
  equalToRebuild: boolean;
  corrupt: string[];
  /** slowest push and /healthz answers while the reindexes ran (printed, not judged) */
  slowestPushMs: number;
  slowestHealthMs: number;
}

interface Acked {
  scope: string | null;
  id: string;
  subject: string;
  text: string;
}

export async function runReindexRace(o: { dir: string; runs: number; pushes: number }): Promise<ReindexRaceResult> {
  const data = join(o.dir, "data");
  const v = await makeVillage(data, VID, { members: ["bob"], scratch: o.dir });
  const bob = v.tokens.bob as string;
  // The public inbox is limited per client address: public pushes come "through a proxy" from
  // many addresses, so the limit never answers for the node.
  const node = await startNode(data, ["--trust-proxy", "127.0.0.1"]);
  let address = 0;
  const key = signingKey();
  const acked: Acked[] = [];
  const unexpected: string[] = [];
  let unavailable = 0;
  let sent = 0;
  let duringReindex = 0;
  let reindexing = false;
  let reindexDone = false;
  const reindexFailures: string[] = [];
  let carriedOver = 0;
  let slowestPushMs = 0;
  let slowestHealthMs = 0;

  const post = async (path: string, text: string, token?: string) => {
    // Through the trusted proxy as a TLS terminator would send it: a token needs X-Forwarded-Proto.
    const headers: Record<string, string> = { "content-type": "application/json", "x-forwarded-proto": "https" };
    if (token) headers.authorization = `Bearer ${token}`;
    else {
      const n = address++;
      headers["x-forwarded-for"] = `10.${(n >> 8) & 255}.${n & 255}.1`;
    }
    const res = await fetch(`${node.url}${path}`, { method: "POST", headers, body: text });
    return { status: res.status, retryAfter: res.headers.get("retry-after"), body: (await res.json()) as { status?: string; code?: string } };
  };
  /** Pushes until it is answered (a 503 is retried after its Retry-After); returns the status field. */
  const pushOnce = async (scope: string | null, text: string): Promise<string | undefined> => {
    for (;;) {
      const r = scope === null ? await post("/inbox", text) : await post(`/villages/${scope}/inbox`, text, bob);
      if (r.status === 503 && r.body.code === "unavailable" && r.retryAfter !== null) {
        unavailable++;
        await Bun.sleep(Number(r.retryAfter) * 1000);
        continue;
      }
      if (r.status !== 200) unexpected.push(`${scope ?? "public"}: ${r.status} ${JSON.stringify(r.body)}`);
      return r.body.status;
    }
  };

  let serial = 0;
  const pusher = async () => {
    while (!reindexDone || sent < o.pushes) {
      const n = serial++;
      const subject = `race:${n}`;
      const b = makeBundle(key, "race", { subject });
      const text = bundleText(b);
      // every tenth bundle goes to the public store as well: one set of rows per scope
      const scopes: Array<string | null> = n % 10 === 0 ? [null, VID] : [VID];
      for (const scope of scopes) {
        const during = reindexing;
        const t = performance.now();
        const status = await pushOnce(scope, text);
        if (during) slowestPushMs = Math.max(slowestPushMs, performance.now() - t);
        sent++;
        if (during) duringReindex++;
        if (status === "accepted") acked.push({ scope, id: b.bundle_id, subject, text });
        else unexpected.push(`${scope ?? "public"} ${b.bundle_id}: ${status}`);
      }
    }
  };
  const reindexer = async () => {
    while (sent < 20) await Bun.sleep(5);
    for (let i = 0; i < o.runs; i++) {
      reindexing = true;
      const r = await links(["claims", "reindex", "--json", "--data", data]);
      reindexing = false;
      if (r.code !== 0) reindexFailures.push(`exit ${r.code}: ${r.stderr.trim().slice(0, 300)}`);
      else carriedOver += (JSON.parse(r.stdout) as { carried?: number }).carried ?? 0;
    }
    reindexDone = true;
  };

  let result: ReindexRaceResult;
  try {
    const health = async () => {
      while (!reindexDone) {
        const t = performance.now();
        await fetch(`${node.url}/healthz`);
        slowestHealthMs = Math.max(slowestHealthMs, performance.now() - t);
        await Bun.sleep(20);
      }
    };
    await Promise.all([reindexer(), health(), ...Array.from({ length: CLIENTS }, pusher)]);

    const rows = rowCounts(data);
    const missingRows: string[] = [];
    const doubleRows: string[] = [];
    for (const a of acked) {
      const n = rows.get(`${a.scope ?? "-"}/${a.id}`) ?? 0;
      if (n === 0) missingRows.push(`${a.scope ?? "public"} ${a.id}`);
      else if (n > 1) doubleRows.push(`${a.scope ?? "public"} ${a.id}: ${n} rows`);
    }
    const notQueryable: string[] = [];
    await runPool(
      acked.filter((a) => a.scope === VID),
      8,
      async (a) => {
        const res = await fetch(`${node.url}/villages/${VID}/claims?subject=${encodeURIComponent(a.subject)}`, { headers: { authorization: `Bearer ${bob}`, "x-forwarded-proto": "https" } });
        const body = (await res.json()) as { claims?: Array<{ bundle_id: string }> };
        if (res.status !== 200 || body.claims?.length !== 1 || body.claims[0]?.bundle_id !== a.id) notQueryable.push(`${a.id}: ${res.status} ${JSON.stringify(body).slice(0, 120)}`);
      },
    );
    const badRepush: string[] = [];
    await runPool(acked, 8, async (a) => {
      const status = await pushOnce(a.scope, a.text);
      const indexed = (rows.get(`${a.scope ?? "-"}/${a.id}`) ?? 0) > 0;
      if (status !== "duplicate") badRepush.push(`${a.scope ?? "public"} ${a.id}: ${status}`);
      else if (!indexed) badRepush.push(`${a.scope ?? "public"} ${a.id}: duplicate, but not indexed`);
    });

    // With nothing pushed: two reindexes give the same file, and the live index is what they give.
    const cmp = await compareWithRebuild(data, join(o.dir, "rebuild"));
    const again = await links(["claims", "reindex", "--data", join(o.dir, "rebuild")]);
    const first = readFileSync(join(o.dir, "rebuild", "store/index/claims.jsonl"), "utf8");
    const second = await links(["claims", "reindex", "--data", join(o.dir, "rebuild")]);
    const identical = again.code === 0 && second.code === 0 && readFileSync(join(o.dir, "rebuild", "store/index/claims.jsonl"), "utf8") === first;

    result = {
      reindexes: o.runs,
      reindexFailures,
      pushesDuringReindex: duringReindex,
      acked: acked.length,
      carriedOver,
      missingRows,
      doubleRows,
      notQueryable,
      badRepush,
      unexpected,
      unavailable,
      identicalReindexes: identical,
      equalToRebuild: cmp.live === cmp.rebuilt && cmp.onlyLive.length + cmp.onlyRebuilt.length === 0,
      corrupt: [],
      slowestPushMs,
      slowestHealthMs,
    };
  } finally {
    await node.stop();
  }
  const integrity = checkDataDir(data);
  result.corrupt = [...integrity.corrupt, ...integrity.tornLastLines];
  figures("reindex race", {
    reindexes: result.reindexes,
    reindex_failures: result.reindexFailures.length,
    pushes_while_reindexing: result.pushesDuringReindex,
    acked_200: result.acked,
    rows_carried_over_by_reindex: result.carriedOver,
    acked_without_rows: result.missingRows.length,
    acked_with_rows_twice: result.doubleRows.length,
    not_found_by_http_query: result.notQueryable.length,
    repush_not_duplicate_or_unindexed: result.badRepush.length,
    unavailable_503: result.unavailable,
    slowest_push_while_reindexing_ms: Math.round(result.slowestPushMs),
    slowest_healthz_ms: Math.round(result.slowestHealthMs),
    other_answers: result.unexpected.length,
    reindex_twice_identical: result.identicalReindexes,
    live_index_equals_rebuild: result.equalToRebuild,
  });
  for (const p of [...result.missingRows, ...result.doubleRows, ...result.notQueryable, ...result.badRepush, ...result.unexpected, ...result.reindexFailures].slice(0, 10)) {
    console.log(`[faults] reindex race PROBLEM: ${p}`);
  }
  return result;
}

/** "<scope>/<bundle_id>" -> rows in claims.jsonl ("-": the public store). */
function rowCounts(root: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const line of readFileSync(join(root, "store/index/claims.jsonl"), "utf8").split("\n")) {
    if (line.trim() === "") continue;
    const r = JSON.parse(line) as { bundle_id: string; village_id: string | null };
    const k = `${r.village_id ?? "-"}/${r.bundle_id}`;
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  return counts;
}

export function reindexSuite(sizes: Sizes, opts: { timeoutMs: number }): void {
  const result = runScenarioOnce("links-faults-reindex-", opts.timeoutMs, (dir) => runReindexRace({ dir, runs: sizes.reindexRuns, pushes: sizes.reindexPushes }));

  describe(`when links claims reindex runs ${sizes.reindexRuns} times while ${CLIENTS} clients push`, () => {
    test("every reindex succeeds and pushes keep being accepted meanwhile", () => {
      const r = result();
      expect(r.reindexFailures).toEqual([]);
      expect(r.unexpected).toEqual([]);
      expect(r.pushesDuringReindex).toBeGreaterThan(0);
    });
    test("every acknowledged bundle has one set of rows in its scope and is found over HTTP", () => {
      const r = result();
      expect(r.acked).toBeGreaterThan(0);
      expect(r.missingRows).toEqual([]);
      expect(r.doubleRows).toEqual([]);
      expect(r.notQueryable).toEqual([]);
    });
    test("a re-push answers duplicate, and only for bundles that really are indexed", () => {
      expect(result().badRepush).toEqual([]);
    });
    test("two reindexes in a row give identical files, equal to the live index", () => {
      const r = result();
      expect(r.identicalReindexes).toBe(true);
      expect(r.equalToRebuild).toBe(true);
      expect(r.corrupt).toEqual([]);
    });
  });
}
