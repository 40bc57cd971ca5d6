/**
 * The claims index (store/index/claims.jsonl): queried by scanning here, rebuilt from the stored
 * bundles by `reindex`. The bundles are the truth; the index can always be derived again.
 */
import { parseStored } from "../core/canonical.ts";
import { normalizeBundle } from "../core/bundle.ts";
import { readJsonl, replaceJsonl } from "./jsonl.ts";
import { readJsonFile } from "./json-file.ts";
import type { DataPaths } from "./paths.ts";
import { indexRowLines, storedBundleFiles, type IndexRow } from "./store.ts";
import { readVillage, villagePolicy } from "./villages.ts";

export interface ClaimFilter {
  subject?: string | undefined;
  issuer?: string | undefined;
  predicate?: string | undefined;
  villageId?: string | undefined;
  limit?: number | undefined;
}

export function parseIndexRow(line: string): IndexRow {
  const v = parseStored(line) as unknown as IndexRow;
  if (typeof v !== "object" || v === null || typeof v.bundle_id !== "string" || typeof v.subject !== "string") {
    throw new Error("not an index row");
  }
  return v;
}

/**
 * Rebuilds the index from every stored bundle. A village bundle takes its village's current
 * visibility; a bundle at the top of store/bundles keeps what the old index said, else public.
 */
export function reindex(paths: DataPaths, onProgress?: (done: number, total: number) => void): { bundles: number; rows: number; skipped: string[] } {
  const files = [...storedBundleFiles(paths)];
  const visibility = new Map<string, string>();
  // Python Links v0.7 stored village bundles at the top of store/bundles/; what the old index
  // said of them (village and visibility) is the best record of where they belong.
  const previous = new Map<string, { village_id: string | null; visibility: string }>();
  for (const row of readJsonl(paths.claimsIndexFile(), parseIndexRow, () => {})) {
    previous.set(row.bundle_id, { village_id: row.village_id, visibility: row.visibility });
  }
  const lines: string[] = [];
  const skipped: string[] = [];
  files.forEach(({ file, villageId }, i) => {
    try {
      const bundle = normalizeBundle(readJsonFile(file));
      const before = villageId === null ? previous.get(bundle.bundle_id) : undefined;
      const vid = villageId ?? before?.village_id ?? null;
      const vis = before?.visibility ?? (vid === null ? "public" : visibilityOf(paths, vid, visibility));
      lines.push(...indexRowLines(bundle, vid, vis));
    } catch (e) {
      skipped.push(`${file}: ${(e as Error).message}`);
    }
    onProgress?.(i + 1, files.length);
  });
  replaceJsonl(paths.claimsIndexFile(), lines);
  return { bundles: files.length - skipped.length, rows: lines.length, skipped };
}

function visibilityOf(paths: DataPaths, villageId: string, cache: Map<string, string>): string {
  let v = cache.get(villageId);
  if (v === undefined) {
    try {
      v = villagePolicy(readVillage(paths, villageId)).visibility;
    } catch {
      v = "village";
    }
    cache.set(villageId, v);
  }
  return v;
}
