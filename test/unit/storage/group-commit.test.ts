import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { requireVerified } from "../../../src/core/bundle.ts";
import { toJsonText, type JsonValue } from "../../../src/core/canonical.ts";
import { ClaimsDb } from "../../../src/storage/claims-db.ts";
import { reindex } from "../../../src/storage/claims-index.ts";
import { GroupCommit, recover } from "../../../src/storage/group-commit.ts";
import { DataPaths } from "../../../src/storage/paths.ts";
import { createVillage } from "../../../src/storage/villages.ts";
import { keypair, signedBundle } from "../server/helpers.ts";

const dirs: string[] = [];
const dbs: ClaimsDb[] = [];
afterEach(() => {
  for (const db of dbs.splice(0)) db.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** The claims database the node would hand its group commit. */
function claimsDb(paths: DataPaths): ClaimsDb {
  const db = new ClaimsDb(paths);
  dbs.push(db);
  return db;
}

function fresh(): DataPaths {
  const dir = mkdtempSync(join(tmpdir(), "links-gc-"));
  dirs.push(dir);
  const paths = new DataPaths(dir);
  createVillage(paths, { villageId: "v", name: "v", adminId: "a" });
  return paths;
}

const lines = (file: string) => (existsSync(file) ? readFileSync(file, "utf8").split("\n").filter(Boolean) : []);
const key = keypair();
const item = () => {
  const bundle = requireVerified(signedBundle(key, { claims: 3 }));
  return { bundle, villageId: "v", visibility: "village", audit: { action: "ingest.accept" as const, bundle_id: bundle.bundle_id, village_id: "v", actor: "m" } };
};

describe("the group commit", () => {
  test("concurrent submissions share batches, and every bundle is stored, indexed and audited once", async () => {
    const paths = fresh();
    const commit = new GroupCommit(paths, claimsDb(paths));
    const items = Array.from({ length: 40 }, item);
    const results = await Promise.all([...items, items[0]!].map((i) => commit.submit(i)));
    expect(results.filter((r) => r.status === "stored")).toHaveLength(40);
    expect(results.filter((r) => r.status === "duplicate")).toHaveLength(1);
    for (const i of items) expect(existsSync(paths.bundleFile(i.bundle.bundle_id, "v"))).toBe(true);
    expect(lines(paths.claimsIndexFile())).toHaveLength(120);
    expect(lines(paths.auditFile()).filter((l) => l.includes('"ingest.accept"'))).toHaveLength(40);
    await commit.close();
    expect(lines(paths.ingestLogFile())).toHaveLength(0); // checkpointed on close
  });
});

describe("a checkpoint while bundles keep coming", () => {
  test("drops only the part of the log it synced; what was committed meanwhile stays logged", async () => {
    const paths = fresh();
    // The filesystem sync is held until the second batch is committed.
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let syncs = 0;
    const syncFs = async () => {
      syncs++;
      if (syncs === 1) await held;
    };
    const commit = new GroupCommit(paths, claimsDb(paths), { maxBatch: 512, checkpointBytes: 1, checkpointMs: 3_600_000, syncFs });
    const first = Array.from({ length: 5 }, item);
    await Promise.all(first.map((i) => commit.submit(i))); // its checkpoint starts right after
    const second = Array.from({ length: 5 }, item);
    await Promise.all(second.map((i) => commit.submit(i)));
    release();
    const state = commit as unknown as { checkpointing: Promise<void> | null };
    while (state.checkpointing) await state.checkpointing;
    expect(syncs).toBe(1);
    const logged = lines(paths.ingestLogFile()).join("\n");
    for (const i of first) expect(logged).not.toContain(i.bundle.bundle_id);
    for (const i of second) expect(logged).toContain(i.bundle.bundle_id);
    for (const i of [...first, ...second]) expect(existsSync(paths.bundleFile(i.bundle.bundle_id, "v"))).toBe(true);
    await commit.close();
    expect(lines(paths.ingestLogFile())).toHaveLength(0);
    expect(lines(paths.claimsIndexFile())).toHaveLength(30);
  });
});

describe("recovery after a crash between the log and the files", () => {
  const logLine = (i: ReturnType<typeof item>) =>
    toJsonText({ audit: { ...i.audit, ts: "2026-01-01T00:00:00Z", issuer_key_hash: null, reason: null, policy_hash: null }, bundle: i.bundle, village_id: "v", visibility: "village" } as unknown as JsonValue);

  /** What the log holds when the node died right after its fdatasync. */
  function crashAfterLog(paths: DataPaths, items: Array<ReturnType<typeof item>>) {
    mkdirSync(dirname(paths.ingestLogFile()), { recursive: true });
    writeFileSync(paths.ingestLogFile(), items.map((i) => `${logLine(i)}\n`).join(""));
    return items;
  }

  test("every logged bundle is stored, indexed and audited, and a second recovery changes nothing", () => {
    const paths = fresh();
    const items = crashAfterLog(paths, Array.from({ length: 5 }, item));
    const result = recover(paths);
    expect(result).toEqual({ logged: 5, repaired: 5 });
    for (const i of items) expect(JSON.parse(readFileSync(paths.bundleFile(i.bundle.bundle_id, "v"), "utf8")).signature).toBe(i.bundle.signature);
    expect(lines(paths.claimsIndexFile())).toHaveLength(15);
    expect(lines(paths.auditFile()).filter((l) => l.includes('"ingest.accept"'))).toHaveLength(5);
    expect(recover(paths)).toEqual({ logged: 0, repaired: 0 });
    expect(lines(paths.claimsIndexFile())).toHaveLength(15);
  });

  test("a torn bundle file is rewritten and the index equals a rebuild from the stored bundles", async () => {
    const paths = fresh();
    const commit = new GroupCommit(paths, claimsDb(paths));
    for (const i of Array.from({ length: 3 }, item)) await commit.submit(i);
    // crash: the node died after logging, with one file torn and its rows never appended
    const items = crashAfterLog(paths, Array.from({ length: 2 }, item));
    writeFileSync(paths.bundleFile(items[0]!.bundle.bundle_id, "v"), '{"bundle_id":"');
    recover(paths);
    const before = lines(paths.claimsIndexFile()).sort();
    expect(before).toHaveLength(15);
    reindex(paths);
    expect(lines(paths.claimsIndexFile()).sort()).toEqual(before);
  });

  test("files already written and indexed are left alone; only the missing audit row is added", () => {
    const paths = fresh();
    const items = crashAfterLog(paths, [item()]);
    recover(paths);
    const id = items[0]!.bundle.bundle_id;
    // Again, but this time the node had stored and indexed the bundle and died before its
    // unsynced audit row reached the disk.
    writeFileSync(paths.auditFile(), lines(paths.auditFile()).filter((l) => !l.includes(id)).map((l) => `${l}\n`).join(""));
    unlinkSync(paths.ingestCheckpointFile());
    crashAfterLog(paths, items);
    expect(recover(paths).repaired).toBe(1);
    expect(lines(paths.claimsIndexFile())).toHaveLength(3);
    expect(lines(paths.auditFile()).filter((l) => l.includes(id))).toHaveLength(1);
  });
});
