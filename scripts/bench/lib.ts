/**
 * Shared pieces of the benchmarks: run the compiled node on a temp data dir, make signed bundles
 * fast (native signing, for load generation only), drive a closed-loop load, report percentiles.
 */
import { createPrivateKey, sign as nativeSign, type KeyObject } from "node:crypto";
import { closeSync, constants, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { encodeBase64 } from "../../src/core/base64.ts";
import { computeBundleId, normalizeBundle, signedBytes, type Bundle } from "../../src/core/bundle.ts";
import { JsonFloat, toJsonText } from "../../src/core/canonical.ts";
import { generateSeed, publicKeyFromSeed } from "../../src/core/ed25519.ts";

export const REPO = resolve(import.meta.dir, "../..");
/** the executable under test: dist/links, or LINKS_BENCH_BIN to compare another build */
export const BIN = process.env.LINKS_BENCH_BIN ?? join(REPO, "dist", "links");

/**
 * Benchmarks work in .bench/ inside the repository (or LINKS_BENCH_DIR): the same kind of disk
 * an operator's data directory sits on, where /tmp may be a RAM disk or worn by other programs.
 *
 * Their directories are removed when the process exits, not as each benchmark ends. On ext4
 * without a journal, creating a file first walks past every inode of its block group deleted in
 * the last minute or more, so a benchmark run just after another deleted its files measures that
 * walk: on a fresh filesystem, ingest at concurrency 16 fell from 1,999 to 867 bundles/s right
 * after the previous run's 10k bundles were deleted. A node does not delete files in bulk.
 */
export function tempDir(prefix: string): { path: string; removeAtExit(): void } {
  const root = process.env.LINKS_BENCH_DIR ?? join(REPO, ".bench");
  mkdirSync(root, { recursive: true });
  const path = mkdtempSync(join(root, prefix));
  return { path, removeAtExit: () => removeAtExit(path) };
}

const leftovers: string[] = [];

function removeAtExit(path: string): void {
  if (leftovers.length === 0) {
    process.on("exit", () => {
      for (const p of leftovers) rmSync(p, { recursive: true, force: true });
    });
  }
  if (!leftovers.includes(path)) leftovers.push(path);
}

export async function run(args: string[], env: Record<string, string> = {}): Promise<string> {
  const proc = Bun.spawn([BIN, ...args], { stdout: "pipe", stderr: "pipe", env: { ...process.env, ...env } });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`links ${args.join(" ")} exited ${code}: ${err}`);
  return out;
}

export interface Node {
  url: string;
  pid: number;
  rssKb(): number;
  /** CPU seconds the node has used so far, user and system (all its threads) */
  cpu(): { user: number; system: number };
  stop(): Promise<void>;
}

/** extraArgs go to `links serve` after the port and data directory. */
export async function startNode(dataDir: string, extraArgs: string[] = []): Promise<Node> {
  const proc = Bun.spawn([BIN, "serve", "--port", "0", "--data", dataDir, ...extraArgs], { stdout: "ignore", stderr: "pipe" });
  const reader = proc.stderr.getReader();
  let text = "";
  let port = 0;
  while (!port) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`node did not start: ${text}`);
    text += new TextDecoder().decode(value);
    port = Number(/listening on http:\/\/[^:]+:(\d+)/.exec(text)?.[1] ?? 0);
  }
  (async () => {
    for (;;) if ((await reader.read()).done) return;
  })();
  return {
    url: `http://127.0.0.1:${port}`,
    pid: proc.pid,
    rssKb: () => rssKb(proc.pid),
    cpu: () => cpuSeconds(proc.pid),
    async stop() {
      proc.kill("SIGTERM");
      await proc.exited;
    },
  };
}

