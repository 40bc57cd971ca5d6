/**
 * The public store and each village are separate scopes: a copy of a bundle in one never makes
 * it look stored in another, through every writer (store, group commit, recovery, quarantine
 * approval) and in the index (one set of rows per scope, also after a reindex).
 */
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { requireVerified, type VerifiedBundle } from "../../../src/core/bundle.ts";
import { toJsonText, type JsonValue } from "../../../src/core/canonical.ts";
import { ClaimsDb } from "../../../src/storage/claims-db.ts";
import { reindex } from "../../../src/storage/claims-index.ts";
import { GroupCommit, recover } from "../../../src/storage/group-commit.ts";
import { DataPaths } from "../../../src/storage/paths.ts";
import { approveQuarantined, putInQuarantine } from "../../../src/storage/quarantine.ts";
import { isStored, storeBundle, storedBundleFile } from "../../../src/storage/store.ts";
import { createVillage } from "../../../src/storage/villages.ts";
import { keypair, signedBundle } from "../server/helpers.ts";

const dirs: string[] = [];
const dbs: ClaimsDb[] = [];
afterEach(() => {
  for (const db of dbs.splice(0)) db.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function fresh(): { paths: DataPaths; db: ClaimsDb } {
  const dir = mkdtempSync(join(tmpdir(), "links-scopes-"));
  dirs.push(dir);
  const paths = new DataPaths(dir);
  for (const v of ["a", "b"]) createVillage(paths, { villageId: v, name: v, adminId: "admin" });
  const db = new ClaimsDb(paths);
  dbs.push(db);
  return { paths, db };
}

const key = keypair();
const bundle = (claims = 2): VerifiedBundle => requireVerified(signedBundle(key, { claims }));
const lines = (file: string) => (existsSync(file) ? readFileSync(file, "utf8").split("\n").filter(Boolean) : []);
/** "<scope>:<rows>" per scope that has rows of this bundle, sorted ("-": public). */
function rowsByScope(paths: DataPaths, bundleId: string): string[] {
  const counts = new Map<string, number>();
  for (const l of lines(paths.claimsIndexFile())) {
    const r = JSON.parse(l) as { bundle_id: string; village_id: string | null };
    if (r.bundle_id === bundleId) counts.set(r.village_id ?? "-", (counts.get(r.village_id ?? "-") ?? 0) + 1);
  }
  return [...counts].map(([s, n]) => `${s}:${n}`).sort();
}

function write(file: string, text: string): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, text);
}

/** What Python Links v0.7 left for a bundle it accepted into `village`: the file at the top, an audit row, index rows without the village. */
function legacyBundle(paths: DataPaths, b: VerifiedBundle, village: string | null, visibility: string | null = null): void {
  write(paths.bundleFile(b.bundle_id), toJsonText(b as unknown as JsonValue));
  if (village !== null) {
    const row = { ts: "2026-11-22T12:00:00.000100Z", action: "ingest.accept", bundle_id: b.bundle_id, village_id: village, issuer_key_hash: null, actor: "bob", reason: null, policy_hash: null };
    write(paths.auditFile(), `${existsSync(paths.auditFile()) ? readFileSync(paths.auditFile(), "utf8") : ""}${JSON.stringify(row)}\n`);
  }
  const rows = b.claims.map((c) => JSON.stringify({ bundle_id: b.bundle_id, issuer: c.issuer, window_days: c.window_days, created_at: b.created_at, village_id: null, visibility, subject: c.subject, predicate: c.predicate, object: c.object, value: 1.0, computed_at: c.computed_at, derivation: null, evidence: [] }));
  write(paths.claimsIndexFile(), `${lines(paths.claimsIndexFile()).map((l) => `${l}\n`).join("")}${rows.map((r) => `${r}\n`).join("")}`);
}

