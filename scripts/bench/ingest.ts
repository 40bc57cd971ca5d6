/**
 * Village inbox ingest: the compiled node on loopback with a temp data dir, unique signed
 * 10-claim bundles pushed at concurrency 1, 16 and 64 for a fixed time each. Prints bundles/s,
 * p50/p99 latency, RSS, and in the same run the single-core native verify rate (the limit).
 * Usage: bun scripts/bench/ingest.ts [--seconds 5]
 */
import { rate } from "./crypto.ts";
import { benchVillage, closedLoop, fdatasyncMs, fileCreateRate, filesystemOf, fmt, httpFloor, type LoadResult, makeBundles, startNode, wrkPath, wrkPost } from "./lib.ts";
import { generateSeed, publicKeyFromSeed, sign, verify } from "../../src/core/ed25519.ts";

const seconds = Number(process.argv[process.argv.indexOf("--seconds") + 1]) || 5;
const levels = [1, 16, 64];

export async function ingestBench(): Promise<Array<[string, string]>> {
  const seed = generateSeed();
  const pub = publicKeyFromSeed(seed);
  const msg = new TextEncoder().encode("x".repeat(3000));
  const sig = sign(msg, seed);
  const verifyRate = rate(() => verify(sig, msg, pub), 1500);

  const { dir, data, token } = await benchVillage("links-bench-ingest-");

  const genStart = performance.now();
  const bodies = makeBundles(Math.ceil(8000 * seconds * levels.length), 10);
  const genSeconds = (performance.now() - genStart) / 1000;
  const node = await startNode(data);
  const rows: Array<[string, string]> = [];
  try {
    const rssBefore = node.rssKb();
    let next = 0;
    const url = `${node.url}/villages/bench/inbox`;
    const headers = { authorization: `Bearer ${token}`, "content-type": "application/json" };
    rows.push(["native verify (1 core, same run)", `${fmt(verifyRate)} verifies/s`]);
    rows.push(["bundles pre-generated", `${fmt(bodies.length)} in ${fmt(genSeconds, 1)} s`]);
    const wrk = wrkPath();
    const bodiesFile = `${dir.path}/bodies.jsonl`;
    if (wrk) await Bun.write(bodiesFile, `${bodies.join("\n")}\n`);
    rows.push(["load generator", wrk ? `wrk (${wrk})` : "Bun fetch client with keep-alive (install wrk for a lighter one)"]);
    const perLevel = Math.floor(bodies.length / levels.length);
    for (const [k, c] of levels.entries()) {
      let r: LoadResult;
      const cpuBefore = node.cpu();
      if (wrk) {
        r = await wrkPost({ url, token, bodiesFile, firstBody: k * perLevel, bodyCount: perLevel, connections: c, seconds });
      } else {
        r = await closedLoop(c, seconds, () => (next < bodies.length ? new Request(url, { method: "POST", headers, body: bodies[next++] }) : null));
      }
      const ok = (r.statuses[200] ?? 0);
      const cpuAfter = node.cpu();
      const perBundle = (s: number) => fmt((s / Math.max(ok, 1)) * 1e6);
      rows.push([
        `ingest c=${c}`,
        `${fmt(ok / r.seconds)} bundles/s, p50 ${fmt(r.p50, 2)} ms, p99 ${fmt(r.p99, 2)} ms, ${fmt((ok / r.seconds / verifyRate) * 100, 1)}% of verify rate, statuses ${JSON.stringify(r.statuses)}`,
      ]);
      rows.push([
        `  node CPU per bundle at c=${c}`,
        `${perBundle(cpuAfter.user - cpuBefore.user)} µs user + ${perBundle(cpuAfter.system - cpuBefore.system)} µs system (${fmt(((cpuAfter.user + cpuAfter.system - cpuBefore.user - cpuBefore.system) / r.seconds) * 100)}% of one core)`,
      ]);
    }
    // measured after the load, so its own files do not disturb the ingest
    rows.push(["data dir filesystem", filesystemOf(dir.path)]);
    rows.push(["file creates in the data dir (same run)", `${fmt(fileCreateRate(dir.path))} files/s (each stored bundle is one file)`]);
    rows.push(["fdatasync of a 4 KiB append, data disk", `p50 ${fmt(fdatasyncMs(dir.path), 2)} ms`]);
    if (wrk) {
      const floor = await httpFloor((floorUrl) => wrkPost({ url: floorUrl, token, bodiesFile, firstBody: 0, bodyCount: perLevel, connections: 16, seconds }));
      rows.push(["HTTP floor, c=16 (a server that only reads the body)", `${fmt((floor.statuses[200] ?? 0) / floor.seconds)} requests/s, p50 ${fmt(floor.p50, 2)} ms`]);
    }
    rows.push(["node RSS before/after", `${fmt(rssBefore / 1024, 1)} MiB / ${fmt(node.rssKb() / 1024, 1)} MiB`]);
  } finally {
    await node.stop();
    dir.removeAtExit();
  }
  return rows;
}

if (import.meta.main) {
  for (const [k, v] of await ingestBench()) console.log(`${k.padEnd(36)} ${v}`);
}
