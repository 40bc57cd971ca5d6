/**
 * Start-up as a new user meets it: the binary from `npm run build`, started from a shell, with a
 * fresh data directory for every `serve`. Two conditions each:
 * - cold: the binary's pages dropped from the page cache first (`dd iflag=nocache count=0`), as
 *   after a reboot or a fresh copy onto a host;
 * - warm: run again right away (what every later command sees).
 * `--help` is timed inside the shell (bash's $EPOCHREALTIME around the command, output to
 * /dev/null), so the shell's own start is not counted, and its CPU time is reported too (on a
 * busy machine the wall time mostly measures the wait for a core); `serve` is timed from its
 * spawn to the first 200 from /healthz (polled every millisecond).
 *
 * Usage: bun scripts/bench/new-user.ts [--runs 20] [--cold-runs 5]
 */
import { loadavg } from "node:os";
import { join } from "node:path";
import { BIN, fmt, percentile, tempDir } from "./lib.ts";

function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : Number(process.argv[i + 1]) || fallback;
}
const runs = flag("runs", 20);
const coldRuns = flag("cold-runs", 5);

async function evict(): Promise<void> {
  const code = await Bun.spawn(["dd", `if=${BIN}`, "iflag=nocache", "count=0", "status=none"]).exited;
  if (code !== 0) throw new Error("could not drop the binary from the page cache (GNU dd needed)");
}

async function helpFromShell(): Promise<number> {
  const script = 'S=$EPOCHREALTIME; "$0" --help >/dev/null; E=$EPOCHREALTIME; echo "$S $E"';
  const proc = Bun.spawn(["bash", "--norc", "--noprofile", "-c", script, BIN], { stdout: "pipe", stderr: "ignore" });
  const [out] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
  const [s, e] = out.trim().split(" ").map(Number) as [number, number];
  return (e - s) * 1000;
}

/** CPU time (user + system) of one `links --help`, which the machine's other load barely changes. */
async function helpCpu(): Promise<number> {
  const proc = Bun.spawn([BIN, "--help"], { stdout: "ignore", stderr: "ignore" });
  await proc.exited;
  return Number(proc.resourceUsage()?.cpuTime.total ?? 0n) / 1000;
}

async function serveToHealthy(data: string, port: number): Promise<number> {
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
      if (performance.now() - t > 20_000) throw new Error("links serve did not answer /healthz within 20 s");
    }
  } finally {
    proc.kill("SIGTERM");
    await proc.exited;
  }
}

function summary(xs: number[]): string {
  const s = [...xs].sort((a, b) => a - b);
  return `p50 ${fmt(percentile(s, 50), 1)} ms, p90 ${fmt(percentile(s, 90), 1)} ms (${s.length} runs)`;
}

export async function newUserBench(): Promise<Array<[string, string]>> {
  const dir = tempDir("links-bench-new-user-");
  const load = loadavg()[0]?.toFixed(1);
  try {
    const coldHelp: number[] = [];
    const coldServe: number[] = [];
    for (let i = 0; i < coldRuns; i++) {
      await evict();
      coldHelp.push(await helpFromShell());
      await evict();
      coldServe.push(await serveToHealthy(join(dir.path, `cold-${i}`), 18700 + i));
    }
    const warmHelp: number[] = [];
    const warmServe: number[] = [];
    for (let i = 0; i < runs; i++) warmHelp.push(await helpFromShell());
    const helpCpus: number[] = [];
    for (let i = 0; i < runs; i++) helpCpus.push(await helpCpu());
    for (let i = 0; i < runs; i++) warmServe.push(await serveToHealthy(join(dir.path, `warm-${i}`), 18750 + i));
    return [
      ["links --help from a shell, cold", summary(coldHelp)],
      ["links --help from a shell, warm", summary(warmHelp)],
      ["links --help, CPU time (user + system), warm", summary(helpCpus)],
      ["links serve (fresh data dir) to first /healthz, cold", summary(coldServe)],
      ["links serve (fresh data dir) to first /healthz, warm", summary(warmServe)],
      ["load average while measuring (1 min)", String(load)],
    ];
  } finally {
    dir.removeAtExit();
  }
}

if (import.meta.main) {
  for (const [k, v] of await newUserBench()) console.log(`${k.padEnd(56)} ${v}`);
}