describe("when one bundle is pushed to several scopes", () => {
  const orders: Array<[string, Array<string | null>]> = [
    ["the public store first, then a village", [null, "a"]],
    ["a village first, then the public store", ["a", null]],
    ["village a first, then village b", ["a", "b"]],
    ["all three, the public store in the middle", ["b", null, "a"]],
  ];
  for (const [name, scopes] of orders) {
    test(`${name}: each stores and indexes it once, and a second push is a duplicate`, () => {
      const { paths, db } = fresh();
      const b = bundle();
      for (const s of scopes) {
        expect(isStored(paths, s, b.bundle_id, db)).toBe(false);
        expect(storeBundle(paths, b, s, s === null ? "public" : "village", db).status).toBe("stored");
        expect(isStored(paths, s, b.bundle_id, db)).toBe(true);
        expect(storeBundle(paths, b, s, s === null ? "public" : "village", db).status).toBe("duplicate");
      }
      expect(rowsByScope(paths, b.bundle_id)).toEqual(scopes.map((s) => `${s ?? "-"}:2`).sort());
      for (const s of scopes) expect(storedBundleFile(paths, s, b.bundle_id, db)).toBe(paths.bundleFile(b.bundle_id, s));
    });
  }

  test("the group commit's own duplicate check looks only at the village", async () => {
    const { paths, db } = fresh();
    const b = bundle();
    storeBundle(paths, b, null, "public", db);
    storeBundle(paths, b, "b", "village", db);
    const commit = new GroupCommit(paths, db);
    const item = { bundle: b, villageId: "a", visibility: "village", audit: { action: "ingest.accept" as const, bundle_id: b.bundle_id, village_id: "a" } };
    expect((await commit.submit(item)).status).toBe("stored");
    expect((await commit.submit(item)).status).toBe("duplicate");
    await commit.close();
    expect(rowsByScope(paths, b.bundle_id)).toEqual(["-:2", "a:2", "b:2"]);
  });

  test("quarantine approval stores a bundle the public store already holds", () => {
    const { paths, db } = fresh();
    const b = requireVerified(signedBundle(key, { predicate: "links.held" }));
    const raw = new TextEncoder().encode(toJsonText(b as unknown as JsonValue));
    putInQuarantine(paths, raw, { bundle_id: b.bundle_id, village_id: "a", reason: "predicate_not_allowed", detail: null, received_at: null, actor: "bob", issuer_key_hash: null, policy_hash: null });
    storeBundle(paths, b, null, "public", db);
    const village = JSON.parse(readFileSync(paths.villageFile("a"), "utf8"));
    village.policy.allowed_predicates = ["links.weighted_to", "links.held"];
    writeFileSync(paths.villageFile("a"), JSON.stringify(village));
    expect(approveQuarantined(paths, "a", b.bundle_id, "admin", db)).toEqual({ status: "stored" });
    expect(existsSync(paths.bundleFile(b.bundle_id, "a"))).toBe(true);
    expect(rowsByScope(paths, b.bundle_id)).toEqual(["-:1", "a:1"]);
  });
});

describe("recovery after a crash", () => {
  test("repairs a village's rows even when the public store indexed the same bundle after the checkpoint", () => {
    const { paths, db } = fresh();
    const b = bundle();
    mkdirSync(dirname(paths.ingestLogFile()), { recursive: true });
    const audit = { ts: "2026-01-01T00:00:00Z", action: "ingest.accept", bundle_id: b.bundle_id, village_id: "a", issuer_key_hash: null, actor: "m", reason: null, policy_hash: null };
    writeFileSync(paths.ingestLogFile(), `${toJsonText({ audit, bundle: b, village_id: "a", visibility: "village" } as unknown as JsonValue)}\n`);
    storeBundle(paths, b, null, "public", db); // public rows and its audit row after the (absent) checkpoint
    write(paths.auditFile(), `${JSON.stringify({ ...audit, village_id: null })}\n`);
    expect(recover(paths)).toEqual({ logged: 1, repaired: 1 });
    expect(existsSync(paths.bundleFile(b.bundle_id, "a"))).toBe(true);
    expect(rowsByScope(paths, b.bundle_id)).toEqual(["-:2", "a:2"]);
    expect(lines(paths.auditFile()).filter((l) => l.includes('"village_id":"a"'))).toHaveLength(1);
  });
});

