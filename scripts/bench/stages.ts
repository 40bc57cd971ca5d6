/**
 * Where the event loop's time goes: the node's app is driven in this process (no HTTP, no load
 * generator), 16 requests at a time, and the main thread's CPU time per request is read from
 * /proc for three kinds of request to the village inbox:
 * - a new bundle: body, JSON, schema, bundle id, signature, policy, and the group commit (log
 *   append, bundle file, index rows, audit row);
 * - the same bundles again, as duplicates: all of that but the store;
 * - refused at authentication (a wrong token; soon by the failed-authentication limit): the
 *   middleware chain alone.
 * The difference of the last two is what storing costs on the event loop.
 * Usage: bun scripts/bench/stages.ts [--bundles 8000]
 */
import { createApp } from "../../src/server/app.ts";
import { benchVillage, cpuSeconds, fmt, makeBundles } from "./lib.ts";

const BUNDLES = Number(process.argv[process.argv.indexOf("--bundles") + 1]) || 8000;
const CONCURRENCY = 16;
const CLIENT = { requestIP: () => ({ address: "127.0.0.1", family: "IPv4", port: 1 }) };

export async function stagesBench(): Promise<Array<[string, string]>> {
  const { dir, data, token } = await benchVillage("links-bench-stages-");
  const bodies = makeBundles(BUNDLES, 10, "bench-node", `stages${Date.now()}_`);
  const node = createApp({ dataDir: data, logger: () => {} });
  const rows: Array<[string, string]> = [];
  try {
    const drive = async (what: string, bearer: string): Promise<void> => {
      let next = 0;
      const statuses: Record<number, number> = {};
      const cpu0 = cpuSeconds(process.pid, process.pid);
      const t0 = performance.now();
      await Promise.all(
        Array.from({ length: CONCURRENCY }, async () => {
          while (next < bodies.length) {
            const body = bodies[next++] as string;
            const req = new Request("http://127.0.0.1/villages/bench/inbox", {
              method: "POST",
              headers: { authorization: `Bearer ${bearer}`, "content-type": "application/json", "content-length": String(Buffer.byteLength(body)) },
              body,
            });
            const res = await node.app.fetch(req, CLIENT as never);
            await res.arrayBuffer();
            statuses[res.status] = (statuses[res.status] ?? 0) + 1;
          }
        }),
      );
      const seconds = (performance.now() - t0) / 1000;
      const cpu = cpuSeconds(process.pid, process.pid);
      const perRequest = (s: number) => fmt((s * 1e6) / bodies.length);
      rows.push([
        `event loop per request, ${what}`,
        `${perRequest(cpu.user - cpu0.user)} µs user + ${perRequest(cpu.system - cpu0.system)} µs system (${fmt(bodies.length / seconds)} requests/s in-process, statuses ${JSON.stringify(statuses)})`,
      ]);
    };
    await drive("new bundle (stored)", token);
    await drive("duplicate (all but the store)", token);
    // last: failed authentications count against the client's address, valid tokens included
    await drive("refused at authentication", `${token}x`);
  } finally {
    await node.close();
    dir.removeAtExit();
  }
  return rows;
}

if (import.meta.main) {
  for (const [k, v] of await stagesBench()) console.log(`${k.padEnd(48)} ${v}`);
}
