/**
 * `npm run release:smoke`: runs what this machine can run of dist/release/: `--help`, a village
 * created (file locking through the C library), and `serve` answering /healthz. The host's own
 * build runs natively; linux-arm64 runs under qemu-user when `qemu-aarch64-static` (or
 * `qemu-aarch64`) and an arm64 glibc (Debian: qemu-user-static, libc6-arm64-cross) are installed.
 * Every other build is listed as "built, not run here".
 *
 * Usage: bun scripts/release-smoke.ts [--dir dist/release]
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { executableName, hostTarget, RELEASE_TARGETS, type ReleaseTarget } from "./release-targets.ts";

const REPO = resolve(import.meta.dir, "..");
const i = process.argv.indexOf("--dir");
const dir = resolve(i === -1 ? join(REPO, "dist", "release") : (process.argv[i + 1] as string));

const ARM64_SYSROOT = "/usr/aarch64-linux-gnu";

/** How to run a target's executable here: the command prefix, or null when it cannot run. */
function launcher(target: ReleaseTarget): { prefix: string[]; how: string } | null {
  if (target === hostTarget()) return { prefix: [], how: "natively" };
  if (target === "linux-arm64" && process.platform === "linux") {
    const qemu = ["qemu-aarch64-static", "qemu-aarch64"].map((q) => Bun.which(q)).find((p) => p);
    if (qemu && existsSync(join(ARM64_SYSROOT, "lib", "ld-linux-aarch64.so.1"))) {
      return { prefix: [qemu, "-L", ARM64_SYSROOT], how: `under ${qemu.split("/").pop()} (qemu-user) with ${ARM64_SYSROOT}` };
    }
  }
  return null;
}

async function run(cmd: string[], timeoutMs = 60_000): Promise<{ code: number; out: string; err: string }> {
  const proc = Bun.spawn(cmd, { stdout: "pipe", stderr: "pipe", timeout: timeoutMs });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, out, err };
}

async function healthz(cmd: string[], data: string): Promise<string> {
  const proc = Bun.spawn([...cmd, "serve", "--port", "0", "--data", data], { stdout: "ignore", stderr: "pipe" });
  const reader = proc.stderr.getReader();
  let text = "";
  const started = performance.now();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`serve exited: ${text}`);
      text += new TextDecoder().decode(value);
      const port = /listening on http:\/\/[^:]+:(\d+)/.exec(text)?.[1];
      if (port) {
        const res = await fetch(`http://127.0.0.1:${port}/healthz`);
        const body = await res.text();
        if (res.status !== 200 || !body.includes('"ok"')) throw new Error(`/healthz answered ${res.status} ${body}`);
        const after = Math.round(performance.now() - started);
        // a clean stop writes a last checkpoint (syncfs from the same C library as flock)
        proc.kill("SIGTERM");
        const code = await proc.exited;
        if (code !== 0) throw new Error(`serve exited ${code} on SIGTERM: ${text}`);
        return `serve answered /healthz ${res.status} ${body.trim()} after ${after} ms and stopped cleanly on SIGTERM`;
      }
      if (performance.now() - started > 60_000) throw new Error(`serve did not listen within 60 s: ${text}`);
    }
  } finally {
    proc.kill("SIGTERM");
    await proc.exited;
  }
}

let failures = 0;
for (const target of Object.keys(RELEASE_TARGETS) as ReleaseTarget[]) {
  const file = join(dir, executableName(target));
  if (!existsSync(file)) {
    console.log(`${target}: not built (run npm run release)`);
    continue;
  }
  const how = launcher(target);
  if (!how) {
    console.log(`${target}: built, not run here`);
    continue;
  }
  const cmd = [...how.prefix, file];
  const data = mkdtempSync(join(tmpdir(), `links-smoke-${target}-`));
  try {
    const help = await run([...cmd, "--help"]);
    if (help.code !== 0 || !help.out.includes("USAGE links")) throw new Error(`--help exited ${help.code}: ${help.err}`);
    const create = await run([...cmd, "villages", "create", "smoke", "Smoke", "alice", "--data", join(data, "d")]);
    if (create.code !== 0) throw new Error(`villages create exited ${create.code}: ${create.err}`);
    const served = await healthz(cmd, join(data, "d"));
    console.log(`${target}: ran ${how.how}: --help ok, villages create ok (flock), ${served}`);
  } catch (e) {
    failures++;
    console.log(`${target}: FAILED ${how.how}: ${(e as Error).message}`);
  } finally {
    rmSync(data, { recursive: true, force: true });
  }
}
process.exit(failures > 0 ? 1 : 0);
