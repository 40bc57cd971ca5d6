/**
 * Replication: node A takes signed 10-claim bundles over its inbox (the ingest rate of this run),
 * then node B, syncing in the background (`serve --sync-interval 1`), pulls them all from A over
 * loopback (bundles/s replicated). B's own read latency is measured with no sync running and while
 * it pulls, to see what the sync costs the node's own requests.
 * Usage: bun scripts/bench/replication.ts [--bundles 10000]
 */
import { readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { benchVillage, closedLoop, fmt, makeBundles, percentile, run, startNode, type Node } from "./lib.ts";

const arg = (name: string, fallback: number) => Number(process.argv[process.argv.indexOf(name) + 1]) || fallback;
const bundleCount = arg("--bundles", 10_000);
/** B's own reads: one every 10 ms */
const READ_EVERY_MS = 10;

function stored(data: string): number {
  try {
    return readdirSync(join(data, "store", "bundles", "bench")).filter((f) => f.endsWith(".json")).length;
  } catch {
    return 0;
  }
}

/**
 * B's own reads at a steady pace (open loop: one every `everyMs`, whatever the answers take), until
 * `done()`; latencies in ms. A steady pace measures what the sync costs a request without the
 * reads themselves taking the CPU the sync needs.
 */
async function readsUntil(node: Node, token: string, everyMs: number, done: () => boolean): Promise<number[]> {
  const latencies: number[] = [];
  const inFlight: Array<Promise<void>> = [];
  for (let i = 0; !done(); i++) {
    const t0 = performance.now();
    inFlight.push(
      fetch(`${node.url}/villages/bench/claims?subject=wikipedia:en:b${i % 1000}&limit=10`, { headers: { authorization: `Bearer ${token}` } })
        .then((res) => res.arrayBuffer())
        .then(() => void latencies.push(performance.now() - t0)),
    );
    await Bun.sleep(everyMs);
  }
  await Promise.all(inFlight);
  return latencies.sort((x, y) => x - y);
}

function latencyLine(l: number[]): string {
  return `p50 ${fmt(percentile(l, 50), 2)} ms, p99 ${fmt(percentile(l, 99), 2)} ms, max ${fmt(l[l.length - 1] ?? NaN, 1)} ms (${fmt(l.length)} reads, one every ${READ_EVERY_MS} ms)`;
}

export async function replicationBench(): Promise<Array<[string, string]>> {
  const a = await benchVillage("links-bench-repl-a-");
  const b = await benchVillage("links-bench-repl-b-");
  const peerToken = (await run(["villages", "add-member", "bench", "node-b", "--role", "observer", "--data", a.data])).trim().split("\n").pop() as string;
  const bodies = makeBundles(bundleCount, 10);
  const nodeA = await startNode(a.data, ["--sync-interval", "0"]);
  const nodeB = await startNode(b.data, ["--sync-interval", "1"]);
  const rows: Array<[string, string]> = [];
  try {
    let next = 0;
    const url = `${nodeA.url}/villages/bench/inbox`;
    const headers = { authorization: `Bearer ${a.token}`, "content-type": "application/json" };
    const ingest = await closedLoop(16, 3600, () => (next < bodies.length ? new Request(url, { method: "POST", headers, body: bodies[next++] }) : null));
    const ok = ingest.statuses[200] ?? 0;
    rows.push(["ingest into A, c=16 (same run)", `${fmt(ok / ingest.seconds)} bundles/s (${fmt(ok)} bundles)`]);

    // B's own reads with nothing to sync (its loop runs, it has no peer yet)
    const idleUntil = performance.now() + 5000;
    const idle = await readsUntil(nodeB, b.token, READ_EVERY_MS, () => performance.now() > idleUntil);

    writeFileSync(join(b.dir.path, "peer.token"), `${peerToken}\n`, { mode: 0o600 });
    await run(["peers", "add", "bench", nodeA.url, "--token-file", join(b.dir.path, "peer.token"), "--data", b.data]);
    const started = performance.now();
    let done = false;
    const poll = (async () => {
      while (stored(b.data) < ok) await Bun.sleep(100);
      done = true;
    })();
    const during = await readsUntil(nodeB, b.token, READ_EVERY_MS, () => done);
    await poll;
    const seconds = (performance.now() - started) / 1000;
    rows.push(["replicated A -> B over loopback", `${fmt(ok / seconds)} bundles/s (${fmt(ok)} bundles in ${fmt(seconds, 1)} s, from peers add; ${fmt((ok / seconds / (ok / ingest.seconds)) * 100)}% of the ingest rate)`]);
    rows.push(["B's own reads, no sync running", latencyLine(idle)]);
    rows.push(["B's own reads while it syncs", latencyLine(during)]);
  } finally {
    await Promise.all([nodeA.stop(), nodeB.stop()]);
    a.dir.removeAtExit();
    b.dir.removeAtExit();
  }
  return rows;
}

if (import.meta.main) {
  for (const [k, v] of await replicationBench()) console.log(`${k.padEnd(36)} ${v}`);
}
