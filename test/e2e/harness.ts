/**
 * A small harness for end-to-end tests: runs the REAL compiled binary `dist/links` as a child
 * process and hands back what an operator would see (exit code, stdout, stderr).
 */
import { createHash } from "node:crypto";
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";

export const REPO_ROOT = resolve(import.meta.dir, "../..");
export const LINKS_BIN = join(REPO_ROOT, "dist", "links");
import { VECTORS_DIR } from "../fixtures/vectors-dir.ts";

export { VECTORS_DIR };

if (!existsSync(LINKS_BIN)) {
  throw new Error(`${LINKS_BIN} is missing: run \`npm run build\` (or \`npx bun run build\`) before the end-to-end tests`);
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Extra environment; a key set to undefined is removed. LINKS_DATA is never inherited. */
  env?: Record<string, string | undefined>;
  cwd?: string;
  stdin?: string | Uint8Array;
}

function childEnv(extra: Record<string, string | undefined> = {}): Record<string, string> {
  const env: Record<string, string | undefined> = { ...process.env, LINKS_DATA: undefined, NO_COLOR: "1", ...extra };
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined) out[k] = v;
  return out;
}

/** Starts `links args...` and resolves once it exits. */
export async function links(args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const proc = Bun.spawn([LINKS_BIN, ...args], {
    cwd: opts.cwd ?? tmpdir(),
    env: childEnv(opts.env),
    stdin: opts.stdin === undefined ? "ignore" : new Blob([opts.stdin]),
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  return { code, stdout, stderr };
}

/** Like links(), but fails the test with everything the command printed unless it exits 0. */
export async function linksOk(args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const r = await links(args, opts);
  if (r.code !== 0) {
    throw new Error(`links ${args.join(" ")} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  }
  return r;
}

/** The last non-empty line of a command's stdout (where tokens and ids are printed). */
export function lastLine(stdout: string): string {
  const lines = stdout.split("\n").filter((l) => l.length > 0);
  return lines[lines.length - 1] ?? "";
}

/** Parses the one JSON document a `--json` command prints. */
export function json<T = unknown>(r: RunResult): T {
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    throw new Error(`expected one JSON document on stdout, got: ${r.stdout}\nstderr: ${r.stderr}`);
  }
}

/** The `[code]` at the end of a `links: error: ... [code]` line, if any. */
export function errorCode(stderr: string): string | null {
  const m = /^links: error: .* \[([a-z_]+)\]$/m.exec(stderr);
  return m?.[1] ?? null;
}

export interface TempDir {
  path: string;
  join(...parts: string[]): string;
  remove(): void;
}

/** A fresh directory under the OS temp dir; call remove() (e.g. in afterAll) to delete it. */
export function makeTempDir(prefix = "links-e2e-"): TempDir {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return {
    path,
    join: (...parts) => join(path, ...parts),
    remove: () => rmSync(path, { recursive: true, force: true }),
  };
}

/** Every file under dir (relative paths, sorted). */
export function listFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(relative(dir, p));
    }
  };
  if (existsSync(dir)) walk(dir);
  return out.sort();
}

/**
 * Every non-empty line of a JSONL file, parsed. Throws on a line that is not JSON, unless
 * `skipBad` (then such lines, e.g. one torn by a killed writer, are left out).
 */
export function readJsonlFile<T = Record<string, unknown>>(path: string, skipBad = false): T[] {
  if (!existsSync(path)) return [];
  const out: T[] = [];
  readFileSync(path, "utf8")
    .split("\n")
    .forEach((l, i) => {
      if (l.length === 0) return;
      try {
        out.push(JSON.parse(l) as T);
      } catch {
        if (!skipBad) throw new Error(`${path} line ${i + 1} is not JSON: ${l.slice(0, 200)}`);
      }
    });
  return out;
}

export function sha256Hex(data: string | Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

export interface VectorKey {
  seed_b64: string;
  public_key_b64: string;
  issuer_key_hash: string;
}

export function vectorKey(): VectorKey {
  return JSON.parse(readFileSync(join(VECTORS_DIR, "key.json"), "utf8")) as VectorKey;
}

/** Writes the vector key's seed as a private key file (mode 0600); returns its path. */
export function writeVectorKeyFile(dir: string, name = "vector.key"): string {
  const path = join(dir, name);
  writeFileSync(path, `${vectorKey().seed_b64}\n`, { mode: 0o600 });
  chmodSync(path, 0o600);
  return path;
}

/** An unsigned bundle text (bundle_id filled in by `links claims sign`). */
export function unsignedBundle(opts: {
  issuer?: string;
  predicate?: string;
  subject?: string;
  object?: string;
  value?: string;
  windowDays?: number;
  createdAt?: string;
}): string {
  const issuer = opts.issuer ?? "node-a";
  const windowDays = opts.windowDays ?? 30;
  const createdAt = opts.createdAt ?? "2024-05-01T12:00:00Z";
  const claim =
    `{"issuer":${JSON.stringify(issuer)},"subject":${JSON.stringify(opts.subject ?? "wikipedia:en:Alice")},` +
    `"predicate":${JSON.stringify(opts.predicate ?? "links.weighted_to")},"object":${JSON.stringify(opts.object ?? "wikipedia:en:Bob")},` +
    `"value":${opts.value ?? "1.0"},"window_days":${windowDays},"computed_at":${JSON.stringify(createdAt)},` +
    `"derivation":"log(1 + count_30d)","evidence":[]}`;
  return (
    `{"bundle_id":"","issuer":${JSON.stringify(issuer)},"created_at":${JSON.stringify(createdAt)},` +
    `"window_days":${windowDays},"claims":[${claim}],"signature_alg":"Ed25519","public_key":null,"signature":null}`
  );
}

/** Writes an unsigned bundle, signs it with `links claims sign`; returns the signed file and id. */
export async function signedBundleFile(
  dir: string,
  name: string,
  key: string,
  opts: Parameters<typeof unsignedBundle>[0] = {},
): Promise<{ file: string; bundleId: string }> {
  const draft = join(dir, `${name}.unsigned.json`);
  const file = join(dir, `${name}.json`);
  writeFileSync(draft, unsignedBundle(opts));
  const r = await linksOk(["claims", "sign", draft, "--key", key, "--out", file]);
  return { file, bundleId: lastLine(r.stdout) };
}

export function fileMode(path: string): number {
  return statSync(path).mode & 0o777;
}
