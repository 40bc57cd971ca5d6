/**
 * `npm run release`: builds `links` for every platform in RELEASE_TARGETS as raw executables in
 * dist/release/ (links-<platform>), and writes dist/release/SHA256SUMS.
 *
 * Bun cross-compiles by fetching the runtime of each other platform (the npm package
 * @oven/bun-<platform> of the same Bun version) from the npm registry the first time, and keeps
 * it in ~/.bun/install/cache; the host's own target needs no download. A target that cannot be
 * built is reported, the others are still built, and the exit status is 1.
 *
 * Usage: bun scripts/release.ts [--only linux-x64,linux-arm64] [--out dist/release]
 */
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { buildArgs, executableName, isReleaseTarget, RELEASE_TARGETS, sha256sums, type ReleaseTarget } from "./release-targets.ts";

const REPO = resolve(import.meta.dir, "..");

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? undefined : process.argv[i + 1];
}

const only = flag("only")?.split(",").map((s) => s.trim()).filter(Boolean);
for (const name of only ?? []) {
  if (!isReleaseTarget(name)) {
    console.error(`unknown target ${JSON.stringify(name)}; the targets are ${Object.keys(RELEASE_TARGETS).join(", ")}`);
    process.exit(2);
  }
}
const targets = (only ?? Object.keys(RELEASE_TARGETS)) as ReleaseTarget[];
const outDir = resolve(flag("out") ?? join(REPO, "dist", "release"));
mkdirSync(outDir, { recursive: true });

const built: { name: string; sha256: string; bytes: number }[] = [];
const failed: { target: ReleaseTarget; why: string }[] = [];
for (const target of targets) {
  const name = executableName(target);
  const outfile = join(outDir, name);
  rmSync(outfile, { force: true });
  const started = performance.now();
  const proc = Bun.spawn(
    [process.execPath, ...buildArgs(outfile, RELEASE_TARGETS[target])],
    { cwd: REPO, stdout: "pipe", stderr: "pipe" },
  );
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) {
    failed.push({ target, why: (err || out).trim().split("\n").slice(-3).join(" ") });
    console.error(`${target}: FAILED (${failed[failed.length - 1]?.why})`);
    continue;
  }
  const bytes = readFileSync(outfile);
  const sha256 = createHash("sha256").update(bytes).digest("hex");
  built.push({ name, sha256, bytes: bytes.length });
  console.error(`${target}: ${name} ${(bytes.length / 2 ** 20).toFixed(1)} MiB in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

writeFileSync(join(outDir, "SHA256SUMS"), sha256sums(built));
console.error(`wrote ${built.length} executables and SHA256SUMS to ${outDir}`);
if (failed.length > 0) {
  console.error(`could not build: ${failed.map((f) => f.target).join(", ")}`);
  process.exit(1);
}