describe("a bundle Python Links v0.7 accepted into a village (file at the top, rows without the village)", () => {
  test("is the village's, not the public store's and not another village's", () => {
    const { paths, db } = fresh();
    const b = bundle();
    legacyBundle(paths, b, "a");
    expect(isStored(paths, "a", b.bundle_id, db)).toBe(true);
    expect(storedBundleFile(paths, "a", b.bundle_id, db)).toBe(paths.bundleFile(b.bundle_id));
    expect(isStored(paths, null, b.bundle_id, db)).toBe(false);
    expect(isStored(paths, "b", b.bundle_id, db)).toBe(false);
    expect(storeBundle(paths, b, "a", "village", db).status).toBe("duplicate");
    expect(existsSync(paths.bundleFile(b.bundle_id, "a"))).toBe(false);
    expect(db.query({ villageId: "a" }, 10).map((r) => [r.row.bundle_id, r.row.village_id])).toEqual([
      [b.bundle_id, "a"],
      [b.bundle_id, "a"],
    ]);
    expect(db.query({ villageId: "b" }, 10)).toEqual([]);
    expect(db.latestBundleId(null)).toBeNull();
    expect(db.latestBundleId("a")).toBe(b.bundle_id);
  });

  test("pushed publicly, it becomes public too, once, without a second file", () => {
    const { paths, db } = fresh();
    const b = bundle();
    legacyBundle(paths, b, "a");
    expect(storeBundle(paths, b, null, "public", db).status).toBe("stored");
    expect(storeBundle(paths, b, null, "public", db).status).toBe("duplicate");
    expect(isStored(paths, null, b.bundle_id, db)).toBe(true);
    expect(isStored(paths, "a", b.bundle_id, db)).toBe(true);
    expect(db.latestBundleId(null)).toBe(b.bundle_id);
    expect(lines(paths.claimsIndexFile()).filter((l) => l.includes('"visibility":"public"'))).toHaveLength(2);
  });

  test("pushed to another village, it is stored there in that village's folder", () => {
    const { paths, db } = fresh();
    const b = bundle();
    legacyBundle(paths, b, "a");
    expect(storeBundle(paths, b, "b", "village", db).status).toBe("stored");
    expect(existsSync(paths.bundleFile(b.bundle_id, "b"))).toBe(true);
    expect(db.query({ villageId: "b" }, 10)).toHaveLength(2);
    expect(db.query({ villageId: "a" }, 10)).toHaveLength(2);
  });

  test("with no audit row naming its village, it is served to nobody, and reindex keeps its rows as they were", () => {
    const { paths, db } = fresh();
    const b = bundle();
    legacyBundle(paths, b, null, "village");
    const before = lines(paths.claimsIndexFile());
    expect(isStored(paths, null, b.bundle_id, db)).toBe(false);
    expect(isStored(paths, "a", b.bundle_id, db)).toBe(false);
    reindex(paths, undefined, db);
    expect(lines(paths.claimsIndexFile())).toEqual(before);
  });

  test("reindex writes its rows for its village, and a second reindex gives the same file", () => {
    const { paths, db } = fresh();
    const legacy = bundle();
    legacyBundle(paths, legacy, "a");
    const shared = bundle();
    for (const s of [null, "a", "b"]) storeBundle(paths, shared, s, s === null ? "public" : "village", db);
    reindex(paths, undefined, db);
    const first = readFileSync(paths.claimsIndexFile(), "utf8");
    expect(rowsByScope(paths, legacy.bundle_id)).toEqual(["a:2"]);
    expect(rowsByScope(paths, shared.bundle_id)).toEqual(["-:2", "a:2", "b:2"]);
    reindex(paths, undefined, db);
    expect(readFileSync(paths.claimsIndexFile(), "utf8")).toBe(first);
    // and from scratch, with the claims database deleted
    db.close();
    dbs.splice(dbs.indexOf(db), 1);
    rmSync(paths.claimsSqliteFile());
    reindex(paths);
    expect(readFileSync(paths.claimsIndexFile(), "utf8")).toBe(first);
  });
});
