/**
 * The tables of the claims database (claims-db.ts): `claims`, one row per index row with its
 * scope, and `meta`, where the catch-up keeps how far it has read each file. Also the statement
 * behind a claims query, and a tail reader for the JSONL files the database follows.
 */
import type { Database } from "bun:sqlite";
import type { ClaimFilter } from "./index-rows.ts";
import { readJsonlFrom } from "./jsonl.ts";

/** bytes of JSONL read at a time while catching up (bounds the memory it takes) */
const CATCH_UP_CHUNK = 4 * 1024 * 1024;

export interface RowKeys {
  bundle_id: string;
  village_id?: unknown;
  visibility?: unknown;
  subject: string;
  predicate: string;
  issuer: string;
}

/**
 * Only the string columns are taken from a row here (the row text itself is stored as it is),
 * so the runtime's JSON.parse serves: it loses nothing that is kept.
 */
export function keysOf(line: string): RowKeys {
  const v = JSON.parse(line) as Partial<RowKeys>;
  if (typeof v.bundle_id !== "string" || typeof v.subject !== "string" || typeof v.predicate !== "string" || typeof v.issuer !== "string") {
    throw new Error("not an index row");
  }
  return v as RowKeys;
}

/**
 * The statement behind a claims query: rows matching the filter with seq > after, oldest first.
 * A village's query names the index that fits it (subject, else issuer, else predicate): the
 * planner would otherwise pick (scope, seq) for its order and walk the whole village. Across
 * scopes (no villageId) it answers exactly the rows of claims.jsonl (no derived copies).
 */
export function claimsQuery(filter: ClaimFilter, limit: number, after = 0): { sql: string; args: Array<string | number> } {
  const where = ["seq > ?"];
  const args: Array<string | number> = [after];
  const eq = (column: string, value: string | undefined) => {
    if (value === undefined) return;
    where.push(`${column} = ?`);
    args.push(value);
  };
  if (filter.villageId !== undefined) eq("scope", filter.villageId);
  else where.push("derived = 0");
  eq("subject", filter.subject);
  eq("issuer", filter.issuer);
  eq("predicate", filter.predicate);
  args.push(limit);
  let index = "";
  if (filter.subject !== undefined) index = "INDEXED BY claims_subject";
  else if (filter.villageId !== undefined) {
    index = filter.issuer !== undefined ? "INDEXED BY claims_issuer" : filter.predicate !== undefined ? "INDEXED BY claims_predicate" : "INDEXED BY claims_scope";
  }
  return { sql: `SELECT seq, row FROM claims ${index} WHERE ${where.join(" AND ")} ORDER BY seq LIMIT ?`, args };
}

/**
 * Rows of the claims table. `scope` is the row's village, "" for the public store, or NULL for a
 * row Python v0.7 wrote without its village; `derived` marks a copy made in the database for a
 * village (not a line of claims.jsonl).
 */
export class ClaimsTable {
  constructor(private readonly db: Database) {
    db.exec(`CREATE TABLE IF NOT EXISTS claims (
      seq INTEGER PRIMARY KEY,
      bundle_id TEXT NOT NULL,
      scope TEXT,
      derived INTEGER NOT NULL DEFAULT 0,
      subject TEXT NOT NULL,
      predicate TEXT NOT NULL,
      issuer TEXT NOT NULL,
      row TEXT NOT NULL)`);
    db.exec("CREATE INDEX IF NOT EXISTS claims_scope ON claims (scope, seq)");
    db.exec("CREATE INDEX IF NOT EXISTS claims_subject ON claims (subject, scope, seq)");
    db.exec("CREATE INDEX IF NOT EXISTS claims_issuer ON claims (scope, issuer, seq)");
    db.exec("CREATE INDEX IF NOT EXISTS claims_predicate ON claims (scope, predicate, seq)");
    db.exec("CREATE INDEX IF NOT EXISTS claims_bundle ON claims (bundle_id, scope)");
  }

  insert(k: RowKeys, scope: string | null, derived: boolean, line: string): void {
    this.db
      .query("INSERT INTO claims (bundle_id, scope, derived, subject, predicate, issuer, row) VALUES (?, ?, ?, ?, ?, ?, ?)")
      .run(k.bundle_id, scope, derived ? 1 : 0, k.subject, k.predicate, k.issuer, line);
  }

  /** Whether a scope has rows of a bundle (its own from claims.jsonl, or also derived copies). */
  has(bundleId: string, scope: string, includeDerived: boolean): boolean {
    const sql = `SELECT 1 FROM claims WHERE bundle_id = ? AND scope = ?${includeDerived ? "" : " AND derived = 0"} LIMIT 1`;
    return this.db.query(sql).get(bundleId, scope) !== null;
  }

  /** The rows v0.7 wrote for a bundle without its village (oldest first). */
  unattributed(bundleId: string): string[] {
    const rows = this.db.query("SELECT row FROM claims WHERE bundle_id = ? AND scope IS NULL AND derived = 0 ORDER BY seq").all(bundleId) as Array<{ row: string }>;
    return rows.map((r) => r.row);
  }

  dropCopies(bundleId?: string, scope?: string): void {
    if (bundleId === undefined) this.db.exec("DELETE FROM claims WHERE derived = 1");
    else this.db.query("DELETE FROM claims WHERE bundle_id = ? AND scope = ? AND derived = 1").run(bundleId, scope ?? null);
  }

  clear(): void {
    this.db.exec("DELETE FROM claims");
  }
}

/** Small values the catch-up keeps (offsets and inodes of the files it follows). */
export class Meta {
  constructor(private readonly db: Database) {
    db.exec(`CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`);
  }

  get(key: string): string | null {
    const row = this.db.query("SELECT value FROM meta WHERE key = ?").get(key) as { value: string } | null;
    return row?.value ?? null;
  }

  set(key: string, value: string): void {
    this.db.query("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value").run(key, value);
  }

  clear(): void {
    this.db.exec("DELETE FROM meta");
  }

  /**
   * Where to go on reading a file that is now `{ino, size}`: from the offset kept under `name`, or
   * from 0 (with `restart` called) when the file was replaced or shrank since.
   */
  resume(name: string, file: { ino: number; size: number }, restart: () => void): number {
    const offset = Number(this.get(`${name}_offset`) ?? 0);
    const ino = this.get(`${name}_ino`);
    if ((ino !== null && ino !== String(file.ino)) || file.size < offset) {
      restart();
      return 0;
    }
    return offset;
  }

  reached(name: string, file: { ino: number }, offset: number): void {
    this.set(`${name}_offset`, String(offset));
    this.set(`${name}_ino`, String(file.ino));
  }
}

/**
 * Parses the whole lines of a JSONL file from offset to size (a line that does not parse is
 * skipped) and hands each record to `apply`; returns the offset reached (a torn last line is
 * left for a later call).
 */
export function tailJsonl<T>(file: string, offset: number, size: number, parse: (line: string) => T, apply: (record: T) => void): number {
  while (offset < size) {
    const { records, nextOffset } = readJsonlFrom(file, offset, parse, () => {}, CATCH_UP_CHUNK);
    for (const r of records) apply(r);
    if (nextOffset === offset) break;
    offset = nextOffset;
  }
  return offset;
}
