import { afterEach, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { requireVerified } from "../../../src/core/bundle.ts";
import { toJsonText } from "../../../src/core/canonical.ts";
import { ClaimsDb } from "../../../src/storage/claims-db.ts";
import { DataPaths } from "../../../src/storage/paths.ts";
import { latestBundle, storeBundle } from "../../../src/storage/store.ts";
import { keypair, signedBundle } from "../server/helpers.ts";

const dirs: string[] = [];
const dbs: ClaimsDb[] = [];
afterEach(() => {
  for (const db of dbs.splice(0)) db.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const fresh = () => {
  const d = mkdtempSync(join(tmpdir(), "links-latest-"));
  dirs.push(d);
  const paths = new DataPaths(d);
  const db = new ClaimsDb(paths);
  dbs.push(db);
  return { paths, db };
};
const key = keypair();

describe("the newest bundle", () => {
  test("of a village is the one stored last", () => {
    const { paths, db } = fresh();
    const a = requireVerified(signedBundle(key));
    const b = requireVerified(signedBundle(key));
    storeBundle(paths, a, "v", "village", db);
    storeBundle(paths, b, "v", "village", db);
    expect(latestBundle(paths, "v", db)?.bundle_id).toBe(b.bundle_id);
    expect(latestBundle(paths, null, db)).toBeNull();
    expect(latestBundle(paths, "w", db)).toBeNull();
  });

  test("of the public store is never a file Python Links v0.7 left at the top of store/bundles for a village", () => {
    const { paths, db } = fresh();
    const legacy = requireVerified(signedBundle(key));
    mkdirSync(paths.bundlesDir(), { recursive: true });
    writeFileSync(paths.bundleFile(legacy.bundle_id), toJsonText(legacy as never));
    mkdirSync(join(paths.root, "store", "audit"), { recursive: true });
    writeFileSync(paths.auditFile(), `${JSON.stringify({ ts: "2026-01-01T00:00:00Z", action: "ingest.accept", bundle_id: legacy.bundle_id, village_id: "v" })}\n`);
    expect(latestBundle(paths, null, db)).toBeNull();
    expect(latestBundle(paths, "v", db)?.bundle_id).toBe(legacy.bundle_id);
    expect(latestBundle(paths, "w", db)).toBeNull();
    const pub = requireVerified(signedBundle(key));
    storeBundle(paths, pub, null, "public", db);
    expect(latestBundle(paths, null, db)?.bundle_id).toBe(pub.bundle_id);
    expect(latestBundle(paths, "v", db)?.bundle_id).toBe(legacy.bundle_id);
  });
});

describe("when the claims database has no row of a village yet", () => {
  test("the village's newest file answers, and never a file of the public store", () => {
    const { paths, db } = fresh();
    const pub = requireVerified(signedBundle(key));
    mkdirSync(paths.bundlesDir(), { recursive: true });
    writeFileSync(paths.bundleFile(pub.bundle_id), toJsonText(pub as never));
    expect(latestBundle(paths, "v", db)).toBeNull();
    const own = requireVerified(signedBundle(key));
    mkdirSync(join(paths.bundlesDir(), "v"), { recursive: true });
    writeFileSync(paths.bundleFile(own.bundle_id, "v"), toJsonText(own as never));
    expect(latestBundle(paths, "v", db)?.bundle_id).toBe(own.bundle_id);
    expect(latestBundle(paths, "w", db)).toBeNull();
  });
});
