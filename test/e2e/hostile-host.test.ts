/**
 * The host side attacked through the real binary: files the operator is handed (devices, pipes,
 * endless lines), a data directory made under umask 000, and a damaged revocations.jsonl met by
 * a running node over real HTTP.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { errorCode, LINKS_BIN, links, linksOk, makeTempDir, type TempDir } from "./harness.ts";
import { startNode } from "./node.ts";
import { makeVillage } from "../faults/lib/village.ts";

let tmp: TempDir;
beforeAll(() => {
  tmp = makeTempDir("links-hostile-host-");
});
afterAll(() => tmp.remove());

/** Runs the binary under `sh` (for umask or process substitution); resolves with what it left. */
async function shell(script: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const proc = Bun.spawn(["bash", "-c", script, "bash", LINKS_BIN, ...args], { stdout: "pipe", stderr: "pipe", env: { ...process.env, NO_COLOR: "1" } });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, stderr };
}

describe("files that never end", () => {
  test("claims verify /dev/zero --json: exit 1, one JSON document, input_too_large", async () => {
    const r = await links(["claims", "verify", "/dev/zero", "--json"]);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ valid: false, code: "input_too_large" });
  });

  test("claims ingest of a directory whose 1.json is a link to /dev/zero: refused, nothing stored", async () => {
    const dir = join(tmp.path, "zero-dir");
    await shell('mkdir -p "$2" && ln -s /dev/zero "$2/1.json"', [dir]);
    const data = join(tmp.path, "zero-data");
    const r = await links(["claims", "ingest", dir, "--data", data]);
    expect(r.code).toBe(1);
    expect(errorCode(r.stderr)).toBe("input_too_large");
    expect(existsSync(join(data, "store", "bundles")) ? readdirSync(join(data, "store", "bundles")) : []).toEqual([]);
  });

  test("derive --observations /dev/zero: input_too_large naming line 1, no edges file", async () => {
    const out = join(tmp.path, "edges-from-zero.json");
    const r = await links(["derive", "--observations", "/dev/zero", "--out", out]);
    expect(r.code).toBe(1);
    expect(errorCode(r.stderr)).toBe("input_too_large");
    expect(r.stderr).toContain("line 1 is longer than");
    expect(existsSync(out)).toBe(false);
  });

  test("derive --observations - fed by an endless pipe without line breaks: stops, input_too_large", async () => {
    const out = join(tmp.path, "edges-from-stdin.json");
    const r = await shell(`cat /dev/zero | "$1" derive --observations - --out "$2"`, [out]);
    expect(r.code).toBe(1);
    expect(errorCode(r.stderr)).toBe("input_too_large");
    expect(r.stderr).toContain("standard input: line 1 is longer than");
    expect(existsSync(out)).toBe(false);
  });

  test("claims build from an edges array whose string never closes: input_too_large, no bundle", async () => {
    const out = join(tmp.path, "endless.bundle.json");
    const r = await shell(`"$1" claims build --edges <(printf '["'; head -c 20000000 /dev/zero | tr '\\0' a) --issuer me --window-days 3 --out "$2"`, [out]);
    expect(r.code).toBe(1);
    expect(errorCode(r.stderr)).toBe("input_too_large");
    expect(existsSync(out)).toBe(false);
  });

  test("keys hash: /dev/zero is invalid_key_file; a key through a pipe is read", async () => {
    const zero = await links(["keys", "hash", "/dev/zero"]);
    expect(zero.code).toBe(1);
    expect(errorCode(zero.stderr)).toBe("invalid_key_file");
    const dir = join(tmp.path, "keys");
    const made = await linksOk(["keys", "gen", "--out-dir", dir]);
    const piped = await shell(`"$1" keys hash <(cat "$2")`, [join(dir, "ed25519.pub")]);
    expect(piped.code).toBe(0);
    expect(piped.stdout).toBe(made.stdout);
  });
});

test("under umask 000, no directory the node makes is writable by group or others", async () => {
  const data = join(tmp.path, "umask-data");
  const bundleDir = join(tmp.path, "umask-keys");
  const r = await shell(
    `umask 000 && "$1" villages create v1 V alice --data "$2" >/dev/null && "$1" keys gen --out-dir "$3" >/dev/null && ` +
      `printf '[{"from_entity_id":"a","to_entity_id":"b","weight":1.0}]' > "$3/e.json" && ` +
      `"$1" claims build --edges "$3/e.json" --issuer me --window-days 3 --out "$3/u.json" >/dev/null && ` +
      `"$1" claims sign "$3/u.json" --key "$3/ed25519.key" --out "$3/s.json" >/dev/null && ` +
      `"$1" claims ingest "$3/s.json" --village-id v1 --data "$2" >/dev/null && "$1" claims ingest "$3/s.json" --data "$2" >/dev/null`,
    [data, bundleDir],
  );
  expect(r.stderr).not.toContain("error");
  expect(r.code).toBe(0);
  const dirs: string[] = [];
  const walk = (d: string) => {
    dirs.push(d);
    for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) walk(join(d, e.name));
  };
  walk(data);
  expect(dirs.length).toBeGreaterThan(5);
  expect(dirs.filter((d) => (statSync(d).mode & 0o027) !== 0)).toEqual([]);
});

describe("a running node and a damaged revocations.jsonl", () => {
  test("a revocation line torn or mistyped still refuses the token; one naming no hash refuses all (503)", async () => {
    const data = join(tmp.path, "revocations-data");
    const v = await makeVillage(data, "v1", { members: ["olga", "bob"], scratch: tmp.path });
    await linksOk(["villages", "revoke-member", "v1", "olga", "--data", data]);
    const node = await startNode(data);
    try {
      const get = async (token: string) => {
        const res = await fetch(`${node.url}/villages/v1/bundles`, { headers: { authorization: `Bearer ${token}` } });
        return { status: res.status, code: ((await res.json()) as { code?: string }).code };
      };
      expect(await get(v.tokens.olga as string)).toEqual({ status: 401, code: "revoked_token" });
      const file = join(data, "villages", "v1", "revocations.jsonl");
      const good = readFileSync(file, "utf8");
      writeFileSync(file, good.replace(/"actor":"[^"]*"/, '"actor":7')); // readable JSON, wrong type
      expect(await get(v.tokens.olga as string)).toEqual({ status: 401, code: "revoked_token" });
      writeFileSync(file, good.slice(0, good.indexOf("token_hash"))); // torn before the hash
      expect(await get(v.tokens.bob as string)).toEqual({ status: 503, code: "storage_error" });
      expect(await get(v.tokens.olga as string)).toEqual({ status: 503, code: "storage_error" });
      writeFileSync(file, good);
      expect((await get(v.tokens.bob as string)).status).toBe(200);
      expect(await get(v.tokens.olga as string)).toEqual({ status: 401, code: "revoked_token" });
    } finally {
      await node.stop();
    }
  });
});