export function rssKb(pid: number): number {
  try {
    const status = require("node:fs").readFileSync(`/proc/${pid}/status`, "utf8") as string;
    return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/**
 * utime and stime of a process from /proc/<pid>/stat, or of one of its threads (tid), in seconds
 * (clock ticks of 1/100 s).
 */
export function cpuSeconds(pid: number, tid?: number): { user: number; system: number } {
  try {
    const stat = require("node:fs").readFileSync(tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`, "utf8") as string;
    // the fields after the command name, which may hold spaces, in parentheses
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return { user: Number(fields[11]) / 100, system: Number(fields[12]) / 100 };
  } catch {
    return { user: 0, system: 0 };
  }
}

/**
 * Requests/s of the same load against a server that only reads the body and answers: what this
 * machine's HTTP stack and load generator allow before the node does any work.
 */
export async function httpFloor(load: (url: string) => Promise<LoadResult>): Promise<LoadResult> {
  const proc = Bun.spawn([process.execPath, join(import.meta.dir, "floor-server.ts")], { stdout: "pipe", stderr: "inherit" });
  try {
    const first = await proc.stdout.getReader().read();
    const port = Number(new TextDecoder().decode(first.value).trim());
    return await load(`http://127.0.0.1:${port}/villages/bench/inbox`);
  } finally {
    proc.kill();
    await proc.exited;
  }
}

/**
 * The filesystem that holds `dir` (Linux: from /proc/self/mountinfo), and for ext4 whether it
 * has a journal: without one, ext4 checks every candidate inode for a recent deletion when it
 * creates a file, which makes creation (one per stored bundle) several times slower after files
 * were deleted (a test suite's, an earlier benchmark's).
 */
export function filesystemOf(dir: string): string {
  if (!existsSync("/proc/self/mountinfo")) return "unknown (not Linux)";
  const dev = statSync(dir).dev;
  const id = `${Math.floor(dev / 256) & 0xfff}:${(dev & 0xff) | ((dev >> 12) & 0xfff00)}`;
  for (const line of readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
    const [left, right] = line.split(" - ");
    const fields = left?.split(" ") ?? [];
    if (fields[2] !== id || right === undefined) continue;
    const [fstype = "?", source = "?"] = right.split(" ");
    if (fstype !== "ext4") return `${fstype} (${source})`;
    const device = basename(source);
    const journaled = existsSync("/proc/fs/jbd2") && readdirSync("/proc/fs/jbd2").some((n) => n.startsWith(`${device}-`));
    return `ext4 (${source}), ${journaled ? "with a journal" : "no journal"}`;
  }
  return "unknown";
}

/** Median fdatasync time of a small append on the disk that holds `dir` (ms). */
export function fdatasyncMs(dir: string, count = 200): number {
  const fs = require("node:fs") as typeof import("node:fs");
  const file = join(dir, `fdatasync-probe-${process.pid}`);
  const fd = fs.openSync(file, "w");
  const line = Buffer.alloc(4096, 120);
  const times: number[] = [];
  try {
    for (let i = 0; i < count; i++) {
      fs.writeSync(fd, line);
      const t = performance.now();
      fs.fdatasyncSync(fd);
      times.push(performance.now() - t);
    }
  } finally {
    fs.closeSync(fd);
    fs.rmSync(file, { force: true });
  }
  return percentile(times.sort((a, b) => a - b), 50);
}

/** Signs with the runtime's native Ed25519 (fast load generation; the node verifies natively). */
export class FastSigner {
  private readonly key: KeyObject;
  readonly publicKey: string;

  constructor(seed = generateSeed()) {
    const pkcs8 = Buffer.concat([Buffer.from("302e020100300506032b657004220420", "hex"), Buffer.from(seed)]);
    this.key = createPrivateKey({ key: pkcs8, format: "der", type: "pkcs8" });
    this.publicKey = encodeBase64(publicKeyFromSeed(seed));
  }

  sign(bundle: Bundle): Bundle {
    const withId = { ...bundle, bundle_id: computeBundleId(bundle) };
    const signature = nativeSign(null, signedBytes(withId), this.key);
    return { ...withId, public_key: this.publicKey, signature: encodeBase64(signature) };
  }
}

/** n distinct signed bundles of `claims` claims each, serialized as request bodies. */
export function makeBundles(n: number, claims = 10, issuer = "bench-node", tag = "b"): string[] {
  const signer = new FastSigner();
  const created = "2026-11-25T12:00:00.123456Z";
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const bundle = normalizeBundle({
      bundle_id: "",
      issuer,
      created_at: created,
      window_days: 30,
      claims: Array.from({ length: claims }, (_, c) => ({
        issuer,
        subject: `wikipedia:en:${tag}${i}`,
        predicate: "links.weighted_to",
        object: `wikipedia:en:${tag}${i}_${c}`,
        value: new JsonFloat(Math.log1p(c + 1)),
        window_days: 30,
        computed_at: created,
        derivation: "log(1 + count_30d)",
        evidence: [],
      })),
    });
    out.push(toJsonText(signer.sign(bundle) as never));
  }
  return out;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

export interface LoadResult {
  requests: number;
  seconds: number;
  perSecond: number;
  p50: number;
  p99: number;
  statuses: Record<number, number>;
}

/**
 * Closed-loop load: `concurrency` workers each send the next request as soon as the previous
 * answered, until `seconds` pass or `makeRequest` runs out (returns null).
 */
export async function closedLoop(concurrency: number, seconds: number, makeRequest: () => Request | null): Promise<LoadResult> {
  const latencies: number[] = [];
  const statuses: Record<number, number> = {};
  const end = performance.now() + seconds * 1000;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        const req = makeRequest();
        if (!req) return;
        const t0 = performance.now();
        const res = await fetch(req);
        await res.arrayBuffer();
        latencies.push(performance.now() - t0);
        statuses[res.status] = (statuses[res.status] ?? 0) + 1;
      }
    }),
  );
  const elapsed = (performance.now() - start) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    requests: latencies.length,
    seconds: elapsed,
    perSecond: latencies.length / elapsed,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    statuses,
  };
}

