/**
 * The bundle store: verified bundles under store/bundles[/<village_id>]/, one index row per claim
 * in store/index/claims.jsonl, and a pointer to each village's newest bundle so reading it never
 * lists a directory.
 */
import { existsSync, readdirSync, readFileSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { normalizeBundle, type Bundle, type VerifiedBundle } from "../core/bundle.ts";
import { toJsonText, type JsonValue } from "../core/canonical.ts";
import { LinksError } from "../core/errors.ts";
import { atomicWrite, createFileUnsynced } from "./atomic.ts";
import type { ClaimsDb } from "./claims-db.ts";
import { readJsonFile, writeJsonFile } from "./json-file.ts";
import { lockedAppend } from "./jsonl.ts";
import { BUNDLE_ID_RE, VILLAGE_ID_RE, type DataPaths } from "./paths.ts";

export type Visibility = "private" | "village" | "public";

export interface IndexRow {
  bundle_id: string;
  issuer: string;
  window_days: number;
  created_at: string;
  village_id: string | null;
  visibility: string;
  subject: string;
  predicate: string;
  object: string | null;
  value: JsonValue;
  computed_at: string;
  derivation: string | null;
  evidence: string[];
}

export function indexRows(bundle: Bundle, villageId: string | null, visibility: string): IndexRow[] {
  return bundle.claims.map((c) => ({
    bundle_id: bundle.bundle_id,
    issuer: c.issuer,
    window_days: c.window_days,
    created_at: bundle.created_at,
    village_id: villageId,
    visibility,
    subject: c.subject,
    predicate: c.predicate,
    object: c.object,
    value: c.value,
    computed_at: c.computed_at,
    derivation: c.derivation,
    evidence: c.evidence,
  }));
}

/**
 * The index rows of a bundle as JSON lines, exactly what toJsonText(indexRows(...)) gives, built
 * from a template in the rows' sorted key order (ingest writes ten of these per bundle).
 */
export function indexRowLines(bundle: Bundle, villageId: string | null, visibility: string): string[] {
  const j = toJsonText;
  const common = `{"bundle_id":${j(bundle.bundle_id)}`;
  const created = j(bundle.created_at);
  const tail = `,"village_id":${j(villageId)},"visibility":${j(visibility)},"window_days":`;
  return bundle.claims.map(
    (c) =>
      `${common},"computed_at":${j(c.computed_at)},"created_at":${created},"derivation":${j(c.derivation)},"evidence":${j(c.evidence)},"issuer":${j(c.issuer)},"object":${j(c.object)},"predicate":${j(c.predicate)},"subject":${j(c.subject)},"value":${j(c.value)}${tail}${c.window_days}}`,
  );
}

/** Where a bundle is, looking also where Python Links v0.7 put village bundles (store/bundles/). */
export function findBundleFile(paths: DataPaths, bundleId: string, villageId: string | null): string | null {
  const candidates = villageId === null
    ? [paths.bundleFile(bundleId)]
    : [paths.bundleFile(bundleId, villageId), paths.bundleFile(bundleId)];
  return candidates.find((p) => existsSync(p)) ?? null;
}

export function readStoredBundle(paths: DataPaths, bundleId: string, villageId: string | null): Bundle | null {
  const file = findBundleFile(paths, bundleId, villageId);
  if (file === null) return null;
  return normalizeBundle(readJsonFile(file));
}

export type IngestResult = { status: "stored" | "duplicate"; bundleId: string; rows: number };

export interface StoreItem {
  bundle: VerifiedBundle;
  villageId: string | null;
  visibility: Visibility | string;
  /** the bundle's JSON text, when the caller already serialized it */
  text?: string;
}

/**
 * Stores bundles that already passed verification (the type says so) and policy. Idempotent
 * across processes: each bundle file is created with link(2), so only its first writer appends
 * index rows. With `sync: false` nothing is fsynced: only the group commit does that, whose
 * write-ahead log already holds the bundles durably.
 */
export function storeBundles(paths: DataPaths, items: StoreItem[], opts: { sync: boolean } = { sync: true }): IngestResult[] {
  const created: string[] = [];
  try {
    return storeAll(paths, items, opts, created);
  } catch (e) {
    // A bundle file without its index rows would pass for stored on a retry: take the files
    // back, so the caller's error means "nothing stored" and a retry does it all again.
    for (const file of created) {
      try {
        unlinkSync(file);
      } catch {
        // already gone
      }
    }
    throw e;
  }
}

function storeAll(paths: DataPaths, items: StoreItem[], opts: { sync: boolean }, created: string[]): IngestResult[] {
  const rows: string[] = [];
  const latest = new Map<string | null, string>();
  const results = items.map(({ bundle, villageId, visibility, text }): IngestResult => {
    const duplicate = { status: "duplicate", bundleId: bundle.bundle_id, rows: 0 } as const;
    if (findBundleFile(paths, bundle.bundle_id, villageId) !== null) return duplicate;
    try {
      const file = paths.bundleFile(bundle.bundle_id, villageId);
      if (opts.sync) writeJsonFile(file, bundle, { exclusive: true });
      else createFileUnsynced(file, `${text ?? toJsonText(bundle as unknown as JsonValue)}\n`);
      created.push(file);
    } catch (e) {
      if (e instanceof LinksError && e.code === "file_exists") return duplicate;
      throw e;
    }
    const mine = indexRowLines(bundle, villageId, visibility);
    for (const r of mine) rows.push(r);
    latest.set(villageId, bundle.bundle_id);
    return { status: "stored", bundleId: bundle.bundle_id, rows: mine.length };
  });
  lockedAppend(paths.claimsIndexFile(), rows, { fsync: opts.sync });
  // Under the group commit the node answers "latest" from its claims database; the pointer
  // (replaced by rename, which ext4 flushes eagerly) is for the CLI's single writes.
  if (opts.sync) {
    for (const [villageId, bundleId] of latest) {
      try {
        atomicWrite(latestPointer(paths, villageId), `${bundleId}\n`);
      } catch {
        // a hint only (the index says the same): the bundles are stored and indexed already
      }
    }
  }
  return results;
}

export function storeBundle(paths: DataPaths, bundle: VerifiedBundle, villageId: string | null, visibility: Visibility | string): IngestResult {
  return storeBundles(paths, [{ bundle, villageId, visibility }])[0] as IngestResult;
}

function latestPointer(paths: DataPaths, villageId: string | null): string {
  return villageId === null ? join(paths.bundlesDir(), "latest.ptr") : join(paths.bundlesDir(), villageId, "latest.ptr");
}

/**
 * The newest bundle of a village (or the public store): the last one indexed, from the node's
 * claims database; else the pointer the CLI writes; a data directory written by Python Links has
 * neither, so the newest file by mtime is found once and remembered.
 */
export function latestBundle(paths: DataPaths, villageId: string | null, db?: ClaimsDb): Bundle | null {
  if (villageId !== null && !VILLAGE_ID_RE.test(villageId)) return null;
  const indexed = db?.latestBundleId(villageId) ?? null;
  if (indexed !== null) {
    const bundle = readStoredBundle(paths, indexed, villageId);
    if (bundle) return bundle;
  }
  const pointer = latestPointer(paths, villageId);
  let bundleId: string | null = null;
  try {
    bundleId = readFileSync(pointer, "utf8").trim();
  } catch {
    // Not for the public store: Python Links v0.7 also put village bundles at its top, and a
    // file there says nothing of whether it is public.
    bundleId = villageId === null ? null : newestByMtime(join(paths.bundlesDir(), villageId));
    try {
      if (bundleId !== null) atomicWrite(pointer, `${bundleId}\n`);
    } catch {
      // only a shortcut for next time (e.g. the disk is full): the answer stands without it
    }
  }
  if (bundleId === null || !BUNDLE_ID_RE.test(bundleId)) return null;
  return readStoredBundle(paths, bundleId, villageId);
}

function newestByMtime(dir: string): string | null {
  let best: { id: string; mtime: number } | null = null;
  let entries: import("node:fs").Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return null;
  }
  for (const e of entries) {
    const id = e.name.slice(0, -5);
    if (!e.isFile() || !e.name.endsWith(".json") || !BUNDLE_ID_RE.test(id)) continue;
    const mtime = Bun.file(join(dir, e.name)).lastModified;
    if (!best || mtime > best.mtime) best = { id, mtime };
  }
  return best?.id ?? null;
}

/** Every stored bundle file: public and legacy ones at the top, village ones in subfolders. */
export function* storedBundleFiles(paths: DataPaths): Generator<{ file: string; villageId: string | null }> {
  let top: import("node:fs").Dirent[];
  try {
    top = readdirSync(paths.bundlesDir(), { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of top.sort((a, b) => (a.name < b.name ? -1 : 1))) {
    if (e.isFile() && e.name.endsWith(".json") && BUNDLE_ID_RE.test(e.name.slice(0, -5))) {
      yield { file: join(paths.bundlesDir(), e.name), villageId: null };
    } else if (e.isDirectory() && VILLAGE_ID_RE.test(e.name)) {
      const dir = join(paths.bundlesDir(), e.name);
      for (const name of readdirSync(dir).sort()) {
        if (name.endsWith(".json") && BUNDLE_ID_RE.test(name.slice(0, -5))) yield { file: join(dir, name), villageId: e.name };
      }
    }
  }
}
