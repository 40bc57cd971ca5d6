/**
 * `links claims reindex`: the claims index (store/index/claims.jsonl) rebuilt from the stored
 * bundles, one set of rows per scope that holds a bundle (see store.ts). The bundles are the
 * truth; the index can always be derived again.
 *
 * It runs beside a node that keeps taking pushes. Writers hold the index writers lock (shared)
 * from creating a bundle file to appending its rows; the rebuild takes it (exclusively) only for
 * two short moments, so no bundle is half stored at either:
 * 1. to note where the live index ends: every row before that point has its file, which the
 *    rebuild then reads;
 * 2. to swap in the rebuilt index, adding the rows appended since point 1 for bundles the rebuild
 *    did not see. A row acknowledged at any time is therefore in the new index exactly once.
 * Everything else (reading every bundle, writing the new file) happens with no lock held.
 *
 * The result depends only on the stored files, the audit log and the old index's verdict on
 * files at the top of store/bundles (public or not), which it writes back unchanged: two
 * reindexes in a row give identical files. Rows are ordered by the bundles' created_at (then id
 * and scope), so "latest" after a reindex is the newest bundle.
 */
import { existsSync } from "node:fs";
import { normalizeBundle, type Bundle } from "../core/bundle.ts";
import { parseDatetime } from "../core/datetime.ts";
import { withOwners, type ClaimsDb } from "./claims-db.ts";
import { withFileLockSync } from "./flock.ts";
import { indexRowLines, PUBLIC_SCOPE, rowScope } from "./index-rows.ts";
import { readJsonFile } from "./json-file.ts";
import { fileStamp, stageJsonl } from "./jsonl.ts";
import { villageVisibilities } from "./legacy-holdings.ts";
import type { DataPaths } from "./paths.ts";
import { bundleTree } from "./store.ts";

export interface ReindexResult {
  /** bundle files read */
  bundles: number;
  /** rows in the new index */
  rows: number;
  /** of those, rows appended by writers while the rebuild ran */
  carried: number;
  /** "<file>: <why>" for each file that could not be read as a bundle */
  skipped: string[];
}

interface Entry {
  when: [number, number];
  bundleId: string;
  scope: string;
  lines: string[];
}

/** Scope key of the rows Python v0.7 wrote without their village, kept as they were. */
const UNATTRIBUTED = "\u0000";

export function reindex(paths: DataPaths, onProgress?: (done: number, total: number) => void, db?: ClaimsDb): ReindexResult {
  return withOwners(paths, db, (owners) => rebuild(paths, owners, onProgress));
}

function rebuild(paths: DataPaths, db: ClaimsDb, onProgress?: (done: number, total: number) => void): ReindexResult {
  const writers = paths.indexWritersLockFile();
  const index = paths.claimsIndexFile();
  const since = withFileLockSync(writers, "exclusive", () => fileStamp(index).size);
  db.catchUp();

  const tree = bundleTree(paths);
  const total = tree.top.length + tree.villages.reduce((n, v) => n + v.bundleIds.length, 0);
  const entries: Entry[] = [];
  const skipped: string[] = [];
  const visibilityOf = villageVisibilities(paths);
  let done = 0;
  let bundles = 0;
  const add = (bundle: Bundle, scope: string, lines: string[]) => {
    const t = parseDatetime(bundle.created_at);
    entries.push({ when: t ? [t.epochSeconds, t.micros] : [-Infinity, 0], bundleId: bundle.bundle_id, scope, lines });
  };

  const indexTop = (bundle: Bundle) => {
    const id = bundle.bundle_id;
    const isPublic = db.publicAtTop(id);
    if (isPublic) add(bundle, PUBLIC_SCOPE, indexRowLines(bundle, null, "public"));
    const villages = db.villagesAtTop(id);
    for (const vid of villages) {
      // a village that holds it in its own folder too is indexed from there
      if (!existsSync(paths.bundleFile(id, vid))) add(bundle, vid, indexRowLines(bundle, vid, visibilityOf(vid)));
    }
    // Not public and no village known: what the old index said of it is all there is.
    if (!isPublic && villages.length === 0) add(bundle, UNATTRIBUTED, db.unattributedRows(id));
  };
  const indexVillage = (villageId: string) => (bundle: Bundle) => add(bundle, villageId, indexRowLines(bundle, villageId, visibilityOf(villageId)));
  // A file a writer is still filling reads as broken: it gets a second look after the others.
  const unreadable: Array<{ file: string; then: (b: Bundle) => void }> = [];
  const read = (file: string, then: (b: Bundle) => void) => {
    const r = readBundle(file);
    if (r.bundle) {
      bundles++;
      then(r.bundle);
    } else if (r.error !== undefined) unreadable.push({ file, then });
    onProgress?.(++done, total);
  };
  for (const id of tree.top) read(paths.bundleFile(id), indexTop);
  for (const { villageId, bundleIds } of tree.villages) {
    for (const id of bundleIds) read(paths.bundleFile(id, villageId), indexVillage(villageId));
  }
  for (const { file, then } of unreadable) {
    const r = readBundle(file);
    if (r.bundle) {
      bundles++;
      then(r.bundle);
    } else if (r.error !== undefined) skipped.push(`${file}: ${r.error}`);
  }

  entries.sort(
    (a, b) => a.when[0] - b.when[0] || a.when[1] - b.when[1] || cmp(a.bundleId, b.bundleId) || cmp(a.scope, b.scope),
  );
  const lines = entries.flatMap((e) => e.lines);
  const rebuilt = new Set(entries.map((e) => `${e.scope}/${e.bundleId}`));
  const staged = stageJsonl(index, lines);
  const keep = (line: string): boolean => {
    try {
      const row = JSON.parse(line) as { bundle_id?: unknown; village_id?: unknown; visibility?: unknown };
      if (typeof row.bundle_id !== "string") return false;
      return !rebuilt.has(`${rowScope(row) ?? UNATTRIBUTED}/${row.bundle_id}`);
    } catch {
      return false; // not a row
    }
  };
  // The claims database indexes the new file here, so a running node finds that done instead of
  // stalling on it; meanwhile the node answers queries from the rows it had.
  let carried = 0;
  try {
    carried = db.replaceIndex(() => withFileLockSync(writers, "exclusive", () => staged.commit(since, keep)));
  } finally {
    staged.discard(); // gone already unless the swap failed
  }
  return { bundles, rows: lines.length + carried, carried, skipped };
}

/** The bundle in a file; neither when the file is gone (removed while the rebuild ran). */
function readBundle(file: string): { bundle?: Bundle; error?: string } {
  try {
    const raw = readJsonFile(file);
    return raw === null ? {} : { bundle: normalizeBundle(raw) };
  } catch (e) {
    return { error: (e as Error).message };
  }
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