export function fmt(n: number, digits = 0): string {
  return n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

/** The filesystem's own rate of creating small files in dir (each stored bundle is one). */
export function fileCreateRate(dir: string, count = 2000): number {
  const sub = join(dir, "create-probe");
  mkdirSync(sub, { recursive: true });
  const body = Buffer.from("x".repeat(3000));
  const start = performance.now();
  for (let i = 0; i < count; i++) {
    const fd = openSync(join(sub, `f${i}`), constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, 0o644);
    writeSync(fd, body);
    closeSync(fd);
  }
  const perSecond = count / ((performance.now() - start) / 1000);
  removeAtExit(sub);
  return perSecond;
}

/** wrk, if installed (Debian package `wrk`): a C load generator that leaves the node more CPU. */
export function wrkPath(): string | null {
  return Bun.which("wrk");
}

/**
 * POSTs pre-made bodies (one per line of bodiesFile, each sent once; threads take disjoint
 * slices) with wrk for `seconds` at `connections`; reads its latency distribution.
 */
export async function wrkPost(opts: {
  url: string;
  token: string;
  bodiesFile: string;
  firstBody: number;
  bodyCount: number;
  connections: number;
  seconds: number;
}): Promise<LoadResult> {
  const threads = Math.min(2, opts.connections);
  const script = `${opts.bodiesFile}.lua`;
  await Bun.write(
    script,
    `local bodies = {}
local first, count, threads = ${opts.firstBody}, ${opts.bodyCount}, ${threads}
local n = 0
for line in io.lines("${opts.bodiesFile}") do
  n = n + 1
  if n > first and n <= first + count then bodies[#bodies + 1] = line end
end
local counter = 1
function setup(thread) thread:set("id", counter); counter = counter + 1 end
function init(args)
  local per = math.floor(#bodies / threads)
  lo = (id - 1) * per + 1
  hi = lo + per - 1
  i = lo
end
function request()
  if i > hi then i = lo end
  local body = bodies[i]
  i = i + 1
  return wrk.format("POST", nil, { ["Authorization"] = "Bearer ${opts.token}", ["Content-Type"] = "application/json" }, body)
end
`,
  );
  const proc = Bun.spawn(
    ["wrk", "-t", String(threads), "-c", String(opts.connections), "-d", `${opts.seconds}s`, "--latency", "-s", script, opts.url],
    { stdout: "pipe", stderr: "pipe" },
  );
  const out = await new Response(proc.stdout).text();
  await proc.exited;
  const num = (re: RegExp) => Number(re.exec(out)?.[1] ?? NaN);
  const ms = (label: string) => {
    const m = new RegExp(`${label}%\\s+([\\d.]+)(us|ms|s)`).exec(out);
    if (!m) return NaN;
    const v = Number(m[1]);
    return m[2] === "us" ? v / 1000 : m[2] === "s" ? v * 1000 : v;
  };
  const requests = num(/(\d+) requests in/);
  const seconds = num(/requests in ([\d.]+)s/) || opts.seconds;
  const bad = num(/Non-2xx or 3xx responses: (\d+)/) || 0;
  const statuses: Record<number, number> = { 200: requests - bad };
  if (bad) statuses[0] = bad; // wrk counts them without telling which status
  return { requests, seconds, perSecond: requests / seconds, p50: ms("50"), p99: ms("99"), statuses };
}

/**
 * A temp data dir with village "bench" whose admin token is returned; the load generator is one
 * member, so its per-minute limit is lifted out of the way.
 */
export async function benchVillage(prefix: string): Promise<{ dir: { path: string; removeAtExit(): void }; data: string; token: string }> {
  const dir = tempDir(prefix);
  const data = `${dir.path}/data`;
  const token = (await run(["villages", "create", "bench", "Bench", "admin", "--data", data])).trim().split("\n").pop() as string;
  const policy = JSON.parse(await run(["villages", "show", "bench", "--json", "--data", data])).policy;
  await Bun.write(`${dir.path}/policy.json`, JSON.stringify({ ...policy, rate_limit_per_min: 100_000_000 }));
  await run(["policy", "apply-local", "bench", `${dir.path}/policy.json`, "--data", data]);
  return { dir, data, token };
}
