/**
 * The bundle store, in scopes: the public store (files at the top of store/bundles/) and each
 * village (store/bundles/<village_id>/). A scope holds a bundle only through its own files, so a
 * copy in one scope never makes the same bundle look stored in another. The one exception is
 * Python Links v0.7's layout, which put village bundles at the top too: which village such a file
 * belongs to (and whether it is public at all) is known to the claims database, which the store
 * asks through `TopLevelOwners`.
 *
 * Every reader goes through `storedBundleFile` / `storedBundle` / `isStored`.
 */
import { existsSync, readdirSync, unlinkSync, type Dirent } from "node:fs";
import { join } from "node:path";
import { normalizeBundle, type Bundle, type VerifiedBundle } from "../core/bundle.ts";
import { toJsonText, type JsonValue } from "../core/canonical.ts";
import { LinksError } from "../core/errors.ts";
import { createFileUnsynced } from "./atomic.ts";
import { withFileLockSync } from "./flock.ts";
import { indexRowLines } from "./index-rows.ts";
import { readJsonFile, writeJsonFile } from "./json-file.ts";
import { lockedAppend } from "./jsonl.ts";
import { BUNDLE_ID_RE, VILLAGE_ID_RE, type DataPaths } from "./paths.ts";

export type Visibility = "private" | "village" | "public";

/** A village id, or null for the public store. */
export type Scope = string | null;

/**
 * Who holds a file at the top of store/bundles/. That is the public store's place, but Python
 * Links v0.7 put the bundles it accepted into villages there as well.
 */
export interface TopLevelOwners {
  /**
   * The villages whose bundle this top-level file is (Python v0.7's layout); none in a data
   * directory v0.7 never wrote to. Cheap: asked for every village bundle stored, it reads no file.
   */
  villagesAtTop(bundleId: string): string[];
  /** whether the public store holds it: not when it is only a village bundle v0.7 left there */
  publicAtTop(bundleId: string): boolean;
  /** brings the answers up to date with every write finished so far (the others may lag) */
  refresh(): void;
}

/** The file that holds bundle X for scope S, or null when S does not hold X. */
export function storedBundleFile(paths: DataPaths, scope: Scope, bundleId: string, owners: TopLevelOwners): string | null {
  if (!BUNDLE_ID_RE.test(bundleId) || (scope !== null && !VILLAGE_ID_RE.test(scope))) return null;
  if (scope !== null) {
    const own = paths.bundleFile(bundleId, scope);
    if (existsSync(own)) return own;
    if (!owners.villagesAtTop(bundleId).includes(scope)) return null;
  }
  const top = paths.bundleFile(bundleId);
  if (!existsSync(top)) return null;
  return scope !== null || owners.publicAtTop(bundleId) ? top : null;
}

/** Whether scope S holds bundle X. */
export function isStored(paths: DataPaths, scope: Scope, bundleId: string, owners: TopLevelOwners): boolean {
  return storedBundleFile(paths, scope, bundleId, owners) !== null;
}

/** The stored bundle X of scope S, or null. */
export function storedBundle(paths: DataPaths, scope: Scope, bundleId: string, owners: TopLevelOwners): Bundle | null {
  const file = storedBundleFile(paths, scope, bundleId, owners);
  if (file === null) return null;
  const raw = readJsonFile(file);
  return raw === null ? null : normalizeBundle(raw);
}

export type IngestResult = { status: "stored" | "duplicate"; bundleId: string; rows: number };

export interface StoreItem {
  bundle: VerifiedBundle;
  villageId: Scope;
  visibility: Visibility | string;
  /** the bundle's JSON text, when the caller already serialized it */
  text?: string;
}

/**
 * Stores bundles that already passed verification (the type says so) and policy, each in its
 * scope. Idempotent across processes: each bundle file is created with an exclusive create, so
 * only its first writer appends index rows. With `sync: false` nothing is fsynced: only the
 * group commit does that, whose write-ahead log already holds the bundles durably.
 */
export function storeBundles(
  paths: DataPaths,
  items: StoreItem[],
  owners: TopLevelOwners,
  opts: { sync: boolean } = { sync: true },
): IngestResult[] {
  return withFileLockSync(paths.indexWritersLockFile(), "shared", () => {
    const created: string[] = [];
    try {
      return storeAll(paths, items, owners, opts, created);
    } catch (e) {
      // A bundle file without its index rows would pass for stored on a retry: take the files
      // back, so the caller's error means "nothing stored" and a retry does it all again.
      for (const file of created) removeQuietly(file);
      throw e;
    }
  });
}

