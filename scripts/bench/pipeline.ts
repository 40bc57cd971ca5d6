/**
 * From observations to stored claims at scale, with the compiled binary: generates N observations
 * (scripts/gen-observations.ts), then times `links derive`, `claims build` (default --max-bytes,
 * so several bundles), `claims sign` and `claims ingest` into a village, each as its own process,
 * and reports wall time, CPU time (user + system) and peak RSS of each.
 *
 * Usage: bun scripts/bench/pipeline.ts [--count 1000000] [--keep]
 */
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { BIN, REPO, tempDir } from "./lib.ts";

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : (process.argv[i + 1] ?? fallback);
}

const count = Number(flag("count", "1000000"));
const keep = process.argv.includes("--keep");

interface Step {
  what: string;
  wallS: number;
  cpuS: number;
  rssMiB: number;
  note: string;
}

async function measure(what: string, args: string[], note: (stderr: string) => string = () => ""): Promise<Step> {
  const started = performance.now();
  const proc = Bun.spawn([BIN, ...args], { stdout: "pipe", stderr: "pipe" });
  const [, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  const wallS = (performance.now() - started) / 1000;
  if (code !== 0) throw new Error(`links ${args.join(" ")} exited ${code}: ${err}`);
  const usage = proc.resourceUsage();
  if (!usage) throw new Error("no resource usage for the child");
  return { what, wallS, cpuS: Number(usage.cpuTime.total) / 1e6, rssMiB: usage.maxRSS / 2 ** 20, note: note(err) };
}

export async function pipelineBench(n = count): Promise<Array<[string, string]>> {
  const dir = tempDir("links-bench-pipeline-");
  try {
    const obs = join(dir.path, "obs.jsonl");
    const gen = Bun.spawn([process.execPath, join(REPO, "scripts", "gen-observations.ts"), "--out", obs, "--count", String(n)], { stderr: "ignore" });
    if ((await gen.exited) !== 0) throw new Error("generating observations failed");
    const mb = (statSync(obs).size / 1e6).toFixed(0);
    const data = join(dir.path, "data");
    const keys = join(dir.path, "keys");
    const run = (args: string[]) => Bun.spawn([BIN, ...args], { stdout: "ignore", stderr: "ignore" }).exited;
    await run(["villages", "create", "bench", "Bench", "alice", "--data", data]);
    await run(["keys", "gen", "--out-dir", keys]);
    const steps: Step[] = [];
    steps.push(await measure("derive", ["derive", "--observations", obs, "--out", join(dir.path, "edges.json")], (e) => /derived (\d+) edges/.exec(e)?.[1] + " edges"));
    steps.push(await measure("claims build", ["claims", "build", "--edges", join(dir.path, "edges.json"), "--issuer", "bench", "--window-days", "30", "--out", join(dir.path, "bundles")], () => `${readdirSync(join(dir.path, "bundles")).length} bundles of at most 1 MiB`));
    steps.push(await measure("claims sign", ["claims", "sign", join(dir.path, "bundles"), "--key", join(keys, "ed25519.key"), "--out", join(dir.path, "signed")]));
    steps.push(await measure("claims ingest", ["claims", "ingest", join(dir.path, "signed"), "--village-id", "bench", "--data", data], (e) => /ingested .*/.exec(e)?.[0] ?? ""));
    return steps.map((s) => [
      `${s.what}, ${n.toLocaleString("en-US")} observations (${mb} MB)`,
      `${s.wallS.toFixed(1)} s wall, ${s.cpuS.toFixed(1)} s CPU, peak RSS ${s.rssMiB.toFixed(0)} MiB${s.note ? `; ${s.note}` : ""}`,
    ]);
  } finally {
    if (keep) console.error(`kept ${dir.path}`);
    else dir.removeAtExit();
  }
}

if (import.meta.main) {
  for (const [k, v] of await pipelineBench()) console.log(`${k.padEnd(48)} ${v}`);
}
