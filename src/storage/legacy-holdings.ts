/**
 * Village bundles Python Links v0.7 left at the top of store/bundles/, in the claims database.
 *
 * v0.7 stored the bundles it accepted into a village where the public store keeps its own, and
 * wrote their index rows without the village (village_id null; visibility "village" or null).
 * Their village is named only by v0.7's audit rows (`ingest.accept`, `quarantine.approve`). This
 * table, `legacy_holdings (bundle_id, village_id)`, is derived from those rows once as the audit
 * log is tailed (never scanned per request). Each such village gets copies of the bundle's rows
 * with its own village id (`derived` rows of the claims table, made from v0.7's rows, or from the
 * file when there are none), so its queries and "latest" find the bundle and nobody else's do.
 */
import type { Database } from "bun:sqlite";
import { existsSync } from "node:fs";
import { normalizeBundle } from "../core/bundle.ts";
import { parseStored, toJsonText, type JsonValue } from "../core/canonical.ts";
import { keysOf, tailJsonl, type ClaimsTable, type Meta, type RowKeys } from "./claims-table.ts";
import { indexRowLines } from "./index-rows.ts";
import { readJsonFile } from "./json-file.ts";
import { BUNDLE_ID_RE, VILLAGE_ID_RE, type DataPaths } from "./paths.ts";
import { readVillage, villagePolicy } from "./villages.ts";

/** audit actions that put a bundle into a village */
const VILLAGE_ACCEPTS = new Set(["ingest.accept", "quarantine.approve"]);

/**
 * Each village's visibility for its index rows ("village" when its policy cannot be read), read
 * once per village for as long as the returned lookup is kept.
 */
export function villageVisibilities(paths: DataPaths): (villageId: string) => string {
  const known = new Map<string, string>();
  return (villageId) => {
    let v = known.get(villageId);
    if (v === undefined) {
      try {
        v = villagePolicy(readVillage(paths, villageId)).visibility;
      } catch {
        v = "village";
      }
      known.set(villageId, v);
    }
    return v;
  };
}

export class LegacyHoldings {
  /** the table as bundle id -> villages (small: only what v0.7 left at the top) */
  private cache: Map<string, string[]> | null = null;
  private visibilityOf: (villageId: string) => string;

  constructor(
    private readonly db: Database,
    private readonly claims: ClaimsTable,
    private readonly meta: Meta,
    private readonly paths: DataPaths,
    private readonly warn: (message: string) => void,
  ) {
    this.visibilityOf = villageVisibilities(paths);
    db.exec(`CREATE TABLE IF NOT EXISTS legacy_holdings (
      bundle_id TEXT NOT NULL,
      village_id TEXT NOT NULL,
      pending INTEGER NOT NULL DEFAULT 1,
      PRIMARY KEY (bundle_id, village_id)) WITHOUT ROWID`);
  }

  /** Forgets what it read before: another process, or a rolled-back transaction, may have changed it. */
  invalidate(): void {
    this.cache = null;
    this.visibilityOf = villageVisibilities(this.paths);
  }

  /** Reads the audit log from where it stopped: accepted into a village, file at the top. */
  followAudit(file: string, stamp: { ino: number; size: number }): void {
    const offset = this.meta.resume("audit", stamp, () => {
      this.claims.dropCopies();
      this.db.exec("DELETE FROM legacy_holdings");
    });
    const insert = this.db.query("INSERT OR IGNORE INTO legacy_holdings (bundle_id, village_id) VALUES (?, ?)");
    const parse = (line: string) => JSON.parse(line) as { action?: unknown; bundle_id?: unknown; village_id?: unknown } | null;
    const reached = tailJsonl(file, offset, stamp.size, parse, (row) => {
      if (typeof row !== "object" || row === null || !VILLAGE_ACCEPTS.has(row.action as string)) return;
      const { bundle_id: bid, village_id: vid } = row;
      if (typeof bid !== "string" || typeof vid !== "string" || !BUNDLE_ID_RE.test(bid) || !VILLAGE_ID_RE.test(vid)) return;
      // links stores a village's bundle in the village's folder (before it audits it): only v0.7
      // left one at the top instead.
      if (existsSync(this.paths.bundleFile(bid)) && !existsSync(this.paths.bundleFile(bid, vid))) insert.run(bid, vid);
    });
    this.meta.reached("audit", stamp, reached);
    this.cache = null;
  }

  villagesOf(bundleId: string): string[] {
    return this.map().get(bundleId) ?? [];
  }

  has(bundleId: string): boolean {
    return this.map().has(bundleId);
  }

  /**
   * Called for each row read from claims.jsonl: a v0.7 row without its village is copied to the
   * villages that hold the bundle (unless they have rows of their own); a village's own row
   * replaces the copies it had.
   */
  onRow(line: string, k: RowKeys, scope: string | null): void {
    const villages = this.map().get(k.bundle_id);
    if (villages === undefined) return;
    if (scope === null) {
      for (const vid of villages) if (!this.claims.has(k.bundle_id, vid, false)) this.insertCopy(line, vid);
    } else if (villages.includes(scope)) {
      this.claims.dropCopies(k.bundle_id, scope);
    }
  }

  /** claims.jsonl is read again from the start: every holding gets its rows again. */
  reset(): void {
    this.db.exec("UPDATE legacy_holdings SET pending = 1");
  }

  /** Holdings no row has served yet: copies of their v0.7 rows, or rows made from the file. */
  materialize(): void {
    const pending = this.db.query("SELECT bundle_id, village_id FROM legacy_holdings WHERE pending = 1").all() as Array<{ bundle_id: string; village_id: string }>;
    const done = this.db.query("UPDATE legacy_holdings SET pending = 0 WHERE bundle_id = ? AND village_id = ?");
    for (const { bundle_id: bid, village_id: vid } of pending) {
      if (!this.claims.has(bid, vid, true)) {
        const old = this.claims.unattributed(bid);
        if (old.length > 0) for (const line of old) this.insertCopy(line, vid);
        else this.insertFromFile(bid, vid);
      }
      done.run(bid, vid);
    }
  }

  /** A v0.7 row as its village's own: village_id and visibility filled in. */
  private insertCopy(line: string, villageId: string): void {
    const row = parseStored(line) as Record<string, JsonValue>;
    row.village_id = villageId;
    row.visibility = this.visibilityOf(villageId);
    const text = toJsonText(row);
    this.claims.insert(keysOf(text), villageId, true, text);
  }

  private insertFromFile(bundleId: string, villageId: string): void {
    try {
      const raw = readJsonFile(this.paths.bundleFile(bundleId));
      if (raw === null) return;
      for (const line of indexRowLines(normalizeBundle(raw), villageId, this.visibilityOf(villageId))) {
        this.claims.insert(keysOf(line), villageId, true, line);
      }
    } catch (e) {
      this.warn(`bundle ${bundleId} of village ${villageId} could not be read (${(e as Error).message}); it is left out of the village's queries`);
    }
  }

  private map(): Map<string, string[]> {
    if (this.cache) return this.cache;
    const map = new Map<string, string[]>();
    const rows = this.db.query("SELECT bundle_id, village_id FROM legacy_holdings ORDER BY bundle_id, village_id").all() as Array<{ bundle_id: string; village_id: string }>;
    for (const r of rows) {
      const list = map.get(r.bundle_id);
      if (list) list.push(r.village_id);
      else map.set(r.bundle_id, [r.village_id]);
    }
    this.cache = map;
    return map;
  }
}