function storeAll(paths: DataPaths, items: StoreItem[], owners: TopLevelOwners, opts: { sync: boolean }, created: string[]): IngestResult[] {
  const rows: string[] = [];
  const results = items.map(({ bundle, villageId, visibility, text }): IngestResult => {
    const duplicate = { status: "duplicate", bundleId: bundle.bundle_id, rows: 0 } as const;
    // The exclusive create below finds a bundle the scope already holds in its own place; only
    // a village bundle Python v0.7 left at the top of store/bundles needs asking about first.
    if (villageId !== null && owners.villagesAtTop(bundle.bundle_id).includes(villageId)) return duplicate;
    const file = paths.bundleFile(bundle.bundle_id, villageId);
    try {
      if (opts.sync) writeJsonFile(file, bundle, { exclusive: true });
      else createFileUnsynced(file, `${text ?? toJsonText(bundle as unknown as JsonValue)}\n`);
      created.push(file);
    } catch (e) {
      if (!(e instanceof LinksError && e.code === "file_exists")) throw e;
      if (villageId !== null) return duplicate; // another writer stored it in this village just now
      // The top-level file is there but is not public: a village bundle Python v0.7 left there.
      return adoptPublicly(paths, bundle, owners, opts) ? { status: "stored", bundleId: bundle.bundle_id, rows: bundle.claims.length } : duplicate;
    }
    const mine = indexRowLines(bundle, villageId, visibility);
    for (const r of mine) rows.push(r);
    return { status: "stored", bundleId: bundle.bundle_id, rows: mine.length };
  });
  lockedAppend(paths.claimsIndexFile(), rows, { fsync: opts.sync });
  return results;
}

/**
 * Makes the public store hold a file that is already at the top of store/bundles for a village:
 * its public index rows are what say so. Serialized, so two pushes of it index it once.
 */
function adoptPublicly(paths: DataPaths, bundle: VerifiedBundle, owners: TopLevelOwners, opts: { sync: boolean }): boolean {
  return withFileLockSync(paths.publicAdoptionLockFile(), "exclusive", () => {
    owners.refresh(); // an adoption that finished just before this one must be seen
    if (owners.publicAtTop(bundle.bundle_id)) return false;
    lockedAppend(paths.claimsIndexFile(), indexRowLines(bundle, null, "public"), { fsync: opts.sync });
    return true;
  });
}

export function storeBundle(paths: DataPaths, bundle: VerifiedBundle, villageId: Scope, visibility: Visibility | string, owners: TopLevelOwners): IngestResult {
  return storeBundles(paths, [{ bundle, villageId, visibility }], owners)[0] as IngestResult;
}

/**
 * The newest bundle a scope holds: the last one the claims database indexed for it. A village
 * the database has no row of yet (it could not catch up, e.g. on a full disk) gets the newest
 * file in its own folder instead; the public store has no such fallback, since the top of
 * store/bundles also holds what Python v0.7 stored for villages.
 */
export function latestBundle(paths: DataPaths, scope: Scope, db: TopLevelOwners & { latestBundleId(scope: Scope): string | null }): Bundle | null {
  if (scope !== null && !VILLAGE_ID_RE.test(scope)) return null;
  const bundleId = db.latestBundleId(scope) ?? (scope === null ? null : newestFile(join(paths.bundlesDir(), scope)));
  return bundleId === null ? null : storedBundle(paths, scope, bundleId, db);
}

function newestFile(dir: string): string | null {
  let best: { id: string; mtime: number } | null = null;
  for (const e of listDir(dir)) {
    if (!e.isFile() || !isBundleFileName(e.name)) continue;
    const mtime = Bun.file(join(dir, e.name)).lastModified;
    if (!best || mtime > best.mtime) best = { id: e.name.slice(0, -5), mtime };
  }
  return best?.id ?? null;
}

/** Bundle files at the top of store/bundles/ (bundle ids, sorted) and the village folders there. */
export function bundleTree(paths: DataPaths): { top: string[]; villages: Array<{ villageId: string; bundleIds: string[] }> } {
  const top: string[] = [];
  const villages: Array<{ villageId: string; bundleIds: string[] }> = [];
  for (const e of listDir(paths.bundlesDir())) {
    if (e.isFile() && isBundleFileName(e.name)) top.push(e.name.slice(0, -5));
    else if (e.isDirectory() && VILLAGE_ID_RE.test(e.name)) {
      const ids = listDir(join(paths.bundlesDir(), e.name))
        .filter((f) => f.isFile() && isBundleFileName(f.name))
        .map((f) => f.name.slice(0, -5));
      villages.push({ villageId: e.name, bundleIds: ids.sort() });
    }
  }
  villages.sort((a, b) => (a.villageId < b.villageId ? -1 : a.villageId > b.villageId ? 1 : 0));
  return { top: top.sort(), villages };
}

function isBundleFileName(name: string): boolean {
  return name.endsWith(".json") && BUNDLE_ID_RE.test(name.slice(0, -5));
}

function listDir(dir: string): Dirent[] {
  try {
    return readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
}

function removeQuietly(file: string): void {
  try {
    unlinkSync(file);
  } catch {
    // already gone
  }
}
