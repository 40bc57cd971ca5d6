/**
 * Query by subject on a store of 1M claim rows (100k bundles x 10 claims, written straight into
 * store/index/claims.jsonl): the node's GET /villages/:id/claims?subject= and the CLI's
 * `links claims query --subject`, p50/p99, plus how long the node takes to index the rows.
 * Usage: bun scripts/bench/query.ts [--rows 1000000] [--requests 2000]
 */
import { appendFileSync, mkdirSync } from "node:fs";
import { benchVillage, closedLoop, fmt, percentile, run, startNode } from "./lib.ts";

const arg = (name: string, fallback: number) => Number(process.argv[process.argv.indexOf(name) + 1]) || fallback;
const ROWS = arg("--rows", 1_000_000);
const REQUESTS = arg("--requests", 2000);
const CLAIMS_PER_BUNDLE = 10;

function row(b: number, c: number): string {
  const id = b.toString(16).padStart(32, "0");
  return JSON.stringify({
    bundle_id: id, issuer: "bench-node", window_days: 30, created_at: "2026-11-25T12:00:00Z", village_id: "bench",
    visibility: "village", subject: `wikipedia:en:User_${b}`, predicate: "links.weighted_to",
    object: `wikipedia:en:User_${b}_${c}`, value: 0.6931471805599453, computed_at: "2026-11-25T12:00:00Z",
    derivation: "log(1 + count_30d)", evidence: [],
  });
}

export async function queryBench(): Promise<Array<[string, string]>> {
  const { dir, data, token } = await benchVillage("links-bench-query-");
  mkdirSync(`${data}/store/index`, { recursive: true });
  const bundles = Math.ceil(ROWS / CLAIMS_PER_BUNDLE);
  let chunk: string[] = [];
  for (let b = 0; b < bundles; b++) {
    for (let c = 0; c < CLAIMS_PER_BUNDLE; c++) chunk.push(row(b, c));
    if (chunk.length >= 100_000) {
      appendFileSync(`${data}/store/index/claims.jsonl`, `${chunk.join("\n")}\n`);
      chunk = [];
    }
  }
  if (chunk.length) appendFileSync(`${data}/store/index/claims.jsonl`, `${chunk.join("\n")}\n`);
  const rows: Array<[string, string]> = [];
  const t0 = performance.now();
  const node = await startNode(data);
  try {
    const headers = { authorization: `Bearer ${token}` };
    rows.push([`first start: index ${fmt(ROWS)} rows`, `${fmt((performance.now() - t0) / 1000, 1)} s to listening (later starts resume where it stopped)`]);
    const first = await fetch(`${node.url}/villages/bench/claims?subject=wikipedia:en:User_1&limit=10`, { headers });
    const got = ((await first.json()) as { claims: unknown[] }).claims.length;
    if (got !== CLAIMS_PER_BUNDLE) throw new Error(`expected ${CLAIMS_PER_BUNDLE} rows for one subject, got ${got}`);
    let i = 0;
    const r = await closedLoop(1, 60, () =>
      i++ < REQUESTS ? new Request(`${node.url}/villages/bench/claims?subject=wikipedia:en:User_${(i * 7919) % bundles}`, { headers }) : null,
    );
    rows.push([`HTTP query by subject (${fmt(r.requests)} requests)`, `p50 ${fmt(r.p50, 2)} ms, p99 ${fmt(r.p99, 2)} ms, statuses ${JSON.stringify(r.statuses)}`]);
    rows.push(["node RSS after queries", `${fmt(node.rssKb() / 1024, 1)} MiB`]);
  } finally {
    await node.stop();
  }
  const cli: number[] = [];
  for (let k = 0; k < 50; k++) {
    const t = performance.now();
    await run(["claims", "query", "--subject", `wikipedia:en:User_${(k * 104729) % bundles}`, "--json", "--data", data]);
    cli.push(performance.now() - t);
  }
  cli.sort((a, b) => a - b);
  rows.push(["CLI claims query --subject (50 runs)", `p50 ${fmt(percentile(cli, 50), 2)} ms, p99 ${fmt(percentile(cli, 99), 2)} ms (process start included)`]);
  dir.removeAtExit();
  return rows;
}

if (import.meta.main) {
  for (const [k, v] of await queryBench()) console.log(`${k.padEnd(44)} ${v}`);
}
