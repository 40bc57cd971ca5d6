/**
 * Start-up: `links --help` (the compiled runtime and CLI) and `links serve` to its first
 * /healthz answer, each repeated, p50/p99.
 * Usage: bun scripts/bench/startup.ts [--runs 30]
 */
import { BIN, fmt, percentile, tempDir } from "./lib.ts";

const runs = Number(process.argv[process.argv.indexOf("--runs") + 1]) || 30;

async function timeHelp(): Promise<number> {
  const t = performance.now();
  const proc = Bun.spawn([BIN, "--help"], { stdout: "ignore", stderr: "ignore" });
  await proc.exited;
  return performance.now() - t;
}

async function timeServe(data: string, port: number): Promise<number> {
  const t = performance.now();
  const proc = Bun.spawn([BIN, "serve", "--port", String(port), "--data", data], { stdout: "ignore", stderr: "ignore" });
  try {
    for (;;) {
      try {
        const res = await fetch(`http://127.0.0.1:${port}/healthz`);
        if (res.ok) return performance.now() - t;
      } catch {
        await Bun.sleep(1);
      }
      if (performance.now() - t > 10_000) throw new Error("links serve did not answer /healthz within 10 s");
    }
  } finally {
    proc.kill("SIGTERM");
    await proc.exited;
  }
}

export async function startupBench(): Promise<Array<[string, string]>> {
  const help: number[] = [];
  for (let i = 0; i < runs; i++) help.push(await timeHelp());
  const dir = tempDir("links-bench-startup-");
  const serve: number[] = [];
  for (let i = 0; i < Math.min(runs, 15); i++) serve.push(await timeServe(`${dir.path}/data`, 18600 + i));
  dir.remove();
  help.sort((a, b) => a - b);
  serve.sort((a, b) => a - b);
  return [
    [`links --help (${help.length} runs)`, `p50 ${fmt(percentile(help, 50), 1)} ms, p99 ${fmt(percentile(help, 99), 1)} ms`],
    [`links serve -> first /healthz (${serve.length} runs)`, `p50 ${fmt(percentile(serve, 50), 1)} ms, p99 ${fmt(percentile(serve, 99), 1)} ms`],
  ];
}

if (import.meta.main) {
  for (const [k, v] of await startupBench()) console.log(`${k.padEnd(44)} ${v}`);
}
