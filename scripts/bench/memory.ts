/**
 * Memory: the node's RSS after ingesting N signed 10-claim bundles (default 100k) through its
 * inbox, and the rate limiter's heap with 1M distinct keys.
 * Usage: bun scripts/bench/memory.ts [--bundles 100000]
 */
import { RateLimiter } from "../../src/server/middleware/rate-limit/limiter.ts";
import { benchVillage, closedLoop, fmt, makeBundles, startNode } from "./lib.ts";

const BUNDLES = Number(process.argv[process.argv.indexOf("--bundles") + 1]) || 100_000;

export async function memoryBench(): Promise<Array<[string, string]>> {
  const rows: Array<[string, string]> = [];
  const { dir, data, token } = await benchVillage("links-bench-memory-");
  const node = await startNode(data);
  try {
    const before = node.rssKb();
    const headers = { authorization: `Bearer ${token}`, "content-type": "application/json" };
    let sent = 0;
    const started = performance.now();
    // generate in slices so the load generator's own memory stays small
    while (sent < BUNDLES) {
      const slice = makeBundles(Math.min(10_000, BUNDLES - sent), 10, "bench-node", `m${sent}_`);
      let i = 0;
      const r = await closedLoop(16, 3600, () => (i < slice.length ? new Request(`${node.url}/villages/bench/inbox`, { method: "POST", headers, body: slice[i++] }) : null));
      if ((r.statuses[200] ?? 0) !== slice.length) throw new Error(`unexpected statuses ${JSON.stringify(r.statuses)}`);
      sent += slice.length;
    }
    rows.push([`node RSS after ${fmt(BUNDLES)} bundles`, `${fmt(node.rssKb() / 1024, 1)} MiB (before: ${fmt(before / 1024, 1)} MiB; ${fmt((performance.now() - started) / 1000, 0)} s with generation)`]);
    // the node collects in full once it has been quiet for two of its 2 s ticks
    await Bun.sleep(5000);
    rows.push(["node RSS at rest, 5 s after that load", `${fmt(node.rssKb() / 1024, 1)} MiB`]);
  } finally {
    await node.stop();
    dir.removeAtExit();
  }
  Bun.gc(true);
  const heapBefore = process.memoryUsage().heapUsed;
  const limiter = new RateLimiter();
  for (let i = 0; i < 1_000_000; i++) limiter.consume(`198.51.100.${i % 250}:${i}`, 60);
  Bun.gc(true);
  rows.push([
    "rate limiter, 1M distinct keys",
    `${fmt(limiter.size)} keys kept (capacity), heap +${fmt((process.memoryUsage().heapUsed - heapBefore) / 1024 / 1024, 1)} MiB`,
  ]);
  return rows;
}

if (import.meta.main) {
  for (const [k, v] of await memoryBench()) console.log(`${k.padEnd(40)} ${v}`);
}
