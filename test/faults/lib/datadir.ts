/**
 * What a data directory looks like from outside: every file parsed the way an operator's tools
 * would read it, the claims index compared with a rebuild by `links claims reindex`, and the
 * stored bundles verified. Nothing here knows how the node writes; it only reads the layout.
 */
import { cpSync, existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { parseBundle, verifyBundle } from "../../../src/core/bundle.ts";
import { linksOk } from "../../e2e/harness.ts";

export interface IntegrityReport {
  jsonFiles: number;
  jsonlFiles: number;
  jsonlLines: number;
  /** "<file>: <why>" for a JSON file or a JSONL line (not the last one) that does not parse */
  corrupt: string[];
  /** files whose last line has no newline and does not parse (a crash mid-append) */
  tornLastLines: string[];
  /** temporary files left by an atomic write that never finished (`.name.<pid>.<rand>.tmp`) */
  tempFiles: string[];
}

function walk(dir: string, out: string[] = []): string[] {
  let entries: import("node:fs").Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else out.push(p);
  }
  return out;
}

/** Reads every file of the data directory: JSON must parse, JSONL must parse line by line. */
export function checkDataDir(root: string): IntegrityReport {
  const r: IntegrityReport = { jsonFiles: 0, jsonlFiles: 0, jsonlLines: 0, corrupt: [], tornLastLines: [], tempFiles: [] };
  for (const file of walk(root)) {
    const rel = relative(root, file);
    const name = rel.split("/").pop() as string;
    if (name.startsWith(".") && name.endsWith(".tmp")) {
      r.tempFiles.push(rel);
      continue;
    }
    if (name.endsWith(".json")) {
      r.jsonFiles++;
      try {
        JSON.parse(readFileSync(file, "utf8"));
      } catch (e) {
        r.corrupt.push(`${rel}: ${(e as Error).message}`);
      }
    } else if (name.endsWith(".jsonl")) {
      r.jsonlFiles++;
      const text = readFileSync(file, "utf8");
      const lines = text.split("\n");
      const terminated = text.length === 0 || text.endsWith("\n");
      if (terminated) lines.pop();
      lines.forEach((line, i) => {
        if (line.trim() === "") return;
        r.jsonlLines++;
        try {
          JSON.parse(line);
        } catch (e) {
          const last = i === lines.length - 1 && !terminated;
          if (last) r.tornLastLines.push(`${rel}: ${line.length} bytes`);
          else r.corrupt.push(`${rel} line ${i + 1}: ${(e as Error).message}`);
        }
      });
    } else if (name === "latest.ptr") {
      const id = readFileSync(file, "utf8").trim();
      if (!/^[0-9a-f]{32}$/.test(id) || !existsSync(join(file, "..", `${id}.json`))) r.corrupt.push(`${rel}: names ${JSON.stringify(id)}, not a stored bundle`);
    }
  }
  return r;
}

/** Non-empty lines of the claims index, sorted. */
export function indexLines(root: string): string[] {
  const file = join(root, "store/index/claims.jsonl");
  if (!existsSync(file)) return [];
  return readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l.trim() !== "")
    .sort();
}

/** bundle_id -> number of index rows naming it (lines that do not parse are left out). */
export function indexCounts(root: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const line of indexLines(root)) {
    try {
      const id = (JSON.parse(line) as { bundle_id: string }).bundle_id;
      counts.set(id, (counts.get(id) ?? 0) + 1);
    } catch {
      // a torn line is reported by checkDataDir
    }
  }
  return counts;
}

export interface RebuildComparison {
  live: number;
  rebuilt: number;
  /** lines in the live index that a rebuild does not produce (sample) */
  onlyLive: string[];
  /** lines a rebuild produces that the live index lacks (sample) */
  onlyRebuilt: string[];
  /** bundle ids of the rows a rebuild adds (stored bundles that were never indexed) */
  unindexedBundles: string[];
}

/** Copies the data directory, runs `links claims reindex` on the copy, compares sorted index lines. */
export async function compareWithRebuild(root: string, copyTo: string): Promise<RebuildComparison> {
  cpSync(root, copyTo, { recursive: true });
  await linksOk(["claims", "reindex", "--data", copyTo]);
  const live = indexLines(root);
  const rebuilt = indexLines(copyTo);
  const liveSet = new Set(live);
  const rebuiltSet = new Set(rebuilt);
  const onlyRebuilt = rebuilt.filter((l) => !liveSet.has(l));
  return {
    live: live.length,
    rebuilt: rebuilt.length,
    onlyLive: live.filter((l) => !rebuiltSet.has(l)).slice(0, 5),
    onlyRebuilt: onlyRebuilt.slice(0, 5),
    unindexedBundles: [...new Set(onlyRebuilt.map((l) => (JSON.parse(l) as { bundle_id: string }).bundle_id))],
  };
}

export interface StoredCheck {
  /** acknowledged bundles found on disk */
  stored: number;
  verified: number;
  missing: string[];
  notVerifying: string[];
  /** acknowledged bundles with other than exactly one index row per claim */
  badlyIndexed: string[];
}

/** Every bundle id in `ids` is stored for the village, verifies, and has one index row per claim. */
export function checkStored(root: string, villageId: string, ids: Iterable<string>, claimsPerBundle = 1): StoredCheck {
  const counts = indexCounts(root);
  const out: StoredCheck = { stored: 0, verified: 0, missing: [], notVerifying: [], badlyIndexed: [] };
  for (const id of ids) {
    const file = join(root, "store/bundles", villageId, `${id}.json`);
    if (!existsSync(file)) {
      out.missing.push(id);
      continue;
    }
    out.stored++;
    try {
      const v = verifyBundle(parseBundle(readFileSync(file)));
      if (v.valid && v.bundle_id === id) out.verified++;
      else out.notVerifying.push(`${id}: ${v.code}`);
    } catch (e) {
      out.notVerifying.push(`${id}: ${(e as Error).message}`);
    }
    if ((counts.get(id) ?? 0) !== claimsPerBundle) out.badlyIndexed.push(`${id}: ${counts.get(id) ?? 0} rows`);
  }
  return out;
}

/** Every file under dir with its size and mtime, for "nothing outside changed" comparisons. */
export function snapshot(dir: string, skip: (rel: string) => boolean = () => false): Map<string, string> {
  const out = new Map<string, string>();
  for (const file of walk(dir)) {
    const rel = relative(dir, file);
    if (skip(rel)) continue;
    const s = statSync(file);
    out.set(rel, `${s.size}:${s.mtimeMs}:${s.ino}`);
  }
  return out;
}

/** Rows of the audit log (a torn last line left out). */
export function auditRows(root: string): Array<Record<string, unknown>> {
  const file = join(root, "store/audit/audit.log.jsonl");
  if (!existsSync(file)) return [];
  const out: Array<Record<string, unknown>> = [];
  for (const line of readFileSync(file, "utf8").split("\n")) {
    if (line.trim() === "") continue;
    try {
      out.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // torn last line: reported by checkDataDir
    }
  }
  return out;
}
