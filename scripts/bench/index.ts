/**
 * `npm run bench`: every benchmark, then one table. Sizes are set for this 2-core machine; each
 * script also runs alone with its own flags (see its header).
 */
import { checkpointsBench } from "./checkpoints.ts";
import { ingestBench } from "./ingest.ts";
import { memoryBench } from "./memory.ts";
import { queryBench } from "./query.ts";
import { replicationBench } from "./replication.ts";
import { scaleBench } from "./scale.ts";
import { stagesBench } from "./stages.ts";
import { newUserBench } from "./new-user.ts";

if (!(await Bun.file(`${import.meta.dir}/../../dist/links`).exists())) {
  console.error("dist/links is missing: run npm run build first");
  process.exit(1);
}

const sections: Array<[string, () => Promise<Array<[string, string]>>]> = [
  ["startup", newUserBench],
  ["ingest", ingestBench],
  ["stages", stagesBench],
  ["checkpoints", checkpointsBench],
  ["query", queryBench],
  ["scale", scaleBench],
  ["memory", memoryBench],
  ["replication", replicationBench],
];

const table: Array<[string, string, string]> = [];
for (const [name, bench] of sections) {
  process.stderr.write(`running ${name}...\n`);
  for (const [what, figure] of await bench()) table.push([name, what, figure]);
}
const w0 = Math.max(...table.map((r) => r[0].length));
const w1 = Math.max(...table.map((r) => r[1].length));
console.log(`\nlinks benchmarks, ${navigator.hardwareConcurrency} cores, Bun ${Bun.version}, ${new Date().toISOString()}\n`);
for (const [a, b, c] of table) console.log(`${a.padEnd(w0)}  ${b.padEnd(w1)}  ${c}`);
