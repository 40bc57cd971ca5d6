/**
 * Scale: the ingest cost per bundle with a small store and with a large one. The large store is
 * laid out quickly: N names in the village's bundle folder (hard links of one file, so the folder
 * really holds N entries), N x 10 index rows and N audit rows. The cost must stay flat: nothing
 * on the request path lists a folder or scans a file.
 * Usage: bun scripts/bench/scale.ts [--small 10000] [--large 1000000] [--seconds 4]
 */
import { appendFileSync, linkSync, mkdirSync, writeFileSync } from "node:fs";
import { benchVillage, closedLoop, fmt, makeBundles, startNode } from "./lib.ts";

const arg = (name: string, fallback: number) => Number(process.argv[process.argv.indexOf(name) + 1]) || fallback;
const SIZES = [arg("--small", 10_000), arg("--large", 1_000_000)];
const SECONDS = arg("--seconds", 4);

function prefill(data: string, n: number): void {
  const dir = `${data}/store/bundles/bench`;
  mkdirSync(dir, { recursive: true });
  mkdirSync(`${data}/store/index`, { recursive: true });
  mkdirSync(`${data}/store/audit`, { recursive: true });
  let rows: string[] = [];
  let audits: string[] = [];
  for (let b = 0; b < n; b++) {
    const id = `f${b.toString(16).padStart(31, "0")}`;
    // ext4 allows 65,000 links to one inode
    const source = `${dir}/.prefill-${Math.floor(b / 60_000)}`;
    if (b % 60_000 === 0) writeFileSync(source, "{}\n");
    linkSync(source, `${dir}/${id}.json`);
    for (let c = 0; c < 10; c++) {
      rows.push(`{"bundle_id":"${id}","computed_at":"2026-11-25T12:00:00Z","created_at":"2026-11-25T12:00:00Z","derivation":null,"evidence":[],"issuer":"old","object":"o${c}","predicate":"links.weighted_to","subject":"s${b}","value":1.0,"village_id":"bench","visibility":"village","window_days":30}`);
    }
    audits.push(`{"action":"ingest.accept","actor":"old","bundle_id":"${id}","issuer_key_hash":null,"policy_hash":null,"reason":null,"ts":"2026-11-25T12:00:00Z","village_id":"bench"}`);
    if (rows.length >= 200_000) {
      appendFileSync(`${data}/store/index/claims.jsonl`, `${rows.join("\n")}\n`);
      appendFileSync(`${data}/store/audit/audit.log.jsonl`, `${audits.join("\n")}\n`);
      rows = [];
      audits = [];
    }
  }
  if (rows.length) appendFileSync(`${data}/store/index/claims.jsonl`, `${rows.join("\n")}\n`);
  if (audits.length) appendFileSync(`${data}/store/audit/audit.log.jsonl`, `${audits.join("\n")}\n`);
}

export async function scaleBench(): Promise<Array<[string, string]>> {
  const rows: Array<[string, string]> = [];
  const bodies = makeBundles(Math.ceil(6000 * SECONDS), 10, "bench-node", "scale");
  for (const size of SIZES) {
    const { dir, data, token } = await benchVillage("links-bench-scale-");
    const t0 = performance.now();
    prefill(data, size);
    const prefillSeconds = (performance.now() - t0) / 1000;
    const node = await startNode(data);
    try {
      let i = 0;
      const r = await closedLoop(16, SECONDS, () =>
        i < bodies.length
          ? new Request(`${node.url}/villages/bench/inbox`, { method: "POST", headers: { authorization: `Bearer ${token}` }, body: bodies[i++] })
          : null,
      );
      const ok = r.statuses[200] ?? 0;
      rows.push([
        `ingest c=16 with ${fmt(size)} bundles stored`,
        `${fmt(ok / r.seconds)} bundles/s, ${fmt((r.seconds * 1000 * 16) / Math.max(ok, 1), 2)} ms of a connection per bundle, p99 ${fmt(r.p99, 2)} ms (store laid out in ${fmt(prefillSeconds, 0)} s)`,
      ]);
    } finally {
      await node.stop();
      dir.removeAtExit();
    }
  }
  return rows;
}

if (import.meta.main) {
  for (const [k, v] of await scaleBench()) console.log(`${k.padEnd(40)} ${v}`);
}
